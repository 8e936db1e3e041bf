"""The `encoderlab` command: each subcommand maps to one function of the Python API, one file per group.

    encode.py     encode, similarity
    training.py   pretrain, finetune, autoencode, seq2seq, prune, distill
    predict.py    predict, evaluate, seq2seq-predict
    deploy.py     export, bench
    analysis.py   robustness, report

User errors (`EncoderlabError`) are printed as one clear line without a traceback, exit code 2.
"""

from __future__ import annotations

import sys

import numpy as np
import typer

from ..errors import EncoderlabError
from . import analysis, deploy, encode, predict, training  # noqa: F401  (each registers its commands on `app`)
from .common import app


def main(argv: list[str] | None = None) -> None:
    np.set_printoptions(precision=4, suppress=True)
    try:
        app(args=argv, standalone_mode=True)
    except EncoderlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
