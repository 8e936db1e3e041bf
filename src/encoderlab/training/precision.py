"""Device choice and mixed precision: `torch.autocast` plus, for fp16, a loss-scaling GradScaler.

bf16 has fp32's exponent range, so it needs no loss scaling and runs on CPU and CUDA. fp16 overflows
without scaling and is only fast on CUDA, so it is CUDA-only and always paired with a GradScaler.
Parameters and optimizer state stay fp32 in every mode; autocast only lowers the compute dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import ConfigError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads (None keeps torch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` -> cuda:<local_rank> if available, else mps, else cpu; explicit names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device={name!r} is not a torch device; use auto, cpu, cuda, cuda:0 or mps") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} but CUDA is not available here; use device=auto or device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name} but MPS is not available here; use device=auto or device=cpu")
    return device


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision=fp16 needs a CUDA device (got {device}); use precision=bf16 on CPU/MPS "
                          "or precision=fp32")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Run the enclosed forward/loss in the configured precision (a no-op for fp32)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler that scales for fp16 and is a transparent pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
