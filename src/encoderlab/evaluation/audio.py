"""Evaluating audio classifiers: additive noise at a given SNR, the MFCC + logistic-regression baseline, and
accuracy restricted to a subset of classes (the same-speaker control of spoken-language identification).

    noisy = add_noise(wave, snr_db=10, rng=np.random.default_rng(0))
    baseline = MfccBaseline.fit(train_waves, train_y, val_waves, val_y, SpectrogramConfig(sample_rate=8000))
    proba = baseline.predict_proba(test_waves)
    pair_accuracy(test_y, proba, classes=[0, 1])   # among clips of classes 0 and 1, argmax over those two only

The baseline is the classic one (e.g. the spoken-language-ID and speaker-ID literature before neural
encoders): 20 MFCCs per frame, summarised per clip by their mean and standard deviation over frames (40
numbers), standardised, then a multinomial logistic regression whose L2 strength C is chosen on the
validation set. It uses scikit-learn's LogisticRegression (the `audio` extra installs it).
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


def _sklearn_logistic_regression():
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise InputDataError("the MFCC baseline uses scikit-learn; install it with `pip install "
                             "'encoderlab[audio]'` (or scikit-learn), or set baseline=false") from exc
    return LogisticRegression


@dataclass
class MfccBaseline:
    """MFCC mean/std features -> standardisation -> multinomial logistic regression (C tuned on validation)."""

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
    def fit(cls, train_waves: Sequence[np.ndarray], train_y: Sequence[int], val_waves: Sequence[np.ndarray],
            val_y: Sequence[int], spectrogram: SpectrogramConfig, n_mfcc: int = 20,
            grid: Sequence[float] = C_GRID, seed: int = 0) -> MfccBaseline:
        LogisticRegression = _sklearn_logistic_regression()
        train_x, val_x = mfcc_statistics(train_waves, spectrogram, n_mfcc), mfcc_statistics(val_waves, spectrogram,
                                                                                             n_mfcc)
        mean, std = train_x.mean(0), train_x.std(0) + 1e-8
        train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
        curve, best = {}, None
        for C in grid:
            model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(train_x, np.asarray(train_y))
            curve[float(C)] = float((model.predict(val_x) == np.asarray(val_y)).mean())
            if best is None or curve[float(C)] > best[1]:  # ties keep the smaller C (the stronger prior)
                best = (model, curve[float(C)], float(C))
        assert best is not None
        return cls(spectrogram, n_mfcc, mean, std, best[0], best[2], best[1], curve)

    def predict_proba(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        x = (mfcc_statistics(waves, self.spectrogram, self.n_mfcc) - self.mean) / self.std
        return self.model.predict_proba(x)


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
