"""Evaluating audio classifiers: additive noise at a given SNR, linear baselines on clip statistics, and
accuracy restricted to a subset of classes (the same-speaker control of spoken-language identification).

    noisy = add_noise(wave, snr_db=10, rng=np.random.default_rng(0))
    baseline = LinearBaseline.fit("mfcc", train_waves, train_y, val_waves, val_y, SpectrogramConfig(8000))
    proba = baseline.predict_proba(test_waves)
    pair_accuracy(test_y, proba, classes=[0, 1])   # among clips of classes 0 and 1, argmax over those two only

Two feature sets, each standardised, then a multinomial logistic regression whose L2 strength C is chosen on
the validation set (scikit-learn's LogisticRegression; the `audio` extra installs it):
- "mfcc", the classic baseline of spoken-language and speaker identification before neural encoders: 20 MFCCs
  per frame, summarised per clip by their mean and standard deviation over frames (40 numbers);
- "level", a probe of recording conditions with no speech content at all: overall and peak level, the
  5th/50th percentile of frame energies (the noise floor), the share of digitally silent samples, the level
  of the first 25 ms, the duration. When it separates two classes, so can any model, without listening to
  the language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputDataError
from ..nn.spectrogram import LogMel, SpectrogramConfig, mfcc

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`wave` plus white Gaussian noise whose power is the clip's mean power / 10^(snr_db / 10)."""
    power = float(np.mean(np.square(wave, dtype=np.float64)))
    if power == 0.0:
        return wave.copy()
    noise = rng.standard_normal(len(wave)) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (wave + noise).astype(np.float32)


def noisy_copies(waves: Sequence[np.ndarray], snr_db: float, seed: int) -> list[np.ndarray]:
    """Every clip with its own noise at `snr_db`, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [add_noise(w, snr_db, rng) for w in waves]


@torch.no_grad()
def mfcc_statistics(waves: Sequence[np.ndarray], spectrogram: SpectrogramConfig, n_mfcc: int = 20) -> np.ndarray:
    """(N, 2·n_mfcc): per clip, the mean and standard deviation over frames of each MFCC."""
    front = LogMel(spectrogram)
    rows = []
    for wave in waves:
        log_mel, _ = front(torch.from_numpy(np.asarray(wave, dtype=np.float32))[None])  # (1, M, T)
        coefficients = mfcc(log_mel, n_mfcc)[0]  # (K, T)
        rows.append(torch.cat([coefficients.mean(dim=1), coefficients.std(dim=1, correction=0)]))
    return torch.stack(rows).double().numpy()


def level_statistics(waves: Sequence[np.ndarray], sample_rate: int, frame_ms: float = 10.0) -> np.ndarray:
    """(N, 7) recording-condition features of each clip (see the module docstring); nothing about speech."""
    frame = max(1, int(sample_rate * frame_ms / 1000))
    rows = []
    for wave in waves:
        w = np.asarray(wave, dtype=np.float64)
        padded = np.pad(w, (0, -len(w) % frame))
        energy = np.log(np.mean(padded.reshape(-1, frame) ** 2, axis=1) + 1e-10)  # (frames,)
        lead = w[:max(1, int(0.025 * sample_rate))]
        rows.append([np.log(np.mean(w ** 2) + 1e-10), np.log(np.abs(w).max() + 1e-9), np.percentile(energy, 5),
                     np.percentile(energy, 50), np.mean(np.abs(w) < 1e-4), np.log(np.mean(np.abs(lead)) + 1e-9),
                     len(w) / sample_rate])
    return np.asarray(rows)


def _sklearn_logistic_regression():
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise InputDataError("the MFCC baseline uses scikit-learn; install it with `pip install "
                             "'encoderlab[audio]'` (or scikit-learn), or set baseline=false") from exc
    return LogisticRegression


FEATURES = ("mfcc", "level")


@dataclass
class LinearBaseline:
    """Clip features ("mfcc" or "level") -> standardisation -> multinomial logistic regression (C tuned on
    validation)."""

    features: str
    spectrogram: SpectrogramConfig
    n_mfcc: int
    mean: np.ndarray
    std: np.ndarray
    model: Any
    """The fitted sklearn LogisticRegression."""
    C: float
    val_accuracy: float
    val_curve: dict[float, float]
    """Validation accuracy for every C tried."""

    @classmethod
    def fit(cls, features: str, train_waves: Sequence[np.ndarray], train_y: Sequence[int],
            val_waves: Sequence[np.ndarray], val_y: Sequence[int], spectrogram: SpectrogramConfig, n_mfcc: int = 20,
            grid: Sequence[float] = C_GRID, seed: int = 0) -> LinearBaseline:
        if features not in FEATURES:
            raise ValueError(f"features={features!r}: choose one of {FEATURES}")
        LogisticRegression = _sklearn_logistic_regression()
        train_x = _features(features, train_waves, spectrogram, n_mfcc)
        val_x = _features(features, val_waves, spectrogram, n_mfcc)
        mean, std = train_x.mean(0), train_x.std(0) + 1e-8
        train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
        curve, best = {}, None
        for C in grid:
            model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(train_x, np.asarray(train_y))
            curve[float(C)] = float((model.predict(val_x) == np.asarray(val_y)).mean())
            if best is None or curve[float(C)] > best[1]:  # ties keep the smaller C (the stronger prior)
                best = (model, curve[float(C)], float(C))
        assert best is not None
        return cls(features, spectrogram, n_mfcc, mean, std, best[0], best[2], best[1], curve)

    def predict_proba(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        x = (_features(self.features, waves, self.spectrogram, self.n_mfcc) - self.mean) / self.std
        return self.model.predict_proba(x)


def _features(kind: str, waves: Sequence[np.ndarray], spectrogram: SpectrogramConfig, n_mfcc: int) -> np.ndarray:
    if kind == "mfcc":
        return mfcc_statistics(waves, spectrogram, n_mfcc)
    return level_statistics(waves, spectrogram.sample_rate)


def pair_accuracy(y_true: Sequence[int], scores: np.ndarray, classes: Sequence[int]) -> tuple[float, int]:
    """Accuracy on the clips whose true class is in `classes`, deciding among `classes` only (argmax of
    their scores). With classes = (en, es) spoken by one speaker, voice identity cannot help. -> (acc, n)."""
    y = np.asarray(y_true)
    keep = np.isin(y, classes)
    if not keep.any():
        return float("nan"), 0
    cols = np.asarray(classes)
    picked = cols[np.argmax(scores[keep][:, cols], axis=1)]
    return float((picked == y[keep]).mean()), int(keep.sum())
