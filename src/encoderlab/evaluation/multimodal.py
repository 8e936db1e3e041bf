"""Scoring text + tabular classifiers, and the classical baselines they must beat on the same split.

    probability_metrics(labels, probs, label_names)        # accuracy, macro-F1, AUROC
    tfidf_onehot_logistic(train, test)                      # -> (N_test, K) probabilities
    boosted_trees_tfidf(train, test, seed=0)

Both baselines read the same `EncodedTable`s as the neural models (the training split's vocabularies and
standardisation), so every row of a comparison table sees the same columns:

- TF-IDF (word 1-2-grams) + one-hot categories + standardised numbers -> logistic regression.
- Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) on the tabular columns (categories as
  native categorical splits where a column has at most 255 values, else as ordinal ids) plus the TF-IDF matrix
  reduced to `svd_dims` dimensions with truncated SVD (the trees need a dense input).

scikit-learn is imported only when a baseline runs (it is in the `test` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.tables import EncodedTable
from ..errors import ConfigError
from .anomaly import roc_auc
from .classification import classification_report


def probability_metrics(labels: np.ndarray, probs: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro-F1 and AUROC of class probabilities (N, K). AUROC: binary, of the second class (the
    positive one); more classes, the mean one-vs-rest AUROC over the classes that occur in `labels`."""
    labels = np.asarray(labels)
    report = classification_report(labels, probs.argmax(1), label_names=tuple(label_names))
    present = [k for k in range(probs.shape[1]) if 0 < int((labels == k).sum()) < len(labels)]
    if probs.shape[1] == 2:
        auroc = roc_auc(labels == 1, probs[:, 1]) if len(present) == 2 else float("nan")
    else:
        auroc = float(np.mean([roc_auc(labels == k, probs[:, k]) for k in present])) if present else float("nan")
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "auroc": auroc, "n": report.n}


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("the baselines need scikit-learn: pip install scikit-learn (or set baselines=false)") \
            from None


def _tfidf(train: EncodedTable, test: EncodedTable, max_features: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features, sublinear_tf=True)
    return vectorizer.fit_transform(train.texts), vectorizer.transform(test.texts)


def tfidf_onehot_logistic(train: EncodedTable, test: EncodedTable, seed: int = 0, max_features: int = 50_000,
                          c: float = 4.0) -> np.ndarray:
    """Logistic regression on [TF-IDF | one-hot categories | numbers]; -> (N_test, K) probabilities.
    (lbfgs is deterministic: `seed` is accepted for a uniform signature.)"""
    _sklearn()
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    parts_train, parts_test = [], []
    if any(train.texts):
        a, b = _tfidf(train, test, max_features)
        parts_train.append(a)
        parts_test.append(b)
    if train.categories.shape[1]:
        onehot = OneHotEncoder(handle_unknown="ignore")
        parts_train.append(onehot.fit_transform(train.categories))
        parts_test.append(onehot.transform(test.categories))
    if train.numbers.shape[1]:
        parts_train.append(sparse.csr_matrix(train.numbers))
        parts_test.append(sparse.csr_matrix(test.numbers))
    x_train, x_test = sparse.hstack(parts_train).tocsr(), sparse.hstack(parts_test).tocsr()
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x_train, train.labels)
    return model.predict_proba(x_test)


def boosted_trees_tfidf(train: EncodedTable, test: EncodedTable, seed: int = 0, svd_dims: int = 100,
                        max_features: int = 50_000, use_text: bool = True) -> np.ndarray:
    """HistGradientBoosting on [categories | numbers | SVD(TF-IDF)] (without the text part when use_text is
    false: the tabular columns alone); -> (N_test, K) probabilities."""
    _sklearn()
    from sklearn.decomposition import TruncatedSVD
    from sklearn.ensemble import HistGradientBoostingClassifier

    parts_train = [train.categories.astype(np.float64), train.numbers.astype(np.float64)]
    parts_test = [test.categories.astype(np.float64), test.numbers.astype(np.float64)]
    if use_text and any(train.texts):
        a, b = _tfidf(train, test, max_features)
        svd = TruncatedSVD(n_components=min(svd_dims, a.shape[1] - 1), random_state=seed)
        parts_train.append(svd.fit_transform(a))
        parts_test.append(svd.transform(b))
    x_train, x_test = np.hstack(parts_train), np.hstack(parts_test)
    n_cat = train.categories.shape[1]
    categorical = [j < n_cat and int(train.categories[:, j].max(initial=0)) < 255 for j in range(x_train.shape[1])]
    model = HistGradientBoostingClassifier(categorical_features=categorical if any(categorical) else None,
                                           random_state=seed, early_stopping=True, validation_fraction=0.1)
    model.fit(x_train, train.labels)
    return model.predict_proba(x_test)


def majority_class(train: EncodedTable, test: EncodedTable, seed: int = 0) -> np.ndarray:
    """The training prior for every test row (accuracy = the majority class's share, AUROC = 0.5)."""
    k = int(train.labels.max()) + 1
    prior = np.bincount(train.labels, minlength=k) / len(train.labels)
    return np.tile(prior, (len(test), 1))


def paired_bootstrap(labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, label_names: Sequence[str],
                     metric: str = "accuracy", n_resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """metric(b) - metric(a) on the same rows, with a 95 % percentile interval from resampling the rows
    (the same resample for both models, so their shared difficulty cancels)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    observed = (probability_metrics(labels, probs_b, label_names)[metric]
                - probability_metrics(labels, probs_a, label_names)[metric])
    diffs = []
    for _ in range(n_resamples):
        rows = rng.integers(0, len(labels), len(labels))
        diffs.append(probability_metrics(labels[rows], probs_b[rows], label_names)[metric]
                     - probability_metrics(labels[rows], probs_a[rows], label_names)[metric])
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": float(observed), "low": float(low), "high": float(high)}


def stacked_fusion(val: EncodedTable, val_probs: np.ndarray, test: EncodedTable, test_probs: np.ndarray,
                   seed: int = 0, use_columns: bool = True) -> np.ndarray:
    """Decision-level fusion of a trained model with the tabular columns: gradient-boosted trees fitted on
    held-out rows (`val`, never seen by the model) over [the model's log-probabilities | categories | numbers]
    -> (N_test, K) probabilities. use_columns=False fits the same trees on the log-probabilities alone (a
    recalibration), so the difference between the two measures what the columns add beyond the model."""
    _sklearn()
    from sklearn.ensemble import HistGradientBoostingClassifier

    for name, rows, probs in (("val", val, val_probs), ("test", test, test_probs)):
        if probs.shape[0] != len(rows):
            raise ConfigError(f"stacked_fusion: {name} has {len(rows)} rows but {probs.shape[0]} probability rows")
    if val.labels is None:
        raise ConfigError("stacked_fusion: the held-out rows it is fitted on need labels")

    def features(rows: EncodedTable, probs: np.ndarray) -> np.ndarray:
        scores = np.log(np.clip(probs, 1e-7, 1.0))
        if scores.shape[1] == 2:
            scores = scores[:, 1:] - scores[:, :1]  # binary: the one logit
        parts = [scores]
        if use_columns:
            parts += [rows.categories.astype(np.float64), rows.numbers.astype(np.float64)]
        return np.hstack(parts)

    n_scores = 1 if val_probs.shape[1] == 2 else val_probs.shape[1]
    categorical = [use_columns and n_scores <= j < n_scores + val.categories.shape[1]
                   and int(val.categories[:, j - n_scores].max(initial=0)) < 255
                   for j in range(n_scores + (val.categories.shape[1] + val.numbers.shape[1] if use_columns else 0))]
    model = HistGradientBoostingClassifier(categorical_features=categorical if any(categorical) else None,
                                           random_state=seed, early_stopping=True, validation_fraction=0.2,
                                           learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40)
    model.fit(features(val, val_probs), val.labels)
    return model.predict_proba(features(test, test_probs))
