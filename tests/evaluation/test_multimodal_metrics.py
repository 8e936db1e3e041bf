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


def _rows(categories, numbers, labels):
    from encoderlab.data.tables import EncodedTable

    return EncodedTable([""] * len(labels), categories, numbers, labels)


def test_stacked_fusion_uses_a_column_only_when_it_carries_signal_beyond_the_model():
    pytest.importorskip("sklearn")
    from encoderlab.evaluation.multimodal import stacked_fusion

    rng = np.random.default_rng(0)

    def split(n):  # the label depends on a weak model score AND on a category the model never saw
        score, group = rng.normal(size=n), rng.integers(1, 4, n)
        y = (score + 1.5 * (group == 2) - 0.5 + rng.normal(0, 0.7, n) > 0).astype(np.int64)
        p1 = 1 / (1 + np.exp(-score))
        return _rows(group[:, None], rng.normal(size=(n, 1)).astype(np.float32), y), np.stack([1 - p1, p1], 1)

    (val, val_p), (test, test_p) = split(1500), split(1500)
    fused = stacked_fusion(val, val_p, test, test_p, use_columns=True)
    alone = stacked_fusion(val, val_p, test, test_p, use_columns=False)
    assert fused.shape == alone.shape == (1500, 2)
    assert probability_metrics(test.labels, fused, "01")["auroc"] > probability_metrics(test.labels, alone,
                                                                                          "01")["auroc"] + 0.05


def test_stacked_fusion_refuses_mismatched_rows():
    pytest.importorskip("sklearn")
    from encoderlab.errors import ConfigError
    from encoderlab.evaluation.multimodal import stacked_fusion

    rows = _rows(np.ones((10, 1), np.int64), np.zeros((10, 1), np.float32), np.arange(10) % 2)
    with pytest.raises(ConfigError, match="test has 10 rows but 9 probability rows"):
        stacked_fusion(rows, np.full((10, 2), 0.5), rows, np.full((9, 2), 0.5))
