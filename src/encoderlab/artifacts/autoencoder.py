"""`ArrayEncoder`: a trained autoencoder or VAE run, used on NumPy arrays in the data's raw units.

    ae = ArrayEncoder.from_dir("runs/mnist-vae")      # the run directory (or its final/ directory)
    codes = ae.encode(images)                         # (N, 28, 28) or (N, 1, 28, 28) -> (N, latent_dim)
    images = ae.decode(codes)                         # -> (N, 1, 28, 28) on the model's [0, 1] scale
    same = ae.reconstruct(images)
    digits = ae.sample(16)                            # VAE only: x ~ p(x|z), z ~ N(0, I) (decoder means)
    path = ae.interpolate(images[0], images[1], steps=8)
    scores = ae.score(images)                         # anomaly score: reconstruction error / negative ELBO

Inputs go through the training data's saved scaling (uint8 /255, min-max or per-column standardisation)
and the same checks as training data (rank, NaN, sample shape), so errors name the problem.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..config import from_dict, read_yaml
from ..data.array_files import read_csv_columns, read_image_bytes, read_samples
from ..data.arrays import ArrayData, Scaling, check_samples, prepare_arrays
from ..errors import CheckpointError, InputDataError
from ..models.autoencoder import Autoencoder, AutoencoderConfig, reconstruction_error
from ..models.vae import VAE
from ..weights import load_weights
from .registry import Kind
from .runs import model_dir

DATA_INFO_FILE = "autoencoder.json"
"""Written next to the weights in OUT_DIR/final/: the data's name, sample shape and scaling."""


@dataclass
class AutoencoderInfo:
    """autoencoder.json: what a trained autoencoder remembers about its data."""

    name: str
    """The data's name (mnist, shuttle, a file's name)."""
    kind: Literal["image", "tabular"]
    sample_shape: list[int]
    """The shape of one sample, e.g. [1, 28, 28] or [9]."""
    scaling: dict[str, Any]
    """`Scaling.to_dict()`: how raw samples reach the model's scale."""
    labels: Literal["none", "class", "anomaly"] = "class"
    columns: list[str] | None = None
    """Tables: the training columns, in order."""
    label_column: str | None = None
    class_names: list[str] | None = None

    @classmethod
    def of(cls, data: ArrayData) -> AutoencoderInfo:
        return cls(name=data.name, kind=data.kind, sample_shape=list(data.sample_shape), scaling=data.scaling.to_dict(),
                   labels=data.labels, columns=data.columns, label_column=data.label_column,
                   class_names=data.class_names)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = DATA_INFO_FILE) -> AutoencoderInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("name", "kind", "sample_shape", "scaling") if k not in raw]
        if missing:
            raise CheckpointError(f"{where} has no {', '.join(missing)}; re-run `encoderlab autoencode`")
        return cls(**{k: v for k, v in raw.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def autoencoder_dir(path: str | Path) -> Path | None:
    """The directory holding an autoencoder's final weights, for a run dir or its final/ dir; else None."""
    return model_dir(path, DATA_INFO_FILE)


def build_model(model_cfg: AutoencoderConfig) -> Autoencoder | VAE:
    return VAE(model_cfg) if model_cfg.variational else Autoencoder(model_cfg)


@torch.no_grad()
def batched(fn, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Apply a tensor -> tensor function to `x` in batches; returns a NumPy array."""
    outs = [fn(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))).cpu().numpy()
            for i in range(0, len(x), batch_size)]
    return np.concatenate(outs)


def anomaly_score(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Higher = more anomalous, per sample (B,): the reconstruction error (mean over elements), or for a VAE
    the negative ELBO evaluated at the posterior mean (deterministic: -log p(x|mu) + KL)."""
    if isinstance(model, VAE):
        q = model.posterior(x)
        return -model.log_likelihood(model.decoder(q.mu), x) + q.kl_to_prior()
    return reconstruction_error(model(x).logits, x, model.cfg)


def anomaly_scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """`anomaly_score` of every sample of `x` (model scale), in batches."""
    model.eval()
    return batched(lambda xb: anomaly_score(model, xb), x)


class ArrayEncoder:
    """A trained autoencoder or VAE with its data's scaling: raw samples -> codes, reconstructions, anomaly scores."""

    kind = "autoencoder"

    def __init__(self, model: torch.nn.Module, info: AutoencoderInfo, directory: Path | None = None) -> None:
        self.model = model.eval()
        self.info = info
        self.directory = directory
        """The saved model's directory (None for a model built in memory)."""
        self.scaling = Scaling.from_dict(info.scaling)
        self.sample_shape = tuple(info.sample_shape)

    @classmethod
    def from_dir(cls, path: str | Path) -> ArrayEncoder:
        directory = autoencoder_dir(path)
        if directory is None:
            raise CheckpointError(f"{str(path)!r} is not an autoencoder run: no final/{DATA_INFO_FILE}; pass the "
                                  "out_dir of a finished `encoderlab autoencode` run")
        model = build_model(from_dict(AutoencoderConfig, read_yaml(directory / "config.yaml")["model"], "model."))
        model.load_state_dict(load_weights(directory / "model.safetensors"))
        where = directory / DATA_INFO_FILE
        return cls(model, AutoencoderInfo.from_dict(json.loads(where.read_text(encoding="utf-8")), str(where)),
                   directory)

    from_run = from_dir  # the name before the saved-model contract

    def run_config(self) -> dict[str, Any]:
        """The config.yaml saved with the model (the run's whole config)."""
        if self.directory is None:
            raise CheckpointError("this autoencoder was not loaded from a directory; pass samples explicitly")
        return read_yaml(self.directory / "config.yaml")

    def training_data(self) -> ArrayData:
        """The run's data (config.yaml's `data`), split and prepared exactly as in training: its held-out test
        split is what exports and robustness are checked on."""
        saved = self.run_config()
        return prepare_arrays(str(saved.get("data", "")), saved.get("label_column") or None, saved.get("normal_class"),
                              saved.get("train_limit"), saved.get("eval_limit"), bool(saved.get("binarize")),
                              saved.get("image_size"))

    @property
    def latent_dim(self) -> int:
        return self.model.cfg.latent_dim

    def read_samples(self, path: str | Path) -> np.ndarray:
        """The raw samples of a file, read the way the training data was: a .csv by the training run's column
        names (in any order; its label and any other column are ignored), anything else as `read_samples`."""
        columns = self.info.columns
        if columns and Path(path).suffix.lower() == ".csv" and Path(path).is_file():
            return read_csv_columns(path, columns)
        image_size, channels = self._image_reading()
        return read_samples(path, self.info.label_column, image_size, channels)  # images resized as in training

    def read_image(self, data: bytes, name: str = "the image") -> np.ndarray:
        """One image file's bytes (PNG, JPEG, ...) -> a raw sample (C, H, W) uint8, read as the training images
        were (grey or colour as the model takes, resized when the run set image_size=)."""
        if self.info.kind != "image":
            raise InputDataError(f"{name} is an image, but this model was trained on {self.info.kind} rows; send "
                                 f"numbers of shape {list(self.sample_shape)}")
        image_size, channels = self._image_reading()
        return read_image_bytes(data, name, image_size, channels)

    def _image_reading(self) -> tuple[int | None, int | None]:
        """(the run's image_size=, the channels the model takes): how image files are read for it."""
        image_size = self.run_config().get("image_size") if self.directory is not None else None
        channels = self.sample_shape[0] if self.info.kind == "image" else None  # a grey photo for a colour model
        return image_size, channels

    def prepare(self, x: np.ndarray, where: str = "input") -> np.ndarray:
        """Raw samples -> the model's scale, checked against the training data's sample shape."""
        x = np.asarray(x)
        if x.shape == self.sample_shape or (self.sample_shape[0] == 1 and x.shape == self.sample_shape[1:]):
            x = x[None]  # a single sample
        columns = self.info.columns
        if columns and x.ndim == 2 and x.shape[1] != len(columns):
            label = self.info.label_column
            not_label = f" (the label column {label!r} is not one)" if label else ""
            raise InputDataError(f"{where}: rows have {x.shape[1]} values but the model was trained on the "
                                 f"{len(columns)} columns {columns}{not_label}; pass exactly those columns")
        x = check_samples(x, where, self.sample_shape)
        if self.info.kind == "image" and x.size:
            self._check_pixel_range(x, where)
        return self.scaling.apply(x)

    def _check_pixel_range(self, x: np.ndarray, where: str) -> None:
        """Images scaled the other way would encode silently wrong: uint8-trained models divide by 255."""
        top = float(np.max(x))
        if self.scaling.kind == "divide" and np.issubdtype(x.dtype, np.floating) and top <= 1.0:
            raise InputDataError(f"{where}: float pixels in [0, 1], but the model was trained on uint8 images "
                                 "(0-255, divided by 255 here); pass the raw uint8 images, or x * 255")
        if self.scaling.kind == "none" and top > 1.0:
            raise InputDataError(f"{where}: pixel values up to {top:g}, but the model was trained on images in "
                                 "[0, 1]; scale the input the same way (e.g. x / 255 for uint8 images)")

    def encode(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """(N, *sample) raw -> (N, latent_dim) float32 codes (a VAE's posterior mean)."""
        return batched(self.model.encode, self.prepare(x), batch_size)

    def decode(self, codes: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """(N, latent_dim) -> (N, *sample), on the model's scale ([0, 1] images, standardised tables)."""
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != self.latent_dim:
            raise InputDataError(f"codes of shape {codes.shape}: expected (N, {self.latent_dim})")
        return batched(self.model.decode, codes, batch_size)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return batched(self.model.reconstruct, self.prepare(x))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        if not isinstance(self.model, VAE):
            raise InputDataError("sample() needs a VAE (a deterministic autoencoder has no prior); train with "
                                 "model.variational=true")
        with torch.no_grad():
            return self.model.sample(n, generator=torch.Generator().manual_seed(seed)).numpy()

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
        """Decode `steps` evenly spaced points on the line between the codes of samples a and b."""
        if steps < 2:
            raise InputDataError(f"steps={steps}: an interpolation needs at least 2 points")
        za, zb = self.encode(a), self.encode(b)  # (1, L) each
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.decode((1 - t) * za + t * zb)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score per sample (higher = more anomalous), as used in training's anomaly metrics."""
        return anomaly_scores(self.model, self.prepare(x))


KIND = Kind(
    name="autoencoder",
    summary="an autoencoder. Embed arrays with `encoderlab encode --model {path} --input samples.npy`; `export` and "
            "`robustness` take it too",
    holds=lambda d: (d / DATA_INFO_FILE).is_file(),
    load=ArrayEncoder.from_dir,
)
