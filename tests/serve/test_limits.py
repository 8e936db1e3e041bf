"""The server under pressure and at its edges, over loopback HTTP: the API key, 429 from a full queue instead of
piling up, long texts embedded in windows (--chunk), and SIGTERM finishing every in-flight request."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from encoderlab.artifacts.text_encoder import TextEncoder
from encoderlab.data.catalog import load_dataset

from .conftest import Server

pytestmark = pytest.mark.slow
KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def articles() -> list[str]:
    """Real BBC articles, each far over minilm's 256 tokens."""
    return load_dataset("bbc-news").test.texts[:64]


@pytest.fixture(scope="module")
def guarded(tiny_models):
    """minilm and the tiny encoder; key from the environment; a queue of 4 texts."""
    running = Server(["--model", "minilm", "--model", f"tiny={tiny_models['enc']}", "--max-queue", "4",
                      "--max-texts", "4"], env={"ENCODERLAB_API_KEY": KEY})
    yield running
    running.stop()


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_api_key_is_required_except_for_probes_and_the_page(guarded):
    body = {"input": ["hello"], "model": "tiny"}
    assert guarded.post("/v1/embeddings", body).status == 401
    wrong = guarded.post("/v1/embeddings", body, headers=auth("s3cret-key-for-test"))
    assert wrong.status == 401 and "API key" in wrong.message and wrong.headers["www-authenticate"] == "Bearer"
    assert guarded.post("/v1/embeddings", body, headers={"Authorization": KEY}).status == 401  # no Bearer
    assert guarded.post("/v1/embeddings", body, headers=auth()).status == 200
    assert guarded.request("GET", "/v1/models").status == 401
    assert guarded.request("GET", "/metrics").status == 401
    for open_path in ("/health", "/ready", "/"):
        assert guarded.request("GET", open_path).status == 200


def test_a_full_queue_answers_429_and_every_other_request_succeeds(guarded, articles):
    def send(i: int):
        return guarded.post("/v1/embeddings", {"input": articles[4 * (i % 8):4 * (i % 8) + 4], "model": "minilm"},
                            headers=auth())

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(send, range(16)))
    statuses = [r.status for r in replies]
    assert set(statuses) <= {200, 429} and statuses.count(429) >= 1 and statuses.count(200) >= 1
    refused = next(r for r in replies if r.status == 429)
    assert "queue holds 4" in refused.message and refused.headers["retry-after"] == "1"
    assert all(len(r.json()["data"]) == 4 for r in replies if r.status == 200)
    assert guarded.request("GET", "/health").status == 200  # still up


def test_chunking_embeds_a_long_text_as_the_token_weighted_mean_of_its_windows(tiny_models, articles):
    encoder = TextEncoder.from_pretrained(tiny_models["enc"])  # max 64 tokens
    text = articles[0]
    ids = encoder.tokenizer.encode_ids([text.strip()], 10**6)[0]
    body = ids[1:-1]
    windows = [[ids[0], *body[i:i + 62], ids[-1]] for i in range(0, len(body), 62)]
    pieces = [encoder.tokenizer.decode(w) for w in windows]
    # the reference: each window through TextEncoder.encode (un-normalised), averaged by window length
    window_vectors = encoder.encode(pieces, normalize=False)
    weights = np.asarray([len(w) for w in windows], dtype=np.float64)
    expected = (window_vectors * weights[:, None]).sum(0) / weights.sum()
    expected /= np.linalg.norm(expected)
    chunking = Server(["--model", f"tiny={tiny_models['enc']}", "--chunk", "--max-queue", "32", "--max-texts", "4"])
    try:
        reply = chunking.post("/v1/embeddings", {"input": text, "encoding_format": "float"})
        too_many = chunking.post("/v1/embeddings", {"input": articles[:4]})  # 4 texts, but > 32 windows
    finally:
        chunking.stop()
    assert too_many.status == 413 and "windows" in too_many.message
    assert reply.status == 200 and reply.headers["x-truncated-inputs"] == "0"
    assert reply.json()["usage"]["prompt_tokens"] == sum(len(w) for w in windows)
    got = np.asarray(reply.json()["data"][0]["embedding"])
    assert float(got @ expected) >= 0.9999


def test_sigterm_finishes_every_in_flight_request_and_refuses_new_connections(articles):
    running = Server(["--model", "minilm", "--drain-seconds", "120"])
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(running.post, "/v1/embeddings", {"input": articles[8 * i:8 * i + 8]})
                       for i in range(6)]
            time.sleep(1.0)  # all six sent; minilm needs seconds for 48 long articles on one thread
            running.process.send_signal(signal.SIGTERM)
            in_flight = sum(not f.done() for f in futures)
            time.sleep(0.5)
            with pytest.raises(OSError):  # the listening socket is closed at once
                socket.create_connection(("127.0.0.1", running.port), timeout=5).close()
            replies = [f.result(timeout=300) for f in futures]
        assert in_flight >= 1  # the signal came while requests were still being served
        assert [r.status for r in replies] == [200] * 6
        assert all(len(r.json()["data"]) == 8 for r in replies)
        # uvicorn ends by re-raising the signal it handled: exit status -SIGTERM, after the drain, on its own
        assert running.process.wait(timeout=120) in (0, -signal.SIGTERM)
    finally:
        running.stop()
