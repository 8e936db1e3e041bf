import json

import pytest
import yaml
from safetensors.torch import load_file

from encoderlab.errors import ConfigError
from encoderlab.training import TrainConfig, run_task
from encoderlab.training.entrypoint import resolve_config

from .iris_task import IrisConfig, train_iris


def test_every_common_override_is_top_level_and_typed(tmp_path):
    config = tmp_path / "iris.yaml"
    config.write_text("lr: 1e-3\nhidden: 8\nschedule: cosine\n")
    overrides = ["data=tests/data/iris.csv", f"out_dir={tmp_path}/r", "max_steps=7", "epochs=3", "seed=4",
                 "save_every=2", "eval_every=3", "betas=[0.8,0.95]", "clip_grad_norm=null"]
    cfg = resolve_config(IrisConfig, config, overrides)
    assert (cfg.lr, cfg.hidden, cfg.schedule, cfg.max_steps, cfg.epochs, cfg.seed) == (1e-3, 8, "cosine", 7, 3, 4)
    assert (cfg.save_every, cfg.eval_every, cfg.betas, cfg.clip_grad_norm) == (2, 3, (0.8, 0.95), None)


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'max_step'.*max_steps.*sleep_per_step"):
        resolve_config(IrisConfig, None, ["max_step=3"])


@pytest.mark.parametrize("override, message", [
    ("batch_size=0", "batch_size=0 must be at least 1"),
    ("lr=-1", "lr=-1.0 must be positive"),
    ("min_lr_ratio=2", r"min_lr_ratio=2.0 must be in \[0, 1\]"),
    ("max_steps=5", "warmup_steps=10 exceeds max_steps=5"),
    ("betas=[0.9,1.5]", "betas"),
    ("precision=fp8", "'fp8' is not one of"),
])
def test_invalid_values_say_what_to_change(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(TrainConfig, None, ["warmup_steps=10", override])


@pytest.mark.slow
def test_run_task_writes_config_final_and_metrics(tmp_path):
    out = tmp_path / "run"
    metrics = run_task(train_iris, IrisConfig, None, [f"out_dir={out}", "epochs=20", "batch_size=16",
                                                      "lr=3e-3", "eval_every=35", "progress=off"])
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["step"] == 140 and metrics["eval_accuracy"] >= 0.9
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 20
    assert set(load_file(out / "final" / "model.safetensors")) == {"inp.weight", "inp.bias", "norm.weight",
                                                                   "norm.bias", "out.weight", "out.bias"}


def test_resume_extends_a_finished_run_exactly_and_refuses_unsafe_overrides(tmp_path):
    args = ["batch_size=16", "schedule=constant", "save_every=10", "progress=off"]
    run_task(train_iris, IrisConfig, None, [*args, f"out_dir={tmp_path / 'long'}", "max_steps=30"])
    run_task(train_iris, IrisConfig, None, [*args, f"out_dir={tmp_path / 'short'}", "max_steps=20"])
    with pytest.raises(ConfigError, match="cannot change lr when resuming"):
        run_task(train_iris, IrisConfig, None, ["lr=1"], resume_dir=tmp_path / "short")
    with pytest.raises(ConfigError, match="drop --config"):
        run_task(train_iris, IrisConfig, tmp_path / "x.yaml", [], resume_dir=tmp_path / "short")
    with pytest.raises(ConfigError, match="already holds a run"):
        run_task(train_iris, IrisConfig, None, [*args, f"out_dir={tmp_path / 'short'}"])
    with pytest.raises(ConfigError, match="cannot change batch_size when resuming"):
        run_task(train_iris, IrisConfig, None, ["batch_size=8"], resume_dir=tmp_path / "short")
    # repeating the run's own value of a fixed key (as when re-typing the original command) is not a change
    metrics = run_task(train_iris, IrisConfig, None, ["max_steps=30", "batch_size=16", "schedule=constant"],
                       resume_dir=tmp_path / "short")
    assert metrics["step"] == 30
    a = load_file(tmp_path / "long" / "final" / "model.safetensors")
    b = load_file(tmp_path / "short" / "final" / "model.safetensors")
    assert all(a[k].equal(b[k]) for k in a)


def test_a_run_failing_on_its_input_leaves_no_directory_but_keeps_an_existing_one(tmp_path):
    def reject(cfg):
        raise ConfigError("data: no such file")

    with pytest.raises(ConfigError, match="no such file"):
        run_task(reject, IrisConfig, None, [f"out_dir={tmp_path / 'new'}"])
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(ConfigError, match="no such file"):
        run_task(reject, IrisConfig, None, [f"out_dir={mine}"])
    assert mine.is_dir()  # the user's own directory stays



@pytest.mark.slow
def test_resume_from_another_working_directory_finds_the_same_data(tmp_path, monkeypatch):
    """config.yaml keeps data= as an absolute path; it used to keep 'flowers.csv', which --resume from any
    other directory could not find."""
    import shutil
    from pathlib import Path

    from encoderlab.tasks.autoencode import AutoencodeConfig, train_autoencoder

    here = tmp_path / "project"
    here.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "iris.csv", here / "flowers.csv")
    monkeypatch.chdir(here)
    args = ["data=flowers.csv", "label_column=species", "model.latent_dim=2", "batch_size=16", "save_every=10",
            "warmup_steps=0", "progress=off", "max_steps=10", "threads=1"]
    run_task(train_autoencoder, AutoencodeConfig, None, [*args, f"out_dir={tmp_path / 'run'}"])
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"] == str(here / "flowers.csv")
    monkeypatch.chdir(tmp_path)  # elsewhere: a relative 'flowers.csv' is not found here
    metrics = run_task(train_autoencoder, AutoencodeConfig, None, ["max_steps=20"], resume_dir=tmp_path / "run")
    assert metrics["step"] == 20


def test_an_out_dir_under_a_file_is_a_config_error(tmp_path):
    (tmp_path / "data.csv").write_text("a file")
    with pytest.raises(ConfigError, match=r"'.*data.csv' is a file, not a folder; choose another out_dir="):
        run_task(train_iris, IrisConfig, None, [f"out_dir={tmp_path / 'data.csv' / 'run'}", "progress=off"])


def test_the_resume_hint_quotes_a_directory_with_spaces(tmp_path):
    """'resume it with --resume runs/my run' split into two arguments when pasted."""
    import shlex

    out = tmp_path / "my run"
    run_task(train_iris, IrisConfig, None, ["batch_size=16", "max_steps=2", "progress=off", f"out_dir={out}"])
    with pytest.raises(ConfigError, match="already holds a run") as info:
        run_task(train_iris, IrisConfig, None, ["batch_size=16", "max_steps=2", "progress=off", f"out_dir={out}"])
    assert f"--resume {shlex.quote(str(out))}," in str(info.value) and "'" in str(info.value)
