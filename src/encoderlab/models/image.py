"""Image encoders: (B, 3, H, W) pixels in [0, 1] -> (B, d_model) vectors.

- "cnn": a small convolutional network: per stage conv3x3 -> BatchNorm -> ReLU -> conv3x3 -> BatchNorm -> ReLU,
  then 2x2 max-pooling; global average pooling at the end, a linear map to d_model.
- "vit": a Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"): non-overlapping
  patch_size x patch_size patches, each linearly embedded (a strided convolution), a [CLS] token and learned
  positions prepended/added, pre-LN Transformer blocks (`models.bert.EncoderBlock`, the same blocks as our
  text encoder), a final LayerNorm; the [CLS] state is the image's vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..errors import ConfigError
from .bert import BertConfig, EncoderBlock


@dataclass
class ImageConfig:
    kind: Literal["cnn", "vit"] = "vit"
    """cnn: a small ConvNet; vit: a Vision Transformer over patches."""
    image_size: int = 32
    """Height = width of the input in pixels (images are resized to it)."""
    channels: int = 3
    """Input channels (RGB)."""
    d_model: int = 128
    """Width of the output vector (and of the ViT's tokens)."""
    patch_size: int = 4
    """vit: patch height = width; image_size must be divisible by it."""
    n_layers: int = 4
    """vit: Transformer blocks."""
    n_heads: int = 4
    """vit: attention heads."""
    d_ff: int = 256
    """vit: feed-forward width."""
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """cnn: channels of each stage (each stage halves the resolution)."""
    dropout: float = 0.0
    """vit: dropout inside the blocks."""

    def __post_init__(self) -> None:
        if self.kind not in ("cnn", "vit"):
            raise ConfigError(f"ImageConfig.kind={self.kind!r} is unknown; choose 'cnn' or 'vit'")
        for name in ("image_size", "channels", "d_model", "patch_size", "n_layers", "n_heads", "d_ff"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ImageConfig.{name} must be >= 1, got {getattr(self, name)}")
        self.cnn_channels = [int(c) for c in self.cnn_channels]
        if self.kind == "vit":
            if self.image_size % self.patch_size:
                raise ConfigError(f"ImageConfig: image_size={self.image_size} is not divisible by patch_size="
                                  f"{self.patch_size}; pick a patch size that divides it")
            if self.d_model % self.n_heads:
                raise ConfigError(f"ImageConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.kind == "cnn" and (not self.cnn_channels or self.image_size < 2 ** len(self.cnn_channels)):
            raise ConfigError(f"ImageConfig: {len(self.cnn_channels)} CNN stages halve {self.image_size} px below 1; "
                              "use fewer stages or larger images")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ImageConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class ConvNet(nn.Module):
    def __init__(self, cfg: ImageConfig):
        super().__init__()
        stages, c_in = [], cfg.channels
        for c_out in cfg.cnn_channels:
            stages += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.out = nn.Linear(c_in, cfg.d_model)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stages(pixels)  # (B, C_last, H / 2^stages, W / 2^stages)
        return self.out(x.mean(dim=(2, 3)))  # global average pool -> (B, d_model)


class VisionTransformer(nn.Module):
    def __init__(self, cfg: ImageConfig):
        super().__init__()
        block_cfg = BertConfig(vocab_size=1, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                               d_ff=cfg.d_ff, max_positions=cfg.n_patches + 1, n_segments=0, norm_position="pre",
                               dropout=cfg.dropout, attention_dropout=cfg.dropout, norm_eps=1e-6, pooler=False)
        self.patches = nn.Conv2d(cfg.channels, cfg.d_model, cfg.patch_size, stride=cfg.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.positions = nn.Parameter(torch.randn(1, cfg.n_patches + 1, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(EncoderBlock(block_cfg, i) for i in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=1e-6)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patches(pixels).flatten(2).transpose(1, 2)  # (B, n_patches, d): one token per patch
        x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1) + self.positions  # (B, 1 + n_patches, d)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x[:, 0])  # (B, d): the [CLS] state


class ImageEncoder(nn.Module):
    """Checks the input shape, then runs the configured network."""

    def __init__(self, cfg: ImageConfig):
        super().__init__()
        self.cfg = cfg
        self.net = VisionTransformer(cfg) if cfg.kind == "vit" else ConvNet(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, channels, image_size, image_size) -> (B, d_model)."""
        expected = (self.cfg.channels, self.cfg.image_size, self.cfg.image_size)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise ValueError(f"images of shape {tuple(pixels.shape)}, expected (B, {', '.join(map(str, expected))})")
        return self.net(pixels)
