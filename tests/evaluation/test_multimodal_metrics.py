"""Scores of multimodal classifiers: accuracy / macro-F1 / AUROC against scikit-learn, and the paired bootstrap."""

import numpy as np
import pytest

from encoderlab.evaluation.multimodal import paired_bootstrap, probability_metrics


def test_probability_metrics_match_scikit_learn():
    metrics_mod = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    probs = rng.dirichlet(np.ones(3), 300) + np.eye(3)[y] * 0.3
    probs /= probs.sum(1, keepdims=True)
    m = probability_metrics(y, probs, ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(metrics_mod.accuracy_score(y, probs.argmax(1)))
    assert m["macro_f1"] == pytest.approx(metrics_mod.f1_score(y, probs.argmax(1), average="macro"))
    assert m["auroc"] == pytest.approx(metrics_mod.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    binary = probability_metrics(y == 1, np.stack([1 - probs[:, 1], probs[:, 1]], 1), ("no", "yes"))
    assert binary["auroc"] == pytest.approx(metrics_mod.roc_auc_score(y == 1, probs[:, 1]))


def test_paired_bootstrap_brackets_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = np.stack([1 - (y * 0.8 + 0.1), y * 0.8 + 0.1], 1)
    noisy = np.clip(good + rng.normal(0, 0.5, good.shape), 0.01, None)
    noisy /= noisy.sum(1, keepdims=True)
    better = paired_bootstrap(y, noisy, good, ("0", "1"), n_resamples=200)
    assert better["low"] > 0 and better["low"] <= better["difference"] <= better["high"]
    same = paired_bootstrap(y, good, good, ("0", "1"), n_resamples=20)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}
