from encoderlab import cpu_features


def test_flags_name_and_description_agree(monkeypatch):
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
