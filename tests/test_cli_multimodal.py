"""`encoderlab multimodal`, `image-text` and the multimodal-predict / -encode / -evaluate commands, in-process."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from encoderlab.artifacts.registry import Encodes, Predicts, describe, identify, load
from encoderlab.cli import main
from encoderlab.errors import CheckpointError
from tasks.finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "clothing_reviews_sample.csv"
EMOJI = DATA / "emoji"


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "bert", minilm_dir)


def test_multimodal_train_predict_encode_evaluate(tmp_path, tiny_text, capsys):
    run = tmp_path / "run"
    assert run_cli("multimodal", f"data={SAMPLE}", "text_columns=[Review Text]",
                   "categorical_columns=[Class Name]", "numeric_columns=[Age]", "label_column=Rating",
                   "model.mode=gated", f"text_model={tiny_text}", "max_steps=2", "batch_size=16", "threads=1",
                   "baselines=false", "max_length=32", "progress=off", f"out_dir={run}") == 0
    assert describe(run).startswith("multimodal")
    assert run_cli("multimodal-predict", "--model", str(run), "--input", str(SAMPLE),
                   "--output", str(tmp_path / "p.csv")) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    assert len(rows) == 240 and set(rows[0]) == {"label", "p_1", "p_2", "p_3", "p_4", "p_5"}
    probs = np.array([[float(r[f"p_{k}"]) for k in range(1, 6)] for r in rows])
    np.testing.assert_allclose(probs, load(run).predict_proba(SAMPLE), atol=1e-6)
    assert run_cli("multimodal-encode", "--model", str(run), "--input", str(SAMPLE),
                   "--output", str(tmp_path / "v.npy")) == 0
    assert np.load(tmp_path / "v.npy").shape[0] == 240
    capsys.readouterr()
    assert run_cli("multimodal-evaluate", "--model", str(run), "--data", str(SAMPLE)) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 240 and 0 <= metrics["macro_f1"] <= 1
    assert run_cli("multimodal-predict", "--model", str(tiny_text), "--input", str(SAMPLE),
                   "--output", str(tmp_path / "x.csv")) == 2  # a text encoder: a clear error, exit code 2


def test_image_text_train_and_encode(tmp_path, tiny_text, monkeypatch):
    shutil.copytree(EMOJI, tmp_path / "cache" / "emoji-datasource-google-16.0.0")
    monkeypatch.setenv("ENCODERLAB_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert run_cli("image-text", f"text_model={tiny_text}", "model.image.kind=cnn", "model.image.image_size=16",
                   "model.image.cnn_channels=[8]", "model.d_embed=16", "test_fraction=0.3", "batch_size=8",
                   "max_steps=2", "threads=1", "progress=off", f"out_dir={run}") == 0
    assert describe(run).startswith("image-text")
    folder = EMOJI / "img" / "google" / "64"
    assert run_cli("multimodal-encode", "--model", str(run), "--input", str(folder),
                   "--output", str(tmp_path / "img.npy")) == 0
    (tmp_path / "t.txt").write_text("grinning face\nred apple\n", encoding="utf-8")
    assert run_cli("multimodal-encode", "--model", str(run), "--texts", str(tmp_path / "t.txt"),
                   "--output", str(tmp_path / "txt.npy")) == 0
    assert np.load(tmp_path / "img.npy").shape == (39, 16) and np.load(tmp_path / "txt.npy").shape == (2, 16)


def check_kind_contract(run: Path, kind: str, marker: str) -> None:
    """identify() finds the run and its final/; a damaged or incomplete marker file is named."""
    assert identify(run).kind.name == kind and identify(run / "final").kind.name == kind
    assert identify(run).directory == run / "final"
    info = run / "final" / marker
    saved = info.read_text(encoding="utf-8")
    info.write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match=marker):
        load(run)
    info.write_text("{}", encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"{marker} has no"):
        load(run)
    info.write_text(saved, encoding="utf-8")


def test_both_kinds_follow_the_registry_contract(tmp_path, tiny_text, monkeypatch):
    table_run = tmp_path / "table"
    assert run_cli("multimodal", f"data={SAMPLE}", "text_columns=[Review Text]", "numeric_columns=[Age]",
                   "label_column=Recommended IND", "model.mode=late", f"text_model={tiny_text}", "max_steps=1",
                   "batch_size=16", "threads=1", "baselines=false", "max_length=16", "progress=off",
                   f"out_dir={table_run}") == 0
    check_kind_contract(table_run, "multimodal", "multimodal.json")
    model = load(table_run)
    assert model.kind == "multimodal" and isinstance(model, Encodes) and isinstance(model, Predicts)
    shutil.copytree(EMOJI, tmp_path / "cache" / "emoji-datasource-google-16.0.0")
    monkeypatch.setenv("ENCODERLAB_CACHE", str(tmp_path / "cache"))
    image_run = tmp_path / "images"
    assert run_cli("image-text", f"text_model={tiny_text}", "model.image.kind=cnn", "model.image.image_size=16",
                   "model.image.cnn_channels=[8]", "model.d_embed=16", "test_fraction=0.3", "batch_size=8",
                   "max_steps=1", "threads=1", "progress=off", f"out_dir={image_run}") == 0
    check_kind_contract(image_run, "image-text", "image_text.json")
    clip = load(image_run)
    assert clip.kind == "image-text" and isinstance(clip, Encodes)
    folder = EMOJI / "img" / "google" / "64"
    np.testing.assert_array_equal(clip.encode(folder), clip.encode_images(folder))
