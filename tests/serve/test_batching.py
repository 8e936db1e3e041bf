"""The batching queue on its own: batches packed by the token budget from several requests, every caller's rows
back in its own order, oversized requests split, no mixing without batching, and a full queue refusing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from encoderlab.serve.batching import Batcher, InferencePool, QueueFull
from encoderlab.serve.metrics import ServerMetrics


def run_requests(requests: list[list[tuple[str, int]]], budget: int, batching: bool = True, max_queue: int = 100):
    """Submit every request (payload, cost) at once -> (each request's results, the batches that ran)."""
    batches: list[list[str]] = []

    def work(payloads: list[str]) -> list[str]:
        batches.append(list(payloads))
        return [p.upper() for p in payloads]

    async def main():
        pool = InferencePool(1)
        batcher = Batcher("m", work, pool, ServerMetrics(), budget, max_queue, batching)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit([p for p, _ in r], [c for _, c in r])
                                          for r in requests), return_exceptions=True)
        finally:
            await batcher.stop()
            pool.shutdown()

    return asyncio.run(main()), batches


REQUESTS = [[("a1", 4), ("a2", 4), ("a3", 4)], [("b1", 3)], [("c1", 2), ("c2", 9)]]
COST = {p: c for r in REQUESTS for p, c in r}


def test_requests_share_batches_within_the_token_budget_and_get_their_own_rows_back():
    results, batches = run_requests(REQUESTS, budget=12)
    assert results == [["A1", "A2", "A3"], ["B1"], ["C1", "C2"]]
    assert sorted(p for b in batches for p in b) == sorted(COST)  # every item ran once
    assert all(sum(COST[p] for p in b) <= 12 for b in batches)
    assert any(len({p[0] for p in b}) > 1 for b in batches)  # requests shared a forward pass
    assert batches[0] == ["a1", "a2", "a3"]  # arrival order: 12 tokens, full


def test_an_item_over_the_budget_runs_alone_and_a_big_request_is_split():
    results, batches = run_requests([[("x", 50)], [(f"y{i}", 5) for i in range(7)]], budget=10)
    assert results[0] == ["X"] and results[1] == [f"Y{i}" for i in range(7)]
    assert batches[0] == ["x"]
    assert [len(b) for b in batches[1:]] == [2, 2, 2, 1]


def test_without_batching_no_batch_mixes_requests():
    results, batches = run_requests(REQUESTS, budget=100, batching=False)
    assert results == [["A1", "A2", "A3"], ["B1"], ["C1", "C2"]]
    assert [len({p[0] for p in b}) for b in batches] == [1, 1, 1]


def test_a_full_queue_refuses_the_request_that_does_not_fit():
    results, _ = run_requests([[("a", 1)] * 3, [("b", 1)] * 3], budget=100, max_queue=4)
    assert results[0] == ["A"] * 3 and isinstance(results[1], QueueFull)
    assert "queue holds 4" in str(results[1])


def test_an_inference_error_reaches_every_caller_of_the_batch_and_the_queue_goes_on():
    calls = []

    def work(payloads):
        calls.append(payloads)
        if "boom" in payloads:
            raise RuntimeError("kernel failed")
        return payloads

    async def main():
        pool = InferencePool(1)
        batcher = Batcher("m", work, pool, ServerMetrics(), 100, 100)
        first = await asyncio.gather(batcher.submit(["ok", "boom"], [1, 1]), return_exceptions=True)
        second = await batcher.submit(["fine"], [1])
        await batcher.stop()
        pool.shutdown()
        return first[0], second

    error, later = asyncio.run(main())
    assert isinstance(error, RuntimeError) and later == ["fine"]


def test_two_workers_run_two_batches_at_once_and_share_out_a_big_request():
    """With two workers, the queue is dealt into two batches that run at the same time (each waits until the
    other has started, which would deadlock with one batch at a time), and every caller still gets its rows."""
    both_running = threading.Barrier(2, timeout=10)
    batches: list[list[str]] = []

    def work(payloads: list[str]) -> list[str]:
        batches.append(list(payloads))
        both_running.wait()
        return [p.upper() for p in payloads]

    async def main():
        pool = InferencePool(2)
        batcher = Batcher("m", work, pool, ServerMetrics(), 1000, 100, min_share_tokens=1)
        try:
            return await batcher.submit([f"t{i}" for i in range(8)], [5] * 8)
        finally:
            await batcher.stop()
            pool.shutdown()

    assert asyncio.run(main()) == [f"T{i}" for i in range(8)]
    assert sorted(len(b) for b in batches) == [4, 4]  # 40 queued tokens, two idle workers: 20 each


def test_while_a_batch_runs_a_free_worker_waits_for_a_share_instead_of_running_a_few_texts():
    gate = threading.Event()
    batches: list[list[str]] = []

    def work(payloads: list[str]) -> list[str]:
        batches.append(list(payloads))
        if payloads == ["a"]:
            gate.wait(10)  # the first batch runs until the test lets it end
        return [p.upper() for p in payloads]

    async def main():
        pool = InferencePool(2)
        batcher = Batcher("m", work, pool, ServerMetrics(), 1000, 100, min_share_tokens=256)
        first = asyncio.ensure_future(batcher.submit(["a"], [300]))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(batcher.submit(["b"], [10]))  # 10 tokens: not a share's worth
        await asyncio.sleep(0.1)
        ran_before = [list(b) for b in batches]
        third = asyncio.ensure_future(batcher.submit(["c"], [300]))  # now 310 queued: a share
        await asyncio.sleep(0.1)
        ran_after = [list(b) for b in batches]
        gate.set()
        results = await asyncio.gather(first, second, third)
        await batcher.stop()
        pool.shutdown()
        return ran_before, ran_after, results

    ran_before, ran_after, results = asyncio.run(main())
    assert ran_before == [["a"]]  # "b" waited: another batch was running and it was small
    assert ran_after == [["a"], ["b", "c"]]
    assert results == [["A"], ["B"], ["C"]]


def test_a_queue_gathering_a_share_leaves_its_worker_to_another_model():
    """Two models, two workers: model m's first batch runs and a small request of m waits for a share's worth;
    a request for model n must not wait behind it (the gathering queue holds no worker)."""
    gate = threading.Event()
    batches: list[list[str]] = []

    def work(payloads: list[str]) -> list[str]:
        batches.append(list(payloads))
        if payloads == ["a"]:
            gate.wait(10)
        return [p.upper() for p in payloads]

    async def main():
        pool = InferencePool(2)
        m = Batcher("m", work, pool, ServerMetrics(), 1000, 100, min_share_tokens=256)
        n = Batcher("n", work, pool, ServerMetrics(), 1000, 100, min_share_tokens=256)
        first = asyncio.ensure_future(m.submit(["a"], [300]))
        await asyncio.sleep(0.1)
        small = asyncio.ensure_future(m.submit(["b"], [10]))  # gathers: another batch of m runs
        await asyncio.sleep(0.1)
        other = await asyncio.wait_for(n.submit(["x"], [10]), 5)  # runs now, on the worker m is not using
        ran = [list(b) for b in batches]
        gate.set()
        results = await asyncio.gather(first, small)
        for batcher in (m, n):
            await batcher.stop()
        pool.shutdown()
        return ran, other, results

    ran, other, results = asyncio.run(main())
    assert ran == [["a"], ["x"]] and other == ["X"]
    assert results == [["A"], ["B"]]  # and the gathering request still ran once the first batch ended


def test_one_worker_takes_the_whole_budget_and_shares_never_go_below_the_minimum():
    results, batches = run_requests([[(f"y{i}", 5) for i in range(8)]], budget=1000)
    assert batches == [[f"y{i}" for i in range(8)]]

    async def share(queued: int, idle: int, minimum: int) -> int:
        pool = InferencePool(idle + 1)
        await pool.acquire()  # this batch's worker
        batcher = Batcher("m", lambda p: p, pool, ServerMetrics(), 100, 100, min_share_tokens=minimum)
        batcher.queued_tokens = queued
        pool.shutdown()
        return batcher.share_tokens()

    assert asyncio.run(share(60, 1, 1)) == 30
    assert asyncio.run(share(60, 1, 50)) == 50
    assert asyncio.run(share(600, 2, 1)) == 100  # never above max_batch_tokens


@pytest.mark.parametrize("budget", [0, -5])
def test_settings_refuse_a_budget_below_one(budget):
    from encoderlab.errors import ConfigError
    from encoderlab.serve.settings import ServeSettings

    with pytest.raises(ConfigError, match="max_batch_tokens"):
        ServeSettings(max_batch_tokens=budget)
    with pytest.raises(ConfigError, match="raise --max-queue"):
        ServeSettings(max_texts=10, max_queue=5)


def test_workers_default_to_two_batches_in_flight_and_never_outnumber_the_threads():
    from encoderlab.errors import ConfigError
    from encoderlab.serve.settings import ServeSettings

    auto = ServeSettings()
    assert [auto.resolve_workers(t) for t in (1, 2, 8)] == [1, 2, 2]
    assert ServeSettings(workers=3).resolve_workers(2) == 2
    assert ServeSettings(workers=1).resolve_workers(8) == 1
    with pytest.raises(ConfigError, match="workers=0"):
        ServeSettings(workers=0)
