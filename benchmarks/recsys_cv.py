"""Is Mult-VAE / Mult-DAE level with EASE on MovieLens-100K? 5-fold cross-validation over users (#17).

    python benchmarks/recsys_cv.py                      # runs what is missing under runs/recsys-cv, prints tables
    python benchmarks/recsys_cv.py --threshold all      # implicit data = every rating instead of ratings >= 4
    python benchmarks/recsys_cv.py --runs DIR --folds 0 1   # only some folds (e.g. to spread the work)
    python benchmarks/recsys_cv.py --grid dae vae           # only some settings of the GRID

The protocol (`encoderlab recommend ... protocol=strong folds=5 fold=F`): the users with 5+ positives are
shuffled once and cut into 5 folds; each fold is the test users once, scored from 80% of their positives
(fold-in) on the other 20%. Validation users (10% of all users) are carved from the other four folds, and
every choice is made on them, per fold, never on test users: the epoch (validation NDCG@100 every epoch, the
best epoch's weights kept), the autoencoders' settings (the GRID below: weight decay, input dropout, depth, KL cap),
EASE's lambda and ItemKNN's k. Every model and baseline sees the same folds, the same training users and
the same fold-ins, so they are compared per fold and per user: the paired t-test and the bootstrap interval
of the per-user NDCG@100 difference pool the five folds' test users (each user once).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from encoderlab.evaluation.recommendation import paired_difference
from recsys_ml100k import cell  # the sibling script (benchmarks/ is on sys.path when this one runs)

FOLDS = 5
EPOCH_STEPS = 6  # 656 training users per fold / batch 100, rounded down: validation once per epoch
DAE, VAE = "configs/ml100k-multdae-cv.yaml", "configs/ml100k-multvae-cv.yaml"  # folds, grids of EASE and ItemKNN
GRID = {  # name -> (model, config, overrides); chosen per fold by validation NDCG@100
    "dae": ("Mult-DAE", DAE, []),
    "dae-wd0.3": ("Mult-DAE", DAE, ["weight_decay=0.3"]),
    "dae-wd1": ("Mult-DAE", DAE, ["weight_decay=1.0"]),
    "dae-drop0.7": ("Mult-DAE", DAE, ["model.dropout=0.7"]),
    "dae-shallow": ("Mult-DAE", DAE, ["model.hidden_dim=0"]),  # [I -> 200 -> I], the DAE of Liang et al.'s code
    "vae": ("Mult-VAE", VAE, []),  # beta rises to 0.2 over the whole run
    **{f"vae-cap{cap}": ("Mult-VAE", VAE, [f"anneal_cap={cap}", f"anneal_steps={20 * EPOCH_STEPS}"])
       for cap in (0.1, 0.2, 0.5, 1.0)},  # beta reaches the cap after 20 epochs and stays
    "vae-shallow": ("Mult-VAE", VAE, ["model.hidden_dim=0", "anneal_cap=0.2", f"anneal_steps={20 * EPOCH_STEPS}"]),
    # the shallow models' best epochs were at or near the last of 100: let them run 200
    "dae-shallow-e200": ("Mult-DAE", DAE, ["model.hidden_dim=0", "epochs=200"]),
    "vae-shallow-e200": ("Mult-VAE", VAE, ["model.hidden_dim=0", "anneal_cap=0.2", f"anneal_steps={20 * EPOCH_STEPS}",
                                           "epochs=200"]),
}
BASELINE_RUN = "dae"  # the run of each fold that also scores the baselines (they do not depend on the model)
BASELINES = {"EASE": "ease", "ItemKNN": "itemknn", "popularity": "popularity"}
MODELS = ("Mult-DAE", "Mult-VAE")


def overrides(name: str, fold: int, threshold: str) -> list[str]:
    _, _, extra = GRID[name]
    data = ["threshold=null"] if threshold == "all" else []
    return [*extra, f"fold={fold}", *data, *([] if name == BASELINE_RUN else ["baselines=false"])]


def run_dir(runs: Path, name: str, fold: int, threshold: str) -> Path:
    return runs / f"{'all-' if threshold == 'all' else ''}{name}-f{fold}"


def command(name: str, fold: int, threshold: str, runs: Path) -> str:
    return " ".join(["encoderlab recommend --config", GRID[name][1], *overrides(name, fold, threshold),
                     f"out_dir={run_dir(runs, name, fold, threshold)}"])


def load(name: str, fold: int, threshold: str, runs: Path) -> tuple[dict, dict]:
    """(metrics.json, per_user.json) of one run, training it first if it is missing."""
    out = run_dir(runs, name, fold, threshold)
    if not (out / "per_user.json").is_file():
        from encoderlab.tasks.recommend import RecommendConfig, train_recommender
        from encoderlab.training import run_task

        run_task(train_recommender, RecommendConfig, GRID[name][1],
                 [*overrides(name, fold, threshold), f"out_dir={out}", "progress=off"])
    return json.loads((out / "metrics.json").read_text()), json.loads((out / "per_user.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/recsys-cv"))
    parser.add_argument("--threshold", choices=("4", "all"), default="4",
                        help="positives: ratings >= 4 (Liang et al.) or every rating; the same for every model")
    parser.add_argument("--folds", type=int, nargs="*", default=list(range(FOLDS)))
    parser.add_argument("--grid", nargs="*", choices=list(GRID), default=list(GRID),
                        help="only these settings (the per-fold choice is made among them)")
    args = parser.parse_args()
    runs, threshold, folds = args.runs, args.threshold, args.folds
    grid = {name: GRID[name] for name in args.grid}
    if BASELINE_RUN not in grid or {model for model, _, _ in grid.values()} != set(MODELS):
        parser.error(f"--grid needs {BASELINE_RUN} (it scores the baselines) and a setting of each of {MODELS}")

    runs_of = {(name, f): load(name, f, threshold, runs) for f in folds for name in grid}
    chosen = {(model, f): max((n for n in grid if grid[n][0] == model),  # the best validation NDCG@100 per fold
                              key=lambda n: runs_of[(n, f)][0]["best_eval_ndcg@100"])
              for model in MODELS for f in folds}
    base = [runs_of[(BASELINE_RUN, f)][0] for f in folds]

    print(f"### {len(folds)} of {FOLDS} folds over users, positives = "
          f"{'every rating' if threshold == 'all' else 'ratings >= 4'}; test NDCG@100 etc., mean ± std over folds\n")
    metrics = ("recall@20", "recall@50", "ndcg@10", "ndcg@100", "coverage@20")
    print("| model | " + " | ".join(metrics) + " |\n|---|" + "---:|" * len(metrics))
    rows = [(f"{m} (tuned per fold)", [runs_of[(chosen[(m, f)], f)][0] for f in folds], "") for m in MODELS]
    rows += [(label, base, f"{prefix}_") for label, prefix in BASELINES.items()]
    for label, ms, prefix in rows:
        print(f"| {label} | " + " | ".join(cell([r[f"{prefix}test_{m}"] for r in ms]) for m in metrics) + " |")
    print(f"\ntest users per fold: {[r['test_users'] for r in base]} (each user once: "
          f"{sum(r['test_users'] for r in base)}); training users per fold: {[r['split_train_users'] for r in base]}")
    print(f"chosen on validation per fold: EASE lambda {[r['ease_lambda'] for r in base]}, ItemKNN k "
          f"{[r['itemknn_k'] for r in base]}, " + ", ".join(f"{m} {[chosen[(m, f)] for f in folds]}" for m in MODELS))

    print("\nPaired NDCG@100 differences: per fold (test mean of the fold), and per user over all folds' test users "
          "(mean [95% bootstrap CI], paired t-test p, users ahead / behind):\n")
    print("| comparison | per fold | per user |\n|---|---|---|")
    for m in MODELS:
        for label, prefix in BASELINES.items():
            per_fold, a, b = [], [], []
            for f in folds:
                model_metrics, model_users = runs_of[(chosen[(m, f)], f)]
                base_metrics, base_users = runs_of[(BASELINE_RUN, f)]
                if model_users["users"] != base_users["users"]:
                    raise RuntimeError(f"fold {f}: the model's and the baselines' test users differ; rerun both")
                per_fold.append(model_metrics["test_ndcg@100"] - base_metrics[f"{prefix}_test_ndcg@100"])
                a += model_users["ndcg@100"]["model"]
                b += base_users["ndcg@100"][prefix]
            print(f"| {m} − {label} | {', '.join(f'{d:+.3f}' for d in per_fold)} | {paired_difference(a, b)} |")

    print("\nWhat each setting did (mean over folds; validation chose, test is shown for information only):\n")
    print("| run | settings | validation NDCG@100 | test NDCG@100 | best epoch per fold | chosen in folds |\n"
          "|---|---|---:|---:|---:|---|")
    for name, (model, _, extra) in grid.items():
        ms = [runs_of[(name, f)][0] for f in folds]
        picked = [f for f in folds if chosen[(model, f)] == name]
        print(f"| {name} | {model} {' '.join(extra) or '(config defaults)'} | "
              f"{cell([r['best_eval_ndcg@100'] for r in ms])} | {cell([r['test_ndcg@100'] for r in ms])} | "
              f"{' '.join(str(r['best_step'] // EPOCH_STEPS) for r in ms)} | {picked or '-'} |")
    for label, prefix in (("EASE", "ease"), ("ItemKNN", "itemknn")):
        print(f"| {label} | {'lambda' if prefix == 'ease' else 'k'} chosen per fold | "
              f"{cell([r[f'{prefix}_val_ndcg@100'] for r in base])} | "
              f"{cell([r[f'{prefix}_test_ndcg@100'] for r in base])} | | all |")

    print("\nCommands (fold F = 0..4; the table reuses finished runs):\n")
    for name in grid:
        print(f"    {command(name, 0, threshold, runs).replace('fold=0', 'fold=F').replace('-f0', '-fF')}")


if __name__ == "__main__":
    main()
