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
