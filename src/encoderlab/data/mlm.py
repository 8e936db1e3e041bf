"""Data for masked-language modelling (Devlin et al., 2019): tokenise once, pack, mask dynamically.

1. `write_token_file` tokenises a corpus once into a flat memory-mapped id file (plus a word-start flag per
   token, for whole-word masking); every document ends with [SEP], the document separator.
2. `PackedSequences` cuts that stream into [CLS] + (max_seq_len - 1) tokens, so no position is padding and a
   sequence may span documents (RoBERTa's FULL-SENTENCES packing). `DocumentSequences` instead keeps one
   document (chunk) per sequence: variable lengths, batched by length (the Trainer's `lengths=`).
3. `MLMMasker` picks `mask_prob` of the real, non-special tokens (or whole words) of a batch afresh every
   time it is called (dynamic masking, Liu et al., 2019, RoBERTa) and replaces 80% of them with [MASK],
   10% with a random token and keeps 10%. `MLMCollator` pads a list of sequences and masks them; it returns
   the masked positions as flat indices into B*T, so the model predicts those positions only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, InputDataError
from ..files import atomic_write_json
from ..tokenization import TextTokenizer


# ============================================================================ 1. tokenise once
@dataclass
class TokenFile:
    """A tokenised corpus on disk: `<prefix>.ids.bin` (uint16/uint32), `<prefix>.words.bin` (uint8, 1 = the
    token starts a word) and `<prefix>.json` (counts, dtype, fingerprint). Opened as read-only memmaps."""

    ids: np.ndarray
    word_starts: np.ndarray
    n_documents: int
    sep_id: int
    fingerprint: str

    @property
    def n_tokens(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def open(cls, prefix: str | Path) -> TokenFile:
        prefix = Path(prefix)
        meta = json.loads(Path(f"{prefix}.json").read_text(encoding="utf-8"))
        n = meta["n_tokens"]
        ids = np.memmap(f"{prefix}.ids.bin", dtype=meta["dtype"], mode="r", shape=(n,))
        words = np.memmap(f"{prefix}.words.bin", dtype=np.uint8, mode="r", shape=(n,))
        return cls(ids, words, meta["n_documents"], meta["sep_id"], meta["fingerprint"])


def corpus_fingerprint(texts: Sequence[str], tokenizer: TextTokenizer) -> str:
    """sha256 of the texts and the tokenizer: a token file is reused only for the same corpus and vocabulary."""
    digest = hashlib.sha256(tokenizer.tokenizer.to_str().encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def write_token_file(texts: Sequence[str], tokenizer: TextTokenizer, prefix: str | Path,
                     chunk_size: int = 2000) -> TokenFile:
    """Tokenise `texts` (no [CLS]; [SEP] after each document) into `prefix`.* ; reuse them if already there."""
    prefix = Path(prefix)
    fingerprint = corpus_fingerprint(texts, tokenizer)
    meta_path = Path(f"{prefix}.json")
    if meta_path.is_file() and json.loads(meta_path.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
        return TokenFile.open(prefix)
    sep_id = tokenizer.special_id("[SEP]")
    dtype = np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32
    prefix.parent.mkdir(parents=True, exist_ok=True)
    n_tokens, n_docs = 0, 0
    ids_tmp, words_tmp = Path(f"{prefix}.ids.bin.tmp"), Path(f"{prefix}.words.bin.tmp")
    with ids_tmp.open("wb") as ids_out, words_tmp.open("wb") as words_out:
        for start in range(0, len(texts), chunk_size):
            chunk = [t for t in texts[start:start + chunk_size] if t.strip()]
            for enc in tokenizer.tokenizer.encode_batch(chunk, add_special_tokens=False):
                if not enc.ids:
                    continue
                word_ids = enc.word_ids
                starts = [1] + [int(word_ids[i] is None or word_ids[i] != word_ids[i - 1])
                                for i in range(1, len(word_ids))]
                ids_out.write(np.asarray(enc.ids + [sep_id], dtype=dtype).tobytes())
                words_out.write(np.asarray(starts + [1], dtype=np.uint8).tobytes())
                n_tokens += len(enc.ids) + 1
                n_docs += 1
    if n_docs == 0:
        ids_tmp.unlink()
        words_tmp.unlink()
        raise InputDataError(f"the corpus for {prefix.name!r} is empty: {len(texts)} texts, none with a token; "
                             "give it non-blank text")
    ids_tmp.replace(f"{prefix}.ids.bin")
    words_tmp.replace(f"{prefix}.words.bin")
    atomic_write_json(meta_path, {"n_tokens": n_tokens, "n_documents": n_docs, "dtype": np.dtype(dtype).name,
                                  "sep_id": sep_id, "vocab_size": tokenizer.vocab_size, "fingerprint": fingerprint})
    return TokenFile.open(prefix)


# ============================================================================ 2. sequences
class PackedSequences(Dataset):
    """Sequence i = [CLS] + tokens[i*(L-1) : (i+1)*(L-1)] of the stream (L = max_seq_len); the tail that does
    not fill a sequence is dropped. Items: {"input_ids": (L,) int64, "word_starts": (L,) uint8}."""

    def __init__(self, tokens: TokenFile, max_seq_len: int, cls_id: int, limit: int | None = None):
        self.tokens, self.cls_id, self.body = tokens, cls_id, max_seq_len - 1
        n = tokens.n_tokens // self.body
        if n == 0:
            raise InputDataError(f"the corpus has {tokens.n_tokens} tokens, fewer than one sequence of "
                                 f"max_seq_len={max_seq_len}; add text or lower max_seq_len")
        self.n = n if limit is None else min(n, limit)

    def __len__(self) -> int:
        return self.n

    def length(self, i: int) -> int:
        return self.body + 1

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        lo = i * self.body
        ids = np.concatenate([[self.cls_id], self.tokens.ids[lo:lo + self.body]]).astype(np.int64)
        words = np.concatenate([[1], self.tokens.word_starts[lo:lo + self.body]]).astype(np.uint8)
        return {"input_ids": ids, "word_starts": words}


class DocumentSequences(Dataset):
    """One sequence per document (documents longer than L are cut into chunks): [CLS] chunk [SEP].
    Lengths vary, so batches are formed by length (the Trainer's `lengths=`, training/sampler.py)."""

    def __init__(self, tokens: TokenFile, max_seq_len: int, cls_id: int, limit: int | None = None):
        self.tokens, self.cls_id = tokens, cls_id
        ends = np.flatnonzero(np.asarray(tokens.ids) == tokens.sep_id)  # position of each document's [SEP]
        starts = np.concatenate([[0], ends[:-1] + 1])
        body = max_seq_len - 2
        spans = []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            spans += [(lo, min(lo + body, end)) for lo in range(start, end, body)]
        if not spans:
            raise InputDataError("the corpus has no document with a token; give it non-blank text")
        self.spans = spans if limit is None else spans[:limit]

    def __len__(self) -> int:
        return len(self.spans)

    def length(self, i: int) -> int:
        lo, hi = self.spans[i]
        return hi - lo + 2

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        lo, hi = self.spans[i]
        ids = np.concatenate([[self.cls_id], self.tokens.ids[lo:hi], [self.tokens.sep_id]]).astype(np.int64)
        words = np.concatenate([[1], self.tokens.word_starts[lo:hi], [1]]).astype(np.uint8)
        return {"input_ids": ids, "word_starts": words}


class SortedByLength(Dataset):
    """A view of `base` in order of decreasing length, so in-order batches (evaluation) pad little."""

    def __init__(self, base: Dataset):
        self.base = base
        self.order = sorted(range(len(base)), key=lambda i: -base.length(i))

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        return self.base[self.order[i]]


# ============================================================================ 3. masking
class MLMMasker:
    """Choose and corrupt the tokens to predict. `mask_prob` of the real non-special tokens (15% in BERT;
    Wettig et al., 2023 find 40% as good or better) — or of the words, with `whole_word` — are chosen;
    80% of them become [MASK], 10% a random token, 10% stay as they are."""

    def __init__(self, mask_prob: float, mask_id: int, vocab_size: int, special_ids: Sequence[int],
                 whole_word: bool = False):
        if not 0.0 < mask_prob < 1.0:
            raise ConfigError(f"mask_prob={mask_prob} must be in (0, 1); BERT uses 0.15, 0.15-0.4 works well")
        self.mask_prob, self.mask_id, self.whole_word = mask_prob, mask_id, whole_word
        self.is_special = torch.zeros(vocab_size, dtype=torch.bool)
        self.is_special[list(special_ids)] = True
        self.random_ids = (~self.is_special).nonzero().squeeze(1)  # replacement tokens: never special

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_starts: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T) ids, mask, word starts -> (corrupted ids (B, T), masked_positions (N,) flat, labels (N,))."""
        candidate = attention_mask.bool() & ~self.is_special[input_ids]  # (B, T)
        if self.whole_word:
            # Number the words of the flattened batch; a special token or padding is a word of its own.
            starts = word_starts.bool() | ~candidate
            word_index = starts.reshape(-1).long().cumsum(0) - 1  # (B*T,)
            chosen_word = torch.rand(int(word_index[-1]) + 1, generator=generator) < self.mask_prob
            chosen = chosen_word[word_index].view_as(candidate) & candidate
        else:
            chosen = (torch.rand(candidate.shape, generator=generator) < self.mask_prob) & candidate
        if not bool(chosen.any()) and bool(candidate.any()):  # a batch must predict at least one token
            chosen.view(-1)[candidate.reshape(-1).nonzero()[0]] = True
        positions = chosen.reshape(-1).nonzero().squeeze(1)  # (N,)
        flat = input_ids.reshape(-1)
        labels = flat[positions].clone()
        corrupted = flat.clone()
        action = torch.rand(positions.shape, generator=generator)
        corrupted[positions[action < 0.8]] = self.mask_id
        swap = positions[(action >= 0.8) & (action < 0.9)]
        picks = torch.randint(len(self.random_ids), swap.shape, generator=generator)
        corrupted[swap] = self.random_ids[picks]
        return corrupted.view_as(input_ids), positions, labels


def pad_items(items: list[dict[str, np.ndarray]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of sequences to the longest: input_ids, attention_mask, word_starts, each (B, T)."""
    T = max(len(item["input_ids"]) for item in items)
    ids = np.full((len(items), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(items), T), dtype=np.int64)
    words = np.ones((len(items), T), dtype=np.uint8)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n], mask[row, :n], words[row, :n] = item["input_ids"], 1, item["word_starts"]
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "word_starts": torch.from_numpy(words)}


class MaskedOnce(Dataset):
    """`base` with masks drawn once per sequence from (seed, index): every call returns the same corrupted
    sequence, so held-out losses of different steps are measured on the same predictions."""

    def __init__(self, base: Dataset, masker: MLMMasker, seed: int):
        self.base, self.masker, self.seed = base, masker, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        item = self.base[i]
        ids = torch.from_numpy(item["input_ids"])[None]  # (1, T)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        corrupted, positions, labels = self.masker(ids, torch.ones_like(ids),
                                                   torch.from_numpy(item["word_starts"])[None], generator)
        return {"input_ids": corrupted[0].numpy(), "word_starts": item["word_starts"],
                "masked_positions": positions.numpy(), "labels": labels.numpy()}


class MLMCollator:
    """Pad a list of sequences and mask them afresh from the torch RNG (dynamic masking). Items that are
    already masked (from `MaskedOnce`) keep their masks.

    Returns {"input_ids", "attention_mask": (B, T), "masked_positions": (N,) flat into B*T, "labels": (N,)}.
    """

    def __init__(self, masker: MLMMasker, pad_id: int):
        self.masker, self.pad_id = masker, pad_id

    def __call__(self, items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        batch = pad_items(items, self.pad_id)
        if "labels" in items[0]:
            T = batch["input_ids"].shape[1]
            positions = torch.from_numpy(np.concatenate([row * T + item["masked_positions"]
                                                         for row, item in enumerate(items)]))
            labels = torch.from_numpy(np.concatenate([item["labels"] for item in items]))
            ids = batch["input_ids"]
        else:
            ids, positions, labels = self.masker(batch["input_ids"], batch["attention_mask"], batch["word_starts"])
        return {"input_ids": ids, "attention_mask": batch["attention_mask"], "masked_positions": positions,
                "labels": labels}
