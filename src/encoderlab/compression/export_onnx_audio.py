"""Export an audio classifier (CNN or Transformer) to ONNX, front end inside, verified through onnxruntime.

    report = export_audio_onnx_dir("runs/audio-langid", "exports/langid")   # model.onnx + onnx_export.json

The graph takes what is left after decoding: `waves` (B, L) float32 mono at the model's sample rate, zero-padded
after each clip, and `lengths` (B,) int64 samples. Decoding, resampling, cropping to max_seconds and level
normalisation stay outside (they are file operations: do them as `AudioClassifier.load` does). Inside: the
log-mel front end (its DFT as a strided convolution with windowed cosine and sine kernels, since exporters
refuse torch.fft), the per-mel standardisation, the encoder, mean pooling over each clip's real frames and the
head. Outputs: `logits` (B, K) and `embedding` (B, D). Batch and length axes are dynamic.

The Transformer runs padded with an attention bias in the graph (the packed path plans its tiles in Python per
batch, which a traced graph cannot repeat; both give the same numbers, tested in tests/models/test_audio.py),
and its sinusoidal time table is fixed to the longest clip the model reads: `max_samples` in
onnx_export.json (the model's max_seconds; 60 s when it reads whole clips). Longer input fails in onnxruntime.

The export is refused, and nothing is written, if onnxruntime differs from PyTorch by more than the tolerance
(max-abs, over max(1, the largest PyTorch value)) on the check clips: the ones given (`encoderlab export`
passes the run's held-out test clips), else noise clips of several lengths up to the longest.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..artifacts.audio import AudioClassifier
from ..errors import EncoderlabError, InputDataError
from ..files import atomic_write_bytes, atomic_write_json
from ..models.audio import AudioModel, pad_waves
from .export_onnx import MAX_OPSET, MIN_OPSET, check_output_dir, require_onnxruntime

OUTPUTS = ("logits", "embedding")
WHOLE_CLIP_SECONDS = 60.0
"""The longest clip a Transformer export takes when the model reads whole clips (max_seconds null)."""


@dataclass
class AudioExportReport:
    path: str
    opset: int
    architecture: str
    sample_rate: int
    max_samples: int | None
    """Longest `waves` the graph takes (Transformer: its time table; None: any length)."""
    max_abs_logits: float
    """Largest |onnxruntime - PyTorch| logit over the check clips, over max(1, the largest |logit|)."""
    max_abs_embedding: float
    tolerance: float
    n_clips: int
    checked_on: str = "noise clips"
    """What the check clips were."""


class _TraceableAudio(nn.Module):
    """Front end, encoder and head as one traceable graph: (waves, lengths) -> (logits, embedding)."""

    def __init__(self, model: AudioModel, max_samples: int):
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        self.model.front.conv_dft = True  # a Conv instead of unfold + rfft, which exporters refuse
        encoder = self.model.encoder
        if model.cfg.architecture == "transformer":
            encoder.cfg = dataclasses.replace(encoder.cfg, unpad=False)  # padded + attention bias, not packed
            spectrogram = model.cfg.spectrogram
            frames = 1 + max_samples // spectrogram.hop_length
            encoder.time_columns = -(-frames // model.cfg.patch_frames)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.model.encode(waves, lengths)  # (B, D)
        return self.model.head(embedding), embedding  # (B, K), (B, D)


def longest_clip(clf: AudioClassifier) -> int:
    """Samples of the longest clip the model reads (max_seconds; WHOLE_CLIP_SECONDS without a limit)."""
    seconds = clf.info.max_seconds if clf.info.max_seconds is not None else WHOLE_CLIP_SECONDS
    return int(round(seconds * clf.sample_rate))


def check_clips(clf: AudioClassifier, seed: int = 0) -> list[np.ndarray]:
    """Clips to verify an export on: noise bursts of four lengths up to the longest, at speech-like level."""
    rng = np.random.default_rng(seed)
    longest = longest_clip(clf)
    return [(0.05 * rng.standard_normal(n)).astype(np.float32)
            for n in (longest, longest // 2 + 17, clf.sample_rate // 3, clf.sample_rate // 10)]


def export_audio_onnx(model: str | Path | AudioClassifier, path: str | Path, opset: int = 17,
                      tolerance: float = 1e-4, waves: Sequence[np.ndarray] | None = None, batch_size: int = 32
                      ) -> AudioExportReport:
    """Write `path` (.onnx) atomically and verify it on `waves` (prepared clips at the model's rate, e.g. the
    run's held-out test clips; default `check_clips`), in padded batches of `batch_size`; raise, writing
    nothing, if onnxruntime and PyTorch differ by more than `tolerance`."""
    ort = require_onnxruntime()
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputDataError(f"opset {opset} is not supported; use --opset {MIN_OPSET}-{MAX_OPSET} (default 17)")
    clf = model if isinstance(model, AudioClassifier) else AudioClassifier.from_dir(model)
    max_samples = longest_clip(clf)
    module = _TraceableAudio(clf.model, max_samples)
    waves = check_clips(clf) if waves is None else [np.asarray(w, dtype=np.float32) for w in waves]
    too_long = [i for i, w in enumerate(waves) if len(w) > max_samples]
    if clf.model.cfg.architecture == "transformer" and too_long:
        raise InputDataError(f"check clip {too_long[0]} is longer than the {max_samples} samples the export takes; "
                             "cut the clips to the model's max_seconds")
    example = pad_waves([torch.from_numpy(w) for w in (waves[0], waves[0][:len(waves[0]) // 2 + 1])])  # padded
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints are expected and harmless here
        tmp_path = Path(tmp) / "model.onnx"
        axes = {"waves": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                **{name: {0: "batch"} for name in OUTPUTS}}
        torch.onnx.export(module, example, str(tmp_path), dynamo=False, input_names=["waves", "lengths"],
                          output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=opset)
        onnx_bytes = tmp_path.read_bytes()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst, largest = np.zeros(2), np.ones(2)
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))  # batches of similar lengths
    for start in range(0, len(order), batch_size):
        batch, lengths = pad_waves([torch.from_numpy(waves[i]) for i in order[start:start + batch_size]])
        outputs = session.run(None, {"waves": batch.numpy(), "lengths": lengths.numpy()})
        with torch.inference_mode():  # the reference: the saved model as it predicts (FFT front end, packed path)
            embedding = clf.model.encode(batch, lengths)
            reference = [clf.model.head(embedding).numpy(), embedding.numpy()]
        for k, (out, ref) in enumerate(zip(outputs, reference, strict=True)):
            worst[k] = max(worst[k], float(np.abs(out - ref).max()))
            largest[k] = max(largest[k], float(np.abs(ref).max()))
    diffs = [float(w / m) for w, m in zip(worst, largest, strict=True)]
    report = AudioExportReport(str(path), opset, clf.model.cfg.architecture, clf.sample_rate,
                               max_samples if clf.model.cfg.architecture == "transformer" else None, *diffs,
                               tolerance=tolerance, n_clips=len(waves))
    if not all(diff <= tolerance for diff in diffs):  # NaN fails too
        raise EncoderlabError(f"ONNX export differs from PyTorch by {max(diffs):.2e} (relative) > {tolerance}; "
                              "not written")
    atomic_write_bytes(Path(path), onnx_bytes)
    return report


def export_audio_onnx_dir(model: str | Path, directory: str | Path, checked_on: str | None = None,
                          **kwargs) -> AudioExportReport:
    """`directory/model.onnx` + `onnx_export.json` (the parity report, the inputs, the labels and how to
    prepare a recording for the graph). `checked_on` names the `waves` passed in kwargs, for the report."""
    directory = Path(directory)
    check_output_dir(directory, "model.onnx + onnx_export.json")
    clf = AudioClassifier.from_dir(model)
    report = export_audio_onnx(clf, directory / "model.onnx", **kwargs)
    if checked_on:
        report = dataclasses.replace(report, checked_on=checked_on)
    atomic_write_json(directory / "onnx_export.json", {
        **asdict(report), "label_names": clf.label_names, "outputs": list(OUTPUTS),
        "inputs": {"waves": ["batch", "samples"], "lengths": ["batch"]},
        "prepare": {"sample_rate": clf.sample_rate, "mono": clf.info.channels, "max_seconds": clf.info.max_seconds,
                    "level_dbfs": clf.info.level_dbfs,
                    "how": "decode to float32 in [-1, 1], mix to mono, resample to sample_rate, keep the first "
                           "max_seconds, scale to level_dbfs RMS (if set), zero-pad to the longest clip"},
    })
    return report
