"""Two `encoderlab serve` replicas behind HAProxy (Debian's package) on loopback, with configs/serve-haproxy.cfg:
requests are shared, and when one replica is stopped with SIGTERM every request still succeeds.

HAProxy is taken from PATH, or unpacked from Debian's .deb files into a cache directory (`apt-get download` +
`dpkg -x`; nothing is installed on the system). Without either, the test is skipped and says why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import ROOT, Client, Server, free_port

pytestmark = pytest.mark.slow
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "encoderlab" / "debian"
PACKAGES = ("haproxy", "liblua5.3-0", "libopentracing-c-wrapper0", "libopentracing1")


def haproxy() -> tuple[str, dict[str, str]]:
    """The haproxy binary and the environment it runs in."""
    found = shutil.which("haproxy")
    if found:
        return found, dict(os.environ)
    binary, libs = CACHE / "root/usr/sbin/haproxy", CACHE / "root/usr/lib/x86_64-linux-gnu"
    if not binary.is_file():
        if not shutil.which("apt-get") or not shutil.which("dpkg"):
            pytest.skip("haproxy is not installed and this is not a Debian system to unpack it from")
        CACHE.mkdir(parents=True, exist_ok=True)
        download = subprocess.run(["apt-get", "download", *PACKAGES], cwd=CACHE, capture_output=True, text=True)
        if download.returncode != 0:
            pytest.skip(f"haproxy is not installed and `apt-get download` failed: {download.stderr[-300:]}")
        for deb in CACHE.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(CACHE / "root")], check=True)
    env = {**os.environ, "LD_LIBRARY_PATH": str(libs)}
    if subprocess.run([str(binary), "-v"], env=env, capture_output=True).returncode != 0:
        pytest.skip("the unpacked haproxy does not run here (a library is missing)")
    return str(binary), env


def embedding_requests(server: Server) -> int:
    metrics = server.request("GET", "/metrics").body.decode()
    found = re.search(r'encoderlab_requests_total\{route="/v1/embeddings",status="200"\} (\d+)', metrics)
    return int(found.group(1)) if found else 0


def test_two_replicas_behind_haproxy_share_requests_and_survive_a_stopped_replica(tiny_models, tmp_path):
    binary, env = haproxy()
    replicas = [Server(["--model", f"tiny={tiny_models['enc']}"]) for _ in range(2)]
    front = free_port()
    config = (ROOT / "configs" / "serve-haproxy.cfg").read_text()
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{front}")
    for i, replica in enumerate(replicas, start=1):
        config = config.replace(f"127.0.0.1:800{i}", f"127.0.0.1:{replica.port}")
    (tmp_path / "haproxy.cfg").write_text(config)
    balancer = subprocess.Popen([binary, "-f", str(tmp_path / "haproxy.cfg"), "-db"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        via = Client(front)
        assert via.wait_ready(30, balancer)
        texts = ["the first replica", "or the second one", "it should not matter"]

        def send(_: int) -> int:
            return via.post("/v1/embeddings", {"input": texts}).status

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(send, range(24))) == [200] * 24
        assert all(embedding_requests(r) > 0 for r in replicas)  # both served some
        replicas[0].stop()
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(send, range(24))) == [200] * 24  # none lost to the stopped replica
    finally:
        balancer.terminate()
        balancer.wait(10)
        for replica in replicas:
            replica.stop()
