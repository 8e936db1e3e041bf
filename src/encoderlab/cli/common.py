"""What every command shares: the typer app, option types, checks and the closing summary lines."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError

app = typer.Typer(
    help="encoderlab: build, pretrain, fine-tune and deploy neural encoders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Checkpoint directory or alias (e.g. minilm).")]

# Every training command: `encoderlab <task> --config FILE [key=value ...] [--resume OUT_DIR]`.
TRAINING_COMMAND = {"allow_extra_args": True, "ignore_unknown_options": False}
Overrides = Annotated[list[str] | None, typer.Argument(
    help="key=value overrides of any config field, e.g. max_steps=200 data=PATH out_dir=runs/x")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (see configs/).")]
ResumeDir = Annotated[Path | None, typer.Option(help="Continue the run in this OUT_DIR from its last checkpoint.")]


PrecisionOption = Annotated[str, typer.Option(help="fp32, or int8: the encoder's Linear layers in int8 (SmoothQuant, "
                                                    "calibrated on the model's own training texts).")]


def check_options(**values: int | str | None) -> None:
    """One clear line for an option value the task would reject deep inside (or with a traceback)."""
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if name == "pooling":
            from ..nn.pooling import POOLINGS  # the commands that pass a pooling load torch anyway

            if value not in POOLINGS:
                raise InputDataError(f"{flag} {value} is unknown; choose {', '.join(POOLINGS[:-1])} or {POOLINGS[-1]}")
            continue
        least = 3 if name == "max_length" else 1  # [CLS] + one token + [SEP]
        if value < least:
            raise InputDataError(f"{flag} {value} must be at least {least}")


def summary(text: str) -> None:
    """A training command's closing lines, on stderr, printed once: by rank 0 when torchrun runs several."""
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(text, err=True)


def echo_metrics(metrics: dict, keys: tuple[str, ...], digits: int = 4) -> None:
    summary(" ".join(f"{k}={metrics[k]:.{digits}g}" for k in keys if isinstance(metrics.get(k), int | float)))


def echo_final(metrics: dict, label: str = "final model", extra: str = "") -> None:
    """Where the trained model is, and the command that shows the whole run."""
    final = metrics.get("final_dir")
    if final:
        summary(f"{label}: {final}{extra}")
        summary(f"look at the run: encoderlab report {shlex.quote(str(Path(final).parent))}")  # copy-pasteable


def check_command_of(config: Path | None, resume: Path | None, command: str) -> None:
    """A --config file or --resume run of the other command of the pretrain / finetune pair: say which
    command it is for, instead of failing on the first config key this command does not know."""
    from ..artifacts.runs import command_of
    from ..config import read_yaml

    for path, flag in ((config, "--config"), (None if resume is None else resume / "config.yaml", "--resume")):
        if path is None or not path.is_file():
            continue
        wrote = command_of(read_yaml(path))
        if wrote is not None and wrote != command:
            given = config if flag == "--config" else resume
            kind = "config" if flag == "--config" else "run"
            raise InputDataError(f"{given} is an `encoderlab {wrote}` {kind}; use `encoderlab {wrote} {flag} {given}`")


def fp32_only(precision: str, what: str) -> None:
    if precision != "fp32":
        raise InputDataError(f"--precision {precision} is available for text classifiers; {what} runs in fp32 "
                             "(drop --precision)")
