"""A CLIP-style dual encoder (Radford et al., 2021, "Learning Transferable Visual Models From Natural Language
Supervision"): an image tower (`models.image.ImageEncoder`) and our text encoder (`BertModel`, mean-pooled),
each followed by a linear projection into one shared space of unit vectors; trained with the symmetric
contrastive loss over a batch's image-text similarity matrix, scaled by a learned temperature.

With the text tower frozen (`DualEncoderConfig.train_text=False`) this is "locked" tuning (Zhai et al., 2022,
LiT, there with the image side locked): the image tower learns to land where a pretrained text encoder
already puts the names, so texts never seen in training (held-out names, category names) still have
meaningful places to be retrieved by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nn import pool
from .bert import BertModel
from .image import ImageConfig, ImageEncoder


@dataclass
class DualEncoderConfig:
    image: ImageConfig = field(default_factory=ImageConfig)
    """The image tower."""
    d_embed: int = 256
    """Width of the shared space."""
    temperature: float = 0.07
    """Initial softmax temperature (CLIP: 0.07); learned as log(1 / temperature), capped at 100 = 1 / 0.01."""
    train_text: bool = False
    """Fine-tune the text tower too (else it stays frozen: locked-text tuning)."""

    def __post_init__(self) -> None:
        if self.d_embed < 1:
            raise ConfigError(f"DualEncoderConfig.d_embed must be >= 1, got {self.d_embed}")
        if not 0.0 < self.temperature < 1.0:
            raise ConfigError(f"DualEncoderConfig.temperature must be in (0, 1), got {self.temperature}")


class DualEncoder(nn.Module):
    def __init__(self, cfg: DualEncoderConfig, text: BertModel):
        super().__init__()
        self.cfg = cfg
        self.image = ImageEncoder(cfg.image)
        self.text = text.requires_grad_(cfg.train_text)
        self.image_projection = nn.Linear(cfg.image.d_model, cfg.d_embed, bias=False)
        self.text_projection = nn.Linear(text.cfg.d_model, cfg.d_embed, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, d_embed) unit vectors."""
        return F.normalize(self.image_projection(self.image(pixels)), dim=-1)

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids and mask -> (B, C_text): the text tower's mean-pooled states, before the projection.
        With a locked tower these never change, so training can compute them once (`forward(text_features=)`)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.cfg.train_text):
            if not self.cfg.train_text:
                self.text.eval()  # a locked tower also keeps its dropout off
            return pool(self.text(input_ids, attention_mask), attention_mask, "mean")

    def project_text(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_text) pooled text states -> (B, d_embed) unit vectors."""
        return F.normalize(self.text_projection(features), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids and mask -> (B, d_embed) unit vectors."""
        return self.project_text(self.text_features(input_ids, attention_mask))

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, text_features: torch.Tensor | None = None) -> torch.Tensor:
        """-> (B, B) logits: scaled cosine similarity of image i and text j. The texts come as ids and mask, or
        as precomputed `text_features` (B, C_text) of a locked text tower."""
        if text_features is None:
            text_features = self.text_features(input_ids, attention_mask)
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        return scale * self.encode_image(pixels) @ self.project_text(text_features).T


def contrastive_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: image i should pick text i among the batch's texts, and text i image i."""
    target = torch.arange(logits.size(0), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
