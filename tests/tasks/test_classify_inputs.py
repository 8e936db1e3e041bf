"""What a user's prediction file may hold (empty lines keep their row but get no label), and fine-tuning called
from Python (same config, same bits); tiny encoder, real tweets."""

import csv
import json

import pytest

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.errors import InputDataError
from encoderlab.tasks.classify import ClassifyConfig, finetune_classifier, predict_file

from .finetune_fixtures import one_thread, tweet_rows, write_csv, write_tiny_encoder  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny):
    data = write_csv(tmp_path_factory.mktemp("csv") / "tweets.csv", tweet_rows(120))
    out = tmp_path_factory.mktemp("run")
    finetune_classifier(ClassifyConfig(data=str(data), init=str(tiny), out_dir=str(out), max_train_examples=64,
                                       max_eval_examples=32, max_test_examples=48, max_length=32, batch_size=16,
                                       epochs=1, progress="off"))
    return out


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_empty_lines_keep_their_row_and_get_no_label(run, tmp_path, capsys, suffix):
    """An empty line was labelled like any text ("" got a class at 0.62) where the server refuses it with a 422;
    dropping it instead would shift every later row against the input."""
    (tmp_path / "in.txt").write_text("great phone\n\n   \nthe train was late again\n", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    assert predict_file(run, tmp_path / "in.txt", out) == 4
    assert "2 empty text(s)" in capsys.readouterr().err
    classifier = TextClassifier.from_dir(run)
    expected = classifier.predict(["great phone", "the train was late again"])
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["label"] for r in rows] == [expected[0], None, None, expected[1]]
        assert rows[1]["probabilities"] is None and rows[2]["text"] == "   "
    else:
        with out.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["label"] for r in rows] == [expected[0], "", "", expected[1]]


def test_a_file_of_empty_lines_is_refused(run, tmp_path):
    (tmp_path / "in.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputDataError, match="holds only empty texts"):
        predict_file(run, tmp_path / "in.txt", tmp_path / "out.jsonl")


def test_two_fine_tunes_from_python_in_one_process_give_the_same_bits(tiny, tmp_path):
    """The CLI entrypoint seeds before the head is drawn; a call of finetune_classifier from Python used not to,
    so a second call in the same process started from another head."""
    from safetensors.torch import load_file

    cfg = dict(init=str(tiny), max_train_examples=32, max_eval_examples=16, max_test_examples=16,
               max_length=32, batch_size=16, epochs=1, progress="off", mode="full")
    data = tmp_path / "tweets.csv"
    write_csv(data, tweet_rows(80))
    for name in ("a", "b"):
        finetune_classifier(ClassifyConfig(data=str(data), out_dir=str(tmp_path / name), **cfg))
    a, b = (load_file(str(tmp_path / n / "final" / "model.safetensors")) for n in "ab")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
