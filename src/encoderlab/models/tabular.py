"""Tabular encoders: rows of categorical ids and standardised numbers -> one vector per row, or one token
per column.

Two families, one config:
- "mlp": an embedding per categorical column, concatenated with the numbers, through an MLP (the
  "deep" side of Wide & Deep, Cheng et al., 2016).
- "ft": FT-Transformer (Gorishniy et al., 2021, "Revisiting Deep Learning Models for Tabular Data"): every
  column becomes a d_model token (a category's embedding; a number x times a per-column vector plus a
  per-column bias), a [CLS] token is prepended, and pre-LN Transformer blocks (`models.bert.EncoderBlock`)
  mix them; the [CLS] state is the row's vector.

`tokens()` gives the per-column tokens before any mixing, (B, F, d_model): what early fusion feeds into a
text Transformer. A table with no columns is allowed: `tokens()` is then (B, 0, d_model) and
`forward()` (B, d_out) zeros: there is nothing to encode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..errors import ConfigError
from .bert import BertConfig, EncoderBlock


@dataclass
class TabularConfig:
    """Shape of a tabular encoder. `cardinalities` and `n_numeric` come from the data."""

    cardinalities: list[int] = field(default_factory=list)
    """Embedding-table size of each categorical column (its vocabulary + 1 unknown bucket)."""
    n_numeric: int = 0
    """Number of numeric columns."""
    kind: Literal["mlp", "ft"] = "ft"
    """mlp: embeddings + numbers through an MLP; ft: feature tokens through Transformer blocks."""
    d_model: int = 64
    """Width of each column token (ft) or of each categorical embedding (mlp)."""
    d_out: int = 128
    """Width of the row vector forward() returns (mlp hidden width; ft projects its [CLS] state to it)."""
    n_layers: int = 2
    """ft: Transformer blocks; mlp: hidden layers."""
    n_heads: int = 4
    """ft: attention heads (d_model must be divisible by it)."""
    d_ff: int = 128
    """ft: feed-forward width inside each block."""
    dropout: float = 0.1
    """Dropout inside the blocks / between MLP layers."""

    def __post_init__(self) -> None:
        self.cardinalities = [int(c) for c in self.cardinalities]
        if any(c < 1 for c in self.cardinalities):
            raise ConfigError(f"TabularConfig.cardinalities={self.cardinalities}: every column needs >= 1 id")
        if self.kind not in ("mlp", "ft"):
            raise ConfigError(f"TabularConfig.kind={self.kind!r} is unknown; choose 'mlp' or 'ft'")
        for name in ("d_model", "d_out", "n_heads", "d_ff"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TabularConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_numeric < 0 or self.n_layers < 0:
            raise ConfigError("TabularConfig.n_numeric and n_layers must be >= 0")
        if self.kind == "ft" and self.d_model % self.n_heads:
            raise ConfigError(f"TabularConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"TabularConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def n_features(self) -> int:
        return len(self.cardinalities) + self.n_numeric


class FeatureTokenizer(nn.Module):
    """Categorical ids (B, n_cat) and numbers (B, n_num) -> one d_model token per column (B, F, d_model)."""

    def __init__(self, cardinalities: list[int], n_numeric: int, d_model: int):
        super().__init__()
        # one table for every column: column j's ids start at offsets[j]
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0) if cardinalities else \
            torch.zeros(0, dtype=torch.long)
        self.register_buffer("offsets", offsets, persistent=False)
        self.categories = nn.Embedding(max(sum(cardinalities), 1), d_model)
        self.category_bias = nn.Parameter(torch.zeros(len(cardinalities), d_model))
        self.number_weight = nn.Parameter(torch.randn(n_numeric, d_model) * 0.02)
        self.number_bias = nn.Parameter(torch.zeros(n_numeric, d_model))
        nn.init.normal_(self.categories.weight, std=0.02)

    def forward(self, categories: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        cat = self.categories(categories + self.offsets) + self.category_bias  # (B, n_cat, d)
        num = numbers.unsqueeze(-1) * self.number_weight + self.number_bias  # (B, n_num, d)
        return torch.cat([cat, num], dim=1)  # (B, F, d)


class TabularEncoder(nn.Module):
    def __init__(self, cfg: TabularConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = FeatureTokenizer(cfg.cardinalities, cfg.n_numeric, cfg.d_model)
        if cfg.kind == "ft":
            block_cfg = BertConfig(vocab_size=1, d_model=cfg.d_model, n_layers=max(cfg.n_layers, 1),
                                   n_heads=cfg.n_heads, d_ff=cfg.d_ff, max_positions=1, n_segments=0,
                                   norm_position="pre", dropout=cfg.dropout, attention_dropout=cfg.dropout,
                                   norm_eps=1e-5, pooler=False)
            self.cls = nn.Parameter(torch.randn(1, 1, cfg.d_model) * 0.02)
            self.blocks = nn.ModuleList(EncoderBlock(block_cfg, i) for i in range(cfg.n_layers))
            self.final_norm = nn.LayerNorm(cfg.d_model)
            self.out = nn.Linear(cfg.d_model, cfg.d_out)
        else:
            layers: list[nn.Module] = []
            width = max(cfg.n_features, 1) * cfg.d_model  # (no columns: forward never calls it)
            for _ in range(max(cfg.n_layers, 1)):
                layers += [nn.Linear(width, cfg.d_out), nn.ReLU(), nn.Dropout(cfg.dropout)]
                width = cfg.d_out
            self.mlp = nn.Sequential(*layers)

    @property
    def d_out(self) -> int:
        return self.cfg.d_out

    def tokens(self, categories: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """(B, n_cat) int64, (B, n_num) float -> (B, F, d_model) column tokens, before any mixing."""
        return self.tokenizer(categories, numbers)

    def forward(self, categories: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """(B, n_cat) int64, (B, n_num) float -> (B, d_out) row vectors."""
        x = self.tokens(categories, numbers)  # (B, F, d)
        if x.size(1) == 0:
            return x.new_zeros(x.size(0), self.cfg.d_out)  # no columns: nothing to encode
        if self.cfg.kind == "mlp":
            return self.mlp(x.flatten(1))  # (B, F·d) -> (B, d_out)
        x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1)  # (B, 1 + F, d)
        for block in self.blocks:
            x = block(x)
        return self.out(self.final_norm(x[:, 0]))  # (B, d_out): the [CLS] state
