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
        plan.append((short, out / f"{short}-tabular-full", [f"label_column={column}", "model.mode=tabular",
                                                            "train_limit=null", "baselines=true"]))
    return plan


def table(out: Path, short: str) -> str:
    lines = ["| model | train rows | accuracy | macro-F1 | AUROC |", "|---|---|---|---|---|"]

    def row(name: str, rows: int, m: dict) -> None:
        lines.append(f"| {name} | {rows:,} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['auroc']:.4f} |")

    for mode in MODES:
        path = out / f"{short}-{mode}" / "metrics.json"
        if path.is_file():
            m = json.loads(path.read_text())
            row(f"{mode}" if mode in ("text", "tabular") else f"{mode} fusion", m["train_rows_used"],
                {k: m[f"test_{k}"] for k in ("accuracy", "macro_f1", "auroc")})
    for suffix in ("tabular", "tabular-full"):
        path = out / f"{short}-{suffix}" / "metrics.json"
        if path.is_file():
            m = json.loads(path.read_text())
            if suffix == "tabular-full":
                row("tabular (full training split)", m["train_rows_used"],
                    {k: m[f"test_{k}"] for k in ("accuracy", "macro_f1", "auroc")})
            for name, b in m["baselines"].items():
                row(f"baseline: {name}", m["train_rows_used"], b)
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
