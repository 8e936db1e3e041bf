"""The generic commands on audio, multimodal and image-text runs, in-process: `predict`, `evaluate`,
`robustness` and `export` dispatch on the saved kind, give the models' own answers and the numbers the training
runs printed, and refuse bad input with one clear line (exit code 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab.artifacts.registry import load
from encoderlab.cli import main
from media_runs import CLIPS, EMOJI_IMAGES, SAMPLE, train_media_runs
from tasks.finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401

pytestmark = pytest.mark.slow


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


@pytest.fixture(scope="module")
def media(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("media")
    return train_media_runs(root, write_tiny_encoder(root / "bert", minilm_dir))


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_predict_audio_files_folders_and_lists(media, tmp_path, capsys):
    clf = load(media["cnn"])
    files = [CLIPS / "en" / "digits-1.flac", CLIPS / "fr" / "digits-4.flac"]
    capsys.readouterr()
    assert run_cli("predict", "--model", media["cnn"], *files) == 0
    rows = json_lines(capsys.readouterr().out)
    assert [r["path"] for r in rows] == [str(f) for f in files] and [r["label"] for r in rows] == clf.predict(files)
    np.testing.assert_allclose([[r["probabilities"][n] for n in clf.label_names] for r in rows],
                               clf.predict_proba(files), atol=1e-6)
    assert run_cli("predict", "--model", media["transformer"], "--input", CLIPS / "es",
                   "--output", tmp_path / "p.csv") == 0
    table = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    assert len(table) == 8 and set(table[0]) == {"path", "label", *(f"prob_{n}" for n in clf.label_names)}
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(str(f.resolve()) for f in files) + "\n", encoding="utf-8")
    assert run_cli("predict", "--model", media["cnn"], "--input", listing, "--output", tmp_path / "l.jsonl") == 0
    assert [r["label"] for r in json_lines((tmp_path / "l.jsonl").read_text())] == clf.predict(files)
    capsys.readouterr()
    assert run_cli("predict", "--model", media["cnn"], SAMPLE) == 2  # not audio: named, with the fix
    assert "clothing_reviews_sample.csv" in capsys.readouterr().err
    assert run_cli("predict", "--model", media["cnn"], "--labels", "a,b", files[0]) == 2


def test_predict_multimodal_rows_and_missing_columns(media, tmp_path, capsys):
    model = load(media["table"])
    assert run_cli("predict", "--model", media["table"], "--input", SAMPLE, "--output", tmp_path / "p.csv") == 0
    table = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    np.testing.assert_allclose([[float(r[f"prob_{n}"]) for n in model.label_names] for r in table],
                               model.predict_proba(SAMPLE), atol=1e-5)
    assert [r["row"] for r in table[:3]] == ["0", "1", "2"]
    pa_csv = pytest.importorskip("pyarrow.csv")
    pa_parquet = pytest.importorskip("pyarrow.parquet")
    pa_parquet.write_table(pa_csv.read_csv(SAMPLE), tmp_path / "rows.parquet")
    assert run_cli("predict", "--model", media["table"], "--input", tmp_path / "rows.parquet",
                   "--output", tmp_path / "q.jsonl") == 0
    assert [r["label"] for r in json_lines((tmp_path / "q.jsonl").read_text())] == [r["label"] for r in table]
    (tmp_path / "no_age.csv").write_text("Review Text,Class Name\nlovely,Knits\n", encoding="utf-8")
    capsys.readouterr()
    assert run_cli("predict", "--model", media["table"], "--input", tmp_path / "no_age.csv") == 2
    assert "'Age'" in capsys.readouterr().err


def test_predict_image_text_zero_shot(media, capsys):
    model = load(media["emoji"])
    capsys.readouterr()
    assert run_cli("predict", "--model", media["emoji"], "--input", EMOJI_IMAGES) == 0
    rows = json_lines(capsys.readouterr().out)
    images = sorted(EMOJI_IMAGES.glob("*.png"))
    assert len(rows) == len(images) and set(rows[0]["probabilities"]) == set(model.categories)
    assert [r["label"] for r in rows] == model.classify(images)
    assert run_cli("predict", "--model", media["emoji"], images[0], images[1], "--labels", "Flags,Food & Drink") == 0
    rows = json_lines(capsys.readouterr().out)
    assert {r["label"] for r in rows} <= {"Flags", "Food & Drink"}
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert run_cli("predict", "--model", media["emoji"], images[0], "--labels", "Flags") == 2  # one label


def test_evaluate_gives_the_runs_own_test_numbers(media, tmp_path, monkeypatch, capsys):
    for run in ("cnn", "transformer"):
        metrics = metrics_of(media[run])
        assert run_cli("evaluate", "--model", media[run]) == 0
        saved = json.loads((media[run] / "evaluations" / "eval_clips_test.json").read_text())
        assert saved["n"] == metrics["test_clips"]
        assert saved["accuracy"] == pytest.approx(metrics["test_accuracy"])
        assert saved["macro_f1"] == pytest.approx(metrics["test_macro_f1"])
        assert saved["control_accuracy"] == pytest.approx(metrics["test_control_accuracy"])
    assert "control (en-vs-es" in capsys.readouterr().out
    assert run_cli("evaluate", "--model", media["cnn"] / "final", "--data", CLIPS, "--split", "all") == 0
    assert json.loads((media["cnn"] / "evaluations" / "eval_asterisk_all.json").read_text())["n"] == 40
    assert run_cli("evaluate", "--model", media["cnn"], "--data", CLIPS, "--split", "test") == 2  # not its data
    import shutil

    shutil.copytree(CLIPS / "en", tmp_path / "clips" / "en")
    shutil.copytree(CLIPS / "fr", tmp_path / "clips" / "de")  # a class the model never learned
    capsys.readouterr()
    assert run_cli("evaluate", "--model", media["cnn"], "--data", tmp_path / "clips") == 2
    assert "['de']" in capsys.readouterr().err
    table = metrics_of(media["table"])
    assert run_cli("evaluate", "--model", media["table"]) == 0
    saved = json.loads((media["table"] / "evaluations" / "eval_clothing_reviews_sample_test.json").read_text())
    assert saved["accuracy"] == pytest.approx(table["test_accuracy"]) and saved["n"] == table["test_n"]
    assert saved["auroc"] == pytest.approx(table["test_auroc"])
    monkeypatch.setenv("ENCODERLAB_CACHE", str(media["emoji"].parent / "cache"))
    emoji = metrics_of(media["emoji"])
    capsys.readouterr()
    assert run_cli("evaluate", "--model", media["emoji"]) == 0
    scored = json.loads(capsys.readouterr().out)
    for key in ("text_to_image_recall@1", "image_to_text_recall@5", "zero_shot_category_accuracy"):
        assert scored[key] == pytest.approx(emoji[key]), key


def test_robustness_of_an_audio_run_matches_its_noisy_test_metrics(media, capsys):
    metrics = metrics_of(media["cnn"])
    assert run_cli("robustness", "--model", media["cnn"], "--levels", "10") == 0
    saved = json.loads((media["cnn"] / "evaluations" / "robustness_clips_test.json").read_text())
    clean, noisy = saved["rows"]
    assert clean["noise"] == "clean" and noisy["noise"] == 10
    assert clean["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert noisy["accuracy"] == pytest.approx(metrics["test_accuracy_snr10"])
    assert noisy["control_accuracy"] == pytest.approx(metrics["test_control_accuracy_snr10"])
    assert (media["cnn"] / "evaluations" / "robustness_clips_test.png").is_file()
    assert run_cli("robustness", "--model", media["cnn"]) == 0  # default: 20, 10, 0 dB
    assert "| clean |" in capsys.readouterr().out


@pytest.mark.parametrize("run", ["cnn", "transformer"])
def test_export_audio_to_onnx_matches_pytorch_on_real_clips(media, tmp_path, run):
    import onnxruntime as ort

    from encoderlab.models.audio import pad_waves

    assert run_cli("export", "--model", media[run], "--output", tmp_path / "onnx") == 0
    info = json.loads((tmp_path / "onnx" / "onnx_export.json").read_text())
    clf = load(media[run])
    assert info["architecture"] == run and info["label_names"] == clf.label_names
    assert info["prepare"]["sample_rate"] == 8000 and info["max_abs_logits"] <= 1e-4
    waves = clf.load(sorted(CLIPS.glob("*/*.flac")))  # 40 real clips, lengths other than the export's example
    batch, lengths = pad_waves([torch.from_numpy(w) for w in waves])
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits, embedding = session.run(None, {"waves": batch.numpy(), "lengths": lengths.numpy()})
    assert np.abs(logits - clf.logits_of_waves(waves)).max() < 1e-4
    assert np.abs(embedding - clf.encode_waves(waves)).max() < 1e-4
    one = session.run(None, {"waves": batch[:1, :int(lengths[0])].numpy(), "lengths": lengths[:1].numpy()})[0]
    np.testing.assert_allclose(one, logits[:1], atol=1e-5)  # alone == in a padded batch
