"""Run directories: where a run's saved model is, and which command wrote a run's config.

A training run's OUT_DIR holds config.yaml, log.jsonl, checkpoints/, metrics.json and, once it has finished,
final/ — the saved model. Every command that takes a model accepts either the run or its final/.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

FINAL_DIR = "final"
"""The saved model inside a run directory."""


def model_dir(path: str | Path, marker: str) -> Path | None:
    """Where a saved model is: `path` itself or the final/ directory of the run at `path`, whichever holds
    `marker` (a file that kind of model always writes, e.g. head.json); None if neither does."""
    path = Path(path).expanduser()
    return next((candidate for candidate in (path, path / FINAL_DIR) if (candidate / marker).is_file()), None)


def command_of(saved: Mapping[str, Any]) -> str | None:
    """The command of the pretrain / finetune pair that a config (a --config file or a run's config.yaml) is
    for: finetune configs name their task, pretrain configs have MLM keys; None for any other."""
    if "task" in saved:
        return "finetune"
    return "pretrain" if "mask_prob" in saved or "tokenizer" in saved else None


def run_config(model_directory: str | Path) -> dict[str, Any] | None:
    """The config.yaml of the run whose final/ is `model_directory` (what it was trained on, how it was split),
    or None for a saved model outside a run (copied elsewhere, or written by `save`)."""
    from ..config import read_yaml

    path = Path(model_directory)
    saved = path.parent / "config.yaml"
    return read_yaml(saved) if path.name == FINAL_DIR and saved.is_file() else None


def evaluations_dir(model: str | Path) -> Path:
    """Where a model's evaluations go by default: its run's evaluations/ (where `encoderlab report` looks),
    also when the model is given as the run's final/."""
    path = Path(model)
    return (path.parent if path.name == FINAL_DIR else path) / "evaluations"
