"""Cross-modal retrieval and zero-shot classification metrics over unit vectors.

    recall_at_k(queries, gallery, ks=(1, 5, 10))   # query i's match is gallery item i
    zero_shot_accuracy(images, class_vectors, labels)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(queries: np.ndarray, gallery: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Share of queries whose own item (gallery row i for query row i) is among the k most similar gallery
    rows (dot product; pass unit vectors for cosine). Ties count against the query (the worst rank)."""
    if queries.shape != gallery.shape:
        raise ValueError(f"queries {queries.shape} and gallery {gallery.shape} must pair row by row")
    scores = queries @ gallery.T  # (N, N)
    own = np.diag(scores)[:, None]
    rank = (scores >= own).sum(axis=1)  # 1 = the own item is the best (ties rank behind it)
    return {f"recall@{k}": float((rank <= k).mean()) for k in ks} | {"median_rank": float(np.median(rank))}


def zero_shot_accuracy(vectors: np.ndarray, class_vectors: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most similar class vector is their label."""
    return float(((vectors @ class_vectors.T).argmax(axis=1) == np.asarray(labels)).mean())


def nearest_neighbour_labels(queries: np.ndarray, references: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
    """The label of each query's most similar reference row (dot product)."""
    return np.asarray(reference_labels)[(queries @ references.T).argmax(axis=1)]
