"""A fine-tuned text classifier (`encoderlab finetune task=classify`, `prune`, `distill mode=logits`), loaded:
texts -> class probabilities.

    clf = TextClassifier.from_dir("runs/tweets")        # the run directory or its final/
    clf.predict_proba(["what a day"])                    # (1, K) float32; column k is clf.label_names[k]
    clf.predict(["what a day"])                          # ['positive']

The directory format (encoder + head.safetensors + head.json) is artifacts/finetuned.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import InputDataError
from ..models.heads import EncoderWithHead
from ..nn.prepacked_linear import prepack_linears
from ..tokenization import TextTokenizer
from .finetuned import HEAD_CONFIG, HeadInfo, head_task, load_finetuned
from .registry import Kind
from .text_encoder import check_texts


@torch.no_grad()
def run_encoder(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ids: list[list[int]],
                tokenizer: TextTokenizer, batch_size: int = 64) -> torch.Tensor:
    """fn(input_ids, mask) -> (B, ...) over every sequence, batched by length; rows come back in input order."""
    order = np.argsort([-len(seq) for seq in ids], kind="stable")
    outputs: list[torch.Tensor] = []
    for start in range(0, len(ids), batch_size):
        batch = tokenizer.pad([ids[i] for i in order[start:start + batch_size]])
        outputs.append(fn(batch.input_ids, batch.attention_mask).float())
    if not outputs:
        return torch.zeros(0)
    stacked = torch.cat(outputs)
    result = torch.empty_like(stacked)
    result[torch.from_numpy(order)] = stacked
    return result


class TextClassifier:
    """An encoder with a sequence-classification head and its tokenizer: texts -> probabilities over
    `label_names`. Inputs are stripped and truncated to the `max_length` it was trained with."""

    kind = "classifier"

    def __init__(self, model: EncoderWithHead, tokenizer: TextTokenizer, info: HeadInfo):
        prepack_linears(model)  # CPU fp32 inference on oneDNN-packed weights (nn/prepacked_linear.py)
        self.model, self.tokenizer, self.info = model.eval(), tokenizer, info
        self.label_names: tuple[str, ...] = tuple(info.label_names)
        self.max_length = info.max_length

    @classmethod
    def from_dir(cls, path: str | Path) -> TextClassifier:
        model, tokenizer, info = load_finetuned(path)
        if info.task != "sequence-classification":
            raise InputDataError(f"{str(path)!r} is a {info.task} model (a tagger), not a text classifier")
        return cls(model, tokenizer, info)

    from_pretrained = from_dir  # the name before the saved-model contract

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer.encode_ids([t.strip() for t in check_texts(texts)], self.max_length)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, K) float32 probabilities; column k is label_names[k]."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        logits = run_encoder(self.model, self.encode_ids(texts), self.tokenizer, batch_size)
        return logits.softmax(-1).numpy().astype(np.float32)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[str]:
        """The most probable label of every text."""
        return [self.label_names[k] for k in self.predict_proba(texts, batch_size).argmax(-1)]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, d_model) float32: the pooled features the head classifies (not normalised)."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.model.bert.cfg.d_model), dtype=np.float32)
        head = self.model.head
        return run_encoder(lambda x, m: head.pool(self.model.bert(x, m), m), self.encode_ids(texts), self.tokenizer,
                           batch_size).numpy()


KIND = Kind(
    name="classifier",
    summary="a fine-tuned text classifier. Use `encoderlab predict --model {path} --input texts.txt`; `evaluate`, "
            "`robustness`, `prune` and `distill` take it too",
    holds=lambda d: (d / HEAD_CONFIG).is_file() and head_task(d) != "token-classification",
    load=TextClassifier.from_dir,
)
