"""Core-sharded batches: deal one batch into parts of equal work and run them side by side, one core each.

Splitting one batch across threads inside every operation speeds up its big matmuls but not its many small
operations (LayerNorm, activations, gathers, attention on small length groups); independent parts run those
in parallel too. `TextEncoder.encode(shards=...)` and the classifiers' inference (`artifacts.classifier.run_encoder`)
use them: `plan_parts` cuts the work, `run_parts` runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

MIN_SHARD_TOKENS = 256
"""With shards="auto", a batch is dealt only into parts of at least this many tokens. Every part pays a whole
forward's fixed cost, ~5 ms (measured: minilm, one 3-token text, one thread), much of it Python holding the
GIL; 256 tokens are ~50 ms of work, so that cost stays under a tenth."""


WHOLE_BATCHES_FROM = 4
"""With shards="auto" and at least this many batches per shard, whole batches run side by side instead of
each batch being dealt across the cores: a matmul over half a batch is less efficient than over all of it
(minilm, 512 BBC texts, one thread, AMX bf16: batches of 16 cost 1.85 s, of 32 1.69 s), and with many
batches the cores stay busy without splitting. Fewer batches are still dealt, so none waits for the last."""


def auto_shards(device: torch.device, hooked: bool) -> int:
    """How many parts run side by side with shards="auto": one per torch thread on a CPU, where each worker
    thread can get its own intra-op thread count (OpenMP builds); 1 on a GPU, elsewhere, or when forward hooks
    watch the model (they expect one forward at a time, e.g. int8 calibration)."""
    per_thread_counts = torch.backends.openmp.is_available()  # else torch's thread count is global
    return torch.get_num_threads() if device.type == "cpu" and per_thread_counts and not hooked else 1


def plan_parts(lengths: list[int], batch_size: int, shards: int, auto: bool = True) -> list[np.ndarray]:
    """Rows (indices into `lengths`) sorted longest first, cut into batches of `batch_size` and then into the
    parts that run side by side on `shards` cores: whole batches when there are WHOLE_BATCHES_FROM or more per
    shard (and `auto`), else every batch dealt into `shards` parts (with `auto`, only parts of at least
    MIN_SHARD_TOKENS tokens)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    batches = [order[start:start + batch_size] for start in range(0, len(lengths), batch_size)]
    if auto and len(batches) >= WHOLE_BATCHES_FROM * shards:
        return batches  # a corpus: whole batches side by side (WHOLE_BATCHES_FROM says why)

    def shards_for(rows: np.ndarray) -> int:
        return min(shards, max(1, sum(lengths[i] for i in rows) // MIN_SHARD_TOKENS)) if auto else shards

    return [part for rows in batches for part in deal_rows(rows, shards_for(rows))]


def deal_rows(rows: np.ndarray, parts: int) -> list[np.ndarray]:
    """Deal length-sorted `rows` into `parts` non-empty groups of near-equal work, like cards in snake order
    (0, 1, …, n−1, n−1, …, 1, 0, 0, 1, …): each group gets long and short texts alike, so both the token
    counts (projections, FFN) and the squared lengths (attention) balance without a cost model."""
    lane = np.arange(len(rows)) % (2 * parts)
    lane = np.minimum(lane, 2 * parts - 1 - lane)  # 0..n-1 then n-1..0
    return [rows[lane == p] for p in range(min(parts, len(rows)))]


def run_parts(work: Callable[[np.ndarray], None], parts: list[np.ndarray], shards: int,
              on_done: Callable[[np.ndarray], None]) -> None:
    """work(part) for every part, `shards` at a time in as many threads (1: in this thread); on_done(part) in
    this thread, in order, as each finishes.

    torch releases the GIL inside its kernels, so the threads run on separate cores. Each worker gets
    torch.get_num_threads() // shards intra-op threads; the thread count is restored afterwards, errors
    included (with OpenMP a worker's setting stays in the worker; other builds share one setting)."""
    shards = min(shards, len(parts))
    if shards <= 1:
        for part in parts:
            work(part)
            on_done(part)
        return
    threads = torch.get_num_threads()
    workers = ThreadPoolExecutor(shards, thread_name_prefix="encode-shard", initializer=torch.set_num_threads,
                                 initargs=(max(1, threads // shards),))
    try:
        futures = [workers.submit(work, part) for part in parts]
        for part, future in zip(parts, futures, strict=True):
            future.result()  # re-raises a worker's error here
            on_done(part)
    finally:
        workers.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)
