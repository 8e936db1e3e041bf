"""`encoderlab serve` refuses what it cannot serve before it listens: one clear line, exit code 2."""

from __future__ import annotations

import pytest

from encoderlab.cli import main
from encoderlab.cli.serve import model_name


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return info.value.code


@pytest.mark.parametrize(("args", "says"), [
    (["--model", "no/such/dir"], "does not exist and is not a known alias"),
    (["--max-texts", "100", "--max-queue", "10"], "raise --max-queue"),
    (["--precision", "fp16"], "precision='fp16' is unknown"),
    (["--max-batch-tokens", "0"], "max_batch_tokens=0 must be at least 1"),
    (["--model", "minilm", "--model", "minilm"], "two models are named 'minilm'"),
])
def test_what_cannot_be_served_is_one_clear_line(args, says, capsys):
    assert run_cli("serve", "--port", "1", *args) == 2
    assert says in capsys.readouterr().err


def test_model_names_come_from_the_spec_or_the_run_directory():
    assert model_name("minilm") == ("minilm", "minilm")
    assert model_name("tweets=runs/a") == ("tweets", "runs/a")
    assert model_name("runs/tweets/final") == ("tweets", "runs/tweets/final")
    assert model_name("runs/with=sign") == ("with=sign", "runs/with=sign")
