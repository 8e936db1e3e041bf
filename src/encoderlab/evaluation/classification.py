"""Classification metrics, written out with NumPy: confusion matrix, accuracy, per-class precision / recall /
F1 and their unweighted (macro) mean.

    report = classification_report(y_true, y_pred, label_names=("neg", "pos"))
    report.accuracy, report.macro_f1, report.per_class["neg"]["recall"], report.confusion
    print(report.format());  report.save("runs/x/eval")   # eval.json + confusion.png

Conventions (the same as scikit-learn's `zero_division=0`): a class that is never predicted has precision 0,
a class with no true examples has recall 0, and F1 is 0 when precision + recall is 0. Macro averages run over
every class in `label_names`, including classes absent from this particular evaluation set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputDataError
from ..files import atomic_write_json

if TYPE_CHECKING:
    from ..artifacts.classifier import TextClassifier
    from ..artifacts.tagger import TokenTagger
    from ..data.records import LabelledTexts, TaggedSequences


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """(K, K) int64 counts; row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape[0]} entries but y_pred has {y_pred.shape[0]}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} holds class ids outside [0, {n_classes}): {sorted(set(y.tolist()))[:10]}")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


@dataclass
class ClassificationReport:
    label_names: tuple[str, ...]
    confusion: np.ndarray
    """(K, K) counts, row = true, column = predicted."""

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.n) if self.n else 0.0

    @property
    def precision(self) -> np.ndarray:
        return _safe_divide(np.diag(self.confusion).astype(np.float64), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        return _safe_divide(np.diag(self.confusion).astype(np.float64), self.confusion.sum(axis=1))

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _safe_divide(2 * p * r, p + r)

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    @property
    def per_class(self) -> dict[str, dict[str, float]]:
        support = self.confusion.sum(axis=1)
        return {name: {"precision": float(self.precision[k]), "recall": float(self.recall[k]),
                       "f1": float(self.f1[k]), "support": int(support[k])}
                for k, name in enumerate(self.label_names)}

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "accuracy": self.accuracy, "macro_f1": self.macro_f1, "per_class": self.per_class,
                "label_names": list(self.label_names), "confusion": self.confusion.tolist()}

    def format(self) -> str:
        """A plain-text report: headline numbers, per-class table, confusion matrix."""
        width = max(9, *(len(n) for n in self.label_names))
        lines = [f"n={self.n}  accuracy={self.accuracy:.4f}  macro-F1={self.macro_f1:.4f}", "",
                 f"{'class':<{width}}  precision  recall     f1  support"]
        for name, row in self.per_class.items():
            lines.append(f"{name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:.4f}  "
                         f"{row['support']:7d}")
        column = max(8, min(24, max(len(n) for n in self.label_names)))  # whole names, up to 24 characters
        lines += ["", "confusion matrix (rows: true, columns: predicted)",
                  " " * width + "  " + " ".join(f"{n[:column]:>{column}}" for n in self.label_names)]
        for name, row in zip(self.label_names, self.confusion, strict=True):
            lines.append(f"{name:<{width}}  " + " ".join(f"{int(c):{column}d}" for c in row))
        return "\n".join(lines)

    def plot_confusion(self, path: str | Path, title: str = "") -> Path:
        """A PNG of the row-normalised confusion matrix, with the counts written in the cells."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        k = len(self.label_names)
        rates = _safe_divide(self.confusion.astype(np.float64), self.confusion.sum(axis=1, keepdims=True))
        size = max(4.0, 0.5 * k + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(image, ax=ax, label="fraction of the true class")
        ax.set_xticks(range(k), self.label_names, rotation=45, ha="right")
        ax.set_yticks(range(k), self.label_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, str(int(self.confusion[i, j])), ha="center", va="center", fontsize=8,
                            color="white" if rates[i, j] > 0.5 else "black")
        ax.set_title(title or f"accuracy {self.accuracy:.3f}, macro-F1 {self.macro_f1:.3f} (n={self.n})")
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def save(self, directory: str | Path, name: str = "eval", extra: dict[str, Any] | None = None) -> Path:
        """Write `name`.json (metrics + extra) and `name`_confusion.png into `directory`; return the JSON path."""
        directory = Path(directory)
        path = directory / f"{name}.json"
        atomic_write_json(path, {**(extra or {}), **self.to_dict()})
        self.plot_confusion(directory / f"{name}_confusion.png")
        return path


def classification_report(y_true: Sequence[int], y_pred: Sequence[int],
                          label_names: Sequence[str]) -> ClassificationReport:
    """All the metrics of one evaluation; `label_names[k]` names class id k."""
    names = tuple(str(n) for n in label_names)
    return ClassificationReport(names, confusion_matrix(y_true, y_pred, len(names)))


# ============================================================================ saved models
def classifier_report(classifier: TextClassifier, records: LabelledTexts, batch_size: int = 64) -> ClassificationReport:
    """A saved classifier's metrics on labelled records whose label ids index its label_names."""
    probs = classifier.predict_proba(records.texts, batch_size)
    return classification_report(records.labels, probs.argmax(-1).tolist(), classifier.label_names)


def tagger_report(tagger: TokenTagger, records: TaggedSequences) -> tuple[ClassificationReport, int]:
    """A saved tagger's per-word report (its accuracy is the token accuracy) over the scored words, and the
    number of words cut off by max_length (not scored)."""
    index = {name: i for i, name in enumerate(tagger.tag_names)}
    unseen = sorted({records.tag_names[t] for tags in records.tags for t in tags} - set(index))
    if unseen:
        raise InputDataError(f"{records.source}: tags {unseen[:5]} never occur in the training data, so the model "
                             f"cannot predict them; it knows {list(tagger.tag_names)}")
    y_true, y_pred, truncated = [], [], 0
    for gold, predicted in zip(records.tags, tagger.predict_ids(records.tokens), strict=True):
        for g, p in zip(gold, predicted, strict=True):
            if p is None:
                truncated += 1
                continue
            y_true.append(index[records.tag_names[g]])
            y_pred.append(p)
    return classification_report(y_true, y_pred, tagger.tag_names), truncated
