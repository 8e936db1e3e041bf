"""A linear layer over sparse (mostly-zero) input rows, given as bags of (column, value) pairs.

A user's row over a catalogue of I items has a few dozen non-zeros; `x @ W` with a dense x costs B x I memory
and B x I x d work per batch. `SparseLinear` stores W as an `nn.EmbeddingBag` (I, d) and computes
y_b = sum_j x_bj W_j + bias over the non-zeros only (`per_sample_weights`), so memory and time grow with the
non-zeros, not the catalogue. `dense(x)` is the reference path x @ W + bias, tested equal.

Bags are CSR-style: `indices` (nnz,) columns, `offsets` (B,) where each row starts, `values` (nnz,).
"""

from __future__ import annotations

import torch
from torch import nn


class SparseLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.weight = nn.EmbeddingBag(n_in, n_out, mode="sum")  # (n_in, n_out): row j = column j's weights
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        nn.init.uniform_(self.weight.weight, -n_in ** -0.5, n_in ** -0.5)  # as nn.Linear's default bound

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(nnz,), (B,), (nnz,) -> (B, n_out)."""
        y = self.weight(indices, offsets, per_sample_weights=values)  # (B, n_out)
        return y + self.bias if self.bias is not None else y

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Reference path: (B, n_in) dense rows -> (B, n_out)."""
        y = x @ self.weight.weight  # (B, n_in) @ (n_in, n_out)
        return y + self.bias if self.bias is not None else y


def row_ids(offsets: torch.Tensor, nnz: int) -> torch.Tensor:
    """(nnz,) the row of every stored value of a bag batch."""
    lengths = torch.diff(offsets, append=torch.tensor([nnz], device=offsets.device))
    return torch.repeat_interleave(torch.arange(len(offsets), device=offsets.device), lengths)


def gather_bags(rows: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bags of `rows` (B,) of a CSR table (indptr (R + 1,), indices (nnz,)) -> (indices, offsets)."""
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    offsets = torch.cumsum(lengths, 0) - lengths  # (B,)
    positions = torch.repeat_interleave(starts - offsets, lengths) + torch.arange(int(lengths.sum()),
                                                                                  device=rows.device)
    return indices[positions], offsets


def to_dense(indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor, n_cols: int) -> torch.Tensor:
    """A bag batch as dense (B, n_cols) rows (tests, small catalogues)."""
    out = torch.zeros(len(offsets), n_cols, dtype=values.dtype, device=values.device)
    out[row_ids(offsets, len(indices)), indices] = values
    return out
