"""Anomaly-detection metrics over scores (higher = more anomalous) and binary labels (1 = anomaly).

AUROC is the Mann-Whitney U statistic: the probability that a random anomaly scores above a random normal
sample, ties counting one half (Hanley & McNeil, 1982). Average precision is the step-wise area under the
precision-recall curve, sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, the definition of
scikit-learn's `average_precision_score` (no interpolation). A deployable detector also needs a threshold:
we choose the one that maximises F1 on validation data and report precision/recall/F1 on test at it.
Written with NumPy only; the tests compare every number with scikit-learn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputDataError


def _check(labels: np.ndarray, scores: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels).ravel(), np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise InputDataError(f"{where}: {labels.size} labels but {scores.size} scores; pass one score per sample")
    if not np.isin(labels, (0, 1)).all():
        raise InputDataError(f"{where}: labels must be 0 (normal) or 1 (anomaly)")
    if not np.isfinite(scores).all():
        raise InputDataError(f"{where}: {int((~np.isfinite(scores)).sum())} scores are NaN/inf")
    if labels.min() == labels.max():
        raise InputDataError(f"{where}: needs both normal (0) and anomalous (1) samples, got only {labels[0]}")
    return labels.astype(bool), scores


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])  # first index of each tie group
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    labels, scores = _check(labels, scores, "roc_auc")
    n_pos, n_neg = labels.sum(), (~labels).sum()
    rank_sum = _average_ranks(scores)[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _sorted_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At each distinct threshold (descending): (true positives, false positives, threshold)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last_of_group]
    fp = np.cumsum(~y)[last_of_group]
    return tp, fp, s[last_of_group]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    labels, scores = _check(labels, scores, "average_precision")
    tp, fp, _ = _sorted_counts(labels, scores)
    precision, recall = tp / (tp + fp), tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass
class ThresholdReport:
    threshold: float
    """Scores >= threshold are flagged as anomalies."""
    precision: float
    recall: float
    f1: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items()}


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> ThresholdReport:
    labels, scores = _check(labels, scores, "at_threshold")
    flagged = scores >= threshold
    tp = float((flagged & labels).sum())
    precision = tp / flagged.sum() if flagged.any() else 0.0
    recall = tp / labels.sum()
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ThresholdReport(float(threshold), precision, recall, f1)


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> ThresholdReport:
    """The threshold that maximises F1 on these (validation) labels: halfway between the lowest flagged score
    and the next lower one, so it flags exactly the same validation samples as any threshold in that gap, and
    a new sample scoring just under the lowest flagged validation anomaly is flagged too (with the score itself
    as the threshold, a validation split holding one anomaly put the bar at that one anomaly's score, and a
    test run could score AUROC 1 with F1 0)."""
    labels, scores = _check(labels, scores, "best_f1_threshold")
    tp, fp, thresholds = _sorted_counts(labels, scores)  # thresholds: the distinct scores, descending
    precision, recall = tp / (tp + fp), tp / labels.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    best = int(np.argmax(f1))
    threshold = thresholds[best] if best + 1 == len(thresholds) else (thresholds[best] + thresholds[best + 1]) / 2
    return ThresholdReport(float(threshold), float(precision[best]), float(recall[best]), float(f1[best]))


def anomaly_report(val_labels: np.ndarray, val_scores: np.ndarray, test_labels: np.ndarray,
                   test_scores: np.ndarray) -> dict[str, float]:
    """Test AUROC and AP, plus precision/recall/F1 on test at the F1-best threshold chosen on validation."""
    chosen = best_f1_threshold(val_labels, val_scores)
    return {"test_auroc": roc_auc(test_labels, test_scores),
            "test_ap": average_precision(test_labels, test_scores),
            "val_f1": chosen.f1,
            **at_threshold(test_labels, test_scores, chosen.threshold).as_dict("test_")}
