"""Input embeddings for a Transformer encoder: token + position + segment, then LayerNorm and dropout.

Positions are learned (BERT, Devlin et al. 2019), fixed sinusoidal (Vaswani et al. 2017), or "none" here
because the encoder rotates queries and keys instead (rotary, nn/rotary.py).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn


def sinusoidal_table(n_positions: int, d_model: int) -> torch.Tensor:
    """(n_positions, d_model) table: sin on even dims, cos on odd dims, wavelengths 2π … 10000·2π."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (P, 1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return table


class TextEmbeddings(nn.Module):
    def __init__(self, vocab_size: int, d_model: int, max_positions: int, n_segments: int,
                 positions: Literal["learned", "sinusoidal", "none"] = "learned",
                 pad_token_id: int = 0, norm_eps: float = 1e-12, dropout: float = 0.1):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model, padding_idx=pad_token_id)
        self.positions_kind = positions
        if positions == "learned":
            self.positions = nn.Embedding(max_positions, d_model)
        elif positions == "sinusoidal":
            self.register_buffer("sinusoid", sinusoidal_table(max_positions, d_model), persistent=False)
        self.segments = nn.Embedding(n_segments, d_model) if n_segments > 0 else None
        self.norm = nn.LayerNorm(d_model, eps=norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.max_positions = max_positions

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids: (B, T) -> (B, T, C)."""
        B, T = input_ids.shape
        if position_ids is None:
            if T > self.max_positions:
                raise ValueError(f"sequence length {T} exceeds max_positions={self.max_positions}; "
                                 "truncate the input (e.g. max_length) or use a model with more positions")
            position_ids = torch.arange(T, device=input_ids.device)[None, :]  # (1, T)
        x = self.tokens(input_ids)  # (B, T, C)
        if self.positions_kind == "learned":
            x = x + self.positions(position_ids)
        elif self.positions_kind == "sinusoidal":
            x = x + self.sinusoid[position_ids].to(x.dtype)
        if self.segments is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.segments(token_type_ids)
        return self.dropout(self.norm(x))
