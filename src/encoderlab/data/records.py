"""The record types every text task reads: labelled texts, tagged token sequences, and their splits.

    LabelledTexts   texts + (optional) integer labels + label names     -> MLM text, classification
    TaggedSequences token sequences + integer tags + tag names          -> token classification (POS)
    Splits          train / validation / test of one of the above

Both record types keep their rows as plain lists so slicing, de-duplication and splitting stay readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from ..errors import ConfigError


@dataclass
class LabelledTexts:
    """N texts; `labels[i]` indexes `label_names` (labels is None for unlabelled text)."""

    texts: list[str]
    labels: list[int] | None = None
    label_names: tuple[str, ...] = ()
    source: str = ""
    """Where the rows came from (a catalog name or a path), for messages."""

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(f"{self.source}: {len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> LabelledTexts:
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return LabelledTexts([self.texts[i] for i in indices], labels, self.label_names, self.source)

    def all_texts(self) -> list[str]:
        return list(self.texts)


@dataclass
class TaggedSequences:
    """N token sequences; `tags[i][j]` indexes `tag_names` and labels token `tokens[i][j]`."""

    tokens: list[list[str]]
    tags: list[list[int]]
    tag_names: tuple[str, ...]
    source: str = ""
    joiner: str = ""
    """How tokens join into running text ('' for Chinese, ' ' for space-separated languages)."""

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{self.source}: {len(self.tokens)} token sequences but {len(self.tags)} tag sequences")

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, indices: Sequence[int]) -> TaggedSequences:
        return TaggedSequences([self.tokens[i] for i in indices], [self.tags[i] for i in indices],
                               self.tag_names, self.source, self.joiner)

    @property
    def labels(self) -> None:  # sequences are split unstratified
        return None

    def all_texts(self) -> list[str]:
        """The running text of every sequence (what MLM pretraining reads)."""
        return [self.joiner.join(words) for words in self.tokens]


R = TypeVar("R", LabelledTexts, TaggedSequences)


@dataclass
class Splits(Generic[R]):
    train: R
    validation: R
    test: R
    stats: dict[str, int] = field(default_factory=dict)
    """Counts from loading: rows read, duplicates dropped, conflicting duplicates dropped, ..."""

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def parse_fractions(split: str | Sequence[float]) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' or (0.8, 0.1, 0.1) -> three fractions for train/validation/test that sum to 1."""
    if isinstance(split, str):
        try:
            parts = [float(p) for p in split.split(",")]
        except ValueError:
            raise ConfigError(f"split={split!r} must be three comma-separated fractions, e.g. split=0.8,0.1,0.1") \
                from None
    else:
        parts = [float(p) for p in split]
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ConfigError(f"split={split!r} must be three non-negative fractions (train, validation, test) that "
                          "sum to 1, e.g. split=0.8,0.1,0.1")
    return parts[0], parts[1], parts[2]


def split_indices(n: int, fractions: tuple[float, float, float], seed: int,
                  labels: Sequence[int] | None = None) -> tuple[list[int], list[int], list[int]]:
    """Deterministic seeded train/validation/test indices; stratified by `labels` when given.

    Each class (or the whole set) is shuffled with a generator seeded by `seed`, then cut at the
    fractions, so every split holds each class in (almost) the same proportion.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [
        np.flatnonzero(np.asarray(labels) == c) for c in sorted(set(labels))]
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for group in groups:
        order = group[rng.permutation(len(group))]
        n_train = round(len(order) * fractions[0])
        n_val = round(len(order) * (fractions[0] + fractions[1])) - n_train
        parts[0].extend(order[:n_train].tolist())
        parts[1].extend(order[n_train:n_train + n_val].tolist())
        parts[2].extend(order[n_train + n_val:].tolist())
    return sorted(parts[0]), sorted(parts[1]), sorted(parts[2])


def seeded_subset(records: R, limit: int | None, seed: int) -> R:
    """A seeded random subset of `limit` rows, in their original order (all rows if limit is None or larger)."""
    if limit is None or limit >= len(records):
        return records
    keep = np.sort(np.random.default_rng(seed).permutation(len(records))[:limit])
    return records.subset(keep.tolist())


def make_splits(records: R, fractions: tuple[float, float, float], seed: int,
                stats: dict[str, int] | None = None) -> Splits[R]:
    train, val, test = split_indices(len(records), fractions, seed, records.labels)
    return Splits(records.subset(train), records.subset(val), records.subset(test), dict(stats or {}))
