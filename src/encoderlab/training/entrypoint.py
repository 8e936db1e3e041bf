"""`run_task`: the one driver behind every training command (`encoderlab <task> --config FILE k=v ...`).

    def pretrain(cfg: PretrainConfig) -> dict[str, float]:   # a task: build model + data, run a Trainer
        ...
        return Trainer(cfg, model, train, loss_fn=...).fit().metrics

    run_task(pretrain, PretrainConfig, "configs/pretrain.yaml", ["max_steps=100"])   # a new run
    run_task(pretrain, PretrainConfig, None, ["max_steps=200"], resume_dir="runs/x")  # continue it

It loads the config (defaults <- YAML <- overrides; on resume the run's saved config.yaml is the base and
only RESUMABLE_KEYS may be overridden), joins the torchrun process group if there is one, seeds every RNG,
saves OUT_DIR/config.yaml, calls the task, and writes the returned metrics to OUT_DIR/metrics.json.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..config import load_config, read_yaml, save_config
from ..errors import ConfigError
from ..files import atomic_write_json, file_in_the_way
from .checkpoint import list_checkpoints
from .config import RESUMABLE_KEYS, TrainConfig
from .distributed import barrier, init_distributed, shutdown_distributed
from .seeding import seed_everything

C = TypeVar("C", bound=TrainConfig)
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"


def resolve_config(config_cls: type[C], config_path: str | Path | None, overrides: Sequence[str] = (),
                   resume_dir: str | Path | None = None) -> C:
    """The run's config: a new one from YAML + overrides, or the saved one of `resume_dir` + safe overrides."""
    if resume_dir is None:
        cfg = load_config(config_cls, config_path, overrides)
        if cfg.resume:
            raise ConfigError("resume=true cannot be set by hand; pass --resume OUT_DIR instead")
        return cfg
    if config_path is not None:
        raise ConfigError(f"--resume {resume_dir} uses the run's saved {CONFIG_FILE}; drop --config "
                          f"{config_path} (change max_steps=/epochs=/... as overrides instead)")
    saved = Path(resume_dir) / CONFIG_FILE
    if not saved.is_file():
        raise ConfigError(f"--resume {resume_dir}: no {CONFIG_FILE} there; is it the out_dir of a run?")
    saved_values = read_yaml(saved)
    before = load_config(config_cls, None, [], base=saved_values)
    cfg = load_config(config_cls, None, overrides, base=saved_values)
    unsafe = sorted(field.name for field in dataclasses.fields(cfg)  # repeating the run's own value is fine
                    if field.name not in RESUMABLE_KEYS and getattr(cfg, field.name) != getattr(before, field.name))
    if unsafe:
        raise ConfigError(f"cannot change {', '.join(unsafe)} when resuming (it would break the run's "
                          f"continuity); resumable keys: {', '.join(sorted(RESUMABLE_KEYS))}")
    return dataclasses.replace(cfg, out_dir=str(resume_dir), resume=True)


def with_absolute_paths(cfg: C) -> C:
    """`cfg` with every relative path that exists here (data=, init=, teacher=, …) made absolute, for the
    saved config.yaml: `--resume OUT_DIR` from another working directory must find the same files."""
    changes = {}
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if field.name != "out_dir" and isinstance(value, str) and value and not Path(value).is_absolute() \
                and Path(value).exists():
            changes[field.name] = str(Path(value).resolve())
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _remove_if_only_config(out_dir: Path) -> None:
    """A run that failed before writing anything (bad input, bad config) leaves no directory behind."""
    if [p.name for p in out_dir.iterdir()] == [CONFIG_FILE]:
        (out_dir / CONFIG_FILE).unlink()
        out_dir.rmdir()


def run_task(task_fn: Callable[[C], Mapping[str, Any]], config_cls: type[C],
             config_path: str | Path | None = None, overrides: Sequence[str] = (),
             resume_dir: str | Path | None = None) -> dict[str, Any]:
    """Resolve the config, set up (distributed) training, run `task_fn(cfg)`, write metrics.json."""
    cfg = resolve_config(config_cls, config_path, overrides, resume_dir)
    out_dir = Path(cfg.out_dir)
    blocking = file_in_the_way(out_dir)
    if blocking is not None:
        raise ConfigError(f"out_dir={cfg.out_dir}: {str(blocking)!r} is a file, not a folder; choose another out_dir=")
    info = init_distributed()
    try:
        if not cfg.resume and list_checkpoints(out_dir):
            raise ConfigError(f"{out_dir} already holds a run; resume it with --resume {shlex.quote(str(out_dir))}, "
                              "or choose a new out_dir=")
        created = not out_dir.exists()
        if info.is_main:
            save_config(with_absolute_paths(dataclasses.replace(cfg, resume=False)), out_dir / CONFIG_FILE)
        seed_everything(cfg.seed)  # model init is identical on every rank
        try:
            metrics = dict(task_fn(cfg))
        except Exception:
            if created and info.is_main:
                _remove_if_only_config(out_dir)
            raise
        if (out_dir / "final").is_dir():
            metrics.setdefault("final_dir", str(out_dir / "final"))  # every task's summary can point to it
        if info.is_main:
            atomic_write_json(out_dir / METRICS_FILE, metrics)
        barrier()
        return metrics
    finally:
        shutdown_distributed()
