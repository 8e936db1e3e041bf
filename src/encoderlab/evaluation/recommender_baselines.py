"""Baselines that every recommender is measured against on the same split, each short and closed-form or
nearly so. Top-N baselines score a (users x items) input matrix of the users' histories (fold-in rows for
held-out users); `BiasedMF` predicts ratings.

    Popularity(train).scores(x)          # item counts in training, the same for every user
    RandomScores(n_items).scores(x)      # a fresh random ranking per user: chance level
    ItemKNN(train, k=100).scores(x)      # cosine item-item neighbourhoods (Sarwar et al. 2001)
    EASE(train, lam=500).scores(x)       # Steck 2019: B = I - P / diag(P), P = (X^T X + lam I)^-1, diag(B) = 0
    ContentKNN(item_bags).scores(x)      # features only: cosine of each item's features to the user's profile
    FeaturePopularity(train, item_bags)  # cold start: an item scores the mean popularity of warm items that
                                         # share its features
    BiasedMF(train_ratings, n_factors=64).predict(users, items)   # r = mu + b_u + b_i + p_u.q_i, by ALS
"""

from __future__ import annotations

import numpy as np

from ..data.interactions import Interactions, SparseRows


def _dense(x: SparseRows) -> np.ndarray:
    return x.to_dense().astype(np.float64)


def cooccurrence(train: SparseRows) -> np.ndarray:
    """(I, I) co-occurrence counts X^T X of the binarised training rows."""
    x = _dense(train.binarized())  # (U, I): fine for the catalogues baselines are run on
    return x.T @ x


def _matmul(x: SparseRows, dense: np.ndarray) -> np.ndarray:
    """(rows x n) sparse @ (n x d) dense -> (rows x d), without densifying `x`."""
    out = np.zeros((x.n_rows, dense.shape[1]), dtype=np.float64)
    np.add.at(out, x.row_ids(), x.values[:, None] * dense[x.indices])
    return out


class Popularity:
    """Every user gets the most popular training items (interaction counts). Equal counts are ordered at random
    (seeded): by item index they would smuggle in whatever order the ids carry (MovieLens numbers older, more
    popular films first), which matters most for cold items, whose counts are all 0."""

    def __init__(self, train: SparseRows, seed: int = 0) -> None:
        jitter = np.random.default_rng(seed).random(train.n_cols) * 0.5  # < 1: never reorders different counts
        self.counts = train.col_counts().astype(np.float64) + jitter

    def scores(self, x: SparseRows) -> np.ndarray:
        return np.tile(self.counts, (x.n_rows, 1))


class RandomScores:
    """A fresh random ranking per user (seeded): the chance level of a protocol."""

    def __init__(self, n_items: int, seed: int = 0) -> None:
        self.n_items, self.rng = n_items, np.random.default_rng(seed)

    def scores(self, x: SparseRows) -> np.ndarray:
        return self.rng.random((x.n_rows, self.n_items))


class ItemKNN:
    """Item-based kNN: cosine similarity of item columns, the `k` most similar neighbours of each item kept;
    a user's score for item j sums the similarities of j to the user's items."""

    def __init__(self, train: SparseRows, k: int = 100, shrink: float = 0.0) -> None:
        self.sim = self._similarities(cooccurrence(train), k, shrink)  # (I, I): column j keeps j's k nearest items

    @classmethod
    def from_gram(cls, gram: np.ndarray, k: int = 100, shrink: float = 0.0) -> ItemKNN:
        """From the (I, I) co-occurrence counts X^T X, computed once when several k are tried."""
        knn = cls.__new__(cls)
        knn.sim = cls._similarities(gram, k, shrink)
        return knn

    @staticmethod
    def _similarities(gram: np.ndarray, k: int, shrink: float) -> np.ndarray:
        norms = np.sqrt(np.diag(gram))
        sim = gram / (np.outer(norms, norms) + shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        if k < sim.shape[0]:
            weakest = np.argpartition(-sim, k, axis=0)[k:]  # (I - k, I) rows to drop in every column
            np.put_along_axis(sim, weakest, 0.0, axis=0)
        return sim

    def scores(self, x: SparseRows) -> np.ndarray:
        return _matmul(x.binarized(), self.sim)


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): the closed-form item-item weights of
    min ||X - XB||^2 + lam ||B||^2 subject to diag(B) = 0."""

    def __init__(self, train: SparseRows, lam: float = 500.0) -> None:
        self.b = self._weights(cooccurrence(train), lam)

    @classmethod
    def from_gram(cls, gram: np.ndarray, lam: float = 500.0) -> EASE:
        """From the (I, I) co-occurrence counts X^T X, computed once when several lambdas are tried."""
        ease = cls.__new__(cls)
        ease.b = cls._weights(gram, lam)
        return ease

    @staticmethod
    def _weights(gram: np.ndarray, lam: float) -> np.ndarray:
        p = np.linalg.inv(gram + lam * np.eye(len(gram)))  # P = (X^T X + lam I)^-1
        b = p / -np.diag(p)  # B_ij = -P_ij / P_jj
        np.fill_diagonal(b, 0.0)
        return b

    def scores(self, x: SparseRows) -> np.ndarray:
        return _matmul(x.binarized(), self.b)


def _cosine_rows(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


class ContentKNN:
    """Features only: a user's profile is the mean of the (L2-normalised, idf-weighted) feature bags of the
    items they interacted with; an item scores the cosine of its bag to that profile. Needs no interactions
    with the item itself, so it ranks cold items."""

    def __init__(self, item_bags: SparseRows) -> None:
        bags = _dense(item_bags)  # (I, V)
        idf = np.log((1 + len(bags)) / (1 + (bags > 0).sum(0))) + 1.0
        self.items = _cosine_rows(bags * idf)  # (I, V)

    def scores(self, x: SparseRows) -> np.ndarray:
        profiles = _cosine_rows(_matmul(x.binarized(), self.items))  # (B, V)
        return profiles @ self.items.T


class FeaturePopularity:
    """Cold start without a user model: an item's score is the mean training popularity of the warm items
    that share each of its feature tokens (e.g. 'genre=Comedy', 'year=1995'), averaged over its tokens."""

    def __init__(self, train: SparseRows, item_bags: SparseRows) -> None:
        counts = train.col_counts().astype(np.float64)
        bags = _dense(item_bags)  # (I, V)
        warm = counts > 0
        per_token = (bags[warm] * counts[warm, None]).sum(0) / np.maximum(bags[warm].sum(0), 1)  # (V,)
        n_tokens = bags.sum(1)
        self.item_scores = np.where(n_tokens > 0, bags @ per_token / np.maximum(n_tokens, 1), 0.0)

    def scores(self, x: SparseRows) -> np.ndarray:
        return np.tile(self.item_scores, (x.n_rows, 1))


class BiasedMF:
    """Biased matrix factorisation r_ui = mu + b_u + b_i + p_u . q_i, fitted by alternating least squares with
    count-weighted L2 regularisation (Zhou et al. 2008): each half-step solves one ridge regression per user
    (item), with the bias as an extra unregularised-by-factors column. Unknown users/items fall back to the
    biases that exist (mu at worst)."""

    def __init__(self, train: Interactions, n_factors: int = 64, reg: float = 0.1, iterations: int = 15,
                 seed: int = 0) -> None:
        self.mu = float(train.rating.mean())
        rng = np.random.default_rng(seed)
        n_users, n_items = train.n_users, train.n_items
        self.p = rng.normal(0, 0.1, (n_users, n_factors))
        self.q = rng.normal(0, 0.1, (n_items, n_factors))
        self.bu, self.bi = np.zeros(n_users), np.zeros(n_items)
        by_user = SparseRows.from_coo(train.user, train.item, train.rating - self.mu, n_users, n_items)
        by_item = by_user.transpose()
        for _ in range(iterations):
            self._half_step(by_user, self.q, self.bi, self.p, self.bu, reg)
            self._half_step(by_item, self.p, self.bu, self.q, self.bi, reg)

    @staticmethod
    def _half_step(x: SparseRows, other: np.ndarray, other_bias: np.ndarray, mine: np.ndarray,
                   my_bias: np.ndarray, reg: float) -> None:
        d = other.shape[1]
        for r in range(x.n_rows):
            cols, vals = x.row(r)
            if len(cols) == 0:
                continue
            a = np.hstack([other[cols], np.ones((len(cols), 1))])  # (n, d + 1): factors and the bias column
            y = vals - other_bias[cols]
            solution = np.linalg.solve(a.T @ a + reg * len(cols) * np.eye(d + 1), a.T @ y)
            mine[r], my_bias[r] = solution[:d], solution[d]

    def predict(self, users: np.ndarray, items: np.ndarray, clip: tuple[float, float] | None = None) -> np.ndarray:
        pred = self.mu + self.bu[users] + self.bi[items] + np.einsum("nd,nd->n", self.p[users], self.q[items])
        return np.clip(pred, *clip) if clip else pred


__all__ = ["EASE", "BiasedMF", "ContentKNN", "FeaturePopularity", "ItemKNN", "Popularity", "RandomScores",
           "cooccurrence"]
