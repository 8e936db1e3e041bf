"""Robustness to noise on real data: typos in real tweets and Chinese reviews, Gaussian noise on MNIST digits,
and a whole `evaluate_robustness` run on a freshly trained autoencoder."""

import json
import random

import numpy as np
import pytest
import torch

from encoderlab.data.arrays import load_mnist
from encoderlab.data.catalog import load_dataset
from encoderlab.errors import InputDataError
from encoderlab.evaluation.noise import (
    add_typos,
    array_robustness,
    classifier_robustness,
    encoder_robustness,
    noisy_texts,
)


@pytest.fixture(scope="module")
def tweets():
    test = load_dataset("tweets-sentiment").test
    return test.texts[:200], test.labels[:200], test.label_names


def test_typos_hit_the_requested_share_of_characters_and_keep_the_script():
    text = "这个酒店的服务非常好，房间也很干净。" * 20
    for rate in (0.05, 0.2):
        noisy = add_typos(text, rate, random.Random(0), alphabet=text)
        changed = sum(a != b for a, b in zip(noisy, text, strict=False)) + abs(len(noisy) - len(text))
        assert changed > 0 and set(noisy) <= set(text)  # replacements come from the text's own characters
    english = "the prime minister said the government would cut taxes"
    assert noisy_texts([english], 0.0) == [english]
    heavy = noisy_texts([english] * 50, 0.5, seed=3)
    assert heavy == noisy_texts([english] * 50, 0.5, seed=3)  # seeded: the same noise every run
    assert all(t.count(" ") == english.count(" ") for t in heavy)  # spaces are never edited
    assert np.mean([t != english for t in heavy]) == 1.0
    with pytest.raises(InputDataError, match="typo rate"):
        noisy_texts([english], 1.5)


def test_classifier_accuracy_is_read_against_the_clean_predictions(tweets):
    texts, labels, names = tweets
    words = {"negative": ("hate", "bad", "sad", "worst"), "positive": ("love", "good", "great", "happy")}

    def keyword_classifier(batch):  # a real (if simple) classifier of real tweets
        probs = np.full((len(batch), len(names)), 0.1)
        for i, text in enumerate(batch):
            lower = text.lower()
            for k, name in enumerate(names):
                probs[i, k] += sum(w in lower for w in words.get(name, ()))
            probs[i, names.index("neutral")] += 0.05
        return probs

    rows = classifier_robustness(keyword_classifier, texts, labels, names, rates=[0.2, 0.05])
    assert [r["noise"] for r in rows] == [0.0, 0.05, 0.2]  # level 0 added, levels sorted
    clean = keyword_classifier(texts).argmax(1)
    assert rows[0]["accuracy"] == pytest.approx(np.mean(clean == np.array(labels)))
    assert rows[0]["flipped"] == 0.0 and 0 < rows[1]["flipped"] < rows[2]["flipped"]


@pytest.mark.slow
def test_encoder_cosine_falls_with_typos_but_noisy_texts_still_find_their_own(minilm, tweets):
    texts = tweets[0][:40]
    torch.set_num_threads(1)
    rows = encoder_robustness(minilm.encode, texts, rates=[0.05, 0.2])
    assert rows[0]["mean_cosine"] == pytest.approx(1.0) and rows[0]["retrieval_at_1"] == 1.0
    assert 1.0 > rows[1]["mean_cosine"] > rows[2]["mean_cosine"] > 0.3
    assert rows[2]["worst_cosine"] <= rows[2]["p5_cosine"] <= rows[2]["mean_cosine"]
    assert rows[1]["retrieval_at_1"] >= 0.9


def test_a_text_written_twice_is_found_either_way():
    """Two identical lines embed identically; finding the other copy is finding the text, not a miss."""
    table = {t: np.random.default_rng(i).normal(size=8) for i, t in enumerate(["good day", "bad day", "rain"])}
    rows = encoder_robustness(lambda texts: np.stack([table[t] for t in texts]), ["good day", "rain", "good day"],
                              [0.0])
    assert rows[0]["retrieval_at_1"] == 1.0


def test_array_noise_on_digits_identity_copies_the_noise_and_an_oracle_removes_it():
    x = load_mnist().test.x[:300]
    copy = array_robustness(lambda z: z, x, images=True, sigmas=[0.1, 0.3])
    for row in copy:
        assert row["recon_mse_to_clean"] == pytest.approx(row["noisy_input_mse"])
    assert copy[1]["noisy_input_mse"] < copy[2]["noisy_input_mse"] < 0.3 ** 2  # clipping to [0, 1] removes some
    oracle = array_robustness(lambda z: x, x, images=True, sigmas=[0.3])
    assert oracle[-1]["recon_mse_to_clean"] == 0.0
    # anomaly AUROC: ones (label 1) against zeros, scored by ink; noise blurs the difference
    y = load_mnist().test.y[:300]
    keep = (y == 0) | (y == 1)
    rows = array_robustness(lambda z: z, x[keep], True, [0.5], score=lambda z: -z.reshape(len(z), -1).sum(1),
                            anomaly_labels=(y[keep] == 1).astype(int))
    assert rows[0]["auroc"] > 0.95 and rows[1]["auroc"] < rows[0]["auroc"]


def test_bad_levels_are_clear_errors():
    with pytest.raises(InputDataError, match=">= 0"):
        array_robustness(lambda z: z, np.zeros((2, 3), np.float32), False, sigmas=[-0.1])
    for level in ("nan", "inf"):  # nan used to reach the noise code and end in a ValueError traceback
        with pytest.raises(InputDataError, match="numbers >= 0"):
            array_robustness(lambda z: z, np.zeros((2, 3), np.float32), False, sigmas=[0.1, float(level)])


def test_max_examples_below_one_is_an_error_and_writes_nothing(tmp_path):
    """--max-examples 0 used to score nothing and overwrite the last results with empty rows."""
    from encoderlab.tasks.robustness import evaluate_robustness

    for bad in (0, -5):
        with pytest.raises(InputDataError, match=f"--max-examples {bad}: give at least 1"):
            evaluate_robustness("minilm", "x.txt", [0.1], output_dir=tmp_path / "o", max_examples=bad)
    assert not (tmp_path / "o").exists()
    (tmp_path / "a.csv").write_text("x\n1\n")  # used to end in a FileExistsError traceback
    with pytest.raises(InputDataError, match="--output-dir '.*a.csv' is a file; name a new or existing directory"):
        evaluate_robustness("minilm", "x.txt", [0.1], output_dir=tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text() == "x\n1\n"


@pytest.mark.slow
def test_autoencoder_run_end_to_end(tmp_path):
    from encoderlab.cli import main
    from encoderlab.tasks.robustness import evaluate_robustness

    out = tmp_path / "dae"
    with pytest.raises(SystemExit) as info:
        main(["autoencode", "data=mnist", "model.kind=mlp", "noise=gaussian", "noise_level=0.3", f"out_dir={out}",
              "train_limit=2000", "eval_limit=200", "max_steps=200", "lr=3e-3", "batch_size=64", "eval_every=0",
              "progress=off"])
    assert info.value.code == 0
    result = evaluate_robustness(out, None, [0.2, 0.4], max_examples=150)
    assert result.kind == "autoencoder" and result.json_path == out / "evaluations" / "robustness_mnist_test.json"
    saved = json.loads(result.json_path.read_text())
    assert [r["noise"] for r in saved["rows"]] == [0.0, 0.2, 0.4]
    clean, _, heavy = (r["recon_mse_to_clean"] for r in saved["rows"])
    assert clean < 0.05 and clean < heavy < saved["rows"][2]["noisy_input_mse"]  # it denoises, not copies
    assert result.plot_path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputDataError, match="needs texts"):
        evaluate_robustness("minilm", None)


def test_a_mistyped_model_path_is_named_as_such(tmp_path):
    """Without --data, a path that does not exist used to be told to pass --data, as if it were a text encoder."""
    from encoderlab.errors import CheckpointError
    from encoderlab.tasks.robustness import evaluate_robustness

    with pytest.raises(CheckpointError, match=r"'runs/typo' does not exist and is not a known alias.*check the path"):
        evaluate_robustness("runs/typo", None, output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_on_a_users_text_file(tmp_path, capsys, tweets):
    from encoderlab.cli import main

    (tmp_path / "mine.txt").write_text("\n".join(tweets[0][:30]) + "\n\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["robustness", "--model", "minilm", "--data", str(tmp_path / "mine.txt"), "--levels", "0.1",
              "--output-dir", str(tmp_path / "out")])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "| noise | mean_cosine | p5_cosine | worst_cosine | retrieval_at_1 |" in out and "\n| 0.1 | 0." in out
    saved = json.loads((tmp_path / "out" / "robustness_mine.json").read_text())
    assert saved["kind"] == "text encoder" and len(saved["rows"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["robustness", "--model", "minilm", "--data", str(tmp_path / "mine.txt"), "--levels", "0.1,x"])
    assert info.value.code == 2 and "comma-separated numbers" in capsys.readouterr().err


def test_a_table_autoencoder_run_names_its_file_after_the_csv_stem(tmp_path):
    """A run trained on `flowers.csv` used to write robustness_flowers.csv_test.json."""
    import shutil
    from pathlib import Path

    from encoderlab.tasks.autoencode import AutoencodeConfig, train_autoencoder
    from encoderlab.tasks.robustness import evaluate_robustness
    from encoderlab.training import run_task

    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "iris.csv", tmp_path / "flowers.csv")
    run_task(train_autoencoder, AutoencodeConfig, None,
             [f"data={tmp_path / 'flowers.csv'}", "label_column=species", "model.latent_dim=2", "max_steps=10",
              f"out_dir={tmp_path / 'ae'}", "progress=off", "eval_every=0", "warmup_steps=0", "threads=1",
              "plots=false"])
    result = evaluate_robustness(tmp_path / "ae", None, [0.5], max_examples=50)
    assert result.json_path == tmp_path / "ae" / "evaluations" / "robustness_flowers_test.json"
    assert result.plot_path.name == "robustness_flowers_test.png" and result.json_path.is_file()
    (tmp_path / "flowers.csv").unlink()  # its training data gone: named as such, with the fix
    with pytest.raises(InputDataError, match=r"its test split is read from its training data '.*flowers.csv', "
                                             r"which is not there.*pass --data FILE"):
        evaluate_robustness(tmp_path / "ae", None, [0.5], max_examples=50)
