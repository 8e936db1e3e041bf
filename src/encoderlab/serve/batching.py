"""Dynamic batching: concurrent requests share forward passes, packed by a token budget.

Following TEI's router and infinity's batch handler: each request's items (texts, sentences, samples) join one
queue; a loop takes items in arrival order until the batch holds `max_batch_tokens` tokens (a longer item runs
alone), runs the batch on an inference thread, and hands every request its own rows back, in its own order,
through a future. A client batch bigger than the budget is thereby split across forward passes, never refused.
Inside a batch the work function sorts by length (so padding stays small).

Unlike TEI's and infinity's one batch at a time, `InferencePool` keeps several batches in flight, one per worker
thread (on a CPU: each on its own core). With one batch at a time a closed loop of clients leaves the cores idle
while answers travel back and the next requests arrive, and a small batch spread over two cores pays their
synchronisation on every operation; with two workers one batch computes while the other's callers are answered.
When workers are free, the queue is shared out between them (`share_tokens`), so a lone big request still keeps
every core busy; while another batch runs, a worker waits until half as many tokens as that batch holds are
queued (or until it ends) rather than running the one text that has just arrived; while it waits, its worker
is free for the other models' queues.

The queue is bounded: a request whose items would take it past `max_queue` is refused at once (`QueueFull`,
answered 429), instead of piling up until memory runs out.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..sharding import MIN_SHARD_TOKENS
from .metrics import ServerMetrics


class QueueFull(Exception):
    """The queue has no room for a request's items now (429: retry later)."""


class TooLarge(Exception):
    """A request with more items than the whole queue holds (413: it never fits; chunking can make a request's
    few texts many windows)."""


@dataclass
class Job:
    """One request's items and where their results go."""

    future: asyncio.Future
    results: list
    remaining: int
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class Item:
    payload: Any
    cost: int
    job: Job
    index: int


class InferencePool:
    """The inference threads of the whole server, shared by every model's batcher: at most `workers` batches in
    flight at once. `initializer` runs once in each thread (the server sets each thread's torch thread count)."""

    def __init__(self, workers: int = 1, initializer: Callable[..., object] | None = None, initargs: tuple = ()):
        if workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        self.workers = workers
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="inference", initializer=initializer,
                                           initargs=initargs)
        self.slots = asyncio.Semaphore(workers)
        self.busy = 0
        self.listeners: list[asyncio.Event] = []
        """Set whenever a worker frees up (each batcher's wake-up event)."""

    @property
    def idle(self) -> int:
        """Workers with no batch."""
        return self.workers - self.busy

    async def acquire(self) -> None:
        await self.slots.acquire()
        self.busy += 1

    def release(self) -> None:
        self.busy -= 1
        self.slots.release()
        for listener in self.listeners:
            listener.set()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class Batcher:
    """One model operation's queue and batching loop.

    run_batch(payloads) -> one result per payload, in order; it runs on one of `pool`'s threads.
    """

    def __init__(self, name: str, run_batch: Callable[[list], Sequence], pool: InferencePool, metrics: ServerMetrics,
                 max_batch_tokens: int, max_queue: int, batching: bool = True,
                 min_share_tokens: int = MIN_SHARD_TOKENS):
        self.name, self.run_batch, self.pool, self.metrics = name, run_batch, pool, metrics
        self.max_batch_tokens, self.max_queue, self.batching = max_batch_tokens, max_queue, batching
        self.min_share_tokens = min_share_tokens
        """When idle workers share the queue out, no share is below this (each batch pays a forward's fixed
        cost; sharding.MIN_SHARD_TOKENS says how much)."""
        self.queue: collections.deque[Item] = collections.deque()
        self.queued_tokens = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.running: dict[asyncio.Task, int] = {}
        """Each running batch's task and its tokens."""
        pool.listeners.append(self.wake)

    @property
    def depth(self) -> int:
        return len(self.queue)

    async def submit(self, payloads: Sequence, costs: Sequence[int]) -> list:
        """The results of `payloads`, in order, once every batch holding one of them has run."""
        if len(payloads) > self.max_queue:
            raise TooLarge(f"this request makes {len(payloads)} items (texts, or windows of long texts) and the "
                           f"queue holds {self.max_queue}")
        if len(self.queue) + len(payloads) > self.max_queue:
            raise QueueFull(f"{len(self.queue)} items are waiting and this request brings {len(payloads)}; the "
                            f"queue holds {self.max_queue}")
        if not payloads:
            return []
        job = Job(asyncio.get_running_loop().create_future(), [None] * len(payloads), len(payloads))
        items = [Item(p, max(1, int(c)), job, i) for i, (p, c) in enumerate(zip(payloads, costs, strict=True))]
        self.queue.extend(items)
        self.queued_tokens += sum(item.cost for item in items)
        self.metrics.queue_depth.set(len(self.queue), self.name)
        self.wake.set()
        if self.task is None:
            self.start()
        return await job.future

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Stop taking batches; the batches already running finish and answer their callers."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)

    def enough_tokens(self) -> int:
        """While another of this queue's batches runs, a free worker starts one once this many tokens wait:
        half the largest running batch (so that the workers' batches stay alike in size), at most a share's
        minimum."""
        largest = max(self.running.values(), default=0)
        return min(self.min_share_tokens, max(1, largest // 2))

    def share_tokens(self) -> int:
        """This batch's token budget: the whole budget, or, while other workers are idle too, an equal share of
        what is queued (at least `min_share_tokens`), so that the idle workers get the rest."""
        share = math.ceil(self.queued_tokens / (self.pool.idle + 1))  # + 1: this batch's worker is taken
        return min(self.max_batch_tokens, max(share, self.min_share_tokens))

    def _take_batch(self, budget: int) -> list[Item]:
        """Items in arrival order up to `budget` tokens (at least one); without batching, only the oldest
        request's items."""
        batch: list[Item] = []
        tokens = 0
        first_job = self.queue[0].job
        while self.queue:
            item = self.queue[0]
            over_budget = tokens + item.cost > budget
            if batch and (over_budget or (not self.batching and item.job is not first_job)):
                break
            batch.append(self.queue.popleft())
            tokens += item.cost
        self.queued_tokens -= tokens
        return batch

    async def _loop(self) -> None:
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.pool.acquire()
            while self.batching and self.pool.busy > 1 and self.queued_tokens < self.enough_tokens():
                # another batch is running and this one would be much smaller: let requests gather until there
                # is enough or that batch ends (a batch of a few texts pays a whole forward's fixed cost, and
                # workers grabbing every single arrival would make nothing but such batches). Gathering holds
                # no worker: another model's queue may run a batch on it meanwhile.
                self.pool.release()
                self.wake.clear()
                await self.wake.wait()
                await self.pool.acquire()
            batch = self._take_batch(self.share_tokens())
            self.metrics.queue_depth.set(len(self.queue), self.name)
            live = [item for item in batch if not item.job.future.done()]  # a caller gone: skip its rows
            if not live:
                self.pool.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(live), name=f"batch-{self.name}")
            self.running[task] = sum(item.cost for item in live)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.running.pop(task, None)

    async def _run(self, live: list[Item]) -> None:
        """One batch on a pool thread; every caller gets its rows (or the error)."""
        started = time.perf_counter()
        for item in live:
            self.metrics.queue_seconds.observe(started - item.job.enqueued, self.name)
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.pool.executor, self.run_batch, [item.payload for item in live])
        except Exception as exc:  # a bug in inference: every caller in the batch gets it (a 500)
            for item in live:
                if not item.job.future.done():
                    item.job.future.set_exception(exc)
            return
        finally:
            self.pool.release()
        self.metrics.inference_seconds.observe(time.perf_counter() - started, self.name)
        self.metrics.batch_size.observe(len(live), self.name)
        tokens = sum(item.cost for item in live)
        self.metrics.batch_tokens.observe(tokens, self.name)
        self.metrics.tokens.inc(self.name, amount=tokens)
        for item, result in zip(live, results, strict=True):
            job = item.job
            job.results[item.index] = result
            job.remaining -= 1
            if job.remaining == 0 and not job.future.done():
                job.future.set_result(job.results)
