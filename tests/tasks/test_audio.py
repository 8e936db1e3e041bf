"""The audio task end to end on the bundled clips (real speech): the run directory, metrics that mean what they
say, the saved classifier reloading to the same predictions, noise at a given SNR, and the control metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab.artifacts.audio import INFO_FILE, AudioClassifier
from encoderlab.data.audio import load_labelled_audio, split_by_group
from encoderlab.errors import CheckpointError, ConfigError, InputDataError
from encoderlab.evaluation.audio import add_noise, mfcc_statistics, pair_accuracy
from encoderlab.nn.spectrogram import SpectrogramConfig
from encoderlab.tasks.audio import AudioConfig, train_audio_classifier
from encoderlab.training import run_task

torch.set_num_threads(1)
CLIPS = Path(__file__).parents[1] / "data" / "audio" / "asterisk"


def table_by_prompt(directory: Path) -> Path:
    """A .csv of the bundled clips grouped by prompt (digit), so a digit is never on two sides of the split."""
    rows = [f"{p.resolve()},{p.parent.name},{p.stem}" for p in sorted(CLIPS.glob("*/*.flac"))]
    path = directory / "clips.csv"
    path.write_text("path,label,group\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio")
    out = tmp / "run"
    metrics = run_task(train_audio_classifier, AudioConfig, None, [
        f"data={table_by_prompt(tmp)}", f"out_dir={out}", "max_steps=12", "batch_size=8", "threads=1",
        "eval_every=6", "split=0.5,0.25,0.25", "progress=off", "model.channels=[8,16,16]", "lr=0.003",
        "noise_snrs=[10]", "train_noise_snr=[5,30]", "level_dbfs=-26"])
    return out, metrics, tmp / "clips.csv"


@pytest.mark.slow
def test_run_directory_and_metrics(trained):
    out, metrics, _ = trained
    for name in ("config.yaml", "log.jsonl", "metrics.json", "test_confusion.png", "spectrograms.png",
                 "audio_report.md", f"final/{INFO_FILE}", "final/model.safetensors"):
        assert (out / name).is_file(), name
    assert metrics["train_clips"] == 20 and metrics["val_clips"] == 10 and metrics["test_clips"] == 10
    confusion = np.array(metrics["test_confusion"])
    assert confusion.shape == (5, 5) and confusion.sum() == 10
    assert metrics["test_accuracy"] == pytest.approx(np.trace(confusion) / 10)
    for key in ("test_accuracy", "test_macro_f1", "test_control_accuracy", "mfcc_test_accuracy", "level_test_accuracy",
                "mfcc_test_control_accuracy", "test_accuracy_snr10", "mfcc_test_accuracy_snr10",
                "level_test_control_accuracy_snr10"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["control_n"] == 4  # two test digits x (en, es)
    assert metrics["mfcc_C"] in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    report = (out / "audio_report.md").read_text()
    assert "en-vs-es (control)" in report and "SNR 10 dB" in report
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]


@pytest.mark.slow
def test_saved_model_reloads_and_predicts_the_same(trained, tmp_path):
    out, metrics, table = trained
    clf = AudioClassifier.from_dir(out)  # the run directory: final/ is found
    data = load_labelled_audio(CLIPS, 8000, max_seconds=4.0)
    proba = clf.predict_proba(data.paths)
    assert proba.shape == (40, 5) and np.allclose(proba.sum(1), 1, atol=1e-5)
    # from files == from arrays; one by one == batched
    np.testing.assert_allclose(clf.predict_proba(data.waves), proba, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(data.paths[3]), proba[3:4], atol=1e-5)
    vectors = clf.encode(data.paths)
    assert vectors.shape == (40, 16) and vectors.dtype == np.float32
    # a save of the reloaded model reloads to the same predictions
    again = AudioClassifier.from_dir(clf.save(tmp_path / "copy"))
    np.testing.assert_allclose(again.predict_proba(data.waves), proba, atol=1e-6)
    assert again.predict(data.paths[:2]) == clf.predict(data.paths[:2])
    assert set(clf.predict(data.paths)) <= set(clf.label_names)
    # the run's test clips, predicted by the reloaded model, give the run's test accuracy
    _, _, test = split_by_group(load_labelled_audio(table, 8000, max_seconds=4.0), (0.5, 0.25, 0.25), seed=0)
    predicted = clf.predict(test.paths)
    truth = [test.label_names[y] for y in test.labels]
    assert np.mean([p == t for p, t in zip(predicted, truth, strict=True)]) == pytest.approx(metrics["test_accuracy"])
    # inputs are level-normalised as in training: a louder copy of a clip gets the same prediction
    np.testing.assert_allclose(clf.predict_proba([data.waves[5] * 3]), proba[5:6], atol=1e-5)
    # arrays at another rate are resampled
    wave16k = np.repeat(data.waves[0], 2)  # a crude 16 kHz version of clip 0
    assert clf.predict_proba(wave16k, sample_rate=16000).shape == (1, 5)


@pytest.mark.slow
def test_onnx_export_matches_pytorch_on_real_clips(trained, tmp_path):
    import onnxruntime as ort

    from encoderlab.compression.export_onnx_audio import export_audio_onnx
    from encoderlab.models.audio import pad_waves

    clf = AudioClassifier.from_dir(trained[0])
    report = export_audio_onnx(clf, tmp_path / "audio.onnx")
    assert report.max_abs_logits < 1e-4 and report.architecture == "cnn"
    waves = clf.load(sorted(CLIPS.glob("*/*.flac")))  # 40 clips of other lengths than the export's example
    batch, lengths = pad_waves([torch.from_numpy(w) for w in waves])
    session = ort.InferenceSession(str(tmp_path / "audio.onnx"), providers=["CPUExecutionProvider"])
    logits, embedding = session.run(None, {"waves": batch.numpy(), "lengths": lengths.numpy()})
    np.testing.assert_allclose(logits, clf.logits_of_waves(waves), atol=1e-3)
    np.testing.assert_allclose(embedding, clf.encode(waves), atol=1e-3)


def test_bad_inputs_and_directories(tmp_path):
    with pytest.raises(CheckpointError, match="not an audio classifier"):
        AudioClassifier.from_dir(tmp_path)
    with pytest.raises(ConfigError, match="channels='both'"):
        AudioConfig(channels="both")
    with pytest.raises(InputDataError, match="does not exist"):
        run_task(train_audio_classifier, AudioConfig, None, [f"data={tmp_path / 'nothing'}",
                                                             f"out_dir={tmp_path / 'run'}"])
    assert not (tmp_path / "run").exists()  # a failed start leaves nothing behind


def test_damaged_saved_models_are_named(tmp_path):
    from encoderlab.artifacts.audio import AudioClassifierInfo
    from encoderlab.config import to_dict
    from encoderlab.models.audio import AudioEncoderConfig, AudioModel

    cfg = AudioEncoderConfig(channels=[4, 8], n_classes=2)
    info = AudioClassifierInfo(model=to_dict(cfg), label_names=["a", "b"], sample_rate=8000, max_seconds=None)
    directory = AudioClassifier(AudioModel(cfg), info).save(tmp_path / "m")
    wave = np.sin(np.arange(4000, dtype=np.float32) / 5)
    assert AudioClassifier.from_dir(directory).predict_proba(wave).shape == (1, 2)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        AudioClassifier.from_dir(directory)
    (directory / INFO_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        AudioClassifier.from_dir(directory)
    with pytest.raises(CheckpointError, match="2 label names for a model of 3 classes"):
        AudioClassifier(AudioModel(AudioEncoderConfig(channels=[4], n_classes=3)), info)


def test_noise_has_the_requested_snr():
    rng = np.random.default_rng(0)
    wave = (0.2 * np.sin(np.arange(80000) / 7)).astype(np.float32)
    for snr in (20.0, 10.0, 0.0):
        noisy = add_noise(wave, snr, rng)
        noise = (noisy - wave).astype(np.float64)
        measured = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise ** 2))
        assert measured == pytest.approx(snr, abs=0.1)
    assert np.array_equal(add_noise(np.zeros(10, np.float32), 0.0, rng), np.zeros(10))


def test_pair_accuracy_decides_among_the_pair_only():
    y = [0, 0, 1, 1, 2]
    scores = np.array([[0.4, 0.1, 0.5], [0.2, 0.3, 0.5], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0, 0, 1]])
    # clip 0: class 2 wins overall, but among (0, 1) class 0 does: right; clip 1: 1 beats 0: wrong; ...
    assert pair_accuracy(y, scores, [0, 1]) == (0.5, 4)


def test_mfcc_statistics_shape_and_silence():
    waves = [np.zeros(4000, np.float32), (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)]
    stats = mfcc_statistics(waves, SpectrogramConfig(), 13)
    assert stats.shape == (2, 26)
    assert np.allclose(stats[0, 13:], 0, atol=1e-6)  # silence: every frame alike, no spread
    assert (stats[1, 13:] > 0).all()


@pytest.mark.slow
def test_registry_and_cli_use_the_saved_model(trained, tmp_path, capsys):
    from encoderlab.artifacts.registry import describe, load
    from encoderlab.cli import main

    def run_cli(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        return exit_info.value.code

    out = trained[0]
    assert describe(out).startswith("audio-classifier")
    clf = load(out)
    assert isinstance(clf, AudioClassifier)
    files = [str(p) for p in sorted(CLIPS.glob("*/digits-2.flac"))]
    assert run_cli("audio-predict", "--model", str(out), *files, "--output", str(tmp_path / "labels.jsonl")) == 0
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == clf.predict(files)
    assert rows[0]["path"] == files[0] and set(rows[0]["probabilities"]) == set(clf.label_names)
    assert run_cli("audio-encode", "--model", str(out), *files, "--output", str(tmp_path / "vectors.npy")) == 0
    np.testing.assert_allclose(np.load(tmp_path / "vectors.npy"), clf.encode(files), atol=1e-6)
    assert run_cli("audio-predict", "--model", str(tmp_path), *files) == 2
    assert "not an audio classifier" in capsys.readouterr().err
    # --input FOLDER, as `predict` and `encode` take it (audio-encode refused the option)
    assert run_cli("audio-encode", "--model", str(out), "--input", str(CLIPS / "en"), "--output",
                   str(tmp_path / "folder.npy")) == 0
    folder = sorted(str(p) for p in (CLIPS / "en").iterdir())
    np.testing.assert_allclose(np.load(tmp_path / "folder.npy"), clf.encode(folder), atol=1e-6)
    capsys.readouterr()
    assert run_cli("audio-predict", "--model", str(out), "--input", str(CLIPS / "en")) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(folder)


@pytest.mark.slow
def test_the_generic_encode_command_takes_an_audio_run(trained, tmp_path):
    """`encoderlab encode --model AUDIO_RUN --input files.txt` dispatches on the saved kind."""
    from encoderlab.cli import main

    out, _, _ = trained
    paths = sorted(CLIPS.glob("*/*.flac"))[:3]
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(str(p.resolve()) for p in paths) + "\n")
    try:
        main(["encode", "--model", str(out), "--input", str(listing), "--output", str(tmp_path / "v.npy")])
    except SystemExit as exc:
        assert exc.code in (0, None)
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), AudioClassifier.from_dir(out).encode(paths), atol=1e-6)
