"""A real, tiny training task for the Trainer tests: an MLP classifying Fisher's Iris flowers.

tests/data/iris.csv is the classic 150-row table (Fisher 1936, public domain), copied from the copy that
ships with scikit-learn. Every 5th row is held out for validation (the file is sorted by species, so the
split is stratified: 120 train / 30 val). Run as a script it is a complete `run_task` command, which the
kill-and-resume and torchrun tests launch in subprocesses:

    python tests/training/iris_task.py --config cfg.yaml out_dir=/tmp/run max_steps=50 [--resume DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoderlab.errors import EncoderlabError
from encoderlab.training import TrainConfig, Trainer, run_task
from encoderlab.training.seeding import seed_everything

IRIS_CSV = Path(__file__).resolve().parents[1] / "data" / "iris.csv"
SPECIES = ("setosa", "versicolor", "virginica")


@dataclass
class IrisConfig(TrainConfig):
    hidden: int = 32
    """Width of the MLP's hidden layer."""
    dropout: float = 0.1
    """Dropout after the hidden layer (exercises the torch RNG on resume)."""
    noise: float = 0.05
    """Std of Gaussian feature noise added in collate (exercises the NumPy RNG on resume)."""
    sleep_per_step: float = 0.0
    """Seconds to sleep in each loss call, so a test can kill the run mid-way."""
    nan_every: int = 0
    """Replace the features of every N-th training row by NaN (0 = clean data)."""


def load_iris() -> tuple[torch.Tensor, torch.Tensor]:
    """(features (150, 4) float32, labels (150,) int64) in file order."""
    with IRIS_CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = torch.tensor([[float(r[k]) for k in list(r)[:4]] for r in rows], dtype=torch.float32)
    labels = torch.tensor([SPECIES.index(r["species"]) for r in rows])
    return features, labels


def iris_splits(nan_every: int = 0) -> tuple[list, list]:
    """Standardised (train, val) lists of (features, label) pairs; val = every 5th row."""
    x, y = load_iris()
    is_val = torch.arange(len(x)) % 5 == 4
    mean, std = x[~is_val].mean(0), x[~is_val].std(0)
    x = (x - mean) / std
    train = [(x[i], int(y[i])) for i in range(len(x)) if not is_val[i]]
    if nan_every:
        train = [(torch.full_like(f, float("nan")) if i % nan_every == 0 else f, c)
                 for i, (f, c) in enumerate(train)]
    val = [(x[i], int(y[i])) for i in range(len(x)) if is_val[i]]
    return train, val


class IrisMLP(nn.Module):
    def __init__(self, hidden: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.inp = nn.Linear(4, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, len(SPECIES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 4) -> (B, 3) logits
        return self.out(self.drop(F.gelu(self.norm(self.inp(x)))))


def make_collate(noise: float):
    def collate(items: list) -> dict[str, torch.Tensor]:
        x = torch.stack([f for f, _ in items])  # (B, 4)
        if noise:
            x = x + torch.from_numpy(np.random.normal(0.0, noise, size=tuple(x.shape)).astype(np.float32))
        return {"x": x, "y": torch.tensor([c for _, c in items])}
    return collate


def make_loss_fn(sleep: float = 0.0):
    def loss_fn(model: nn.Module, batch: dict) -> tuple[torch.Tensor, int]:
        if sleep:
            time.sleep(sleep)
        return F.cross_entropy(model(batch["x"]), batch["y"]), len(batch["y"])
    return loss_fn


def eval_fn(model: nn.Module, batch: dict) -> dict:
    logits = model(batch["x"])
    n = len(batch["y"])
    return {"loss": (F.cross_entropy(logits, batch["y"]), n),
            "accuracy": ((logits.argmax(-1) == batch["y"]).float().mean(), n)}


def make_trainer(cfg: IrisConfig) -> Trainer:
    train, val = iris_splits(cfg.nan_every)
    seed_everything(cfg.seed)  # run_task does this too; tests also build trainers directly
    model = IrisMLP(cfg.hidden, cfg.dropout)
    return Trainer(cfg, model, train, loss_fn=make_loss_fn(cfg.sleep_per_step), collate_fn=make_collate(cfg.noise),
                   eval_data=val, eval_fn=eval_fn)


def train_iris(cfg: IrisConfig) -> dict:
    return make_trainer(cfg).fit().metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--resume")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    try:
        print(run_task(train_iris, IrisConfig, args.config, args.overrides, args.resume))
    except EncoderlabError as exc:  # as the `encoderlab` command reports it: one line, exit code 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
