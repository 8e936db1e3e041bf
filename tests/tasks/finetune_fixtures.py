"""Shared by the fine-tuning tests: a tiny BERT checkpoint (2 layers, d_model 32) with minilm's tokenizer,
and small slices of real catalog data written as user files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from encoderlab.interop.hf_bert import save_hf_bert
from encoderlab.models.bert import BertConfig, BertModel
from encoderlab.tokenization import TextTokenizer


def write_tiny_encoder(directory: Path, tokenizer_dir: Path, max_positions: int = 64) -> Path:
    torch.manual_seed(0)
    tokenizer = TextTokenizer.from_dir(tokenizer_dir)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                     max_positions=max_positions)
    save_hf_bert(BertModel(cfg), directory)
    tokenizer.save(directory)
    return directory


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def tweet_rows(n: int) -> list[tuple[str, str]]:
    """n tweets of the catalog's training split (a fixed random draw: the file is grouped by label), as
    (text, label name)."""
    import numpy as np

    from encoderlab.data.catalog import load_dataset

    train = load_dataset("tweets-sentiment").train
    rows = np.random.default_rng(0).permutation(len(train))[:n]
    return [(train.texts[i], train.label_names[train.labels[i]]) for i in rows]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP threads spinning against each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def run_cli(*args: str) -> int | None:
    """`encoderlab ARGS` in-process; its exit code (0 on success, 2 for a user error)."""
    from encoderlab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code
