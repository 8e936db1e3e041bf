"""`MultimodalClassifier`: a trained text + tabular fusion model, used on table rows.

    model = MultimodalClassifier.from_dir("runs/clothing-late")     # the run directory or its final/
    model.predict("new_reviews.csv")                                  # ['1', '0', ...]: label names
    model.predict_proba({"Review Text": [...], "Age": [...], ...})   # (N, n_classes)
    model.encode(rows)                                                # (N, d) the fused vectors the head reads
    model.prepare("labelled.parquet", with_labels=True).labels        # class ids, for scoring (tasks.multimodal)

Rows are a .csv / .parquet path, a {column: values} mapping or a list of {column: value} records; they go
through the training table's saved vocabularies and standardisation (`data.tables.TableFeatures`), so a
missing column is an error that names it and an unseen category is the unknown bucket.

On disk (final/): `multimodal.json` (this kind's marker: fusion config, column features, max_length),
`model.safetensors` (fusion weights without the text tower) and, unless mode=tabular, `text/`: the
fine-tuned text encoder in the Hugging Face layout with its tokenizer (itself usable by `encoderlab encode`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import from_dict, to_dict
from ..data.tables import EncodedTable, TableFeatures, read_table, select_rows
from ..errors import CheckpointError, InputDataError
from ..models.fusion import FusionClassifier, FusionConfig
from ..tokenization import TextTokenizer
from .registry import Kind
from .text_tower import InfoFile, load_state, load_text_tower, read_info, save_with_text_tower, write_info

INFO_FILE = "multimodal.json"
Rows = str | Path | Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


@dataclass
class MultimodalInfo(InfoFile):
    """What multimodal.json holds."""

    fusion: dict[str, Any]
    """The FusionConfig (with the data's cardinalities, numeric count and classes filled in)."""
    features: dict[str, Any]
    """TableFeatures.to_dict(): columns, vocabularies, means, deviations, label names."""
    max_length: int
    """Token limit of the text side."""
    kind: str = "multimodal-classifier"


def collate_rows(ids: Sequence[Sequence[int]], categories: np.ndarray, numbers: np.ndarray, pad_id: int,
                 labels: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """One batch: ids padded to the longest row, (B, n_cat) ids, (B, n_num) numbers, (B,) labels."""
    T = max((len(seq) for seq in ids), default=0)
    input_ids = torch.full((len(ids), max(T, 1)), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), max(T, 1)), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask,
             "categories": torch.from_numpy(np.ascontiguousarray(categories, dtype=np.int64)),
             "numbers": torch.from_numpy(np.ascontiguousarray(numbers, dtype=np.float32))}
    if labels is not None:
        batch["labels"] = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return batch


class MultimodalClassifier:
    """A trained text + tabular classifier: table rows in (a path, {column: values} or records), label names,
    class probabilities or fused vectors out."""

    kind = "multimodal"

    def __init__(self, model: FusionClassifier, features: TableFeatures, tokenizer: TextTokenizer | None,
                 max_length: int = 128):
        self.model = model.eval()
        self.features = features
        self.tokenizer = tokenizer
        self.max_length = max_length
        if model.cfg.uses_text and tokenizer is None:
            raise CheckpointError(f"fusion mode {model.cfg.mode!r} reads text but no tokenizer was given")

    # ------------------------------------------------------------------------------------------- disk
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        save_with_text_tower(self.model, self.tokenizer, directory)
        info = MultimodalInfo(fusion=to_dict(self.model.cfg), features=self.features.to_dict(),
                              max_length=self.max_length)
        write_info(directory, INFO_FILE, info)
        return directory

    @classmethod
    def from_dir(cls, path: str | Path) -> MultimodalClassifier:
        directory, info = read_info(path, INFO_FILE, MultimodalInfo, "a multimodal model")
        cfg = from_dict(FusionConfig, info.fusion)
        text, tokenizer = load_text_tower(directory) if cfg.uses_text else (None, None)
        model = FusionClassifier(cfg, text)
        model.load_state_dict(load_state(directory, text))
        return cls(model, TableFeatures.from_dict(info.features), tokenizer, info.max_length)

    # ------------------------------------------------------------------------------------------- inputs
    @property
    def label_names(self) -> list[str]:
        return self.features.label_names

    def prepare(self, rows: Rows, with_labels: bool = False) -> EncodedTable:
        """Rows (a path, {column: values} or a list of records) -> the model's inputs."""
        if isinstance(rows, str | Path):
            table, source = read_table(rows), str(rows)
        elif isinstance(rows, Mapping):
            table, source = {k: list(v) for k, v in rows.items()}, "rows"
        elif isinstance(rows, Sequence) and all(isinstance(r, Mapping) for r in rows):
            names = {k for r in rows for k in r}
            table, source = {k: [r.get(k) for r in rows] for k in names}, "rows"
        else:
            raise InputDataError(f"rows must be a .csv/.parquet path, a {{column: values}} mapping or a list of "
                                 f"records, got {type(rows).__name__}")
        if not table or not any(len(v) for v in table.values()):
            raise InputDataError(f"{source}: no rows to predict")
        spec = self.features.spec if with_labels else dataclasses.replace(self.features.spec, label_column="")
        return self.features.transform(select_rows(table, spec, source, require_label=with_labels), source)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        if self.tokenizer is None:
            return [[] for _ in texts]
        return self.tokenizer.encode_ids([t.strip() for t in texts], self.max_length)

    # ------------------------------------------------------------------------------------------- compute
    @torch.inference_mode()
    def _run(self, x: EncodedTable, fn, batch_size: int) -> np.ndarray:
        ids = self.token_ids(x.texts)
        order = np.argsort([-len(seq) for seq in ids], kind="stable")  # batches of similar lengths
        out: np.ndarray | None = None
        self.model.eval()
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = collate_rows([ids[i] for i in rows], x.categories[rows], x.numbers[rows],
                                 self.tokenizer.pad_id if self.tokenizer else 0)
            values = fn(batch).float().cpu().numpy()
            if out is None:
                out = np.empty((len(order), values.shape[1]), dtype=np.float32)
            out[rows] = values
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def encode(self, rows: Rows | EncodedTable, batch_size: int = 64) -> np.ndarray:
        """(N, d) float32: the fused vector of each row (what the classification head reads)."""
        x = rows if isinstance(rows, EncodedTable) else self.prepare(rows)
        return self._run(x, lambda b: self.model.embed(b["input_ids"], b["attention_mask"], b["categories"],
                                                       b["numbers"]), batch_size)

    def predict_proba(self, rows: Rows | EncodedTable, batch_size: int = 64) -> np.ndarray:
        """(N, n_classes) float32 class probabilities, columns in `label_names` order."""
        x = rows if isinstance(rows, EncodedTable) else self.prepare(rows)
        return self._run(x, lambda b: F.softmax(self.model(b["input_ids"], b["attention_mask"], b["categories"],
                                                           b["numbers"]), dim=-1), batch_size)

    def predict(self, rows: Rows | EncodedTable, batch_size: int = 64) -> list[str]:
        """The most probable label name of each row."""
        return [self.label_names[k] for k in self.predict_proba(rows, batch_size).argmax(1)]


KIND = Kind(
    name="multimodal",
    summary="a text + tabular classifier. Predict with `encoderlab predict --model {path} --input rows.csv`; "
            "`evaluate`, `encode` and `serve` take it too",
    holds=lambda d: (d / INFO_FILE).is_file(),
    load=MultimodalClassifier.from_dir,
)
