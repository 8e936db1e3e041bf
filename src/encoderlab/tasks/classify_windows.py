"""Training a text classifier through the windows of long texts (long_text=chunk; nn/windows.py).

    trainer, before = windowed_trainer(cfg, encoder, data, info)        # what ClassifyTask builds for chunk
    per_text = windows_per_text(tokenizer, texts, reading)             # [[window ids, ...] for each text]
    batch = make_window_collate(tokenizer)([(per_text[0], 2), ...])    # every window of the batch's texts

An item is one text: (its windows of ids, label) or, cached, (its windows' pooled features (W_i, C), label). A
batch holds every window of its texts, text after text, and `counts`: how many windows each text has. All of
them run through the encoder as one batch (padding-free), the window vectors are pooled into one per text
and the head classifies it, so the loss is on the vector that inference classifies. `encoderlab prune` and
`encoderlab distill` train a chunked classifier's copy through the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..artifacts.classifier import run_encoder, save_window_pool
from ..artifacts.finetuned import HeadInfo, save_finetuned
from ..artifacts.text_encoder import text_windows
from ..errors import ConfigError
from ..models.heads import EncoderWithHead
from ..models.windowed import WindowedClassifier
from ..nn.windows import LongText, WindowPool
from ..tokenization import TextTokenizer
from ..training import Trainer
from ..training.encoder_setup import optimizer_groups, unknown_piece_rate
from .finetune import Encoder, FinetuneConfig, HeldOut
from .head_warmup import frozen_encoder, needs_head_warmup, warm_up_head


def windows_per_text(tokenizer: TextTokenizer, texts: Sequence[str], reading: LongText) -> list[list[list[int]]]:
    """Each (stripped) text's windows of token ids, as `reading` cuts them: one list of windows per text."""
    flat, counts = text_windows(tokenizer, [t.strip() for t in texts], reading)
    starts = torch.tensor([0, *counts]).cumsum(0).tolist()
    return [flat[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def make_window_collate(tokenizer: TextTokenizer):
    def collate(items: list[tuple[list[list[int]], int]]) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad([window for windows, _ in items for window in windows])  # (W, T)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                "counts": torch.tensor([len(windows) for windows, _ in items]),
                "labels": torch.tensor([label for _, label in items])}
    return collate


def collate_window_features(items: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    return {"features": torch.cat([f for f, _ in items]), "counts": torch.tensor([len(f) for f, _ in items]),
            "labels": torch.tensor([y for _, y in items])}


def windowed_logits(model: WindowedClassifier, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, K) logits of a batch of texts, from their windows' ids or their windows' cached features."""
    if "features" in batch:
        return model.classify_windows(batch["features"], batch["counts"]).float()
    return model(batch["input_ids"], batch["attention_mask"], batch["counts"]).float()


def windowed_loss_fn(model: WindowedClassifier, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    return F.cross_entropy(windowed_logits(model, batch), batch["labels"]), len(batch["labels"])


def windowed_eval_fn(model: WindowedClassifier, batch: dict[str, torch.Tensor]) -> dict:
    logits = windowed_logits(model, batch)
    n = len(batch["labels"])
    return {"loss": (F.cross_entropy(logits, batch["labels"]), n),
            "accuracy": ((logits.argmax(-1) == batch["labels"]).float().mean(), n)}


def save_windowed(bert: torch.nn.Module, trained: WindowedClassifier, tokenizer: TextTokenizer, directory: Path,
                  info: HeadInfo) -> None:
    """A chunked classifier's final/: `bert` and the trained head as every classifier, plus the trained window
    pooling (window_pool.safetensors, for attention)."""
    save_finetuned(EncoderWithHead(bert, trained.head), tokenizer, directory, info)
    save_window_pool(trained.window_pool, directory)


def windowed_trainer(cfg: FinetuneConfig, encoder: Encoder, data: HeldOut,
                     info: HeadInfo) -> tuple[Trainer, dict[str, Any]]:
    """long_text=chunk: every text is all of its windows; they run through the encoder as one batch
    (padding-free), and the loss is on the pooled windows, so training sees what inference classifies."""
    tokenizer, reading = encoder.tokenizer, encoder.reading
    bert, head = encoder.model.bert, encoder.model.head
    window_pool = WindowPool(reading.pooling, bert.cfg.d_model)
    train_windows = windows_per_text(tokenizer, data.train.texts, reading)
    val_windows = windows_per_text(tokenizer, data.validation.texts, reading)
    before = {"unknown_piece_rate": round(unknown_piece_rate(tokenizer, [ids for text in train_windows
                                                                          for ids in text], cfg.init, cfg.data), 4),
              "train_windows": sum(len(text) for text in train_windows),
              "train_windows_per_text_max": max((len(text) for text in train_windows), default=0),
              # trainable_parameters is counted before the window pooling exists: its weights come on top
              "window_pool_parameters": sum(p.numel() for p in window_pool.parameters())}
    if not val_windows and (cfg.eval_every or cfg.patience):
        raise ConfigError("eval_every/patience need validation data; give split= a validation fraction or "
                          "validation_data=")
    def features(texts: list[list[list[int]]]) -> list[torch.Tensor]:  # each text's (W_i, C) window vectors
        flat = run_encoder(lambda x, m: head.pool(bert(x, m), m), [w for text in texts for w in text],
                           tokenizer)  # (W, C)
        return list(flat.split([len(text) for text in texts]))

    def cached(precision: str) -> tuple[list, list | None]:
        # The encoder's pooled vector of every window, once (dropout off): the head-only phase trains on them.
        with frozen_encoder(bert, precision):
            return (list(zip(features(train_windows), data.train.labels, strict=True)),
                    list(zip(features(val_windows), data.validation.labels, strict=True)) if val_windows else None)

    if cfg.mode == "frozen" and getattr(cfg, "cache_features", True):  # ClassifyConfig's switch
        # The encoder never changes: train the window pooling and the head on the cached vectors.
        train_set, eval_set = cached("fp32")
        model = WindowedClassifier(None, head, window_pool)
        collate = collate_window_features
    else:
        if needs_head_warmup(cfg):  # LP-FT: the window pooling and the head first learn on frozen windows
            before.update(warm_up_head(cfg, WindowedClassifier(None, head, window_pool), *cached(cfg.precision),
                                       windowed_loss_fn, windowed_eval_fn, collate_window_features))
        model = WindowedClassifier(bert, head, window_pool)
        train_set = list(zip(train_windows, data.train.labels, strict=True))
        eval_set = list(zip(val_windows, data.validation.labels, strict=True)) if val_windows else None
        collate = make_window_collate(tokenizer)
    trainer = Trainer(cfg, model, train_set, loss_fn=windowed_loss_fn, collate_fn=collate, eval_data=eval_set,
                      eval_fn=windowed_eval_fn,
                      save_final=lambda trained, directory: save_windowed(bert, trained, tokenizer, directory, info),
                      param_groups=optimizer_groups(cfg.layer_lr_decay, cfg.weight_decay))
    return trainer, before
