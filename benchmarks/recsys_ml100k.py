"""The MovieLens-100K tables of docs/recommendation.md: every model and baseline per protocol, on the same splits.

    python benchmarks/recsys_ml100k.py                    # runs what is missing under runs/recsys, prints tables
    python benchmarks/recsys_ml100k.py --runs DIR --only rating

Each row comes from one run's metrics.json (a run is `encoderlab recommend --config ... out_dir=...`; the
command is printed under each table). Finished runs are reused, so the tables can be rebuilt without
retraining. Baselines are scored inside the same runs, on the same splits.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SEEDS = (0, 1, 2)
TOP_N = ("recall@20", "recall@50", "ndcg@10", "ndcg@100", "coverage@20")
RUNS = {  # name -> (config, overrides)
    **{f"multvae-strong-s{s}": ("configs/ml100k-multvae.yaml", [f"split_seed={s}"]) for s in SEEDS},
    **{f"multdae-strong-s{s}": ("configs/ml100k-multdae.yaml", [f"split_seed={s}", "model.hidden_dim=600"])
       for s in SEEDS},
    **{f"two-tower-strong-s{s}": ("configs/ml100k-two-tower-cold.yaml", ["protocol=strong", f"split_seed={s}"])
       for s in SEEDS},
    "multvae-llo": ("configs/ml100k-multvae.yaml", ["protocol=leave-last-out"]),
    "multdae-llo": ("configs/ml100k-multdae.yaml", ["protocol=leave-last-out", "model.hidden_dim=600"]),
    "multdae-shallow-llo": ("configs/ml100k-multdae.yaml", ["protocol=leave-last-out", "model.hidden_dim=0"]),
    "autorec-rating": ("configs/ml100k-autorec.yaml", []),
    "uautorec-rating": ("configs/ml100k-autorec.yaml", ["model.autorec_side=user", "baselines=false"]),
    "two-tower-cold": ("configs/ml100k-two-tower-cold.yaml", []),
    "two-tower-cold-words": ("configs/ml100k-two-tower-cold.yaml", ["title=words"]),
}


def command(name: str, runs: Path) -> str:
    config, overrides = RUNS[name]
    return " ".join(["encoderlab recommend --config", config, *overrides, f"out_dir={runs / name}"])


def metrics(name: str, runs: Path) -> dict:
    path = runs / name / "metrics.json"
    if not path.is_file():
        from encoderlab.tasks.recommend import RecommendConfig, train_recommender
        from encoderlab.training import run_task

        config, overrides = RUNS[name]
        run_task(train_recommender, RecommendConfig, config, [*overrides, f"out_dir={runs / name}", "progress=off"])
    return json.loads(path.read_text())


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def top_n_table(rows: list[tuple[str, list[dict], str]]) -> str:
    lines = ["| model | " + " | ".join(TOP_N) + " |", "|---|" + "---:|" * len(TOP_N)]
    for label, runs, prefix in rows:
        lines.append(f"| {label} | " + " | ".join(cell([r[f"{prefix}test_{m}"] for r in runs]) for m in TOP_N) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/recsys"))
    parser.add_argument("--only", choices=("strong", "llo", "cold", "rating"), nargs="*")
    args = parser.parse_args()
    want = set(args.only or ("strong", "llo", "cold", "rating"))
    runs = args.runs

    if "strong" in want:
        vae = [metrics(f"multvae-strong-s{s}", runs) for s in SEEDS]
        dae = [metrics(f"multdae-strong-s{s}", runs) for s in SEEDS]
        print(f"### Strong generalisation (held-out users), mean ± std over split seeds {SEEDS}\n")
        towers = [metrics(f"two-tower-strong-s{s}", runs) for s in SEEDS]
        print(top_n_table([("Mult-VAE", vae, ""), ("Mult-DAE", dae, ""), ("two-tower (MiniLM titles)", towers, ""),
                           ("EASE", vae, "ease_"), ("ItemKNN", vae, "itemknn_"), ("popularity", vae, "popularity_")]))
        print(f"\ntest users per split: {[r['test_users'] for r in vae]}; EASE lambda per split (chosen on "
              f"validation): {[r['ease_lambda'] for r in vae]}")
        for label, model in (("Mult-VAE", vae), ("Mult-DAE", dae)):
            for other, prefix in (("EASE", "ease_"), ("ItemKNN", "itemknn_")):
                diffs = [m["test_ndcg@100"] - r[f"{prefix}test_ndcg@100"] for m, r in zip(model, vae, strict=True)]
                print(f"NDCG@100 {label} - {other} per split: {', '.join(f'{d:+.3f}' for d in diffs)}")
        print()
        for s in SEEDS:
            print(f"    {command(f'multvae-strong-s{s}', runs)}\n    {command(f'multdae-strong-s{s}', runs)}\n"
                  f"    {command(f'two-tower-strong-s{s}', runs)}")
    if "llo" in want:
        vae, dae = metrics("multvae-llo", runs), metrics("multdae-llo", runs)
        shallow = metrics("multdae-shallow-llo", runs)
        print("\n### Leave-last-out (by time)\n")
        print(top_n_table([("Mult-VAE", [vae], ""), ("Mult-DAE", [dae], ""),
                           ("Mult-DAE [I -> 200 -> I]", [shallow], ""), ("EASE", [vae], "ease_"),
                           ("ItemKNN", [vae], "itemknn_"), ("popularity", [vae], "popularity_")]))
        print(f"\ntest users: {vae['test_users']}; EASE lambda: {vae['ease_lambda']}\n")
        print(f"    {command('multvae-llo', runs)}\n    {command('multdae-llo', runs)}\n"
              f"    {command('multdae-shallow-llo', runs)}")
    if "cold" in want:
        tt, words = metrics("two-tower-cold", runs), metrics("two-tower-cold-words", runs)
        print("\n### Cold-start items (ranked among the held-out test items only)\n")
        print(top_n_table([("two-tower, MiniLM titles", [tt], ""), ("two-tower, title words", [words], ""),
                           ("content kNN (features only)", [tt], "content_knn_"),
                           ("feature popularity", [tt], "feature_popularity_"),
                           ("popularity (all 0: one fixed random order)", [tt], "popularity_"),
                           ("random (a new order per user)", [tt], "random_")]))
        print(f"\ntest users: {tt['test_users']}\n")
        print(f"    {command('two-tower-cold', runs)}\n    {command('two-tower-cold-words', runs)}")
    if "rating" in want:
        ar, user = metrics("autorec-rating", runs), metrics("uautorec-rating", runs)
        print("\n### Rating prediction (random 80/10/10 split of the ratings)\n")
        print("| model | test RMSE | test MAE |\n|---|---:|---:|")
        print(f"| I-AutoRec | {ar['test_rmse']:.4f} | {ar['test_mae']:.4f} |")
        print(f"| U-AutoRec | {user['test_rmse']:.4f} | {user['test_mae']:.4f} |")
        print(f"| biased MF (ALS) | {ar['biased_mf_test_rmse']:.4f} | {ar['biased_mf_test_mae']:.4f} |")
        print(f"| global mean | {ar['global_mean_test_rmse']:.4f} | |")
        print(f"\ntest ratings: {ar['test_ratings']}\n\n    {command('autorec-rating', runs)}\n"
              f"    {command('uautorec-rating', runs)}")


if __name__ == "__main__":
    main()
