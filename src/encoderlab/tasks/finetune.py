"""`encoderlab finetune`: one recipe for every fine-tuning task, and the tasks it runs.

    task=classify   a label per text          tasks/classify.py   -> artifacts/classifier.py
    task=tag        a tag per word            tasks/tag.py        -> artifacts/tagger.py
    task=embed      sentence embeddings       tasks/embed.py      -> artifacts/text_encoder.py

The recipe (`run_finetune`): threads -> the task's splits -> seeded subsets -> the encoder (init=) -> the task's
head -> mode (full / frozen / lora) -> the task's Trainer -> fit, save OUT_DIR/final/ -> load final/ back and
score it, so every reported number is the number of the saved model. A task plugs in through the four methods
of `FinetuneTask`; the fields every task shares (data, split, subset sizes, columns, the encoder's set-up) are
declared and checked once, in `FinetuneConfig`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from torch import nn

from ..config import read_yaml
from ..data.records import Splits, seeded_subset
from ..data.references import same_data
from ..errors import ConfigError, InputDataError
from ..models.heads import EncoderWithHead
from ..nn.windows import LongText, LongTextMode, WindowPooling
from ..tokenization import TextTokenizer
from ..training import TrainConfig, Trainer, TrainResult
from ..training.encoder_setup import DEFAULT_LR, MODES, LoRASpec, Mode, load_encoder, prepare_mode
from ..training.precision import apply_threads
from ..training.seeding import seed_everything

SUBSET_FIELDS = ("max_train_examples", "max_eval_examples", "max_test_examples")


@dataclass
class FinetuneConfig(TrainConfig):
    # ------------------------------------------------------------------ the encoder
    init: str = "minilm"
    """Where the encoder comes from: an alias (minilm), `random`, a checkpoint directory, or the OUT_DIR of
    `encoderlab pretrain` (its final/ is used)."""
    random_like: str = "minilm"
    """init=random only: the checkpoint whose architecture and tokenizer are copied (weights are fresh), so a
    random-init run differs from a pretrained one in the weights alone."""
    mode: Mode = "full"
    """full: train encoder and head; frozen: only the head (a linear probe); lora: LoRA adapters and head."""
    lora: LoRASpec = field(default_factory=LoRASpec)
    """LoRA settings (mode=lora)."""
    layer_lr_decay: float = 1.0
    """Layer-wise lr decay for mode=full: block i trains at lr * decay^(L - i); 1.0 turns it off."""
    max_length: int = 128
    """Truncate inputs to this many word pieces ([CLS] and [SEP] included)."""
    head_dropout: float = 0.1
    """Dropout before the head's linear layer."""
    long_text: LongTextMode = "truncate"
    """Texts longer than max_length: truncate (read the first max_length pieces) or chunk (read all of every
    text in overlapping windows of `window` pieces, pool the windows; classify and embed; nn/windows.py)."""
    window: int | None = None
    """long_text=chunk: word pieces per window, special tokens included; null: max_length."""
    stride: int | None = None
    """long_text=chunk: word pieces between the starts of neighbouring windows (at most window - 2); null:
    three quarters of a window's content, so neighbours share a quarter."""
    window_pooling: WindowPooling = "mean"
    """long_text=chunk: how a text's window vectors become one: mean, max, or attention (classify only)."""
    # ------------------------------------------------------------------ the data (every task)
    data: str = ""
    """The training data: a catalog dataset or a file (what each task reads: see its `data` default)."""
    split: str = "0.8,0.1,0.1"
    """train,validation,test fractions of `data` (seeded; stratified by label where there are labels)."""
    text_column: str = "text"
    """Column (.csv) or field (.jsonl) holding the text."""
    label_column: str = "label"
    """Column (.csv) or field (.jsonl) holding the label."""
    max_train_examples: int | None = None
    """Train on a seeded random subset of this many examples (null: all)."""
    max_eval_examples: int | None = None
    """Validate on a seeded subset of this many validation examples (null: all)."""
    max_test_examples: int | None = None
    """Report test metrics on a seeded subset of this many test examples (null: the whole test split)."""
    # ------------------------------------------------------------------ training defaults for fine-tuning
    lr: float | None = None  # type: ignore[assignment]
    """Peak learning rate; null picks by mode: full 5e-5, lora 1e-3, frozen 3e-3."""
    warmup_steps: int = 0
    best_metric: str = "eval_accuracy"
    best_mode: Literal["min", "max"] = "max"
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} is unknown; choose full, frozen or lora")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.mode]
        super().__post_init__()
        if not 0.0 < self.layer_lr_decay <= 1.0:
            raise ConfigError(f"layer_lr_decay={self.layer_lr_decay} must be in (0, 1]; 1.0 disables it, "
                              "0.8-0.95 is typical")
        if self.layer_lr_decay < 1.0 and self.mode != "full":
            raise ConfigError(f"layer_lr_decay only applies to mode=full (mode={self.mode} trains no encoder "
                              "layers directly); drop it or set mode=full")
        if self.max_length < 4:
            raise ConfigError(f"max_length={self.max_length} is too short; use e.g. max_length=128")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head_dropout={self.head_dropout} must be in [0, 1)")
        if not self.init:
            raise ConfigError("init is empty; use init=minilm, init=random or init=RUN_DIR")
        self.reading()  # bad long_text / window / stride / window_pooling fail here, before any work
        if self.long_text == "chunk" and getattr(self, "task", None) == "tag":
            raise ConfigError("long_text=chunk is for task=classify and task=embed; a tagger reads sentences, "
                              "drop long_text (or split long lines into sentences)")
        if self.long_text == "truncate" and (self.window is not None or self.stride is not None
                                             or self.window_pooling != "mean"):
            raise ConfigError("window, stride and window_pooling only apply to long_text=chunk; add "
                              "long_text=chunk or drop them")
        for name in SUBSET_FIELDS:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1, or null for all")

    def reading(self, max_positions: int | None = None) -> LongText:
        """How the run reads long texts; `max_positions` (the encoder's) caps the window, as it caps max_length."""
        window = self.window or self.max_length
        if max_positions is not None and window > max_positions:
            if self.window is not None:
                raise ConfigError(f"window={self.window} is longer than the encoder's {max_positions} positions; "
                                  f"use window={max_positions} or less")
            window = max_positions
        return LongText(self.long_text, window, self.stride, self.window_pooling)


# ============================================================================ the recipe
@dataclass
class Encoder:
    """The encoder a run fine-tunes, with what the task needs to feed it."""

    model: EncoderWithHead
    """The encoder with the task's head, set up for `mode`."""
    tokenizer: TextTokenizer
    max_length: int
    """The config's max_length, capped at the encoder's positions."""
    source: str
    """Where its weights came from (head.json's `init`)."""
    reading: LongText
    """How long texts are read (truncate at max_length, or chunk into windows), the window capped likewise."""


@dataclass
class HeldOut:
    """The examples a run trains on, validates on and reports (seeded subsets of the task's splits)."""

    train: Any
    validation: Any
    test: Any
    splits: Splits


class FinetuneTask(Protocol):
    """What one fine-tuning task adds to the recipe."""

    def load_splits(self, cfg: Any) -> Splits:
        """train / validation / test records of `cfg.data`."""

    def make_head(self, cfg: Any, d_model: int, splits: Splits) -> nn.Module:
        """The head on top of the encoder's last hidden states."""

    def make_trainer(self, cfg: Any, encoder: Encoder, data: HeldOut) -> tuple[Trainer, dict[str, Any]]:
        """The Trainer (its save_final writes the task's saved-model kind) and metrics known before training."""

    def score(self, cfg: Any, final_dir: Path, data: HeldOut) -> dict[str, Any]:
        """Metrics of the saved model in `final_dir`, loaded back as a user would load it."""


def held_out(splits: Splits, cfg: FinetuneConfig) -> HeldOut:
    """Seeded subsets of the three splits, as cfg.max_*_examples say (a list is cut, records are sampled)."""

    def subset(records, limit: int | None):
        if isinstance(records, list):
            return records[:limit] if limit else records
        return seeded_subset(records, limit, cfg.seed)

    return HeldOut(subset(splits.train, cfg.max_train_examples), subset(splits.validation, cfg.max_eval_examples),
                   subset(splits.test, cfg.max_test_examples), splits)


def run_finetune(cfg: FinetuneConfig, task: FinetuneTask) -> dict[str, Any]:
    """Train, save OUT_DIR/final/, reload it and score it; returns the metrics for metrics.json."""
    started = time.perf_counter()
    apply_threads(cfg.threads)
    seed_everything(cfg.seed)  # as the CLI entrypoint does: a call from Python draws the same head either way
    data = held_out(task.load_splits(cfg), cfg)
    bert, tokenizer, source = load_encoder(cfg.init, cfg.random_like)
    model = EncoderWithHead(bert, task.make_head(cfg, bert.cfg.d_model, data.splits))
    counts = prepare_mode(model, cfg.mode, cfg.lora)
    encoder = Encoder(model, tokenizer, min(cfg.max_length, bert.cfg.max_positions), source,
                      cfg.reading(bert.cfg.max_positions))
    trainer, before = task.make_trainer(cfg, encoder, data)
    train_started = time.perf_counter()
    result: TrainResult = trainer.fit()
    train_seconds = time.perf_counter() - train_started
    metrics: dict[str, Any] = {**result.metrics, **before, **task.score(cfg, result.final_dir, data), **counts}
    metrics.update({"init": source, "mode": cfg.mode, "train_seconds": round(train_seconds, 1),
                    "seconds": round(time.perf_counter() - started, 1), "final_dir": str(result.final_dir)})
    return metrics


# ============================================================================ evaluating a saved model
def evaluation_split(split: str, data: str, trained_on: str) -> str:
    """`evaluate --split`: auto is the held-out test split of the model's own training data (`trained_on`) and
    every row (all) of any other data; train, validation, test and all are taken as given."""
    if split == "auto":
        split = "test" if same_data(data, trained_on) else "all"
    if split not in ("train", "validation", "test", "all"):
        raise ConfigError(f"split={split!r} is unknown; choose auto, train, validation, test or all")
    return split


# ============================================================================ the command
def finetune_task(config: str | Path | None, overrides: Sequence[str],
                  resume: str | Path | None) -> tuple[Callable[[Any], dict[str, Any]], type]:
    """(task function, config class) named by `task=`: an override, the resumed run's config, or the YAML."""
    from ..config import parse_overrides

    task = parse_overrides(overrides).get("task")
    if task is None and resume is not None and (Path(resume) / "config.yaml").is_file():
        task = read_yaml(Path(resume) / "config.yaml").get("task")
    if task is None and config is not None:
        task = read_yaml(config).get("task")
    task = task or "classify"
    if task == "classify":
        from .classify import ClassifyConfig, finetune_classifier
        return finetune_classifier, ClassifyConfig
    if task == "tag":
        from .tag import TagConfig, finetune_tagger
        return finetune_tagger, TagConfig
    if task == "embed":
        from .embed import EmbedConfig, train_embeddings
        return train_embeddings, EmbedConfig
    raise InputDataError(f"task={task!r} is unknown; choose classify, tag or embed")
