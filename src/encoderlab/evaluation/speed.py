"""Inference speed of text encoders, measured side by side in one process: sentences/s, ms per batch
(p50/p95) and peak memory, for encoderlab (fp32, bf16 where the CPU supports it, int8) against the
reference tools (`transformers`, ONNX Runtime) when they are installed.

Workloads are batches of real English text (BBC news articles from the data catalog, cut to a target
token count): a fixed-length batch (every text 128 tokens) and a variable-length one (16–128 tokens).
Every engine does the whole job from text to a normalised sentence embedding, and its embeddings are
compared with encoderlab fp32 (max-abs difference and worst cosine).
"""

from __future__ import annotations

import ctypes
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..artifacts.text_encoder import TextEncoder
from ..nn.prepacked_linear import prepack_available

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class SpeedResult:
    engine: str
    workload: str
    sentences_per_s: float
    p50_ms: float
    p95_ms: float
    peak_mem_mb: float
    max_abs_diff: float
    min_cosine: float


class PeakMemory:
    """Peak resident memory above the starting level while the block runs (sampled every 2 ms; Linux).

    Freed memory is handed back to the OS first (glibc `malloc_trim`): otherwise an engine measured after
    another one reuses its freed pages and shows a peak near 0."""

    def __init__(self) -> None:
        self.peak_mb = 0.0

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb() - self._base)
            time.sleep(0.002)

    def __enter__(self) -> PeakMemory:
        _return_free_memory()
        self._base = self._rss_mb() if os.path.exists("/proc/self/statm") else 0.0
        self._stop = threading.Event()
        if os.path.exists("/proc/self/statm"):
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()


def _return_free_memory() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: peaks may read low after other engines ran
        pass


def bf16_supported(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 matmuls run natively here, and a sentence saying which path is used."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "CUDA bf16" if ok else "this GPU has no bf16 support"
    ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    capability = torch.backends.cpu.get_cpu_capability()
    if ok:
        return True, f"CPU bf16 through oneDNN ({capability})"
    return False, f"this CPU ({capability}) has no native bf16 (needs AVX-512 BF16 or AMX); bf16 would be emulated"


def real_text_workloads(encoder: TextEncoder, batch_size: int = 32, seed: int = 0) -> dict[str, list[str]]:
    """{'fixed BxT': texts of exactly 128 tokens, 'variable Bx16-128': texts of 16..128 tokens}."""
    from ..data.catalog import load_dataset

    articles = load_dataset("bbc-news", seed=seed).test.texts
    rng = random.Random(seed)

    def cut(n_tokens: int) -> str:
        words = rng.choice(articles).split()
        start = rng.randrange(max(1, len(words) - 200))
        words = words[start:start + 200]
        ids = encoder.tokenizer.encode_ids([" ".join(words)], n_tokens)[0]  # truncated to n_tokens
        return encoder.tokenizer.tokenizer.decode(ids[1:-1])

    return {
        f"fixed {batch_size}x128": [cut(128) for _ in range(batch_size)],
        f"variable {batch_size}x16-128": [cut(rng.randint(16, 128)) for _ in range(batch_size)],
    }


def file_text_workloads(path: str | Path, encoder: TextEncoder, batch_size: int = 32, text_field: str = "text",
                        seed: int = 0) -> tuple[dict[str, list[str]], list[str]]:
    """A user's texts as the workload: one batch of `batch_size` texts drawn at random from a .txt / .jsonl
    file, as they are (cut at `max_tokens(encoder)`, as every engine does), named after the file and its
    token-length range; and up to 64 other texts of the file for int8 calibration (the same batch when
    the file has no others)."""
    from ..data.text_input import read_texts
    from ..errors import InputDataError

    texts = [t for t in read_texts(path, text_field=text_field) if t.strip()]
    if not texts:
        raise InputDataError(f"--data {str(path)!r} holds no texts (every line is blank); give a file with one "
                             "text per line (.txt) or a 'text' field per line (.jsonl)")
    order = np.random.default_rng(seed).permutation(len(texts))
    batch = [texts[i] for i in order[:batch_size]]
    calibration = [texts[i] for i in order[batch_size:batch_size + 64]] or batch
    lengths = [len(ids) for ids in encoder.tokenizer.encode_ids(batch, max_tokens(encoder))]
    return {f"{Path(path).name} {len(batch)}x{min(lengths)}-{max(lengths)}": batch}, calibration


def max_tokens(encoder: TextEncoder) -> int:
    """Where every engine cuts a text: 512 tokens (BERT's usual limit), or fewer if the model has fewer
    positions. One limit for all, so they do the same work on long texts."""
    return min(512, encoder.bert.cfg.max_positions)


def _transformers_engine(directory: Path, max_length: int, notes: list[str]) -> Encode | None:
    try:
        import transformers
    except ImportError:
        notes.append("transformers: not installed, skipped (pip install transformers)")
        return None
    transformers.logging.set_verbosity_error()
    try:
        model = transformers.AutoModel.from_pretrained(str(directory)).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError, RuntimeError) as exc:  # e.g. a structurally pruned encoder it cannot build
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"transformers: cannot load {directory} ({first_line[:160]}), skipped")
        return None

    @torch.inference_mode()
    def encode(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1).numpy()

    return encode


def _onnxruntime_engine(encoder: TextEncoder, threads: int, max_length: int) -> Encode | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from ..compression.export_onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(encoder, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        batch = encoder.tokenizer(texts, max_length=max_length)
        feeds = {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()}
        return session.run(["sentence_embedding"], feeds)[0]

    return encode


def build_engines(encoder: TextEncoder, calibration_texts: list[str], threads: int,
                  include: tuple[str, ...] = ("fp32", "bf16", "int8", "transformers", "onnxruntime"),
                  notes: list[str] | None = None) -> dict[str, Encode]:
    """Name -> text-to-embedding function for every engine available here; reasons for skips go to `notes`."""
    notes = notes if notes is not None else []
    engines: dict[str, Encode] = {}
    limit = max_tokens(encoder)
    shards = encoder.resolve_shards()
    if shards > 1 and any(name in include for name in ("fp32", "bf16", "int8")):
        notes.append(f"encoderlab: each batch dealt into {shards} shards that run side by side, "
                     f"{max(1, threads // shards)} thread(s) each (encode's default shards='auto')")
    if "fp32" in include:
        engines["encoderlab fp32"] = lambda texts: encoder.encode(texts, batch_size=len(texts), max_length=limit)
    if "bf16" in include:
        ok, why = bf16_supported(encoder.device)
        notes.append(f"bf16: {why}")
        if ok:
            engines["encoderlab bf16"] = lambda texts: encoder.encode(texts, batch_size=len(texts), max_length=limit,
                                                                      precision="bf16")
    if "int8" in include:
        from ..compression.quantize import quantize_int8

        int8 = quantize_int8(encoder, calibration_texts)
        engines["encoderlab int8"] = lambda texts: int8.encode(texts, batch_size=len(texts), max_length=limit)
    if "transformers" in include:
        engine = _transformers_engine(Path(encoder.tokenizer.source), limit, notes)
        if engine is not None:
            engines["transformers fp32"] = engine
    if "onnxruntime" in include:
        engine = _onnxruntime_engine(encoder, threads, limit)
        if engine is None:
            notes.append("onnxruntime: not installed, skipped (pip install onnx onnxruntime)")
        else:
            engines["onnxruntime fp32"] = engine
    return engines


IDLE_BETWEEN_CALLS_S = 0.2
"""Pause before each timed call. Thread pools keep spinning after a call returns (ONNX Runtime's by
default, OpenMP's briefly), and in one process they would steal a core from whichever engine runs next."""


def measure(engines: dict[str, Encode], workloads: dict[str, list[str]], repeats: int = 20,
            warmup: int = 3, idle_s: float = IDLE_BETWEEN_CALLS_S) -> list[SpeedResult]:
    """Time every engine on every workload; calls alternate between engines so load drifts hit all alike,
    each after `idle_s` of quiet so the previous engine's spinning threads are not on the clock."""
    results = []
    for workload, texts in workloads.items():
        reference = None
        outputs, times, peaks = {}, {name: [] for name in engines}, {}
        for name, encode in engines.items():
            with PeakMemory() as memory:  # the first call: what the engine allocates for this batch
                outputs[name] = encode(texts)
            peaks[name] = memory.peak_mb
            if reference is None:
                reference = outputs[name]
            for _ in range(warmup):
                encode(texts)
        for _ in range(repeats):
            for name, encode in engines.items():
                time.sleep(idle_s)
                start = time.perf_counter()
                encode(texts)
                times[name].append(time.perf_counter() - start)
        for name in engines:
            t = sorted(times[name])
            cosine = (outputs[name] * reference).sum(1) / (
                np.linalg.norm(outputs[name], axis=1) * np.linalg.norm(reference, axis=1))
            results.append(SpeedResult(
                engine=name, workload=workload, sentences_per_s=len(texts) / statistics.median(t),
                p50_ms=1000 * statistics.median(t), p95_ms=1000 * t[min(len(t) - 1, int(0.95 * len(t)))],
                peak_mem_mb=peaks[name], max_abs_diff=float(np.abs(outputs[name] - reference).max()),
                min_cosine=float(cosine.min()),
            ))
    return results


def corpus_throughput(encoder: TextEncoder, batch_size: int = 32, n_batches: int = 8, repeats: int = 3
                      ) -> tuple[float, float]:
    """(ms per batch, useful GFLOP/s) of encoderlab fp32 encoding a corpus: `n_batches` different variable-length
    batches of BBC text (16-128 tokens each, seeds 2, 3, …) in one `encode` call, as a user embedding a file
    does. encode sorts the corpus by length and keeps both cores busy from one batch to the next, which one
    isolated batch cannot. Median of `repeats` calls, timed by `measure` like every other engine."""
    texts = [t for seed in range(2, 2 + n_batches)
             for t in real_text_workloads(encoder, batch_size, seed)[f"variable {batch_size}x16-128"]]
    limit = max_tokens(encoder)
    engine = {"encoderlab fp32": lambda batch: encoder.encode(batch, batch_size=batch_size, max_length=limit)}
    (result,) = measure(engine, {"corpus": texts}, repeats=repeats, warmup=1)
    seconds = result.p50_ms / 1000
    return 1000 * seconds / n_batches, encoder_gflop(encoder, texts) / seconds


def markdown_table(results: list[SpeedResult], baseline: str = "transformers fp32") -> str:
    lines = ["| workload | engine | sentences/s | vs transformers | p50 ms | p95 ms | peak MB | max-abs vs fp32 "
             "| worst cos vs fp32 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        base = next((b for b in results if b.workload == r.workload and b.engine == baseline), None)
        ratio = f"{r.sentences_per_s / base.sentences_per_s:.2f}x" if base else "-"
        lines.append(f"| {r.workload} | {r.engine} | {r.sentences_per_s:.1f} | {ratio} | {r.p50_ms:.0f} | "
                     f"{r.p95_ms:.0f} | {r.peak_mem_mb:.0f} | {r.max_abs_diff:.1e} | {r.min_cosine:.5f} |")
    return "\n".join(lines)


def matmul_peak_gflops(threads: int, size: int = 1024, repeats: int = 5, trials: int = 5) -> float:
    """The machine's fp32 matmul throughput, the yardstick for an encoder's efficiency: the best of torch's
    default matmul and the oneDNN pre-packed matmul our encoder uses, on square (size × size) operands, each
    run as one matmul on `threads` threads and as `threads` single-threaded matmuls side by side (the way
    `TextEncoder.encode` runs its shards), so neither way of using the cores is held to a lower bar.
    The best of several short trials, so a moment of load from other processes does not lower the peak."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    kernels = [lambda: a @ b]
    if prepack_available():
        packed = torch.ops.mkldnn._reorder_linear_weight(b.T.contiguous())
        kernels.append(lambda: torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], ""))
    flop = 2 * size**3 * repeats

    def run(kernel: Callable[[], object], calls: int = repeats) -> None:
        for _ in range(calls):
            kernel()

    workers = ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) if threads > 1 else None
    try:
        for kernel in kernels:  # warm-up: oneDNN builds its kernels per thread count on first use
            run(kernel, 1)
            if workers is not None:
                list(workers.map(run, [kernel] * threads, [1] * threads))
        best = 0.0
        for _ in range(trials):
            for kernel in kernels:
                start = time.perf_counter()
                run(kernel)
                best = max(best, flop / (time.perf_counter() - start) / 1e9)
                if workers is not None:
                    start = time.perf_counter()
                    list(workers.map(run, [kernel] * threads))
                    best = max(best, threads * flop / (time.perf_counter() - start) / 1e9)
    finally:
        if workers is not None:
            workers.shutdown()
        torch.set_num_threads(threads)
    return best


def encoder_gflop(encoder: TextEncoder, texts: list[str]) -> float:
    """Useful FLOPs (GFLOP) to encode `texts`: linear layers on real tokens plus attention, no padding.
    Read off the blocks themselves, so pruned encoders (fewer heads, narrower FFNs) are counted right."""
    lengths = [len(ids) for ids in encoder.tokenizer.encode_ids(texts, max_tokens(encoder))]
    total = 0.0
    for block in encoder.bert.blocks:
        weights = sum(m.in_features * m.out_features for m in block.modules() if isinstance(m, torch.nn.Linear))
        width = block.attn.n_heads * block.attn.d_head
        total += sum(lengths) * weights * 2  # 2 FLOPs per multiply-add
        total += sum(n * n for n in lengths) * width * 2 * 2  # QKᵀ and PV
    return total / 1e9
