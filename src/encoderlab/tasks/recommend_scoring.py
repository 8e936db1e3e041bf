"""Scoring a recommend run: the model and the baselines on the same split, per user (for paired comparisons),
the baselines' settings (EASE's lambda, ItemKNN's k) chosen on the validation users, and per_user.json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..artifacts.recommender import score_rows
from ..data.interactions import Interactions, TopNSplit
from ..evaluation.recommendation import TopNResult, rank_users
from ..evaluation.recommender_baselines import (
    EASE,
    ContentKNN,
    FeaturePopularity,
    ItemKNN,
    Popularity,
    RandomScores,
    cooccurrence,
)
from ..models.recommender import TwoTower
from .recommend_inputs import feature_bags

if TYPE_CHECKING:
    from .recommend import RecommendConfig


def evaluate_model(model: nn.Module, split: TopNSplit, which: str, batch_size: int) -> TopNResult:
    inputs, targets, users, candidates = split.evaluation(which)
    vectors = model.eval().all_items() if isinstance(model, TwoTower) else None
    with torch.no_grad():
        return rank_users(lambda rows: score_rows(model, inputs.take(rows), users[rows], vectors), inputs,
                          targets, candidates, batch_size=batch_size)


def evaluate_baseline(scorer, split: TopNSplit, which: str, batch_size: int) -> TopNResult:
    inputs, targets, _, candidates = split.evaluation(which)
    return rank_users(lambda rows: scorer.scores(inputs.take(rows)), inputs, targets, candidates,
                      batch_size=batch_size)


def tune_on_validation(make, grid: tuple, split: TopNSplit, batch_size: int) -> tuple[Any, float]:
    """The grid value whose scorer `make(value)` has the best validation NDCG@100 (the first on ties), and it."""
    scores = [evaluate_baseline(make(v), split, "val", batch_size).means()["ndcg@100"] for v in grid]
    best = int(np.argmax(scores))
    return grid[best], scores[best]


def top_n_baselines(cfg: RecommendConfig, data: Interactions, split: TopNSplit) -> tuple[dict[str, Any],
                                                                                          dict[str, TopNResult]]:
    """The baselines' test metrics (`NAME_test_METRIC`, and the validation-chosen EASE lambda / ItemKNN k) and
    their per-user test results."""
    out: dict[str, Any] = {}
    results: dict[str, TopNResult] = {}

    def report(name: str, scorer) -> None:
        results[name] = evaluate_baseline(scorer, split, "test", cfg.eval_batch_size)
        for metric, value in results[name].means().items():
            if metric != "users":
                out[f"{name}_test_{metric}"] = value

    report("popularity", Popularity(split.train, seed=cfg.split_seed))
    if split.protocol == "cold-start":
        report("random", RandomScores(split.n_items, seed=cfg.split_seed))
        bags, _ = feature_bags(data.item_features, data.n_items, cfg.feature_min_count, text=True)
        if bags.n_cols:
            report("feature_popularity", FeaturePopularity(split.train, bags))
            report("content_knn", ContentKNN(bags))
        return out, results
    gram = cooccurrence(split.train)  # (I, I), once for every grid point
    k, out["itemknn_val_ndcg@100"] = tune_on_validation(lambda k: ItemKNN.from_gram(gram, k), cfg.knn_neighbours,
                                                        split, cfg.eval_batch_size)
    out["itemknn_k"] = k
    report("itemknn", ItemKNN.from_gram(gram, k))
    lam, out["ease_val_ndcg@100"] = tune_on_validation(lambda lam: EASE.from_gram(gram, lam), cfg.ease_lambdas,
                                                       split, cfg.eval_batch_size)
    out["ease_lambda"] = lam
    report("ease", EASE.from_gram(gram, lam))
    return out, results


def per_user_table(split: TopNSplit, data: Interactions, results: dict[str, TopNResult]) -> dict[str, Any]:
    """per_user.json: every test user's id and, per model, its recall@20 and NDCG@100 in the same order, so
    runs on the same split (or the folds of one cross-validation) can be compared user by user."""
    rows = next(iter(results.values())).rows
    users = split.evaluation("test")[2][rows]
    return {"protocol": split.protocol, "users": [data.user_ids[u] for u in users],
            **{m: {name: r.per_user[m].tolist() for name, r in results.items()} for m in ("recall@20", "ndcg@100")}}


__all__ = ["evaluate_baseline", "evaluate_model", "per_user_table", "top_n_baselines", "tune_on_validation"]
