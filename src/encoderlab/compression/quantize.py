"""int8 inference that keeps accuracy: SmoothQuant-calibrated, per-channel int8 Linear layers.

Plain dynamic quantization (one scale for a whole activation matrix, 7-bit on x86) drifts sentence
embeddings badly, because a few activation channels are far larger than the rest. SmoothQuant (Xiao et al.,
2023, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language Models") moves
that range into the weights: with per-input-channel factors s_j = max|x_j|^α / max|W_:,j|^(1-α) from
calibration data, y = (x / s) · (W · s)ᵀ is unchanged in exact arithmetic, but x / s is easy to quantize.
Weights are then quantized per output channel (one scale per row) and the matmul runs in int8 through
PyTorch's quantized CPU kernels (fbgemm on x86, qnnpack on ARM), activations quantized on the fly. On x86
CPUs with VNNI the activations use all 8 bits; without it, 7 (`reduce_range`), so that the kernels' int16
pair sums cannot saturate. On CPUs with AMX a text encoder takes another path (`kernel="onednn"`): int8
feed-forward networks in a bf16 model (nn/int8_feedforward.py says why).

    quantized = quantize_int8(encoder, calibration_texts)      # a new TextEncoder; the original is untouched
    report = embedding_agreement(encoder, quantized, held_out_texts)
    int8_classifier = quantize_int8(TextClassifier.from_dir("runs/x"), training_texts)  # heads stay fp32
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from ..artifacts.classifier import TextClassifier
from ..artifacts.text_encoder import TextEncoder
from ..cpu_features import cpu_flags, cpu_has_vnni
from ..errors import ConfigError, InputDataError
from ..nn.int8_feedforward import Int8FeedForward, fusable, onednn_int8_available
from ..nn.prepacked_linear import bf16_matmul_native

Quantizable = TypeVar("Quantizable", TextEncoder, TextClassifier)


def resolve_reduce_range(reduce_range: bool | None) -> bool:
    """None (auto): full 8-bit activations on a VNNI CPU, 7-bit otherwise (safe on every x86 CPU)."""
    return not cpu_has_vnni() if reduce_range is None else reduce_range


class SmoothQuantLinear(nn.Module):
    """y = int8_linear(x · inv_s) with weights W·s quantized per output channel; bias kept in fp32."""

    def __init__(self, linear: nn.Linear, input_absmax: torch.Tensor, alpha: float = 0.7,
                 reduce_range: bool = True):
        super().__init__()
        weight = linear.weight.detach().float()  # (out, in)
        smooth = input_absmax.clamp(min=1e-5) ** alpha / weight.abs().amax(dim=0).clamp(min=1e-5) ** (1 - alpha)
        self.register_buffer("inv_smooth", 1.0 / smooth)  # (in,)
        smoothed = weight * smooth  # (out, in): columns scaled up where activations are scaled down
        scales = smoothed.abs().amax(dim=1).clamp(min=1e-8) / 127.0  # (out,) one scale per output channel
        zero_points = torch.zeros(weight.size(0), dtype=torch.long)
        with warnings.catch_warnings():
            # PyTorch announces that quantized tensors will move to torchao; they are still the CPU int8 kernels
            # of this pinned release. Silenced here so users do not see it on every layer.
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch.quantize_per_channel(smoothed, scales.double(), zero_points, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        # x86 kernels without VNNI accumulate pairs in int16: 7-bit activations avoid saturation.
        self.reduce_range = reduce_range
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = (x.float() * self.inv_smooth).reshape(-1, self.in_features)  # (N, in)
        y = torch.ops.quantized.linear_dynamic(flat, self._packed, self.reduce_range)  # (N, out) fp32
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def _target_linears(bert: nn.Module, keep_fp32: Sequence[str]) -> dict[str, nn.Linear]:
    return {name: module for name, module in bert.named_modules()
            if isinstance(module, nn.Linear) and name != "pooler"
            and not any(name.endswith(suffix) for suffix in keep_fp32)}


@torch.inference_mode()
def calibrate(run_model: Callable[[], object], layers: dict[str, nn.Linear]) -> dict[str, torch.Tensor]:
    """Per-input-channel max |activation| of every layer in `layers` while `run_model()` runs."""
    absmax: dict[str, torch.Tensor] = {}

    def make_hook(name: str):
        def hook(module, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0)
            absmax[name] = torch.maximum(absmax[name], x) if name in absmax else x
        return hook

    handles = [module.register_forward_hook(make_hook(name)) for name, module in layers.items()]
    try:
        run_model()
    finally:
        for handle in handles:
            handle.remove()
    missing = sorted(set(layers) - set(absmax))
    if missing:
        raise ConfigError(f"calibration never reached layers {missing[:3]}; keep them in fp32 with keep_fp32=")
    return absmax


INT8_KERNELS = ("fbgemm", "onednn")


def resolve_int8_kernel(kernel: str | None, keep_fp32: Sequence[str] = ()) -> str:
    """None (auto): "onednn" on a CPU with AMX int8 tiles and native bf16 — int8 feed-forward networks
    (nn/int8_feedforward.py) in a bf16 encoder, the fastest int8 there (a classifier's head stays fp32) —, else
    "fbgemm": every encoder Linear in int8 through PyTorch's quantized kernels, fp32 around them (every x86 and
    ARM CPU). Layers asked to stay in fp32 (`keep_fp32`) choose "fbgemm" too: "onednn" holds everything outside
    its int8 layers in bf16."""
    if kernel is None:
        amx = {"amx_int8", "amx_bf16"} <= cpu_flags()
        ok = amx and bf16_matmul_native() and onednn_int8_available() and not keep_fp32
        return "onednn" if ok else "fbgemm"
    if kernel not in INT8_KERNELS:
        raise ConfigError(f"int8 kernel={kernel!r} is unknown; choose one of {INT8_KERNELS} (or None: by the CPU)")
    if kernel == "onednn" and not onednn_int8_available():
        raise ConfigError("int8 kernel='onednn' needs a PyTorch with oneDNN's quantized ops; use kernel='fbgemm'")
    return kernel


def quantize_int8(model: Quantizable, calibration_texts: Sequence[str], alpha: float = 0.7,
                  keep_fp32: Sequence[str] = (), reduce_range: bool | None = None,
                  kernel: str | None = None) -> Quantizable:
    """A copy of `model` (a TextEncoder or a fine-tuned TextClassifier) whose encoder Linear layers run in int8.

    `kernel` (see `resolve_int8_kernel`): "fbgemm" quantizes every encoder Linear; "onednn", chosen by default
    on CPUs with AMX, quantizes the feed-forward networks (two thirds of the matmul work) with the GELU and the
    hidden layer's quantization inside the up-projection, and holds the rest of the model in bf16 (attention
    projections as pre-packed bf16 matmuls): on such a CPU one pass to quantize an attention projection's input
    costs what int8 would save on it.

    Layers whose name ends in one of `keep_fp32` stay in fp32 (with kernel="onednn", asked for explicitly, they
    run in bf16 like the rest of that model); the classifier head always does. The original
    is untouched. Calibration runs `calibration_texts` through the model: give texts like the ones it will see
    (for a classifier, a few hundred training texts; see `calibration_texts`). `reduce_range`: 7-bit
    activations (True), 8-bit (False, only safe on CPUs with VNNI), or None to choose by the CPU (measured on
    minilm, BBC text: worst embedding cosine 0.978 with 7 bits, 0.996 with 8)."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha={alpha} must be in [0, 1] (0.5-0.8 works well for BERT-style encoders)")
    if len(calibration_texts) == 0:
        raise InputDataError("int8 calibration needs texts like the ones you will encode; got none")
    if "fbgemm" not in torch.backends.quantized.supported_engines and \
            "qnnpack" not in torch.backends.quantized.supported_engines:
        raise ConfigError("this PyTorch build has no quantized CPU engine (fbgemm/qnnpack); int8 is unavailable")
    kernel = resolve_int8_kernel(kernel, keep_fp32)
    quantized = _cpu_copy(model)
    bert = _bert_of(quantized)
    layers = _target_linears(bert, keep_fp32)
    texts = list(calibration_texts)
    if isinstance(quantized, TextEncoder):  # packed path: padding never enters the statistics
        absmax = calibrate(lambda: quantized.encode(texts, batch_size=32), layers)
    else:
        absmax = calibrate(lambda: quantized.predict_proba(texts, batch_size=32), layers)
    if kernel == "onednn":
        return _int8_feedforwards_in_bf16(quantized, absmax)
    reduce_range = resolve_reduce_range(reduce_range)
    for name, linear in layers.items():
        parent, _, child = name.rpartition(".")
        setattr(bert.get_submodule(parent), child, SmoothQuantLinear(linear, absmax[name], alpha, reduce_range))
    return quantized


def _int8_feedforwards_in_bf16(model: Quantizable, absmax: dict[str, torch.Tensor]) -> Quantizable:
    """Every fusable feed-forward network whose two layers were calibrated (`keep_fp32` leaves a layer out of
    `absmax`) -> Int8FeedForward (its own α and hidden range, chosen on held-out tweets); then the whole encoder
    in bf16 (nn/inference_copy.py explains why). A classifier's head stays fp32 (it reads the pooled features
    in its own dtype)."""
    bert = _bert_of(model)
    for name, module in list(bert.named_modules()):
        up, down = f"{name}.up", f"{name}.down"
        if fusable(module) and up in absmax and down in absmax:
            parent, _, child = name.rpartition(".")
            setattr(bert.get_submodule(parent), child, Int8FeedForward(module, absmax[up], absmax[down]))
    bert.to(torch.bfloat16)  # in place; Int8FeedForward keeps its own tensors as they are
    return model


def _cpu_copy(model: Quantizable) -> Quantizable:
    if isinstance(model, TextEncoder):
        return copy.deepcopy(model).cpu().eval()
    if isinstance(model, TextClassifier):  # with how it reads long texts: its settings and any learned window attention
        quantized = TextClassifier(copy.deepcopy(model.model).cpu(), model.tokenizer, copy.deepcopy(model.info),
                                   copy.deepcopy(model.window_pool).cpu())
        quantized.long_text, quantized.max_length = model.long_text, model.max_length
        return quantized
    raise ConfigError(f"int8 quantization takes a TextEncoder or a TextClassifier, not {type(model).__name__}")


def _bert_of(model: Quantizable) -> nn.Module:
    return model.bert if isinstance(model, TextEncoder) else model.model.bert


@dataclass
class Agreement:
    mean_cosine: float
    min_cosine: float
    n_texts: int


def embedding_agreement(reference: TextEncoder, candidate: TextEncoder, texts: Sequence[str]) -> Agreement:
    """Cosine between the two encoders' embeddings of each text (mean and worst)."""
    a = reference.encode(list(texts), normalize=True)
    b = candidate.encode(list(texts), normalize=True)
    cosine = (a * b).sum(axis=1)
    return Agreement(float(np.mean(cosine)), float(np.min(cosine)), len(texts))
