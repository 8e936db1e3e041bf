"""Input embeddings for a Transformer encoder: token + position + segment, then LayerNorm and dropout.

Positions are learned (BERT, Devlin et al. 2019), fixed sinusoidal (Vaswani et al. 2017), or "none" here
because the encoder rotates queries and keys instead (rotary, nn/rotary.py). Which row of the position
table a token reads is numbered by column (BERT) or over the non-padding tokens from an offset (RoBERTa,
Liu et al. 2019, after fairseq's `make_positions`); see `TextEmbeddings.position_ids`.
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
    """Token + position (+ segment) embeddings, then LayerNorm and dropout.

    max_positions is the longest sequence; the position table has max_positions + position_offset rows.
    position_numbering: 'column' (a token reads row offset + its column) or 'non_padding' (row offset + its
    rank among the tokens whose id is not pad_token_id; padding tokens read row offset - 1).
    """

    def __init__(self, vocab_size: int, d_model: int, max_positions: int, n_segments: int,
                 positions: Literal["learned", "sinusoidal", "none"] = "learned",
                 pad_token_id: int = 0, norm_eps: float = 1e-12, dropout: float = 0.1,
                 position_offset: int = 0, position_numbering: Literal["column", "non_padding"] = "column"):
        super().__init__()
        if position_numbering not in ("column", "non_padding"):
            raise ValueError(f"position_numbering must be 'column' or 'non_padding', got {position_numbering!r}")
        if position_offset < (1 if position_numbering == "non_padding" else 0):
            raise ValueError(f"position_offset={position_offset} is too small: padding reads row position_offset - 1 "
                             "with non_padding numbering (>= 1 then), and rows start at 0")
        self.tokens = nn.Embedding(vocab_size, d_model, padding_idx=pad_token_id)
        self.positions_kind = positions
        rows = max_positions + position_offset
        if positions == "learned":
            self.positions = nn.Embedding(rows, d_model)
        elif positions == "sinusoidal":
            self.register_buffer("sinusoid", sinusoidal_table(rows, d_model), persistent=False)
        self.segments = nn.Embedding(n_segments, d_model) if n_segments > 0 else None
        self.norm = nn.LayerNorm(d_model, eps=norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.max_positions = max_positions
        self.pad_token_id = pad_token_id
        self.position_offset = position_offset
        self.position_numbering = position_numbering

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> the position-table row of each token: (1, T) by column, (B, T) by non-padding rank."""
        T, offset = input_ids.size(1), self.position_offset
        if T > self.max_positions:
            raise ValueError(f"sequence length {T} exceeds max_positions={self.max_positions}; "
                             "truncate the input (e.g. max_length) or use a model with more positions")
        if self.position_numbering == "column":
            return torch.arange(offset, T + offset, device=input_ids.device)[None]  # (1, T)
        real = (input_ids != self.pad_token_id).long()  # (B, T); an integer cumsum also exports to ONNX
        return real.cumsum(dim=1) * real + (offset - 1)  # (B, T): offset, offset+1, … on real tokens

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids: (B, T) -> (B, T, C). position_ids: (B or 1, T) rows of the position table; default
        `self.position_ids(input_ids)`."""
        if position_ids is None:
            position_ids = self.position_ids(input_ids)
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
