"""A fine-tuned text classifier (`encoderlab finetune task=classify`, `prune`, `distill mode=logits`), loaded:
texts -> class probabilities.

    clf = TextClassifier.from_dir("runs/tweets")        # the run directory or its final/
    clf.predict_proba(["what a day"])                    # (1, K) float32; column k is clf.label_names[k]
    clf.predict(["what a day"])                          # ['positive']

The directory format (encoder + head.safetensors + head.json) is artifacts/finetuned.py. A classifier trained
with long_text=chunk reads every text whole, in overlapping windows (nn/windows.py): head.json's `long_text`
says how (mode, window, stride, pooling), and a learned attention over windows is in window_pool.safetensors.

    clf.long_text                                        # LongText(mode='chunk', window=128, stride=94, ...)
    clf.read_long_texts("chunk", window=256)             # read this way from now on (any classifier)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, InputDataError
from ..models.heads import EncoderWithHead
from ..models.windowed import WindowedClassifier
from ..nn.prepacked_linear import has_forward_hooks, prepack_linears
from ..nn.windows import LongText, WindowPool
from ..sharding import auto_shards, plan_parts, run_parts
from ..tokenization import TextTokenizer
from ..weights import load_module, save_weights
from .finetuned import HEAD_CONFIG, HeadInfo, finetuned_dir, head_task, load_finetuned
from .registry import Kind
from .text_encoder import check_texts, text_windows

WINDOW_POOL_WEIGHTS = "window_pool.safetensors"
"""The learned attention over a text's windows (long_text=chunk with window_pooling=attention)."""
"""head.json's key for how the classifier reads long texts (LongText.to_dict()); absent: truncate."""


def save_window_pool(window_pool: WindowPool, directory: str | Path) -> None:
    """Write the window pooling's weights next to head.safetensors, if it has any (attention)."""
    if any(True for _ in window_pool.parameters()):
        save_weights(Path(directory) / WINDOW_POOL_WEIGHTS, {k: v.detach().cpu().contiguous()
                                                            for k, v in window_pool.state_dict().items()})


def load_window_pool(directory: Path, long_text: LongText, d_model: int) -> WindowPool:
    """The window pooling a saved classifier was trained with (its weights too, for attention)."""
    window_pool = WindowPool(long_text.pooling, d_model)
    if long_text.pooling != "attention":
        return window_pool
    load_module(window_pool, directory / WINDOW_POOL_WEIGHTS, fits=f"the encoder's width {d_model}",
                missing=f"{str(directory)!r}: head.json says window_pooling=attention but {WINDOW_POOL_WEIGHTS} is "
                        "missing; the save was interrupted, re-run the fine-tune")
    return window_pool


def saved_reading(directory: Path, info: HeadInfo, d_model: int) -> tuple[LongText, WindowPool]:
    """How the classifier saved in `directory` reads long texts (head.json's long_text; absent: truncate) and
    its window pooling, learned attention weights included."""
    long_text = LongText.from_dict(info.long_text, info.max_length)
    return long_text, load_window_pool(directory, long_text, d_model)


def run_encoder(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ids: list[list[int]],
                tokenizer: TextTokenizer, batch_size: int = 64, model: nn.Module | None = None) -> torch.Tensor:
    """fn(input_ids, mask) -> (B, ...) over every sequence, without gradients, batched by length; rows come back
    in input order. Given the `model` that `fn` runs, batches run side by side on the CPU's cores as
    `TextEncoder.encode` runs them (sharding.py: whole batches of a long list, a short list's batches dealt), one
    torch thread each; without it (or with hooks on it), one batch after another on every thread."""
    if not ids:
        return torch.zeros(0)
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    shards = auto_shards(device, has_forward_hooks(model.modules())) if model is not None else 1
    parts = plan_parts([len(seq) for seq in ids], batch_size, shards)
    outputs: dict[int, torch.Tensor] = {}

    def run(rows: np.ndarray) -> None:
        batch = tokenizer.pad([ids[i] for i in rows])
        with torch.no_grad():  # grad mode holds per thread: each shard's worker enters its own
            outputs[int(rows[0])] = fn(batch.input_ids.to(device), batch.attention_mask.to(device)).float()

    run_parts(run, parts, shards, on_done=lambda rows: None)
    first = outputs[int(parts[0][0])]
    result = first.new_empty((len(ids), *first.shape[1:]))
    for rows in parts:
        result[torch.from_numpy(rows)] = outputs[int(rows[0])]
    return result


class TextClassifier:
    """An encoder with a sequence-classification head and its tokenizer: texts -> probabilities over
    `label_names`. Inputs are stripped and truncated to the `max_length` it was trained with."""

    kind = "classifier"

    def __init__(self, model: EncoderWithHead, tokenizer: TextTokenizer, info: HeadInfo,
                 window_pool: WindowPool | None = None):
        prepack_linears(model)  # CPU fp32 inference on oneDNN-packed weights (nn/prepacked_linear.py)
        self.model, self.tokenizer, self.info = model.eval(), tokenizer, info
        self.label_names: tuple[str, ...] = tuple(info.label_names)
        self.max_length = info.max_length
        self.long_text = LongText.from_dict(info.long_text, info.max_length)
        """How texts longer than max_length are read: head.json's `long_text` (absent: truncate)."""
        self.window_pool = (window_pool or WindowPool(self.long_text.pooling, model.bert.cfg.d_model)).eval()

    @classmethod
    def from_dir(cls, path: str | Path) -> TextClassifier:
        model, tokenizer, info = load_finetuned(path)
        if info.task != "sequence-classification":
            raise InputDataError(f"{str(path)!r} is a {info.task} model (a tagger), not a text classifier")
        _, window_pool = saved_reading(finetuned_dir(path), info, model.bert.cfg.d_model)
        return cls(model, tokenizer, info, window_pool)

    def read_long_texts(self, mode: str | None = None, window: int | None = None, stride: int | None = None) -> None:
        """Read long texts another way from now on: truncate, or chunk into windows of `window` pieces (default:
        the model's window or max_length) starting `stride` apart. Windows are pooled as the model was trained
        (mean for a model trained with truncation)."""
        mode = mode or self.long_text.mode
        window = window or self.long_text.window
        if window > self.model.bert.cfg.max_positions:
            raise ConfigError(f"window={window} is longer than the encoder's {self.model.bert.cfg.max_positions} "
                              "positions; use a smaller --window")
        stride = stride if stride is not None else (self.long_text.stride if window == self.long_text.window
                                                    else None)
        self.long_text = LongText(mode, window, stride, self.long_text.pooling)  # type: ignore[arg-type]
        if mode == "truncate":
            self.max_length = window

    from_pretrained = from_dir  # the name before the saved-model contract

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer.encode_ids([t.strip() for t in check_texts(texts)], self.max_length)

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """long_text=chunk: every text's windows of ids, text after text, and how many each text has."""
        return text_windows(self.tokenizer, [t.strip() for t in check_texts(texts)], self.long_text)

    @torch.no_grad()
    def window_features(self, texts: Sequence[str], batch_size: int = 64) -> tuple[torch.Tensor, list[int]]:
        """long_text=chunk: (W, C) pooled features of every window (batched by length over all texts, so
        windows of different texts share batches) and the number of windows of each text."""
        windows, counts = self.windows(texts)
        head = self.model.head
        return run_encoder(lambda x, m: head.pool(self.model.bert(x, m), m), windows, self.tokenizer,
                           batch_size, self.model), counts

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(N, K) float32 logits, read as the classifier reads texts (truncated, or whole in windows)."""
        texts = check_texts(texts)
        if not texts:
            return torch.zeros(0, len(self.label_names))
        if self.long_text.chunked:
            vectors, counts = self.window_features(texts, batch_size)
            with torch.no_grad():
                return WindowedClassifier(None, self.model.head, self.window_pool).classify_windows(vectors,
                                                                                                     counts).float()
        return run_encoder(self.model, self.encode_ids(texts), self.tokenizer, batch_size, self.model)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, K) float32 probabilities; column k is label_names[k]."""
        return self.logits(texts, batch_size).softmax(-1).numpy().astype(np.float32)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[str]:
        """The most probable label of every text."""
        return [self.label_names[k] for k in self.predict_proba(texts, batch_size).argmax(-1)]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, d_model) float32: the pooled features the head classifies (not normalised)."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.model.bert.cfg.d_model), dtype=np.float32)
        if self.long_text.chunked:  # the pooled windows: the vector the head classifies
            vectors, counts = self.window_features(texts, batch_size)
            with torch.no_grad():
                return self.window_pool(vectors, counts).numpy()
        head = self.model.head
        return run_encoder(lambda x, m: head.pool(self.model.bert(x, m), m), self.encode_ids(texts), self.tokenizer,
                           batch_size, self.model).numpy()


KIND = Kind(
    name="classifier",
    summary="a fine-tuned text classifier. Use `encoderlab predict --model {path} --input texts.txt`; `evaluate`, "
            "`robustness`, `prune` and `distill` take it too",
    holds=lambda d: (d / HEAD_CONFIG).is_file() and head_task(d) != "token-classification",
    load=TextClassifier.from_dir,
)
