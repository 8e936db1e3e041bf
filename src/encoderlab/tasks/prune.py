"""Prune a fine-tuned text classifier, fine-tune it to recover, and report sparsity against accuracy and speed.

    encoderlab prune --config configs/prune-tweets.yaml model=runs/tweets method=heads sparsity=0.25
    prune_classifier(PruneConfig(model="runs/tweets", method="magnitude", sparsity=0.5, out_dir="runs/p"))

The recipe: load the classifier (the OUT_DIR of `encoderlab finetune`) and the data splits it was trained on
(same seed, fractions and subsets, so the test split is the teacher run's); score it on the test split;
prune a copy (`encoderlab.compression.pruning`: magnitude masks, or heads / feed-forward neurons ranked by
importance on training batches and physically removed); score it again; fine-tune it for `recovery_steps`
on the training split with the shared Trainer (magnitude masks re-applied after every step); save OUT_DIR/final/
as an ordinary fine-tuned model; reload that directory and score it; then time the original and the pruned
model side by side on real variable-length batches. `OUT_DIR/pruning.json` holds the plan (which heads and
neurons went, per-layer sparsity) and the pre-recovery scores, so `--resume` continues with the same plan.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..artifacts.classifier import TextClassifier, saved_reading
from ..artifacts.finetuned import HeadInfo, finetuned_dir, load_finetuned, save_finetuned
from ..compression.pruning import (
    WeightMasks,
    check_sparsity,
    choose_units,
    count_units,
    magnitude_masks,
    prunable_linears,
    prune_ffn,
    prune_heads,
    structured_importance,
    weight_sparsity,
)
from ..config import load_config, read_yaml
from ..data.records import LabelledTexts, seeded_subset
from ..errors import ConfigError
from ..evaluation.classification import classifier_report
from ..files import atomic_write_json
from ..models.heads import EncoderWithHead
from ..models.windowed import WindowedClassifier
from ..nn.windows import WindowPool
from ..tokenization import TextTokenizer
from ..training import TrainConfig, Trainer
from ..training.precision import apply_threads
from .classify import (
    ClassifyConfig,
    TokenisedTexts,
    eval_fn,
    load_labelled_splits,
    loss_fn,
    make_collate,
    relabel,
)
from .classify_windows import (
    make_window_collate,
    save_windowed,
    windowed_eval_fn,
    windowed_loss_fn,
    windows_per_text,
)

Method = Literal["magnitude", "heads", "ffn", "heads+ffn"]
PLAN_FILE = "pruning.json"
DATA_KEYS = ("data", "validation_data", "test_data", "split", "seed", "text_column", "label_column",
             "max_train_examples", "max_eval_examples", "max_test_examples", "bad_rows")
"""The teacher's data settings that decide which rows it trained on (bad_rows=warn: its file's unusable rows
were skipped, so reading the file again must skip them too)."""


@dataclass
class PruneConfig(TrainConfig):
    model: str = ""
    """The fine-tuned text classifier to prune: the OUT_DIR of `encoderlab finetune` (or its final/)."""
    method: Method = "magnitude"
    """magnitude: zero the smallest weights (unstructured); heads / ffn / heads+ffn: remove whole attention
    heads and/or feed-forward neurons, ranked by importance on training data (structured, really smaller)."""
    sparsity: float = 0.5
    """Fraction to remove, in [0, 1): of the encoder's Linear weights (magnitude), of all heads (heads), of all
    feed-forward neurons (ffn), or of both (heads+ffn)."""
    scope: Literal["global", "layer"] = "global"
    """global: one ranking over every layer (a layer keeps at least one head / neuron); layer: the same
    fraction in every layer (every matrix, for magnitude)."""
    recovery_steps: int = 200
    """Fine-tuning steps after pruning, on the teacher's training split (0: save the pruned model as it is).
    Sets max_steps; on --resume, max_steps= extends the recovery."""
    importance_examples: int = 512
    """Training examples whose loss gradients score heads and neurons (structured methods)."""
    data: str = ""
    """Training data for recovery; empty: the data (and split, seed, subsets) the classifier was trained on.
    Its labels must be ones the classifier knows (they are mapped to its label ids by name)."""
    text_column: str = ""
    """With data=: the column (or JSON field) holding the text; empty: the classifier's own text_column."""
    label_column: str = ""
    """With data=: the column (or JSON field) holding the label; empty: the classifier's own label_column."""
    bad_rows: Literal["error", "warn"] = "error"
    """With data=: that file's unusable rows (an empty text or label) stop the run with an error listing them, or
    are skipped with a warning. The classifier's own data is read as it was trained."""
    speed_repeats: int = 10
    """Timed calls per model and workload when comparing speed before/after (0 skips the timing)."""
    speed_batch_size: int = 32
    """Sentences per timed batch."""
    out_dir: str = "runs/prune"
    lr: float = 5e-5
    batch_size: int = 16
    best_metric: str = "eval_accuracy"
    best_mode: Literal["min", "max"] = "max"
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.max_steps is None and self.recovery_steps > 0:
            self.max_steps = self.recovery_steps
        super().__post_init__()
        if not self.model:
            raise ConfigError("model is empty; pass the fine-tuned classifier to prune, e.g. "
                              "model=runs/finetune-tweets (the OUT_DIR of `encoderlab finetune`)")
        check_sparsity(self.sparsity)
        if self.method not in ("magnitude", "heads", "ffn", "heads+ffn"):
            raise ConfigError(f"method={self.method!r} is unknown; choose magnitude, heads, ffn or heads+ffn")
        if self.recovery_steps < 0:
            raise ConfigError(f"recovery_steps={self.recovery_steps} must be >= 0 (0: no recovery fine-tuning)")
        if self.importance_examples < 1:
            raise ConfigError(f"importance_examples={self.importance_examples} must be >= 1, e.g. 512")
        if self.speed_repeats < 0 or self.speed_batch_size < 1:
            raise ConfigError("speed_repeats must be >= 0 (0 skips timing) and speed_batch_size >= 1")


# ============================================================================ the teacher and its data
def teacher_data_config(directory: Path, info: HeadInfo) -> ClassifyConfig:
    """The data settings the classifier in `directory` was trained with: recorded by a previous prune run, or
    its run's config.yaml, or (a bare model directory) head.json's data, split and seed."""
    if info.data_config:
        return ClassifyConfig(**info.data_config)
    run_config = directory.parent / "config.yaml"
    if directory.name == "final" and run_config.is_file():
        saved = read_yaml(run_config)
        if saved.get("task", "classify") == "classify" and "init" in saved:
            return load_config(ClassifyConfig, None, (), base={k: saved[k] for k in DATA_KEYS if k in saved})
    return ClassifyConfig(data=info.data or ClassifyConfig.data, split=info.split, seed=info.seed,
                          text_column=info.text_column, label_column=info.label_column)


def load_teacher(path: str) -> tuple[EncoderWithHead, TextTokenizer, HeadInfo, Path]:
    directory = finetuned_dir(path)
    model, tokenizer, info = load_finetuned(directory)
    if info.task != "sequence-classification":
        raise ConfigError(f"model={path!r} is a {info.task} model; `encoderlab prune` prunes text "
                          "classifiers (the OUT_DIR of `encoderlab finetune` with task=classify)")
    return model, tokenizer, info, directory


def recovery_data_config(cfg: PruneConfig, data_cfg: ClassifyConfig) -> ClassifyConfig:
    """The teacher's data settings, with `data=` (and its text_column= / label_column=) in place of its data."""
    if not cfg.data or cfg.data == data_cfg.data:
        if cfg.text_column or cfg.label_column:
            raise ConfigError("text_column= / label_column= name the columns of a data= file; the classifier's "
                              "own data is read with its own columns (drop them, or give data=)")
        return data_cfg
    columns = {k: v for k, v in (("text_column", cfg.text_column), ("label_column", cfg.label_column)) if v}
    return dataclasses.replace(data_cfg, data=cfg.data, bad_rows=cfg.bad_rows, **columns)


def data_splits(data_cfg: ClassifyConfig, label_names: list[str], trained_on: str
                ) -> tuple[LabelledTexts, LabelledTexts, LabelledTexts]:
    """(train, validation, test) as `data_cfg` draws them, with labels as the classifier's ids: a file's own ids
    follow its own label names (a file holding only some of the classes numbers them differently), so they
    are mapped by name, and a label the classifier does not know is an error naming the row."""
    splits = load_labelled_splits(data_cfg)
    train, validation, test = (
        seeded_subset(relabel(part, label_names, data_cfg.label_column, trained_on), limit, data_cfg.seed)
        for part, limit in ((splits.train, data_cfg.max_train_examples),
                            (splits.validation, data_cfg.max_eval_examples),
                            (splits.test, data_cfg.max_test_examples)))
    return train, validation, test


def _scores(classifier: TextClassifier, records: LabelledTexts) -> dict[str, float]:
    if not len(records):
        return {}
    report = classifier_report(classifier, records)
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}


# ============================================================================ pruning
def make_plan(cfg: PruneConfig, model: EncoderWithHead, tokenizer: TextTokenizer, train_ids: list[list[int]],
              labels: list[int], train_windows: list[list[list[int]]] | None = None,
              window_pool: WindowPool | None = None) -> dict[str, Any]:
    """Which heads / neurons to remove (structured), from importance on the first training examples: the loss
    of the classifier as it reads them (through every window and `window_pool` when `train_windows` is given)."""
    if cfg.method == "magnitude":
        return {}
    n = min(cfg.importance_examples, len(train_ids))
    started = time.perf_counter()
    if train_windows is not None and window_pool is not None:
        reader, items, collate = WindowedClassifier(model.bert, model.head, window_pool), train_windows, \
            make_window_collate(tokenizer)
        loss = windowed_loss_fn
    else:
        reader, items, collate, loss = model, train_ids, make_collate(tokenizer), loss_fn
    batches = [collate(list(zip(items[i:i + 32], labels[i:i + 32], strict=True))) for i in range(0, n, 32)]
    importance = structured_importance(reader, batches, loss)
    plan: dict[str, Any] = {"importance_examples": n, "importance_seconds": round(time.perf_counter() - started, 1)}
    if cfg.method in ("heads", "heads+ffn"):
        plan["heads_removed"] = choose_units(importance.heads, cfg.sparsity, cfg.scope)
        plan["head_importance"] = [[round(float(v), 6) for v in s] for s in importance.heads]
    if cfg.method in ("ffn", "heads+ffn"):
        plan["neurons_removed"] = choose_units(importance.neurons, cfg.sparsity, cfg.scope)
    return plan


def apply_plan(cfg: PruneConfig, model: EncoderWithHead, plan: dict[str, Any]) -> WeightMasks | None:
    """Prune `model` in place as `plan` (or the magnitude rule) says; the masks to keep for magnitude."""
    if cfg.method == "magnitude":
        masks = magnitude_masks(model.bert, cfg.sparsity, cfg.scope)
        masks.apply(model.bert)
        return masks
    if "heads_removed" in plan:
        prune_heads(model.bert, {int(k): v for k, v in plan["heads_removed"].items()})
    if "neurons_removed" in plan:
        prune_ffn(model.bert, {int(k): v for k, v in plan["neurons_removed"].items()})
    return None


def size_report(model: EncoderWithHead) -> dict[str, Any]:
    linear = sum(m.weight.numel() for m in prunable_linears(model.bert).values())
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    return {"parameters": sum(p.numel() for p in model.parameters()), "nonzero_parameters": nonzero,
            "encoder_linear_weights": linear, **count_units(model.bert),
            "layer_heads": [b.attn.n_heads for b in model.bert.blocks],
            "layer_d_ff": [b.ffn.down.in_features for b in model.bert.blocks]}


# ============================================================================ speed
def speed_comparison(before: TextClassifier, after: TextClassifier, test: LabelledTexts, batch_size: int,
                     repeats: int) -> dict[str, Any]:
    """sentences/s of the original and the pruned model, side by side in one process: the classifier on a
    batch of test texts, and the bare encoder on real BBC text of 16-128 tokens (speed.py's workload)."""
    from ..artifacts.text_encoder import TextEncoder
    from ..evaluation.speed import measure, real_text_workloads

    encoders = {name: TextEncoder(clf.model.bert, clf.tokenizer).eval() for name, clf in
                (("before", before), ("after", after))}
    workloads = {key: texts for key, texts in real_text_workloads(encoders["before"], batch_size).items()
                 if key.startswith("variable")}
    tweets = f"classifier, {min(batch_size, len(test))} test texts"
    results = measure({name: (lambda texts, e=e: e.encode(texts, batch_size=len(texts), max_length=512))
                       for name, e in encoders.items()}, workloads, repeats=repeats)
    results += measure({name: (lambda texts, c=c: c.predict_proba(texts, batch_size=len(texts)))
                        for name, c in (("before", before), ("after", after))},
                       {tweets: test.texts[:batch_size]}, repeats=repeats)
    speed: dict[str, Any] = {}
    for workload in dict.fromkeys(r.workload for r in results):  # in measuring order
        rows = {r.engine: r for r in results if r.workload == workload}
        speed[workload] = {"sentences_per_s_before": round(rows["before"].sentences_per_s, 1),
                           "sentences_per_s_after": round(rows["after"].sentences_per_s, 1),
                           "speedup": round(rows["after"].sentences_per_s / rows["before"].sentences_per_s, 3),
                           "p50_ms_before": round(rows["before"].p50_ms, 1),
                           "p50_ms_after": round(rows["after"].p50_ms, 1),
                           "worst_cosine_to_before": round(rows["after"].min_cosine, 5)}
    return speed


# ============================================================================ the task
def prune_classifier(cfg: PruneConfig) -> dict[str, Any]:
    """Prune, recover, save OUT_DIR/final/, reload and score it; returns the metrics for metrics.json."""
    started = time.perf_counter()
    apply_threads(cfg.threads)
    out_dir = Path(cfg.out_dir)
    teacher, tokenizer, info, teacher_dir = load_teacher(cfg.model)
    teacher_data = teacher_data_config(teacher_dir, info)
    data_cfg = recovery_data_config(cfg, teacher_data)
    train, validation, test = data_splits(data_cfg, info.label_names, teacher_data.data)
    max_length = info.max_length
    train_ids = tokenizer.encode_ids([t.strip() for t in train.texts], max_length)
    val_ids = tokenizer.encode_ids([t.strip() for t in validation.texts], max_length)
    # A classifier trained with long_text=chunk keeps reading whole texts: its window pooling (a learned
    # attention too) goes over to the pruned copy, and importance and recovery see every window.
    reading, window_pool = saved_reading(teacher_dir, info, teacher.bert.cfg.d_model)
    train_windows = windows_per_text(tokenizer, train.texts, reading) if reading.chunked else None
    before_clf = TextClassifier(teacher, tokenizer, info, window_pool)

    student, student_pool = copy.deepcopy(teacher), copy.deepcopy(window_pool)
    plan_path = out_dir / PLAN_FILE
    if cfg.resume and plan_path.is_file():
        plan = json.loads(plan_path.read_text(encoding="utf-8"))  # same plan as the interrupted run
        masks = apply_plan(cfg, student, plan)
    else:
        plan = make_plan(cfg, student, tokenizer, train_ids, train.labels, train_windows, student_pool)
        masks = apply_plan(cfg, student, plan)
        plan["size_before"] = size_report(teacher)
        plan["test_before"] = _scores(before_clf, test)
        plan["test_pruned"] = _scores(TextClassifier(student, tokenizer, info, student_pool), test)
        plan["sparsity_pruned"] = weight_sparsity(student.bert)
        atomic_write_json(plan_path, plan)

    new_info = dataclasses.replace(
        info, init=str(teacher_dir), mode="full", data_config={k: getattr(data_cfg, k) for k in DATA_KEYS},
        pruning={"method": cfg.method, "sparsity": cfg.sparsity, "scope": cfg.scope,
                 "recovery_steps": cfg.recovery_steps, "teacher": str(teacher_dir)})
    train_metrics: dict[str, Any] = {}
    train_seconds = 0.0
    if cfg.recovery_steps > 0 and train_windows is not None:  # through the windows; the window pooling trains too
        windowed = WindowedClassifier(student.bert, student.head, student_pool).train()
        val_windows = windows_per_text(tokenizer, validation.texts, reading)
        trainer = Trainer(cfg, windowed, list(zip(train_windows, train.labels, strict=True)),
                          loss_fn=windowed_loss_fn, collate_fn=make_window_collate(tokenizer),
                          eval_data=list(zip(val_windows, validation.labels, strict=True)) if val_windows else None,
                          eval_fn=windowed_eval_fn,
                          save_final=lambda m, d: save_windowed(student.bert, m, tokenizer, d, new_info))
    elif cfg.recovery_steps > 0:
        student.train()
        eval_data = TokenisedTexts(val_ids, validation.labels) if val_ids else None
        trainer = Trainer(cfg, student, TokenisedTexts(train_ids, train.labels), loss_fn=loss_fn,
                          collate_fn=make_collate(tokenizer), eval_data=eval_data, eval_fn=eval_fn,
                          save_final=lambda m, d: save_finetuned(m, tokenizer, d, new_info))
    if cfg.recovery_steps > 0:
        if masks is not None:
            masks.keep_during_training(student.bert, trainer.optimizer)
        train_started = time.perf_counter()
        result = trainer.fit()
        train_seconds = time.perf_counter() - train_started
        train_metrics, final_dir = dict(result.metrics), result.final_dir
    else:
        final_dir = out_dir / "final"
        save_windowed(student.bert, WindowedClassifier(None, student.head, student_pool), tokenizer, final_dir,
                      new_info)

    # Every "after" number comes from the saved directory, loaded back as a user would load it.
    after_clf = TextClassifier.from_dir(final_dir)
    metrics: dict[str, Any] = {"method": cfg.method, "scope": cfg.scope, "sparsity_requested": cfg.sparsity,
                               "recovery_steps": cfg.recovery_steps, **train_metrics}
    size_before, size_after = plan["size_before"], size_report(after_clf.model)
    sparsity = weight_sparsity(after_clf.model.bert)
    removed = 1 - size_after["encoder_linear_weights"] / size_before["encoder_linear_weights"]
    metrics["sparsity"] = sparsity["sparsity"] if cfg.method == "magnitude" else removed
    metrics["encoder_linear_weights_removed"] = removed
    metrics["zero_weight_fraction"] = sparsity["sparsity"]
    metrics["sparsity_per_block"] = sparsity["per_block"]
    for key in ("parameters", "nonzero_parameters", "heads", "ffn_neurons"):
        metrics[f"{key}_before"], metrics[f"{key}_after"] = size_before[key], size_after[key]
    metrics["layer_heads"], metrics["layer_d_ff"] = size_after["layer_heads"], size_after["layer_d_ff"]
    for stage, scores in (("before", plan["test_before"]), ("pruned", plan["test_pruned"])):
        for name, value in scores.items():
            metrics[f"test_{name}_{stage}"] = value
    if len(test):
        report = classifier_report(after_clf, test)
        report.save(out_dir, "eval_test", extra={"model": str(final_dir), "split": "test", "data": data_cfg.data})
        metrics["test_accuracy"], metrics["test_macro_f1"] = report.accuracy, report.macro_f1
    if cfg.speed_repeats:
        metrics["speed"] = speed_comparison(before_clf, after_clf, test if len(test) else train,
                                            cfg.speed_batch_size, cfg.speed_repeats)
    metrics.update({"importance_seconds": plan.get("importance_seconds"), "train_seconds": round(train_seconds, 1),
                    "test_examples": len(test), "train_examples": len(train), "teacher": str(teacher_dir),
                    "seconds": round(time.perf_counter() - started, 1), "final_dir": str(final_dir)})
    return metrics
