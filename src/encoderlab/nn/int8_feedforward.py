"""An int8 feed-forward network on oneDNN's u8×s8 matmuls (AMX int8 tiles or VNNI), built from a trained one.

Quantizing a matmul pays for itself only if quantizing its input costs less than the matmul saves. On a CPU
with AMX a bf16 matmul is already fast, and one pass that quantizes an activation costs about as much as the
int8 matmul saves — so quantizing every Linear (each with its own input pass) ends up slower than bf16. The
feed-forward network is where int8 wins: two thirds of an encoder's matmul work, and one of its two inputs can
be written in u8 by the matmul before it. Here

    h  = up(x · s⁻¹)            x quantized to u8 once (SmoothQuant factors s, Xiao et al. 2023, fold into W_up)
    u8 = quantize(act(h))       the activation and the quantization run as the up-projection writes its output
    y  = down(u8)               int8 matmul straight from those u8 values, output in the input's dtype

so the (N, d_ff) hidden layer never exists in floating point. Weights are int8 per output channel. The input
scale is static, from calibration (`absmax` of the input per channel); the hidden layer's range runs from the
activation's own minimum (GELU ≈ -0.17, SiLU ≈ -0.28, ReLU 0) to `hidden_range` times the largest value seen in
calibration: with 0.5 the rare larger activations clip and every other one gets twice the resolution. α and
`hidden_range` were chosen on 600 tweets (tweets-sentiment validation; calibration on BBC news) among α 0.5–0.9
and ranges 0.25–1.5: embedding cosine to fp32 mean 0.99781, worst 0.99487, against 0.99506 / 0.97602 with α 0.5
and the full range.

Measured on minilm, 256 BBC texts, one thread, Intel Xeon with AMX, the rest of the model in bf16: 0.82 s
against 0.88 s for all-bf16 (and 2.13 s for fbgemm int8 on every Linear); compression/quantize.py chooses this
path where the CPU has AMX int8.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .mlp import FeedForward
from .prepacked_linear import ONEDNN_ACTIVATIONS

# PyTorch announces that quantized tensors move to torchao; they are still this pinned release's kernels. The
# one message is filtered here once: `warnings.catch_warnings` around each call is not safe in encode's shard
# threads, which run this layer side by side.
warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
                        category=UserWarning)

ACTIVATION_MINIMUM = {"gelu": -0.17, "gelu_tanh": -0.17, "relu": 0.0, "silu": -0.2785}
"""The smallest value each activation can output (rounded outward): the low end of the hidden layer's u8 range."""


def onednn_int8_available() -> bool:
    """Whether this PyTorch has oneDNN's quantized linear ops (x86 builds since 2.1)."""
    return hasattr(torch.ops.onednn, "qlinear_pointwise") and hasattr(torch.ops.onednn, "qlinear_prepack")


def fusable(ffn: nn.Module) -> bool:
    """Whether `ffn` can become an Int8FeedForward: a plain (non-gated) FeedForward with an activation oneDNN has."""
    return (type(ffn) is FeedForward and ffn.gate is None and ffn.activation in ACTIVATION_MINIMUM
            and ffn.up.bias is not None and ffn.down.bias is not None)


def _int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float weight -> int8 weight and its (out,) per-row scales, symmetric, ±127."""
    scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    return (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8), scales


class Int8FeedForward(nn.Module):
    """Drop-in for a FeedForward in inference (same call: x (N, C) or (B, T, C) -> same shape and dtype).

    Its tensors are plain attributes, not parameters or buffers: casting the model around it (`.to(bf16)`)
    leaves them as they are, and the oneDNN-packed weights are a cache rebuilt after a copy."""

    def __init__(self, ffn: FeedForward, up_absmax: torch.Tensor, down_absmax: torch.Tensor, alpha: float = 0.8,
                 hidden_range: float = 0.5):
        super().__init__()
        if not fusable(ffn):
            raise ValueError("Int8FeedForward takes a plain FeedForward (no gate, biases, GELU/ReLU/SiLU)")
        up, down = ffn.up.weight.detach().float(), ffn.down.weight.detach().float()
        smooth = up_absmax.float().clamp(min=1e-5) ** alpha / up.abs().amax(dim=0).clamp(min=1e-5) ** (1 - alpha)
        self.x_scale = float((up_absmax.float() / smooth).max().clamp(min=1e-8)) / 127.0
        self.x_multiplier = (1.0 / smooth / self.x_scale).contiguous()  # (C,): x · this = x in u8 steps around 128
        self.up_int8, self.up_scales = _int8_rows(up * smooth)
        self.down_int8, self.down_scales = _int8_rows(down)
        self.up_zero_points = torch.zeros(ffn.up.out_features, dtype=torch.long)  # symmetric weights
        self.down_zero_points = torch.zeros(ffn.down.out_features, dtype=torch.long)
        self.up_bias, self.down_bias = ffn.up.bias.detach().float(), ffn.down.bias.detach().float()
        low = ACTIVATION_MINIMUM[ffn.activation]
        high = max(hidden_range * float(down_absmax.max()), 1e-3)
        self.h_scale = (high - low) / 255.0
        self.h_zero_point = int(round(-low / self.h_scale))
        self.post_op, self.algorithm = ONEDNN_ACTIVATIONS[ffn.activation]
        self.activation = ffn.activation
        self.in_features, self.d_ff = ffn.up.in_features, ffn.up.out_features

    def _packed(self) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self.__dict__.get("_packed_weights")
        if cached is None:
            cached = (torch.ops.onednn.qlinear_prepack(self.up_int8, None),
                      torch.ops.onednn.qlinear_prepack(self.down_int8, None))
            self.__dict__["_packed_weights"] = cached
        return cached

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, self.in_features)  # (N, C)
        # one pass: scale (a bf16 input becomes fp32 here), round to u8 around 128
        x_u8 = torch.quantize_per_tensor(flat * self.x_multiplier, 1.0, 128, torch.quint8).int_repr()
        up, down = self._packed()
        hidden = torch.ops.onednn.qlinear_pointwise(  # (N, d_ff) u8: act(x·W_upᵀ + b), quantized as it is written
            x_u8, self.x_scale, 128, up, self.up_scales, self.up_zero_points, self.up_bias, self.h_scale,
            self.h_zero_point, None, self.post_op, [], self.algorithm)
        out = torch.ops.onednn.qlinear_pointwise(  # (N, C) in the input's dtype
            hidden, self.h_scale, self.h_zero_point, down, self.down_scales, self.down_zero_points, self.down_bias,
            1.0, 0, x.dtype, "none", [], "")
        out = out.reshape(shape)
        return out if residual is None else out + residual

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_packed_weights", None)  # opaque oneDNN tensors: rebuilt on first use
        return state

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, d_ff={self.d_ff}, activation={self.activation}, int8 oneDNN"
