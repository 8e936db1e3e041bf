"""Long texts as overlapping windows of word pieces, and the windows' vectors pooled back into one per text.

An encoder reads at most `window` word pieces; truncation throws the rest of a long text away. Here a text's
pieces are cut into windows that overlap, each wrapped in the tokenizer's own special tokens ([CLS] ... [SEP]),
every window is encoded like a short text, and the windows' vectors are pooled into one vector per text: their
mean, their element-wise max, or an attention-weighted mean whose weights a classifier learns (attention over
the windows of a document, as in hierarchical document models: Yang et al., 2016, "Hierarchical Attention
Networks"; Pappagari et al., 2019, "Hierarchical Transformers for Long Document Classification").

    spans = window_spans(n_pieces=300, size=126, stride=94)       # [(0, 126), (94, 220), (174, 300)]
    windows = split_windows(ids, LongText("chunk", window=128))   # list of id lists, each <= 128 long
    pooled = WindowPool("mean")(window_vectors, counts)           # (W, C) + windows per text -> (N, C)

`stride` is the step between the starts of two windows (as in a convolution), in word pieces, so two
neighbouring windows share `window - specials - stride` pieces. (Hugging Face tokenizers call that overlap
`stride`; here it is the step.) The last window is aligned with the end of the text, so no window is a short
tail; it may overlap its neighbour by more. A text that fits in one window is that one window, unchanged:
chunking it gives exactly what truncation gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError

LongTextMode = Literal["truncate", "chunk"]
WindowPooling = Literal["mean", "max", "attention"]
LONG_TEXT_MODES: tuple[str, ...] = ("truncate", "chunk")
WINDOW_POOLINGS: tuple[str, ...] = ("mean", "max", "attention")
SPECIALS = 2
"""Special tokens around a window's content in BERT ([CLS] x [SEP]) and RoBERTa (<s> x </s>) tokenizers."""


def default_stride(window: int, specials: int = SPECIALS) -> int:
    """Three quarters of a window's content: neighbouring windows share a quarter (32 of 126 pieces at 128)."""
    return max(1, (window - specials) * 3 // 4)


@dataclass
class LongText:
    """How texts longer than the encoder's window are read: cut (truncate) or read whole in windows (chunk)."""

    mode: LongTextMode = "truncate"
    """truncate: the first `window` word pieces only; chunk: overlapping windows covering the whole text."""
    window: int = 128
    """Word pieces per window, special tokens included (at most the encoder's positions)."""
    stride: int | None = None
    """chunk: word pieces between the starts of two neighbouring windows (at most window - 2, so no piece is
    skipped); null: three quarters of a window's content."""
    pooling: WindowPooling = "mean"
    """chunk: how a text's window vectors become one: mean, max, or attention (learned; classifiers only)."""

    def __post_init__(self) -> None:
        if self.mode not in LONG_TEXT_MODES:
            raise ConfigError(f"long_text={self.mode!r} is unknown; choose truncate or chunk")
        if self.pooling not in WINDOW_POOLINGS:
            raise ConfigError(f"window_pooling={self.pooling!r} is unknown; choose mean, max or attention")
        self.window = int(self.window)
        if self.window < SPECIALS + 2:
            raise ConfigError(f"window={self.window} is too short to hold text between the special tokens; use "
                              "e.g. window=128")
        if self.stride is None:
            self.stride = default_stride(self.window)
        self.stride = int(self.stride)
        if not 1 <= self.stride <= self.window - SPECIALS:
            raise ConfigError(f"stride={self.stride} must be between 1 and window - 2 = {self.window - SPECIALS} "
                              f"(the step between window starts; a larger step would skip word pieces); e.g. "
                              f"stride={default_stride(self.window)} for window={self.window}")

    @property
    def chunked(self) -> bool:
        return self.mode == "chunk"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, default_window: int, where: str = "head.json") -> LongText:
        """The `long_text` entry of a saved model's metadata; absent (models saved before chunking): truncate
        at `default_window`."""
        if raw is None:
            return cls("truncate", default_window)
        if not isinstance(raw, dict) or set(raw) - {"mode", "window", "stride", "pooling"}:
            raise CheckpointError(f"{where}: long_text={raw!r} is not an object with mode, window, stride, pooling; "
                                  "re-run the fine-tune or restore the file")
        try:
            return cls(**raw)
        except ConfigError as exc:
            raise CheckpointError(f"{where}: long_text is invalid: {exc}") from exc


def window_spans(n_pieces: int, size: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) of every window over `n_pieces` content pieces: starts 0, stride, 2·stride, ... while a
    window ends before the text does, then one last window aligned with the end. Empty text: one empty span."""
    if size < 1 or not 1 <= stride <= size:
        raise ValueError(f"need 1 <= stride <= size, got size={size}, stride={stride}")
    if n_pieces <= size:
        return [(0, n_pieces)]
    spans, start = [], 0
    while start + size < n_pieces:
        spans.append((start, start + size))
        start += stride
    spans.append((n_pieces - size, n_pieces))
    return spans


def split_windows(ids: Sequence[int], long_text: LongText, n_prefix: int = 1, n_suffix: int = 1) -> list[list[int]]:
    """One text's token ids (special tokens included: `n_prefix` before, `n_suffix` after the content) ->
    its windows, each with the same special tokens, each at most `long_text.window` ids long."""
    ids = list(ids)
    if len(ids) <= long_text.window or not long_text.chunked:
        return [ids[:long_text.window - n_suffix] + ids[len(ids) - n_suffix:] if len(ids) > long_text.window
                else ids]
    prefix, content, suffix = ids[:n_prefix], ids[n_prefix:len(ids) - n_suffix], ids[len(ids) - n_suffix:]
    size = long_text.window - n_prefix - n_suffix
    if long_text.stride > size:
        raise ConfigError(f"stride={long_text.stride} is longer than a window's content ({size} pieces with this "
                          f"tokenizer's {n_prefix + n_suffix} special tokens); lower stride to at most {size}")
    return [prefix + content[start:end] + suffix for start, end in window_spans(len(content), size,
                                                                                long_text.stride)]


def group_windows(vectors: torch.Tensor, counts: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, C) window vectors, text after text, and each text's number of windows -> (N, Wmax, C) padded with
    zeros and its (N, Wmax) mask, 1 for a real window."""
    counts = torch.as_tensor(counts, dtype=torch.long, device=vectors.device)  # (N,)
    if int(counts.sum()) != len(vectors):
        raise ValueError(f"counts add up to {int(counts.sum())} windows but {len(vectors)} vectors were given")
    n, most = len(counts), int(counts.max()) if len(counts) else 0
    slot = torch.arange(most, device=vectors.device)  # (Wmax,)
    mask = slot[None, :] < counts[:, None]  # (N, Wmax)
    grouped = vectors.new_zeros(n, most, vectors.size(-1))
    grouped[mask] = vectors  # row-major order of the mask = text after text, window after window
    return grouped, mask


class WindowPool(nn.Module):
    """Pool each text's window vectors (W, C) into one vector per text (N, C): mean, max, or attention with a
    learned score per window (softmax over the text's windows). A text of one window gets that window's vector
    exactly, whatever the pooling."""

    def __init__(self, how: WindowPooling = "mean", d_model: int | None = None):
        super().__init__()
        if how not in WINDOW_POOLINGS:
            raise ValueError(f"window pooling {how!r} is unknown; choose one of {WINDOW_POOLINGS}")
        if how == "attention" and not d_model:
            raise ValueError("attention over windows needs d_model (the width of the window vectors)")
        self.how = how
        self.score = nn.Linear(d_model, 1) if how == "attention" else None
        if self.score is not None:  # start from the mean: equal scores for every window
            nn.init.zeros_(self.score.weight)
            nn.init.zeros_(self.score.bias)

    def forward(self, vectors: torch.Tensor, counts: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """vectors (W, C), counts (N,) summing to W -> (N, C)."""
        counts = torch.as_tensor(counts, dtype=torch.long, device=vectors.device)
        if bool((counts == 1).all()):  # nothing to pool: keep every vector bit for bit
            return vectors
        grouped, mask = group_windows(vectors, counts)  # (N, Wmax, C), (N, Wmax)
        if self.how == "max":
            pooled = grouped.masked_fill(~mask[..., None], torch.finfo(grouped.dtype).min).amax(dim=1)
        else:
            if self.how == "mean":
                weights = mask.to(grouped.dtype) / counts[:, None].clamp(min=1).to(grouped.dtype)  # (N, Wmax)
            else:
                scores = self.score(grouped).squeeze(-1)  # (N, Wmax)
                weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)
            pooled = (weights[..., None] * grouped).sum(dim=1)  # (N, C)
        single = counts == 1  # a text of one window: its vector as it is, not a weighted sum of one
        return torch.where(single[:, None], grouped[:, 0], pooled)
