"""Anomaly metrics, written with NumPy, against scikit-learn (the reference) on random and tied scores."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoderlab.errors import InputDataError
from encoderlab.evaluation.anomaly import (
    anomaly_report,
    at_threshold,
    average_precision,
    best_f1_threshold,
    roc_auc,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=60))
@pytest.mark.slow
def test_auroc_and_ap_match_sklearn_with_ties(pairs):
    labels = np.array([p[0] for p in pairs])
    scores = np.array([p[1] for p in pairs], dtype=float)
    if labels.min() == labels.max():
        labels[0] = 1 - labels[0]
    assert roc_auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(labels, scores), abs=1e-12)


def test_best_f1_threshold_matches_sklearn_f1():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.1).astype(int)
    scores = rng.normal(size=500) + 2 * labels
    best = best_f1_threshold(labels, scores)
    assert best.f1 == pytest.approx(sklearn_metrics.f1_score(labels, scores >= best.threshold))
    # no other threshold does better
    assert all(sklearn_metrics.f1_score(labels, scores >= t) <= best.f1 + 1e-12 for t in scores[::10])
    report = at_threshold(labels, scores, best.threshold)
    assert report.precision == pytest.approx(sklearn_metrics.precision_score(labels, scores >= best.threshold))


def test_the_threshold_sits_in_the_gap_below_the_lowest_flagged_validation_score():
    """One validation anomaly at 10, normal samples up to 2: the bar goes to 6, not 10, so a test anomaly at 8
    that every normal sample ranks below (AUROC 1) is flagged (F1 was 0)."""
    best = best_f1_threshold(np.array([0, 0, 0, 1]), np.array([1.0, 2.0, 1.5, 10.0]))
    assert (best.threshold, best.f1) == (6.0, 1.0)
    out = anomaly_report(np.array([0, 0, 0, 1]), [1.0, 2.0, 1.5, 10.0], np.array([0, 0, 1]), [1.2, 2.5, 8.0])
    assert out["test_auroc"] == 1.0 and out["test_f1"] == 1.0 and out["test_threshold"] == 6.0
    assert best_f1_threshold(np.array([1, 0, 1]), np.array([1.0, 2.0, 3.0])).threshold == 1.0  # none lower: the score


def test_report_keys():
    labels = np.array([0, 0, 1, 1])
    out = anomaly_report(labels, [0.1, 0.2, 0.8, 0.9], labels, [0.1, 0.3, 0.2, 0.9])
    assert out["test_auroc"] == 0.75 and set(out) >= {"test_ap", "test_f1", "test_threshold", "val_f1"}


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 0, 0], [1, 2, 3], "both normal"),
    ([0, 1], [1, 2, 3], "2 labels but 3 scores"),
    ([0, 2], [1, 2], "0 \\(normal\\) or 1"),
    ([0, 1], [1, np.nan], "NaN"),
])
def test_bad_inputs(labels, scores, message):
    with pytest.raises(InputDataError, match=message):
        roc_auc(labels, scores)
