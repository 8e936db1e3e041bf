"""A classifier that reads a long text whole: the encoder runs over the text's windows (nn/windows.py), the
head pools each window's tokens, the windows are pooled into one vector per text, and the head classifies it.

    model = WindowedClassifier(bert, SequenceClassificationHead(384, 5, "mean"), WindowPool("attention", 384))
    logits = model(input_ids, attention_mask, counts)   # (W, T) windows of N texts, counts (N,) -> (N, K)

All windows of a batch of texts go through the encoder as one batch, which runs padding-free (BertConfig.unpad),
so a short last window costs only its own tokens. Gradients flow through the window pooling into the encoder:
training sees the same document vector that inference classifies.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.windows import WindowPool
from .heads import SequenceClassificationHead


class WindowedClassifier(nn.Module):
    """encoder (optional: None when training on cached window vectors) + head + pooling over windows.

    Parameter names keep the encoder under `bert.` and the head under `head.`, as in EncoderWithHead, so
    layer-wise learning rates and LoRA find them."""

    def __init__(self, encoder: nn.Module | None, head: SequenceClassificationHead, window_pool: WindowPool):
        super().__init__()
        self.bert = encoder
        self.head = head
        self.window_pool = window_pool

    def window_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(W, T) windows -> (W, C): the head's pooling of each window's token states."""
        if self.bert is None:
            raise RuntimeError("this WindowedClassifier has no encoder; pass window vectors to classify_windows")
        return self.head.pool(self.bert(input_ids, attention_mask), attention_mask)  # (W, T, C) -> (W, C)

    def classify_windows(self, vectors: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """(W, C) window vectors, text after text, and counts (N,) -> logits (N, K)."""
        return self.head.classify(self.window_pool(vectors, counts))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return self.classify_windows(self.window_vectors(input_ids, attention_mask), counts)
