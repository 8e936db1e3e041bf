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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..artifacts.text_encoder import TextEncoder
from ..cpu_features import cpu_flags, cpu_has_vnni
from ..nn.prepacked_linear import bf16_matmul_native, prepack_available
from .peer_engines import PEERS, Engine, build_peer_engines

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
    ok = bf16_matmul_native()
    capability = torch.backends.cpu.get_cpu_capability()
    if ok:
        tiles = " with AMX tiles" if "amx_bf16" in cpu_flags() else ""
        return True, f"CPU bf16 through oneDNN ({capability}{tiles})"
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


def _encoderlab_kernels(precision: str) -> str:
    """In words, which matmul kernels our encode runs here in `precision`."""
    bf16 = "oneDNN bf16 matmul on " + ("AMX tiles" if "amx_bf16" in cpu_flags() else "AVX-512 BF16")
    if precision == "bf16":
        return f"{bf16}, the model held in bf16"
    if precision == "int8":
        from ..compression.quantize import resolve_int8_kernel

        if resolve_int8_kernel(None) == "onednn":
            return (f"oneDNN int8 feed-forward networks (u8×s8, {'AMX' if 'amx_int8' in cpu_flags() else 'VNNI'}; "
                    f"GELU and the hidden layer's quantization inside the up-projection), {bf16} elsewhere")
        return "fbgemm int8 matmul (" + ("VNNI, 8-bit activations" if cpu_has_vnni() else "7-bit activations") + ")"
    return f"oneDNN pre-packed fp32 matmul ({torch.backends.cpu.get_cpu_capability()})"


ENGINES = ("fp32", "bf16", "int8", "transformers", "onnxruntime", "openvino", "ctranslate2")
"""What `encoderlab bench --engines` takes: our three precisions, then the peers (evaluation/peer_engines.py;
'openvino-int8' and the like pick one precision of a peer)."""


def build_engines(encoder: TextEncoder, calibration_texts: list[str], threads: int,
                  include: tuple[str, ...] = ("fp32", "bf16", "int8", "transformers", "onnxruntime"),
                  notes: list[str] | None = None, batch_size: int = 32) -> dict[str, Engine]:
    """Name -> Engine (text-to-embedding function and its kernels) for every engine available here; reasons
    for skips go to `notes`. Every engine cuts texts at the same `max_tokens` and batches `batch_size` texts."""
    notes = notes if notes is not None else []
    unknown = [name for name in include if name.partition("-")[0] not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engines {unknown}; choose from {', '.join(ENGINES)}")
    engines: dict[str, Engine] = {}
    limit = max_tokens(encoder)
    shards = encoder.resolve_shards()
    if shards > 1 and any(name in include for name in ("fp32", "bf16", "int8")):
        notes.append(f"encoderlab: each batch dealt into {shards} shards that run side by side, "
                     f"{max(1, threads // shards)} thread(s) each (encode's default shards='auto')")
    if "fp32" in include:
        engines["encoderlab fp32"] = Engine(
            lambda texts: encoder.encode(texts, batch_size=batch_size, max_length=limit),
            _encoderlab_kernels("fp32"))
    if "bf16" in include:
        ok, why = bf16_supported(encoder.device)
        notes.append(f"bf16: {why}")
        if ok:
            engines["encoderlab bf16"] = Engine(
                lambda texts: encoder.encode(texts, batch_size=batch_size, max_length=limit, precision="bf16"),
                _encoderlab_kernels("bf16"))
    if "int8" in include:
        from ..compression.quantize import quantize_int8

        int8 = quantize_int8(encoder, calibration_texts)
        engines["encoderlab int8"] = Engine(
            lambda texts: int8.encode(texts, batch_size=batch_size, max_length=limit),
            _encoderlab_kernels("int8"))
    peers = [name for name in include if name.partition("-")[0] in PEERS]
    engines.update(build_peer_engines(encoder, peers, threads, limit, batch_size, calibration_texts, notes))
    return engines


IDLE_BETWEEN_CALLS_S = 0.2
"""Pause before each timed call. Thread pools keep spinning after a call returns (ONNX Runtime's by
default, OpenMP's briefly), and in one process they would steal a core from whichever engine runs next."""


def measure(engines: dict[str, Encode] | dict[str, Engine], workloads: dict[str, list[str]], repeats: int = 20,
            warmup: int = 3, idle_s: float = IDLE_BETWEEN_CALLS_S) -> list[SpeedResult]:
    """Time every engine on every workload; calls alternate between engines so load drifts hit all alike,
    each after `idle_s` of quiet so the previous engine's spinning threads are not on the clock."""
    engines = {name: getattr(engine, "encode", engine) for name, engine in engines.items()}
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


def corpus_workload(encoder: TextEncoder, n_texts: int = 1024, batch_size: int = 32) -> dict[str, list[str]]:
    """{'corpus N texts': N BBC texts of 16–128 tokens}: what a user embedding a file asks of an engine, which
    can sort the texts by length and keep every core busy from one batch to the next (encode does both; the
    peers get length-sorted batches too). Drawn like the variable batches, with other seeds (2, 3, …)."""
    texts: list[str] = []
    for seed in range(2, 2 + -(-n_texts // batch_size)):
        texts += real_text_workloads(encoder, batch_size, seed)[f"variable {batch_size}x16-128"]
    return {f"corpus {n_texts} texts": texts[:n_texts]}


def markdown_table(results: list[SpeedResult], baseline: str = "transformers fp32") -> str:
    lines = ["| workload | engine | sentences/s | vs transformers | p50 ms | p95 ms | peak MB | max-abs vs fp32 "
             "| worst cos vs fp32 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        base = next((b for b in results if b.workload == r.workload and b.engine == baseline), None)
        ratio = f"{r.sentences_per_s / base.sentences_per_s:.2f}x" if base else "-"
        lines.append(f"| {r.workload} | {r.engine} | {r.sentences_per_s:.1f} | {ratio} | {r.p50_ms:.0f} | "
                     f"{r.p95_ms:.0f} | {r.peak_mem_mb:.0f} | {r.max_abs_diff:.1e} | {r.min_cosine:.5f} |")
    return "\n".join(lines)


PEAK_DTYPES = ("fp32", "bf16", "int8")


def _peak_kernels(dtype: str, size: int) -> list[Callable[[], object]]:
    """Square (size × size) matmuls in `dtype` the way our encoder and PyTorch run them: torch's default
    matmul and the oneDNN pre-packed one (fp32, bf16), or oneDNN's u8×s8 int8 matmul (int8)."""
    if dtype == "int8":
        if not hasattr(torch.ops.onednn, "qlinear_prepack"):
            return []
        x = torch.randint(0, 255, (size, size), dtype=torch.uint8)
        packed = torch.ops.onednn.qlinear_prepack(torch.randint(-127, 127, (size, size), dtype=torch.int8), None)
        scales, zeros = torch.ones(size), torch.zeros(size, dtype=torch.long)
        return [lambda: torch.ops.onednn.qlinear_pointwise(x, 1.0, 128, packed, scales, zeros, None, 1.0, 0,
                                                           torch.float32, "none", [], "")]
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(size, size).to(torch_dtype), torch.randn(size, size).to(torch_dtype)
    kernels: list[Callable[[], object]] = [lambda: a @ b]
    if prepack_available():
        packed = torch.ops.mkldnn._reorder_linear_weight(b.T.contiguous())
        kernels.append(lambda: torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], ""))
    return kernels


def matmul_peak_gflops(threads: int, size: int = 1024, repeats: int = 5, trials: int = 5,
                       dtype: str = "fp32") -> float:
    """The machine's matmul throughput in `dtype` (fp32, bf16, or int8 in GOP/s), the yardstick for an
    encoder's efficiency: the best of the kernels in `_peak_kernels` on square (size × size) operands, each run
    as one matmul on `threads` threads and as `threads` single-threaded matmuls side by side (the way
    `TextEncoder.encode` runs its shards), so neither way of using the cores is held to a lower bar.
    The best of several short trials, so a moment of load from other processes does not lower the peak.
    0.0 where this PyTorch has no kernel for `dtype`."""
    torch.set_num_threads(threads)
    kernels = _peak_kernels(dtype, size)
    flop = 2 * size**3 * repeats

    def run(kernel: Callable[[], object], calls: int = repeats) -> None:
        for _ in range(calls):
            kernel()

    workers = ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) if threads > 1 else None
    best = 0.0
    try:
        for kernel in kernels:  # warm-up: oneDNN builds its kernels per thread count on first use
            run(kernel, 1)
            if workers is not None:
                list(workers.map(run, [kernel] * threads, [1] * threads))
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


def matmul_peaks(threads: int, size: int = 2048) -> dict[str, float]:
    """{'fp32': GFLOP/s, 'bf16': GFLOP/s, 'int8': GOP/s} of this machine's matmuls on `threads` threads;
    bf16 is left out where it is not native (it would be emulated, not a peak)."""
    dtypes = [d for d in PEAK_DTYPES if d != "bf16" or bf16_supported(torch.device("cpu"))[0]]
    return {d: matmul_peak_gflops(threads, size, repeats=3, trials=3, dtype=d) for d in dtypes}


def precision_of(engine: str) -> str:
    """'openvino bf16' -> 'bf16'; engines named without one run fp32."""
    last = engine.rsplit(" ", 1)[-1]
    return last if last in PEAK_DTYPES else "fp32"


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
