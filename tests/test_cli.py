import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoderlab.cli import main

SENTENCES = ["The cat sat on the mat.", "A feline rested on a rug.", "Quarterly profits rose 8%."]


def run_cli(*args):
    """Run `encoderlab ...` in-process; return (exit code, stdout+stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def test_encode_txt_matches_python_api(tmp_path, minilm):
    (tmp_path / "in.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert run_cli("encode", "--model", "minilm", "--input", str(tmp_path / "in.txt"),
                   "--output", str(tmp_path / "out.npy")) == 0
    vectors = np.load(tmp_path / "out.npy")
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, minilm.encode(SENTENCES), atol=1e-6)


@pytest.mark.slow
def test_encode_jsonl_through_python_dash_m(tmp_path, minilm):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in SENTENCES))
    result = subprocess.run(
        [sys.executable, "-m", "encoderlab", "encode", "--input", str(tmp_path / "in.jsonl"),
         "--output", str(tmp_path / "out.npy"), "--pooling", "cls", "--no-normalize"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 3 x 384 embeddings" in result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               minilm.encode(SENTENCES, pooling="cls", normalize=False), atol=1e-6)


def test_similarity_prints_matrix(capsys):
    assert run_cli("similarity", "--model", "minilm", *SENTENCES) == 0
    out = capsys.readouterr().out
    assert "cosine similarity" in out and "1.000" in out


def test_unreadable_input_is_one_clear_line_and_keeps_old_output(tmp_path, capsys):
    out = tmp_path / "out.npy"
    np.save(out, np.ones(3))
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"txt": "no"}\n')
    assert run_cli("encode", "--input", str(tmp_path / "bad.jsonl"), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.jsonl:2" in err and "Traceback" not in err
    np.testing.assert_array_equal(np.load(out), np.ones(3))  # the earlier result is not lost


@pytest.mark.parametrize("args,message", [
    (["--input", "missing.txt", "--output", "o.npy"], "does not exist"),
    (["--input", "x.txt", "--output", "o.csv"], "must end in .npy"),
    (["--model", "no-such-model", "--input", "IN", "--output", "o.npy"], "not a known alias"),
    (["--input", "IN", "--output", "o.npy", "--batch-size", "0"], "error: --batch-size 0 must be at least 1"),
    (["--input", "IN", "--output", "o.npy", "--max-length", "0"], "error: --max-length 0 must be at least 3"),
    (["--input", "IN", "--output", "o.npy", "--pooling", "avg"], "error: --pooling avg is unknown; choose mean"),
    (["--input", "EMPTY.txt", "--output", "o.npy"], "error: input file 'EMPTY.txt' is empty"),
])
def test_bad_arguments(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN.txt").write_text("x\n")
    (tmp_path / "EMPTY.txt").write_text("")
    args = [a.replace("IN", "IN.txt") if a == "IN" else a for a in args]
    assert run_cli("encode", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "o.npy").exists()


def test_a_run_directory_is_a_model_for_encode_and_from_pretrained(tmp_path, minilm_dir, capsys):
    """`init=RUN_DIR`, `evaluate --model RUN_DIR` and `predict` take a run's OUT_DIR, so `encode` and
    `TextEncoder.from_pretrained` do too: they read its final/."""
    from encoderlab import TextEncoder
    from tasks.finetune_fixtures import write_tiny_encoder

    run = tmp_path / "run"
    write_tiny_encoder(run / "final", minilm_dir)
    (tmp_path / "in.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert run_cli("encode", "--model", str(run), "--input", str(tmp_path / "in.txt"),
                   "--output", str(tmp_path / "out.npy")) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               TextEncoder.from_pretrained(run / "final").encode(SENTENCES), atol=1e-6)
    assert TextEncoder.from_pretrained(run).bert.cfg.d_model == 32
    (tmp_path / "empty").mkdir()
    assert run_cli("encode", "--model", str(tmp_path / "empty"), "--input", str(tmp_path / "in.txt"),
                   "--output", str(tmp_path / "out2.npy")) == 2
    assert "no config.json" in capsys.readouterr().err and not (tmp_path / "out2.npy").exists()


def test_evaluate_without_data_scores_the_runs_own_test_split(tmp_path, minilm_dir, capsys):
    """--help says --data defaults to the run's own data; for a text classifier it answered 'give --data'. The
    closing hint quotes a run directory with a space, so it can be pasted."""
    from tasks.finetune_fixtures import tweet_rows, write_csv, write_tiny_encoder

    tiny = write_tiny_encoder(tmp_path / "tiny", minilm_dir)
    data = write_csv(tmp_path / "my reviews.csv", tweet_rows(60), header=("Review Text", "My Label"))
    run = tmp_path / "my run"
    assert run_cli("finetune", f"data={data}", "text_column=Review Text", "label_column=My Label", f"init={tiny}",
                   "batch_size=8", "max_steps=1", "threads=1", "progress=off", f"out_dir={run}") == 0
    hint = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("look at the run: "))
    assert shlex.split(hint.removeprefix("look at the run: ")) == ["encoderlab", "report", str(run)]  # pasteable
    assert run_cli("evaluate", "--model", str(run)) == 0
    out = capsys.readouterr().out
    assert f"the held-out test rows of {data}:" in out
    saved = json.loads((run / "evaluations" / "eval_my reviews_test.json").read_text())
    assert saved["n"] == json.loads((run / "metrics.json").read_text())["test_examples"]
    # export takes the classifier's encoder and says that its head (the labels) is not in the graph
    pytest.importorskip("onnxruntime")
    assert run_cli("export", "--model", str(run), "--output", str(tmp_path / "onnx")) == 0
    assert "the export holds its encoder only" in capsys.readouterr().err
    assert (tmp_path / "onnx" / "model.onnx").is_file()


def test_finetune_task_embed_prints_its_held_out_recall(tmp_path, minilm_dir, capsys):
    from tasks.finetune_fixtures import write_tiny_encoder

    tiny = write_tiny_encoder(tmp_path / "tiny", minilm_dir)
    rows = [{"anchor": f"question number {i} about {w}", "positive": f"the answer on {w}, number {i}"}
            for i, w in enumerate(["cats", "dogs", "tax", "music", "football", "rain", "bread", "trains"] * 3)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_cli("finetune", "task=embed", f"data={tmp_path / 'pairs.jsonl'}", f"init={tiny}", "batch_size=4",
                   "max_steps=2", "threads=1", "progress=off", "split=0.7,0.3,0", f"out_dir={tmp_path / 'run'}") == 0
    err = capsys.readouterr().err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert f"validation_recall_at_1={metrics['validation_recall_at_1']:.4g}" in err
    assert "initial_validation_recall_at_1=" in err


def test_similarity_of_a_single_text_is_an_error(capsys):
    """An unquoted sentence is many texts and a quoted one alone is a 1x1 matrix of 1.000: say what is needed."""
    assert run_cli("similarity", "just one sentence") == 2
    assert "got 1, give two or more" in capsys.readouterr().err


def test_encode_a_csv_column(tmp_path, minilm):
    (tmp_path / "in.csv").write_text("id,review\n" + "".join(f'{i},"{s}"\n' for i, s in enumerate(SENTENCES)),
                                     encoding="utf-8")
    assert run_cli("encode", "--input", str(tmp_path / "in.csv"), "--text-field", "review",
                   "--output", str(tmp_path / "out.npy")) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), minilm.encode(SENTENCES), atol=1e-6)


@pytest.mark.slow
def test_runs_without_out_dir_of_different_tasks_do_not_collide(tmp_path, minilm_dir, monkeypatch, capsys):
    """The README's commands leave out out_dir=: a pretrain after a fine-tune must not be told to --resume it."""
    from tasks.finetune_fixtures import write_tiny_encoder

    tiny = write_tiny_encoder(tmp_path / "tiny", minilm_dir)
    monkeypatch.chdir(tmp_path)
    pairs = [{"anchor": f"question {i} about {w}", "positive": f"answer {i} on {w}"} for i, w in enumerate("abcdefgh")]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    (tmp_path / "corpus.txt").write_text("".join(f"the cat number {i} sat on the mat\n" for i in range(200)))
    assert run_cli("finetune", "task=embed", "data=pairs.jsonl", f"init={tiny}", "batch_size=2", "max_steps=1",
                   "threads=1", "progress=off") == 0
    assert run_cli("pretrain", "data=corpus.txt", "model.preset=bert-tiny", "tokenizer.vocab_size=200",
                   "max_seq_len=32", "batch_size=4", "max_steps=1", "warmup_steps=0", "threads=1",
                   "progress=off") == 0, capsys.readouterr().err
    assert (tmp_path / "runs" / "embed" / "final").is_dir() and (tmp_path / "runs" / "pretrain" / "final").is_dir()
    capsys.readouterr()
    # --resume given to the other command: name the command that wrote the run
    assert run_cli("pretrain", "--resume", "runs/embed") == 2
    assert "runs/embed is an `encoderlab finetune` run; use `encoderlab finetune --resume runs/embed`" \
        in capsys.readouterr().err
    assert run_cli("finetune", "--resume", "runs/pretrain") == 2
    assert "`encoderlab pretrain --resume runs/pretrain`" in capsys.readouterr().err
    # and a shipped config given to the other command
    configs = Path(__file__).resolve().parents[1] / "configs"
    assert run_cli("pretrain", "--config", str(configs / "finetune-tweets.yaml")) == 2
    assert "finetune-tweets.yaml is an `encoderlab finetune` config; use `encoderlab finetune --config" in \
        capsys.readouterr().err
    assert run_cli("finetune", "--config", str(configs / "pretrain-tiny-en.yaml")) == 2
    assert "pretrain-tiny-en.yaml is an `encoderlab pretrain` config" in capsys.readouterr().err


def test_an_unfinished_run_as_a_model_says_how_to_finish_it(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("data: corpus.txt\nmask_prob: 0.15\nout_dir: run\n")
    (tmp_path / "in.txt").write_text("hello\n")
    assert run_cli("encode", "--model", str(run), "--input", str(tmp_path / "in.txt"),
                   "--output", str(tmp_path / "o.npy")) == 2
    assert f"is an encoderlab run that has not finished (no final/ yet); continue it with `encoderlab pretrain " \
           f"--resume {run}`" in capsys.readouterr().err


def test_training_commands_help_names_their_main_keys(capsys):
    """finetune/pretrain take key=value overrides, which typer cannot list: --help names the ones users need."""
    assert run_cli("finetune", "--help") == 0
    out = capsys.readouterr().out
    assert all(key in out for key in ("task=classify|tag|embed", "text_column=", "label_column=", "init=", "mode="))
    assert run_cli("pretrain", "--help") == 0
    out = capsys.readouterr().out
    assert all(key in out for key in ("text_field=", "model.preset=", "tokenizer.vocab_size=", "max_seq_len="))


def test_a_run_whose_model_is_not_a_text_encoder_is_not_called_unfinished(tmp_path, capsys):
    run = tmp_path / "ae"
    (run / "final").mkdir(parents=True)
    (run / "config.yaml").write_text("data: mnist\n")
    assert run_cli("similarity", "--model", str(run), "a", "b") == 2
    err = capsys.readouterr().err
    assert "whose model is not a text encoder" in err and "not finished" not in err


def test_predict_on_an_autoencoder_run_scores_new_rows(tmp_path, capsys):
    """Anomaly scoring of new data from the command line: `predict` said 'give --input FILE (the texts)'."""
    rng = np.random.default_rng(0)
    rows = ["temp,status,vib"] + [f"{20 + rng.normal() + (9 if i % 10 == 0 else 0):.3f},"
                                  f"{'bad' if i % 10 == 0 else 'ok'},{rng.normal():.3f}" for i in range(200)]
    (tmp_path / "sensors.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert run_cli("autoencode", f"data={tmp_path / 'sensors.csv'}", "label_column=status", "normal_class=ok",
                   "model.output=identity", "model.reconstruction=mse", "model.hidden=[8]", "model.latent_dim=2",
                   "max_steps=40", "batch_size=16", "threads=1", "progress=off", "plots=false", "baselines=false",
                   f"out_dir={run}") == 0
    (tmp_path / "new.csv").write_text("vib,temp\n0.1,20.2\n0.0,35.0\n")  # the training columns, in another order
    capsys.readouterr()
    assert run_cli("predict", "--model", str(run), "--input", str(tmp_path / "new.csv")) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    from encoderlab.artifacts.autoencoder import ArrayEncoder

    encoder = ArrayEncoder.from_dir(run)
    expected = encoder.score(np.array([[20.2, 0.1], [35.0, 0.0]], dtype=np.float32))
    assert [line["row"] for line in lines] == [0, 1]
    np.testing.assert_allclose([line["score"] for line in lines], expected, rtol=1e-5)
    threshold = json.loads((run / "metrics.json").read_text())["test_threshold"]
    assert [line["anomaly"] for line in lines] == [bool(s >= threshold) for s in expected]
    assert lines[1]["score"] > lines[0]["score"]
    assert run_cli("predict", "--model", str(run), "--input", str(tmp_path / "new.csv"),
                   "--output", str(tmp_path / "scores.csv")) == 0
    assert (tmp_path / "scores.csv").read_text().splitlines()[0] == "row,score,anomaly"
