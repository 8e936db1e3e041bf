"""Export a Transformer seq2seq run (`encoderlab seq2seq model.kind=transformer`) to ONNX: the encoder, and a
decoder that a greedy or beam loop outside PyTorch can call, both verified through onnxruntime.

    encoder.onnx   source_ids (B, S) int64, 0 = padding        -> encoder_output (B, S, C), zeros at padding
    decoder.onnx   target_ids (B, T) int64 (BOS + the tokens so far), encoder_output (B, S, C),
                   source_ids (B, S)                           -> logits (B, T, V)

and, for decoding that does not redo past steps, the key/value cache as graph inputs and outputs
(the PyTorch decoder's cache, `TransformerState`):

    decoder_memory.onnx  encoder_output (B, S, C)             -> memory_keys_i, memory_values_i (B, nh, S, hs)
                                                                 per decoder block i: cross-attention, once
    decoder_step.onnx    token_ids (B, 1), source_ids (B, S), memory_keys_i / memory_values_i,
                         past_keys_i / past_values_i (B, nh, t, hs), t = tokens fed so far (0 at the start)
                                                              -> logits (B, V), present_keys_i / present_values_i
                                                                 (B, nh, t + 1, hs): the next call's past

Batch, source and target lengths are dynamic. The encoder is the padded path of our `BertModel` (the
packed path's per-sequence loop does not trace). decoder.onnx recomputes the whole target prefix at each
call (one graph without cache inputs, simple to drive); decoder_step.onnx costs one position per call
(`onnx_greedy_cached`). vocab.json (the run's vocabularies) is copied beside the graphs, so ids can be
made and read without encoderlab.

The export is checked on held-out sources of the run's own test split (or given sources): the encoder
output and the teacher-forced decoder logits against PyTorch (max-abs), and greedy decoding driven through
onnxruntime against the model's own greedy decoding (how many outputs agree token for token), once with
decoder.onnx and once with the cached decoder_step.onnx. Nothing is written if a max-abs difference exceeds
the tolerance.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..artifacts.seq2seq import VOCAB_FILE, Seq2SeqPredictor, pad
from ..config import read_yaml
from ..data.pairs import load_pairs, split_by_source
from ..data.records import parse_fractions
from ..errors import EncoderlabError, InputDataError
from ..files import atomic_write_bytes, atomic_write_json
from ..models.decoding import BOS, EOS, never_generated, until_eos
from ..models.transformer_seq2seq import TransformerSeq2Seq, TransformerState, project_keys_values
from ..nn import padding_mask_to_bias
from .export_onnx import MAX_OPSET, MIN_OPSET, check_output_dir, padded_hidden, require_onnxruntime

ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
MEMORY_FILE, STEP_FILE = "decoder_memory.onnx", "decoder_step.onnx"


@dataclass
class Seq2SeqExportReport:
    directory: str
    opset: int
    max_abs_encoder: float
    """Largest |onnxruntime - PyTorch| of the encoder output over the real (non-padding) source tokens."""
    max_abs_logits: float
    """Largest |onnxruntime - PyTorch| of the teacher-forced decoder logits (real target positions)."""
    max_abs_step_logits: float
    """The same through the cached decoder_step.onnx, fed one target position per call."""
    greedy_agreement: float
    """Fraction of sources whose greedy output, decoded through onnxruntime, equals PyTorch's token for token."""
    greedy_agreement_cached: float
    """The same with the cached decoder_step.onnx (one position per call)."""
    tolerance: float
    n_sources: int


class _TraceableEncoder(nn.Module):
    """The encoder's padded forward, zeros at padding (what `TransformerSeq2Seq.encode` returns)."""

    def __init__(self, model: TransformerSeq2Seq):
        super().__init__()
        self.bert = model.encoder

    def forward(self, source_ids: torch.Tensor) -> torch.Tensor:
        mask = (source_ids != 0).long()  # (B, S)
        x = padded_hidden(self.bert, source_ids, mask)  # (B, S, C)
        return x * mask[..., None].to(x.dtype)


class _TraceableDecoder(nn.Module):
    """All target positions at once over a given encoder output: causal, no cache."""

    def __init__(self, model: TransformerSeq2Seq):
        super().__init__()
        self.model = model

    def forward(self, target_ids: torch.Tensor, encoder_output: torch.Tensor, source_ids: torch.Tensor) -> torch.Tensor:
        bias = padding_mask_to_bias((source_ids != 0).long(), encoder_output.dtype)  # (B, 1, 1, S)
        memory = [project_keys_values(block.cross_attn, encoder_output) for block in self.model.blocks]
        return self.model.decode(target_ids, TransformerState(memory, bias))[0]  # (B, T, V)


class _TraceableMemory(nn.Module):
    """encoder_output (B, S, C) -> every decoder block's cross-attention keys and values, flat."""

    def __init__(self, model: TransformerSeq2Seq):
        super().__init__()
        self.model = model

    def forward(self, encoder_output: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t for block in self.model.blocks for t in project_keys_values(block.cross_attn, encoder_output))


class _TraceableStep(nn.Module):
    """One cached decoding step: the PyTorch `TransformerSeq2Seq.step` with its state as flat tensors. The
    position of the new token is the past's length (a graph shape, so one graph serves every step)."""

    def __init__(self, model: TransformerSeq2Seq):
        super().__init__()
        self.model = model

    def forward(self, token_ids: torch.Tensor, source_ids: torch.Tensor,
                *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.model.blocks)
        memory = [(caches[2 * i], caches[2 * i + 1]) for i in range(n)]  # (B, nh, S, hs) each
        past = [(caches[2 * n + 2 * i], caches[2 * n + 2 * i + 1]) for i in range(n)]  # (B, nh, t, hs) each
        bias = padding_mask_to_bias((source_ids != 0).long(), memory[0][0].dtype)  # (B, 1, 1, S)
        state = TransformerState(memory, bias, past, past[0][0].shape[2])
        logits, state = self.model.decode(token_ids, state)  # (B, 1, V)
        return (logits[:, 0], *(t for kv in state.past or [] for t in kv))


def cache_names(n_blocks: int, kind: str) -> list[str]:
    """Graph input / output names of one cache: kind_keys_0, kind_values_0, kind_keys_1, ..."""
    return [f"{kind}_{part}_{i}" for i in range(n_blocks) for part in ("keys", "values")]


def held_out_sources(run: Path, n: int = 32) -> list[str]:
    """Up to `n` sources of the run's own test split, read again from its training data (`run`: a directory
    holding the run's config.yaml)."""
    cfg = read_yaml(run / "config.yaml")
    data = str(cfg.get("data", ""))
    try:
        pairs = load_pairs(data, cfg.get("source_column", "source"), cfg.get("target_column", "target"),
                           stress=bool(cfg.get("stress", False)), group_column=cfg.get("group_column"))
    except InputDataError as exc:
        raise InputDataError(f"{run}: the export is checked on held-out sources read from its training data {data!r}, "
                             f"which cannot be read ({exc}); run from where it was trained") from None
    test = split_by_source(pairs, parse_fractions(cfg.get("split", "0.9,0.05,0.05")), int(cfg.get("seed", 0)))[2]
    return list(dict.fromkeys(test.sources))[:n]


def _onnx_bytes(module: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str], output: str | list[str],
                axes: dict[str, dict[int, str]], opset: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints are expected and harmless here
        path = Path(tmp) / "graph.onnx"
        torch.onnx.export(module, inputs, str(path), dynamo=False, input_names=names,
                          output_names=[output] if isinstance(output, str) else output,
                          dynamic_axes=axes, opset_version=opset)
        return path.read_bytes()


def onnx_greedy(encoder, decoder, source: np.ndarray, max_length: int) -> list[list[int]]:
    """Greedy decoding driven through the two onnxruntime sessions (the whole prefix each step)."""
    memory = encoder.run(None, {"source_ids": source})[0]
    target = np.full((len(source), 1), BOS, dtype=np.int64)
    done = np.zeros(len(source), dtype=bool)
    for _ in range(max_length):
        logits = decoder.run(None, {"target_ids": target, "encoder_output": memory, "source_ids": source})[0]
        step = never_generated(torch.from_numpy(logits[:, -1])).argmax(-1).numpy()
        step = np.where(done, 0, step)
        target = np.concatenate([target, step[:, None]], axis=1)
        done |= step == EOS
        if done.all():
            break
    return [until_eos(row) for row in target[:, 1:].tolist()]


def _empty_cache(memory_graph, step, encoder_output: np.ndarray) -> tuple[dict, dict]:
    """The decoder_step inputs before the first token: every block's cross-attention keys and values
    (computed once) and an empty self-attention past, (B, nh, 0, hs) per block."""
    memory_inputs = [i.name for i in step.get_inputs() if i.name.startswith("memory_")]
    memory = dict(zip(memory_inputs, memory_graph.run(memory_inputs, {"encoder_output": encoder_output}),
                      strict=True))
    _, heads, _, width = memory[memory_inputs[0]].shape
    empty = np.zeros((len(encoder_output), heads, 0, width), dtype=np.float32)
    return memory, {i.name: empty for i in step.get_inputs() if i.name.startswith("past_")}


def onnx_step_logits(memory_graph, step, encoder_output: np.ndarray, source: np.ndarray,
                     target: np.ndarray) -> np.ndarray:
    """Teacher-forced logits (B, T, V) through decoder_step.onnx, one position per call: to compare with
    decoder.onnx / PyTorch on the same target."""
    memory, past = _empty_cache(memory_graph, step, encoder_output)
    logits = []
    for t in range(target.shape[1]):
        out, *present = step.run(None, {"token_ids": target[:, t:t + 1], "source_ids": source, **memory, **past})
        logits.append(out)
        past = dict(zip(past, present, strict=True))
    return np.stack(logits, axis=1)


def onnx_greedy_cached(encoder, memory_graph, step, source: np.ndarray, max_length: int) -> list[list[int]]:
    """Greedy decoding through decoder_step.onnx: one new position per call, the keys and values of the
    earlier ones carried from call to call (nothing recomputed)."""
    memory, past = _empty_cache(memory_graph, step, encoder.run(None, {"source_ids": source})[0])
    token = np.full((len(source), 1), BOS, dtype=np.int64)
    outputs, done = [], np.zeros(len(source), dtype=bool)
    for _ in range(max_length):
        logits, *present = step.run(None, {"token_ids": token, "source_ids": source, **memory, **past})
        chosen = np.where(done, 0, never_generated(torch.from_numpy(logits)).argmax(-1).numpy())
        outputs.append(chosen)
        past = dict(zip(past, present, strict=True))
        token = chosen[:, None]
        done |= chosen == EOS
        if done.all():
            break
    return [until_eos(row) for row in np.stack(outputs, axis=1).tolist()]


def _cache_graphs(model: TransformerSeq2Seq, memory: torch.Tensor, source: torch.Tensor,
                  opset: int) -> tuple[bytes, bytes]:
    """decoder_memory.onnx and decoder_step.onnx, traced on `memory` (B, S, C) with a past of two tokens."""
    n = len(model.blocks)
    memory_names, past_names = cache_names(n, "memory"), cache_names(n, "past")
    state = model.decode(torch.full((len(source), 2), BOS), model.start(source))[1]  # a real two-token past
    cross = _TraceableMemory(model)(memory)
    past = tuple(t for kv in state.past or [] for t in kv)
    memory_bytes = _onnx_bytes(_TraceableMemory(model), (memory,), ["encoder_output"], memory_names,
                               {"encoder_output": {0: "batch", 1: "source"},
                                **{name: {0: "batch", 2: "source"} for name in memory_names}}, opset)
    step_bytes = _onnx_bytes(_TraceableStep(model), (torch.full((len(source), 1), BOS), source, *cross, *past),
                             ["token_ids", "source_ids", *memory_names, *past_names],
                             ["logits", *cache_names(n, "present")],
                             {"token_ids": {0: "batch"}, "source_ids": {0: "batch", 1: "source"},
                              "logits": {0: "batch"},
                              **{name: {0: "batch", 2: "source"} for name in memory_names},
                              **{name: {0: "batch", 2: "past"} for name in past_names},
                              **{name: {0: "batch", 2: "past_and_new"} for name in cache_names(n, "present")}},
                             opset)
    return memory_bytes, step_bytes


def export_seq2seq_onnx(run_dir: str | Path, directory: str | Path, opset: int = 17, tolerance: float = 1e-4,
                        sources: list[str] | None = None) -> Seq2SeqExportReport:
    """Write `directory/encoder.onnx`, `decoder.onnx`, `vocab.json` and `onnx_export.json` (the report)."""
    ort = require_onnxruntime()
    directory = Path(directory)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputDataError(f"opset {opset} is not supported; use --opset {MIN_OPSET}-{MAX_OPSET} (default 17)")
    check_output_dir(directory, f"{ENCODER_FILE} + {DECODER_FILE} + {VOCAB_FILE}")
    predictor = Seq2SeqPredictor.from_dir(run_dir)
    model = predictor.model.eval()
    if not isinstance(model, TransformerSeq2Seq):
        raise InputDataError(f"{run_dir}: ONNX export is for Transformer seq2seq runs (model.kind=transformer); "
                             f"this run is model.kind={model.cfg.kind}")
    sources = sources or held_out_sources(predictor.directory)  # final/config.yaml is the run's config
    ids = predictor.source_ids(sources)
    source = pad(ids)  # (B, S)
    encoder, decoder = _TraceableEncoder(model).eval(), _TraceableDecoder(model).eval()
    with torch.inference_mode():
        reference_memory = model.encode(source)[0]  # (B, S, C): the packed path the model really runs
        outputs = model.greedy(source, predictor.max_output_length)
        target = pad([[BOS, *out] for out in outputs])  # (B, T): BOS + each greedy output, as teacher forcing
        reference_logits = model(source, target)  # (B, T, V)
    example = (source[:2, :6].clamp(min=1), target[:2, :3].clamp(min=1))
    with torch.no_grad():
        encoder_bytes = _onnx_bytes(encoder, (example[0],), ["source_ids"], "encoder_output",
                                    {"source_ids": {0: "batch", 1: "source"},
                                     "encoder_output": {0: "batch", 1: "source"}}, opset)
        decoder_bytes = _onnx_bytes(decoder, (example[1], encoder(example[0]), example[0]),
                                    ["target_ids", "encoder_output", "source_ids"], "logits",
                                    {"target_ids": {0: "batch", 1: "target"},
                                     "encoder_output": {0: "batch", 1: "source"},
                                     "source_ids": {0: "batch", 1: "source"}, "logits": {0: "batch", 1: "target"}},
                                    opset)
        memory_bytes, step_bytes = _cache_graphs(model, encoder(example[0]), example[0], opset)
    options = {"providers": ["CPUExecutionProvider"]}
    encoder_session = ort.InferenceSession(encoder_bytes, **options)
    decoder_session = ort.InferenceSession(decoder_bytes, **options)
    memory_session = ort.InferenceSession(memory_bytes, **options)
    step_session = ort.InferenceSession(step_bytes, **options)
    memory = encoder_session.run(None, {"source_ids": source.numpy()})[0]
    logits = decoder_session.run(None, {"target_ids": target.numpy(), "encoder_output": memory,
                                        "source_ids": source.numpy()})[0]
    real_source, real_target = source.numpy() != 0, np.arange(target.shape[1])[None] <= np.array(
        [len(out) for out in outputs])[:, None]  # BOS + the output's tokens
    step_logits = onnx_step_logits(memory_session, step_session, memory, source.numpy(), target.numpy())
    onnx_outputs = onnx_greedy(encoder_session, decoder_session, source.numpy(), predictor.max_output_length)
    cached_outputs = onnx_greedy_cached(encoder_session, memory_session, step_session, source.numpy(),
                                        predictor.max_output_length)
    report = Seq2SeqExportReport(
        str(directory), opset,
        max_abs_encoder=float(np.abs(memory - reference_memory.numpy())[real_source].max()),
        max_abs_logits=float(np.abs(logits - reference_logits.numpy())[real_target].max()),
        max_abs_step_logits=float(np.abs(step_logits - reference_logits.numpy())[real_target].max()),
        greedy_agreement=sum(a == b for a, b in zip(onnx_outputs, outputs, strict=True)) / len(outputs),
        greedy_agreement_cached=sum(a == b for a, b in zip(cached_outputs, outputs, strict=True)) / len(outputs),
        tolerance=tolerance, n_sources=len(sources))
    if not max(report.max_abs_encoder, report.max_abs_logits, report.max_abs_step_logits) <= tolerance:  # NaN too
        raise EncoderlabError(f"ONNX export differs from PyTorch by {report.max_abs_encoder:.2e} (encoder) / "
                              f"{report.max_abs_logits:.2e} (logits) / {report.max_abs_step_logits:.2e} (cached "
                              f"step logits) > {tolerance}; not written")
    heads, head_size = model.cfg.n_heads, model.cfg.d_model // model.cfg.n_heads
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / ENCODER_FILE, encoder_bytes)
    atomic_write_bytes(directory / DECODER_FILE, decoder_bytes)
    atomic_write_bytes(directory / MEMORY_FILE, memory_bytes)
    atomic_write_bytes(directory / STEP_FILE, step_bytes)
    shutil.copyfile(predictor.directory / VOCAB_FILE, directory / VOCAB_FILE)
    atomic_write_json(directory / "onnx_export.json", {
        **asdict(report), "encoder": {"inputs": {"source_ids": ["batch", "source"]},
                                      "outputs": {"encoder_output": ["batch", "source", model.cfg.d_model]}},
        "decoder": {"inputs": {"target_ids": ["batch", "target"], "encoder_output": ["batch", "source",
                                                                                   model.cfg.d_model],
                               "source_ids": ["batch", "source"]},
                    "outputs": {"logits": ["batch", "target", model.cfg.target_vocab_size]}},
        "decoder_memory": {"inputs": {"encoder_output": ["batch", "source", model.cfg.d_model]},
                           "outputs": {name: ["batch", heads, "source", head_size]
                                       for name in cache_names(len(model.blocks), "memory")}},
        "decoder_step": {"inputs": {"token_ids": ["batch", 1], "source_ids": ["batch", "source"],
                                    **{name: ["batch", heads, "source", head_size]
                                       for name in cache_names(len(model.blocks), "memory")},
                                    **{name: ["batch", heads, "past", head_size]
                                       for name in cache_names(len(model.blocks), "past")}},
                         "outputs": {"logits": ["batch", model.cfg.target_vocab_size],
                                     **{name: ["batch", heads, "past + 1", head_size]
                                        for name in cache_names(len(model.blocks), "present")}}},
        "special_ids": {"pad": 0, "unk": 1, "bos": BOS, "eos": EOS},
        "max_output_length": predictor.max_output_length, "lowercase_sources": predictor.lowercase,
    })
    return report
