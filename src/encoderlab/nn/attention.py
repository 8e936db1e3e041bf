"""Multi-head self-attention with a padding mask (Vaswani et al., 2017, "Attention Is All You Need").

Two paths compute the same function and are tested equal:
- fast: `F.scaled_dot_product_attention` (fused kernels: flash / memory-efficient / CPU-optimised),
- reference: the explicit softmax(QKᵀ/√d_head + mask)·V, easy to read and to step through.

Input comes padded, (B, T, C) with an additive mask, or packed: (N, C) holding only the real tokens of
all sequences back to back, with a `Packing` (nn/packing.py) that says where they sit. Packed input skips
the work on padding: the projections run on N real tokens instead of B·T, and attention runs on tiles of
sequences of similar length, each padded only to its own longest member.

With rotary positions (nn/rotary.py) queries and keys are rotated by their positions before attending.

A block may keep fewer heads than d_model / d_head (structured pruning, `encoderlab.compression.pruning`):
then queries, keys and values are n_heads·d_head wide, narrower than the residual stream d_model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .packing import Packing
from .prepacked_linear import PrepackedLinear
from .rotary import RotaryAngles, apply_rotary


class MultiHeadSelfAttention(nn.Module):
    """Project to queries/keys/values, attend per head, project back.

    Separate `query`/`key`/`value` projections (not one fused matrix) keep the mapping to BERT
    checkpoints one-to-one. `d_head` defaults to d_model // n_heads; giving it explicitly allows a pruned
    block whose n_heads·d_head is less than d_model.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 fused: bool = True, d_head: int | None = None):
        super().__init__()
        if d_head is None:
            if d_model % n_heads != 0:
                raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
            d_head = d_model // n_heads
        if n_heads < 1 or d_head < 1:
            raise ValueError(f"n_heads={n_heads} and d_head={d_head} must be >= 1")
        self.n_heads = n_heads
        self.d_head = d_head
        d_inner = n_heads * d_head  # = d_model unless heads were pruned
        self.query = nn.Linear(d_model, d_inner, bias=bias)
        self.key = nn.Linear(d_model, d_inner, bias=bias)
        self.value = nn.Linear(d_model, d_inner, bias=bias)
        self.out = nn.Linear(d_inner, d_model, bias=bias)
        self.dropout = dropout
        self.fused = fused  # True: F.scaled_dot_product_attention; False: the explicit reference path

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None,
                packing: Packing | None = None, rotary: RotaryAngles | None = None,
                residual: torch.Tensor | None = None) -> torch.Tensor:
        """Padded: x (B, T, C) with attn_bias additive (B, 1, 1, T) or (B, nh, T, T), 0 where allowed.
        Packed: x (N, C) with its `packing`; each sequence attends only within itself.
        rotary: the (cos, sin) of each token's position, (T, hs) padded or (N, hs) packed; None without.
        residual: added to the output (inside the output projection's matmul where it can be; no dropout, so
        inference only — a training block adds after its own dropout)."""
        if packing is not None:
            # projections on the N real tokens; attention on length-grouped tiles of them
            q, k = self.query(x), self.key(x)  # (N, nh·hs)
            if rotary is not None:
                q, k = self._rotate_packed(q, rotary), self._rotate_packed(k, rotary)
            y = packing.attend(q, k, self.value(x), self.n_heads, self._attend)  # (N, nh·hs)
            return self._project_out(y, residual)  # (N, C)
        B, T, C = x.shape
        q = self._split_heads(self.query(x))  # (B, nh, T, hs)
        k = self._split_heads(self.key(x))    # (B, nh, T, hs)
        v = self._split_heads(self.value(x))  # (B, nh, T, hs)
        if rotary is not None:
            q, k = apply_rotary(q, rotary), apply_rotary(k, rotary)  # angles (T, hs) broadcast over B, nh
        y = self._attend(q, k, v, attn_bias)
        y = y.transpose(1, 2).reshape(B, T, -1)  # (B, T, nh·hs): heads side by side again
        return self._project_out(y, residual)

    def _project_out(self, y: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        if residual is None:
            return self.out(y)
        if type(self.out) is PrepackedLinear:
            return self.out.forward_plus(y, residual)
        return self.out(y) + residual

    def _rotate_packed(self, x: torch.Tensor, rotary: RotaryAngles) -> torch.Tensor:
        """(N, nh·hs) packed rows, angles (N, hs) -> rotated (N, nh·hs)."""
        cos, sin = rotary
        heads = x.view(x.size(0), self.n_heads, self.d_head)  # (N, nh, hs)
        return apply_rotary(heads, (cos[:, None], sin[:, None])).reshape(x.size(0), -1)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                attn_bias: torch.Tensor | None) -> torch.Tensor:
        p_drop = self.dropout if self.training else 0.0
        if self.fused and not (q.requires_grad and q.dtype == torch.bfloat16 and q.device.type == "cpu"):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=p_drop)
        # bf16 training on CPU takes the explicit path: torch's fused CPU kernel has a slow bf16 backward
        # (fwd + bwd, 1 thread, torch 2.13: 5.4 ms against 2.9 ms at (128, 4, 9, 32); 37 ms against 16 at
        # (8, 12, 128, 32)). Inference (no grad) keeps the fused kernel, faster in bf16 there.
        return reference_attention(q, k, v, attn_bias, p_drop)


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
