"""Using a trained model: `encoderlab predict`, `evaluate` and `seq2seq-predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import PrecisionOption, app, check_options, fp32_only

LongTextOption = Annotated[str | None, typer.Option(
    "--long-text", help="truncate (the first --window pieces) or chunk (all of a text, in overlapping windows); "
                        "default: as the model was trained (head.json).")]
WindowOption = Annotated[int | None, typer.Option(help="Word pieces per window (default: the model's).")]
StrideOption = Annotated[int | None, typer.Option(help="--long-text chunk: pieces between window starts, at most "
                                                       "window - 2 (default: 3/4 of a window).")]


def sentences_only(long_text: str | None, window: int | None, stride: int | None) -> None:
    if long_text is not None or window is not None or stride is not None:
        raise InputDataError("--long-text, --window and --stride are for classifiers; a tagger reads one sentence "
                             "per line")


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab finetune` (or its final/).")],
    input: Annotated[Path | None, typer.Option("--input", "-i", help=".txt (one text per line), .jsonl or .csv.")]
    = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write one JSON line per input "
                                                                       "(.jsonl), or a table with a .csv / .tsv "
                                                                       "name.")] = None,
    user: Annotated[list[str] | None, typer.Option("--user", "-u", help="Recommenders: a user id (repeatable); "
                                                   "prints the top items.")] = None,
    top: Annotated[int, typer.Option(help="Recommenders: how many items.")] = 10,
    text_column: Annotated[str, typer.Option(help="Text field (.jsonl) or column (.csv).")] = "text",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
    precision: PrecisionOption = "fp32",
    long_text: LongTextOption = None,
    window: WindowOption = None,
    stride: StrideOption = None,
) -> None:
    """Predict a label and class probabilities (or per-token tags) for every text of a file; with a recommender
    run and --user, print each user's top items."""
    from ..artifacts.registry import detect

    check_options(batch_size=batch_size, window=window, stride=stride)
    found = detect(model)  # a tagger, a recommender, else a classifier (which says what else `model` is)
    if found is not None and found.kind.name == "recommender":
        from .recommend import recommend_predict

        return recommend_predict(model, user=user, history=None, top=top, include_seen=False)
    if user:
        raise InputDataError(f"--user is for recommenders; --model {model} is not one (give --input and --output)")
    if input is None or output is None:
        raise InputDataError("give --input FILE (the texts) and --output FILE (.jsonl, .csv or .tsv)")
    if found is not None and found.kind.name == "tagger":
        from ..tasks.tag import predict_tags_file

        fp32_only(precision, "tagging")
        sentences_only(long_text, window, stride)
        n = predict_tags_file(model, input, output, text_column=text_column, batch_size=batch_size)
    else:
        from ..tasks.classify import predict_file

        n = predict_file(model, input, output, text_column=text_column, batch_size=batch_size, precision=precision,
                         long_text=long_text, window=window, stride=stride)
    typer.echo(f"wrote {n} predictions to {output}", err=True)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab finetune` (or its final/).")],
    data: Annotated[str, typer.Option("--data", "-d", help="Catalog name or .csv/.jsonl file with labels.")],
    split: Annotated[str, typer.Option(help="auto (test split of the training data, else all rows), train, "
                                            "validation, test or all.")] = "auto",
    output_dir: Annotated[Path | None, typer.Option(help="Where to write the JSON and PNG "
                                                         "(default MODEL/evaluations).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Text column/field (default: the training one).")] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column/field (default: the training one).")]
    = None,
    max_examples: Annotated[int | None, typer.Option(help="Score a seeded subset of this many rows.")] = None,
    precision: PrecisionOption = "fp32",
    long_text: LongTextOption = None,
    window: WindowOption = None,
    stride: StrideOption = None,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix of a fine-tuned model."""
    from ..artifacts.registry import detect

    check_options(max_examples=max_examples, window=window, stride=stride)
    found = detect(model)  # a tagger, else a classifier (which says what else `model` is)
    if found is not None and found.kind.name == "tagger":
        from ..tasks.tag import evaluate_tagger

        fp32_only(precision, "tagging")
        sentences_only(long_text, window, stride)
        report, path = evaluate_tagger(model, data, split, output_dir, max_examples=max_examples)
    else:
        from ..tasks.classify import evaluate_classifier

        report, path = evaluate_classifier(model, data, split, output_dir, text_column, label_column, max_examples,
                                           precision=precision, long_text=long_text, window=window, stride=stride)
    scored = json.loads(path.read_text(encoding="utf-8")).get("split")
    what = {"all": "every row of", "test": "the held-out test rows of"}.get(scored, f"the {scored} rows of")
    typer.echo(f"{what} {data}:")  # which rows: --split auto picks the test split only for the training data
    typer.echo(report.format())
    typer.echo(f"wrote {path} and {path.with_name(path.stem + '_confusion.png')}", err=True)


@app.command("seq2seq-predict")
def seq2seq_predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="A seq2seq run: its out_dir (or final/).")],
    texts: Annotated[list[str] | None, typer.Argument(help="Sources to convert (or --input FILE).")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help=".txt file, one source per line, or a pairs "
                                               ".csv/.tsv/.jsonl (its source column, as in training).")] = None,
    beam_size: Annotated[int, typer.Option("--beam-size", "--beam", help="Beam width; 1 = greedy decoding.")] = 1,
    length_penalty: Annotated[float | None, typer.Option(
        "--length-penalty", help="Beam search ranks outputs by log P / ((5 + length) / 6) ** this (GNMT); 0 = none; "
                                 "default: the run's length_penalty.")] = None,
) -> None:
    """Print `source<TAB>output` for every source with a trained seq2seq run (see docs/seq2seq.md).

    \b
    encoderlab seq2seq-predict --model runs/seq2seq-g2p hello encoderlab
    encoderlab seq2seq-predict --model runs/seq2seq-es-en-transformer --beam 4 --length-penalty 0.6 "Y dijo Dios"
    """
    from ..artifacts.registry import detect
    from ..config import read_yaml
    from ..tasks.seq2seq import predict_seq2seq, print_predictions, read_inputs

    check_options(beam_size=beam_size)
    if length_penalty is not None and length_penalty < 0:
        raise InputDataError(f"--length-penalty {length_penalty} must be >= 0 (0 = none; 0.6-1.0 is usual)")
    found = detect(model)  # a pairs file is read by the column the run trained on
    run = found.directory if found is not None and found.kind.name == "seq2seq" else None
    saved = read_yaml(run / "config.yaml") if run is not None else {}
    column = saved.get("source_column", "source") if run is not None else None
    sources = [*(texts or []), *(read_inputs(input, column=column) if input is not None else [])]
    if not sources:
        raise InputDataError("nothing to predict: give sources as arguments or --input FILE (one per line)")
    if length_penalty is None:
        length_penalty = float(saved.get("length_penalty", 0.0))
    print_predictions(sources, predict_seq2seq(model, sources, beam_size=beam_size, length_penalty=length_penalty))
