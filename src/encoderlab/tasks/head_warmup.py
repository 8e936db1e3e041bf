"""LP-FT: train the classifier's head on the frozen encoder first, then fine-tune everything from that head.

    encoderlab finetune ... mode=full lr=2e-5 epochs=1 head_warmup_epochs=20        # head_warmup_lr=3e-3
    metrics = warm_up_head(cfg, head, train_features, val_features, loss_fn, eval_fn, collate)

Kumar et al. (2022), "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution": with a
random head, the first fine-tuning steps send large, noisy gradients into the encoder and move its pretrained
features before the head has learned anything; a head first trained as a linear probe on the frozen features
(LP) makes the following full or LoRA fine-tune (FT) start near a good solution, so a small learning rate
refines the features instead of distorting them.

The head phase is exactly mode=frozen's training: the encoder's pooled vectors are computed once (dropout off),
and the shared Trainer trains the head (for long_text=chunk: the window pooling and the head) on them for
`head_warmup_epochs` at `head_warmup_lr`, with the run's seed, batch size and warmup, into OUT_DIR/head_warmup/
(its own log.jsonl and the head's final weights). The trained modules are the ones the fine-tune then trains.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..training import Trainer
from ..training.checkpoint import list_checkpoints
from ..training.precision import autocast


@contextlib.contextmanager
def frozen_encoder(encoder: nn.Module, precision: str = "fp32") -> Iterator[None]:
    """The encoder in eval mode (dropout off), without an autograd graph, under the run's autocast precision,
    its mode restored after: for caching its features for a head-only phase (mode=frozen, or the head warm-up
    of a run whose encoder trains afterwards)."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad(), autocast(precision, torch.device("cpu")):
            yield
    finally:
        encoder.train(was_training)


def needs_head_warmup(cfg: Any) -> bool:
    """head_warmup_epochs > 0, unless a resumed run already has checkpoints (they hold the trained head)."""
    return getattr(cfg, "head_warmup_epochs", 0) > 0 and not (cfg.resume and list_checkpoints(cfg.out_dir))


def warm_up_head(cfg: Any, model: nn.Module, train_set: Sequence[Any], eval_set: Sequence[Any] | None,
                 loss_fn: Callable, eval_fn: Callable, collate: Callable) -> dict[str, Any]:
    """Train `model` (the head, with the window pooling for chunked texts, over cached features) in place for
    cfg.head_warmup_epochs; returns head_warmup_* metrics (validation accuracy: the linear probe's)."""
    started = time.perf_counter()
    warm = dataclasses.replace(cfg, out_dir=str(Path(cfg.out_dir) / "head_warmup"), mode="frozen",
                               lr=cfg.head_warmup_lr, epochs=cfg.head_warmup_epochs, max_steps=None,
                               layer_lr_decay=1.0, head_warmup_epochs=0, eval_every=0, patience=0, save_every=0,
                               precision="fp32")
    result = Trainer(warm, model, list(train_set), loss_fn=loss_fn, collate_fn=collate,
                     eval_data=list(eval_set) if eval_set else None, eval_fn=eval_fn).fit()
    metrics = {"head_warmup_steps": result.step, "head_warmup_seconds": round(time.perf_counter() - started, 1)}
    for key in ("eval_accuracy", "eval_loss", "train_loss"):
        if key in result.metrics:
            metrics[f"head_warmup_{key}"] = result.metrics[key]
    return metrics
