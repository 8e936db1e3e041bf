"""Seq2seq runs on a few hundred real CMUdict pairs and on a user's CSV / JSONL pairs, through `run_task`:
the model learns, the saved run predicts what the trained model predicted, a killed run resumes to the same
weights, and bad input fails with an error that names the file, the column and the fix."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from encoderlab.data.pairs import Vocabulary, load_cmudict, load_pairs, split_by_source
from encoderlab.errors import CheckpointError, ConfigError, InputDataError
from encoderlab.evaluation.sequences import SequenceScores, edit_distance
from encoderlab.models.transformer_seq2seq import TransformerSeq2SeqConfig
from encoderlab.tasks.seq2seq import (
    PairDataset,
    Seq2SeqConfig,
    Seq2SeqPredictor,
    predict_seq2seq,
    print_predictions,
    read_inputs,
    sample_sources,
    seq2seq_command,
    train_seq2seq,
)
from encoderlab.tasks.seq2seq_scoring import summary_lines
from encoderlab.training import run_task
from encoderlab.training.checkpoint import list_checkpoints
from encoderlab.training.metrics_log import read_log
from encoderlab.training.sampler import EpochBatchSampler

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["threads=1", "progress=off", "batch_size=32", "lr=1e-2", "warmup_steps=10", "log_every=10",
        "model.d_embed=32", "model.d_hidden=48", "max_eval_examples=100", "max_test_examples=200", "beam_size=3"]


@pytest.fixture(scope="module")
def g2p_run(tmp_path_factory):
    """600 CMUdict training pairs, 160 steps, dropout on, a checkpoint every 40 steps."""
    out = tmp_path_factory.mktemp("runs") / "g2p"
    metrics = seq2seq_command(CONFIGS / "seq2seq-g2p.yaml",
                              [*TINY, f"out_dir={out}", "max_train_examples=600", "max_steps=160", "eval_every=80",
                               "save_every=40", "keep_last=10", "model.dropout=0.1"])
    return out, metrics


def test_cmudict_pairs_split_by_word_and_strip_stress():
    pairs = load_cmudict()
    assert len(set(pairs.sources)) > 120_000
    refs = pairs.references()
    assert refs["read"] == ["R EH D", "R IY D"] and refs["aalborg"] == ["AO L B AO R G", "AA L B AO R G"]
    assert all(not any(c.isdigit() for c in t) for t in pairs.targets[:5000])  # stress digits removed
    assert "AH0" in load_cmudict(stress=True).references()["a"][0].split()
    train, val, test = split_by_source(pairs, (0.9, 0.05, 0.05), seed=0)
    words = [set(p.sources) for p in (train, val, test)]
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])  # alternates stay together
    assert len(train) + len(val) + len(test) == len(pairs)
    assert abs(len(words[2]) / sum(map(len, words)) - 0.05) < 0.001
    assert split_by_source(pairs, (0.9, 0.05, 0.05), seed=0)[2].sources == test.sources  # deterministic
    sample = sample_sources(test, 300, seed=0)
    assert len(sample.references()) == 300 and len({w[0] for w in sample.sources}) > 15  # not just the a-words
    assert sample.sources == sample_sources(test, 300, seed=0).sources


def test_scores_count_any_correct_reference_and_edits_to_the_closest():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance([], ["A", "B"]) == 2
    scores = SequenceScores()
    scores.add(["R", "IY", "D"], [["R", "EH", "D"], ["R", "IY", "D"]])  # the second pronunciation: correct
    scores.add(["K", "AE"], [["K", "AE", "T"]])  # one deletion against 3 reference tokens
    assert scores.exact_match == 0.5 and scores.token_error_rate == 1 / 6


def test_a_tiny_g2p_run_learns_and_beats_the_untrained_model(g2p_run):
    out, metrics = g2p_run
    assert metrics == json.loads((out / "metrics.json").read_text())
    losses = [r["loss"] for r in read_log(out) if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["untrained_test_exact_match"] == 0 and metrics["untrained_test_token_error_rate"] > 0.9
    assert metrics["test_exact_match"] > 0.04 and metrics["test_token_error_rate"] < 0.6
    assert metrics["test_token_error_rate"] < metrics["one_to_one_test_token_error_rate"]
    assert metrics["test_token_accuracy"] > 0.5
    assert 0 <= metrics["one_to_one_test_exact_match"] < 0.05
    assert metrics["test_sources"] == 200 and metrics["train_pairs"] == 600
    evals = [r for r in read_log(out) if "eval_exact_match" in r]
    assert [r["step"] for r in evals] == [80, 160] and evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    for name in ("final/model.safetensors", "final/vocab.json", "final/config.yaml", "config.yaml"):
        assert (out / name).is_file(), name


def test_saved_run_predicts_exactly_what_the_trained_model_scored(g2p_run):
    out, metrics = g2p_run
    g2p = Seq2SeqPredictor.from_run(out)
    _, _, test = split_by_source(load_pairs("cmudict"), (0.9, 0.05, 0.05), seed=0)  # the run's test split
    refs = list(sample_sources(test, 200, seed=0).references().items())
    outputs = g2p.predict([w for w, _ in refs])
    exact = sum(o in targets for o, (_, targets) in zip(outputs, refs, strict=True)) / len(refs)
    assert exact == metrics["test_exact_match"]  # the reloaded weights are the trained ones
    beam = g2p.predict([w for w, _ in refs], beam_size=3)
    assert sum(o in t for o, (_, t) in zip(beam, refs, strict=True)) / len(refs) == metrics["test_beam3_exact_match"]
    assert predict_seq2seq(out, ["Hello", "  cat "]) == g2p.predict(["hello", "cat"])  # lowercased, trimmed
    assert all(set(p.split()) <= set(g2p.target_vocab.tokens) for p in outputs)


def test_greedy_equals_beam_of_one_on_the_trained_model(g2p_run):
    g2p = Seq2SeqPredictor.from_run(g2p_run[0])
    source = torch.tensor([g2p.source_vocab.encode(w) + [0] * (12 - len(w))
                           for w in ("phonetic", "encoder", "lab", "seq", "attention", "pack")])
    greedy = g2p.model.greedy(source, 25)
    assert greedy == g2p.model.beam_search(source, 25, beam_size=1)
    assert len({len(g) for g in greedy}) > 2


def test_killed_run_resumes_to_bitwise_identical_weights(g2p_run, tmp_path):
    out, _ = g2p_run
    killed = tmp_path / "killed"
    shutil.copytree(out, killed)
    # As if killed at step 90: checkpoints after step 80, final/ and metrics.json never written.
    later = [p for p in list_checkpoints(killed) if int(p.name.split("-")[1]) > 80]
    assert len(later) == 2
    for path in [*later, killed / "final"]:
        shutil.rmtree(path)
    (killed / "metrics.json").unlink()
    resumed = seq2seq_command(None, [], resume=killed)
    for name, tensor in load_file(out / "final" / "model.safetensors").items():
        assert tensor.equal(load_file(killed / "final" / "model.safetensors")[name]), name
    assert resumed["test_exact_match"] == json.loads((out / "metrics.json").read_text())["test_exact_match"]


def test_user_csv_and_jsonl_pairs_end_to_end(tmp_path):
    # A user's own task, char to char: transliterate a word into its reversed spelling in capitals.
    words = sorted(set(load_cmudict().sources[5000:5400]))
    csv = tmp_path / "pairs.csv"
    csv.write_text("word,reading\n" + "".join(f"{w},{w[::-1].upper()}\n" for w in words), encoding="utf-8")
    out = tmp_path / "user"
    metrics = run_task(train_seq2seq, Seq2SeqConfig, None,
                       [*TINY, f"data={csv}", "source_column=word", "target_column=reading", f"out_dir={out}",
                        "max_steps=40", "split=0.8,0.1,0.1", "model.input_feeding=false", "model.kind=gru"])
    assert metrics["train_pairs"] == round(len(words) * 0.8)
    assert metrics["test_token_error_rate"] < min(1.0, metrics["untrained_test_token_error_rate"])
    info = json.loads((out / "final" / "vocab.json").read_text())
    assert info["target"]["mode"] == "char" and info["lowercase"] is False
    outputs = predict_seq2seq(out, ["abc", "zebra"])
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)

    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps({"src": w, "tgt": w.upper()}) + "\n" for w in words), encoding="utf-8")
    pairs = load_pairs(str(jsonl), "src", "tgt")
    assert pairs.sources[:2] == words[:2] and pairs.targets[0] == words[0].upper()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_inputs_fail_with_the_file_the_problem_and_the_fix(tmp_path):
    good = write(tmp_path / "p.csv", "word,reading\ncat,K AE T\n")
    with pytest.raises(InputDataError, match=r"p\.csv:1: no column 'source' in the header.*source_column="):
        load_pairs(str(good))
    with pytest.raises(InputDataError, match=r"p\.csv:1: no column 'ipa'.*target_column="):
        load_pairs(str(good), "word", "ipa")
    empty_target = write(tmp_path / "e.tsv", "word\treading\ncat\tK AE T\ndog\t \n")
    with pytest.raises(InputDataError, match=r"e\.tsv:3: empty 'reading'.*source and a target"):
        load_pairs(str(empty_target), "word", "reading")
    jsonl = write(tmp_path / "p.jsonl", '{"word": "cat", "reading": "K AE T"}\n{"word": "dog"}\n')
    with pytest.raises(InputDataError, match=r"p\.jsonl:2: no 'reading' field.*target_column="):
        load_pairs(str(jsonl), "word", "reading")
    with pytest.raises(InputDataError, match=r"p\.jsonl:1: no 'source' field.*source_column="):
        load_pairs(str(jsonl))
    with pytest.raises(InputDataError, match=r"\.txt.*\.csv, \.tsv, \.jsonl"):
        load_pairs(str(write(tmp_path / "p.txt", "cat K AE T\n")))
    with pytest.raises(InputDataError, match="neither cmudict nor an existing file"):
        load_pairs(str(tmp_path / "missing.csv"))
    with pytest.raises(InputDataError, match="no pairs"):
        load_pairs(str(write(tmp_path / "h.csv", "source,target\n")))

    with pytest.raises(ConfigError, match="stress=true applies to data=cmudict only"):
        Seq2SeqConfig(data=str(good), stress=True)
    with pytest.raises(ConfigError, match="beam_size=0"):
        Seq2SeqConfig(beam_size=0)
    with pytest.raises(ConfigError, match="unknown config key 'model.hidden' for RecurrentConfig.*d_hidden"):
        run_task(train_seq2seq, Seq2SeqConfig, None, ["model.hidden=3", f"out_dir={tmp_path / 'x'}"])
    out = tmp_path / "bad-run"
    with pytest.raises(InputDataError, match="no column 'source'"):
        run_task(train_seq2seq, Seq2SeqConfig, None, [f"data={good}", f"out_dir={out}"])
    assert not out.exists()  # a run that failed on its input leaves nothing behind
    with pytest.raises(CheckpointError, match="not a seq2seq run"):
        Seq2SeqPredictor.from_run(tmp_path)
    other = tmp_path / "ae-run"  # another task's run: used to fail on "unknown config key 'model.input_shape'"
    other.mkdir()
    (other / "config.yaml").write_text("data: mnist\nmodel:\n  input_shape: []\n  latent_dim: 10\n")
    with pytest.raises(ConfigError, match=r"--resume .*ae-run: not a seq2seq run"):
        seq2seq_command(None, ["max_steps=50"], resume=other)


def test_cli_helpers_read_a_file_of_sources_and_print_tab_separated_outputs(g2p_run, tmp_path, capsys):
    words = write(tmp_path / "words.txt", "\ufeffcat\n\n dog \n")
    assert read_inputs(words) == ["cat", " dog "]
    outputs = predict_seq2seq(g2p_run[0], read_inputs(words), beam_size=2)
    print_predictions(["cat", " dog "], outputs)
    assert capsys.readouterr().out == f"cat\t{outputs[0]}\n dog \t{outputs[1]}\n"
    with pytest.raises(InputDataError, match="no non-blank lines"):
        read_inputs(write(tmp_path / "blank.txt", "\n  \n"))
    # a pairs file used to be read line by line: its header 'word,phones' was converted as a source
    pairs = write(tmp_path / "pairs.csv", "word,phones\ncat,K AE T\ndog,D AO G\n")
    with pytest.raises(InputDataError, match=r"is a \.csv file; --input reads a \.txt with one source per line"):
        read_inputs(pairs)
    assert read_inputs(pairs, column="word") == ["cat", "dog"]
    jsonl = write(tmp_path / "pairs.jsonl", '{"w": "cat", "p": "K AE T"}\n')
    assert read_inputs(jsonl, column="w") == ["cat"]


def test_prediction_input_errors(g2p_run):
    g2p = Seq2SeqPredictor.from_run(g2p_run[0])
    with pytest.raises(InputDataError, match=r"input 2 \(' '\) is empty"):  # counted from 1, as a user does
        g2p.predict(["cat", " "])
    with pytest.raises(InputDataError, match=r"input 1 \(''\) is empty"):
        g2p.predict([""])
    with pytest.raises(InputDataError, match="list of strings"):
        g2p.predict("cat")
    with pytest.raises(CheckpointError, match=r"'runs/no-such-run' does not exist; check the path"):
        Seq2SeqPredictor.from_run("runs/no-such-run")
    assert "<unk>" in Vocabulary.from_dict(g2p.source_vocab.to_dict()).decode(g2p.source_vocab.encode("ç"))


def test_cli_trains_and_predicts(tmp_path, capsys, monkeypatch):
    from encoderlab.cli import main

    def cli(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        return info.value.code

    out = tmp_path / "run"
    assert cli("seq2seq", "--config", str(CONFIGS / "seq2seq-g2p.yaml"), *TINY, f"out_dir={out}",
               "max_train_examples=200", "max_steps=20", "eval_every=0") == 0
    err = capsys.readouterr().err
    assert f"look at the run: encoderlab report {out}" in err
    metrics = json.loads((out / "metrics.json").read_text())
    greedy = next(line for line in err.splitlines() if line.startswith("test (200 sources), greedy:"))
    assert f"word accuracy {100 * metrics['test_exact_match']:.1f}%" in greedy
    assert "test, beam 3: BLEU" in err and "copy-source baseline: BLEU" in err
    assert 0 < metrics["train_cpu_seconds"] < metrics["cpu_seconds"]
    words = write(tmp_path / "words.txt", "cat\ndog\n")
    assert cli("seq2seq-predict", "--model", str(out), "bird", "--input", str(words), "--beam-size", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["bird", "cat", "dog"]
    assert all(line.split("\t")[1].strip() for line in lines)  # a phoneme string for each
    beam = Seq2SeqPredictor.from_dir(out).predict(["bird", "cat"], beam_size=3, length_penalty=1.5)
    assert cli("seq2seq-predict", "--model", str(out), "bird", "cat", "--beam", "3", "--length-penalty", "1.5") == 0
    assert [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()] == beam
    assert cli("seq2seq-predict", "--model", str(out), "cat", "--beam", "0") == 2
    assert "--beam-size 0 must be at least 1" in capsys.readouterr().err
    assert cli("seq2seq-predict", "--model", str(out), "cat", "--beam", "2", "--length-penalty", "-1") == 2
    assert "--length-penalty -1.0 must be >= 0" in capsys.readouterr().err
    assert cli("seq2seq-predict", "--model", str(out)) == 2
    assert "nothing to predict" in capsys.readouterr().err
    pairs = write(tmp_path / "pairs.csv", "source,target\ncat,K AE T\n")  # a pairs file: its source column
    assert cli("seq2seq-predict", "--model", str(out), "--input", str(pairs)) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["cat"]
    assert cli("encode", "--model", str(out), "--input", str(words), "--output", str(tmp_path / "x.npy")) == 2
    assert f"a seq2seq model. Use `encoderlab seq2seq-predict --model {out}" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")  # under torchrun only rank 0 prints the closing summary
    assert cli("seq2seq", "--config", str(CONFIGS / "seq2seq-g2p.yaml"), *TINY, f"out_dir={tmp_path / 'rank1'}",
               "max_train_examples=100", "max_steps=2", "eval_every=0", "warmup_steps=1") == 0
    assert "look at the run" not in capsys.readouterr().err


def test_robustness_to_misspelt_sources(g2p_run):
    """`encoderlab robustness` on a seq2seq run: level 0 reproduces the run's own test score on the same sampled
    words; typos change outputs and raise the phoneme error rate."""
    from encoderlab.tasks.robustness import evaluate_robustness

    out, metrics = g2p_run
    result = evaluate_robustness(out, None, [0.3], max_examples=200)
    clean, noisy = result.rows
    assert result.kind == "seq2seq" and result.json_path.parent == out / "evaluations"
    assert clean["exact_match"] == pytest.approx(metrics["test_exact_match"])
    assert clean["token_error_rate"] == pytest.approx(metrics["test_token_error_rate"])
    assert noisy["changed"] > 0.3 and noisy["token_error_rate"] > clean["token_error_rate"]
    # the run's final/ as --model: the results still go to the run's evaluations/, where the report reads them
    again = evaluate_robustness(out / "final", None, [0.3], max_examples=20)
    assert again.json_path.parent == out / "evaluations" and not (out / "final" / "evaluations").exists()


def test_robustness_on_a_users_pairs_with_other_column_names(g2p_run, tmp_path):
    """`--data` pairs whose columns differ from the run's: --text-column / --label-column name them, and a
    wrong name is an error quoting those options (not the training override source_column=)."""
    from encoderlab.tasks.robustness import evaluate_robustness

    out, _ = g2p_run
    pairs = tmp_path / "mine.jsonl"
    pairs.write_text('{"w": "cat", "p": "K AE T"}\n{"w": "dog", "p": "D AO G"}\n', encoding="utf-8")
    with pytest.raises(InputDataError, match=r"no 'word' field .*--text-column$"):
        evaluate_robustness(out, str(pairs), [0.1], text_column="word", output_dir=tmp_path / "o")
    with pytest.raises(InputDataError, match=r"no 'target' field .*--label-column$"):
        evaluate_robustness(out, str(pairs), [0.1], text_column="w", output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    result = evaluate_robustness(out, str(pairs), [0.1], text_column="w", label_column="p",
                                 output_dir=tmp_path / "o")
    assert [r["noise"] for r in result.rows] == [0.0, 0.1] and result.json_path.is_file()


def test_robustness_when_the_runs_training_file_is_gone(tmp_path):
    from encoderlab.tasks.robustness import evaluate_robustness

    pairs = write(tmp_path / "pairs.csv", "w,d\n" + "".join(f"n{i},{i}\n" for i in range(60)))
    run_task(train_seq2seq, Seq2SeqConfig, None, [*TINY, f"data={pairs}", "source_column=w", "target_column=d",
                                                   "max_steps=2", "warmup_steps=0", "eval_every=0",
                                                   f"out_dir={tmp_path / 'run'}"])
    pairs.unlink()  # used to say "data '...pairs.csv' is neither cmudict nor an existing file", as if --data were wrong
    with pytest.raises(InputDataError, match=r"run: its test split is read from its training data '.*pairs.csv', "
                                             r"which is not there.*pass --data FILE"):
        evaluate_robustness(tmp_path / "run", None, [0.1])


BIBLE_SLICE = Path(__file__).resolve().parents[1] / "data" / "bible-es-en-slice.tsv"
TINY_TRANSFORMER = ["threads=1", "progress=off", f"data={BIBLE_SLICE}", "source_column=spanish",
                    "target_column=english", "group_column=chapter", "source_tokens=subword",
                    "target_tokens=subword", "subword_vocab_size=400", "split=0.8,0.1,0.1", "model.kind=transformer",
                    "model.d_model=64", "model.n_heads=2", "model.d_ff=128", "model.n_encoder_layers=1",
                    "model.n_decoder_layers=1", "model.max_positions=160", "model.share_embeddings=true",
                    "model.dropout=0.0", "model.attention_dropout=0.0", "batch_size=16", "lr=5e-3",
                    "warmup_steps=10", "log_every=10", "max_steps=200", "beam_size=2", "length_penalty=0.6",
                    "max_output_length=40", "label_smoothing=0.1"]


@pytest.mark.slow
def test_a_tiny_transformer_translates_and_its_saved_model_scores_the_same(tmp_path):
    from encoderlab.evaluation.sequences import bleu_chrf

    out = tmp_path / "es-en"
    metrics = seq2seq_command(None, [*TINY_TRANSFORMER, f"out_dir={out}"])
    losses = [r["loss"] for r in read_log(out) if "loss" in r]
    assert losses[-1] < 0.75 * losses[0]
    for name in ("test_bleu", "test_chrf", "copy_source_test_bleu", "copy_source_test_chrf", "test_beam2_chrf"):
        assert 0 <= metrics[name] <= 100, name
    assert metrics["test_chrf"] > metrics["untrained_test_chrf"]
    assert metrics["sacrebleu_signatures"]["bleu_signature"].startswith("nrefs:1|case:mixed")
    lines = summary_lines(metrics)  # what `encoderlab seq2seq` prints at the end
    assert lines[0].startswith(f"test ({metrics['test_sources']} sources), greedy: BLEU {metrics['test_bleu']:.1f}  "
                               f"chrF {metrics['test_chrf']:.1f}  word accuracy")
    assert any(line.startswith(f"copy-source baseline: BLEU {metrics['copy_source_test_bleu']:.1f}") for line in lines)
    assert any(line.startswith("test, beam 2: BLEU") for line in lines)
    info = json.loads((out / "final" / "vocab.json").read_text())
    assert info["source"]["mode"] == "subword" and info["source"] == info["target"]  # one joint vocabulary
    # the saved model reloads and translates exactly as the trained one scored
    pairs = load_pairs(str(BIBLE_SLICE), "spanish", "english", group_column="chapter")
    test = split_by_source(pairs, (0.8, 0.1, 0.1), seed=0)[2]
    refs = test.references()
    translator = Seq2SeqPredictor.from_dir(out)
    outputs = translator.predict(list(refs))
    scores = bleu_chrf(outputs, list(refs.values()))
    assert scores["chrf"] == pytest.approx(metrics["test_chrf"], abs=1e-9)
    assert scores["bleu"] == pytest.approx(metrics["test_bleu"], abs=1e-9)
    beam = translator.predict(list(refs), beam_size=2, length_penalty=0.6)
    assert bleu_chrf(beam, list(refs.values()))["chrf"] == pytest.approx(metrics["test_beam2_chrf"], abs=1e-9)
    assert predict_seq2seq(out, ["  Y dijo Dios "]) == translator.predict(["Y dijo Dios"])
    with pytest.raises(InputDataError, match="max_positions=160"):
        translator.predict(["palabra " * 400])


def test_transformer_config_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="share_embeddings=true needs one joint vocabulary"):
        Seq2SeqConfig(model=TransformerSeq2SeqConfig(share_embeddings=True))
    with pytest.raises(ConfigError, match=r"set model.max_positions=\d+ or more"):
        seq2seq_command(None, [*TINY_TRANSFORMER, f"out_dir={tmp_path / 'short'}", "model.max_positions=20"])


def test_the_saved_seq2seq_kind_encodes_and_loads_through_the_registry(g2p_run):
    from encoderlab.artifacts.registry import Encodes, Predicts, identify, load

    out, _ = g2p_run
    model = load(out)
    assert isinstance(model, Seq2SeqPredictor) and isinstance(model, Encodes) and isinstance(model, Predicts)
    assert identify(out / "final").kind.name == "seq2seq"
    vectors = model.encode(["cat", "catalogue", "Cat "])
    assert vectors.shape == (3, 2 * 48) and vectors.dtype == "float32"
    assert (vectors[0] == vectors[2]).all() and not (vectors[0] == vectors[1]).all()  # lowercased, trimmed
    with pytest.raises(InputDataError, match="input 2"):
        model.encode(["a", " "])


def test_bucketing_by_target_length_pads_the_decoder_little():
    """Both encoders skip source padding; the decoders run over the padded target. bucket_by=target sorts
    by target length first (source second): on 3,000 real CMUdict pairs under 5% of the decoder's
    positions are padding, where bucketing by source length (the default) leaves about a quarter."""
    pairs = load_cmudict()
    pairs = pairs.subset(range(0, 3000 * 40, 40))
    source_vocab, target_vocab = Vocabulary.build(pairs.sources, "char"), Vocabulary.build(pairs.targets, "space")
    dataset = PairDataset(pairs, source_vocab, target_vocab)
    keys = dataset.bucket_keys("target")
    longest_source = max(len(item["source"]) for item in dataset.items)
    assert keys[0] == len(dataset[0]["target"]) * (longest_source + 1) + len(dataset[0]["source"])
    assert dataset.bucket_keys() == [len(item["source"]) for item in dataset.items]  # the default: by source

    def target_padding(lengths):
        padded = real = 0
        for batch in EpochBatchSampler(len(dataset), 32, seed=0, epoch=0, lengths=lengths):
            targets = [len(dataset[i]["target"]) for i in batch]
            padded, real = padded + max(targets) * len(batch), real + sum(targets)
        return 1 - real / padded

    assert target_padding(keys) < 0.05 < 0.15 < target_padding(dataset.bucket_keys("source"))
