"""Export a TextEncoder to ONNX, with dynamic batch and sequence axes, verified through onnxruntime.

The graph takes `input_ids` and `attention_mask` (int64, (B, T)) and returns `last_hidden_state`
(B, T, C) and `sentence_embedding` (B, C: the encoder's pooling, L2-normalised if the encoder normalises).
The padded attention path is exported (the packed path's per-sequence loop does not trace); the export is
checked against our PyTorch outputs on real texts of several lengths and refused if they differ.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..artifacts.text_encoder import TextEncoder
from ..errors import EncoderlabError, InputDataError
from ..files import atomic_write_bytes, atomic_write_json, file_in_the_way
from ..nn import padding_mask_to_bias, pool

PARITY_TEXTS = [
    "A short one.",
    "The committee approved the new budget after a long debate on Tuesday evening.",
    "",
    "北京是中国的首都。",
    "Emoji 🙂 and ÀCCÉNTS in MiXeD case, with numbers 3.14 and a URL https://example.com.",
    "word " * 300,
]


MIN_OPSET = 14
"""Attention is exported as scaled_dot_product_attention, which the ONNX exporter supports from opset 14."""
MAX_OPSET = getattr(torch.onnx._constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)
"""The newest opset torch's TorchScript-based exporter (the one used here) writes."""


@dataclass
class OnnxExportReport:
    path: str
    opset: int
    max_abs_hidden: float
    max_abs_embedding: float
    tolerance: float
    n_texts: int


def padded_hidden(bert: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """A BertModel's padded forward, (B, T) -> (B, T, C), without data-dependent Python branches (the packed
    path's per-sequence loop and the "any padding?" test do not trace); also used by export_onnx_seq2seq."""
    x = bert.embeddings(input_ids)  # (B, T, C)
    bias = padding_mask_to_bias(attention_mask, x.dtype)  # (B, 1, 1, T)
    for block in bert.blocks:
        x = block(x, bias)
    return bert.final_norm(x) if bert.final_norm is not None else x


class _TraceableEncoder(nn.Module):
    """The encoder's padded forward plus pooling, written without data-dependent Python branches."""

    def __init__(self, encoder: TextEncoder):
        super().__init__()
        self.bert = encoder.bert
        self.pooling = encoder.pooling
        self.normalize = encoder.normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = padded_hidden(self.bert, input_ids, attention_mask)  # (B, T, C)
        embedding = pool(x, attention_mask, self.pooling)  # (B, C)
        if self.normalize:
            embedding = F.normalize(embedding, p=2, dim=1)
        return x, embedding


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise EncoderlabError("ONNX export needs onnx and onnxruntime: pip install onnx onnxruntime") from exc
    return onnxruntime


def export_onnx(encoder: TextEncoder, path: str | Path, opset: int = 17, tolerance: float = 1e-4,
                texts: list[str] | None = None) -> OnnxExportReport:
    """Write `path` (a .onnx file) atomically and verify it; raise if it differs from PyTorch by > tolerance."""
    ort = require_onnxruntime()
    path = Path(path)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputDataError(f"opset {opset} is not supported: attention exports as scaled_dot_product_attention "
                             f"(opset {MIN_OPSET} and later) and torch's exporter writes up to opset {MAX_OPSET}; "
                             f"use --opset {MIN_OPSET}-{MAX_OPSET} (default 17)")
    if path.is_dir():
        raise InputDataError(f"{str(path)!r} is a directory; name the .onnx file to write")
    module = _TraceableEncoder(encoder).eval()
    example = encoder.tokenizer(["an example sentence", "another, longer example sentence"], max_length=16)
    was_training = encoder.training
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints are expected and harmless here
        tmp_path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            module, (example.input_ids, example.attention_mask), str(tmp_path), dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state", "sentence_embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "last_hidden_state": {0: "batch", 1: "sequence"}, "sentence_embedding": {0: "batch"}},
            opset_version=opset,
        )
        onnx_bytes = tmp_path.read_bytes()
    encoder.train(was_training)  # the exporter restores the wrapper's mode, not the encoder's

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    texts = texts or PARITY_TEXTS
    batch = encoder.tokenizer(texts, max_length=encoder.max_seq_length)
    hidden, embedding = session.run(None, {"input_ids": batch.input_ids.numpy(),
                                           "attention_mask": batch.attention_mask.numpy()})
    with torch.inference_mode():
        ref_hidden, ref_embedding = module(batch.input_ids, batch.attention_mask)
    real = batch.attention_mask.numpy().astype(bool)
    report = OnnxExportReport(
        path=str(path), opset=opset,
        max_abs_hidden=float(np.abs(hidden - ref_hidden.numpy())[real].max()),
        max_abs_embedding=float(np.abs(embedding - ref_embedding.numpy()).max()),
        tolerance=tolerance, n_texts=len(texts),
    )
    if max(report.max_abs_hidden, report.max_abs_embedding) > tolerance:
        raise EncoderlabError(f"ONNX export differs from PyTorch by {report.max_abs_hidden:.2e} (hidden) / "
                              f"{report.max_abs_embedding:.2e} (embedding) > {tolerance}; not written")
    atomic_write_bytes(path, onnx_bytes)
    return report


def check_output_dir(directory: Path, contents: str) -> None:
    """Refuse an --output that cannot become the export directory holding `contents` (e.g. "model.onnx +
    onnx_export.json"), before anything is exported."""
    if directory.exists() and not directory.is_dir():
        raise InputDataError(f"--output {str(directory)!r} is a file; export writes a directory ({contents}): name "
                             "a new or existing directory")
    blocking = file_in_the_way(directory.parent)
    if blocking is not None:
        raise InputDataError(f"--output {str(directory)!r}: {str(blocking)!r} is a file, not a folder; choose "
                             "another path")
    if directory.suffix.lower() == ".onnx" and not directory.exists():  # would become NAME.onnx/model.onnx
        raise InputDataError(f"--output {str(directory)!r} names a directory that export creates (it writes "
                             f"{contents} into it); drop the .onnx, e.g. --output "
                             f"{str(directory.with_suffix(''))}-onnx")


def export_onnx_dir(encoder: TextEncoder, directory: str | Path, **kwargs) -> OnnxExportReport:
    """`directory/model.onnx` + the tokenizer files + `onnx_export.json` (the parity report)."""
    directory = Path(directory)
    check_output_dir(directory, "model.onnx + the tokenizer files")
    report = export_onnx(encoder, directory / "model.onnx", **kwargs)
    encoder.tokenizer.save(directory)
    atomic_write_json(directory / "onnx_export.json", {
        **asdict(report), "pooling": encoder.pooling, "normalize": encoder.normalize,
        "max_seq_length": encoder.max_seq_length, "inputs": ["input_ids", "attention_mask"],
        "outputs": ["last_hidden_state", "sentence_embedding"],
    })
    return report
