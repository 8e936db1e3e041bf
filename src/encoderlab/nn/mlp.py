"""Position-wise feed-forward network: Linear -> activation -> Linear, or the gated (GLU) variant.

GLU variants follow Shazeer (2020), "GLU Variants Improve Transformer": act(xW) ⊙ (xV), then W₂.

In CPU inference (fp32, or bf16 where the CPU has it) with a pre-packed up-projection (nn/prepacked_linear.py)
the activation runs inside the up-projection's oneDNN matmul, one pass over the (N, d_ff) hidden layer fewer;
anywhere else (training, autocast, LoRA or int8 layers, export) it is the plain act(up(x)).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .prepacked_linear import PrepackedLinear

ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # exact erf GELU, as BERT's "gelu"
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu",
                 kind: Literal["mlp", "glu"] = "mlp", dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.activation = activation
        self.act = ACTIVATIONS[activation]
        self.kind = kind
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.gate = nn.Linear(d_model, d_ff, bias=bias) if kind == "glu" else None
        self.down = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """x (…, d_model) -> (…, d_model); plus `residual` when given (in inference the add runs inside the
        down-projection's matmul; in training dropout comes first, as in x + dropout(ffn(x)))."""
        up = self.up
        if type(up) is PrepackedLinear and up.fuses(x, self.activation):
            h = up.forward_activated(x, self.activation)  # (B, T, d_ff): matmul and activation in one call
        else:
            h = self.act(up(x))  # (B, T, d_ff)
        if self.gate is not None:
            h = h * self.gate(x)
        if residual is None:
            return self.dropout(self.down(h))
        if type(self.down) is PrepackedLinear and not self.training:
            return self.down.forward_plus(h, residual)
        return residual + self.dropout(self.down(h))
