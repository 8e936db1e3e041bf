"""Autoencoder anomaly detection vs scikit-learn's IsolationForest on the same splits.

    python benchmarks/autoencoder_anomaly.py                  # shuttle + MNIST one-class, all 10 digits
    python benchmarks/autoencoder_anomaly.py --only shuttle   # or --only mnist, --digits 0 1 2

Each autoencoder row is one `encoderlab autoencode` run (configs/shuttle-anomaly.yaml, or
configs/mnist-oneclass.yaml with normal_class=d); IsolationForest (200 trees, seed 0) is fitted on exactly
the rows the autoencoder trained on (the normal training rows) and scored on the same test split, so the
two columns are a side-by-side comparison. Results go to OUT/anomaly.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest

from encoderlab.config import load_config
from encoderlab.evaluation.anomaly import average_precision, roc_auc
from encoderlab.tasks.autoencode import AutoencodeConfig, prepare_data, train_autoencoder
from encoderlab.training import run_task

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def isolation_forest(cfg: AutoencodeConfig) -> dict[str, float]:
    data = prepare_data(cfg)
    forest = IsolationForest(n_estimators=200, random_state=0).fit(data.train.x.reshape(len(data.train), -1))
    scores = -forest.score_samples(data.test.x.reshape(len(data.test), -1))  # higher = more anomalous
    return {"auroc": roc_auc(data.test.y, scores), "ap": average_precision(data.test.y, scores)}


def one_run(config: str, out_dir: Path, overrides: list[str]) -> dict[str, float]:
    args = [f"out_dir={out_dir}", "progress=off", *overrides]
    metrics_file = out_dir / "metrics.json"
    if metrics_file.exists():  # re-running the benchmark reuses finished runs
        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = run_task(train_autoencoder, AutoencodeConfig, CONFIGS / config, args)
    forest = isolation_forest(load_config(AutoencodeConfig, CONFIGS / config, args))
    return {"ae_auroc": metrics["test_auroc"], "ae_ap": metrics["test_ap"],
            "if_auroc": forest["auroc"], "if_ap": forest["ap"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench-anomaly")
    parser.add_argument("--only", choices=["shuttle", "mnist"])
    parser.add_argument("--digits", type=int, nargs="*", default=list(range(10)))
    args = parser.parse_args()
    out = Path(args.out)
    results: dict[str, dict[str, float]] = {}
    if args.only in (None, "shuttle"):
        results["shuttle"] = one_run("shuttle-anomaly.yaml", out / "shuttle", [])
    if args.only in (None, "mnist"):
        for digit in args.digits:
            results[f"mnist-{digit}"] = one_run("mnist-oneclass.yaml", out / f"mnist-{digit}",
                                                [f"normal_class={digit}"])
        digits = [results[f"mnist-{d}"] for d in args.digits]
        results["mnist-mean"] = {k: float(np.mean([r[k] for r in digits])) for k in digits[0]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "anomaly.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| data | AE AUROC | IsolationForest AUROC | AE AP | IsolationForest AP |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['ae_auroc']:.4f} | {r['if_auroc']:.4f} | {r['ae_ap']:.4f} | {r['if_ap']:.4f} |")


if __name__ == "__main__":
    main()
