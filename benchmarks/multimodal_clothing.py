"""Clothing reviews, text + tabular: every fusion mode and the baselines on one split, one table per label.

    python benchmarks/multimodal_clothing.py                 # runs into runs/mm-clothing/, prints the tables
    python benchmarks/multimodal_clothing.py --table-only    # only print the tables of finished runs

Every neural run: configs/multimodal-clothing.yaml (minilm text side, a seeded 2,000-row training sample,
1 epoch, 64 tokens, 1 thread), scored on the full test split (10 % of the 22,642 rows with text). The
baselines are fitted on the same 2,000 rows, and once more on the full training split (18,114 rows). A finished run
(its metrics.json exists) is not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from encoderlab.evaluation.multimodal import paired_bootstrap  # noqa: E402
from encoderlab.tasks.multimodal import MultimodalConfig, train_multimodal  # noqa: E402
from encoderlab.training import run_task  # noqa: E402

CONFIG = ROOT / "configs" / "multimodal-clothing.yaml"
LABELS = {"recommended": "Recommended IND", "rating": "Rating"}
MODES = ("tabular", "text", "late", "gated", "early")


def runs(out: Path) -> list[tuple[str, Path, list[str]]]:
    plan = []
    for short, column in LABELS.items():
        for mode in MODES:
            plan.append((short, out / f"{short}-{mode}", [f"label_column={column}", f"model.mode={mode}",
                                                          f"baselines={'true' if mode == 'tabular' else 'false'}"]))
    for short, column in LABELS.items():  # the full-data runs last: the baselines on 18k rows are slow
        plan.append((short, out / f"{short}-tabular-full", [f"label_column={column}", "model.mode=tabular",
                                                            "train_limit=null", "baselines=true"]))
    return plan


def test_probabilities(run_dir: Path) -> np.ndarray | None:
    """The run's test probabilities; runs from before they were saved are predicted again from final/."""
    path = run_dir / "test_probabilities.npy"
    if not path.is_file() and (run_dir / "final").is_dir():
        from encoderlab.artifacts.multimodal import MultimodalClassifier
        from encoderlab.config import load_config
        from encoderlab.files import atomic_save_npy
        from encoderlab.tasks.multimodal import prepare_data

        data = prepare_data(load_config(MultimodalConfig, run_dir / "config.yaml"))
        atomic_save_npy(path, MultimodalClassifier.from_dir(run_dir).predict_proba(data.test))
        atomic_save_npy(run_dir / "test_labels.npy", data.test.labels)
    return np.load(path) if path.is_file() else None


def table(out: Path, short: str) -> str:
    """Test metrics of every finished run; for the neural runs also the paired difference to text-only in
    accuracy and macro-F1 with a 95 % bootstrap interval (1,000 resamples of the test rows)."""
    lines = ["| model | train rows | accuracy | macro-F1 | AUROC | Δ accuracy vs text [95 % CI] | "
             "Δ macro-F1 vs text [95 % CI] |", "|---|---|---|---|---|---|---|"]
    text_dir = out / f"{short}-text"
    reference = test_probabilities(text_dir) if (text_dir / "metrics.json").is_file() else None

    def row(name: str, rows: int, m: dict, probs: np.ndarray | None = None, labels=None, names=None) -> None:
        deltas = ["", ""]
        if probs is not None and reference is not None and name != "text":
            deltas = [(lambda d: f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")(
                paired_bootstrap(labels, reference, probs, names, metric)) for metric in ("accuracy", "macro_f1")]
        lines.append(f"| {name} | {rows:,} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['auroc']:.4f} | "
                     f"{deltas[0]} | {deltas[1]} |")

    for mode in MODES:
        run_dir = out / f"{short}-{mode}"
        if (run_dir / "metrics.json").is_file():
            m = json.loads((run_dir / "metrics.json").read_text())
            labels = np.load(run_dir / "test_labels.npy") if test_probabilities(run_dir) is not None else None
            row(f"{mode}" if mode in ("text", "tabular") else f"{mode} fusion", m["train_rows_used"],
                {k: m[f"test_{k}"] for k in ("accuracy", "macro_f1", "auroc")}, test_probabilities(run_dir),
                labels, m["classes"])
    for suffix in ("tabular", "tabular-full"):
        path = out / f"{short}-{suffix}" / "metrics.json"
        if path.is_file():
            m = json.loads(path.read_text())
            if suffix == "tabular-full":
                row("tabular (full training split)", m["train_rows_used"],
                    {k: m[f"test_{k}"] for k in ("accuracy", "macro_f1", "auroc")})
            run_dir = path.parent
            for name, b in m["baselines"].items():
                probs_file = run_dir / f"test_probabilities_{name}.npy"
                probs = np.load(probs_file) if probs_file.is_file() else None
                labels = np.load(run_dir / "test_labels.npy") if probs is not None else None
                row(f"baseline: {name}", m["train_rows_used"], b, probs, labels, m["classes"])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "runs" / "mm-clothing"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.table_only:
        for _, run_dir, overrides in runs(out):
            if (run_dir / "metrics.json").is_file():
                continue
            print(f"== {run_dir.name}", flush=True)
            run_task(train_multimodal, MultimodalConfig, CONFIG, [*overrides, f"out_dir={run_dir}", "progress=lines"])
    for short in LABELS:
        print(f"\n### {short}\n\n{table(out, short)}")


if __name__ == "__main__":
    main()
