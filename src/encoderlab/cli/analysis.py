"""Looking at models and runs: `encoderlab robustness` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import app


@app.command()
def robustness(
    model: Annotated[str, typer.Option("--model", "-m", help="A fine-tuned classifier's OUT_DIR, a text encoder "
                                       "(minilm, a checkpoint directory), a seq2seq, autoencoder or audio run.")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="Texts (catalog name or .txt/.jsonl/.csv), "
                                             "arrays or labelled recordings to perturb (default: the run's own "
                                             "test data).")] = None,
    levels: Annotated[str | None, typer.Option(help="Comma-separated noise levels: typo rates for text "
                                               "(default 0,0.02,0.05,0.1,0.2), Gaussian sigma for arrays "
                                               "(default 0,0.1,0.2,0.3,0.5), SNR in dB of white noise for "
                                               "audio (default 20,10,0; clean is always scored).")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="Where to write the JSON and PNG "
                                                         "(default MODEL/evaluations, or ./robustness).")] = None,
    max_examples: Annotated[int, typer.Option(help="Score a seeded subset of this many rows.")] = 1000,
    text_column: Annotated[str | None, typer.Option(help="Text column/field (default: the training one, or "
                                                         "'text'), or a seq2seq --data file's source column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column/field (classifiers), or a seq2seq "
                                                          "--data file's target column.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise (the same seed gives the same noisy inputs).")] = 0,
) -> None:
    """Robustness to noise: the model's metrics as its input gets noisier (typos in text, Gaussian noise on
    arrays, white noise at a signal-to-noise ratio on recordings), level by level against the clean input."""
    from ..evaluation.noise import markdown_table
    from ..tasks.robustness import evaluate_robustness

    parsed = None
    if levels is not None:
        try:
            parsed = [float(level) for level in levels.split(",") if level.strip()]
        except ValueError as exc:
            raise InputDataError(f"--levels {levels!r}: give comma-separated numbers, e.g. 0,0.05,0.1") from exc
    result = evaluate_robustness(model, data, parsed, output_dir, max_examples, text_column, label_column, seed)
    typer.echo(f"{result.kind}, noise = {result.noise}\n")
    typer.echo(markdown_table(result.rows))
    typer.echo(f"wrote {result.json_path} and {result.plot_path}", err=True)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="One or more run directories (the out_dir of a training run).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The .html to write (default: "
                                                "RUN_DIR/report.html for one run, ./report.html for several).")] = None,
    title: Annotated[str | None, typer.Option(help="Page title (default: the run names).")] = None,
) -> None:
    """One HTML page of runs side by side: final metrics, training and eval curves, evaluations, plots."""
    from ..report.html_report import build_report

    path = build_report(runs, output, title)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(runs)} run(s)); open it in a browser")
