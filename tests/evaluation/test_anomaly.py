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
