"""What this CPU can do, read at run time: the instruction-set extensions that pick our kernels and that every
benchmark table names (AVX2, AVX-512, VNNI int8 dot products, AVX-512 BF16, AMX bf16/int8 tiles).

    cpu_flags() & {"amx_bf16", "amx_int8"}      # {'amx_bf16', 'amx_int8'} on a Sapphire Rapids Xeon
    describe_cpu()                               # 'Intel(R) Xeon(R) Processor (avx2 avx512f ... amx_int8)'

oneDNN can be told to use no instruction set above a ceiling (`ONEDNN_MAX_CPU_ISA=AVX2`, `AVX512_CORE_VNNI`,
`AVX512_CORE_BF16`, ...: a workaround users set, and how this project measures older CPUs on a newer one). The
flags read here honour that ceiling, so that every kernel choice made from them (bf16 twin or autocast, int8 on
AMX or fbgemm) is the one a CPU without the capped extensions would get.
"""

from __future__ import annotations

import functools
import os
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


_AVX512 = ("avx2", "avx512f", "avx512_vnni")
_ISA_CEILINGS: dict[str, tuple[str, ...]] = {
    "SSE41": (), "AVX": (),
    "AVX2": ("avx2",), "AVX2_VNNI": ("avx2", "avx_vnni"), "AVX2_VNNI_2": ("avx2", "avx_vnni"),
    "AVX512_CORE": ("avx2", "avx512f"), "AVX512_CORE_VNNI": _AVX512,
    "AVX512_CORE_BF16": (*_AVX512, "avx512_bf16"), "AVX512_CORE_FP16": (*_AVX512, "avx512_bf16"),
    "AVX10_1_512": (*_AVX512, "avx512_bf16"),
}
"""oneDNN's ISA names below AMX -> the kernel flags a CPU capped there keeps (the AMX levels and ALL/DEFAULT keep
every flag)."""


def isa_ceiling() -> str | None:
    """The instruction-set ceiling oneDNN was given (ONEDNN_MAX_CPU_ISA, or its older name DNNL_MAX_CPU_ISA)."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return value.strip().upper() if value else None


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere), less the kernel flags above oneDNN's ISA
    ceiling when one is set."""
    flags: frozenset[str] = frozenset()
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags = frozenset(line.partition(":")[2].split())
            break
    kept = _ISA_CEILINGS.get(isa_ceiling() or "")
    if kept is not None:
        flags = flags - (set(KERNEL_FLAGS) - set(kept))
    return flags


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
    ceiling = f"; capped at ONEDNN_MAX_CPU_ISA={isa_ceiling()}" if isa_ceiling() else ""
    return f"{cpu_name()} ({' '.join(found) or 'none of ' + ', '.join(KERNEL_FLAGS)}{ceiling})"
