"""Multi-head self-attention with a padding mask (Vaswani et al., 2017, "Attention Is All You Need").

Two paths compute the same function and are tested equal:
- fast: `F.scaled_dot_product_attention` (fused kernels: flash / memory-efficient / CPU-optimised),
- reference: the explicit softmax(QKᵀ/√d_head + mask)·V, easy to read and to step through.

Input comes padded, (B, T, C) with an additive mask, or packed: (N, C) holding only the real tokens of
all sequences back to back, with their lengths. Packed input skips all work on padding: projections run
on N real tokens instead of B·T, and attention runs per sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def padding_mask_to_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) mask of 1 = real token / 0 = padding -> (B, 1, 1, T) additive bias: 0 or a large negative.

    A finite minimum (not -inf) keeps softmax finite even for a row that is entirely padding.
    """
    keep = attention_mask[:, None, None, :].to(torch.bool)
    bias = torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device)
    return bias.masked_fill(~keep, torch.finfo(dtype).min)


class MultiHeadSelfAttention(nn.Module):
    """Project to queries/keys/values, attend per head, project back.

    Separate `query`/`key`/`value` projections (not one fused matrix) keep the mapping to BERT
    checkpoints one-to-one.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 fused: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.query = nn.Linear(d_model, d_model, bias=bias)
        self.key = nn.Linear(d_model, d_model, bias=bias)
        self.value = nn.Linear(d_model, d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout
        self.fused = fused  # True: F.scaled_dot_product_attention; False: the explicit reference path

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None,
                seq_lens: list[int] | None = None) -> torch.Tensor:
        """Padded: x (B, T, C) with attn_bias additive (B, 1, 1, T) or (B, nh, T, T), 0 where allowed.
        Packed: x (N, C) with seq_lens summing to N; each sequence attends only within itself."""
        if seq_lens is not None:
            return self._forward_packed(x, seq_lens)
        B, T, C = x.shape
        q = self._split_heads(self.query(x))  # (B, nh, T, hs)
        k = self._split_heads(self.key(x))    # (B, nh, T, hs)
        v = self._split_heads(self.value(x))  # (B, nh, T, hs)
        p_drop = self.dropout if self.training else 0.0
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=p_drop)
        else:
            y = reference_attention(q, k, v, attn_bias, p_drop)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side again
        return self.out(y)

    def _forward_packed(self, x: torch.Tensor, seq_lens: list[int]) -> torch.Tensor:
        N, C = x.shape
        q = self.query(x).view(N, self.n_heads, self.d_head)  # (N, nh, hs)
        k = self.key(x).view(N, self.n_heads, self.d_head)
        v = self.value(x).view(N, self.n_heads, self.d_head)
        p_drop = self.dropout if self.training else 0.0
        outputs, start = [], 0
        for length in seq_lens:
            end = start + length
            # (1, nh, L, hs): SDPA's fused CPU kernel wants 4-D input (3-D falls back to the slow math path)
            qi, ki, vi = (t[start:end].transpose(0, 1)[None] for t in (q, k, v))
            if self.fused:
                yi = F.scaled_dot_product_attention(qi, ki, vi, dropout_p=p_drop)
            else:
                yi = reference_attention(qi, ki, vi, None, p_drop)
            outputs.append(yi[0].transpose(0, 1).reshape(length, C))  # (L, C)
            start = end
        return self.out(torch.cat(outputs))  # (N, C)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        attn_bias: torch.Tensor | None = None, dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(QKᵀ/√d + bias)·V, written out. q, k, v: (B, nh, T, hs) -> (B, nh, T, hs)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, T)
    if attn_bias is not None:
        scores = scores + attn_bias
    probs = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return probs @ v
