"""The saved-model registry: every kind is recognised from its directory or its run, loads, and directories
written by the previous version (before the contract, commit 75fd8e7) still load and give the same outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from encoderlab.artifacts.finetuned import HeadInfo, read_head_info
from encoderlab.artifacts.registry import Encodes, Predicts, Scores, describe, detect, identify, kinds, load
from encoderlab.errors import CheckpointError

PREVIOUS = Path(__file__).resolve().parents[1] / "data" / "previous_layout"
EXPECTED = json.loads((PREVIOUS / "expected.json").read_text(encoding="utf-8"))


def test_every_kind_is_listed_once_and_the_text_encoder_is_tried_last():
    names = [kind.name for kind in kinds()]
    assert names[-1] == "text-encoder" and len(names) == len(set(names))
    assert {"classifier", "tagger", "seq2seq", "autoencoder"} <= set(names)


@pytest.mark.parametrize("run, kind", [("classifier", "classifier"), ("tagger", "tagger"),
                                       ("autoencoder", "autoencoder"), ("seq2seq", "seq2seq")])
def test_a_run_and_its_final_dir_are_the_same_saved_model(run, kind):
    for path in (PREVIOUS / run, PREVIOUS / run / "final"):
        found = identify(path)
        assert found.kind.name == kind and found.directory == PREVIOUS / run / "final"
    assert describe(PREVIOUS / run).startswith(kind)


def test_an_alias_is_a_text_encoder(minilm_dir):
    found = detect("minilm")
    assert found.kind.name == "text-encoder" and found.directory == minilm_dir


def test_previous_version_classifier_loads_with_the_same_outputs():
    classifier = load(PREVIOUS / "classifier")
    assert isinstance(classifier, Predicts) and isinstance(classifier, Encodes)
    np.testing.assert_allclose(classifier.predict_proba(EXPECTED["texts"]), EXPECTED["classifier_proba"], atol=1e-6)
    assert classifier.info.mode == "lora" and classifier.info.lora["merged"] is True
    # its encoder alone, as `encoderlab encode --model RUN` takes it
    encoder = identify("minilm").kind.load(PREVIOUS / "classifier" / "final")
    np.testing.assert_allclose(encoder.encode(EXPECTED["texts"]), EXPECTED["classifier_encoder"], atol=1e-6)


def test_previous_version_tagger_seq2seq_and_autoencoder_load_with_the_same_outputs():
    assert load(PREVIOUS / "tagger").predict(EXPECTED["sentences"]) == EXPECTED["tagger_tags"]
    assert load(PREVIOUS / "seq2seq").predict(EXPECTED["sources"]) == EXPECTED["seq2seq_outputs"]
    autoencoder = load(PREVIOUS / "autoencoder")
    assert isinstance(autoencoder, Scores) and isinstance(autoencoder, Encodes)
    rows = np.asarray(EXPECTED["rows"], dtype=np.float32)
    np.testing.assert_allclose(autoencoder.encode(rows), EXPECTED["autoencoder_codes"], atol=1e-6)
    np.testing.assert_allclose(autoencoder.score(rows), EXPECTED["autoencoder_scores"], rtol=1e-6)
    assert autoencoder.info.columns and autoencoder.info.kind == "tabular"


def test_head_json_round_trips_and_keeps_keys_it_does_not_know(tmp_path):
    shutil.copytree(PREVIOUS / "classifier" / "final", tmp_path / "m")
    raw = json.loads((tmp_path / "m" / "head.json").read_text())
    raw["from_the_future"] = {"x": 1}
    (tmp_path / "m" / "head.json").write_text(json.dumps(raw))
    info = read_head_info(tmp_path / "m")
    assert info.extra == {"from_the_future": {"x": 1}}
    assert HeadInfo.from_dict(info.to_dict()) == info
    assert info.to_dict()["label_names"] == raw["label_names"]


@pytest.mark.parametrize("broken, message", [
    ('{"task": "sequence-classification"}', "has no label_names, max_length"),
    ('{"task": "ranking", "label_names": ["a", "b"], "max_length": 8}', "task='ranking' is unknown"),
    ("[1, 2]", "holds list, not an object"),
    ("{not json", "is not valid JSON"),
])
def test_a_damaged_head_json_is_named_with_the_fix(tmp_path, broken, message):
    shutil.copytree(PREVIOUS / "classifier" / "final", tmp_path / "m")
    (tmp_path / "m" / "head.json").write_text(broken)
    with pytest.raises(CheckpointError, match=message):
        load(tmp_path / "m")


def test_what_is_not_a_saved_model_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist and is not a known alias"):
        identify(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckpointError, match="is a file"):
        identify(tmp_path / "notes.txt")
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "config.yaml").write_text("task: classify\n")
    with pytest.raises(CheckpointError, match=r"has not finished.*encoderlab finetune --resume"):
        identify(tmp_path / "running")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no saved model encoderlab knows.*classifier:"):
        identify(tmp_path / "empty")
    assert detect(tmp_path / "empty") is None and detect(tmp_path / "notes.txt") is None
