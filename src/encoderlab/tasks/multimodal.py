"""`train_multimodal(cfg)`: a text + tabular classifier (text-only, tabular-only, late / gated / early fusion)
trained with the shared Trainer and scored side by side with classical baselines on the same split.

    run_task(train_multimodal, MultimodalConfig, "configs/multimodal-clothing.yaml", ["model.mode=gated"])

One run: read the table (`data.tables`: a named table such as clothing-reviews, or a user's .csv / .parquet
with text_columns= / categorical_columns= / numeric_columns= / label_column=), make a seeded stratified
train / validation / test split, learn the column vocabularies and the standardisation from the training
rows, fine-tune the text encoder (e.g. minilm; its lr is `lr * text_lr_scale`) and train the rest of the
model, then score the test split: accuracy, macro-F1 and AUROC, next to TF-IDF + one-hot + logistic
regression, gradient-boosted trees on the tabular columns + TF-IDF, and the majority class. The model goes to
OUT_DIR/final/ (`artifacts.multimodal.MultimodalClassifier`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..artifacts.multimodal import MultimodalClassifier, collate_rows
from ..artifacts.text_encoder import TextEncoder
from ..data.records import parse_fractions
from ..data.tables import (
    NAMED_TABLES,
    EncodedTable,
    TableFeatures,
    TableSpec,
    load_table,
    seeded_sample,
    select_rows,
    stratified_splits,
)
from ..errors import ConfigError
from ..evaluation.multimodal import (
    boosted_trees_tfidf,
    majority_class,
    probability_metrics,
    tfidf_onehot_logistic,
)
from ..files import atomic_save_npy, atomic_write_json
from ..models.fusion import FusionClassifier, FusionConfig
from ..training import TrainConfig, Trainer
from ..training.distributed import unwrap
from ..training.optim import param_groups
from ..training.precision import apply_threads

BASELINES = {"tfidf_onehot_logreg": tfidf_onehot_logistic, "gbt_tabular_tfidf": boosted_trees_tfidf,
             "gbt_tabular_only": lambda train, test, seed: boosted_trees_tfidf(train, test, seed, use_text=False),
             "majority_class": majority_class}


@dataclass
class MultimodalConfig(TrainConfig):
    out_dir: str = "runs/multimodal"
    """Where the run is written."""
    data: str = "clothing-reviews"
    """A named table (clothing-reviews) or a .csv / .tsv / .parquet file."""
    text_columns: list[str] | None = None
    """Columns joined into the text; null: the named table's default ([] for a file)."""
    categorical_columns: list[str] | None = None
    """Category columns; null: the named table's default ([] for a file)."""
    numeric_columns: list[str] | None = None
    """Number columns; null: the named table's default ([] for a file)."""
    label_column: str = ""
    """The column to predict; empty: the named table's default (clothing-reviews: Recommended IND)."""
    min_count: int = 5
    """A category value needs this many training rows to get its own embedding (rarer: the unknown bucket)."""
    split: str = "0.8,0.1,0.1"
    """Train, validation, test fractions of the stratified split."""
    split_seed: int = 0
    """Seed of the split (apart from `seed`, so runs with other model seeds share one test set)."""
    train_limit: int | None = None
    """Train on a seeded random sample of this many training rows (CPU budget); null = all."""
    eval_limit: int | None = None
    """Validate and test on seeded samples of this many rows each; null = all."""
    val_limit: int | None = None
    """Validate on a seeded sample of this many rows (the validation loss is only watched); null = eval_limit."""
    text_model: str = "minilm"
    """The text encoder to start from: an alias or a checkpoint directory (ignored for model.mode=tabular)."""
    max_length: int = 128
    """Tokens per text (longer texts are truncated)."""
    text_lr_scale: float = 0.05
    """The text encoder's lr is lr * text_lr_scale (pretrained weights move slower than the new layers);
    0 freezes it."""
    model: FusionConfig = field(default_factory=FusionConfig)
    """Fusion mode, head and tabular encoder; classes and column sizes are filled in from the data."""
    baselines: bool = True
    """Also fit and score the classical baselines on the same split (needs scikit-learn)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_fractions(self.split)
        if self.min_count < 1:
            raise ConfigError(f"min_count={self.min_count} must be >= 1")
        if self.max_length < 2:
            raise ConfigError(f"max_length={self.max_length} must be >= 2 ([CLS] and [SEP] take two tokens)")
        if self.text_lr_scale < 0:
            raise ConfigError(f"text_lr_scale={self.text_lr_scale} must be >= 0 (0 freezes the text encoder)")
        for name in ("train_limit", "eval_limit", "val_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1, or null for all rows")


# ----------------------------------------------------------------------------------------------- data
def table_spec(cfg: MultimodalConfig) -> TableSpec:
    """The config's columns, each defaulting to the named table's; the label never counts as a feature."""
    default = NAMED_TABLES[cfg.data].spec if cfg.data in NAMED_TABLES else TableSpec(text_columns=["text"])
    named = cfg.data in NAMED_TABLES

    def pick(value: list[str] | None, fallback: list[str]) -> list[str]:
        return list(value) if value is not None else (list(fallback) if named else [])

    label = cfg.label_column or (default.label_column if named else "")
    if not label:
        raise ConfigError(f"data={cfg.data}: set label_column= to the column to predict")
    return TableSpec(pick(cfg.text_columns, default.text_columns),
                     pick(cfg.categorical_columns, default.categorical_columns),
                     pick(cfg.numeric_columns, default.numeric_columns), label)


@dataclass
class PreparedData:
    features: TableFeatures
    train: EncodedTable
    val: EncodedTable
    test: EncodedTable
    stats: dict[str, int]


def prepare_data(cfg: MultimodalConfig) -> PreparedData:
    spec = table_spec(cfg)
    table, source = load_table(cfg.data)
    # rows without any text are dropped in every mode, so text-only, tabular-only and fusion share one test set
    rows = select_rows(table, spec, source, drop_empty_text=bool(spec.text_columns))
    train, val, test = stratified_splits(rows, parse_fractions(cfg.split), cfg.split_seed)
    stats = {"rows": len(rows), "rows_in_table": len(next(iter(table.values()))), "train_rows": len(train)}
    train = seeded_sample(train, cfg.train_limit, cfg.split_seed)
    val = seeded_sample(val, cfg.val_limit or cfg.eval_limit, cfg.split_seed)
    test = seeded_sample(test, cfg.eval_limit, cfg.split_seed)
    if min(len(val), len(test)) == 0:
        raise ConfigError(f"split={cfg.split} leaves no validation or test rows from {len(rows)} rows; "
                          "give both a larger fraction")
    features = TableFeatures.fit(train, spec, cfg.min_count)
    return PreparedData(features, features.transform(train, source), features.transform(val, source),
                        features.transform(test, source), stats)


class TokenizedRows(Dataset):
    """Rows with their token ids computed once; items are (ids, categories, numbers, label)."""

    def __init__(self, x: EncodedTable, ids: list[list[int]]):
        self.x, self.ids = x, ids

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[list[int], np.ndarray, np.ndarray, int]:
        return self.ids[i], self.x.categories[i], self.x.numbers[i], int(self.x.labels[i])


def make_collate(pad_id: int):
    def collate(items: list[tuple]) -> dict[str, torch.Tensor]:
        ids, categories, numbers, labels = zip(*items, strict=True)
        return collate_rows(ids, np.stack(categories), np.stack(numbers), pad_id, np.array(labels))

    return collate


# ----------------------------------------------------------------------------------------------- model
def build_model(cfg: MultimodalConfig, features: TableFeatures) -> tuple[FusionClassifier, Any]:
    """The fusion model with the data's sizes, and the text tokenizer (None for mode=tabular)."""
    tabular = dataclasses.replace(cfg.model.tabular, cardinalities=features.cardinalities,
                                  n_numeric=len(features.means))
    fusion_cfg = dataclasses.replace(cfg.model, n_classes=len(features.label_names), tabular=tabular)
    if fusion_cfg.uses_text and not features.spec.text_columns:
        raise ConfigError(f"model.mode={fusion_cfg.mode} reads text but text_columns is empty; set "
                          "text_columns= or use model.mode=tabular")
    if fusion_cfg.uses_table and not tabular.n_features:
        raise ConfigError(f"model.mode={fusion_cfg.mode} reads tabular columns but none are set; set "
                          "categorical_columns= / numeric_columns= or use model.mode=text")
    if not fusion_cfg.uses_text:
        return FusionClassifier(fusion_cfg), None
    encoder = TextEncoder.from_pretrained(cfg.text_model)
    bert = encoder.bert.train()
    if cfg.text_lr_scale == 0:
        bert.requires_grad_(False)
    return FusionClassifier(fusion_cfg, bert), encoder.tokenizer


def optimizer_groups(cfg: MultimodalConfig):
    """Text-encoder parameters at lr * text_lr_scale, everything else at lr (each with decay / no-decay)."""

    def groups(model: nn.Module) -> list[dict[str, Any]]:
        out = []
        if model.text is not None and cfg.text_lr_scale > 0:
            out += [{**g, "lr_scale": cfg.text_lr_scale} for g in param_groups(model.text, cfg.weight_decay)]
        rest = nn.ModuleList(m for name, m in model.named_children() if name != "text")
        out += param_groups(rest, cfg.weight_decay)
        return out

    return groups


def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    logits = model(batch["input_ids"], batch["attention_mask"], batch["categories"], batch["numbers"])
    return F.cross_entropy(logits.float(), batch["labels"]), len(batch["labels"])


def eval_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
    logits = model(batch["input_ids"], batch["attention_mask"], batch["categories"], batch["numbers"]).float()
    n = len(batch["labels"])
    return {"loss": (F.cross_entropy(logits, batch["labels"]), n),
            "accuracy": ((logits.argmax(-1) == batch["labels"]).float().mean(), n)}


# ----------------------------------------------------------------------------------------------- baselines
def run_baselines(data: PreparedData, seed: int, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Each baseline fitted on the training rows, scored on the test rows (with its fit time); its test
    probabilities go to out_dir/test_probabilities_<name>.npy."""
    results = {}
    for name, fit in BASELINES.items():
        start = time.perf_counter()
        probs = fit(data.train, data.test, seed=seed)
        atomic_save_npy(out_dir / f"test_probabilities_{name}.npy", probs)
        results[name] = probability_metrics(data.test.labels, probs, data.features.label_names)
        results[name]["fit_seconds"] = round(time.perf_counter() - start, 1)
    return results


# ----------------------------------------------------------------------------------------------- the task
def train_multimodal(cfg: MultimodalConfig) -> dict[str, Any]:
    cpu_start = time.process_time()
    apply_threads(cfg.threads)
    data = prepare_data(cfg)
    model, tokenizer = build_model(cfg, data.features)
    saved_cfg = dataclasses.replace(cfg, model=model.cfg)
    pad_id = tokenizer.pad_id if tokenizer is not None else 0

    def tokenized(x: EncodedTable) -> TokenizedRows:
        ids = tokenizer.encode_ids([t.strip() for t in x.texts], cfg.max_length) if tokenizer else [[]] * len(x)
        return TokenizedRows(x, ids)

    def save_final(trained: nn.Module, directory: Path) -> None:
        MultimodalClassifier(trained, data.features, tokenizer, cfg.max_length).save(directory)

    train_set = tokenized(data.train)
    trainer = Trainer(saved_cfg, model, train_set, loss_fn=loss_fn, collate_fn=make_collate(pad_id),
                      eval_data=tokenized(data.val), eval_fn=eval_fn, save_final=save_final,
                      lengths=[len(ids) for ids in train_set.ids] if tokenizer else None,
                      param_groups=optimizer_groups(cfg))
    result = trainer.fit()
    metrics: dict[str, Any] = dict(result.metrics)
    classifier = MultimodalClassifier(unwrap(trainer.model).cpu(), data.features, tokenizer, cfg.max_length)
    probs = classifier.predict_proba(data.test)
    test = probability_metrics(data.test.labels, probs, data.features.label_names)
    # per-row test outputs, for paired comparisons between runs (benchmarks/multimodal_clothing.py)
    atomic_save_npy(Path(cfg.out_dir) / "test_probabilities.npy", probs)
    atomic_save_npy(Path(cfg.out_dir) / "test_labels.npy", data.test.labels)
    metrics |= {f"test_{k}": v for k, v in test.items()}
    metrics |= {"mode": model.cfg.mode, "label_column": data.features.spec.label_column,
                "classes": data.features.label_names, "train_rows_used": len(data.train),
                "val_rows": len(data.val), **data.stats,
                # the process's CPU seconds in this run (data, training, test scoring; not the baselines): on a
                # shared machine the honest cost, where wall time is not
                "process_cpu_seconds": round(time.process_time() - cpu_start, 1)}
    if cfg.baselines:
        baselines = run_baselines(data, cfg.seed, Path(cfg.out_dir))
        metrics["baselines"] = baselines
        atomic_write_json(Path(cfg.out_dir) / "baselines.json", baselines)
    return metrics


# ----------------------------------------------------------------------------------------------- saved models
def evaluation_rows(model: str | Path, data: str | None = None, split: str = "auto"
                    ) -> tuple[MultimodalClassifier, EncodedTable, str, str]:
    """A saved multimodal classifier and the labelled rows to score it on -> (model, rows, split, data).
    split=auto: the run's own held-out test rows when `data` is its training table (or not given), every row
    of `data` otherwise; train / validation / test repeat the run's split (they need its config.yaml)."""
    from .saved_run import rows_to_score

    chosen = rows_to_score(model, MultimodalClassifier, MultimodalConfig, "a multimodal classifier", data, split,
                           data_hint="a labelled .csv or .parquet with the run's columns")
    classifier, cfg, data, split = chosen.model, chosen.config, chosen.data, chosen.split
    if cfg is not None and split != "all":
        prepared = prepare_data(cfg)
        return classifier, {"train": prepared.train, "validation": prepared.val, "test": prepared.test}[split], \
            split, data
    table, _ = load_table(data)
    return classifier, classifier.prepare(table, with_labels=True), split, data


def evaluate_multimodal(model: str | Path, data: str | None = None, split: str = "auto",
                        output_dir: str | Path | None = None) -> tuple[Any, dict[str, Any], Path]:
    """Accuracy, macro-F1, AUROC, per-class precision / recall and the confusion matrix of a saved multimodal
    classifier, as its run scored its test rows; written to eval_<data>_<split>.json and its confusion PNG
    (default: the run's evaluations/). -> (the ClassificationReport, {"auroc": ...}, the JSON path)."""
    from ..artifacts.runs import evaluations_dir
    from ..evaluation.classification import classification_report
    from .saved_run import data_name

    classifier, rows, split, data = evaluation_rows(model, data, split)
    probs = classifier.predict_proba(rows)
    report = classification_report(rows.labels, probs.argmax(1).tolist(), classifier.label_names)
    extra = {"auroc": probability_metrics(rows.labels, probs, classifier.label_names)["auroc"]}
    directory = Path(output_dir) if output_dir else evaluations_dir(model)
    path = report.save(directory, f"eval_{data_name(data)}_{split}",
                       extra={"model": str(model), "data": data, "split": split, **extra})
    return report, extra, path
