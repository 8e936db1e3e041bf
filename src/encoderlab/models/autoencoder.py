"""Autoencoders: compress a sample to a fixed-length code and reconstruct it.

Follows the classic line: Hinton & Salakhutdinov (2006, "Reducing the dimensionality of data with neural
networks") for the deep MLP autoencoder (784 -> ... -> 10-30 -> ... -> 784, compared with PCA); Masci et
al. (2011, "Stacked convolutional auto-encoders") for the strided-conv encoder / transposed-conv decoder;
Vincent et al. (2008, "Extracting and composing robust features with denoising autoencoders") for the
denoising variant (Gaussian or masking noise on the input, the clean sample as target); and an L1 penalty
on the code for the sparse variant (Ng, "Sparse autoencoder" notes, 2011, use a KL penalty; L1 is the
common modern form).

Read top to bottom: the config, the encoder/decoder bodies (shared with `models.vae`), the autoencoder,
then the training objective. The decoder returns *logits*; `AutoencoderConfig.output` maps them to data
space (sigmoid for data in [0, 1], identity for standardised tables), and the loss is computed from the
logits (BCE-with-logits is the numerically stable Bernoulli log-likelihood).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU}


@dataclass
class AutoencoderConfig:
    """Architecture of an autoencoder or VAE. `input_shape` is normally filled in from the data."""

    input_shape: tuple[int, ...] = ()
    """Shape of one sample: (D,) for tables, (C, H, W) for images; empty = take it from the data."""
    kind: Literal["mlp", "conv"] = "mlp"
    """'mlp': fully connected on the flattened sample; 'conv': strided convolutions (images only)."""
    hidden: tuple[int, ...] | None = None
    """mlp: widths of the encoder's hidden layers (the decoder mirrors them); conv: channels per stride-2 conv.
    null: (512, 128) for mlp, (32, 64) for conv (512 and 128 channels would make a conv AE ~100x slower)."""
    latent_dim: int = 10
    """Size of the code (for a VAE, of the Gaussian latent)."""
    activation: str = "relu"
    """Hidden activation: relu, gelu, tanh, elu or silu."""
    batch_norm: bool = False
    """BatchNorm after every hidden layer (before the activation)."""
    dropout: float = 0.0
    """Dropout after every hidden activation."""
    output: Literal["auto", "sigmoid", "identity"] = "auto"
    """Decoder logits -> data space: sigmoid for data in [0, 1], identity for standardised tables. 'auto':
    identity for tables (N x D data, standardised per column), sigmoid for images (scaled to [0, 1])."""
    reconstruction: Literal["auto", "mse", "bce"] = "auto"
    """Reconstruction loss: per-element MSE (a Gaussian decoder) or BCE (a Bernoulli decoder; needs sigmoid).
    'auto': bce for images with a sigmoid output, mse otherwise."""
    variational: bool = False
    """Build a VAE (models.vae) instead of a deterministic autoencoder."""
    decoder_std: float = 1.0
    """VAE with reconstruction=mse: the fixed standard deviation of the Gaussian decoder."""

    def __post_init__(self) -> None:
        if self.hidden is None:
            self.hidden = (32, 64) if self.kind == "conv" else (512, 128)
        self.input_shape, self.hidden = tuple(self.input_shape), tuple(self.hidden)
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim={self.latent_dim}: the code needs at least 1 dimension, e.g. "
                              "model.latent_dim=10")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden={list(self.hidden)}: every layer needs at least 1 unit/channel")
        if self.kind == "conv" and not self.hidden:
            raise ConfigError("kind=conv needs at least one conv layer in hidden, e.g. model.hidden=[32,64]")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation={self.activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if self.reconstruction == "bce" and self.output == "identity":
            raise ConfigError("reconstruction=bce needs output=sigmoid (data in [0, 1]); for standardised "
                              "tables use reconstruction=mse output=identity")
        if self.decoder_std <= 0:
            raise ConfigError(f"decoder_std={self.decoder_std} must be positive")
        if self.input_shape:
            self.check_input_shape(self.input_shape)
            self.output, self.reconstruction = self.resolved_output(), self.resolved_reconstruction()

    def resolved_output(self) -> Literal["sigmoid", "identity"]:
        """`output`, with 'auto' decided by the sample shape: a table (D,) is standardised, so its values
        are unbounded (identity); images are scaled to [0, 1] (sigmoid)."""
        if self.output != "auto":
            return self.output
        return "sigmoid" if self.reconstruction == "bce" or len(self.input_shape) == 3 else "identity"

    def resolved_reconstruction(self) -> Literal["mse", "bce"]:
        if self.reconstruction != "auto":
            return self.reconstruction
        return "bce" if self.resolved_output() == "sigmoid" and len(self.input_shape) == 3 else "mse"

    def check_input_shape(self, shape: tuple[int, ...]) -> None:
        if any(s < 1 for s in shape) or len(shape) not in (1, 3):
            raise ConfigError(f"input_shape={list(shape)} must be (D,) or (C, H, W) with positive sizes")
        if self.kind == "conv" and len(shape) != 3:
            raise ConfigError(f"kind=conv needs image data (C, H, W), but samples have shape {list(shape)}; "
                              "use model.kind=mlp for tables")

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)


# ----------------------------------------------------------------------------------------------- bodies
def _hidden_block(layer: nn.Module, width: int, cfg: AutoencoderConfig, conv: bool) -> list[nn.Module]:
    norm = [(nn.BatchNorm2d if conv else nn.BatchNorm1d)(width)] if cfg.batch_norm else []
    drop = [(nn.Dropout2d if conv else nn.Dropout)(cfg.dropout)] if cfg.dropout else []
    return [layer, *norm, ACTIVATIONS[cfg.activation](), *drop]


def conv_sizes(size: int, n_layers: int) -> list[int]:
    """Spatial size after each stride-2, kernel-3, padding-1 conv: 28 -> 14 -> 7 -> 4."""
    sizes = [size]
    for _ in range(n_layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def build_encoder(cfg: AutoencoderConfig, out_features: int) -> nn.Sequential:
    """Sample (B, *input_shape) -> (B, out_features): MLP on the flattened sample, or stride-2 convs."""
    layers: list[nn.Module] = [nn.Flatten()] if cfg.kind == "mlp" else []
    if cfg.kind == "mlp":
        width = cfg.n_inputs
        for h in cfg.hidden:
            layers += _hidden_block(nn.Linear(width, h), h, cfg, conv=False)
            width = h
        return nn.Sequential(*layers, nn.Linear(width, out_features))
    channels, height, width = cfg.input_shape
    for c in cfg.hidden:
        layers += _hidden_block(nn.Conv2d(channels, c, 3, stride=2, padding=1), c, cfg, conv=True)
        channels = c
    h, w = conv_sizes(height, len(cfg.hidden))[-1], conv_sizes(width, len(cfg.hidden))[-1]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * h * w, out_features))


def build_decoder(cfg: AutoencoderConfig) -> nn.Sequential:
    """Code (B, latent_dim) -> logits (B, *input_shape): the encoder mirrored (transposed convs for conv)."""
    if cfg.kind == "mlp":
        layers: list[nn.Module] = []
        width = cfg.latent_dim
        for h in reversed(cfg.hidden):
            layers += _hidden_block(nn.Linear(width, h), h, cfg, conv=False)
            width = h
        return nn.Sequential(*layers, nn.Linear(width, cfg.n_inputs), nn.Unflatten(1, cfg.input_shape))
    channels, height, width = cfg.input_shape
    hs, ws = conv_sizes(height, len(cfg.hidden)), conv_sizes(width, len(cfg.hidden))
    top = cfg.hidden[-1]
    layers = _hidden_block(nn.Linear(cfg.latent_dim, top * hs[-1] * ws[-1]), top * hs[-1] * ws[-1], cfg, conv=False)
    layers.append(nn.Unflatten(1, (top, hs[-1], ws[-1])))  # (B, C_top, h, w)
    outs = list(reversed(cfg.hidden[:-1])) + [channels]
    for i, c_out in enumerate(outs):
        step = len(outs) - i  # index into the size lists: upsample from sizes[step] to sizes[step - 1]
        # A stride-2 transposed conv gives 2 * in - 1 (+ output_padding): pick the padding that lands exactly.
        pad = (hs[step - 1] - (2 * hs[step] - 1), ws[step - 1] - (2 * ws[step] - 1))
        deconv = nn.ConvTranspose2d(top, c_out, 3, stride=2, padding=1, output_padding=pad)
        layers += [deconv] if i == len(outs) - 1 else _hidden_block(deconv, c_out, cfg, conv=True)
        top = c_out
    return nn.Sequential(*layers)


def to_data_space(logits: torch.Tensor, cfg: AutoencoderConfig) -> torch.Tensor:
    return torch.sigmoid(logits) if cfg.output == "sigmoid" else logits


# ----------------------------------------------------------------------------------------------- model
@dataclass
class AutoencoderOutput:
    code: torch.Tensor
    """(B, latent_dim)"""
    logits: torch.Tensor
    """(B, *input_shape) decoder output before `output` (what the loss uses)."""

    def reconstruction(self, cfg: AutoencoderConfig) -> torch.Tensor:
        return to_data_space(self.logits, cfg)


class Autoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        if not cfg.input_shape:
            raise ConfigError("AutoencoderConfig.input_shape is empty; set it (the training task fills it "
                              "in from the data)")
        self.cfg = cfg
        self.encoder = build_encoder(cfg, cfg.latent_dim)
        self.decoder = build_decoder(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, *input_shape) -> (B, latent_dim)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return to_data_space(self.decoder(code), self.cfg)  # (B, latent_dim) -> (B, *input_shape)

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        code = self.encoder(x)
        return AutoencoderOutput(code, self.decoder(code))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# ----------------------------------------------------------------------------------------------- objective
def corrupt(x: torch.Tensor, noise: Literal["none", "gaussian", "masking"], level: float) -> torch.Tensor:
    """Denoising autoencoders see a corrupted input and reconstruct the clean one (Vincent et al., 2008):
    'gaussian' adds N(0, level^2) noise, 'masking' zeroes each element with probability `level`."""
    if noise == "none" or level == 0:
        return x
    if noise == "gaussian":
        return x + level * torch.randn_like(x)
    if noise == "masking":
        return x * (torch.rand_like(x) >= level).to(x.dtype)
    raise ConfigError(f"noise={noise!r} is not one of none, gaussian, masking")


def bce_with_logits(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Element-wise binary cross-entropy of targets `x` under Bernoulli(sigmoid(logits)). PyTorch's fused op,
    except while exporting to ONNX, whose translation of it gives NaN; there the same stable formula,
    max(l, 0) - l·x + log(1 + e^-|l|), is written out."""
    if torch.onnx.is_in_onnx_export():
        return logits.clamp(min=0) - logits * x + torch.log1p(torch.exp(-logits.abs()))
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def reconstruction_error(logits: torch.Tensor, x: torch.Tensor, cfg: AutoencoderConfig,
                         kind: Literal["mse", "bce"] | None = None) -> torch.Tensor:
    """Per-sample mean over elements (B,): MSE in data space, or BCE from the logits."""
    kind = kind or cfg.reconstruction
    if kind == "bce":
        per_element = bce_with_logits(logits, x)
    else:
        per_element = (to_data_space(logits, cfg) - x).square()
    return per_element.flatten(1).mean(1)


def autoencoder_loss(model: Autoencoder, x: torch.Tensor, noise: Literal["none", "gaussian", "masking"] = "none",
                     noise_level: float = 0.0, sparsity: float = 0.0) -> torch.Tensor:
    """Mean reconstruction loss of the clean `x` from a corrupted input, plus `sparsity` * mean L1 of the code."""
    out = model(corrupt(x, noise, noise_level))
    cfg = getattr(model, "module", model).cfg  # the model may arrive wrapped in DDP
    loss = reconstruction_error(out.logits, x, cfg).mean()
    if sparsity:
        loss = loss + sparsity * out.code.abs().sum(1).mean()
    return loss
