"""POST /v1/embeddings on the real server over loopback HTTP: the same vectors as TextEncoder.encode, OpenAI's
shape (float and base64), real token counts, truncation said or refused, token ids checked, and the official
`openai` client working against it."""

from __future__ import annotations

import base64
import http.client
import socket

import numpy as np
import pytest

from encoderlab.data.catalog import load_dataset

pytestmark = pytest.mark.slow  # a server subprocess: ~10 s to start


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """Real tweets of several lengths, and one BBC article far over minilm's 256-token limit."""
    tweets = load_dataset("tweets-sentiment").test.texts[:40]
    article = max(load_dataset("bbc-news").test.texts[:20], key=len)
    return [*tweets, article]


def vectors(reply) -> np.ndarray:
    rows = [d["embedding"] for d in reply.json()["data"]]
    if isinstance(rows[0], str):
        return np.stack([np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows])
    return np.asarray(rows, dtype=np.float32)


def test_embeddings_equal_text_encoder_encode(server, minilm, sentences):
    reply = server.post("/v1/embeddings", {"input": sentences, "model": "minilm"})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["object"] == "list" and body["model"] == "minilm"
    assert [d["index"] for d in body["data"]] == list(range(len(sentences)))
    assert all(d["object"] == "embedding" for d in body["data"])
    got, expected = vectors(reply), minilm.encode(sentences)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.99999
    tokens = sum(min(len(ids), 256) for ids in minilm.tokenizer.encode_ids([s.strip() for s in sentences], 10**6))
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert reply.headers["x-truncated-inputs"] == "1"  # the article


def test_base64_is_the_float_vectors_bit_for_bit(server, sentences):
    plain = server.post("/v1/embeddings", {"input": sentences[:5], "encoding_format": "float"})
    packed = server.post("/v1/embeddings", {"input": sentences[:5], "encoding_format": "base64"})
    assert isinstance(packed.json()["data"][0]["embedding"], str)
    np.testing.assert_array_equal(vectors(plain), vectors(packed))


def test_a_single_string_and_token_ids_give_the_texts_vector(server, sentences):
    text = sentences[3]
    one = server.post("/v1/embeddings", {"input": text})
    ids = server.post("/v1/tokenize", {"input": text}).json()["data"][0]["ids"]
    by_ids = server.post("/v1/embeddings", {"input": ids})
    bare = server.post("/v1/embeddings", {"input": [ids[1:-1]]})  # without [CLS] / [SEP]: added
    assert len(one.json()["data"]) == 1
    np.testing.assert_allclose(vectors(by_ids), vectors(one), atol=1e-6)
    np.testing.assert_allclose(vectors(bare), vectors(one), atol=1e-6)
    assert by_ids.json()["usage"]["prompt_tokens"] == len(ids)


def test_truncate_false_refuses_a_long_text_naming_its_length_and_the_limit(server, sentences):
    reply = server.post("/v1/embeddings", {"input": sentences[-2:], "truncate": False})
    assert reply.status == 413
    assert "input[1]" in reply.message and "at most 256" in reply.message and "tokens" in reply.message
    short = server.post("/v1/embeddings", {"input": sentences[:2], "truncate": False})
    assert short.status == 200 and short.headers["x-truncated-inputs"] == "0"


def test_a_client_batch_bigger_than_the_token_budget_is_split_not_refused(server, minilm, sentences):
    many = sentences[:40] * 30  # 1200 texts, ~30k tokens: several batches of 8192
    reply = server.post("/v1/embeddings", {"input": many})
    assert reply.status == 200
    got = vectors(reply)
    np.testing.assert_allclose(got[:40], got[40:80], atol=1e-6)
    np.testing.assert_allclose(got[:40], minilm.encode(sentences[:40]), atol=1e-5)


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"input": ""}, 422, "input[0] is empty"),
    ({"input": []}, 422, "input is empty"),
    ({"input": ["fine", "  "]}, 422, "input[1] is empty"),
    ({"input": 42}, 422, "input"),
    ({"input": ["a", 3]}, 422, "input"),
    ({"input": [[1, 2], ["x"]]}, 422, "input"),
    ({"input": [[101, 10 ** 9, 102]]}, 422, "not in this model's vocabulary"),
    ({"input": [[-1]]}, 422, "not in this model's vocabulary"),
    ({"input": "a", "encoding_format": "hex"}, 422, "encoding_format"),
    ({"input": "a", "dimensions": 128}, 422, "dimensions=128"),
    ({"input": "a", "model": "gpt-4"}, 404, "'gpt-4' is not served"),
    ({"input": "a", "model": "g2p"}, 400, "use /v1/generate"),
    ({"input": "a", "truncate": "no"}, 422, "truncate"),
    ({"model": "minilm"}, 422, "input"),
    (["a", "list"], 400, "JSON object"),
])
def test_bad_requests_get_a_4xx_that_says_what_to_change(server, body, status, says):
    reply = server.post("/v1/embeddings", body)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert says in error["message"] and error["type"]


def test_malformed_json_is_a_400(server):
    for raw in (b"{bad", b"", b'{"input": "a"', b"\xff\xfe"):
        reply = server.post("/v1/embeddings", raw=raw)
        assert reply.status in (400, 422), (raw, reply.body)
        assert reply.json()["error"]["message"]
    assert server.post("/v1/embeddings", raw=b"{bad").status == 400


def test_too_many_texts_and_too_big_a_body_are_413(server):
    reply = server.post("/v1/embeddings", {"input": ["x"] * 2049})
    assert reply.status == 413 and "at most 2048" in reply.message
    # a 17 MB body is refused from its Content-Length, before the server reads any of it
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{\"input\": \"aaaa" % (17 * 2**20))
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413 and b"over the server's limit" in response.read()


def test_the_official_openai_client_works_against_it(server, minilm, sentences):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    response = client.embeddings.create(model="minilm", input=sentences[:8])  # the client asks for base64
    got = np.asarray([d.embedding for d in response.data], dtype=np.float32)
    np.testing.assert_allclose(got, minilm.encode(sentences[:8]), atol=1e-5)
    assert response.usage.prompt_tokens > 8
    floats = client.embeddings.create(model="minilm", input="one text", encoding_format="float")
    assert len(floats.data[0].embedding) == 384
    assert [m.id for m in client.models.list().data] == ["minilm", "clf", "pos", "g2p", "ae", "rec"]
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="x")


def test_models_health_ready_metrics_and_openapi(server):
    models = server.request("GET", "/v1/models").json()
    entry = {m["id"]: m for m in models["data"]}
    assert entry["minilm"]["kind"] == "text-encoder" and entry["minilm"]["dimensions"] == 384
    assert entry["clf"]["labels"] == ["negative", "neutral", "positive"]
    assert server.request("GET", "/health").json() == {"status": "ok"}
    assert server.request("GET", "/ready").status == 200
    metrics = server.request("GET", "/metrics")
    text = metrics.body.decode()
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("encoderlab_requests_total", "encoderlab_queue_seconds_bucket", "encoderlab_inference_seconds_sum",
                 "encoderlab_batch_size_count", "encoderlab_batch_tokens_bucket", "encoderlab_queue_depth"):
        assert name in text
    assert 'encoderlab_requests_total{route="/v1/embeddings",status="200"}' in text
    spec = server.request("GET", "/openapi.json").json()
    assert {"/v1/embeddings", "/v1/classify", "/v1/tag", "/v1/generate", "/v1/score", "/v1/tokenize"} <= set(
        spec["paths"])
    page = server.request("GET", "/")
    assert page.status == 200 and b"<script>" in page.body and b"http" not in page.body.split(b"<script>")[1][:0]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_bf16_and_int8_servers_keep_the_precision_contracts(minilm, sentences, precision):
    """The server runs the fast paths encode runs (bf16 twin, int8 feed-forwards on AMX), with the same
    agreement with fp32: bf16 worst cosine >= 0.999; int8 mean >= 0.99, worst >= 0.97."""
    from .conftest import Server

    running = Server(["--model", "minilm", "--precision", precision])
    try:
        reply = running.post("/v1/embeddings", {"input": sentences, "model": "minilm"})
        assert reply.status == 200, reply.body
        models = running.request("GET", "/v1/models").json()["data"]
    finally:
        running.stop()
    cosines = (vectors(reply) * minilm.encode(sentences)).sum(1)
    if precision == "bf16":
        assert cosines.min() >= 0.999
    else:
        assert cosines.mean() >= 0.99 and cosines.min() >= 0.97
    assert any(precision in str(m) for m in models)
