"""Prometheus metrics, kept in memory and rendered in the text exposition format at GET /metrics.

No client library: three small types (counter, gauge, histogram) cover what the server reports, named as
Prometheus' conventions ask (`_total` counters, `_seconds` durations, base units).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{v}"' for n, v in zip(names, values, strict=True)] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help, labels
        self.values: dict[tuple[str, ...], float] = defaultdict(float)
        self.lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self.lock:
            self.values[labels] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self.lock:
            lines += [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


class Gauge:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help, labels
        self.values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        return lines + [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in sorted(self.values.items())]


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()):
        self.name, self.help, self.buckets, self.label_names = name, help, buckets, labels
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = defaultdict(float)
        self.lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self.lock:
            counts = self.counts.setdefault(labels, [0] * (len(self.buckets) + 1))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self.sums[labels] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self.lock:
            for key, counts in sorted(self.counts.items()):
                running = 0
                for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    bucket = _labels(self.label_names, key, f'le="{le}"')
                    lines.append(f"{self.name}_bucket{bucket} {running}")
                lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {self.sums[key]:g}")
                lines.append(f"{self.name}_count{_labels(self.label_names, key)} {running}")
        return lines


class ServerMetrics:
    """Everything /metrics shows."""

    def __init__(self) -> None:
        self.requests = Counter("encoderlab_requests_total", "HTTP requests by route and status", ("route", "status"))
        self.request_seconds = Histogram("encoderlab_request_duration_seconds", "Time from request to response",
                                         LATENCY_BUCKETS, ("route",))
        self.queue_seconds = Histogram("encoderlab_queue_seconds", "Time a text waited before its batch started",
                                       LATENCY_BUCKETS, ("model",))
        self.inference_seconds = Histogram("encoderlab_inference_seconds", "Time of one batch's forward pass",
                                           LATENCY_BUCKETS, ("model",))
        self.batch_size = Histogram("encoderlab_batch_size", "Texts (items) per batch", SIZE_BUCKETS, ("model",))
        self.batch_tokens = Histogram("encoderlab_batch_tokens", "Tokens per batch", TOKEN_BUCKETS, ("model",))
        self.tokens = Counter("encoderlab_tokens_total", "Input tokens processed", ("model",))
        self.queue_depth = Gauge("encoderlab_queue_depth", "Texts (items) waiting for a batch", ("model",))

    def render(self) -> str:
        parts = (self.requests, self.request_seconds, self.queue_seconds, self.inference_seconds, self.batch_size,
                 self.batch_tokens, self.tokens, self.queue_depth)
        return "\n".join(line for metric in parts for line in metric.render()) + "\n"
