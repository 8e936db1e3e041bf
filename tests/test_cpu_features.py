from encoderlab import cpu_features


def test_flags_name_and_description_agree(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    info = "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_vnni amx_bf16 sse\n"
    monkeypatch.setattr(cpu_features, "_cpuinfo", lambda: info)
    cpu_features.cpu_flags.cache_clear()
    try:
        assert cpu_features.cpu_flags() >= {"avx2", "amx_bf16"} and cpu_features.cpu_has_vnni()
        assert cpu_features.describe_cpu() == "Test CPU 9000 (avx2 avx512f avx512_vnni amx_bf16)"
        monkeypatch.setattr(cpu_features, "_cpuinfo", lambda: "")
        cpu_features.cpu_flags.cache_clear()
        assert not cpu_features.cpu_has_vnni() and "none of avx2" in cpu_features.describe_cpu()
    finally:
        cpu_features.cpu_flags.cache_clear()


def test_an_isa_ceiling_drops_the_flags_above_it(monkeypatch):
    """ONEDNN_MAX_CPU_ISA caps oneDNN's kernels; the flags (which pick ours) follow it, so an AMX machine capped at
    AVX-512 BF16 chooses what a Zen 4 would, and one capped at AVX2 what an AVX2-only CPU would."""
    info = "model name\t: Test CPU\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8\n"
    monkeypatch.setattr(cpu_features, "_cpuinfo", lambda: info)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    try:
        every = set(cpu_features.KERNEL_FLAGS) - {"avx_vnni"}  # all this CPU has
        for ceiling, expected in [("avx512_core_bf16", {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
                                  ("AVX2", {"avx2"}), ("AVX512_CORE_AMX", every)]:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", ceiling)
            cpu_features.cpu_flags.cache_clear()
            assert cpu_features.cpu_flags() & set(cpu_features.KERNEL_FLAGS) == expected, ceiling
            assert "fpu" in cpu_features.cpu_flags()  # flags that pick no kernel are kept
        assert "capped at ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX" in cpu_features.describe_cpu()
    finally:
        cpu_features.cpu_flags.cache_clear()
