"""`ServeSettings`: the server's limits and knobs, one documented field each, checked when built."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    """Interface to listen on. Loopback by default: another machine reaches the server only if you say so."""
    port: int = 8000
    api_key: str | None = None
    """When set, every route but /, /health and /ready needs `Authorization: Bearer KEY` (compared in constant
    time)."""
    max_batch_tokens: int = 8192
    """Dynamic batching budget: queued texts are packed into one forward pass up to this many tokens (padding-free,
    so real tokens). A text longer than the budget runs alone."""
    max_queue: int = 4096
    """Texts waiting for inference, all requests together; a request that would go past it gets 429."""
    max_texts: int = 2048
    """Texts (or sentences, samples) in one request; more is a 413. Below max_queue."""
    max_body_bytes: int = 16 * 2**20
    """Largest request body; more is a 413."""
    batching: bool = True
    """False: no request shares a forward pass with another (each runs alone, in arrival order): the baseline
    that shows what dynamic batching buys."""
    chunk: bool = False
    """Embeddings of texts longer than the model's limit: split into windows of the limit, embed each, average
    them weighted by token count (then normalise if the model does). Without it, long texts are truncated."""
    precision: Literal["fp32", "bf16", "int8"] = "fp32"
    """Text encoders: fp32 (exact), bf16 autocast, or int8 (the CLI quantizes before serving)."""
    workers: int | None = None
    """Batches in flight at once, each on its own inference thread with threads // workers torch threads. None:
    two when there are at least two threads (one batch computes while the other's callers are answered and the
    next requests arrive; measured in benchmarks/serve_load.py), else one."""
    drain_seconds: float = 30.0
    """On SIGTERM: stop accepting, then give in-flight requests this long to finish."""
    warmup: bool = True
    """Run one request through every model before /ready says yes."""

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_queue", "max_texts", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        if self.max_texts > self.max_queue:
            raise ConfigError(f"max_texts={self.max_texts} is above max_queue={self.max_queue}: a request that size "
                              "could never be queued; raise --max-queue or lower --max-texts")
        if not 0 < self.port < 65536 and self.port != 0:
            raise ConfigError(f"port={self.port} must be in 1..65535 (0: any free port)")
        if self.precision not in ("fp32", "bf16", "int8"):
            raise ConfigError(f"precision={self.precision!r} is unknown; choose fp32, bf16 or int8")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers={self.workers} must be at least 1 (or unset: automatic)")
        if self.drain_seconds < 0:
            raise ConfigError(f"drain_seconds={self.drain_seconds} must be >= 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty; pass a real key or none")

    def resolve_workers(self, threads: int) -> int:
        """The inference workers on `threads` torch threads: `workers`, or the automatic choice; never more
        workers than threads."""
        workers = self.workers if self.workers is not None else (2 if threads >= 2 else 1)
        return max(1, min(workers, threads))

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
