"""The real server, started as `python -m encoderlab serve` on a free loopback port, and small saved models of
every kind for it: a tiny BERT (minilm's tokenizer), a classifier and a tagger on it (random heads), and seq2seq
and autoencoder runs of a few steps on real data."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    @property
    def message(self) -> str:
        return self.json()["error"]["message"]


class Client:
    """A minimal HTTP client for a server on a loopback port."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, body=None, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 120.0) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            sent = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def post(self, path: str, body=None, **kwargs) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def wait_ready(self, timeout: float, process: subprocess.Popen | None = None) -> bool:
        """Poll GET /ready until 200 (True) or `timeout` seconds (False); a `process` that exits is an error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the server exited: {process.stderr.read().decode()[-3000:]}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/ready").status == 200:
                    return True
            time.sleep(0.2)
        return False


class Server(Client):
    """A running `encoderlab serve` subprocess on a free loopback port, ready when constructed."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, ready_timeout: float = 180.0):
        super().__init__(free_port())
        self.log = open(os.environ.get("SERVE_TEST_LOG", os.devnull), "ab")  # noqa: SIM115
        full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
                    "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "encoderlab", "serve", "--port", str(self.port), "--threads", "1", *args],
            env=full_env, stdout=self.log, stderr=subprocess.PIPE)
        if not self.wait_ready(ready_timeout, self.process):
            self.stop()
            raise RuntimeError("the server did not become ready in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, minilm_dir) -> dict[str, Path]:
    """name -> directory: enc (text encoder), clf (classifier), pos (tagger), g2p (seq2seq run), ae (autoencoder
    run on Shuttle rows), rec (a Mult-DAE recommender run on the MovieLens slice)."""
    from encoderlab.artifacts.finetuned import HeadInfo, save_finetuned
    from encoderlab.interop.hf_bert import save_hf_bert
    from encoderlab.models.bert import BertConfig, BertModel
    from encoderlab.models.heads import EncoderWithHead, SequenceClassificationHead, TokenClassificationHead
    from encoderlab.tokenization import TextTokenizer

    root = tmp_path_factory.mktemp("served")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        tokenizer = TextTokenizer.from_dir(minilm_dir)
        cfg = BertConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_positions=64)
        save_hf_bert(BertModel(cfg), root / "enc")
        tokenizer.save(root / "enc")
        heads = {"clf": (SequenceClassificationHead(32, 3, "mean"), "sequence-classification",
                         ["negative", "neutral", "positive"]),
                 "pos": (TokenClassificationHead(32, 4), "token-classification", ["NOUN", "VERB", "DET", "X"])}
        for name, (head, task, labels) in heads.items():
            torch.nn.init.normal_(head.out.weight, std=0.5)  # random, but not near-uniform predictions
            save_finetuned(EncoderWithHead(BertModel(cfg), head), tokenizer, root / name,
                           HeadInfo(task=task, label_names=labels, max_length=48))
        from encoderlab.tasks.seq2seq import seq2seq_command

        seq2seq_command(CONFIGS / "seq2seq-g2p.yaml",
                        [f"out_dir={root / 'g2p'}", "threads=1", "progress=off", "batch_size=16", "max_steps=3",
                         "eval_every=0", "max_train_examples=64", "max_eval_examples=16", "max_test_examples=16",
                         "model.d_embed=16", "model.d_hidden=16", "warmup_steps=1"])
        from encoderlab.tasks.autoencode import AutoencodeConfig, train_autoencoder
        from encoderlab.training import run_task

        run_task(train_autoencoder, AutoencodeConfig, CONFIGS / "shuttle-anomaly.yaml",
                 [f"out_dir={root / 'ae'}", "max_steps=3", "eval_every=0", "progress=off", "threads=1",
                  "train_limit=500", "eval_limit=200", "warmup_steps=1"])
        from encoderlab.cli import main

        with contextlib.suppress(SystemExit):  # the MovieLens slice the recommender tests use
            main(["recommend", f"data={ROOT / 'tests/data/ml100k-slice/ml-100k.inter'}", "rating_column=rating",
                  "protocol=strong", "heldout=0.15", "model.kind=mult-dae", "model.hidden_dim=16",
                  "model.latent_dim=8", "epochs=1", "batch_size=16", "threads=1", "progress=off",
                  f"out_dir={root / 'rec'}"])
    finally:
        torch.set_num_threads(threads)
    return {name: root / name for name in ("enc", "clf", "pos", "g2p", "ae", "rec")}


@pytest.fixture(scope="module")
def server(tiny_models):
    """minilm and one model of every other kind, default limits."""
    args = ["--model", "minilm"] + [a for name in ("clf", "pos", "g2p", "ae", "rec")
                                     for a in ("--model", f"{name}={tiny_models[name]}")]
    running = Server(args)
    yield running
    running.stop()
