"""The engines `encoderlab bench` measures us against, each doing the whole job — tokenise, run the encoder,
mean-pool, L2-normalise — from the same local model directory, on the same threads:

- `transformers` (PyTorch eager, SDPA attention), fp32;
- ONNX Runtime (our ONNX export, MLAS kernels), fp32;
- OpenVINO (the model converted from `transformers` with `ov.convert_model`), fp32, bf16 and int8 quantized by
  NNCF on the same calibration texts as ours;
- CTranslate2 (its own converter), fp32 and int8 (bf16 where its CPU build offers it).

Every peer gets what a careful user would give it: texts sorted by token count into batches (as
sentence-transformers does), each batch padded only to its own longest text. Token ids come from the
directory's own tokenizer through `tokenizers` (our TextTokenizer, tested equal to transformers' tokenizers),
without the fixed padding some checkpoints carry in tokenizer.json (minilm's pads every text to 128 tokens),
cut at the same `max_length` as ours, and the tokenising is on every engine's clock.

Precision, set explicitly: OpenVINO's default on a CPU with bf16 is bf16, so fp32 asks for `f32`; int8 leaves
OpenVINO's own choice for the layers NNCF keeps in floating point (bf16 here), which the table says.
Each engine also reports the kernels it ran (OpenVINO: the primitive types of its compiled matmuls).

    peers = build_peer_engines(directory, ("openvino", "ctranslate2"), threads, 512, 32, calibration, notes)
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tokenization import TextTokenizer

Encode = Callable[[list[str]], np.ndarray]
BatchFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""One padded batch, (ids, mask) (B, T) int64 each -> (B, T, C) last hidden states."""
PeerBatches = dict[str, tuple[BatchFn, str]]
"""What each peer's builder returns: engine name -> (its batch function, its kernels in words)."""

PEERS = ("transformers", "onnxruntime", "openvino", "ctranslate2")


@dataclass
class Engine:
    encode: Encode
    kernels: str
    """In words: which kernels it runs, e.g. 'oneDNN bf16 matmul on AMX tiles'."""


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Loading and converting the peers prints progress bars, tracer warnings and logs that say nothing about
    speed: keep them out of the benchmark's output (errors still raise)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, T, C) hidden states and (B, T) mask -> (B, C) unit vectors of the mean over real tokens."""
    weights = mask[..., None].astype(np.float32)
    mean = (hidden.astype(np.float32) * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def by_length(tokenizer: TextTokenizer, max_length: int, run_batch: BatchFn, batch_size: int) -> Encode:
    """texts -> normalised embeddings in input order, through `run_batch` on length-sorted batches, each padded
    by the model's own tokenizer to its longest text."""

    def encode(texts: list[str]) -> np.ndarray:
        ids = tokenizer.encode_ids([t.strip() for t in texts], max_length)
        order = np.argsort([-len(seq) for seq in ids], kind="stable")
        out = np.empty((len(ids), 0), dtype=np.float32)
        for start in range(0, len(ids), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer.pad([ids[i] for i in rows])
            mask = batch.attention_mask.numpy()
            vectors = mean_pool_normalise(run_batch(batch.input_ids.numpy(), mask), mask)
            if out.shape[1] == 0:
                out = np.empty((len(ids), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        return out

    return encode


def _transformers(directory: Path, threads: int, notes: list[str]) -> PeerBatches:
    import torch

    try:
        import transformers
    except ImportError:
        notes.append("transformers: not installed, skipped (pip install transformers)")
        return {}
    transformers.logging.set_verbosity_error()
    try:
        with quietly():
            model = transformers.AutoModel.from_pretrained(str(directory)).eval()
    except (OSError, ValueError, RuntimeError) as exc:  # e.g. a structurally pruned encoder it cannot build
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"transformers: cannot load {directory} ({first_line[:160]}), skipped")
        return {}

    @torch.inference_mode()
    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()

    return {"transformers fp32": (run, "PyTorch eager, SDPA attention")}


def _onnxruntime(encoder, threads: int, notes: list[str]) -> PeerBatches:
    try:
        import onnxruntime as ort
    except ImportError:
        notes.append("onnxruntime: not installed, skipped (pip install onnx onnxruntime)")
        return {}
    from ..compression.export_onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(encoder, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]

    return {"onnxruntime fp32": (run, "MLAS (ONNX Runtime's CPU kernels)")}


def _openvino(directory: Path, threads: int, precisions: Sequence[str], calibration: Sequence[str],
              tokenizer: TextTokenizer, max_length: int, notes: list[str]) -> PeerBatches:
    try:
        import openvino as ov
        import torch
        import transformers
    except ImportError:
        notes.append("openvino: not installed, skipped (pip install 'encoderlab[peers]')")
        return {}
    transformers.logging.set_verbosity_error()
    example = {"input_ids": torch.ones(2, 8, dtype=torch.long), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    with quietly(), torch.inference_mode():
        model = transformers.AutoModel.from_pretrained(str(directory)).eval()
        converted = ov.convert_model(model, example_input=example)
    core = ov.Core()
    names = [port.get_any_name() for port in converted.inputs]
    engines: PeerBatches = {}

    def feeds(ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: given[name] for name in names}

    def padded(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batch = tokenizer.pad(tokenizer.encode_ids(texts, max_length))
        return batch.input_ids.numpy(), batch.attention_mask.numpy()

    for precision in precisions:
        graph = converted
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        if precision == "int8":
            try:
                import nncf
            except ImportError:
                notes.append("openvino int8: nncf not installed, skipped (pip install nncf)")
                continue
            samples = [feeds(*padded([text])) for text in calibration]
            nncf.set_log_level(logging.ERROR)
            with quietly():
                graph = nncf.quantize(converted, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(samples))
        else:
            config["INFERENCE_PRECISION_HINT"] = {"fp32": "f32", "bf16": "bf16"}[precision]
        compiled = core.compile_model(graph, "CPU", config)
        output = compiled.outputs[0]

        def run(ids: np.ndarray, mask: np.ndarray, compiled=compiled, output=output) -> np.ndarray:
            return compiled(feeds(ids, mask))[output]

        run(*padded(["warm-up"]))  # the primitive types are known once it has run
        engines[f"openvino {precision}"] = (run, _openvino_kernels(compiled))
    return engines


def _openvino_kernels(compiled) -> str:
    """The primitive types OpenVINO picked for its matmuls, e.g. 'brgemm_avx512_amx_bf16'."""
    found: set[str] = set()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in ("FullyConnected", "MatMul"):
            found.add(info["primitiveType"].astype(str))
    return "OpenVINO matmuls: " + ", ".join(sorted(found))


def _ctranslate2(directory: Path, threads: int, precisions: Sequence[str], notes: list[str]) -> PeerBatches:
    try:
        import ctranslate2
    except ImportError:
        notes.append("ctranslate2: not installed, skipped (pip install 'encoderlab[peers]')")
        return {}
    available = ctranslate2.get_supported_compute_types("cpu")
    types = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8"}
    engines: PeerBatches = {}
    with tempfile.TemporaryDirectory(prefix="encoderlab-ct2-") as converted:  # each Encoder reads it whole
        with quietly():
            ctranslate2.converters.TransformersConverter(str(directory)).convert(converted, force=True)
        for precision in precisions:
            if types[precision] not in available:
                notes.append(f"ctranslate2 {precision}: this CPU build offers {sorted(available)}, skipped")
                continue
            model = ctranslate2.Encoder(converted, device="cpu", compute_type=types[precision],
                                        intra_threads=threads)

            def run(ids: np.ndarray, mask: np.ndarray, model=model) -> np.ndarray:  # it takes unpadded id lists
                lists = [row[:n].tolist() for row, n in zip(ids, mask.sum(1), strict=True)]
                return np.asarray(model.forward_batch(lists).last_hidden_state)

            engines[f"ctranslate2 {precision}"] = (
                run, f"CTranslate2 compute_type={types[precision]} (its ISA dispatch; CT2_VERBOSE=1 prints it)")
    return engines


def build_peer_engines(encoder, include: Sequence[str], threads: int, max_length: int, batch_size: int,
                       calibration: Sequence[str], notes: list[str]) -> dict[str, Engine]:
    """Name -> Engine for each peer in `include` ('transformers', 'onnxruntime', 'openvino', 'openvino-bf16',
    'openvino-int8', 'ctranslate2', 'ctranslate2-int8', or a bare engine name for all its precisions) that is
    installed here; reasons for skips go to `notes`. `encoder` is the TextEncoder whose directory they load."""
    directory, tokenizer = Path(encoder.tokenizer.source), encoder.tokenizer
    wanted: dict[str, list[str]] = {}
    for item in include:
        engine, _, precision = item.partition("-")
        if engine in ("openvino", "ctranslate2"):
            wanted.setdefault(engine, []).extend([precision] if precision else ["fp32", "bf16", "int8"])
        elif engine in ("transformers", "onnxruntime"):
            wanted.setdefault(engine, [])
    raw: PeerBatches = {}
    if "transformers" in wanted:
        raw.update(_transformers(directory, threads, notes))
    if "onnxruntime" in wanted:
        raw.update(_onnxruntime(encoder, threads, notes))
    if "openvino" in wanted:
        raw.update(_openvino(directory, threads, wanted["openvino"], calibration, tokenizer, max_length, notes))
    if "ctranslate2" in wanted:
        raw.update(_ctranslate2(directory, threads, wanted["ctranslate2"], notes))
    return {name: Engine(by_length(tokenizer, max_length, run, batch_size), kernels)
            for name, (run, kernels) in raw.items()}
