"""`encoderlab encode --output DIR`: a corpus streamed into shards; killed and run again it continues to the same
array as one uninterrupted run, bit for bit, and a 2-rank torchrun (gloo) gives that array too."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab.artifacts.text_encoder import TextEncoder
from encoderlab.data.catalog import load_dataset
from encoderlab.data.text_input import read_texts
from encoderlab.data.text_stream import count_rows, iter_texts
from encoderlab.errors import InputDataError
from encoderlab.tasks.bulk_encode import MANIFEST, bulk_encode

from .finetune_fixtures import write_tiny_encoder

ROOT = Path(__file__).resolve().parents[2]
N, SHARD = 6000, 400  # 15 shards


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    """N real tweets (each made unique by its row number), one per line."""
    tweets = load_dataset("tweets-sentiment").train.texts
    texts = [" ".join(tweets[i % len(tweets)].split()) + f" #{i}" for i in range(N)]
    path = tmp_path_factory.mktemp("corpus") / "tweets.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path, texts


@pytest.fixture(scope="module")
def one_run(tiny, corpus, tmp_path_factory) -> np.ndarray:
    """The uninterrupted run, in this process, on one thread (as the subprocesses below run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("bulk") / "one"
        result = bulk_encode(corpus[0], out, str(tiny), shard_rows=SHARD, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert (result.rows, result.dim, result.shards_encoded) == (N, 32, 15)
    assert json.loads((out / MANIFEST).read_text())["complete"] is True
    assert not (out / "shards").exists()  # merged, then removed
    return np.load(result.output)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "encoderlab", "encode", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_the_streamed_array_is_the_text_encoders_rows_in_input_order(one_run, tiny, corpus):
    encoder = TextEncoder.from_pretrained(tiny)
    picks = [0, 1, SHARD - 1, SHARD, 3 * SHARD + 7, N - 1]
    np.testing.assert_allclose(one_run[picks], encoder.encode([corpus[1][i] for i in picks]), atol=1e-5)
    assert one_run.shape == (N, 32) and one_run.dtype == np.float32


@pytest.mark.slow
def test_a_killed_run_continues_to_the_same_array_bit_for_bit(one_run, tiny, corpus, tmp_path):
    out = tmp_path / "killed"
    args = ["--model", str(tiny), "--input", str(corpus[0]), "--output", str(out), "--shard-rows", str(SHARD)]
    process = subprocess.Popen(encode_command(*args), env=env(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(list((out / "shards").glob("shard-*.npy"))) < 5 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list((out / "shards").glob("shard-*.npy")))
    assert 5 <= done < 15 and not (out / "embeddings.npy").exists()
    resumed = subprocess.run(encode_command(*args), env=env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{done} already done" in resumed.stderr
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), one_run)
    again = subprocess.run(encode_command(*args), env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 shards encoded" in again.stderr  # finished: nothing to do


@pytest.mark.slow
def test_two_torchrun_ranks_give_the_same_array_as_one_process(one_run, tiny, corpus, tmp_path):
    out = tmp_path / "ranks"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
               "-m", "encoderlab", "encode", "--model", str(tiny), "--input", str(corpus[0]), "--output", str(out),
               "--shard-rows", str(SHARD)]
    run = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("wrote 6000 x 32 embeddings") == 1  # rank 0 reports
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), one_run)


def test_jsonl_and_csv_stream_the_same_rows_as_the_text_file(tmp_path, corpus):
    texts = corpus[1][:50]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"id": i, "body": t}) + "\n\n" for i, t in enumerate(texts)))
    with (tmp_path / "t.csv").open("w", newline="", encoding="utf-8") as handle:
        import csv

        writer = csv.writer(handle)
        writer.writerow(["id", "body"])
        writer.writerows(enumerate(texts))
    assert list(iter_texts(tmp_path / "t.jsonl", "body")) == texts == read_texts(tmp_path / "t.jsonl", "body")
    assert list(iter_texts(tmp_path / "t.csv", "body")) == texts == read_texts(tmp_path / "t.csv", "body")
    (tmp_path / "blank.txt").write_text("\ufefffirst\n\nthird\r\nfourth")  # BOM, a blank row, CRLF, no last newline
    assert list(iter_texts(tmp_path / "blank.txt")) == ["first", "", "third", "fourth"] == read_texts(
        tmp_path / "blank.txt")
    assert count_rows(corpus[0]) == N


def test_bad_input_and_changed_settings_are_clear_errors(tmp_path, tiny, corpus):
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(InputDataError, match=r"bad.jsonl:2: no 'text' field .* --text-field"):
        list(iter_texts(tmp_path / "bad.jsonl"))
    (tmp_path / "t.csv").write_text("text,label\nfine,1\n,2\n")
    with pytest.raises(InputDataError, match=r"t.csv:3: empty 'text'"):
        list(iter_texts(tmp_path / "t.csv"))
    with pytest.raises(InputDataError, match="suffix '.json'"):
        list(iter_texts(tmp_path / "x.json"))
    small = tmp_path / "small.txt"
    small.write_text("\n".join(corpus[1][:30]) + "\n")
    bulk_encode(small, tmp_path / "out", str(tiny), shard_rows=10, progress=False)
    with pytest.raises(InputDataError, match=r"other settings \(shard_rows: 10 -> 20\)"):
        bulk_encode(small, tmp_path / "out", str(tiny), shard_rows=20, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(InputDataError, match="directory with other files"):
        bulk_encode(small, tmp_path / "full", str(tiny), progress=False)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InputDataError, match="holds no texts"):
        bulk_encode(tmp_path / "empty.txt", tmp_path / "none", str(tiny), progress=False)
