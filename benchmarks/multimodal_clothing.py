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

from encoderlab.evaluation.multimodal import paired_bootstrap, probability_metrics, stacked_fusion  # noqa: E402
from encoderlab.tasks.multimodal import MultimodalConfig, train_multimodal  # noqa: E402
from encoderlab.training import run_task  # noqa: E402

CONFIG = ROOT / "configs" / "multimodal-clothing.yaml"
FULL_CONFIG = ROOT / "configs" / "multimodal-clothing-full.yaml"
LABELS = {"recommended": "Recommended IND", "rating": "Rating"}
MODES = ("tabular", "text", "late", "gated", "early")


FULL_MODES = ("text", "late", "gated")  # on all training rows: text-only and the two best fusions of the 2,000-row runs


def runs(out: Path, full: bool = False) -> list[tuple[Path, Path, list[str]]]:
    """(config, run directory, overrides) of every run, in the order they run."""
    plan = []
    if not full:
        for short, column in LABELS.items():
            for mode in MODES:
                plan.append((CONFIG, out / f"{short}-{mode}", [
                    f"label_column={column}", f"model.mode={mode}",
                    f"baselines={'true' if mode == 'tabular' else 'false'}"]))
    for short, column in LABELS.items():  # the baselines on all 18k training rows (and the tabular model)
        plan.append((CONFIG, out / f"{short}-tabular-full", [f"label_column={column}", "model.mode=tabular",
                                                             "train_limit=null", "baselines=true"]))
    if full:
        for short, column in LABELS.items():
            for mode in FULL_MODES:
                plan.append((FULL_CONFIG, out / f"{short}-{mode}-full", [f"label_column={column}",
                                                                         f"model.mode={mode}"]))
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


def validation_outputs(run_dir: Path):
    """The run's model on its WHOLE validation split (the run itself watched a sample) -> (rows, probabilities);
    cached in val_probabilities.npy."""
    import dataclasses

    from encoderlab.artifacts.multimodal import MultimodalClassifier
    from encoderlab.config import load_config
    from encoderlab.files import atomic_save_npy
    from encoderlab.tasks.multimodal import prepare_data

    cfg = load_config(MultimodalConfig, run_dir / "config.yaml")
    val = prepare_data(dataclasses.replace(cfg, val_limit=None, eval_limit=None)).val
    path = run_dir / "val_probabilities.npy"
    if not path.is_file():
        atomic_save_npy(path, MultimodalClassifier.from_dir(run_dir).predict_proba(val))
    return val, np.load(path)


def full_table(out: Path, short: str) -> str:
    """Everything trained on all training rows, against the best full-data baseline (the highest macro-F1)
    and against text-only, paired on the same test rows (95 % bootstrap, 1,000 resamples). Stacked rows:
    boosted trees fitted on the validation split over the text model's log-probabilities with, or without,
    the tabular columns."""
    import dataclasses

    from encoderlab.config import load_config
    from encoderlab.tasks.multimodal import prepare_data

    text_dir, base_dir = out / f"{short}-text-full", out / f"{short}-tabular-full"
    if not (text_dir / "metrics.json").is_file() or not (base_dir / "metrics.json").is_file():
        return "(needs the text-full and tabular-full runs)"
    m_text = json.loads((text_dir / "metrics.json").read_text())
    labels, names = np.load(text_dir / "test_labels.npy"), m_text["classes"]
    entries: list[tuple[str, np.ndarray]] = [("text", np.load(text_dir / "test_probabilities.npy"))]
    for mode in ("late", "gated"):
        fused = out / f"{short}-{mode}-full" / "test_probabilities.npy"
        if fused.is_file():
            entries.append((f"{mode} fusion", np.load(fused)))
    val, val_probs = validation_outputs(text_dir)
    cfg = load_config(MultimodalConfig, text_dir / "config.yaml")
    test = prepare_data(dataclasses.replace(cfg, val_limit=None)).test
    for name, use_columns in (("stacked: text model + columns (GBT on validation)", True),
                              ("stacked: text model alone (same GBT, no columns)", False)):
        entries.append((name, stacked_fusion(val, val_probs, test, entries[0][1], seed=0, use_columns=use_columns)))
    wd = out / f"{short}-widedeep" / "test_probabilities.npy"
    if wd.is_file():
        entries.append(("pytorch-widedeep Wide & Deep (text + tab)", np.load(wd)))
    baselines = json.loads((base_dir / "metrics.json").read_text())["baselines"]
    for name in baselines:
        entries.append((f"baseline: {name}", np.load(base_dir / f"test_probabilities_{name}.npy")))
    best_name = max(baselines, key=lambda n: baselines[n]["macro_f1"])
    best = np.load(base_dir / f"test_probabilities_{best_name}.npy")

    def delta(reference: np.ndarray, probs: np.ndarray, metric: str) -> str:
        d = paired_bootstrap(labels, reference, probs, names, metric)
        return f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"

    lines = [f"| model (all {m_text['train_rows_used']:,} training rows) | accuracy | macro-F1 | AUROC | "
             f"Δ accuracy vs {best_name} [95 % CI] | Δ macro-F1 vs {best_name} [95 % CI] | "
             "Δ macro-F1 vs text [95 % CI] |", "|---|---|---|---|---|---|---|"]
    for name, probs in entries:
        m = probability_metrics(labels, probs, names)
        vs_best = ["", ""] if name == f"baseline: {best_name}" else [delta(best, probs, k)
                                                                   for k in ("accuracy", "macro_f1")]
        vs_text = "" if name == "text" else delta(entries[0][1], probs, "macro_f1")
        lines.append(f"| {name} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['auroc']:.4f} | "
                     f"{vs_best[0]} | {vs_best[1]} | {vs_text} |")
    cpu = {k: v for k, v in m_text.items() if "cpu" in k or "seconds" in k}
    return "\n".join(lines) + f"\n\ntext-full run: {cpu}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "runs" / "mm-clothing"))
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--runs", default="", help="only these runs (comma-separated directory names)")
    parser.add_argument("--full", action="store_true", help="the runs on all training rows "
                        "(configs/multimodal-clothing-full.yaml) and their table against the best baseline")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.table_only:
        for config, run_dir, overrides in runs(out, args.full):
            if (run_dir / "metrics.json").is_file() or (args.runs and run_dir.name not in args.runs.split(",")):
                continue
            print(f"== {run_dir.name}", flush=True)
            run_task(train_multimodal, MultimodalConfig, config, [*overrides, f"out_dir={run_dir}", "progress=lines"])
    for short in LABELS:
        print(f"\n### {short}\n\n{full_table(out, short) if args.full else table(out, short)}")


if __name__ == "__main__":
    main()
