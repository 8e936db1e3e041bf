"""Rotary position embeddings (Su et al., 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding").

Instead of adding a position vector to the input, each query and key is rotated by an angle proportional
to its position: pairs of dimensions (i, i + d/2) turn by position·θᵢ, θᵢ = base^(-2i/d). The dot product
of a query at position m and a key at position n then depends on m − n only, so attention can learn
"look at my neighbour" directly, without first learning to subtract two absolute position vectors.
Nothing here is learned; values are never rotated.

    rotary = RotaryEmbedding(d_head)
    angles = rotary(positions)                 # positions (...,) -> cos, sin (..., d_head)
    q, k = apply_rotary(q, angles), apply_rotary(k, angles)

The half-split layout (not interleaved pairs) is the one of GPT-NeoX and Hugging Face's Llama port; RoFormer
pairs neighbouring dimensions instead, so interop/hf_bert.py permutes query/key rows when it saves in RoFormer's layout.
"""

from __future__ import annotations

import torch
from torch import nn

RotaryAngles = tuple[torch.Tensor, torch.Tensor]
"""(cos, sin), each (..., d_head), broadcastable against the queries and keys they rotate."""


class RotaryEmbedding(nn.Module):
    """Turns integer positions into the (cos, sin) of their rotation angles, one pair per head dimension."""

    def __init__(self, d_head: int, base: float = 10000.0):
        super().__init__()
        if d_head % 2 != 0:
            raise ValueError(f"rotary positions rotate pairs of dimensions; d_head={d_head} must be even")
        inverse_freq = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)  # (d_head/2,)
        self.register_buffer("inverse_freq", inverse_freq, persistent=False)

    def forward(self, positions: torch.Tensor) -> RotaryAngles:
        """positions (...,) integer -> cos, sin (..., d_head), in float32 (cast to the queries' dtype on use)."""
        angles = positions.to(torch.float32)[..., None] * self.inverse_freq  # (..., d_head/2)
        angles = torch.cat([angles, angles], dim=-1)  # (..., d_head): dimension i and i + d/2 share an angle
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, angles: RotaryAngles) -> torch.Tensor:
    """Rotate each (x_i, x_{i+d/2}) pair of the last dimension of x (..., d_head) by the given angles."""
    cos, sin = (a.to(x.dtype) for a in angles)
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin
