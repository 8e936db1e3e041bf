"""Pool per-token states (B, T, C) into one vector per sequence (B, C), ignoring padding.

Mean pooling matches sentence-transformers: sum of real-token states / number of real tokens.
"""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["mean", "cls", "max"]
POOLINGS: tuple[str, ...] = ("mean", "cls", "max")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: Pooling = "mean") -> torch.Tensor:
    """hidden: (B, T, C), attention_mask: (B, T) with 1 for real tokens -> (B, C)."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    if how == "mean":
        summed = (hidden * mask).sum(dim=1)  # (B, C)
        count = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1): same clamp as sentence-transformers
        return summed / count
    if how == "max":
        masked = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min)
        return masked.max(dim=1).values
    raise ValueError(f"unknown pooling {how!r}; choose one of {POOLINGS}")
