"""Audio encoders over log-mel spectrograms: a small CNN and a Transformer over spectrogram patches.

Read top to bottom: the config, the shared front end (log-mel, then per-mel standardisation with the training
set's statistics), the CNN, the Transformer, and `AudioModel`, which puts front end, encoder and a linear
classification head together. Both encoders take a padded batch with per-clip lengths and pool to one vector
per clip; a clip's vector does not depend on what else is in the batch (tested: batch == one by one).

- CNN: blocks of 3x3 convolution (stride 2 over mel bands; over time every `time_stride_every` blocks),
  BatchNorm and GELU, as in the small VGG-style audio taggers (e.g. Hershey et al., 2017; Kong et al., 2020,
  "PANNs"). Padded frames are zeroed before every convolution, so the zeros a clip sees past its end are the
  same whether it is alone or padded in a batch. Mean over mel bands, then mean over the clip's real frames.
- Transformer: the spectrogram cut into patches of `patch_mels` x `patch_frames` (Gong et al., 2021, "AST"),
  each projected to d_model, plus a learned embedding of its mel row and a sinusoidal embedding of its time
  column (any length works), through pre-LN `EncoderBlock`s from models/bert.py. A batch with padding runs
  packed (nn/packing.py: padding patches are never computed); mean pooling over the clip's patches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import Packing, padding_mask_to_bias
from ..nn.embeddings import sinusoidal_table
from ..nn.pooling import pool
from ..nn.spectrogram import LogMel, SpectrogramConfig, frame_mask
from .bert import BertConfig, EncoderBlock

Augment = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(features (B, M, T), frames (B,)) -> augmented features; used in training only (SpecAugment)."""


@dataclass
class AudioEncoderConfig:
    """An audio classifier: front end, encoder (CNN or Transformer) and linear head."""

    architecture: Literal["cnn", "transformer"] = "cnn"
    """cnn: convolution blocks; transformer: encoder blocks over spectrogram patches."""
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    """The log-mel front end (its sample_rate is the rate every input is resampled to)."""
    n_classes: int = 0
    """Output classes; filled in from the data (0 = not yet known)."""
    dropout: float = 0.1
    """Dropout before the head (and inside the Transformer blocks)."""
    # --- cnn
    channels: list[int] = field(default_factory=lambda: [32, 64, 96, 128])
    """Output channels of each convolution block; the clip vector is channels[-1] wide."""
    time_stride_every: int = 2
    """Halve the time axis in every N-th block (1: every block; 0: never)."""
    # --- transformer
    d_model: int = 128
    """Width of the patch embeddings and the residual stream; the clip vector is d_model wide."""
    n_layers: int = 4
    """Encoder blocks."""
    n_heads: int = 4
    """Attention heads; d_model must be divisible by it."""
    d_ff: int = 256
    """Feed-forward hidden width."""
    patch_mels: int = 16
    """Mel bands per patch; must divide spectrogram.n_mels."""
    patch_frames: int = 4
    """Frames per patch (4 frames = 40 ms at the default 10 ms hop)."""
    fused_attention: bool = True
    """F.scaled_dot_product_attention (True) or the explicit reference path (False)."""
    unpad: bool = True
    """Run padded batches packed: padding patches cost nothing (same result)."""

    def __post_init__(self) -> None:
        if isinstance(self.spectrogram, dict):
            self.spectrogram = SpectrogramConfig(**self.spectrogram)
        if self.architecture not in ("cnn", "transformer"):
            raise ConfigError(f"model.architecture={self.architecture!r} must be 'cnn' or 'transformer'")
        if self.n_classes < 0 or self.n_classes == 1:
            raise ConfigError(f"model.n_classes={self.n_classes}: a classifier needs >= 2 classes (0 = from the data)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1)")
        self.channels = [int(c) for c in self.channels]
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"model.channels={self.channels} must be a non-empty list of positive widths")
        if self.time_stride_every < 0:
            raise ConfigError(f"model.time_stride_every={self.time_stride_every} must be >= 0 (0: never)")
        for name in ("d_model", "n_layers", "n_heads", "d_ff", "patch_mels", "patch_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be >= 1")
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model={self.d_model} is not divisible by model.n_heads={self.n_heads}")
        if self.spectrogram.n_mels % self.patch_mels:
            raise ConfigError(f"model.patch_mels={self.patch_mels} must divide spectrogram.n_mels="
                              f"{self.spectrogram.n_mels} (e.g. patch_mels={self.spectrogram.n_mels // 4 or 1})")

    @property
    def d_embedding(self) -> int:
        """Width of the pooled clip vector."""
        return self.channels[-1] if self.architecture == "cnn" else self.d_model

    def block_config(self) -> BertConfig:
        """The BertConfig whose EncoderBlocks the Transformer stacks (pre-LN; embeddings unused)."""
        return BertConfig(vocab_size=1, d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads,
                          d_ff=self.d_ff, n_segments=0, norm_position="pre", dropout=self.dropout,
                          attention_dropout=self.dropout, norm_eps=1e-6, pooler=False,
                          fused_attention=self.fused_attention, unpad=self.unpad)


# ============================================================================ CNN
class ConvBlock(nn.Module):
    """3x3 conv (stride 2 over mels, `time_stride` over frames) -> BatchNorm -> GELU; padded frames zeroed."""

    def __init__(self, c_in: int, c_out: int, time_stride: int):
        super().__init__()
        self.time_stride = time_stride
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=(2, time_stride), padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, n_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, M, T) with zeros past each clip's n_frames -> (B, C', M', T'), new frame counts."""
        x = self.act(self.norm(self.conv(x)))  # (B, C', ceil(M/2), ceil(T/stride))
        n_frames = -torch.div(-n_frames, self.time_stride, rounding_mode="floor")  # ceil(n / stride)
        return x * frame_mask(n_frames, x.size(-1))[:, None, None, :], n_frames


class AudioCNN(nn.Module):
    def __init__(self, cfg: AudioEncoderConfig):
        super().__init__()
        widths = [1, *cfg.channels]
        every = cfg.time_stride_every
        self.blocks = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], 2 if every and (i + 1) % every == 0 else 1)
            for i in range(len(cfg.channels)))

    def forward(self, features: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        """features (B, M, T), zero past n_frames (B,) -> clip vectors (B, channels[-1])."""
        x = features[:, None]  # (B, 1, M, T)
        for block in self.blocks:
            x, n_frames = block(x, n_frames)
        x = x.mean(dim=2).transpose(1, 2)  # (B, T', C): mean over the mel axis
        return pool(x, frame_mask(n_frames, x.size(1)), "mean")  # (B, C) over real frames


# ============================================================================ Transformer
class AudioTransformer(nn.Module):
    def __init__(self, cfg: AudioEncoderConfig):
        super().__init__()
        self.cfg = cfg
        block_cfg = cfg.block_config()
        self.n_rows = cfg.spectrogram.n_mels // cfg.patch_mels  # patches per time column
        self.patch = nn.Linear(cfg.patch_mels * cfg.patch_frames, cfg.d_model)
        self.row_embedding = nn.Embedding(self.n_rows, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(block_cfg, i) for i in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=block_cfg.norm_eps)
        self.time_columns: int | None = None
        """Rows of the sinusoidal time table: None sizes it per batch; an ONNX export fixes it (a traced graph
        cannot size a table from its input), which bounds the clip length the graph takes."""

    def patches(self, features: torch.Tensor, n_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, M, T) -> patch vectors (B, Tp·R, patch_mels·patch_frames), token mask (B, Tp·R);
        tokens in time-major order (all R mel rows of column 0, then of column 1, ...)."""
        cfg = self.cfg
        B, M, T = features.shape
        pf, pm, R = cfg.patch_frames, cfg.patch_mels, self.n_rows
        x = nn.functional.pad(features, (0, -T % pf))  # (B, M, Tp·pf), zeros past the end
        Tp = x.size(-1) // pf
        x = x.view(B, R, pm, Tp, pf).permute(0, 3, 1, 2, 4).reshape(B, Tp * R, pm * pf)  # (B, Tp·R, pm·pf)
        n_columns = -torch.div(-n_frames, pf, rounding_mode="floor")  # ceil(frames / pf): partial columns count
        mask = frame_mask(n_columns, Tp).repeat_interleave(R, dim=1)  # (B, Tp·R)
        return x, mask

    def forward(self, features: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        """features (B, M, T), zero past n_frames (B,) -> clip vectors (B, d_model)."""
        tokens, mask = self.patches(features, n_frames)
        B, N, _ = tokens.shape
        R = self.n_rows
        column = torch.arange(N, device=tokens.device) // R  # (N,) time column of each token
        row = torch.arange(N, device=tokens.device) % R      # (N,) mel row of each token
        n_columns = self.time_columns or int(column[-1]) + 1
        time_table = sinusoidal_table(n_columns, self.cfg.d_model).to(tokens)  # (Tp, C)
        x = self.patch(tokens) + self.row_embedding(row) + time_table[column]  # (B, N, C)
        x = self.dropout(x)
        if self.cfg.unpad and not bool(mask.all()):
            packing = Packing.from_mask(mask, x.dtype)
            h = packing.unpad(x)  # (n_real, C)
            for block in self.blocks:
                h = block(h, packing=packing)
            x = packing.pad(self.final_norm(h))  # (B, N, C), zeros at padding
        else:
            bias = None if bool(mask.all()) else padding_mask_to_bias(mask, x.dtype)  # (B, 1, 1, N)
            for block in self.blocks:
                x = block(x, bias)
            x = self.final_norm(x)
        return pool(x, mask, "mean")  # (B, C)


# ============================================================================ the classifier
class AudioModel(nn.Module):
    """Waveforms -> log-mel -> standardised features -> encoder -> clip vector -> class logits."""

    def __init__(self, cfg: AudioEncoderConfig):
        super().__init__()
        if cfg.n_classes < 2:
            raise ConfigError("AudioModel needs model.n_classes >= 2 (the task fills it in from the data)")
        self.cfg = cfg
        self.front = LogMel(cfg.spectrogram)
        n_mels = cfg.spectrogram.n_mels
        # per-mel standardisation, estimated on the training set (`set_feature_stats`), saved with the weights
        self.register_buffer("feature_mean", torch.zeros(n_mels))
        self.register_buffer("feature_std", torch.ones(n_mels))
        self.encoder = AudioCNN(cfg) if cfg.architecture == "cnn" else AudioTransformer(cfg)
        self.head_dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d_embedding, cfg.n_classes)
        self.apply(_init_weights)

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp(min=1e-3))

    def features(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, L), lengths (B,) -> standardised log-mel (B, M, T), zero past each clip's frames (B,)."""
        log_mel, n_frames = self.front(waves, lengths)  # (B, M, T)
        x = (log_mel - self.feature_mean[:, None]) / self.feature_std[:, None]
        return x * frame_mask(n_frames, x.size(-1))[:, None, :], n_frames

    def encode(self, waves: torch.Tensor, lengths: torch.Tensor, augment: Augment | None = None) -> torch.Tensor:
        """waves (B, L) zero-padded, lengths (B,) samples -> clip vectors (B, d_embedding)."""
        x, n_frames = self.features(waves, lengths)
        if augment is not None:
            x = augment(x, n_frames)
        return self.encoder(x, n_frames)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, augment: Augment | None = None) -> torch.Tensor:
        """-> class logits (B, n_classes)."""
        return self.head(self.head_dropout(self.encode(waves, lengths, augment)))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")


def with_classes(cfg: AudioEncoderConfig, n_classes: int, sample_rate: int) -> AudioEncoderConfig:
    """The config with n_classes and the front end's sample rate taken from the data."""
    if cfg.n_classes not in (0, n_classes):
        raise ConfigError(f"model.n_classes={cfg.n_classes} but the data has {n_classes} classes; remove "
                          "model.n_classes (it is taken from the data)")
    spectrogram = dataclasses.replace(cfg.spectrogram, sample_rate=sample_rate)
    return dataclasses.replace(cfg, n_classes=n_classes, spectrogram=spectrogram)


def pad_waves(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of different lengths -> zero-padded (B, L_max) and their lengths (B,)."""
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
    for i, w in enumerate(waves):
        batch[i, :len(w)] = w
    return batch, lengths
