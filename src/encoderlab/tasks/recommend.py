"""`train_recommender(cfg)`: train a recommender encoder on interactions and measure it beside the baselines.

    encoderlab recommend --config configs/ml100k-multvae.yaml        # Mult-VAE, held-out users, vs EASE
    encoderlab recommend --config configs/ml100k-autorec.yaml        # I-AutoRec ratings, vs biased MF
    encoderlab recommend --config configs/ml100k-two-tower-cold.yaml # two towers on cold items
    run_task(train_recommender, RecommendConfig, "configs/ml100k-multvae.yaml", ["epochs=5"])   # from Python

One run: load the interactions (`data.interactions`: ml-100k or a user's file), split them by `protocol`
(rating: ratings 80/10/10; strong: held-out users with fold-in; leave-last-out: by time; cold-start: items
held out of training), fill the model's sizes in from the data, train with the shared Trainer (validation
NDCG@100 or RMSE every `eval_every` steps; the best validation step's weights become the final model), then
score the test split, and the baselines on the very same split: popularity, ItemKNN and EASE (its lambda
chosen on validation) for top-N, biased MF for ratings, feature popularity and a content kNN for cold
items. OUT_DIR/final/ is a `Recommender` (artifacts/recommender.py): `recommend(user)`, `encode(ids)`.

This file holds the config and the training loops; recommend_inputs.py what the models are fed (batches, side
features, AutoRec's rating vectors), recommend_scoring.py the test scoring of the model and the baselines.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..artifacts.recommender import Recommender, RecommenderInfo, score_rows
from ..data.interactions import (
    Interactions,
    RatingSplit,
    SparseRows,
    TopNSplit,
    cold_start_items,
    leave_last_out,
    load_interactions,
    rating_split,
    strong_generalization,
)
from ..errors import ConfigError
from ..evaluation.recommendation import TOP_N_METRICS, mae, ndcg_at_k, rmse, top_k
from ..evaluation.recommender_baselines import BiasedMF
from ..files import atomic_write_json
from ..models.recommender import (
    AutoRec,
    RecommenderConfig,
    TwoTower,
    build_recommender,
    masked_squared_error,
    multinomial_loss,
)
from ..training import TrainConfig, Trainer
from ..training import checkpoint as ckpt
from ..training.distributed import unwrap
from ..training.precision import apply_threads
from .recommend_inputs import (
    Positions,
    SideFeatures,
    autorec_predict,
    by_tag,
    history_batch,
    install_features,
    rating_eval_batch,
    rating_vectors,
    side_features,
    top_n_batch,
    with_sizes,
)
from .recommend_scoring import evaluate_model, per_user_table, top_n_baselines

PROTOCOLS = ("strong", "leave-last-out", "cold-start", "rating")
FITS = {"mult-vae": ("strong", "leave-last-out"), "mult-dae": ("strong", "leave-last-out"),
        "autorec": ("rating",), "two-tower": ("cold-start", "strong", "leave-last-out")}


@dataclass
class RecommendConfig(TrainConfig):
    out_dir: str = "runs/recommend"
    """Where the run is written."""
    data: str = "ml-100k"
    """ml-100k, or an interactions file (.csv / .tsv / .jsonl / .parquet), one row per interaction."""
    user_column: str = "user_id"
    """User data: the user id column."""
    item_column: str = "item_id"
    """User data: the item id column."""
    rating_column: str = ""
    """User data: the rating column (empty: implicit feedback, every row a positive)."""
    timestamp_column: str = ""
    """User data: the time column (needed by protocol=leave-last-out)."""
    user_features: str = ""
    """Optional user feature file keyed by `user_column`; every other column is a categorical feature."""
    item_features: str = ""
    """Optional item feature file keyed by `item_column` (genres, year, ... ; '|' separates multiple values)."""
    item_text_column: str = ""
    """The free-text column of the item feature file (e.g. title), for the two-tower item tower."""

    protocol: Literal["strong", "leave-last-out", "cold-start", "rating"] = "strong"
    """strong: held-out users (fold-in 80 / target 20); leave-last-out: by time; cold-start: items held out of
    training entirely; rating: RMSE/MAE on a random 80/10/10 split of the ratings."""
    threshold: float | None = 3.5
    """Top-N protocols: a rating >= threshold is a positive (Liang et al.: 4 of 5 stars); null = every rating."""
    heldout: float = 0.1
    """protocol=strong: share of the users held out for validation and again for test."""
    fold_in: float = 0.8
    """protocol=strong: share of a held-out user's positives given as input (the rest are targets)."""
    cold_fraction: float = 0.2
    """protocol=cold-start: share of the items held out (half for validation, half for test)."""
    split_seed: int = 0
    """Seed of the split, separate from `seed` so training seeds can vary on one split."""
    folds: int = 0
    """protocol=strong: 0 = one held-out split; K >= 2 = K-fold cross-validation over users, this run testing
    fold `fold` (validation users are carved from the other folds). Run fold=0..K-1 to test every user once."""
    fold: int = 0
    """protocol=strong with folds=K: which fold (0..K-1) is the test users."""

    model: RecommenderConfig = field(default_factory=RecommenderConfig)
    """The architecture; model.n_items, n_users and the feature sizes are filled in from the data."""
    anneal_cap: float = 0.2
    """Mult-VAE: the largest KL weight beta (Liang et al.: 0.2)."""
    anneal_steps: int = 0
    """Mult-VAE: steps over which beta rises linearly from 0 to anneal_cap (0 = the whole run)."""
    autorec_reg: float = 1.0
    """AutoRec: lambda of (lambda / 2)(||W||^2 + ||V||^2), per training vector."""
    title: Literal["minilm", "words", "none"] = "words"
    """Two-tower item titles: MiniLM sentence vectors (our TextEncoder), a bag of title words, or none."""
    title_model: str = "minilm"
    """title=minilm: the text encoder (an alias or a checkpoint directory)."""
    feature_min_count: int = 2
    """Two-tower: feature tokens shared by fewer users/items than this are dropped (e.g. unique zip codes)."""
    eval_batch_size: int = 256
    """Users per batch when scoring the validation / test users."""
    restore_best: bool = True
    """After training, make the best validation step's weights the final model (when validation ran)."""

    baselines: bool = True
    """Also score the baselines on the same split."""
    ease_lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 500.0, 1000.0)
    """EASE: the L2 weights tried; the one with the best validation NDCG@100 is reported on test."""
    knn_neighbours: tuple[int, ...] = (100,)
    """ItemKNN: the neighbours kept per item tried; the best on validation NDCG@100 is reported on test."""
    mf_factors: int = 64
    """Biased MF: latent factors."""
    mf_reg: float = 0.1
    """Biased MF: L2 weight per rating (weighted-lambda ALS)."""
    mf_iterations: int = 15
    """Biased MF: ALS sweeps."""

    best_metric: str = "eval_ndcg@100"
    best_mode: Literal["min", "max"] = "max"
    eval_every: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.protocol not in FITS[self.model.kind]:
            raise ConfigError(f"model.kind={self.model.kind} does not fit protocol={self.protocol}; it fits "
                              f"{' or '.join(FITS[self.model.kind])} (rating prediction: model.kind=autorec)")
        if self.anneal_cap < 0 or self.anneal_steps < 0 or self.autorec_reg < 0:
            raise ConfigError("anneal_cap, anneal_steps and autorec_reg must be >= 0")
        if self.feature_min_count < 1 or self.eval_batch_size < 1 or min(self.knn_neighbours, default=0) < 1:
            raise ConfigError("feature_min_count, eval_batch_size and every knn_neighbours must be at least 1")
        if self.mf_factors < 1 or self.mf_iterations < 1 or self.mf_reg < 0:
            raise ConfigError("mf_factors and mf_iterations must be at least 1, mf_reg >= 0")
        if not self.ease_lambdas or any(v <= 0 for v in self.ease_lambdas):
            raise ConfigError(f"ease_lambdas={list(self.ease_lambdas)} must be positive numbers, e.g. [100, 500]")
        if self.folds and (self.protocol != "strong" or self.folds < 2 or not 0 <= self.fold < self.folds):
            raise ConfigError(f"folds={self.folds} fold={self.fold}: cross-validation is for protocol=strong, with "
                              "folds >= 2 and 0 <= fold < folds (folds=0: one held-out split)")
        if self.protocol == "rating" and self.best_metric == "eval_ndcg@100":
            self.best_metric, self.best_mode = "eval_mse", "min"  # ratings: the validation mean squared error
        if self.protocol != "rating" and self.best_metric == "eval_mse":
            raise ConfigError("best_metric=eval_mse is for protocol=rating; top-N runs report eval_ndcg@100")


def load_data(cfg: RecommendConfig) -> Interactions:
    return load_interactions(cfg.data, user_column=cfg.user_column, item_column=cfg.item_column,
                             rating_column=cfg.rating_column, timestamp_column=cfg.timestamp_column,
                             user_features=cfg.user_features, item_features=cfg.item_features,
                             item_text_column=cfg.item_text_column)


def make_split(cfg: RecommendConfig, data: Interactions) -> TopNSplit | RatingSplit:
    if cfg.protocol == "rating":
        return rating_split(data, seed=cfg.split_seed)
    if cfg.protocol == "strong":
        return strong_generalization(data, cfg.heldout, cfg.fold_in, cfg.split_seed, cfg.threshold,
                                     folds=cfg.folds, fold=cfg.fold)
    if cfg.protocol == "leave-last-out":
        return leave_last_out(data, cfg.threshold)
    return cold_start_items(data, cfg.cold_fraction, cfg.split_seed, cfg.threshold)


# ----------------------------------------------------------------------------------------------- the task
def kl_beta(cfg: RecommendConfig, step: int, total_steps: int) -> float:
    span = cfg.anneal_steps or total_steps
    return cfg.anneal_cap * min(1.0, step / max(1, span))


def train_recommender(cfg: RecommendConfig) -> dict[str, Any]:
    apply_threads(cfg.threads)
    data = load_data(cfg)
    split = make_split(cfg, data)
    features = side_features(cfg, data) if cfg.model.kind == "two-tower" else None
    cfg = dataclasses.replace(cfg, model=with_sizes(cfg, data, features))
    model = build_recommender(cfg.model)
    if isinstance(split, RatingSplit):
        return _train_autorec(cfg, data, split, model)
    return _train_top_n(cfg, data, split, model, features)


def _fit(cfg: RecommendConfig, model: nn.Module, trainer: Trainer, save_final) -> tuple[dict[str, Any], nn.Module]:
    result = trainer.fit()
    metrics = dict(result.metrics)
    model = unwrap(trainer.model).cpu()
    best = result.best_step
    if cfg.restore_best and best is not None and best != result.step:
        path = ckpt.step_dir(cfg.out_dir, best)
        if path.exists():
            weights, _, _ = ckpt.load_checkpoint(path)
            model.load_state_dict(weights)
            save_final(model, Path(cfg.out_dir) / "final")
            metrics["final_from_step"] = best
    return metrics, model


def _history_for(data: Interactions, split: TopNSplit) -> SparseRows:
    """Every user's items that the saved model treats as seen: training rows and evaluation inputs."""
    parts = [(split.train_users, split.train), (split.val_users, split.val_input), (split.test_users, split.test_input)]
    rows = np.concatenate([users[x.row_ids()] for users, x in parts])
    cols = np.concatenate([x.indices for _, x in parts])
    return SparseRows.from_coo(rows, cols, np.ones(len(cols)), data.n_users, data.n_items)


def _train_top_n(cfg: RecommendConfig, data: Interactions, split: TopNSplit, model: nn.Module,
                 features: SideFeatures | None) -> dict[str, Any]:
    trainer: Trainer | None = None
    if isinstance(model, TwoTower):
        install_features(model, features, split.train)
        train_data = Positions(split.train.nnz, "train")
        collate = history_batch(split.train, split.train_users)

        def loss_fn(m: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
            return m(**batch).mean(), len(batch["items"])
    else:
        train_data = Positions(split.train.n_rows, "train")

        def collate(positions: list[int]) -> dict[str, torch.Tensor]:
            return split.train.bags(positions)

        def loss_fn(m: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
            beta = kl_beta(cfg, trainer.step, trainer.total_steps)
            return multinomial_loss(m(**batch), **batch, beta=beta).mean(), len(batch["offsets"])

    eval_collate = top_n_batch(split, "val")

    def eval_fn(m: nn.Module, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        m = unwrap(m)
        rows = batch["rows"].numpy()
        inputs, targets, users, candidates = split.evaluation("val")
        vectors = m.all_items() if isinstance(m, TwoTower) else None
        scores = score_rows(m, inputs.take(rows), users[rows], vectors)
        top = top_k(scores, 100, inputs.take(rows), candidates)
        ndcg = ndcg_at_k(top, targets.take(rows), 100)
        valid = ~np.isnan(ndcg)
        return {"ndcg@100": (torch.tensor(float(ndcg[valid].mean()) if valid.any() else 0.0), int(valid.sum()))}

    info = RecommenderInfo.of(cfg.model, data, cfg.protocol)
    history = _history_for(data, split)

    def save_final(trained: nn.Module, directory: Path) -> None:
        Recommender(trained, info, history).save(directory)

    trainer = Trainer(cfg, model, train_data, loss_fn=loss_fn, collate_fn=by_tag(train=collate, val=eval_collate),
                      eval_data=Positions(split.val_input.n_rows, "val"), eval_fn=eval_fn, save_final=save_final)
    metrics, model = _fit(cfg, model, trainer, save_final)
    results = {"model": evaluate_model(model, split, "test", cfg.eval_batch_size)}
    for metric, value in results["model"].means().items():
        metrics[f"test_{metric}" if metric != "users" else "test_users"] = value
    metrics |= {f"split_{k}": v for k, v in split.summary().items()}
    metrics["protocol"] = cfg.protocol
    if cfg.folds:
        metrics["folds"], metrics["fold"] = cfg.folds, cfg.fold
    if cfg.baselines:
        baseline_metrics, baseline_results = top_n_baselines(cfg, data, split)
        metrics |= baseline_metrics
        results |= baseline_results
    atomic_write_json(Path(cfg.out_dir) / "per_user.json", per_user_table(split, data, results))
    return metrics


def _train_autorec(cfg: RecommendConfig, data: Interactions, split: RatingSplit, model: AutoRec) -> dict[str, Any]:
    side = cfg.model.autorec_side
    train, val = rating_vectors(split.train, side), rating_vectors(split.val, side)
    has_val = np.flatnonzero(val.row_lengths() > 0)
    mean = float(split.train.rating.mean())
    observed = np.flatnonzero(train.row_lengths() > 0)  # vectors with a training rating: the training set
    with torch.no_grad():
        model.decoder.bias.fill_(mean)  # start from the mean rating, not 0 (ratings are 1-5)

    def collate(positions: list[int]) -> dict[str, torch.Tensor]:
        return train.bags(observed[positions])

    def loss_fn(m: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        sse = masked_squared_error(m(**batch), batch["indices"], batch["offsets"], batch["values"])
        return sse.mean() + cfg.autorec_reg / 2 * unwrap(m).l2() / len(observed), len(batch["offsets"])

    def eval_fn(m: nn.Module, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        pred = m(**batch["input"]).clamp(1.0, 5.0)
        target = batch["target"]
        sse = masked_squared_error(pred, target["indices"], target["offsets"], target["values"])
        n = len(target["indices"])
        return {"mse": (sse.sum() / max(n, 1), n)}

    info = RecommenderInfo.of(cfg.model, data, cfg.protocol, global_mean=mean)
    history = split.train.matrix()

    def save_final(trained: nn.Module, directory: Path) -> None:
        Recommender(trained, info, history).save(directory)

    eval_collate = rating_eval_batch(train.take(has_val), val.take(has_val))
    trainer = Trainer(cfg, model, Positions(len(observed), "train"), loss_fn=loss_fn,
                      collate_fn=by_tag(train=collate, val=eval_collate), eval_data=Positions(len(has_val), "val"),
                      eval_fn=eval_fn, save_final=save_final)
    metrics, model = _fit(cfg, model, trainer, save_final)
    for name, part in (("val", split.val), ("test", split.test)):
        pred = autorec_predict(model, train, part.user, part.item, mean)
        metrics[f"{name}_rmse"], metrics[f"{name}_mae"] = rmse(pred, part.rating), mae(pred, part.rating)
    metrics["test_ratings"] = len(split.test)
    metrics["protocol"] = cfg.protocol
    if cfg.baselines:
        mf = BiasedMF(split.train, cfg.mf_factors, cfg.mf_reg, cfg.mf_iterations, seed=cfg.split_seed)
        pred = mf.predict(split.test.user, split.test.item, clip=(1.0, 5.0))
        metrics["biased_mf_test_rmse"], metrics["biased_mf_test_mae"] = rmse(pred, split.test.rating), mae(
            pred, split.test.rating)
        metrics["global_mean_test_rmse"] = rmse(np.full(len(split.test), mean), split.test.rating)
    if not len(has_val):
        print("warning: no validation ratings; the final model is the last step's", file=sys.stderr)
    return metrics


__all__ = ["PROTOCOLS", "TOP_N_METRICS", "RecommendConfig", "train_recommender"]
