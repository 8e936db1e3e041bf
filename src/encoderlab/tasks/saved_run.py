"""Which rows to score a saved model on: the decision `encoderlab evaluate` and `robustness` share across kinds.

    chosen = rows_to_score("runs/clips", AudioClassifier, AudioConfig, "an audio classifier", data=None)
    chosen.model, chosen.config        # the loaded model, and its run's config (None outside a run)
    chosen.data, chosen.split          # e.g. ("asterisk-prompts", "test"): the run's own held-out split

split=auto means the run's own held-out test split when `data` is its training data (or not given), and every
row of `data` otherwise; train / validation / test repeat the run's split, which needs the run's config.yaml
and its training data; all scores every row of `data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ..artifacts.registry import identify
from ..artifacts.runs import run_config
from ..config import from_dict
from ..data.references import same_data
from ..errors import InputDataError

M = TypeVar("M")
C = TypeVar("C")
SPLITS = ("auto", "train", "validation", "test", "all")


@dataclass
class RowsToScore(Generic[M, C]):
    model: M
    config: C | None
    """The run's config (from its config.yaml), or None for a saved model outside a run."""
    data: str
    split: str
    """train / validation / test (the run's own split of `data`) or all."""


def rows_to_score(model: str | Path, loaded: type[M], config: type[C], what: str, data: str | None = None,
                  split: str = "auto", splits: tuple[str, ...] = SPLITS, default_data: str = "",
                  data_hint: str = "") -> RowsToScore[M, C]:
    """Load `model` (refusing another kind: it is not `what`), its run's config, and decide the data and split."""
    if split not in splits:
        raise InputDataError(f"--split {split!r} is unknown here; choose {', '.join(splits)}")
    found = identify(model)
    model_obj = found.kind.load(found.directory)
    if not isinstance(model_obj, loaded):
        raise InputDataError(f"{model} is a {found.kind.name}, not {what}")
    saved = run_config(found.directory)
    cfg = from_dict(config, saved) if saved is not None else None
    run_data: str = getattr(cfg, "data", "") if cfg is not None else ""
    data = data or run_data or default_data
    if not data:
        raise InputDataError(f"{model}: say which data to score it on with --data ({data_hint})")
    own = bool(run_data) and same_data(data, run_data)
    split = ("test" if own else "all") if split == "auto" else split
    if split != "all" and not own:
        why = "has no config.yaml next to it" if cfg is None else f"was trained on {run_data!r}"
        raise InputDataError(f"--split {split} repeats the run's own split of its training data, and {model} {why}; "
                             f"use --split all to score every row of {data!r}")
    return RowsToScore(model_obj, cfg, data, split)


def data_name(data: str) -> str:
    """A file name's stem, or a dataset / folder name: how evaluation files are named."""
    return Path(data).stem if Path(data).suffix else Path(data).name

