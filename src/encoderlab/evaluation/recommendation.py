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

Comparing two models on the same users: `paired_difference(per_user_a, per_user_b)` (from `rank_users(...)
.per_user["ndcg@100"]`) gives the mean difference, a paired t-test and a bootstrap confidence interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


@dataclass
class TopNResult:
    """What ranking every evaluation user gave: per-user recall / NDCG (for paired comparisons between models on
    the same users) and coverage over all of them. `means()` is the usual one-number-per-metric summary."""

    rows: np.ndarray
    """(N,) positions (into the evaluation inputs) of the users with at least one target, ascending."""
    per_user: dict[str, np.ndarray]
    """recall@k / ndcg@k -> (N,) values aligned with `rows`."""
    coverage: dict[str, float]
    """coverage@k -> the share of candidate items in somebody's top-k."""

    def means(self) -> dict[str, float]:
        out = {m: float(v.mean()) for m, v in self.per_user.items()} | dict(self.coverage)
        return {**out, "users": int(len(self.rows))}


def rank_users(score_fn: Callable[[np.ndarray], np.ndarray], inputs: SparseRows, targets: SparseRows,
               candidates: np.ndarray | None = None, metrics: Sequence[str] = TOP_N_METRICS,
               batch_size: int = 256) -> TopNResult:
    """Rank for every evaluation user with a target and measure each of them.

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
    per_user: dict[str, list[np.ndarray]] = {m: [] for m in metrics if not m.startswith("coverage")}
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
                per_user[m].append(recall_at_k(top, target, k))
            elif m.startswith("ndcg"):
                per_user[m].append(ndcg_at_k(top, target, k))
            else:
                shown = top[:, :k]
                recommended[m][shown[shown >= 0]] = True
    n_candidates = inputs.n_cols if candidates is None else len(candidates)
    return TopNResult(users, {m: np.concatenate(v) for m, v in per_user.items()},
                      {m: float(r.sum() / n_candidates) for m, r in recommended.items()})


def evaluate_top_n(score_fn: Callable[[np.ndarray], np.ndarray], inputs: SparseRows, targets: SparseRows,
                   candidates: np.ndarray | None = None, metrics: Sequence[str] = TOP_N_METRICS,
                   batch_size: int = 256) -> dict[str, float]:
    """The metrics averaged over the evaluation users with a target (see `rank_users`), plus "users"."""
    result = rank_users(score_fn, inputs, targets, candidates, metrics, batch_size)
    return {m: result.means()[m] for m in metrics} | {"users": len(result.rows)}


# ----------------------------------------------------------------------------------------------- comparisons
@dataclass
class PairedDifference:
    """Model A minus model B on the same users (or folds): the mean difference, a paired t-test and a
    percentile bootstrap confidence interval of the mean difference."""

    n: int
    mean: float
    """mean(a - b)."""
    std_error: float
    t: float
    p_value: float
    """Two-sided p of the paired t-test (H0: mean difference 0)."""
    ci_low: float
    ci_high: float
    """The `level` percentile bootstrap interval of the mean difference (users resampled with replacement)."""
    wins: int
    """Pairs with a > b."""
    losses: int
    """Pairs with a < b (ties are neither)."""
    level: float = 0.95

    def __str__(self) -> str:
        return (f"{self.mean:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}] (p={self.p_value:.3g}, "
                f"{self.wins} ahead / {self.losses} behind of {self.n})")


def student_t_two_sided(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom: the regularised incomplete beta
    I_x(df/2, 1/2) at x = df / (df + t^2), by Lentz's continued fraction (Numerical Recipes 6.4); kept here
    so the library needs no scipy (the test checks it against scipy.stats.t)."""
    x, a, b = df / (df + t * t), df / 2, 0.5
    if x <= 0 or x >= 1:  # |t| infinite, or t = 0
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point: use I_x(a,b) = 1 - I_1-x(b,a)
        return 1.0 - _beta_fraction(1 - x, b, a) * front / b
    return _beta_fraction(x, a, b) * front / a


def _beta_fraction(x: float, a: float, b: float, tiny: float = 1e-300) -> float:
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    out = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            out *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return out


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_boot: int = 10_000,
                      level: float = 0.95, seed: int = 0) -> PairedDifference:
    """Compare two models' per-user (or per-fold) scores measured on the same users, in the same order."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired scores need two 1-d arrays of the same length >= 2, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired scores contain NaN or inf; keep only users with a target")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1), e.g. 0.95")
    d = a - b
    n = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se > 0:
        t = mean / se
        p = student_t_two_sided(t, n - 1)
    else:  # every pair differs by the same amount
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    boot = d[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))].mean(1)  # (n_boot,)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(n, mean, se, t, p, float(low), float(high), int((d > 0).sum()), int((d < 0).sum()),
                            level)


__all__ = ["TOP_N_METRICS", "PairedDifference", "TopNResult", "evaluate_top_n", "mae", "ndcg_at_k", "paired_difference",
           "rank_users", "recall_at_k", "rmse", "top_k"]
