"""Dynamic batching: concurrent requests share forward passes, packed by a token budget.

Following TEI's router and infinity's batch handler: each request's items (texts, sentences, samples) join one
queue; a loop takes items in arrival order until the batch holds `max_batch_tokens` tokens (a longer item runs
alone), runs the batch on the inference thread, and hands every request its own rows back, in its own order,
through a future. A client batch bigger than the budget is thereby split across forward passes, never refused.
Inside a batch the work function sorts by length (so CPU shards get equal work and padding stays small).

The queue is bounded: a request whose items would take it past `max_queue` is refused at once (`QueueFull`,
answered 429), instead of piling up until memory runs out.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

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


class Batcher:
    """One model operation's queue and batching loop.

    run_batch(payloads) -> one result per payload, in order; it runs on `executor` (one inference thread for
    the whole server: a CPU forward pass already uses every core).
    """

    def __init__(self, name: str, run_batch: Callable[[list], Sequence], executor: Executor, metrics: ServerMetrics,
                 max_batch_tokens: int, max_queue: int, batching: bool = True):
        self.name, self.run_batch, self.executor, self.metrics = name, run_batch, executor, metrics
        self.max_batch_tokens, self.max_queue, self.batching = max_batch_tokens, max_queue, batching
        self.queue: collections.deque[Item] = collections.deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None

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
        self.queue.extend(Item(p, max(1, int(c)), job, i) for i, (p, c) in enumerate(zip(payloads, costs, strict=True)))
        self.metrics.queue_depth.set(len(self.queue), self.name)
        self.wake.set()
        if self.task is None:
            self.start()
        return await job.future

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None

    def _take_batch(self) -> list[Item]:
        """Items in arrival order up to the token budget (at least one); without batching, only the oldest
        request's items."""
        batch: list[Item] = []
        tokens = 0
        first_job = self.queue[0].job
        while self.queue:
            item = self.queue[0]
            over_budget = tokens + item.cost > self.max_batch_tokens
            if batch and (over_budget or (not self.batching and item.job is not first_job)):
                break
            batch.append(self.queue.popleft())
            tokens += item.cost
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            batch = self._take_batch()
            self.metrics.queue_depth.set(len(self.queue), self.name)
            live = [item for item in batch if not item.job.future.done()]  # a caller gone: skip its rows
            if not live:
                continue
            started = time.perf_counter()
            for item in live:
                self.metrics.queue_seconds.observe(started - item.job.enqueued, self.name)
            try:
                results = await loop.run_in_executor(self.executor, self.run_batch, [item.payload for item in live])
            except Exception as exc:  # a bug in inference: every caller in the batch gets it (a 500)
                for item in live:
                    if not item.job.future.done():
                        item.job.future.set_exception(exc)
                continue
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
