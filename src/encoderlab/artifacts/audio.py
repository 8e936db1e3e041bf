"""`AudioClassifier`: a trained audio classifier (log-mel front end, CNN or Transformer encoder, linear head).

    clf = AudioClassifier.from_dir("runs/audio-langid")     # a run directory or its final/ directory
    clf.predict(["hello.wav", "hola.flac"])                  # -> ['en', 'es']
    clf.predict_proba(waves, sample_rate=16000)              # arrays (resampled to the model's rate) -> (N, K)
    clf.encode(paths_or_arrays)                              # -> (N, d_embedding) float32 clip vectors
    clf.save("somewhere/")                                   # model.safetensors + audio_classifier.json
    clf.predict([open("a.wav", "rb").read()])                # the bytes of a file (what a server receives)

ONNX export (CNN and Transformer, front end inside): compression/export_onnx_audio.py.

Files are decoded exactly as in training (`data.audio.read_audio`: mono, resampled to the model's rate, cut to
its max_seconds), so a file gets the same prediction here as in the run's test metrics.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict, to_dict
from ..data.audio import check_wave, normalize_level, read_audio, resample
from ..errors import CheckpointError, InputDataError
from ..files import atomic_write_json
from ..models.audio import AudioEncoderConfig, AudioModel, pad_waves
from ..weights import load_weights, save_weights
from .registry import Kind

INFO_FILE = "audio_classifier.json"
WEIGHTS_FILE = "model.safetensors"
KIND_NAME = "audio-classifier"
FORMAT_VERSION = 1

AudioInput = str | Path | bytes | np.ndarray


@dataclass
class AudioClassifierInfo:
    """What audio_classifier.json holds next to the weights."""

    model: dict[str, Any]
    """The AudioEncoderConfig, as a plain dict."""
    label_names: list[str]
    """Class names, index = class id."""
    sample_rate: int
    """Every input is resampled to this rate (Hz)."""
    max_seconds: float | None
    """Inputs are cut to their first max_seconds (as in training); null = whole clips."""
    channels: str = "mix"
    """How multi-channel files are read: 'mix' (mean of the channels) or 'refuse'."""
    level_dbfs: float | None = None
    """Every clip is scaled to this RMS level (dB full scale) after decoding, as in training; null: as recorded."""
    data: str = ""
    """The training data (a name or a path), for the record."""
    kind: str = KIND_NAME
    format_version: int = FORMAT_VERSION


class AudioClassifier:
    """A trained audio classifier: recordings (paths, file bytes or waveforms) in, labels, class probabilities or
    clip vectors out."""

    kind = KIND_NAME
    def __init__(self, model: AudioModel, info: AudioClassifierInfo) -> None:
        if len(info.label_names) != model.cfg.n_classes:
            raise CheckpointError(f"{len(info.label_names)} label names for a model of {model.cfg.n_classes} "
                                  "classes; the saved model is inconsistent")
        self.model = model.eval()
        self.info = info

    @property
    def label_names(self) -> list[str]:
        return list(self.info.label_names)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    # ------------------------------------------------------------------ files
    @staticmethod
    def find_dir(path: str | Path) -> Path | None:
        """`path` or `path`/final, whichever holds audio_classifier.json; None if neither."""
        path = Path(path).expanduser()
        return next((d for d in (path, path / "final") if (d / INFO_FILE).is_file()), None)

    @classmethod
    def from_dir(cls, path: str | Path) -> AudioClassifier:
        directory = cls.find_dir(path)
        if directory is None:
            raise CheckpointError(f"{str(path)!r} is not an audio classifier: no {INFO_FILE} there or in its "
                                  "final/ folder; pass the out_dir of an `encoderlab audio` run")
        try:
            raw = json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
            info = AudioClassifierInfo(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(f"{directory / INFO_FILE} is damaged ({exc}); re-export the model") from exc
        if info.kind != KIND_NAME or info.format_version > FORMAT_VERSION:
            raise CheckpointError(f"{directory / INFO_FILE}: kind {info.kind!r} version {info.format_version}; this "
                                  f"encoderlab reads {KIND_NAME!r} up to version {FORMAT_VERSION} (upgrade encoderlab)")
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise CheckpointError(f"{directory} has {INFO_FILE} but no {WEIGHTS_FILE}; the export is incomplete")
        model = AudioModel(from_dict(AudioEncoderConfig, info.model, prefix="model."))
        state = load_weights(weights)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{weights}: weights do not fit the saved config (missing {missing[:3]}, "
                                  f"unexpected {unexpected[:3]}); the files come from different models")
        return cls(model, info)

    def save(self, directory: str | Path) -> Path:
        """Write model.safetensors and audio_classifier.json (each atomically) into `directory`."""
        directory = Path(directory)
        save_weights(directory / WEIGHTS_FILE, self.model.state_dict())
        info = dataclasses.replace(self.info, model=to_dict(self.model.cfg))
        atomic_write_json(directory / INFO_FILE, dataclasses.asdict(info))
        return directory

    # ------------------------------------------------------------------ inputs
    def load(self, inputs: AudioInput | Sequence[AudioInput], sample_rate: int | None = None) -> list[np.ndarray]:
        """Paths or the bytes of audio files (decoded, mono, resampled) and/or arrays (at `sample_rate`, default
        the model's) -> waveforms at the model's rate, cut to max_seconds."""
        if isinstance(inputs, str | Path | bytes) or (isinstance(inputs, np.ndarray) and inputs.ndim == 1):
            inputs = [inputs]
        if len(inputs) == 0:
            raise InputDataError("no audio given: pass a list of file paths or of 1-D waveforms")
        rate = sample_rate or self.sample_rate
        waves = []
        for i, item in enumerate(inputs):
            if isinstance(item, str | Path | bytes):
                wave = read_audio(item, self.sample_rate, channels=self.info.channels,  # type: ignore[arg-type]
                                  max_seconds=self.info.max_seconds, name=f"input[{i}]")
            else:
                wave = resample(check_wave(item, f"audio input {i}"), rate, self.sample_rate)
                if self.info.max_seconds is not None:
                    wave = wave[:int(round(self.info.max_seconds * self.sample_rate))]
            waves.append(wave if self.info.level_dbfs is None else normalize_level(wave, self.info.level_dbfs))
        return waves

    # ------------------------------------------------------------------ operations
    @torch.no_grad()
    def _batched(self, waves: list[np.ndarray], fn, batch_size: int) -> np.ndarray:
        # sort by length so each batch pads little; results go back in input order
        order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
        out: list[np.ndarray | None] = [None] * len(waves)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch, lengths = pad_waves([torch.from_numpy(waves[i]) for i in chunk])
            values = fn(batch, lengths).float().numpy()
            for row, i in enumerate(chunk):
                out[i] = values[row]
        return np.stack(out).astype(np.float32)  # type: ignore[arg-type]

    def logits_of_waves(self, waves: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Waveforms already at the model's rate -> (N, K) logits."""
        return self._batched(waves, self.model, batch_size)

    def proba_of_waves(self, waves: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Waveforms already prepared (at the model's rate, cut, level-normalised) -> (N, K) probabilities."""
        return torch.softmax(torch.from_numpy(self.logits_of_waves(waves, batch_size)), dim=-1).numpy()

    def encode_waves(self, waves: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Waveforms already prepared -> (N, d_embedding) float32 clip vectors."""
        return self._batched(waves, self.model.encode, batch_size)

    def encode(self, inputs: AudioInput | Sequence[AudioInput], sample_rate: int | None = None,
               batch_size: int = 32) -> np.ndarray:
        """-> (N, d_embedding) float32 clip vectors (the pooled encoder output, before the head)."""
        return self.encode_waves(self.load(inputs, sample_rate), batch_size)

    def predict_proba(self, inputs: AudioInput | Sequence[AudioInput], sample_rate: int | None = None,
                      batch_size: int = 32) -> np.ndarray:
        """-> (N, K) class probabilities (columns in label_names order)."""
        return self.proba_of_waves(self.load(inputs, sample_rate), batch_size)

    def predict(self, inputs: AudioInput | Sequence[AudioInput], sample_rate: int | None = None,
                batch_size: int = 32) -> list[str]:
        """-> the most probable class name of each input."""
        proba = self.predict_proba(inputs, sample_rate, batch_size)
        return [self.info.label_names[k] for k in proba.argmax(axis=1)]


KIND = Kind(
    name=KIND_NAME,
    summary="an audio classifier (log-mel + CNN/Transformer). Label recordings with `encoderlab predict --model "
            "{path} FILES`; `encode`, `evaluate`, `robustness`, `export` and `serve` take it too",
    holds=lambda d: (d / INFO_FILE).is_file(),
    load=AudioClassifier.from_dir,
)
