"""Audio classifiers, multimodal classifiers and image-text models behind the real server, over loopback HTTP:
the same answers as the loaded models' own methods, and a 4xx naming the problem for every kind of bad input
(corrupt audio, missing column, wrong image size, wrong kind of input)."""

from __future__ import annotations

import base64
import csv
import io

import numpy as np
import pytest

from encoderlab.artifacts.registry import load
from media_runs import CLIPS, EMOJI_IMAGES, SAMPLE, train_media_runs
from tasks.finetune_fixtures import write_tiny_encoder

from .conftest import Server

pytestmark = pytest.mark.slow


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def media(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("media")
    text = write_tiny_encoder(root / "bert", minilm_dir)
    return {**train_media_runs(root, text), "text": text}


@pytest.fixture(scope="module")
def server(media):
    running = Server(["--model", f"langid={media['cnn']}", "--model", f"langid-tf={media['transformer']}",
                      "--model", f"reviews={media['table']}", "--model", f"emoji={media['emoji']}",
                      "--model", f"text={media['text']}"])
    yield running
    running.stop()


def review_rows(n: int) -> list[dict]:
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    return [{"Review Text": r["Review Text"], "Class Name": r["Class Name"], "Age": int(r["Age"])} for r in rows]


def test_models_list_the_new_kinds_and_their_routes(server):
    models = {m["id"]: m for m in server.request("GET", "/v1/models").json()["data"]}
    assert models["langid"]["kind"] == "audio-classifier" and models["langid"]["labels"] == ["en", "es", "fr", "it",
                                                                                              "ru"]
    assert set(models["langid"]["routes"]) == {"/v1/classify", "/v1/embeddings"}
    assert models["reviews"]["columns"]["numeric"] == ["Age"] and models["reviews"]["labels"] == ["0", "1"]
    assert set(models["emoji"]["routes"]) == {"/v1/embeddings", "/v1/classify"}
    assert models["emoji"]["image_size"] == 64
    assert "Flags" in models["emoji"]["categories"]


@pytest.mark.parametrize("name,run", [("langid", "cnn"), ("langid-tf", "transformer")])
def test_audio_classify_and_embed_equal_the_model(server, media, name, run):
    clf = load(media[run])
    files = [CLIPS / "en" / "digits-1.flac", CLIPS / "ru" / "digits-7.flac", CLIPS / "it" / "digits-3.flac"]
    body = {"model": name, "input": [{"audio": b64(f.read_bytes())} for f in files]}
    reply = server.post("/v1/classify", body)
    assert reply.status == 200, reply.body
    data = reply.json()["data"]
    got = np.array([[row["probabilities"][label] for label in clf.label_names] for row in data])
    np.testing.assert_allclose(got, clf.predict_proba(files), atol=1e-5)
    assert [row["label"] for row in data] == clf.predict(files)
    vectors = server.post("/v1/embeddings", {**body, "encoding_format": "base64"})
    assert vectors.status == 200, vectors.body
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in vectors.json()["data"]])
    np.testing.assert_allclose(decoded, clf.encode(files), atol=1e-5)
    # a WAV made from a clip (another container, another rate) is read like the file itself
    import soundfile

    wave, rate = soundfile.read(str(files[0]), dtype="float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.repeat(wave, 2), 2 * rate, format="WAV", subtype="PCM_16")
    wav = server.post("/v1/classify", {"model": name, "input": [{"audio": b64(buffer.getvalue())}]})
    assert wav.status == 200 and wav.json()["data"][0]["label"] in clf.label_names


def test_bad_audio_is_a_4xx_naming_the_input(server):
    good = b64((CLIPS / "en" / "digits-1.flac").read_bytes())
    cases = {
        "corrupt": ({"audio": b64(b"RIFF0000WAVEfmt this is not audio")}, "input[1]"),
        "empty": ({"audio": ""}, "input[1]"),
        "not base64": ({"audio": "%%% not base64 %%%"}, "base64"),
        "no audio field": ({"sound": good}, "'audio'"),
        "a text": ("hello", "JSON objects"),
    }
    for what, (item, expected) in cases.items():
        reply = server.post("/v1/classify", {"model": "langid", "input": [{"audio": good}, item]})
        assert 400 <= reply.status < 500, (what, reply.status, reply.body)
        assert expected in reply.message, (what, reply.message)
    stereo = io.BytesIO()
    import soundfile

    soundfile.write(stereo, np.zeros((800, 2), np.float32), 8000, format="WAV")  # mixed to mono, as files are
    assert server.post("/v1/classify", {"model": "langid", "input": [{"audio": b64(stereo.getvalue())}]}).status == 200
    assert server.post("/v1/tokenize", {"model": "langid", "input": ["a text"]}).status == 400


def test_multimodal_rows_classify_and_embed_equal_the_model(server, media):
    model = load(media["table"])
    rows = review_rows(5)
    reply = server.post("/v1/classify", {"model": "reviews", "input": rows})
    assert reply.status == 200, reply.body
    got = np.array([[row["probabilities"][label] for label in model.label_names] for row in reply.json()["data"]])
    np.testing.assert_allclose(got, model.predict_proba(rows), atol=1e-5)
    vectors = server.post("/v1/embeddings", {"model": "reviews", "input": rows})
    np.testing.assert_allclose([d["embedding"] for d in vectors.json()["data"]], model.encode(rows), atol=1e-5)
    # a missing value is allowed (null), a missing column is not; a number column holding a word is refused
    assert server.post("/v1/classify", {"model": "reviews", "input": [{**rows[0], "Age": None}]}).status == 200
    missing = server.post("/v1/classify", {"model": "reviews", "input": [rows[0], {"Review Text": "nice"}]})
    assert missing.status == 422 and "input[1]" in missing.message and "'Age'" in missing.message
    word = server.post("/v1/classify", {"model": "reviews", "input": [rows[0], {**rows[0], "Age": "old"}]})
    assert word.status == 422 and "input[1]: column 'Age' holds 'old'" in word.message
    assert "categorical_columns" not in word.message  # a training hint means nothing to a client
    assert server.post("/v1/classify", {"model": "reviews", "input": ["just a text"]}).status == 422


def test_image_text_embeds_images_and_texts_in_one_space(server, media):
    model = load(media["emoji"])
    images = sorted(EMOJI_IMAGES.glob("*.png"))[:3]
    texts = ["grinning face", "red apple"]
    items = [{"image": b64(p.read_bytes())} for p in images] + [texts[0], {"text": texts[1]}]
    reply = server.post("/v1/embeddings", {"model": "emoji", "input": items})
    assert reply.status == 200, reply.body
    vectors = np.array([d["embedding"] for d in reply.json()["data"]])
    np.testing.assert_allclose(vectors[:3], model.encode_images(images), atol=1e-5)
    np.testing.assert_allclose(vectors[3:], model.encode_texts(texts), atol=1e-5)
    from PIL import Image

    small = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(small, format="PNG")
    wrong = server.post("/v1/embeddings", {"model": "emoji", "input": [{"image": b64(small.getvalue())}]})
    assert wrong.status == 422 and "32x32" in wrong.message and "64x64" in wrong.message
    broken = server.post("/v1/embeddings", {"model": "emoji", "input": [{"image": b64(b"\x89PNG not really")}]})
    assert broken.status == 422 and "input[0]" in broken.message
    assert server.post("/v1/embeddings", {"model": "emoji", "input": [{"audio": "AAAA"}]}).status == 422
    # zero-shot categories of images: the training categories, as ImageTextEncoder.classify_proba
    classify = server.post("/v1/classify", {"model": "emoji", "input": items[:3]})
    assert classify.status == 200, classify.body
    got = np.array([[row["probabilities"][c] for c in model.categories] for row in classify.json()["data"]])
    np.testing.assert_allclose(got, model.classify_proba(images), atol=1e-5)
    assert [row["label"] for row in classify.json()["data"]] == model.classify(images)
    text = server.post("/v1/classify", {"model": "emoji", "input": ["red apple"]})
    assert text.status == 422 and "not an image" in text.message


def test_text_models_refuse_objects_with_a_4xx(server):
    """The new input shape reaches every route's schema: a text model sent objects answers 422, not 500."""
    for route in ("/v1/embeddings", "/v1/tokenize"):
        reply = server.post(route, {"model": "text", "input": ["fine", {"image": "AAAA"}]})
        assert reply.status == 422, (route, reply.body)
    assert "input[1]" in server.post("/v1/embeddings", {"model": "text", "input": ["a", {"x": 1}]}).message
    assert server.post("/v1/embeddings", {"model": "text", "input": ["still works"]}).status == 200
    assert server.post("/v1/embeddings", {"model": "emoji", "input": [{"text": ""}]}).status == 422
    reply = server.post("/v1/classify", {"model": "langid", "input": [{"audio": None}]})
    assert reply.status == 422 and "'audio'" in reply.message
    assert server.request("GET", "/metrics").status == 200


def test_the_page_handles_the_new_kinds_without_console_errors(server):
    """The page at / in headless Chromium: an image-text model shows the example texts' similarity matrix in its
    shared space; an audio or table model waits for files / rows instead of sending the example texts."""
    import re
    import shutil

    from .test_page import NAMES, render

    browser = next((shutil.which(n) for n in NAMES if shutil.which(n)), None)
    if browser is None:
        pytest.skip("chromium is not installed (install Debian's `chromium` package to run this test)")
    dom, console = render(browser, server.url + "/?model=emoji")
    assert console == []
    table = re.search(r'<table id="result">(.*?)</table>', dom, re.S)
    assert table, dom[-2000:]
    assert len(re.findall(r"<td>(-?\d\.\d{3})</td>", table.group(1))) == 9
    for name in ("langid", "reviews"):
        dom, console = render(browser, server.url + f"/?model={name}")
        assert console == [] and '<table id="result">' not in dom and 'id="error" role="alert"></div>' in dom


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_fuzzed_request_gets_a_server_error(server, mode):
    """A bounded schemathesis fuzz of /v1/classify and /v1/embeddings against the audio, table and image-text
    models (each request names one of them): whatever arrives, never a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    statuses: list[int] = []
    for path in ("/v1/classify", "/v1/embeddings"):
        operation = schema[path]["POST"]

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)),
               name=st.sampled_from(["langid", "langid-tf", "reviews", "emoji"]))
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case, name):
            if isinstance(case.body, dict):
                case.body["model"] = name
            response = case.call(base_url=server.url, timeout=120)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.path, case.body, response.text[:500])

        fuzz()
    assert any(400 <= s < 500 for s in statuses)
