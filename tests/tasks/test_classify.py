"""Text classification end to end on small slices of real data with a tiny encoder (2 layers, d_model 32)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.artifacts.finetuned import HeadInfo, load_finetuned, save_finetuned
from encoderlab.cli import main
from encoderlab.errors import CheckpointError, ConfigError, InputDataError
from encoderlab.models.heads import EncoderWithHead, SequenceClassificationHead
from encoderlab.nn.lora import LoRALinear
from encoderlab.tasks.classify import ClassifyConfig, evaluate_classifier, finetune_classifier
from encoderlab.training.encoder_setup import LoRASpec, layerwise_param_groups, load_encoder, prepare_mode

from .finetune_fixtures import one_thread, tweet_rows, write_csv, write_tiny_encoder  # noqa: F401 (autouse fixture)

SMALL = dict(max_train_examples=64, max_eval_examples=32, max_test_examples=48, max_length=32, batch_size=16,
             epochs=1, progress="off")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)


@pytest.fixture(scope="module")
def tweets_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("csv") / "tweets.csv", tweet_rows(120))


def _ids(texts, tokenizer):
    batch = tokenizer([t for t in texts], 32)
    return batch.input_ids, batch.attention_mask


@pytest.mark.parametrize("mode", ["full", "frozen", "lora"])
def test_saved_model_loads_back_and_predicts_identically(tmp_path, tiny, mode):
    torch.manual_seed(0)
    encoder, tokenizer, _ = load_encoder(str(tiny))
    model = EncoderWithHead(encoder, SequenceClassificationHead(32, 3, "mean", 0.1))
    counts = prepare_mode(model, mode, LoRASpec(rank=2))
    if mode == "lora":
        assert any(isinstance(m, LoRALinear) for m in model.modules())
        for m in model.modules():  # a trained adapter: B != 0, so merging actually changes the weights
            if isinstance(m, LoRALinear):
                torch.nn.init.normal_(m.lora_b, std=0.5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if mode == "frozen":
        assert trainable == {"head.out.weight", "head.out.bias"}
    if mode == "lora":
        assert trainable - {"head.out.weight", "head.out.bias"} and all(
            "lora_" in n for n in trainable - {"head.out.weight", "head.out.bias"})
    assert counts["trainable_parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.eval()
    texts = ["great phone, love it", "worst service ever", "meh", "the train was late again today"]
    ids, mask = _ids(texts, tokenizer)
    with torch.no_grad():
        expected = model(ids, mask).softmax(-1).numpy()
    save_finetuned(model, tokenizer, tmp_path / "final", HeadInfo(task="sequence-classification", max_length=32,
                                                                  label_names=["a", "b", "c"], pooling="mean"))
    assert not [k for k in load_file(str(tmp_path / "final" / "model.safetensors")) if "lora" in k]
    classifier = TextClassifier.from_pretrained(tmp_path)  # the run dir works as well as final/
    np.testing.assert_allclose(classifier.predict_proba(texts), expected, atol=1e-5)
    assert classifier.predict(texts) == [["a", "b", "c"][k] for k in expected.argmax(-1)]
    assert classifier.predict_proba(texts[0]).shape == (1, 3)  # one string is one text, not its characters
    with pytest.raises(InputDataError, match=r"texts\[1\] is int"):
        classifier.predict_proba([texts[0], 7])


@pytest.mark.parametrize("mode", ["full", "frozen"])  # lora: see the CLI test
def test_finetune_on_catalog_slice_writes_reports(tmp_path, tiny, mode):
    cfg = ClassifyConfig(data="tweets-sentiment", init=str(tiny), mode=mode, out_dir=str(tmp_path / "run"),
                         layer_lr_decay=0.9 if mode == "full" else 1.0, **SMALL)
    metrics = finetune_classifier(cfg)
    assert metrics["train_examples"] == 64 and metrics["test_examples"] == 48
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and 0.0 <= metrics["test_macro_f1"] <= 1.0
    assert metrics["label_names"] == ["negative", "neutral", "positive"]
    saved = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert sum(map(sum, saved["confusion"])) == 48 and set(saved["per_class"]) == set(metrics["label_names"])
    assert (tmp_path / "run" / "eval_test_confusion.png").is_file()
    meta = json.loads((tmp_path / "run" / "final" / "head.json").read_text())
    assert meta["mode"] == mode and meta["max_length"] == 32 and meta["pooling"] == "mean"
    if mode == "frozen":  # a linear probe leaves the encoder's weights exactly as they were
        before, after = load_file(str(tiny / "model.safetensors")), load_file(str(tmp_path / "run" / "final" /
                                                                                  "model.safetensors"))
        assert all(torch.equal(before[k], after[k]) for k in before)
    # the reported test accuracy is reproduced by `evaluate` on the saved model
    report, _ = evaluate_classifier(tmp_path / "run", "tweets-sentiment", max_examples=48)
    assert report.accuracy == pytest.approx(metrics["test_accuracy"])


def test_layerwise_lr_decay_scales_each_depth(tiny):
    encoder, _, _ = load_encoder(str(tiny))
    model = EncoderWithHead(encoder, SequenceClassificationHead(32, 2))
    groups = layerwise_param_groups(model, decay=0.5, weight_decay=0.01)
    scale = {(g["depth"], g["weight_decay"] > 0): g["lr_scale"] for g in groups}
    assert scale[(0, True)] == 0.5 ** 3 and scale[(1, True)] == 0.5 ** 2 and scale[(3, True)] == 1.0
    # every trainable parameter is in exactly one group (the Trainer checks this and applies lr_scale)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)


def test_cli_finetune_evaluate_predict_on_a_user_csv(tmp_path, tiny, tweets_csv):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as code:
        main(["finetune", f"data={tweets_csv}", f"init={tiny}", "mode=lora", f"out_dir={out}", "split=0.6,0.2,0.2",
              "max_length=32", "batch_size=16", "progress=off", "lora.rank=4"])
    assert code.value.code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    with pytest.raises(SystemExit) as code:
        main(["evaluate", "--model", str(out), "--data", str(tweets_csv), "--output-dir", str(tmp_path / "ev")])
    assert code.value.code == 0
    evaluated = json.loads((tmp_path / "ev" / "eval_tweets_test.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"])  # split=auto: the same test rows
    assert (tmp_path / "ev" / "eval_tweets_test_confusion.png").is_file()

    inputs = tmp_path / "in.jsonl"
    texts = ["I love this!", "This is awful.", "It is a Tuesday."]
    inputs.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(out), "--input", str(inputs), "--output", str(tmp_path / "preds.jsonl")])
    assert code.value.code == 0
    preds = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text().splitlines()]
    classifier = TextClassifier.from_pretrained(out)
    probs = classifier.predict_proba(texts)
    assert [p["text"] for p in preds] == texts
    for pred, row in zip(preds, probs, strict=True):
        assert pred["label"] == classifier.label_names[row.argmax()]
        assert sum(pred["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        np.testing.assert_allclose(list(pred["probabilities"].values()), row, atol=1e-5)


# ---------------------------------------------------------------------------------------------- bad input
def _cfg(tmp_path, tiny, data, **kw):
    return ClassifyConfig(data=str(data), init=str(tiny), out_dir=str(tmp_path / "run"), **{**SMALL, **kw})


def test_csv_without_the_named_column(tmp_path, tiny, tweets_csv):
    with pytest.raises(InputDataError, match=r"tweets\.csv:1: no column 'body'"):
        finetune_classifier(_cfg(tmp_path, tiny, tweets_csv, text_column="body"))


def test_class_with_a_single_example_names_file_column_and_row(tmp_path, tiny):
    rows = tweet_rows(40)
    rows.insert(7, ("a lonely example of a class nobody else has", "sarcastic"))
    path = write_csv(tmp_path / "rare.csv", rows)
    with pytest.raises(InputDataError, match=r"rare\.csv, column 'label', row 9: class 'sarcastic' has only 1"):
        finetune_classifier(_cfg(tmp_path, tiny, path))


def test_empty_files(tmp_path, tiny):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputDataError, match=r"empty\.csv.*empty"):
        finetune_classifier(_cfg(tmp_path, tiny, tmp_path / "empty.csv"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputDataError, match=r"empty\.jsonl.*empty"):
        finetune_classifier(_cfg(tmp_path, tiny, tmp_path / "empty.jsonl"))


def test_label_unseen_in_training_at_evaluation(tmp_path, tiny, tweets_csv):
    cfg = _cfg(tmp_path, tiny, tweets_csv, split="0.6,0.2,0.2", max_train_examples=None, max_eval_examples=None,
               max_test_examples=None)
    finetune_classifier(cfg)
    rows = tweet_rows(6) + [("this one is labelled with something new", "angry")]
    path = write_csv(tmp_path / "new.csv", rows)
    with pytest.raises(InputDataError, match=r"new\.csv, column 'label', row 8: label 'angry' never occurs"):
        evaluate_classifier(tmp_path / "run", str(path))
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(path)]) == 2


def test_separate_validation_file_with_unseen_label(tmp_path, tiny, tweets_csv):
    val = write_csv(tmp_path / "val.jsonl.csv", tweet_rows(5) + [("new label here", "angry")])
    with pytest.raises(InputDataError, match=r"val\.jsonl\.csv, column 'label', row 7: label 'angry'"):
        finetune_classifier(_cfg(tmp_path, tiny, tweets_csv, validation_data=str(val)))


def test_not_a_finetuned_model(tmp_path, tiny):
    with pytest.raises(Exception, match="not a fine-tuned model"):
        load_finetuned(tiny)


def main_exit(argv):
    with pytest.raises(SystemExit) as code:
        main(argv)
    return code.value.code


def test_evaluate_finds_the_held_out_split_from_any_directory(tmp_path, tiny, tweets_csv, monkeypatch):
    """A run started with a relative data= path is evaluated on its own test rows from elsewhere too, and
    with the path spelled differently; never on every row (most of which it trained on)."""
    (tmp_path / "work").mkdir()
    local = write_csv(tmp_path / "work" / "tweets.csv", tweet_rows(120))
    monkeypatch.chdir(tmp_path / "work")
    metrics = finetune_classifier(ClassifyConfig(data="tweets.csv", init=str(tiny), out_dir="run", split="0.6,0.2,0.2",
                                                 **{**SMALL, "max_test_examples": None}))
    assert json.loads((local.parent / "run" / "final" / "head.json").read_text())["data"] == str(local)
    report, path = evaluate_classifier("run", "./tweets.csv")
    assert path.name == "eval_tweets_test.json" and len(report.confusion.sum(1)) == 3
    monkeypatch.chdir(tmp_path)
    report, path = evaluate_classifier("work/run", "work/tweets.csv")
    assert path.name == "eval_tweets_test.json"
    assert report.accuracy == pytest.approx(metrics["test_accuracy"])
    assert int(report.confusion.sum()) == metrics["test_examples"]


def test_evaluating_on_the_training_file_of_a_run_with_a_separate_test_file(tmp_path, tiny, capsys):
    rows = tweet_rows(90)
    train = write_csv(tmp_path / "train.csv", rows[:60])
    test = write_csv(tmp_path / "test.csv", rows[60:])
    finetune_classifier(_cfg(tmp_path, tiny, train, test_data=str(test), max_test_examples=None))
    # its "test split" would be rows it trained on: refuse, and say which file holds the held-out rows
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(train)]) == 2
    assert f"held-out rows came from '{test}'" in capsys.readouterr().err
    report, path = evaluate_classifier(tmp_path / "run", str(test))
    assert path.name == "eval_test_all.json" and int(report.confusion.sum()) == 30


def test_evaluate_and_predict_name_their_own_flags(tmp_path, tiny, tweets_csv, capsys):
    finetune_classifier(_cfg(tmp_path, tiny, tweets_csv))
    other = write_csv(tmp_path / "other.csv", tweet_rows(10), header=("text", "sentiment"))
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(other)]) == 2
    assert "no column 'label' in the header ['text', 'sentiment']; name the right one with --label-column" in \
        capsys.readouterr().err
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"body": "hello"}\n')
    assert main_exit(["predict", "--model", str(tmp_path / "run"), "--input", str(rows), "--output",
                      str(tmp_path / "p.jsonl")]) == 2
    assert "name the right field with --text-column" in capsys.readouterr().err
    assert not (tmp_path / "p.jsonl").exists()


def test_plain_text_file_for_classification_points_to_task_tag(tmp_path, tiny):
    (tmp_path / "tags.txt").write_text("the/DET cat/NOUN\n" * 5)
    with pytest.raises(InputDataError, match=r"plain text with no labels.*word/TAG items are for task=tag"):
        finetune_classifier(_cfg(tmp_path, tiny, tmp_path / "tags.txt"))


def test_dropped_duplicate_and_conflicting_rows_are_reported(tmp_path, tiny, capsys):
    rows = tweet_rows(60)
    flipped = [(text, "positive" if label != "positive" else "negative") for text, label in rows[:5]]
    path = write_csv(tmp_path / "dupes.csv", rows + rows[10:20] + flipped)
    metrics = finetune_classifier(_cfg(tmp_path, tiny, path, max_train_examples=None, max_eval_examples=None,
                                       max_test_examples=None))
    assert (metrics["data_rows"], metrics["data_duplicates_dropped"], metrics["data_conflicting_label_rows_dropped"],
            metrics["data_kept"]) == (75, 10, 10, 55)
    assert metrics["train_examples"] + metrics["validation_examples"] + metrics["test_examples"] == 55
    assert "dupes.csv: 75 rows, of which 10 repeat an earlier text and 10 carry a text" in capsys.readouterr().err


def test_int8_without_its_calibration_data_says_why(tmp_path, tiny, capsys):
    path = write_csv(tmp_path / "moved.csv", tweet_rows(60))
    finetune_classifier(_cfg(tmp_path, tiny, path))
    path.rename(tmp_path / "elsewhere.csv")
    (tmp_path / "in.txt").write_text("hello\n")
    assert main_exit(["predict", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "in.txt"), "--output",
                      str(tmp_path / "p.jsonl"), "--precision", "int8"]) == 2
    assert "int8 calibrates on the model's training data" in capsys.readouterr().err


def test_bad_rows_warn_is_an_option_of_finetune_and_evaluate_does_not_offer_it(tmp_path, tiny, capsys):
    """The bad-rows error says 'pass bad_rows=warn': finetune must accept it; evaluate has no such option."""
    rows = tweet_rows(60)
    path = write_csv(tmp_path / "gaps.csv", rows[:30] + [("", "positive")] + rows[30:])
    assert main_exit(["finetune", f"data={path}", f"init={tiny}", "max_steps=1", "batch_size=8", "progress=off",
                      f"out_dir={tmp_path / 'a'}"]) == 2
    assert "gaps.csv:32: empty 'text'\nfix them, or pass bad_rows=warn to skip them" in capsys.readouterr().err
    metrics = finetune_classifier(_cfg(tmp_path, tiny, path, bad_rows="warn", max_train_examples=None,
                                       max_eval_examples=None, max_test_examples=None))
    assert "skipped 1 bad rows" in capsys.readouterr().err and metrics["data_rows"] == 60
    # the run's own data: its bad rows are skipped as training skipped them (head.json's bad_rows), so the
    # held-out split is training's; another file with a bad row is refused, evaluate has no option to skip
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(path)]) == 0
    assert "skipped 1 bad rows" in capsys.readouterr().err
    from encoderlab.tasks.classify import calibration_texts  # --precision int8 calibrates on those rows too

    assert "" not in calibration_texts(TextClassifier.from_dir(tmp_path / "run"), 100)
    other = write_csv(tmp_path / "other.csv", rows[:5] + [("", "positive")])
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(other)]) == 2
    assert capsys.readouterr().err.rstrip().endswith("other.csv:7: empty 'text'\nfix them")


def test_bad_option_values_of_evaluate_and_predict_are_one_line(tmp_path, tiny, tweets_csv, capsys):
    finetune_classifier(_cfg(tmp_path, tiny, tweets_csv))
    capsys.readouterr()  # the training run's own notes
    (tmp_path / "in.txt").write_text("hello\n")
    assert main_exit(["predict", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "in.txt"), "--output",
                      str(tmp_path / "p.jsonl"), "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "error: --batch-size 0 must be at least 1\n"
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(tweets_csv),
                      "--max-examples", "0"]) == 2
    assert capsys.readouterr().err == "error: --max-examples 0 must be at least 1\n"


def test_evaluate_says_which_rows_it_scored(tmp_path, tiny, tweets_csv, capsys):
    finetune_classifier(_cfg(tmp_path, tiny, tweets_csv))
    capsys.readouterr()
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(tweets_csv)]) == 0
    assert capsys.readouterr().out.startswith(f"the held-out test rows of {tweets_csv}:\nn=")
    other = write_csv(tmp_path / "other.csv", tweet_rows(12))
    assert main_exit(["evaluate", "--model", str(tmp_path / "run"), "--data", str(other)]) == 0
    assert capsys.readouterr().out.startswith(f"every row of {other}:\nn=")


def test_predict_to_a_csv_writes_a_table_a_spreadsheet_reads(tmp_path, tiny, tweets_csv):
    import csv

    finetune_classifier(_cfg(tmp_path, tiny, tweets_csv))
    texts = ["I love this, really!", 'He said "no"\nand left.', "It is a Tuesday."]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert main_exit(["predict", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "in.jsonl"),
                      "--output", str(tmp_path / "preds.csv")]) == 0
    with (tmp_path / "preds.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    classifier = TextClassifier.from_pretrained(tmp_path / "run")
    probs = classifier.predict_proba(texts)
    assert [r["text"] for r in rows] == texts
    assert list(rows[0]) == ["text", "label", *(f"prob_{n}" for n in classifier.label_names)]
    for row, expected in zip(rows, probs, strict=True):
        assert row["label"] == classifier.label_names[expected.argmax()]
        np.testing.assert_allclose([float(row[f"prob_{n}"]) for n in classifier.label_names], expected, atol=1e-5)


def test_a_folder_without_class_subfolders_explains_the_layout(tmp_path, tiny):
    (tmp_path / "docs").mkdir()
    for i in range(6):
        (tmp_path / "docs" / f"{i}.txt").write_text(f"document number {i}", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"has no labels: put its \.txt files in one sub-folder per class"):
        finetune_classifier(_cfg(tmp_path, tiny, tmp_path / "docs"))


def test_text_the_tokenizer_cannot_read_is_pointed_out(tmp_path, tiny, capsys):
    """Chance-level scores with no hint why: a note when most word pieces are [UNK] (Ethiopic script here,
    which minilm's vocabulary does not cover), and the rate in metrics.json."""
    rows = [(f"ሰላም ለዓለም ቁጥር {'ሀለሐመሠረሰሸቀበ'[i % 10]}{i}", "a" if i % 2 else "b") for i in range(40)]
    metrics = finetune_classifier(_cfg(tmp_path, tiny, write_csv(tmp_path / "am.csv", rows)))
    assert metrics["unknown_piece_rate"] > 0.5
    assert "of the word pieces of" in capsys.readouterr().err
    english = finetune_classifier(_cfg(tmp_path / "en", tiny, write_csv(tmp_path / "en.csv", tweet_rows(40))))
    assert english["unknown_piece_rate"] < 0.05 and "of the word pieces" not in capsys.readouterr().err


def test_wrong_label_or_text_column_is_suspected_aloud(tmp_path, tiny):
    rows = tweet_rows(40)
    path = tmp_path / "t.csv"
    path.write_text("id,text,label\n" + "".join(f'{i},"{t.replace(chr(34), "")}",{lab}\n'
                                                for i, (t, lab) in enumerate(rows)), encoding="utf-8")
    with pytest.raises(InputDataError, match=r"40 different labels in 40 rows: is label_column=id the right column"):
        finetune_classifier(_cfg(tmp_path, tiny, path, label_column="id"))
    with pytest.raises(InputDataError, match=r"of its 40 rows, \d+ repeat an earlier text and \d+ have a text that "
                                             r"occurs with different labels \(is the text column the right one\?\)"):
        finetune_classifier(_cfg(tmp_path, tiny, path, text_column="label", label_column="id"))


# ---------------------------------------------------------------------------- long texts (long_text=chunk)
LONG_TEXTS = ["great phone, love it",
              "The minister said the budget would cut taxes for small firms and raise spending on schools. " * 4,
              "The band's new album went straight to number one, and the tour sold out in a day. " * 6, ""]


def test_chunked_classifier_reloads_and_predicts_the_same(tmp_path, tiny):
    from encoderlab.artifacts.classifier import save_window_pool
    from encoderlab.artifacts.text_encoder import text_windows
    from encoderlab.models.windowed import WindowedClassifier
    from encoderlab.nn.windows import LongText, WindowPool

    torch.manual_seed(0)
    encoder, tokenizer, _ = load_encoder(str(tiny))
    model = WindowedClassifier(encoder, SequenceClassificationHead(32, 3, "mean", 0.1), WindowPool("attention", 32))
    torch.nn.init.normal_(model.window_pool.score.weight)  # a trained attention: windows weigh differently
    torch.nn.init.normal_(model.head.out.weight)
    model.eval()
    reading = LongText("chunk", window=24, stride=16, pooling="attention")
    windows, counts = text_windows(tokenizer, LONG_TEXTS, reading)
    assert counts[0] == 1 and counts[1] > 3 and counts[2] > 3 and counts[3] == 1
    batch = tokenizer.pad(windows)
    with torch.no_grad():
        expected = model(batch.input_ids, batch.attention_mask, torch.tensor(counts)).softmax(-1).numpy()
    info = HeadInfo(task="sequence-classification", max_length=24, label_names=["a", "b", "c"], pooling="mean",
                    long_text=reading.to_dict())
    save_finetuned(EncoderWithHead(encoder, model.head), tokenizer, tmp_path / "final", info)
    save_window_pool(model.window_pool, tmp_path / "final")
    classifier = TextClassifier.from_dir(tmp_path)
    assert classifier.long_text == reading
    np.testing.assert_allclose(classifier.predict_proba(LONG_TEXTS, batch_size=4), expected, atol=1e-5)
    from encoderlab.compression.quantize import quantize_int8

    int8 = quantize_int8(classifier, LONG_TEXTS[:3])  # keeps how it reads long texts, learned attention included
    assert int8.long_text == reading
    assert torch.equal(int8.window_pool.score.weight, classifier.window_pool.score.weight)
    chunked_vectors = classifier.encode(LONG_TEXTS)
    # texts that fit in one window: exactly what truncation gives them
    classifier.read_long_texts("truncate")
    truncated = classifier.predict_proba(LONG_TEXTS)
    np.testing.assert_allclose(truncated[[0, 3]], expected[[0, 3]], atol=1e-6)
    np.testing.assert_array_equal(classifier.encode(LONG_TEXTS)[[0, 3]], chunked_vectors[[0, 3]])
    assert np.abs(truncated[1:3] - expected[1:3]).max() > 1e-3  # the long ones are read differently
    # a damaged save says what is missing
    (tmp_path / "final" / "window_pool.safetensors").unlink()
    with pytest.raises(CheckpointError, match="window_pooling=attention but window_pool.safetensors is missing"):
        TextClassifier.from_dir(tmp_path)


@pytest.mark.slow
def test_finetune_with_chunking_trains_saves_and_predicts_whole_texts(tmp_path, tiny):
    out = tmp_path / "run"
    cfg = ClassifyConfig(data="bbc-news", init=str(tiny), mode="full", out_dir=str(out), long_text="chunk",
                         window=32, stride=24, window_pooling="attention", lr=1e-3,
                         **{**SMALL, "max_train_examples": 32, "max_eval_examples": 16, "max_test_examples": 16,
                            "batch_size": 8})
    metrics = finetune_classifier(cfg)
    assert metrics["train_windows"] > 5 * 32  # whole articles, not their first 32 pieces
    assert json.loads((out / "final" / "head.json").read_text())["long_text"] == {
        "mode": "chunk", "window": 32, "stride": 24, "pooling": "attention"}
    before = load_file(str(tiny / "model.safetensors"))
    after = load_file(str(out / "final" / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the encoder trained through the windows
    assert load_file(str(out / "final" / "window_pool.safetensors"))["score.weight"].abs().sum() > 0
    # evaluate and predict read the saved model's way without being told
    report, path = evaluate_classifier(out, "bbc-news", max_examples=16)
    assert report.accuracy == pytest.approx(metrics["test_accuracy"])
    assert json.loads(path.read_text())["long_text"]["mode"] == "chunk"
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(t for t in LONG_TEXTS if t) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(out), "--input", str(texts), "--output", str(tmp_path / "p.jsonl")])
    assert code.value.code in (0, None)
    chunked = [json.loads(line)["probabilities"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    classifier = TextClassifier.from_dir(out)
    probs = classifier.predict_proba([t for t in LONG_TEXTS if t])
    np.testing.assert_allclose([list(row.values()) for row in chunked], probs, atol=1e-6)
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(out), "--input", str(texts), "--output", str(tmp_path / "t.jsonl"),
              "--long-text", "truncate"])
    assert code.value.code in (0, None)
    truncated = [json.loads(line)["probabilities"] for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert truncated[0] == chunked[0] and truncated[1] != chunked[1]  # short text the same, long ones not


@pytest.mark.parametrize(("overrides", "message"), [
    ({"long_text": "chunk", "window": 3}, "window=3 is too short"),
    ({"long_text": "chunk", "stride": 200}, r"stride=200 must be between 1 and window - 2 = 126"),
    ({"long_text": "chunk", "window": 64, "stride": 0}, "stride=0 must be between 1 and window - 2 = 62"),
    ({"window": 256}, "only apply to long_text=chunk; add long_text=chunk"),
    ({"long_text": "pages"}, "long_text='pages' is unknown"),
])
def test_bad_long_text_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ClassifyConfig(data="bbc-news", out_dir="unused", **overrides)


def test_long_text_settings_are_checked_against_the_encoder_and_the_task(tmp_path, tiny):
    from encoderlab.tasks.tag import TagConfig

    with pytest.raises(ConfigError, match="long_text=chunk is for task=classify and task=embed"):
        TagConfig(data="peoples-daily-1998", out_dir="unused", long_text="chunk")
    cfg = ClassifyConfig(data=str(write_csv(tmp_path / "t.csv", tweet_rows(40))), init=str(tiny),
                         out_dir=str(tmp_path / "run"), long_text="chunk", window=100, progress="off")
    with pytest.raises(ConfigError, match="window=100 is longer than the encoder's 64 positions"):
        finetune_classifier(cfg)
