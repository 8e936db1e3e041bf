"""Same config + seed on the same machine -> the same bits: two fresh `pretrain` runs, a `finetune` from each
of them, and two `autoencode` runs, each pair in separate processes, give bitwise identical
final/model.safetensors.

Every run is a fresh `python -m encoderlab` process, as a user would start it: what used to break the
promise (the tokenizer trainer's hash order) is seeded per process, so two runs in one process would prove
less. The two runs of a pair also get different RAYON_NUM_THREADS / TOKENIZERS_PARALLELISM, which must not
matter. Torch runs with `threads=1` in both: the promise is for the same thread count (README, Reproducibility).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRETRAIN = ["pretrain", "--config", str(CONFIGS / "pretrain-tiny-en.yaml"), "data=bbc-news", "max_documents=150",
            "max_steps=40", "batch_size=8", "max_seq_len=64", "tokenizer.vocab_size=2500", "eval_every=20",
            "max_eval_sequences=16", "warmup_steps=5", "save_every=0", "lr=3e-3", "threads=1", "progress=off",
            "seed=3"]
FINETUNE = ["finetune", "--config", str(CONFIGS / "finetune-tweets.yaml"), "mode=full", "lr=1e-3",
            "max_train_examples=96", "max_eval_examples=32", "max_test_examples=32", "max_length=32",
            "batch_size=16", "epochs=1", "threads=1", "progress=off", "seed=5"]
AUTOENCODE = ["autoencode", "--config", str(CONFIGS / "mnist-ae.yaml"), "train_limit=1000", "eval_limit=200",
              "max_steps=60", "batch_size=64", "eval_every=0", "warmup_steps=10", "threads=1", "progress=off",
              "plots=false"]
# (RAYON_NUM_THREADS, TOKENIZERS_PARALLELISM) of the first and the second run of each pair
ENVIRONMENTS = (("1", "false"), ("2", "true"))


def encoderlab(args: list[str], environment: tuple[str, str]) -> None:
    """Run `python -m encoderlab ARGS` in a fresh process; fail with its output if it fails."""
    env = dict(os.environ, RAYON_NUM_THREADS=environment[0], TOKENIZERS_PARALLELISM=environment[1])
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                         env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "encoderlab", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"encoderlab {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def weights(run: Path) -> bytes:
    return (run / "final" / "model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pretrain")
    for name, environment in zip("ab", ENVIRONMENTS, strict=True):
        encoderlab([*PRETRAIN, f"out_dir={root / name}"], environment)
    return root / "a", root / "b"


@pytest.mark.slow
def test_two_pretraining_runs_give_the_same_tokenizer_and_the_same_weights(pretrained):
    a, b = pretrained
    assert json.loads((a / "metrics.json").read_text())["step"] == 40
    assert (a / "tokenizer" / "tokenizer.json").read_bytes() == (b / "tokenizer" / "tokenizer.json").read_bytes()
    assert weights(a) == weights(b)


@pytest.mark.slow
def test_fine_tuning_each_pretrained_run_gives_the_same_weights(pretrained, tmp_path):
    """The whole chain: pretrain twice, fine-tune each result once; both fine-tuned models are the same bits."""
    for (name, environment), init in zip(zip("ab", ENVIRONMENTS, strict=True), pretrained, strict=True):
        encoderlab([*FINETUNE, f"init={init}", f"out_dir={tmp_path / name}"], environment)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["step"] == 6  # 96 examples / batch 16, one epoch: the weights did move
    assert weights(tmp_path / "a") == weights(tmp_path / "b")


@pytest.mark.slow
def test_two_autoencoder_runs_give_the_same_weights_and_another_seed_does_not(tmp_path):
    runs = {"a": ("seed=0", ENVIRONMENTS[0]), "b": ("seed=0", ENVIRONMENTS[1]), "c": ("seed=1", ENVIRONMENTS[0])}
    for name, (seed, environment) in runs.items():
        encoderlab([*AUTOENCODE, seed, f"out_dir={tmp_path / name}"], environment)
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    assert weights(tmp_path / "a") != weights(tmp_path / "c")  # the comparison can tell two runs apart
