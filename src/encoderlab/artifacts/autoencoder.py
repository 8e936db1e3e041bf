"""`ArrayEncoder`: a trained autoencoder or VAE run, used on NumPy arrays in the data's raw units.

    ae = ArrayEncoder.from_run("runs/mnist-vae")      # the run directory (or its final/ directory)
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

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict, read_yaml
from ..data.arrays import Scaling, check_samples, read_csv_columns, read_samples
from ..errors import CheckpointError, InputDataError
from ..models.vae import VAE
from ..tasks.autoencode import DATA_INFO_FILE, AutoencodeConfig, anomaly_scores, batched, build_model
from ..training.checkpoint import load_weights
from .runs import model_dir


def autoencoder_dir(path: str | Path) -> Path | None:
    """The directory holding an autoencoder's final weights, for a run dir or its final/ dir; else None."""
    return model_dir(path, DATA_INFO_FILE)


class ArrayEncoder:
    def __init__(self, model: torch.nn.Module, info: dict[str, Any]) -> None:
        self.model = model.eval()
        self.info = info
        self.scaling = Scaling.from_dict(info["scaling"])
        self.sample_shape = tuple(info["sample_shape"])

    @classmethod
    def from_run(cls, path: str | Path) -> ArrayEncoder:
        directory = autoencoder_dir(path)
        if directory is None:
            raise CheckpointError(f"{str(path)!r} is not an autoencoder run: no final/{DATA_INFO_FILE}; pass the "
                                  "out_dir of a finished `encoderlab autoencode` run")
        cfg = from_dict(AutoencodeConfig, read_yaml(directory / "config.yaml"))
        model = build_model(cfg.model)
        model.load_state_dict(load_weights(directory / "model.safetensors"))
        return cls(model, json.loads((directory / DATA_INFO_FILE).read_text(encoding="utf-8")))

    @property
    def latent_dim(self) -> int:
        return self.model.cfg.latent_dim

    def read_samples(self, path: str | Path) -> np.ndarray:
        """The raw samples of a file, read the way the training data was: a .csv by the training run's column
        names (in any order; its label and any other column are ignored), anything else as `read_samples`."""
        columns = self.info.get("columns")
        if columns and Path(path).suffix.lower() == ".csv" and Path(path).is_file():
            return read_csv_columns(path, columns)
        return read_samples(path, self.info.get("label_column"))

    def prepare(self, x: np.ndarray, where: str = "input") -> np.ndarray:
        """Raw samples -> the model's scale, checked against the training data's sample shape."""
        x = np.asarray(x)
        if x.shape == self.sample_shape or (self.sample_shape[0] == 1 and x.shape == self.sample_shape[1:]):
            x = x[None]  # a single sample
        columns = self.info.get("columns")
        if columns and x.ndim == 2 and x.shape[1] != len(columns):
            label = self.info.get("label_column")
            not_label = f" (the label column {label!r} is not one)" if label else ""
            raise InputDataError(f"{where}: rows have {x.shape[1]} values but the model was trained on the "
                                 f"{len(columns)} columns {columns}{not_label}; pass exactly those columns")
        x = check_samples(x, where, self.sample_shape)
        if self.info.get("kind") == "image" and x.size:
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
