"""What this CPU can do, read at run time: the instruction-set extensions that pick our kernels and that every
benchmark table names (AVX2, AVX-512, VNNI int8 dot products, AVX-512 BF16, AMX bf16/int8 tiles).

    cpu_flags() & {"amx_bf16", "amx_int8"}      # {'amx_bf16', 'amx_int8'} on a Sapphire Rapids Xeon
    describe_cpu()                               # 'Intel(R) Xeon(R) Processor (avx2 avx512f ... amx_int8)'
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

KERNEL_FLAGS = ("avx2", "avx512f", "avx_vnni", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
"""The flags that decide which matmul kernels run, in the order a table lists them."""


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no flags known, so every feature reads as absent
        return ""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_has_vnni() -> bool:
    """Whether this x86 CPU has VNNI int8 dot products (avx512_vnni or avx_vnni)."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni"})


def describe_cpu() -> str:
    """The CPU's name and the kernel-relevant flags it has, for a benchmark's header."""
    found = [flag for flag in KERNEL_FLAGS if flag in cpu_flags()]
    return f"{cpu_name()} ({' '.join(found) or 'none of ' + ', '.join(KERNEL_FLAGS)})"
