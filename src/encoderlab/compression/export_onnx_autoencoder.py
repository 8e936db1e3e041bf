"""Export an autoencoder run to ONNX, verified through onnxruntime on the run's own held-out samples.

The graph takes raw samples as the run read them — `input` (B, *sample_shape) float32: images as stored
(e.g. 0–255, cast to float), table rows in their own units — and applies the training data's scaling itself.
It returns `code` (B, latent_dim: a VAE's posterior mean, as `encoderlab encode` gives), `reconstruction`
(B, *sample_shape, back in raw units) and `score` (B,: the anomaly score the run's metrics use). The batch
axis is dynamic. The export is refused, and nothing is written, if onnxruntime differs from PyTorch by more
than the tolerance.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..artifacts.autoencoder import ArrayEncoder, anomaly_score
from ..errors import EncoderlabError, InputDataError
from ..files import atomic_write_bytes, atomic_write_json
from .export_onnx import MAX_OPSET, MIN_OPSET, check_output_dir, require_onnxruntime

OUTPUTS = ("code", "reconstruction", "score")


@dataclass
class AutoencoderExportReport:
    path: str
    opset: int
    max_rel_code: float
    """Largest |onnxruntime - PyTorch| over the held-out samples, divided by max(1, largest |PyTorch| value)."""
    max_rel_reconstruction: float
    max_rel_score: float
    tolerance: float
    n_samples: int


class _TraceableAutoencoder(nn.Module):
    """Scaling, encoder, decoder and score in one graph: raw samples in, raw-unit reconstructions out."""

    def __init__(self, encoder: ArrayEncoder):
        super().__init__()
        self.model = encoder.model.eval()
        self.score_fn = anomaly_score
        # Scaling holds scalars (images) or one value per column (tables); both broadcast over (B, *sample).
        self.register_buffer("offset", torch.as_tensor(encoder.scaling.offset, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(encoder.scaling.scale, dtype=torch.float32))

    def forward(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = (raw - self.offset) / self.scale  # (B, *sample) on the model's scale
        code = self.model.encode(x)  # (B, L)
        reconstruction = self.model.decode(code) * self.scale + self.offset  # (B, *sample), raw units
        return code, reconstruction, self.score_fn(self.model, x)


def held_out_samples(encoder: ArrayEncoder, n: int = 64) -> np.ndarray:
    """Up to `n` raw samples of the run's own test split (or validation), to check the export on."""
    source = str(encoder.run_config().get("data", ""))
    try:
        data = encoder.training_data()
    except InputDataError as exc:  # the parity check needs the run's own held-out samples
        if source in str(exc) and not Path(source).expanduser().exists():
            raise InputDataError(f"{encoder.directory}: the export is checked on its held-out samples, read from its "
                                 f"training data {source!r}, which is not there (moved, deleted, or a relative path "
                                 "and another working directory); run from where it was trained") from None
        raise
    x = data.test.x if len(data.test) else data.val.x
    return data.scaling.invert(x[:n])


def export_autoencoder_onnx(run_dir: str | Path, path: str | Path, opset: int = 17, tolerance: float = 1e-4,
                            samples: np.ndarray | None = None) -> AutoencoderExportReport:
    """Write `path` (a .onnx file) atomically and verify it; raise if it differs from PyTorch by > tolerance.
    `samples`: raw samples to verify on (default: the run's held-out test samples)."""
    ort = require_onnxruntime()
    path = Path(path)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputDataError(f"opset {opset} is not supported; use --opset {MIN_OPSET}-{MAX_OPSET} (default 17)")
    encoder = ArrayEncoder.from_dir(run_dir)
    module = _TraceableAutoencoder(encoder).eval()
    samples = (held_out_samples(encoder) if samples is None else np.asarray(samples)).astype(np.float32)
    example = torch.from_numpy(samples[:2])
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints are expected and harmless here
        tmp_path = Path(tmp) / "model.onnx"
        axes = {"input": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}}
        torch.onnx.export(module, (example,), str(tmp_path), dynamo=False, input_names=["input"],
                          output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=opset)
        onnx_bytes = tmp_path.read_bytes()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": samples})
    with torch.inference_mode():
        reference = [t.numpy() for t in module(torch.from_numpy(samples))]
    # errors relative to each output's own size: raw-unit reconstructions of 0-255 pixels are large numbers
    diffs = [float(np.abs(out - ref).max() / max(1.0, float(np.abs(ref).max())))
             for out, ref in zip(outputs, reference, strict=True)]
    report = AutoencoderExportReport(str(path), opset, *diffs, tolerance=tolerance, n_samples=len(samples))
    if not all(diff <= tolerance for diff in diffs):  # NaN fails too
        raise EncoderlabError(f"ONNX export differs from PyTorch by {max(diffs):.2e} (relative) > {tolerance}; "
                              "not written")
    atomic_write_bytes(path, onnx_bytes)
    return report


def export_autoencoder_onnx_dir(run_dir: str | Path, directory: str | Path, **kwargs) -> AutoencoderExportReport:
    """`directory/model.onnx` + `onnx_export.json` (the parity report, the input's shape and the outputs)."""
    directory = Path(directory)
    check_output_dir(directory, "model.onnx + onnx_export.json")
    report = export_autoencoder_onnx(run_dir, directory / "model.onnx", **kwargs)
    info = ArrayEncoder.from_dir(run_dir).info  # the data's shape and columns
    atomic_write_json(directory / "onnx_export.json", {
        **asdict(report), "inputs": {"input": ["batch", *info.sample_shape]}, "outputs": list(OUTPUTS),
        "input_units": "raw samples as the run read them (float32), scaled inside the graph",
        "columns": info.columns,
    })
    return report
