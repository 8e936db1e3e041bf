import json
import subprocess
import sys

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
])
def test_bad_arguments(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN.txt").write_text("x\n")
    args = [a.replace("IN", "IN.txt") if a == "IN" else a for a in args]
    assert run_cli("encode", *args) == 2
    assert message in capsys.readouterr().err
