"""Recommender metrics, written once for every model and baseline: RMSE / MAE of rating predictions, and top-N
ranking metrics with the items a user has already seen always excluded.

    rmse(predicted, true), mae(predicted, true)
    metrics = evaluate_top_n(score_fn, inputs, targets, candidates=None)
    # -> {"recall@20": ..., "recall@50": ..., "ndcg@10": ..., "ndcg@100": ..., "coverage@20": ..., "users": n}

Definitions follow Liang et al. (2018, "Variational Autoencoders for Collaborative Filtering", sec. 4.2), the
protocol EASE (Steck 2019) and most later top-N papers use:
- Recall@k = |top-k ∩ targets| / min(k, |targets|)  (so a perfect ranking scores 1 for every user);
- NDCG@k = DCG@k / IDCG@k with binary relevance, DCG@k = Σ_{r<k} rel_r / log2(r + 2) (rank r from 0) and IDCG
  the DCG of min(k, |targets|) hits at the top;
- coverage@k = the share of candidate items that appear in at least one user's top-k list;
- every metric is averaged over users with at least one target; an input item (seen) is never ranked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..data.interactions import SparseRows

TOP_N_METRICS = ("recall@20", "recall@50", "ndcg@10", "ndcg@100", "coverage@20")


def rmse(predicted: np.ndarray, true: np.ndarray) -> float:
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    return float(np.sqrt(np.mean((predicted - true) ** 2)))


def mae(predicted: np.ndarray, true: np.ndarray) -> float:
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    return float(np.mean(np.abs(predicted - true)))


def top_k(scores: np.ndarray, k: int, exclude: SparseRows | None = None,
          candidates: np.ndarray | None = None) -> np.ndarray:
    """(B, k) item indices of the highest scores per row, best first, skipping `exclude`'s items of that row
    and every item outside `candidates`. Ties go to the lower item index; a row with fewer than k allowed
    items is padded with -1."""
    scores = np.array(scores, dtype=np.float64)  # (B, I), a copy we may overwrite
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf; the model or baseline produced invalid scores")
    if candidates is not None:
        allowed = np.zeros(scores.shape[1], dtype=bool)
        allowed[candidates] = True
        scores[:, ~allowed] = -np.inf
    if exclude is not None:
        scores[exclude.row_ids(), exclude.indices] = -np.inf
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # stable: equal scores keep item order
    return np.where(np.isfinite(np.take_along_axis(scores, top, 1)), top, -1)


def _hits(top: np.ndarray, target: SparseRows) -> np.ndarray:
    """(B, k) bool: is the item at each rank a target of that row."""
    dense = np.zeros((target.n_rows, target.n_cols + 1), dtype=bool)  # last column catches the -1 padding
    dense[target.row_ids(), target.indices] = True
    return np.take_along_axis(dense, np.where(top < 0, target.n_cols, top), 1)


def recall_at_k(top: np.ndarray, target: SparseRows, k: int) -> np.ndarray:
    """(B,) per user; NaN for a user without targets."""
    n_target = target.row_lengths()
    hits = _hits(top[:, :k], target).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_target > 0, hits / np.minimum(k, n_target), np.nan)


def ndcg_at_k(top: np.ndarray, target: SparseRows, k: int) -> np.ndarray:
    """(B,) per user; NaN for a user without targets."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    hits = _hits(top[:, :k], target)
    dcg = (hits * discounts[: hits.shape[1]]).sum(1)
    n_target = target.row_lengths()
    idcg = np.array([discounts[: min(n, k)].sum() for n in n_target])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_target > 0, dcg / idcg, np.nan)


def _metric_k(name: str) -> int:
    return int(name.split("@", 1)[1])


def evaluate_top_n(score_fn: Callable[[np.ndarray], np.ndarray], inputs: SparseRows, targets: SparseRows,
                   candidates: np.ndarray | None = None, metrics: Sequence[str] = TOP_N_METRICS,
                   batch_size: int = 256) -> dict[str, float]:
    """Rank for every evaluation user and average the metrics over users with a target.

    `score_fn(rows)` gets positions into `inputs` (a batch of evaluation users) and returns their (len(rows),
    n_items) scores; each user's `inputs` items are excluded, and only `candidates` are ranked (all if None).
    """
    if inputs.n_rows != targets.n_rows:
        raise ValueError(f"inputs has {inputs.n_rows} rows but targets {targets.n_rows}; they must be aligned")
    unknown = [m for m in metrics if m.split("@")[0] not in ("recall", "ndcg", "coverage") or "@" not in m]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; use recall@K, ndcg@K or coverage@K")
    users = np.flatnonzero(targets.row_lengths() > 0)
    if len(users) == 0:
        raise ValueError("no evaluation user has a target item; nothing to measure")
    k_max = max(_metric_k(m) for m in metrics)
    sums = {m: 0.0 for m in metrics}
    recommended = {m: np.zeros(inputs.n_cols, dtype=bool) for m in metrics if m.startswith("coverage")}
    for start in range(0, len(users), batch_size):
        rows = users[start:start + batch_size]
        scores = np.asarray(score_fn(rows))
        if scores.shape != (len(rows), inputs.n_cols):
            raise ValueError(f"score_fn returned shape {scores.shape}, expected {(len(rows), inputs.n_cols)}")
        top = top_k(scores, k_max, inputs.take(rows), candidates)
        target = targets.take(rows)
        for m in metrics:
            k = _metric_k(m)
            if m.startswith("recall"):
                sums[m] += float(np.nansum(recall_at_k(top, target, k)))
            elif m.startswith("ndcg"):
                sums[m] += float(np.nansum(ndcg_at_k(top, target, k)))
            else:
                shown = top[:, :k]
                recommended[m][shown[shown >= 0]] = True
    n_candidates = inputs.n_cols if candidates is None else len(candidates)
    out = {m: (recommended[m].sum() / n_candidates if m in recommended else sums[m] / len(users)) for m in metrics}
    return {**{m: float(v) for m, v in out.items()}, "users": int(len(users))}


__all__ = ["TOP_N_METRICS", "evaluate_top_n", "mae", "ndcg_at_k", "recall_at_k", "rmse", "top_k"]
