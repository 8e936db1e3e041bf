"""A thin layer over the `tokenizers` library: load a checkpoint's tokenizer and turn texts into padded
id/mask tensors.

`tokenizer.json` is read as is (the same file Hugging Face's fast tokenizers read, so ids are identical);
a checkpoint with only `vocab.txt` gets a BERT WordPiece tokenizer built from it with the casing that its
`tokenizer_config.json` declares. Truncation and padding are ours to set per call, not the file's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from .errors import CheckpointError
from .io import atomic_write_bytes, atomic_write_text

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


@dataclass
class Batch:
    """Token ids, attention mask (1 = real token) and segment ids, each (B, T) int64."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor


class TextTokenizer:
    """Wraps a `tokenizers.Tokenizer`; turns texts into `Batch`es padded to the longest text in the batch."""

    def __init__(self, tokenizer: Tokenizer, pad_token: str = "[PAD]", source: Path | None = None):
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        pad_id = tokenizer.token_to_id(pad_token)
        self.pad_id = 0 if pad_id is None else pad_id
        self.source = source

    @classmethod
    def from_dir(cls, directory: str | Path) -> TextTokenizer:
        directory = Path(directory)
        tok_config = {}
        if (directory / "tokenizer_config.json").is_file():
            tok_config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad_token = tok_config.get("pad_token", "[PAD]")
        if isinstance(pad_token, dict):  # older files store AddedToken dicts
            pad_token = pad_token.get("content", "[PAD]")
        if (directory / "tokenizer.json").is_file():
            try:
                tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            except Exception as exc:  # the Rust error type is not importable; report it with the file
                raise CheckpointError(f"cannot read {str(directory / 'tokenizer.json')!r}: {exc}") from exc
        elif (directory / "vocab.txt").is_file():
            tokenizer = BertWordPieceTokenizer(
                str(directory / "vocab.txt"),
                lowercase=bool(tok_config.get("do_lower_case", True)),
                strip_accents=tok_config.get("strip_accents"),
                handle_chinese_chars=bool(tok_config.get("tokenize_chinese_chars", True)),
            )._tokenizer
        else:
            raise CheckpointError(
                f"{str(directory)!r} has no tokenizer: expected tokenizer.json or vocab.txt next to config.json"
            )
        return cls(tokenizer, pad_token=pad_token, source=directory)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode_ids(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Token ids with special tokens, truncated to `max_length` (special tokens included)."""
        self.tokenizer.enable_truncation(max_length=max_length)
        try:
            return [enc.ids for enc in self.tokenizer.encode_batch(texts)]
        finally:
            self.tokenizer.no_truncation()

    def pad(self, ids: list[list[int]]) -> Batch:
        """Right-pad a list of id sequences to the longest one."""
        T = max((len(seq) for seq in ids), default=0)
        input_ids = np.full((len(ids), T), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), T), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        input_ids_t = torch.from_numpy(input_ids)
        return Batch(input_ids_t, torch.from_numpy(mask), torch.zeros_like(input_ids_t))

    def __call__(self, texts: list[str], max_length: int) -> Batch:
        return self.pad(self.encode_ids(texts, max_length))

    def save(self, directory: str | Path) -> None:
        """Copy the tokenizer files this tokenizer came from (or write tokenizer.json) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        copied = False
        if self.source is not None:
            for name in TOKENIZER_FILES:
                src = self.source / name
                if src.is_file() and src.resolve() != (directory / name).resolve():
                    atomic_write_bytes(directory / name, src.read_bytes())
                    copied = copied or name in ("tokenizer.json", "vocab.txt")
        if not copied:
            atomic_write_text(directory / "tokenizer.json", self.tokenizer.to_str())
