"""The in-memory form of user-item interactions: a CSR matrix in NumPy (`SparseRows`), side features
(`FeatureTable`) and the interactions with their id maps (`Interactions`). Reading files is
interactions_files.py, the evaluation protocols interactions_splits.py; data/interactions.py gathers all three.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch


# ----------------------------------------------------------------------------------------------- sparse rows
@dataclass
class SparseRows:
    """A CSR matrix (rows x n_cols) in NumPy: row r holds `indices[indptr[r]:indptr[r+1]]` (sorted columns) with
    `values` at the same positions. Never densified whole by the recommenders; `to_dense(rows)` is for a few."""

    indptr: np.ndarray
    """(n_rows + 1,) int64 row starts."""
    indices: np.ndarray
    """(nnz,) int64 column of each stored value, sorted within a row."""
    values: np.ndarray
    """(nnz,) float32."""
    n_cols: int

    @classmethod
    def from_coo(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int) -> SparseRows:
        """Build from (row, col, value) triplets; a repeated (row, col) keeps its last value."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        values = np.asarray(values, dtype=np.float32)
        order = np.lexsort((np.arange(len(rows)), cols, rows))  # by row, then column, then input order
        rows, cols, values = rows[order], cols[order], values[order]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, values = rows[last], cols[last], values[last]
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr, cols, values, int(n_cols))

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_cols

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[r], self.indptr[r + 1]
        return self.indices[a:b], self.values[a:b]

    def row_ids(self) -> np.ndarray:
        """(nnz,) the row of every stored value (the COO rows)."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), self.row_lengths())

    def take(self, rows: Sequence[int] | np.ndarray) -> SparseRows:
        """The given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseRows(indptr, self.indices[positions], self.values[positions], self.n_cols)

    def to_dense(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(len(rows), n_cols) float32; only for small matrices or a few rows."""
        part = self if rows is None else self.take(rows)
        dense = np.zeros(part.shape, dtype=np.float32)
        dense[part.row_ids(), part.indices] = part.values
        return dense

    def transpose(self) -> SparseRows:
        return SparseRows.from_coo(self.indices, self.row_ids(), self.values, self.n_cols, self.n_rows)

    def binarized(self) -> SparseRows:
        return SparseRows(self.indptr, self.indices, np.ones_like(self.values), self.n_cols)

    def bags(self, rows: Sequence[int] | np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The rows as an EmbeddingBag batch: {"indices": (nnz,), "offsets": (B,), "values": (nnz,)} tensors."""
        part = self if rows is None else self.take(rows)
        return {"indices": torch.from_numpy(part.indices.copy()), "offsets": torch.from_numpy(part.indptr[:-1].copy()),
                "values": torch.from_numpy(part.values.copy())}

    def col_counts(self) -> np.ndarray:
        """(n_cols,) stored values per column (item popularity of a user x item matrix)."""
        return np.bincount(self.indices, minlength=self.n_cols)


# ----------------------------------------------------------------------------------------------- the data
@dataclass
class FeatureTable:
    """Side features of users or items, aligned with the id map: per column, a tuple of tokens per entity
    (one token for a categorical column, several for a multi-valued one such as genres; empty if missing),
    plus at most one free-text column (an item's title)."""

    tokens: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    text: list[str] | None = None
    text_column: str = ""

    def __len__(self) -> int:
        lengths = [len(v) for v in self.tokens.values()] + ([len(self.text)] if self.text is not None else [])
        return lengths[0] if lengths else 0

    def entity_tokens(self, i: int, text: bool = True) -> list[str]:
        """Entity i's tokens as `column=value` (and `column~word` for the lower-cased words of its text)."""
        out = [f"{name}={t}" for name, values in self.tokens.items() for t in values[i]]
        if text and self.text is not None:
            out += [f"{self.text_column}~{w}" for w in _words(self.text[i])]
        return out

    def vocabulary(self, min_count: int = 1, text: bool = True, rows: np.ndarray | None = None) -> list[str]:
        """Sorted tokens that occur for at least `min_count` entities (of `rows`, default all)."""
        counts: dict[str, int] = {}
        for i in range(len(self)) if rows is None else rows:
            for t in set(self.entity_tokens(int(i), text)):
                counts[t] = counts.get(t, 0) + 1
        return sorted(t for t, c in counts.items() if c >= min_count)

    def bags(self, vocabulary: Sequence[str], text: bool = True) -> SparseRows:
        """(entities x vocabulary) binary token bags; tokens outside the vocabulary are left out."""
        index = {t: j for j, t in enumerate(vocabulary)}
        per_row = [np.array(sorted({index[t] for t in self.entity_tokens(i, text) if t in index}), dtype=np.int64)
                   for i in range(len(self))]
        return binary_rows(per_row, len(vocabulary))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass
class Interactions:
    """Interactions as parallel arrays over a fixed id map (index -> original id)."""

    name: str
    user: np.ndarray
    """(N,) int64 user index."""
    item: np.ndarray
    """(N,) int64 item index."""
    rating: np.ndarray
    """(N,) float32 rating, 1.0 for implicit data."""
    timestamp: np.ndarray | None
    """(N,) float64, or None when the file has no time column."""
    user_ids: list[str]
    item_ids: list[str]
    explicit: bool
    """True when the ratings came from a rating column (rating prediction makes sense)."""
    user_features: FeatureTable | None = None
    item_features: FeatureTable | None = None

    def __len__(self) -> int:
        return len(self.user)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def where(self, mask: np.ndarray) -> Interactions:
        """The interactions where `mask` holds, over the same id maps and features."""
        return replace(self, user=self.user[mask], item=self.item[mask], rating=self.rating[mask],
                       timestamp=None if self.timestamp is None else self.timestamp[mask])

    def matrix(self, binary: bool = False) -> SparseRows:
        """users x items; values are the ratings (or 1.0 with `binary`)."""
        values = np.ones(len(self), np.float32) if binary else self.rating
        return SparseRows.from_coo(self.user, self.item, values, self.n_users, self.n_items)

    def positives(self, threshold: float | None) -> Interactions:
        """Implicit feedback: interactions rated >= threshold (all of them for implicit data or None)."""
        if threshold is None or not self.explicit:
            return self
        return self.where(self.rating >= threshold)

    def summary(self) -> dict[str, float]:
        density = len(self) / max(1, self.n_users * self.n_items)
        return {"interactions": len(self), "users": self.n_users, "items": self.n_items, "density": density}


def binary_rows(per_row: list[np.ndarray], n_cols: int) -> SparseRows:
    """Binary SparseRows from one array of columns per row."""
    lengths = [len(r) for r in per_row]
    rows = np.repeat(np.arange(len(per_row)), lengths)
    cols = np.concatenate(per_row) if per_row else np.zeros(0, np.int64)
    return SparseRows.from_coo(rows, cols, np.ones(len(cols)), len(per_row), n_cols)


__all__ = ["FeatureTable", "Interactions", "SparseRows", "binary_rows"]
