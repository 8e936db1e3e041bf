"""PNG pictures of an autoencoder run: reconstructions next to originals, samples from the prior, a 2-D
map of the latent space coloured by label, and the loss curves. Matplotlib with the Agg backend (no
display needed); every function writes one file and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def image_grid(images: np.ndarray, n_cols: int) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (rows*H, n_cols*W[, 3]) picture, 1-pixel white gutters. Three or more
    channels show as RGB (the first three); one or two as grey (the first channel: two channels are no
    colour image matplotlib can show)."""
    n, c, h, w = images.shape
    n_rows = -(-n // n_cols)
    grid = np.ones((c, n_rows * (h + 1) - 1, n_cols * (w + 1) - 1), dtype=np.float32)
    for i, img in enumerate(images):
        r, col = divmod(i, n_cols)
        grid[:, r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = img
    grid = np.clip(grid, 0.0, 1.0)
    return grid[0] if c < 3 else grid[:3].transpose(1, 2, 0)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, path: str | Path,
                         title: str = "originals (top) / reconstructions (bottom)") -> Path:
    """Images: pairs of rows, originals above their reconstructions. Tables: one line plot per row."""
    if originals.ndim == 4:
        n_cols = min(len(originals), 10)
        rows = []
        for start in range(0, len(originals), n_cols):
            rows += [originals[start:start + n_cols], reconstructions[start:start + n_cols]]
        fig, axes = plt.subplots(len(rows), 1, figsize=(n_cols * 0.8, len(rows) * 0.85))
        for ax, row in zip(np.atleast_1d(axes), rows, strict=True):
            ax.imshow(image_grid(row, n_cols), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
    else:
        n = min(len(originals), 6)
        fig, axes = plt.subplots(n, 1, figsize=(6, 1.3 * n), sharex=True)
        for i, ax in enumerate(np.atleast_1d(axes)):
            ax.plot(originals[i], "o-", label="original")
            ax.plot(reconstructions[i], "x--", label="reconstruction")
        np.atleast_1d(axes)[0].legend(fontsize=7)
        np.atleast_1d(axes)[-1].set_xlabel("feature")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_samples(samples: np.ndarray, path: str | Path, title: str = "samples from the prior") -> Path:
    n_cols = min(len(samples), 10)
    fig, ax = plt.subplots(figsize=(n_cols * 0.8, -(-len(samples) // n_cols) * 0.85))
    ax.imshow(image_grid(samples, n_cols), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, str]:
    """Codes (N, L) -> (N, 2): themselves if L <= 2, else their first two principal components."""
    if codes.shape[1] == 1:
        return np.c_[codes, np.zeros(len(codes))], "z"
    if codes.shape[1] == 2:
        return codes, "z"
    centered = codes - codes.mean(0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)  # vt has min(N, L) rows: 1 for a single code
    xy = centered @ vt[:2].T
    return np.c_[xy, np.zeros((len(xy), 2 - xy.shape[1]))], "PCA of z"


def plot_latent(codes: np.ndarray, labels: np.ndarray | None, path: str | Path, title: str = "latent space") -> Path:
    xy, how = project_2d(codes)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0.5)
    else:
        points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6,
                            vmin=-0.5, vmax=max(9.5, labels.max() + 0.5))
        fig.colorbar(points, ax=ax, ticks=np.unique(labels)[:20], label="label")
    ax.set_xlabel(f"{how} 1")
    ax.set_ylabel(f"{how} 2")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_loss_curves(records: Sequence[dict[str, Any]], path: str | Path, title: str = "loss") -> Path:
    """Train loss of every logged step, and every eval_* loss, against the step (from log.jsonl)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    train = [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", lw=1)
    for key in sorted({k for r in records for k in r if k.startswith("eval_") and "loss" in k}):
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        ax.plot(*zip(*points, strict=True), "o-", label=key, ms=3)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_score_histogram(scores: np.ndarray, labels: np.ndarray, threshold: float | None, path: str | Path,
                         title: str = "anomaly scores (test)") -> Path:
    # Reconstruction errors span decades: a log axis, unless scores can be <= 0 (a Gaussian negative ELBO).
    log = bool(np.all(scores > 0)) and (threshold is None or threshold > 0)
    values, cut = (np.log10(scores), np.log10(threshold) if threshold else None) if log else (scores, threshold)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.histogram_bin_edges(values, bins=60)
    for value, name in ((0, "normal"), (1, "anomaly")):
        ax.hist(values[labels == value], bins=bins, alpha=0.6, label=name, density=True)
    if cut is not None:
        ax.axvline(cut, color="k", ls="--", label="threshold (val F1)")
    ax.set_xlabel("log10 score" if log else "score")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
