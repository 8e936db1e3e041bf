"""Real processes: SIGKILL mid-run then --resume (bitwise equal weights), and a 2-process torchrun (gloo)
run equal to a 1-process run with the same global batch."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from encoderlab.training.metrics_log import read_log

TASK = Path(__file__).with_name("iris_task.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
COMMON = ["batch_size=16", "lr=3e-3", "epochs=8", "eval_every=10", "save_every=7", "keep_last=2",
          "log_every=1", "progress=lines"]


def run(args: list[str], *, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), str(TASK), *args]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def logged_step(out_dir: Path) -> int:
    try:
        return max((r["step"] for r in read_log(out_dir) if "loss" in r), default=0)
    except (FileNotFoundError, ValueError):  # not created yet, or a line being written
        return 0


@pytest.mark.slow
def test_sigkill_at_an_arbitrary_step_then_resume_is_bitwise_identical(tmp_path):
    run([*COMMON, f"out_dir={tmp_path / 'straight'}"])
    # The same run, slowed down so it can be killed mid-way; 23 is between checkpoints (21, 28).
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(TASK), *COMMON, f"out_dir={killed}", "sleep_per_step=0.02"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while logged_step(killed) < 23 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert 23 <= logged_step(killed) < 56 and not (killed / "final").exists()

    resumed = run(["--resume", str(killed)])
    assert "resumed from" in resumed.stderr
    a = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_file(killed / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equal(b[name]), name  # bitwise
    losses = [r["loss"] for r in read_log(killed) if "loss" in r]
    assert losses == [r["loss"] for r in read_log(tmp_path / "straight") if "loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, strategy):
    common = ["lr=3e-3", "max_steps=20", "log_every=1", "dropout=0", "noise=0", "eval_every=10"]
    run([*common, "batch_size=16", f"out_dir={tmp_path / 'one'}"])
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run([*common, "batch_size=8", f"distributed={strategy}", "save_every=10", f"out_dir={tmp_path / 'two'}"],
        launcher=launcher)
    one, two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert len(one) == len(two) == 22  # 20 train lines + 2 eval lines, written once (rank 0 only)
    for a, b in zip(one, two, strict=True):
        assert a["step"] == b["step"]
        for key in ("loss", "grad_norm", "eval_loss", "eval_accuracy"):
            if key in a:
                assert b[key] == pytest.approx(a[key], abs=1e-5), (a["step"], key)
    one_final = load_file(tmp_path / "one" / "final" / "model.safetensors")
    two_final = load_file(tmp_path / "two" / "final" / "model.safetensors")  # gathered, unsharded
    for name, tensor in one_final.items():
        assert (two_final[name] - tensor).abs().max() < 1e-5, name


PRETRAIN = ["pretrain", "--config", str(Path(__file__).resolve().parents[2] / "configs" / "pretrain-tiny-en.yaml"),
            "data=bbc-news", "max_documents=120", "max_steps=6", "batch_size=4", "max_seq_len=64",
            "tokenizer.vocab_size=2000", "eval_every=3", "max_eval_sequences=16", "warmup_steps=2", "save_every=3",
            "threads=1", "progress=off", "log_every=1"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "encoderlab"]


@pytest.mark.slow
def test_pretrain_under_torchrun_prepares_the_tokenizer_and_corpus_once(tmp_path):
    """Rank 0 trains the tokenizer and writes the token files, the other rank reads them (both used to write
    the same temporary files and crash); a bad corpus fails on every rank with our message, not a hang."""
    done = subprocess.run([*TORCHRUN, *PRETRAIN, f"out_dir={tmp_path / 'run'}"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if "eval_loss" in r] == [0, 3, 6]  # the untrained loss logged once, by rank 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    (tmp_path / "tiny.txt").write_text("".join(f"line {i}\n" for i in range(20)), encoding="utf-8")
    failed = subprocess.run([*TORCHRUN, *PRETRAIN, f"data={tmp_path / 'tiny.txt'}", "tokenizer.vocab_size=100",
                             f"out_dir={tmp_path / 'bad'}"], env=ENV, capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0
    assert failed.stderr.count("fewer than one sequence of max_seq_len=64") == 2  # both ranks say why
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_interrupt_without_save_every_checkpoints_the_step_and_resume_is_bitwise_identical(tmp_path, sig):
    # save_every=0 (the default: checkpoints only at the end): before, Ctrl-C or a scheduler's SIGTERM lost
    # every step taken; now the run stops after the current step, checkpoints it and says how to go on.
    common = [c for c in COMMON if not c.startswith(("save_every", "eval_every"))] + ["save_every=0", "eval_every=0"]
    run([*common, f"out_dir={tmp_path / 'straight'}"])
    stopped = tmp_path / "stopped"
    # SIGINT at its default, as in a terminal: a job started in the background inherits it ignored, and the
    # trainer rightly keeps ignoring it there (the run would finish instead of stopping)
    proc = subprocess.Popen([sys.executable, str(TASK), *common, f"out_dir={stopped}", "sleep_per_step=0.02"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while logged_step(stopped) < 12 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr[-2000:]
    assert f"{sig.name} at step" in stderr and f"--resume {stopped}" in stderr and "Traceback" not in stderr
    assert not (stopped / "final").exists()
    checkpoints = sorted((stopped / "checkpoints").iterdir())
    assert len(checkpoints) == 1 and 12 <= logged_step(stopped) < 56

    resumed = run(["--resume", str(stopped)])
    assert "resumed from" in resumed.stderr
    a = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_file(stopped / "final" / "model.safetensors")
    for name in a:
        assert a[name].equal(b[name]), name  # bitwise
