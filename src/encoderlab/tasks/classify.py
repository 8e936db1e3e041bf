"""Fine-tune an encoder to classify texts: a catalog dataset or the user's own .csv / .jsonl.

    encoderlab finetune --config configs/finetune-tweets.yaml init=minilm mode=lora
    finetune_classifier(ClassifyConfig(data="bbc-news", init="minilm", mode="frozen", out_dir="runs/x"))
    clf = TextClassifier.from_dir("runs/x");  clf.predict_proba(["some text"])   # (1, K)

The recipe: load and split the data (seeded, stratified); tokenise every text once; put a
SequenceClassificationHead on the encoder; train with the shared Trainer (mode=frozen caches the pooled
features once and trains only the head on them); save OUT_DIR/final/; then load that directory back and
report validation and test accuracy, macro-F1, per-class precision/recall and the confusion matrix from
it, so the reported numbers are the numbers of the saved model.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..artifacts.classifier import TextClassifier, run_encoder
from ..artifacts.finetuned import HeadInfo, save_finetuned
from ..data.catalog import load_dataset
from ..data.records import LabelledTexts, Splits, seeded_subset
from ..data.references import data_reference, is_catalog_name, same_data
from ..errors import ConfigError, InputDataError
from ..evaluation.classification import ClassificationReport, classifier_report
from ..models.heads import EncoderWithHead, SequenceClassificationHead
from ..tokenization import TextTokenizer
from ..training import Trainer
from ..training.encoder_setup import optimizer_groups, unknown_piece_rate
from .classify_windows import windowed_trainer
from .finetune import Encoder, FinetuneConfig, HeldOut, evaluation_split, run_finetune
from .head_warmup import frozen_encoder, needs_head_warmup, warm_up_head


@dataclass
class ClassifyConfig(FinetuneConfig):
    task: Literal["classify"] = "classify"
    """Which fine-tuning task this config is for (`encoderlab finetune` dispatches on it)."""
    out_dir: str = "runs/classify"
    """Run directory (one per task by default, so a pretrain run is never offered as a classifier to resume)."""
    data: str = "tweets-sentiment"
    """A catalog dataset (tweets-sentiment, bbc-news, zh-reviews-sentiment), a .csv / .tsv / .jsonl file, or a
    folder of class sub-folders of .txt files."""
    validation_data: str = ""
    """A separate .csv / .jsonl validation file; then `data` is used whole for training."""
    test_data: str = ""
    """A separate .csv / .jsonl test file; then `data` is used whole for training."""
    bad_rows: Literal["error", "warn"] = "error"
    """A .csv row with an empty text or label or the wrong number of cells: error (listing them), or warn and
    skip them."""
    pooling: Literal["cls", "mean"] = "mean"
    """How the head pools token states: the [CLS] state or the mean over real tokens."""
    cache_features: bool = True
    """mode=frozen: run the encoder once over the data and train the head on the cached pooled features."""
    head_warmup_epochs: int = 0
    """mode=full or lora: first train the head alone (with long_text=chunk, the window pooling too) on the
    frozen encoder's cached features for this many epochs, then fine-tune everything from that trained head
    (LP-FT, Kumar et al. 2022; tasks/head_warmup.py). 0: the fine-tune starts from a random head."""
    head_warmup_lr: float = 3.0e-3
    """Learning rate of the head warm-up (mode=frozen's default); `lr` is the fine-tune's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head_warmup_epochs < 0:
            raise ConfigError(f"head_warmup_epochs={self.head_warmup_epochs} must be >= 0 (0: no warm-up)")
        if self.head_warmup_epochs and self.mode == "frozen":
            raise ConfigError("head_warmup_epochs trains the head before the encoder fine-tunes, but mode=frozen "
                              "only trains the head; drop head_warmup_epochs (epochs= sets the head's training), "
                              "or use mode=full or mode=lora")
        if self.head_warmup_lr <= 0:
            raise ConfigError(f"head_warmup_lr={self.head_warmup_lr} must be positive, e.g. head_warmup_lr=3e-3")
        if not self.data:
            raise ConfigError("data is empty; name a catalog dataset (data=tweets-sentiment) or a .csv/.jsonl file")


# ============================================================================ data
def label_rows(path: str | Path, label_column: str) -> dict[str, int]:
    """label -> line number of its first occurrence in a .csv (header = line 1) or .jsonl file."""
    path = Path(path)
    rows: dict[str, int] = {}
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for record in reader:
                label = (record.get(label_column) or "").strip()
                rows.setdefault(label, reader.line_num)
    elif path.suffix.lower() == ".jsonl":
        for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if line.strip():
                value = json.loads(line).get(label_column)
                rows.setdefault(str(value).strip(), line_no)
    return rows


def _where(source: str, column: str, rows: dict[str, int], label: str) -> str:
    row = rows.get(label)
    return f"{source}, column {column!r}" + (f", row {row}" if row is not None else "")


def _load_file(path: str, cfg: ClassifyConfig, split: str) -> Splits[LabelledTexts]:
    label = None if is_catalog_name(path) else cfg.label_column
    splits = load_dataset(path, split=split, seed=cfg.seed, text_field=cfg.text_column, label_field=label,
                          bad_rows=cfg.bad_rows)
    if splits.train.labels is None:
        if Path(path).is_dir():
            raise InputDataError(f"folder {path!r} has no labels: put its .txt files in one sub-folder per class "
                                 f"({path}/<class>/<document>.txt), every file at that depth")
        if Path(path).suffix.lower() == ".txt":
            raise InputDataError(f"data {path!r} is plain text with no labels; classification needs a .csv/.tsv/"
                                 f".jsonl with a {cfg.label_column!r} column (lines of word/TAG items are for "
                                 "task=tag)")
        raise InputDataError(f"data {path!r} has no labels; give a .csv/.jsonl with a {cfg.label_column!r} "
                             "column (or name it with label_column=)")
    names = splits.train.label_names
    if len(names) < 2 and path == cfg.data:
        raise InputDataError(f"{path}, column {cfg.label_column!r}: every row has the label {names[0]!r}; a "
                             "classifier needs at least two classes")
    return splits


def check_enough_per_class(records: LabelledTexts, label_column: str, minimum: int = 2) -> None:
    """Every class needs `minimum` examples, or it cannot be both learned and evaluated."""
    counts = Counter(records.labels)
    rare = [k for k in range(len(records.label_names)) if counts[k] < minimum]
    if not rare:
        return
    # Most rows a class of their own: an id or text column, not labels.
    wrong_column = len(records) >= 10 and len(records.label_names) > len(records) / 2
    hint = (f" ({len(records.label_names)} different labels in {len(records)} rows: is label_column={label_column} "
            "the right column?)") if wrong_column else ""
    rows = {} if is_catalog_name(records.source) else label_rows(records.source, label_column)
    name = records.label_names[rare[0]]
    raise InputDataError(
        f"{_where(records.source, label_column, rows, name)}: class {name!r} has only {counts[rare[0]]} "
        f"example(s) after removing duplicates; every class needs at least {minimum} to be trained and "
        f"evaluated. Add examples of it or remove its rows" +
        (f" (also too rare: {[records.label_names[k] for k in rare[1:4]]}{' …' if len(rare) > 4 else ''})"
         if len(rare) > 1 else "") + hint)


def relabel(records: LabelledTexts, label_names: Sequence[str], label_column: str,
            trained_on: str) -> LabelledTexts:
    """Express `records`' labels as ids into `label_names`; a label outside them is an error naming the row."""
    index = {name: i for i, name in enumerate(label_names)}
    unseen = [name for name in records.label_names if name not in index]
    if unseen:
        rows = {} if is_catalog_name(records.source) else label_rows(records.source, label_column)
        raise InputDataError(
            f"{_where(records.source, label_column, rows, unseen[0])}: label {unseen[0]!r} never occurs in the "
            f"training data ({trained_on}), so the model cannot predict it; it knows {list(label_names)}. Remove "
            f"those rows or retrain with them" + (f" (other unseen labels: {unseen[1:]})" if len(unseen) > 1 else ""))
    mapping = [index[name] for name in records.label_names]
    return LabelledTexts(records.texts, [mapping[k] for k in records.labels], tuple(label_names), records.source)


def load_labelled_splits(cfg: ClassifyConfig) -> Splits[LabelledTexts]:
    """train / validation / test as LabelledTexts sharing one list of label names."""
    if not (cfg.validation_data or cfg.test_data):
        splits = _load_file(cfg.data, cfg, cfg.split)
        check_enough_per_class(splits.train, cfg.label_column, minimum=1)
        everything = LabelledTexts(splits.train.texts + splits.validation.texts + splits.test.texts,
                                   splits.train.labels + splits.validation.labels + splits.test.labels,
                                   splits.train.label_names, splits.train.source)
        check_enough_per_class(everything, cfg.label_column)
        return splits
    train = _load_file(cfg.data, cfg, "1,0,0").train
    check_enough_per_class(train, cfg.label_column, minimum=1)
    parts = {}
    for name in ("validation_data", "test_data"):
        path = getattr(cfg, name)
        if path:
            parts[name] = relabel(_load_file(path, cfg, "1,0,0").train, train.label_names, cfg.label_column,
                                  cfg.data)
        else:
            parts[name] = LabelledTexts([], [], train.label_names, "")
    return Splits(train, parts["validation_data"], parts["test_data"])


# ============================================================================ batches
class TokenisedTexts(torch.utils.data.Dataset):
    """(token ids, label) pairs, tokenised once."""

    def __init__(self, ids: list[list[int]], labels: list[int]):
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


def make_collate(tokenizer: TextTokenizer):
    def collate(items: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad([ids for ids, _ in items])
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                "labels": torch.tensor([label for _, label in items])}
    return collate


def loss_fn(model: EncoderWithHead, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    logits = model(batch["input_ids"], batch["attention_mask"])  # (B, K)
    return F.cross_entropy(logits.float(), batch["labels"]), len(batch["labels"])


def eval_fn(model: EncoderWithHead, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
    logits = model(batch["input_ids"], batch["attention_mask"]).float()
    n = len(batch["labels"])
    return {"loss": (F.cross_entropy(logits, batch["labels"]), n),
            "accuracy": ((logits.argmax(-1) == batch["labels"]).float().mean(), n)}


def cached_loss_fn(head: SequenceClassificationHead, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    return F.cross_entropy(head.classify(batch["features"]).float(), batch["labels"]), len(batch["labels"])


def cached_eval_fn(head: SequenceClassificationHead, batch: dict[str, torch.Tensor]) -> dict:
    logits = head.classify(batch["features"]).float()
    n = len(batch["labels"])
    return {"loss": (F.cross_entropy(logits, batch["labels"]), n),
            "accuracy": ((logits.argmax(-1) == batch["labels"]).float().mean(), n)}


def collate_features(items: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    return {"features": torch.stack([f for f, _ in items]), "labels": torch.tensor([y for _, y in items])}


# ============================================================================ the task
class ClassifyTask:
    """task=classify in the fine-tuning recipe (tasks/finetune.py)."""

    def load_splits(self, cfg: ClassifyConfig) -> Splits[LabelledTexts]:
        splits = load_labelled_splits(cfg)
        dropped = splits.stats.get("duplicates_dropped", 0) + splits.stats.get("conflicting_label_rows_dropped", 0)
        if dropped and not is_catalog_name(cfg.data):  # a user's row count never shrinks silently
            print(f"note: {cfg.data}: {splits.stats['rows']} rows, of which {splits.stats['duplicates_dropped']} "
                  f"repeat an earlier text and {splits.stats['conflicting_label_rows_dropped']} carry a text that "
                  f"occurs with two different labels; both kinds are left out ({splits.stats['kept']} rows used)",
                  file=sys.stderr)
        return splits

    def make_head(self, cfg: ClassifyConfig, d_model: int, splits: Splits[LabelledTexts]) -> nn.Module:
        return SequenceClassificationHead(d_model, len(splits.train.label_names), cfg.pooling, cfg.head_dropout)

    def make_trainer(self, cfg: ClassifyConfig, encoder: Encoder, data: HeldOut) -> tuple[Trainer, dict[str, Any]]:
        model, tokenizer, max_length = encoder.model, encoder.tokenizer, encoder.max_length
        info = HeadInfo(task="sequence-classification", label_names=list(data.splits.train.label_names),
                        max_length=max_length, pooling=cfg.pooling, head_dropout=cfg.head_dropout,
                        init=encoder.source, mode=cfg.mode,
                        lora={"rank": cfg.lora.rank, "alpha": cfg.lora.alpha, "targets": list(cfg.lora.targets),
                              "merged": True} if cfg.mode == "lora" else None,
                        data=data_reference(cfg.data), split=cfg.split, seed=cfg.seed,
                        validation_data=data_reference(cfg.validation_data),
                        test_data=data_reference(cfg.test_data), text_column=cfg.text_column,
                        label_column=cfg.label_column, bad_rows=cfg.bad_rows,
                        long_text=encoder.reading.to_dict() if encoder.reading.chunked else None)
        if encoder.reading.chunked:
            return windowed_trainer(cfg, encoder, data, info)
        train_ids = tokenizer.encode_ids([t.strip() for t in data.train.texts], max_length)
        before = {"unknown_piece_rate": round(unknown_piece_rate(tokenizer, train_ids, cfg.init, cfg.data), 4)}
        val_ids = tokenizer.encode_ids([t.strip() for t in data.validation.texts], max_length)
        if not val_ids and (cfg.eval_every or cfg.patience):
            raise ConfigError("eval_every/patience need validation data; give split= a validation fraction or "
                              "validation_data=")
        bert, head = model.bert, model.head

        def features(ids: list[list[int]]) -> torch.Tensor:
            return run_encoder(lambda x, m: head.pool(bert(x, m), m), ids, tokenizer)  # (N, C)

        def cached(precision: str) -> tuple[list, list | None]:
            # The encoder's pooled vector of every text, once (dropout off): the head-only phase trains on them.
            with frozen_encoder(bert, precision):
                return (list(zip(features(train_ids), data.train.labels, strict=True)),
                        list(zip(features(val_ids), data.validation.labels, strict=True)) if val_ids else None)

        if cfg.mode == "frozen" and cfg.cache_features:
            # The encoder never changes: train the head on the cached vectors.
            train_set, eval_set = cached("fp32")
            trainer = Trainer(cfg, head, train_set, loss_fn=cached_loss_fn, collate_fn=collate_features,
                              eval_data=eval_set, eval_fn=cached_eval_fn,
                              save_final=lambda h, d: save_finetuned(EncoderWithHead(bert, h), tokenizer, d, info))
            return trainer, before
        if needs_head_warmup(cfg):  # LP-FT: the head first learns on the frozen encoder
            before.update(warm_up_head(cfg, head, *cached(cfg.precision), cached_loss_fn, cached_eval_fn,
                                       collate_features))
        trainer = Trainer(cfg, model, TokenisedTexts(train_ids, data.train.labels), loss_fn=loss_fn,
                          collate_fn=make_collate(tokenizer),
                          eval_data=TokenisedTexts(val_ids, data.validation.labels) if val_ids else None,
                          eval_fn=eval_fn, save_final=lambda m, d: save_finetuned(m, tokenizer, d, info),
                          param_groups=optimizer_groups(cfg.layer_lr_decay, cfg.weight_decay))
        return trainer, before

    def score(self, cfg: ClassifyConfig, final_dir: Path, data: HeldOut) -> dict[str, Any]:
        classifier = TextClassifier.from_dir(final_dir)
        metrics: dict[str, Any] = {}
        for split_name, records in (("validation", data.validation), ("test", data.test)):
            if len(records):
                report = classifier_report(classifier, records)
                report.save(Path(cfg.out_dir), f"eval_{split_name}", extra={"model": str(final_dir),
                                                                            "split": split_name, "data": cfg.data})
                metrics[f"{split_name}_accuracy"] = report.accuracy
                metrics[f"{split_name}_macro_f1"] = report.macro_f1
        metrics.update({f"data_{key}": value for key, value in data.splits.stats.items()})
        metrics.update({"train_examples": len(data.train), "validation_examples": len(data.validation),
                        "test_examples": len(data.test), "label_names": list(data.splits.train.label_names)})
        return metrics


def finetune_classifier(cfg: ClassifyConfig) -> dict[str, Any]:
    """Train, save OUT_DIR/final/, reload it and evaluate it; returns the metrics for metrics.json."""
    return run_finetune(cfg, ClassifyTask())


# ============================================================================ evaluate / predict commands
def evaluation_records(classifier: TextClassifier, data: str, split: str = "auto", text_column: str | None = None,
                       label_column: str | None = None) -> tuple[LabelledTexts, str]:
    """Labelled records to score a trained classifier on, with label ids into its label names.

    split=auto: the held-out test split when `data` is what the model was trained on (same split fractions
    and seed), otherwise every row of `data`. split=train|validation|test|all picks explicitly.
    """
    info = classifier.info
    text_column = text_column or info.text_column
    label_column = label_column or info.label_column
    split = evaluation_split(split, data, info.data)
    if split in ("validation", "test") and same_data(data, info.data) and (info.validation_data or info.test_data):
        held_out = info.test_data or info.validation_data
        raise InputDataError(f"data {data!r} is this model's training data, every row of it (its held-out rows came "
                             f"from {held_out!r}); evaluate on --data {held_out}, or pass --split all to score the "
                             "training rows")
    fractions = info.split if split != "all" else "1,0,0"
    label = None if is_catalog_name(data) else label_column
    bad_rows = info.bad_rows if same_data(data, info.data) else "error"  # training's own rows: skipped alike
    splits = load_dataset(data, split=fractions, seed=info.seed, text_field=text_column, label_field=label,
                          bad_rows=bad_rows, options=("--text-column", "--label-column"), skip_option=None)
    records = splits.train if split == "all" else getattr(splits, split)
    if records.labels is None:
        raise InputDataError(f"data {data!r} has no labels to evaluate against; give a file with a "
                             f"{label_column!r} column (or name it with --label-column)")
    if not len(records):
        if split != "all" and same_data(data, info.data):
            raise InputDataError(f"data {data!r} has no {split} rows: the model was trained with split={fractions}; "
                                 "evaluate on another file (or on --split validation if that has rows)")
        raise InputDataError(f"data {data!r} has no rows in split {split!r}; use --split all")
    return relabel(records, classifier.label_names, label_column, info.data), split


def calibration_texts(classifier: TextClassifier, n: int = 256) -> list[str]:
    """A seeded sample of the classifier's own training texts: what int8 calibration should see."""
    data = classifier.info.data
    if not is_catalog_name(data) and not Path(data).exists():
        raise InputDataError(f"--precision int8 calibrates on the model's training data, {data!r}, which is not "
                             "there any more (models trained before encoderlab recorded absolute paths name it "
                             "relative to where the run started: run from that directory); or use fp32")
    records, _ = evaluation_records(classifier, data, "train")
    return list(seeded_subset(records, n, classifier.info.seed).texts)


def load_classifier(model: str | Path, precision: str = "fp32", long_text: str | None = None,
                    window: int | None = None, stride: int | None = None) -> TextClassifier:
    """A saved classifier, in fp32 or with its encoder quantized to int8 (calibrated on its training texts),
    reading long texts as it was trained to unless `long_text` / `window` / `stride` say otherwise."""
    classifier = TextClassifier.from_dir(model)
    if long_text is not None or window is not None or stride is not None:
        classifier.read_long_texts(long_text, window, stride)
    if precision == "int8":
        from ..compression.quantize import quantize_int8

        return quantize_int8(classifier, calibration_texts(classifier))
    if precision != "fp32":
        raise ConfigError(f"precision={precision!r} is unknown; choose fp32 or int8")
    return classifier


def evaluate_classifier(model: str | Path, data: str, split: str = "auto", output_dir: str | Path | None = None,
                        text_column: str | None = None, label_column: str | None = None,
                        max_examples: int | None = None, precision: str = "fp32", long_text: str | None = None,
                        window: int | None = None, stride: int | None = None) -> tuple[ClassificationReport, Path]:
    """Score a fine-tuned classifier on `data`; write eval_<name>.json and its confusion-matrix PNG. Long texts
    are read as the model was trained to (head.json), unless long_text / window / stride say otherwise."""
    classifier = load_classifier(model, precision, long_text, window, stride)
    records, split = evaluation_records(classifier, data, split, text_column, label_column)
    records = seeded_subset(records, max_examples, classifier.info.seed)
    report = classifier_report(classifier, records)
    name = Path(data).stem if not is_catalog_name(data) else data
    directory = Path(output_dir) if output_dir else Path(model) / "evaluations"
    suffix = "" if precision == "fp32" else f"_{precision}"
    path = report.save(directory, f"eval_{name}_{split}{suffix}",
                       extra={"model": str(model), "data": data, "split": split, "precision": precision,
                              "long_text": classifier.long_text.to_dict()})
    return report, path


def read_prediction_inputs(path: str | Path, text_column: str = "text") -> list[str]:
    """Texts of a .txt (one per line), .jsonl (field `text_column`) or .csv (column `text_column`) file."""
    from ..data.text_input import read_texts

    path = Path(path)
    texts = read_texts(path, text_field=text_column, text_option="--text-column")
    if not texts:
        raise InputDataError(f"input file {str(path)!r} is empty; give it at least one text")
    return texts


def predict_file(model: str | Path, input_path: str | Path, output_path: str | Path, text_column: str = "text",
                 batch_size: int = 64, precision: str = "fp32", long_text: str | None = None,
                 window: int | None = None, stride: int | None = None) -> int:
    """Write one JSON line per input text: text, predicted label and every class probability; or, for an
    output ending in .csv / .tsv, one row per text with the columns text, label, prob_<class>...
    Long texts are read as the model was trained to, unless long_text / window / stride say otherwise."""
    import io

    from ..files import atomic_write_text

    classifier = load_classifier(model, precision, long_text, window, stride)
    texts = read_prediction_inputs(input_path, text_column)
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if len(blank) == len(texts):
        raise InputDataError(f"input file {str(input_path)!r} holds only empty texts; give it at least one text")
    if blank:  # no label for an empty text, but its row stays, so output row k is still input row k
        print(f"note: {len(blank)} empty text(s) in {input_path} (the first: row {blank[0] + 1}) get no label",
              file=sys.stderr)
    labelled = [i for i, text in enumerate(texts) if text.strip()]
    probs: list[Any] = [None] * len(texts)  # (K,) probabilities, None for an empty text
    for i, row in zip(labelled, classifier.predict_proba([texts[i] for i in labelled], batch_size), strict=True):
        probs[i] = row
    names = classifier.label_names
    suffix = Path(output_path).suffix.lower()
    if suffix in (".csv", ".tsv"):  # a table for spreadsheets
        table = io.StringIO()
        writer = csv.writer(table, delimiter="\t" if suffix == ".tsv" else ",", lineterminator="\n")
        writer.writerow(["text", "label", *(f"prob_{name}" for name in names)])
        for text, row in zip(texts, probs, strict=True):
            writer.writerow([text, "", *[""] * len(names)] if row is None else
                            [text, names[int(row.argmax())], *(f"{float(p):.6f}" for p in row)])
        atomic_write_text(output_path, table.getvalue())
        return len(texts)
    lines = []
    for text, row in zip(texts, probs, strict=True):
        lines.append(json.dumps({"text": text, "label": None, "probabilities": None} if row is None else
                                {"text": text, "label": names[int(row.argmax())],
                                 "probabilities": {n: round(float(p), 6) for n, p in zip(names, row, strict=True)}},
                                ensure_ascii=False))
    atomic_write_text(output_path, "\n".join(lines) + "\n")
    return len(lines)
