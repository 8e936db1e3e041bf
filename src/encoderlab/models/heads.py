"""Task heads on top of an encoder's last hidden states (B, T, C), and the encoder+head pair that trains.

    SequenceClassificationHead   pool (CLS or mean) -> dropout -> linear            (B, T, C) -> (B, K)
    TokenClassificationHead      dropout -> linear on every token                   (B, T, C) -> (B, T, K)
    ProjectionHead               pool -> linear (-> L2 normalise) for sentence embeddings   -> (B, D)
    EncoderWithHead              bert(input_ids, mask) -> head(hidden, mask)

Token classification works on words, the encoder on word pieces: `align_word_labels` gives each word's
label to its first piece and IGNORE_INDEX to the rest (Devlin et al., 2019, section 5.3), so the loss and
the accuracy count every word exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.pooling import pool

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: a position that has no label
ClassifierPooling = Literal["cls", "mean"]


class SequenceClassificationHead(nn.Module):
    """One label per sequence. Pooling runs separately from `classify`, so pooled features can be cached."""

    def __init__(self, d_model: int, n_labels: int, pooling: ClassifierPooling = "cls", dropout: float = 0.1):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={pooling!r} is unknown; choose 'cls' or 'mean'")
        if n_labels < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {n_labels}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, n_labels)
        nn.init.normal_(self.out.weight, std=0.02)
        nn.init.zeros_(self.out.bias)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, C): the [CLS] state or the mean over real tokens."""
        return pool(hidden, attention_mask, self.pooling)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, C) -> logits (B, K), in the head's own dtype (a bf16 or int8 encoder may feed an fp32 head)."""
        return self.out(self.dropout(pooled.to(self.out.weight.dtype)))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.pool(hidden, attention_mask))


class TokenClassificationHead(nn.Module):
    """One label per token: dropout then a linear layer at every position."""

    def __init__(self, d_model: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        if n_labels < 2:
            raise ValueError(f"a tagger needs at least 2 tags, got {n_labels}")
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, n_labels)
        nn.init.normal_(self.out.weight, std=0.02)
        nn.init.zeros_(self.out.bias)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) -> logits (B, T, K). Padding gets logits too; its labels are IGNORE_INDEX."""
        return self.out(self.dropout(hidden))


class ProjectionHead(nn.Module):
    """Sentence embeddings: pool, optionally project to `d_out`, optionally L2-normalise."""

    def __init__(self, d_model: int, d_out: int | None = None, pooling: str = "mean", normalize: bool = True):
        super().__init__()
        self.pooling = pooling
        self.normalize = normalize
        self.proj = nn.Linear(d_model, d_out, bias=False) if d_out else None

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, D)."""
        x = pool(hidden, attention_mask, self.pooling)
        if self.proj is not None:
            x = self.proj(x)
        return F.normalize(x, p=2, dim=-1) if self.normalize else x


class EncoderWithHead(nn.Module):
    """An encoder (e.g. BertModel: (ids, mask) -> (B, T, C)) followed by one of the heads above."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.bert = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids, attention_mask)  # (B, T, C)
        return self.head(hidden, attention_mask)


def align_word_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Per-piece labels from per-word labels: the first piece of word w gets word_labels[w]; later pieces of
    the same word and special tokens (word id None) get IGNORE_INDEX.

    >>> align_word_labels([None, 0, 1, 1, 2, None], [5, 6, 7])
    [-100, 5, 6, -100, 7, -100]
    """
    labels, previous = [], None
    for word in word_ids:
        if word is None or word == previous:
            labels.append(IGNORE_INDEX)
        else:
            labels.append(int(word_labels[word]))
        previous = word
    return labels
