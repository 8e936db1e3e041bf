"""Text + tabular fusion classifiers over our BERT text encoder and `models.tabular.TabularEncoder`.

Five modes, one class (the text side is any `BertModel`, e.g. all-MiniLM-L6-v2 from `TextEncoder`):

- text:    pool(BERT(text)) -> head                                  (the single-modality reference)
- tabular: tabular(row) -> head                                      (the other one)
- late:    [pool(BERT(text)); tabular(row)] -> head                  (concatenate the pooled vectors)
- gated:   t + g ⊙ W·a, g = σ(W_g [t; a])  -> head                   (a gate decides, per dimension, how much
           of the table's vector shifts the text's; after Rahman et al., 2020, "Integrating Multimodal
           Information in Large Pretrained Transformers" (MAG), applied to pooled vectors)
- early:   BERT([text tokens; projected column tokens]) -> pool -> head (the table's columns enter the text
           Transformer as extra tokens after the text and every block attends across both)

A row with no tabular columns gives the text model exactly in late / gated / early mode: the tabular
vector is zero (nothing to encode), W·a has no bias, and no extra token enters the Transformer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import padding_mask_to_bias, pool
from .bert import BertModel
from .tabular import TabularConfig, TabularEncoder

FusionMode = Literal["text", "tabular", "late", "gated", "early"]
FUSION_MODES: tuple[str, ...] = ("text", "tabular", "late", "gated", "early")


@dataclass
class FusionConfig:
    mode: FusionMode = "late"
    """text | tabular | late | gated | early (see the module docstring)."""
    n_classes: int = 2
    """Classes of the head; filled in from the data."""
    pooling: Literal["mean", "cls"] = "mean"
    """How the text Transformer's states become one vector (mean over real tokens, or the first token)."""
    dropout: float = 0.1
    """Dropout on the fused vector before the head."""
    tabular: TabularConfig = field(default_factory=TabularConfig)
    """The tabular encoder; cardinalities and n_numeric are filled in from the data."""

    def __post_init__(self) -> None:
        if self.mode not in FUSION_MODES:
            raise ConfigError(f"FusionConfig.mode={self.mode!r} is unknown; choose one of {FUSION_MODES}")
        if self.n_classes < 2:
            raise ConfigError(f"FusionConfig.n_classes={self.n_classes}: a classifier needs at least 2 classes")
        if self.pooling not in ("mean", "cls"):
            raise ConfigError(f"FusionConfig.pooling={self.pooling!r}: choose 'mean' or 'cls'")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"FusionConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def uses_text(self) -> bool:
        return self.mode != "tabular"

    @property
    def uses_table(self) -> bool:
        return self.mode != "text"


class FusionClassifier(nn.Module):
    """`text` (a BertModel) is needed unless mode='tabular'; the tabular encoder is built from cfg.tabular."""

    def __init__(self, cfg: FusionConfig, text: BertModel | None = None):
        super().__init__()
        if cfg.uses_text and text is None:
            raise ConfigError(f"fusion mode {cfg.mode!r} needs a text encoder; pass one, or use mode='tabular'")
        self.cfg = cfg
        self.text = text if cfg.uses_text else None
        self.tabular = TabularEncoder(cfg.tabular) if cfg.uses_table else None
        d_text = text.cfg.d_model if self.text is not None else 0
        d_tab = cfg.tabular.d_out
        if cfg.mode == "late":
            d_fused = d_text + d_tab
        elif cfg.mode == "tabular":
            d_fused = d_tab
        else:
            d_fused = d_text
        if cfg.mode == "gated":
            self.gate = nn.Linear(d_text + d_tab, d_text)
            self.shift = nn.Linear(d_tab, d_text, bias=False)
        if cfg.mode == "early":
            # column tokens -> the text stream's width, then normalised like the text embeddings
            self.project = nn.Linear(cfg.tabular.d_model, d_text)
            self.project_norm = nn.LayerNorm(d_text, eps=text.cfg.norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d_fused, cfg.n_classes)
        self.d_fused = d_fused

    # ------------------------------------------------------------------------------------------- text side
    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return pool(hidden, mask, self.cfg.pooling)  # (B, C)

    def _text_vector(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._pool(self.text(input_ids, attention_mask), attention_mask)  # (B, C)

    def _early(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, categories: torch.Tensor,
               numbers: torch.Tensor) -> torch.Tensor:
        """Text tokens then column tokens through every block of the text Transformer -> pooled (B, C)."""
        bert = self.text
        x = bert.embeddings(input_ids)  # (B, T, C)
        extra = self.project_norm(self.project(self.tabular.tokens(categories, numbers)))  # (B, F, C)
        x = torch.cat([x, extra.to(x.dtype)], dim=1)  # (B, T + F, C)
        mask = torch.cat([attention_mask, attention_mask.new_ones(extra.shape[:2])], dim=1)  # (B, T + F)
        bias = None if bool(mask.all()) else padding_mask_to_bias(mask, x.dtype)  # (B, 1, 1, T + F)
        rotary = bert.rotary(torch.arange(x.size(1), device=x.device)) if bert.rotary is not None else None
        for block in bert.blocks:
            x = block(x, bias, rotary=rotary)
        if bert.final_norm is not None:
            x = bert.final_norm(x)
        x = x * mask[..., None].to(x.dtype)  # padded positions to zero, as the text model returns them
        return self._pool(x, mask)

    # ------------------------------------------------------------------------------------------- forward
    def embed(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
              categories: torch.Tensor | None = None, numbers: torch.Tensor | None = None) -> torch.Tensor:
        """The fused vector the head reads, (B, d_fused). Text: (B, T) ids and mask; table: (B, n_cat) ids,
        (B, n_num) standardised numbers."""
        mode = self.cfg.mode
        if mode == "early":
            return self._early(input_ids, attention_mask, categories, numbers)
        t = self._text_vector(input_ids, attention_mask) if self.text is not None else None  # (B, C)
        a = self.tabular(categories, numbers) if self.tabular is not None else None  # (B, d_tab)
        if mode == "text":
            return t
        if mode == "tabular":
            return a
        if mode == "late":
            return torch.cat([t, a.to(t.dtype)], dim=-1)  # (B, C + d_tab)
        g = torch.sigmoid(self.gate(torch.cat([t, a.to(t.dtype)], dim=-1)))  # (B, C), in (0, 1)
        return t + g * self.shift(a.to(t.dtype))  # gated

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                categories: torch.Tensor | None = None, numbers: torch.Tensor | None = None) -> torch.Tensor:
        """-> logits (B, n_classes)."""
        return self.head(self.dropout(self.embed(input_ids, attention_mask, categories, numbers)))
