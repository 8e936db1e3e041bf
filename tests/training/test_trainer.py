import io
import sys

import pytest
import torch

from encoderlab.errors import ConfigError, EncoderlabError
from encoderlab.training import TrainingDivergedError, latest_valid_checkpoint, load_checkpoint
from encoderlab.training.metrics_log import Progress, read_log

from .iris_task import iris_splits, make_trainer


def train_losses(cfg) -> list[float]:
    make_trainer(cfg).fit()
    return [r["loss"] for r in read_log(cfg.out_dir) if "loss" in r]


@pytest.mark.slow
def test_learns_iris(iris_cfg):
    result = make_trainer(iris_cfg(epochs=30, eval_every=50)).fit()
    assert result.step == 30 * (120 // 16)
    assert result.metrics["eval_accuracy"] >= 0.9  # held-out flowers
    assert result.metrics["train_loss"] < 0.35 < 1.0986  # well below chance level, ln(3)


def test_same_seed_same_losses_other_seed_other_losses(iris_cfg, tmp_path):
    a = train_losses(iris_cfg(seed=1, out_dir=str(tmp_path / "a")))
    b = train_losses(iris_cfg(seed=1, out_dir=str(tmp_path / "b")))
    c = train_losses(iris_cfg(seed=2, out_dir=str(tmp_path / "c")))
    assert a == b  # exactly, dropout and noise included
    assert a != c


def test_log_lines_and_final_outputs(iris_cfg):
    cfg = iris_cfg(max_steps=20, log_every=5, eval_every=10)
    result = make_trainer(cfg).fit()
    records = read_log(cfg.out_dir)
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_loss" in r]
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    assert set(train[0]) == {"step", "epoch", "loss", "lr", "grad_norm", "items_per_sec", "memory_mb",
                             "skipped_steps"}
    assert train[0]["epoch"] == pytest.approx(5 / 7, abs=1e-4) and train[0]["memory_mb"] > 0
    assert [r["step"] for r in evals] == [10, 20] and 0 <= evals[-1]["eval_accuracy"] <= 1
    assert train[-1]["lr"] == pytest.approx(3e-3 * (1 - 19 / 20))  # linear decay, lr of step index 19
    assert (result.final_dir / "model.safetensors").exists() and (result.final_dir / "config.yaml").exists()


def test_progress_prints_plain_lines_when_not_a_tty():
    stream = io.StringIO()  # not a TTY
    progress = Progress(total=100, initial=0, mode="auto", stream=stream)
    record = {"epoch": 0.5, "loss": 0.25, "lr": 1e-3, "items_per_sec": 1234.0}
    progress.update(10, record)
    progress.update(20, record)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("step 20/100 epoch 0.5 loss 0.2500 lr 1.000e-03 1234 items/s")


def test_best_checkpoint_and_early_stopping(iris_cfg):
    # Judged by max eval_loss, the first evaluation stays the best while the loss falls: stop after 2 more.
    cfg = iris_cfg(epochs=30, eval_every=5, patience=2, best_mode="max", keep_last=1)
    result = make_trainer(cfg).fit()
    assert result.stopped_early and result.step == 15 and result.best_step == 5
    names = [p.name for p in result.checkpoints]
    assert names == ["step-00000005", "step-00000015"]  # best kept beyond keep_last=1
    _, state, manifest = load_checkpoint(result.checkpoints[0])
    assert manifest["step"] == 5 and state["counters"]["best_step"] == 5


def test_bf16_autocast_on_cpu_trains_fp32_weights(iris_cfg):
    result = make_trainer(iris_cfg(precision="bf16", epochs=20, eval_every=0)).fit()
    assert result.metrics["train_loss"] < 0.5
    trainer = make_trainer(iris_cfg(precision="bf16", max_steps=1, out_dir=str(result.final_dir / "x")))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_fp16_on_cpu_is_refused_with_a_fix(iris_cfg):
    with pytest.raises(ConfigError, match="precision=bf16"):
        make_trainer(iris_cfg(precision="fp16", device="cpu"))


def test_tensorboard_missing_names_the_install_command(iris_cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(EncoderlabError, match="pip install tensorboard"):
        make_trainer(iris_cfg(tensorboard=True, max_steps=2)).fit()


def test_existing_run_dir_needs_resume(iris_cfg):
    make_trainer(iris_cfg(max_steps=3)).fit()
    with pytest.raises(ConfigError, match="--resume"):
        make_trainer(iris_cfg(max_steps=3)).fit()


def test_nan_batches_are_skipped_and_counted(iris_cfg):
    cfg = iris_cfg(nan_every=40, epochs=3, log_every=1, clip_grad_norm=None)  # rows 0, 40, 80 are NaN
    trainer = make_trainer(cfg)
    result = trainer.fit()
    # Expected: the steps whose 16-sample batch contains a NaN row, from the epoch permutations.
    from encoderlab.training.sampler import EpochBatchSampler
    expected = sum(any(i % 40 == 0 for i in batch)
                   for epoch in range(3) for batch in EpochBatchSampler(120, 16, cfg.seed, epoch))
    assert 1 <= expected == result.metrics["skipped_steps"]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    losses = [r["loss"] for r in read_log(cfg.out_dir) if "loss" in r]
    assert losses.count(None) == expected  # a skipped step logs its non-finite loss as null


def test_consecutive_nan_steps_stop_the_run_keeping_the_last_good_checkpoint(iris_cfg):
    cfg = iris_cfg(max_steps=50, save_every=5, max_bad_steps=3)
    trainer = make_trainer(cfg)
    calls = {"n": 0}
    clean_loss = trainer.loss_fn

    def loss_fn(model, batch):  # the loss blows up from the 13th step on
        calls["n"] += 1
        loss, n = clean_loss(model, batch)
        return (loss * float("inf") if calls["n"] > 12 else loss), n

    trainer.loss_fn = loss_fn
    with pytest.raises(TrainingDivergedError, match=r"3 consecutive steps.*step-00000010"):
        trainer.fit()
    good = latest_valid_checkpoint(cfg.out_dir)
    weights, state, _ = load_checkpoint(good)
    assert good.name == "step-00000010" and state["step"] == 10
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_iris_split_is_real_and_stratified():
    train, val = iris_splits()
    assert len(train) == 120 and len(val) == 30
    assert sorted(c for _, c in val) == [0] * 10 + [1] * 10 + [2] * 10


def test_a_run_of_a_few_steps_from_epochs_gets_a_note(iris_cfg, tmp_path, capsys):
    """48 rows of a user's file at the defaults (epochs=1, batch_size=32) trained one step and printed its test
    accuracy as if trained; an explicit max_steps= is the user's choice and gets no note."""
    make_trainer(iris_cfg(epochs=1, batch_size=64, out_dir=str(tmp_path / "one"))).fit()
    err = capsys.readouterr().err
    assert "note: this run takes 1 optimizer step(s) in all (1 epoch(s) of 120 training samples at batch_size=64)" \
        in err and "raise epochs=" in err
    make_trainer(iris_cfg(max_steps=3, out_dir=str(tmp_path / "three"))).fit()
    make_trainer(iris_cfg(epochs=2, out_dir=str(tmp_path / "fourteen"))).fit()  # 2 x 7 steps
    assert "optimizer step(s) in all" not in capsys.readouterr().err
