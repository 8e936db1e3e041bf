"""Distil a teacher encoder into a shallower student (see `encoderlab.compression.distillation` for the method).

    encoderlab distill --config configs/distill-minilm.yaml            # sentence embeddings, teacher minilm
    encoderlab distill --config configs/distill-tweets.yaml            # a fine-tuned classifier, KL on logits
    distill(DistillConfig(teacher="minilm", data="tweets-sentiment", out_dir="runs/x", max_steps=100))

mode=embeddings: the teacher is an encoder (an alias, a checkpoint directory or a run directory); the
training data is unlabelled text (`data=`: catalog names, comma-separated, or the user's .txt / .jsonl /
.csv). The student learns the teacher's pooled sentence embeddings (MSE and/or 1 - cosine, optionally
the hidden states of the kept blocks). OUT_DIR/final/ is a plain encoder directory with the teacher's
pooling, normalisation and max_seq_length: `encoderlab encode/bench --model OUT_DIR/final` and
`TextEncoder.from_pretrained` read it.

mode=logits: the teacher is a fine-tuned classifier (the OUT_DIR of `encoderlab finetune`). The student
is a shallower copy of its encoder with a copy of its head, trained on the teacher's own training split
(same data, split, seed and subset sizes, read from the teacher's head.json and config.yaml) with KL at a
temperature mixed with cross-entropy on the gold labels. OUT_DIR/final/ is a normal fine-tuned model:
`encoderlab evaluate/predict` and `TextClassifier.from_dir` use it unchanged.

The teacher's targets (pooled embeddings or logits, teacher in eval mode) are computed once before
training; only hidden-state distillation runs the teacher at every step. Every reported number is
measured on held-out data with the saved student loaded back as a user would load it, next to the
teacher on the same texts: embedding cosine (mean, worst), or test accuracy / macro-F1 of both; the
parameter counts; and the speed of both, side by side in this process, on the same real-text batches.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..artifacts.aliases import ALIASES, resolve_model_path
from ..artifacts.classifier import TextClassifier, run_encoder, saved_reading
from ..artifacts.finetuned import HEAD_CONFIG, HeadInfo, export_encoder, load_finetuned, read_head_info, save_finetuned
from ..artifacts.text_encoder import TextEncoder
from ..compression.distillation import (
    alternate_layers,
    block_outputs,
    check_layers,
    embedding_distillation_loss,
    hidden_state_loss,
    logit_distillation_loss,
    make_student,
)
from ..compression.quantize import embedding_agreement
from ..config import read_yaml
from ..data.catalog import load_text_splits
from ..data.records import LabelledTexts, seeded_subset
from ..errors import CheckpointError, ConfigError, InputDataError
from ..evaluation.classification import classifier_report
from ..evaluation.speed import measure, real_text_workloads
from ..files import atomic_write_json
from ..models.bert import BertModel
from ..models.heads import EncoderWithHead, ProjectionHead, SequenceClassificationHead
from ..models.windowed import WindowedClassifier
from ..nn.pooling import pool
from ..tokenization import TextTokenizer
from ..training import TrainConfig, Trainer
from ..training.distributed import unwrap
from ..training.precision import apply_threads
from .classify import ClassifyConfig, load_labelled_splits, relabel
from .classify_windows import save_windowed, windows_per_text

DISTILL_INFO = "distillation.json"  # written next to the student's weights: where it came from


@dataclass
class DistillConfig(TrainConfig):
    out_dir: str = "runs/distill"
    """Where the run is written (default: a directory of its own per command)."""
    mode: Literal["embeddings", "logits"] = "embeddings"
    """embeddings: match the teacher's sentence embeddings on unlabelled text; logits: match a fine-tuned
    classifier's logits (KL at `temperature`) mixed with cross-entropy on its gold labels."""
    teacher: str = "minilm"
    """embeddings: an alias (minilm), a checkpoint directory or a run directory; logits: the OUT_DIR of
    `encoderlab finetune` (or its final/) for a text classifier."""
    layers: list[int] | None = None
    """Teacher blocks the student keeps, in order (0-based, e.g. layers=0,3,5); null: `student_layers` evenly
    spaced blocks ending at the last one (6 -> 3 keeps 1, 3, 5)."""
    student_layers: int | None = None
    """Number of student blocks when `layers` is null; null: half the teacher's."""
    data: str = ""
    """embeddings: unlabelled text — catalog names, comma-separated (tweets-sentiment,bbc-news), or a .txt (one
    text per line), .jsonl or .csv (see text_field), or a folder of .txt files. logits: empty uses the
    teacher's training data (recommended); a labelled catalog name or file replaces it."""
    text_field: str = "text"
    """embeddings: the .jsonl field or .csv column holding the text (logits mode reads the teacher's columns)."""
    text_column: str = ""
    """logits with data=: that file's text column (or JSON field); empty: the teacher's own text_column."""
    label_column: str = ""
    """logits with data=: that file's label column (or JSON field); empty: the teacher's own label_column."""
    bad_rows: Literal["error", "warn"] = "error"
    """A data= file's unusable rows (an empty text or label): stop with an error listing them, or skip them with a
    warning. logits on the teacher's own data: as the teacher read it."""
    split: str = "0.8,0.1,0.1"
    """embeddings: train,validation,test fractions of `data` (seeded). logits: the teacher's split is used."""
    max_train_examples: int | None = None
    """Train on a seeded subset of this many texts. null: all (embeddings) / the teacher's (logits)."""
    max_eval_examples: int | None = None
    """Validation texts for the eval loss and cosine/accuracy (null: all / the teacher's in logits mode)."""
    max_test_examples: int | None = None
    """Held-out texts every reported number is measured on (null: all / the teacher's in logits mode)."""
    max_length: int | None = None
    """Truncate training texts to this many word pieces; null: the teacher's max_seq_length (embeddings) or
    the classifier's max_length (logits). The saved student keeps the teacher's limit for inference."""
    mse_weight: float = 1.0
    """embeddings: weight of the MSE between student and teacher pooled embeddings (not normalised)."""
    cosine_weight: float = 1.0
    """embeddings: weight of 1 - cosine(student, teacher) on pooled embeddings."""
    hidden_weight: float = 0.0
    """Weight of the MSE between each kept block's output and its teacher block's (0 = off; runs the
    teacher at every step)."""
    temperature: float = 2.0
    """logits: softmax temperature T of the KL term (multiplied by T²); 1-4 is typical."""
    kd_weight: float = 0.5
    """logits: share of the KL term; 1 - kd_weight goes to cross-entropy on the gold labels."""
    lr: float = 1e-4
    warmup_steps: int = 10
    log_every: int = 20
    speed_batch_size: int = 32
    """Sentences per batch in the side-by-side speed measurement."""
    speed_repeats: int = 20
    """Timed calls per model and workload (median reported); 0 skips the speed measurement."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in ("embeddings", "logits"):
            raise ConfigError(f"mode={self.mode!r} is unknown; choose embeddings or logits")
        if not self.teacher:
            raise ConfigError("teacher is empty; use teacher=minilm, a checkpoint directory, or (mode=logits) the "
                              "OUT_DIR of `encoderlab finetune`")
        if self.layers is not None:  # the range is checked against the teacher once it is loaded
            if not self.layers:
                raise ConfigError("layers=[] keeps no teacher block; name at least one (e.g. layers=1,3,5), or "
                                  "leave it null for alternate layers")
            if min(self.layers) < 0 or self.layers != sorted(set(self.layers)):
                raise ConfigError(f"layers={self.layers} must be distinct, increasing block indices >= 0, e.g. "
                                  f"layers={','.join(str(i) for i in sorted({abs(i) for i in self.layers}))}")
        if self.student_layers is not None and self.student_layers < 1:
            raise ConfigError(f"student_layers={self.student_layers} must be >= 1")
        if self.temperature <= 0:
            raise ConfigError(f"temperature={self.temperature} must be positive (1-4 is typical; higher softens "
                              "the teacher's distribution)")
        if not 0.0 <= self.kd_weight <= 1.0:
            raise ConfigError(f"kd_weight={self.kd_weight} must be in [0, 1] (the share of the teacher's KL term)")
        for name in ("mse_weight", "cosine_weight", "hidden_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (0 turns the term off)")
        if self.mode == "embeddings" and not (self.mse_weight or self.cosine_weight or self.hidden_weight):
            raise ConfigError("mse_weight, cosine_weight and hidden_weight are all 0: nothing to learn; set at "
                              "least one, e.g. cosine_weight=1")
        if (self.text_column or self.label_column) and not (self.mode == "logits" and self.data):
            raise ConfigError("text_column= / label_column= name the columns of a labelled data= file in "
                              "mode=logits; for unlabelled text (mode=embeddings) use text_field=")
        if self.mode == "embeddings" and not self.data:
            raise ConfigError("data is empty; mode=embeddings needs unlabelled text: a catalog name "
                              "(data=tweets-sentiment,bbc-news) or a .txt/.jsonl/.csv file")
        for name in ("max_train_examples", "max_eval_examples", "max_test_examples"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ConfigError(f"{name}={value} must be >= 2, or null")
        if self.max_length is not None and self.max_length < 4:
            raise ConfigError(f"max_length={self.max_length} is too short; use e.g. max_length=128")
        if self.speed_batch_size < 1 or self.speed_repeats < 0:
            raise ConfigError("speed_batch_size must be >= 1 and speed_repeats >= 0 (0 skips the speed test)")


# ============================================================================ teachers
def classifier_teacher_dir(teacher: str) -> Path:
    """The final/ directory of a fine-tuned text classifier; anything else is an error saying what to pass."""
    path = Path(teacher).expanduser()
    for candidate in (path, path / "final"):
        if (candidate / HEAD_CONFIG).is_file():
            task = read_head_info(candidate).task
            if task != "sequence-classification":
                raise CheckpointError(f"teacher={teacher!r} is a {task} model; mode=logits distils text "
                                      "classifiers (task=classify runs of `encoderlab finetune`)")
            return candidate
    if not path.exists() and teacher.lower() not in ALIASES:
        raise CheckpointError(f"teacher={teacher!r} does not exist; mode=logits needs the OUT_DIR of `encoderlab "
                              "finetune` (a text classifier), e.g. teacher=runs/finetune-tweets")
    raise CheckpointError(f"teacher={teacher!r} is not a fine-tuned classifier (no {HEAD_CONFIG}); mode=logits needs "
                          "the OUT_DIR of `encoderlab finetune`. To distil a plain encoder use mode=embeddings")


def teacher_run_config(final_dir: Path) -> dict[str, Any]:
    """The config.yaml of the run that produced `final_dir` (its parent), or {} when there is none."""
    path = final_dir.parent / "config.yaml"
    return read_yaml(path) if final_dir.name == "final" and path.is_file() else {}


def student_from(teacher: BertModel, cfg: DistillConfig) -> tuple[BertModel, list[int]]:
    """(the student, in training mode; the teacher blocks it keeps)."""
    n_teacher = len(teacher.blocks)
    layers = check_layers(cfg.layers, n_teacher) if cfg.layers is not None else \
        alternate_layers(n_teacher, cfg.student_layers)
    return make_student(teacher, layers, cfg.student_layers).train(), layers


# ============================================================================ data
class DistillItems(torch.utils.data.Dataset):
    """(token ids, teacher target, gold label or -1) triples; targets are computed once, before training. For a
    classifier that reads long texts in windows, a text's ids are its windows' ids (a list of lists)."""

    def __init__(self, ids: list, targets: torch.Tensor, labels: list[int] | None = None):
        self.ids, self.targets = ids, targets
        self.labels = labels if labels is not None else [-1] * len(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], torch.Tensor, int]:
        return self.ids[i], self.targets[i], self.labels[i]


def make_collate(tokenizer: TextTokenizer, windowed: bool = False):
    """Batches of DistillItems; `windowed`: every window of the batch's texts, text after text, and `counts`
    (windows per text), as tasks/classify_windows.py batches them."""
    def collate(items: list[tuple[list, torch.Tensor, int]]) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad([w for ids, _, _ in items for w in ids] if windowed else [ids for ids, _, _ in items])
        out = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
               "targets": torch.stack([t for _, t, _ in items]), "labels": torch.tensor([y for _, _, y in items])}
        if windowed:
            out["counts"] = torch.tensor([len(ids) for ids, _, _ in items])
        return out
    return collate


def _forward(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The student's output for a batch: of its texts, or of its texts' windows pooled per text."""
    if "counts" in batch:
        return m(batch["input_ids"], batch["attention_mask"], batch["counts"])
    return m(batch["input_ids"], batch["attention_mask"])


def _tokenise(tokenizer: TextTokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer.encode_ids([t.strip() for t in texts], max_length)


def _text_splits(cfg: DistillConfig) -> tuple[list[str], list[str], list[str]]:
    splits = load_text_splits(cfg.data, split=cfg.split, seed=cfg.seed, text_field=cfg.text_field,
                              bad_rows=cfg.bad_rows)
    train, validation, test = (seeded_subset(part, limit, cfg.seed) for part, limit in (
        (splits.train, cfg.max_train_examples), (splits.validation, cfg.max_eval_examples),
        (splits.test, cfg.max_test_examples)))
    if not len(test):
        n = len(splits.train) + len(splits.validation) + len(splits.test)
        raise InputDataError(f"data {cfg.data!r}: {n} texts leave no held-out test text with split={cfg.split} "
                             "(its test part rounds to 0 texts); give more texts or a larger test fraction, e.g. "
                             "split=0.6,0.2,0.2")
    return train.texts, validation.texts, test.texts


def _labelled_splits(cfg: DistillConfig, info: HeadInfo, run: dict[str, Any]):
    """The teacher's own train / validation / test records (its data, split, seed and subset sizes)."""
    data = cfg.data or info.data or run.get("data")
    if not data:
        raise ConfigError("the teacher's head.json does not say what it was trained on; give data= (a labelled "
                          "catalog name or .csv/.jsonl)")
    classify_cfg = ClassifyConfig(
        data=data, split=info.split, seed=info.seed, text_column=cfg.text_column or info.text_column,
        label_column=cfg.label_column or info.label_column,
        # the teacher's own held-out files: in its run's config.yaml, or in head.json when given its final/
        validation_data=(run.get("validation_data") or info.validation_data) if not cfg.data else "",
        test_data=(run.get("test_data") or info.test_data) if not cfg.data else "", out_dir=cfg.out_dir,
        # a teacher trained with bad_rows=warn skipped its file's unusable rows: read the file as it did
        bad_rows=run.get("bad_rows", "error") if not cfg.data else cfg.bad_rows)
    splits = load_labelled_splits(classify_cfg)
    names = info.label_names
    limits = {name: getattr(cfg, name) if getattr(cfg, name) is not None else run.get(name)
              for name in ("max_train_examples", "max_eval_examples", "max_test_examples")}
    parts = []
    for records, limit in ((splits.train, limits["max_train_examples"]),
                           (splits.validation, limits["max_eval_examples"]),
                           (splits.test, limits["max_test_examples"])):
        records = relabel(records, names, classify_cfg.label_column, info.data)
        parts.append(seeded_subset(records, limit, classify_cfg.seed))
    if not len(parts[2]):
        raise InputDataError(f"data {data!r} has no test split to compare student and teacher on; give it one")
    return data, parts


# ============================================================================ speed, side by side
def side_by_side_speed(teacher_fn, student_fn, encoder: TextEncoder, held_out: list[str], cfg: DistillConfig,
                       label: str) -> dict[str, Any]:
    """Sentences/s of teacher and student on the same real-text batches, alternating calls (evaluation.speed)."""
    if not cfg.speed_repeats:
        return {}
    workloads = real_text_workloads(encoder, cfg.speed_batch_size)
    workloads[f"held-out {label} {min(cfg.speed_batch_size, len(held_out))} texts"] = held_out[:cfg.speed_batch_size]
    results = measure({"teacher": teacher_fn, "student": student_fn}, workloads, repeats=cfg.speed_repeats)
    rows = {}
    for workload in workloads:
        by_engine = {r.engine: r for r in results if r.workload == workload}
        rows[workload] = {"teacher_sentences_per_s": round(by_engine["teacher"].sentences_per_s, 2),
                          "student_sentences_per_s": round(by_engine["student"].sentences_per_s, 2),
                          "teacher_p50_ms": round(by_engine["teacher"].p50_ms, 1),
                          "student_p50_ms": round(by_engine["student"].p50_ms, 1),
                          "speedup": round(by_engine["student"].sentences_per_s
                                           / by_engine["teacher"].sentences_per_s, 3)}
    return {"speed": rows, "speed_threads": torch.get_num_threads(), "speed_repeats": cfg.speed_repeats,
            "speedup_variable_length": next(v["speedup"] for k, v in rows.items() if k.startswith("variable"))}


# ============================================================================ the task
def distill(cfg: DistillConfig) -> dict[str, Any]:
    """Build the student, train it on the teacher's outputs, save OUT_DIR/final/, measure both side by side."""
    started = time.perf_counter()
    apply_threads(cfg.threads)
    if cfg.mode == "embeddings":
        return _distill_embeddings(cfg, started)
    return _distill_logits(cfg, started)


def _train(cfg: DistillConfig, model: EncoderWithHead | WindowedClassifier, teacher: BertModel, train: DistillItems,
           validation: DistillItems | None, tokenizer: TextTokenizer, layers: list[int], objective, save_final):
    """Run the shared Trainer. objective(student_output, batch) -> the output-matching loss."""

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        ids, mask, n = batch["input_ids"], batch["attention_mask"], len(batch["targets"])
        if not cfg.hidden_weight:
            return objective(_forward(m, batch), batch), n
        with block_outputs(unwrap(m).bert) as student_states:
            out = _forward(m, batch)
        with torch.no_grad(), block_outputs(teacher) as teacher_states:
            teacher(ids, mask)  # windows too: block states are per window
        loss = objective(out, batch) + cfg.hidden_weight * hidden_state_loss(student_states, teacher_states, layers)
        return loss, n

    def eval_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
        out = _forward(m, batch).float()
        n = len(out)
        metrics = {"loss": (objective(out, batch), n)}
        if cfg.mode == "embeddings":
            metrics["cosine"] = (torch.nn.functional.cosine_similarity(out, batch["targets"], dim=-1).mean(), n)
        else:
            metrics["accuracy"] = ((out.argmax(-1) == batch["labels"]).float().mean(), n)
            metrics["teacher_agreement"] = ((out.argmax(-1) == batch["targets"].argmax(-1)).float().mean(), n)
        return metrics

    windowed = isinstance(model, WindowedClassifier)
    trainer = Trainer(cfg, model, train, loss_fn=loss_fn, collate_fn=make_collate(tokenizer, windowed),
                      eval_data=validation, eval_fn=eval_fn, save_final=save_final,
                      lengths=[sum(map(len, ids)) if windowed else len(ids) for ids in train.ids])
    teacher.to(trainer.device).eval().requires_grad_(False)
    train_started = time.perf_counter()
    result = trainer.fit()
    teacher.cpu()  # the measurements below run on the CPU, as users load models
    return result, time.perf_counter() - train_started


def _distill_embeddings(cfg: DistillConfig, started: float) -> dict[str, Any]:
    teacher_dir = resolve_model_path(cfg.teacher)
    teacher = TextEncoder.from_pretrained(teacher_dir)
    tokenizer = teacher.tokenizer
    max_length = min(cfg.max_length or teacher.max_seq_length, teacher.max_seq_length)
    train_texts, val_texts, test_texts = _text_splits(cfg)
    if len(train_texts) < 2:
        raise InputDataError(f"data {cfg.data!r} gives {len(train_texts)} training text(s) with split={cfg.split}; "
                             "distillation needs many (thousands for a good student)")

    student, layers = student_from(teacher.bert, cfg)
    model = EncoderWithHead(student, ProjectionHead(student.cfg.d_model, None, teacher.pooling, normalize=False))

    def targets(texts: list[str]) -> tuple[list[list[int]], torch.Tensor]:
        ids = _tokenise(tokenizer, texts, max_length)
        return ids, run_encoder(lambda x, m: pool(teacher.bert(x, m), m, teacher.pooling), ids, tokenizer,
                                model=teacher.bert)  # (N, C), batches side by side on the cores

    train = DistillItems(*targets(train_texts))
    validation = DistillItems(*targets(val_texts)) if val_texts else None

    def objective(out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return embedding_distillation_loss(out.float(), batch["targets"], cfg.mse_weight, cfg.cosine_weight)

    def student_encoder(bert: BertModel) -> TextEncoder:
        return TextEncoder(bert, tokenizer, pooling=teacher.pooling, normalize=teacher.normalize,
                           max_seq_length=teacher.max_seq_length, do_lower_case=teacher.do_lower_case)

    info = {"mode": "embeddings", "teacher": str(teacher_dir), "layers": layers, "data": cfg.data}

    def save_final(trained: EncoderWithHead, directory: Path) -> None:
        student_encoder(export_encoder(trained)).save_pretrained(directory)
        atomic_write_json(directory / DISTILL_INFO, info)

    initial = embedding_agreement(teacher, student_encoder(student.eval()), test_texts)
    result, train_seconds = _train(cfg, model, teacher.bert, train, validation, tokenizer, layers, objective,
                                   save_final)

    # Every reported number comes from the saved directory, loaded back through the generic path.
    saved = TextEncoder.from_pretrained(result.final_dir)
    final = embedding_agreement(teacher, saved, test_texts)
    metrics: dict[str, Any] = dict(result.metrics)
    metrics.update({
        "mode": "embeddings", "teacher": str(teacher_dir), "layers": layers,
        "teacher_layers": len(teacher.bert.blocks), "student_layers": len(saved.bert.blocks),
        "teacher_parameters": teacher.bert.num_parameters(), "student_parameters": saved.bert.num_parameters(),
        "test_examples": final.n_texts, "initial_test_cosine_mean": initial.mean_cosine,
        "initial_test_cosine_worst": initial.min_cosine, "test_cosine_mean": final.mean_cosine,
        "test_cosine_worst": final.min_cosine, "train_examples": len(train), "train_seconds": round(train_seconds, 1),
    })
    metrics.update(side_by_side_speed(
        lambda texts: teacher.encode(texts, batch_size=len(texts)),
        lambda texts: saved.encode(texts, batch_size=len(texts)), teacher, test_texts, cfg, cfg.data))
    metrics.update({"seconds": round(time.perf_counter() - started, 1), "final_dir": str(result.final_dir)})
    return metrics


def _distill_logits(cfg: DistillConfig, started: float) -> dict[str, Any]:
    teacher_dir = classifier_teacher_dir(cfg.teacher)
    teacher_model, tokenizer, teacher_info = load_finetuned(teacher_dir)
    run = teacher_run_config(teacher_dir)
    data, (train, validation, test) = _labelled_splits(cfg, teacher_info, run)
    max_length = min(cfg.max_length or teacher_info.max_length, teacher_model.bert.cfg.max_positions)
    head: SequenceClassificationHead = teacher_model.head

    student, layers = student_from(teacher_model.bert, cfg)
    student_head = SequenceClassificationHead(student.cfg.d_model, len(teacher_info.label_names), head.pooling,
                                              teacher_info.head_dropout)
    student_head.load_state_dict(head.state_dict())
    # A teacher trained with long_text=chunk reads whole texts in windows: the student gets a copy of its window
    # pooling (a learned attention too), learns the teacher's logits of whole texts through every window, and
    # is saved reading long texts the same way (head.json's long_text, window_pool.safetensors).
    reading, window_pool = saved_reading(teacher_dir, teacher_info, teacher_model.bert.cfg.d_model)
    teacher_classifier = TextClassifier(teacher_model, tokenizer, teacher_info, window_pool)
    student_pool = copy.deepcopy(window_pool)
    model = WindowedClassifier(student, student_head, student_pool) if reading.chunked else \
        EncoderWithHead(student, student_head)

    def items(records: LabelledTexts) -> DistillItems:
        if reading.chunked:  # targets: the teacher's logits of whole texts, (N, K)
            return DistillItems(windows_per_text(tokenizer, records.texts, reading),
                                teacher_classifier.logits(records.texts), records.labels)
        ids = _tokenise(tokenizer, records.texts, max_length)
        return DistillItems(ids, run_encoder(teacher_model, ids, tokenizer, model=teacher_model),
                            records.labels)  # targets: (N, K)

    train_items = items(train)
    validation_items = items(validation) if len(validation) else None

    def objective(out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return logit_distillation_loss(out.float(), batch["targets"], batch["labels"], cfg.temperature,
                                       cfg.kd_weight)

    info = {"mode": "logits", "teacher": str(teacher_dir), "layers": layers, "temperature": cfg.temperature,
            "kd_weight": cfg.kd_weight}
    student_info = dataclasses.replace(teacher_info, max_length=max_length, mode="full",
                                       init=f"distilled from {teacher_dir}", distilled=info)

    def save_final(trained: EncoderWithHead | WindowedClassifier, directory: Path) -> None:
        if isinstance(trained, WindowedClassifier):
            save_windowed(trained.bert, trained, tokenizer, directory, student_info)
        else:
            save_finetuned(trained, tokenizer, directory, student_info)
        atomic_write_json(directory / DISTILL_INFO, info)

    initial = classifier_report(TextClassifier(EncoderWithHead(student, student_head), tokenizer, student_info,
                                               student_pool), test)
    result, train_seconds = _train(cfg, model, teacher_model.bert, train_items, validation_items, tokenizer, layers,
                                   objective, save_final)

    saved = TextClassifier.from_dir(result.final_dir)
    out_dir = Path(cfg.out_dir)
    metrics: dict[str, Any] = dict(result.metrics)
    metrics.update({"mode": "logits", "teacher": str(teacher_dir), "layers": layers,
                    "teacher_layers": len(teacher_model.bert.blocks), "student_layers": len(saved.model.bert.blocks),
                    "teacher_parameters": sum(p.numel() for p in teacher_model.parameters()),
                    "student_parameters": sum(p.numel() for p in saved.model.parameters()),
                    "data": data, "train_examples": len(train), "validation_examples": len(validation),
                    "test_examples": len(test), "label_names": teacher_info.label_names,
                    "initial_student_test_accuracy": initial.accuracy})
    for split_name, records in (("validation", validation), ("test", test)):
        if not len(records):
            continue
        for who, classifier in (("student", saved), ("teacher", teacher_classifier)):
            report = classifier_report(classifier, records)
            if who == "student":  # the same files `encoderlab finetune` writes for its model
                report.save(out_dir, f"eval_{split_name}", extra={"model": str(result.final_dir),
                                                                  "split": split_name, "data": data})
            metrics[f"{who}_{split_name}_accuracy"] = report.accuracy
            metrics[f"{who}_{split_name}_macro_f1"] = report.macro_f1
    metrics["test_accuracy"], metrics["test_macro_f1"] = metrics["student_test_accuracy"], \
        metrics["student_test_macro_f1"]
    metrics["accuracy_gap_points"] = round(100 * (metrics["teacher_test_accuracy"]
                                                  - metrics["student_test_accuracy"]), 2)
    agree = saved.predict_proba(test.texts).argmax(-1) == teacher_classifier.predict_proba(test.texts).argmax(-1)
    metrics["test_teacher_agreement"] = float(np.mean(agree))
    speed_encoder = TextEncoder(teacher_model.bert, tokenizer)  # only its tokenizer cuts the real-text batches
    metrics.update(side_by_side_speed(
        lambda texts: teacher_classifier.predict_proba(texts, batch_size=len(texts)),
        lambda texts: saved.predict_proba(texts, batch_size=len(texts)), speed_encoder, test.texts, cfg, data))
    metrics.update({"train_seconds": round(train_seconds, 1), "seconds": round(time.perf_counter() - started, 1),
                    "final_dir": str(result.final_dir)})
    return metrics
