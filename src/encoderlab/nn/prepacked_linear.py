"""A Linear layer whose CPU inference runs on a weight pre-packed for oneDNN's matmul.

`F.linear` on CPU hands each call to a BLAS sgemm that re-packs the weight into its blocked layout every
time. oneDNN can keep the weight in that layout (`torch.ops.mkldnn._reorder_linear_weight`, the same
kernels PyTorch's inductor uses when it freezes a model): measured on this project's 2-core AVX2 machine,
one thread, the FFN matmul of minilm (4096×384 · 384×1536) takes 400 ms instead of 540 ms.

`PrepackedLinear` is an `nn.Linear` (same parameters, same state_dict keys, same `isinstance`): the packed
copy is a cache, rebuilt whenever the weight changes, and used only where it is exactly a plain linear —
on CPU with no gradient needed, not under autocast, tracing, compiling or ONNX export, in fp32, or in bf16 where
input and weight are both bf16 and the CPU computes bf16 natively (a model held in bf16,
nn/inference_copy.py). Anywhere else (training, GPU, autocast) it is `F.linear`. Results differ from
`F.linear` only by summation order (~1e-7 in fp32).

On that same path an activation can ride along (`forward_activated`): oneDNN applies it as the matmul
writes its output, saving a pass over the (N, out) result — the feed-forward's up-projection + GELU; and so
can a residual connection's add (`forward_plus`), in the output projections of attention and feed-forward.

    prepack_linears(encoder.bert)   # in place; returns how many layers were swapped
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as torch_module

from ..cpu_features import cpu_flags

ONEDNN_ACTIVATIONS = {
    "gelu": ("gelu", "none"),  # exact erf GELU, as F.gelu
    "gelu_tanh": ("gelu", "tanh"),  # F.gelu(approximate="tanh")
    "relu": ("relu", ""),
    "silu": ("swish", ""),  # x·sigmoid(x), oneDNN's swish with alpha 1
}
"""Activation name (as in nn/mlp.py) -> oneDNN post-op and its algorithm; each matches torch's to ~5e-7."""

_PACKED_DTYPES = (torch.float32, torch.bfloat16)
"""Weight dtypes that run pre-packed: fp32 everywhere oneDNN is, bf16 where the CPU computes it natively."""

_PACKING = threading.Lock()  # encode's shards run one model in several threads: pack each weight once


def has_forward_hooks(modules: Iterable[nn.Module]) -> bool:
    """Whether a forward (pre-)hook watches any of `modules`, directly or through a global hook."""
    return bool(torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks
                or any(m._forward_hooks or m._forward_pre_hooks for m in modules))


@functools.cache
def prepack_available() -> bool:
    """Whether this PyTorch build can run oneDNN pre-packed linears (checked once, on a tiny example)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        weight, x = torch.randn(3, 4), torch.randn(2, 4)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight)
        y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
        return bool(torch.allclose(y, x @ weight.T, atol=1e-5))
    except (RuntimeError, AttributeError):  # op missing in this build
        return False


@functools.cache
def bf16_matmul_native() -> bool:
    """Whether this CPU runs oneDNN bf16 matmuls natively (AVX-512 BF16 or AMX); elsewhere they are emulated.
    PyTorch's own check also answers yes for AVX-512 without BF16 (Skylake, Cascade Lake), where oneDNN emulates
    bf16 with fp32 arithmetic: the CPU's flags must name a bf16 instruction too."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and cpu_flags() & {"avx512_bf16", "amx_bf16"})


class PrepackedLinear(nn.Linear):
    """nn.Linear that runs CPU fp32 inference on a cached oneDNN-packed weight (see module docstring)."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> PrepackedLinear:
        """A PrepackedLinear sharing `linear`'s parameters (no copy)."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.in_features, layer.out_features = linear.in_features, linear.out_features
        layer.weight, layer.bias = linear.weight, linear.bias
        layer.train(linear.training)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._plain_inference(x):
            return torch.ops.mkldnn._linear_pointwise(x, self._packed_weight(), self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def fuses(self, x: torch.Tensor, activation: str) -> bool:
        """Whether `forward_activated(x, activation)` may run: plain CPU inference (as in `forward`), an
        activation oneDNN computes as torch does, and no hooks on this layer (a hook expects to see the
        linear's own input and output, e.g. int8 calibration)."""
        return activation in ONEDNN_ACTIVATIONS and not has_forward_hooks([self]) and self._plain_inference(x)

    def forward_activated(self, x: torch.Tensor, activation: str) -> torch.Tensor:
        """activation(self(x)) in one oneDNN call; only where `fuses(x, activation)` (callers check first)."""
        post_op, algorithm = ONEDNN_ACTIVATIONS[activation]
        return torch.ops.mkldnn._linear_pointwise(x, self._packed_weight(), self.bias, post_op, [], algorithm)

    def forward_plus(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """self(x) + residual, the add inside the matmul (oneDNN's binary post-op) on the plain fp32 inference
        path; a residual connection's add without a pass of its own. Anywhere else the two steps. Measured on
        minilm, one thread, AMX Xeon, fused against separate: fp32 fixed 32×128 0.704 vs 0.748 s, a corpus
        6.47 vs 6.55 s; in bf16 the fused add was 2–4% slower, so bf16 keeps the separate add."""
        if (x.dtype == torch.float32 and residual.dtype == x.dtype and residual.is_contiguous()
                and not has_forward_hooks([self]) and self._plain_inference(x)):
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self._packed_weight(), self.bias, "add")
        return self(x) + residual

    def _plain_inference(self, x: torch.Tensor) -> bool:
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad))
        return (x.device.type == "cpu" and x.dtype == self.weight.dtype and x.dtype in _PACKED_DTYPES
                and (x.dtype == torch.float32 or bf16_matmul_native()) and not needs_grad
                and not torch.is_autocast_enabled("cpu") and not torch.jit.is_tracing()
                and not torch.jit.is_scripting() and not torch.compiler.is_compiling()
                and not torch.onnx.is_in_onnx_export() and prepack_available())

    def _packed_weight(self) -> torch.Tensor:
        # the version counter moves on every in-place update; inference tensors (made under
        # torch.inference_mode) have none, and can only change inside inference mode
        version = None if self.weight.is_inference() else self.weight._version
        key = (self.weight.data_ptr(), version, tuple(self.weight.shape))
        cached = self.__dict__.get("_packed")
        if cached is None or cached[0] != key:
            with _PACKING:  # another thread may have packed it while this one waited
                cached = self.__dict__.get("_packed")
                if cached is None or cached[0] != key:
                    packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach())
                    self.__dict__["_packed"] = cached = (key, packed)
        return cached[1]

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: the live module keeps its cache
        state.pop("_packed", None)  # an opaque oneDNN tensor: not copyable, rebuilt on first use
        return state


def prepack_linears(module: nn.Module) -> int:
    """Swap every plain nn.Linear inside `module` for a PrepackedLinear sharing its parameters.

    Subclasses (LoRA, int8 layers) are left alone. Returns the number swapped; 0 where oneDNN is missing."""
    if not prepack_available():
        return 0
    targets = [(name, child) for name, child in module.named_modules() if type(child) is nn.Linear]
    for name, linear in targets:
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, child, PrepackedLinear.from_linear(linear))
    return len(targets)
