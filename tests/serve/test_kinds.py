"""Every saved kind on its route, over loopback HTTP: the same answers as the loaded model's own methods."""

from __future__ import annotations

import numpy as np
import pytest

from encoderlab.artifacts.registry import load
from encoderlab.data.arrays import load_shuttle_raw

pytestmark = pytest.mark.slow

TEXTS = ["what a lovely morning", "the train was late again and nobody said why", "meh"]


def test_classify_returns_the_classifiers_labels_and_probabilities(server, tiny_models):
    classifier = load(tiny_models["clf"])
    reply = server.post("/v1/classify", {"model": "clf", "input": TEXTS})
    assert reply.status == 200, reply.body
    data = reply.json()["data"]
    expected = classifier.predict_proba(TEXTS)
    got = np.asarray([[row["probabilities"][name] for name in classifier.label_names] for row in data])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [row["label"] for row in data] == classifier.predict(TEXTS)
    assert reply.json()["usage"]["prompt_tokens"] == sum(len(ids) for ids in classifier.encode_ids(TEXTS))
    features = server.post("/v1/embeddings", {"model": "clf", "input": TEXTS, "encoding_format": "float"})
    np.testing.assert_allclose(np.asarray([d["embedding"] for d in features.json()["data"]]),
                               classifier.encode(TEXTS), atol=1e-5)


def test_tag_returns_one_tag_per_word_as_the_tagger(server, tiny_models):
    tagger = load(tiny_models["pos"])
    sentences = [["the", "cat", "sat"], ["dogs", "bark"]]
    reply = server.post("/v1/tag", {"model": "pos", "input": [sentences[0], "dogs bark"]})
    assert reply.status == 200, reply.body
    data = reply.json()["data"]
    assert [row["words"] for row in data] == sentences
    assert [row["tags"] for row in data] == tagger.predict(sentences)


def test_generate_returns_the_seq2seq_outputs(server, tiny_models):
    predictor = load(tiny_models["g2p"])
    words = ["hello", "encoder", "table"]
    for beam in (1, 3):
        reply = server.post("/v1/generate", {"model": "g2p", "input": words, "beam_size": beam})
        assert reply.status == 200, reply.body
        assert [row["output"] for row in reply.json()["data"]] == predictor.predict(words, beam_size=beam)
    assert server.post("/v1/generate", {"model": "g2p", "input": ["ok"], "beam_size": 0}).status == 422
    assert server.post("/v1/generate", {"model": "g2p", "input": ["   "]}).status == 422  # no source token


def test_score_returns_anomaly_scores_codes_and_reconstructions(server, tiny_models):
    autoencoder = load(tiny_models["ae"])
    raw = load_shuttle_raw()[0][-5:].astype(np.float32)  # real rows, raw units (the server scales them)
    reply = server.post("/v1/score", {"model": "ae", "input": raw.tolist(), "return_embedding": True,
                                      "return_reconstruction": True})
    assert reply.status == 200, reply.body
    data = reply.json()["data"]
    np.testing.assert_allclose([row["score"] for row in data], autoencoder.score(raw), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([row["embedding"] for row in data], autoencoder.encode(raw), atol=1e-5)
    assert np.asarray(data[0]["reconstruction"]).shape == tuple(autoencoder.sample_shape)
    short = server.post("/v1/score", {"model": "ae", "input": [raw[0, :3].tolist()]})
    assert short.status == 422 and "(9,)" in short.message
    assert server.post("/v1/score", {"model": "ae", "input": [["a", "b"]]}).status == 422
    assert server.post("/v1/score", {"model": "ae", "input": [[[1, 2], [3]]]}).status == 422


def test_recommend_returns_the_recommenders_top_items(server, tiny_models):
    recommender = load(tiny_models["rec"])
    user = recommender.info.user_ids[0]
    reply = server.post("/v1/recommend", {"model": "rec", "user": user, "top": 5})
    assert reply.status == 200, reply.body
    expected = recommender.recommend(user, 5)
    assert [row["item"] for row in reply.json()["data"]] == [item for item, _ in expected]
    np.testing.assert_allclose([row["score"] for row in reply.json()["data"]], [s for _, s in expected], rtol=1e-5)
    history = recommender.info.item_ids[:3]
    by_history = server.post("/v1/recommend", {"model": "rec", "items": history, "top": 3})
    assert [row["item"] for row in by_history.json()["data"]] == [i for i, _ in recommender.recommend_history(
        history, 3)]
    unknown = server.post("/v1/recommend", {"model": "rec", "user": "nobody-at-all"})
    assert unknown.status == 422 and "nobody-at-all" in unknown.message
    both = server.post("/v1/recommend", {"model": "rec", "user": user, "items": history})
    assert both.status == 422 and "exactly one" in both.message


def test_a_route_the_model_cannot_serve_says_which_one_it_can(server):
    reply = server.post("/v1/classify", {"model": "minilm", "input": "x"})
    assert reply.status == 400 and "text-encoder" in reply.message and "/v1/embeddings" in reply.message
    assert server.post("/v1/tag", {"model": "ae", "input": ["a b"]}).status == 400
    assert server.post("/v1/tag", {"input": [[]]}).status == 422
    assert server.post("/v1/tokenize", {"model": "g2p", "input": "x"}).status == 400
    unknown = server.request("GET", "/v1/nothing-here")
    assert unknown.status == 404 and "/openapi.json" in unknown.message
