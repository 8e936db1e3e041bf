"""Load benchmark of `encoderlab serve` on loopback, side by side with infinity and a hand-written server.

    python benchmarks/serve_load.py                                # every server, 1/4/16/64 clients, 3 x 5 s each
    python benchmarks/serve_load.py --servers encoderlab,encoderlab-no-batching --seconds 5
    python benchmarks/serve_load.py --infinity-python /path/to/venv/bin/python   # where infinity-emb is installed

Clients are asyncio connections (keep-alive), each sending one request at a time of `--texts-per-request` real
tweets (the catalog's test split) to POST /v1/embeddings, as fast as answers come back; every level stops after
`--seconds` or `--max-requests`, whichever comes first. All servers run at once (idle but for the one being
measured) and `--rounds` rounds interleave them, so the noise of a busy machine falls on every server alike.
Reported per server and client count: texts/s over all rounds (and per round), texts per CPU-second of the
server process (user + system, all threads: the cost of a text, which a busy machine disturbs far less than
wall-clock throughput), latency p50/p95/p99 pooled over the rounds, failed requests (anything but 200, and
connection errors). Each round also times `TextEncoder.encode` alone on 512 of the texts in this process
(batch 32, the same threads): the ceiling a server's overhead is measured against.

Servers (each started here as its own process on a free loopback port, stopped after its run):
  encoderlab              encoderlab serve --model minilm (dynamic batching, --max-batch-tokens 8192)
  encoderlab-no-batching  the same with --no-batching: one request per forward pass
  infinity                infinity-emb (PyPI) serving the same minilm directory, torch engine, CPU
  sentence-transformers   benchmarks/st_server.py: FastAPI + SentenceTransformer.encode, a dozen lines
  encoderlab:OPTIONS      encoderlab serve with more options, e.g. encoderlab:--workers=1 (space-separated)
Results go to stdout as a markdown table and to --output as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------- HTTP load
async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes) -> int:
    writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while (size := int((await reader.readline()).strip(), 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        await reader.readexactly(length)
    return status


async def load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float, max_requests: int) -> dict:
    latencies: list[float] = []
    failures = 0
    sent = 0
    stop_at = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal failures, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at and sent < max_requests:
                body = bodies[sent % len(bodies)]
                sent += 1
                started = time.perf_counter()
                try:
                    status = await post(reader, writer, path, body)
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    failures += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "latencies": np.asarray(latencies), "failed": failures, "seconds": elapsed}


# ------------------------------------------------------------------------------------------- servers
PATHS = {"infinity": "/embeddings"}
"""Where a server takes embedding requests, when not at /v1/embeddings (infinity's default URL prefix is empty)."""


def server_command(name: str, port: int, model_dir: str, threads: int, infinity: str) -> list[str]:
    if name == "encoderlab":
        return [sys.executable, "-m", "encoderlab", "serve", "--model", "minilm", "--port", str(port),
                "--threads", str(threads)]
    if name.startswith("encoderlab:"):  # a variant: encoderlab:--workers=1 (extra serve options, space-separated)
        return [*server_command("encoderlab", port, model_dir, threads, infinity), *name.partition(":")[2].split()]
    if name == "encoderlab-no-batching":
        return [*server_command("encoderlab", port, model_dir, threads, infinity), "--no-batching"]
    if name == "infinity":
        return [infinity, "v2", "--model-id", model_dir,
                "--served-model-name", "minilm", "--engine", "torch", "--device", "cpu", "--port", str(port),
                "--host", "127.0.0.1", "--no-bettertransformer"]
    if name == "sentence-transformers":
        return [sys.executable, str(ROOT / "benchmarks" / "st_server.py"), model_dir, str(port), str(threads)]
    raise SystemExit(f"unknown server {name!r}")


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 300) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        for path in ("/ready", "/health"):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc): what a request costs, which other jobs
    on a busy machine change much less than they change wall-clock throughput."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agreement(port: int, path: str, texts: list[str], expected: np.ndarray) -> float:
    """The lowest cosine between a server's embeddings of `texts` and TextEncoder.encode's: the same model?"""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, json.dumps({"model": "minilm", "input": texts}),
                       {"Content-Type": "application/json"})
    rows = np.asarray([d["embedding"] for d in json.loads(connection.getresponse().read())["data"]])
    cosine = (rows * expected).sum(1) / np.linalg.norm(rows, axis=1) / np.linalg.norm(expected, axis=1)
    return round(float(cosine.min()), 6)


def reference(texts: list[str], threads: int) -> tuple[float, np.ndarray]:
    """Texts/s of TextEncoder.encode alone, batch 32, on `threads` threads (warm); and the first 16 vectors."""
    import torch

    from encoderlab import TextEncoder

    torch.set_num_threads(threads)
    encoder = TextEncoder.from_pretrained("minilm")
    encoder.encode(texts[:64])
    started = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - started), vectors[:16]


def summarise(runs: list[dict], per_request: int) -> dict:
    """Rounds of one server and client count -> one row: texts/s over all rounds, pooled latency percentiles."""
    ms = np.concatenate([r["latencies"] for r in runs]) * 1000 if runs else np.zeros(0)
    seconds = sum(r["seconds"] for r in runs)
    cpu = sum(r["cpu_seconds"] for r in runs)
    row = {"requests": int(len(ms)), "failed": sum(r["failed"] for r in runs), "seconds": round(seconds, 1),
           "texts_per_s": round(len(ms) * per_request / seconds, 1) if seconds else 0.0,
           "texts_per_cpu_s": round(len(ms) * per_request / cpu, 1) if cpu else None,
           "rounds_texts_per_s": [round(len(r["latencies"]) * per_request / r["seconds"], 1) for r in runs]}
    for q in (50, 95, 99):
        row[f"p{q}_ms"] = round(float(np.percentile(ms, q)), 1) if len(ms) else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="encoderlab,encoderlab-no-batching,infinity,sentence-transformers")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=5.0, help="Per round, server and client count.")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (a busy machine's noise spreads "
                                                              "over every server alike).")
    parser.add_argument("--max-requests", type=int, default=5000, help="Per round, server and client count.")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="Inference threads of every server.")
    parser.add_argument("--infinity", default=shutil.which("infinity_emb") or "infinity_emb",
                        help="infinity-emb's `infinity_emb` command (it pins older transformers and numpy, so it "
                             "usually lives in a venv of its own).")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.json")
    args = parser.parse_args()

    from encoderlab.artifacts.aliases import resolve_model_path
    from encoderlab.cpu_features import describe_cpu
    from encoderlab.data.catalog import load_dataset

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    texts = [" ".join(t.split()) for t in load_dataset("tweets-sentiment").test.texts[:2048]]
    k = args.texts_per_request
    bodies = [json.dumps({"model": "minilm", "input": texts[i:i + k]}).encode() for i in range(0, len(texts), k)]
    model_dir = str(resolve_model_path("minilm"))
    levels = [int(c) for c in args.clients.split(",")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(args.threads),
           "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}

    # every server up at once (idle while another is measured), so the rounds can interleave them
    servers: dict[str, tuple[int, subprocess.Popen]] = {}
    results: dict = {"cpu": describe_cpu(), "cores": os.cpu_count(), "threads": args.threads, "texts_per_request": k,
                     "rounds": args.rounds, "seconds_per_round": args.seconds, "servers": {}, "agreement": {},
                     "not_started": {}}
    ceilings, reference_vectors = [], None
    try:
        for name in args.servers.split(","):
            port = free_port()
            log = open(f"/tmp/serve_load-{name}.log", "w")  # noqa: SIM115
            servers[name] = (port, subprocess.Popen(server_command(name, port, model_dir, args.threads,
                                                                   args.infinity),
                                                    env=env, stdout=subprocess.DEVNULL, stderr=log))
        for name, (port, process) in list(servers.items()):
            try:
                wait_ready(port, process)
            except RuntimeError as exc:
                results["not_started"][name] = f"{exc} (log: /tmp/serve_load-{name}.log)"
                del servers[name]
        runs: dict[tuple[str, int], list[dict]] = {}
        for round_no in range(args.rounds):
            ceiling, reference_vectors = reference(texts[:512], args.threads)
            ceilings.append(ceiling)
            order = list(servers)[round_no % len(servers):] + list(servers)[:round_no % len(servers)]
            for name in order:
                port, _ = servers[name]
                path = PATHS.get(name, "/v1/embeddings")
                if round_no == 0:
                    results["agreement"][name] = agreement(port, path, texts[:16], reference_vectors)
                    asyncio.run(load(port, path, bodies, 4, 2.0, 200))  # warm-up
            for clients in levels:
                for name in order:
                    port, process = servers[name]
                    path = PATHS.get(name, "/v1/embeddings")
                    before = cpu_seconds(process.pid)
                    run = asyncio.run(load(port, path, bodies, clients, args.seconds, args.max_requests))
                    run["cpu_seconds"] = cpu_seconds(process.pid) - before
                    runs.setdefault((name, clients), []).append(run)
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for _, process in servers.values():
            process.send_signal(signal.SIGTERM)
        for _, process in servers.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()

    ceiling = float(np.median(ceilings))
    results["encode_alone_texts_per_s"] = round(ceiling, 1)
    results["encode_alone_rounds"] = [round(c, 1) for c in ceilings]
    print(f"# {results['cpu']}, {os.cpu_count()} cores, {args.threads} inference threads per server; "
          f"{k} tweet(s) per request; {args.rounds} interleaved rounds of {args.seconds:g} s per cell")
    print(f"TextEncoder.encode alone (batch 32), median of the rounds: {ceiling:.0f} texts/s\n")
    print("| server | clients | texts/s | texts per CPU-s | p50 ms | p95 ms | p99 ms | failed | texts/s per round |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    fmt = (lambda v: f"{v:.0f}" if v is not None else "–")  # noqa: E731
    for name in servers:
        results["servers"][name] = []
        for clients in levels:
            row = {"clients": clients, **summarise(runs[name, clients], k)}
            results["servers"][name].append(row)
            per_round = ", ".join(f"{v:.0f}" for v in row["rounds_texts_per_s"])
            print(f"| {name} | {clients} | {fmt(row['texts_per_s'])} | {fmt(row['texts_per_cpu_s'])} | "
                  f"{fmt(row['p50_ms'])} | {fmt(row['p95_ms'])} | "
                  f"{fmt(row['p99_ms'])} | {row['failed']} | {per_round} |")
    for name, why in results["not_started"].items():
        print(f"| {name} | – | did not start: {why} | | | | | | |")
    print("\nlowest cosine to TextEncoder.encode on 16 tweets: " +
          ", ".join(f"{n} {c:.6f}" for n, c in results["agreement"].items()))
    at = {name: {r["clients"]: r for r in rows} for name, rows in results["servers"].items()}
    if "encoderlab" in at and 16 in at["encoderlab"]:
        ours = at["encoderlab"][16]
        print(f"16 clients: encoderlab {ours['texts_per_s']:.0f} texts/s = {ours['texts_per_s'] / ceiling:.0%} of "
              "TextEncoder.encode alone")
        for other in ("infinity", "sentence-transformers", "encoderlab-no-batching"):
            if other in at and 16 in at[other] and at[other][16]["texts_per_s"]:
                theirs = at[other][16]
                per_cpu = (f", {ours['texts_per_cpu_s'] / theirs['texts_per_cpu_s']:.2f}x texts per CPU-second"
                           if ours["texts_per_cpu_s"] and theirs["texts_per_cpu_s"] else "")
                print(f"16 clients: encoderlab / {other}: {ours['texts_per_s'] / theirs['texts_per_s']:.2f}x "
                      f"throughput{per_cpu}, p95 {fmt(ours['p95_ms'])} vs {fmt(theirs['p95_ms'])} ms")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
