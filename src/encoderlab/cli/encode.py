"""`encoderlab encode` and `similarity`: inputs -> vectors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import InputDataError
from .common import ModelOption, app, check_options


@app.command()
def encode(
    input: Annotated[Path, typer.Option("--input", "-i", help=".txt (one text per line), .jsonl, .csv/.tsv or "
                                                             ".parquet file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the (N, d) float32 .npy; a directory "
                                         "(no .npy suffix) streams a corpus of any size into shards, resumably.")],
    model: ModelOption = "minilm",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    pooling: Annotated[str | None, typer.Option(help="mean, cls or max (default: the checkpoint's).")] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize",
                                                    help="L2-normalise (default: the checkpoint's).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Truncate texts to this many tokens.")] = None,
    text_field: Annotated[str, typer.Option(help="Field (.jsonl) or column (.csv/.tsv/.parquet) holding the "
                                                 "text.")] = "text",
    device: Annotated[str, typer.Option(help="cpu, cuda, mps …")] = "cpu",
    shard_rows: Annotated[int, typer.Option(help="--output DIR: texts per shard (the unit of resuming).")] = 10_000,
) -> None:
    """Embed every text of a file and write the vectors, in input order, to a .npy file.

    With a directory as --output, the input is streamed: shards of --shard-rows texts are written as they are done,
    a killed run continues where it stopped when run again, and under torchrun every rank takes its share; the
    result is DIR/embeddings.npy. The saved model decides what --input holds: an autoencoder run embeds the rows of
    a .npy / .npz / .csv file, an audio run the files a .txt lists (or one audio file), a multimodal run the rows
    of a table, an image-text run a folder (or .csv) of images."""
    from ..artifacts.registry import detect

    check_options(batch_size=batch_size, pooling=pooling, max_length=max_length)
    found = detect(model)
    if found is not None and found.kind.name == "autoencoder":  # dispatch: autoencoder runs take arrays, not texts
        return _encode_arrays(Path(model), input, output, batch_size=max(batch_size, 256))
    if found is not None and found.kind.name == "audio-classifier":  # a .txt listing audio files, or one file
        from .audio import audio_encode

        return audio_encode(Path(model), output, input=Path(input), batch_size=batch_size)
    if found is not None and found.kind.name in ("multimodal", "image-text"):  # table rows, or images
        from .multimodal import multimodal_encode

        return multimodal_encode(Path(model), output, input=input, texts=None)
    if found is not None and found.kind.name == "recommender":
        raise InputDataError(f"--model {model} is a recommender: its vectors are per user or per item; use "
                             f"`encoderlab recommend-encode --model {model} --input ids.txt --side user|item "
                             f"--output {output}`")
    if input.suffix.lower() in (".npy", ".npz"):
        raise InputDataError(f"--input {str(input)!r} holds arrays, which only an autoencoder run encodes, and "
                             f"--model {model!r} is not one; give the out_dir of `encoderlab autoencode` (or a "
                             ".txt/.jsonl of texts for a text encoder)")
    if output.suffix == "" or output.is_dir():
        return _encode_corpus(input, output, model, batch_size=batch_size, pooling=pooling, normalize=normalize,
                              max_length=max_length, text_field=text_field, device=device, shard_rows=shard_rows)
    from ..artifacts.text_encoder import TextEncoder
    from ..data.text_input import read_texts
    from ..files import atomic_save_npy

    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy (one array), or name a directory (no "
                             "suffix) to stream the input into shards")
    texts = read_texts(input, text_field=text_field)
    if not texts:  # as predict: an empty input is a mistake (wrong file), not a (0, d) result
        raise InputDataError(f"input file {str(input)!r} is empty; give it at least one text")
    encoder = TextEncoder.from_pretrained(model, device=device)
    vectors = encoder.encode(texts, batch_size=batch_size, pooling=pooling, normalize=normalize,
                             max_length=max_length, show_progress=len(texts) > 8 * batch_size)
    atomic_save_npy(output, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}", err=True)


def _encode_corpus(input: Path, output: Path, model: str, shard_rows: int, **options) -> None:
    """`encode --output DIR`: streamed, sharded, resumable, one share per torchrun rank (tasks/bulk_encode.py)."""
    from ..tasks.bulk_encode import bulk_encode

    result = bulk_encode(input, output, model, shard_rows=shard_rows, **options)
    if int(os.environ.get("RANK", "0")) == 0:
        done = f"{result.shards_encoded} shards encoded, {result.shards_skipped} already done"
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            done = f"rank 0: {done}; the other ranks encoded the rest"
        typer.echo(f"wrote {result.rows} x {result.dim} embeddings to {result.output} ({done})", err=True)


def _encode_arrays(run_dir: Path, input: Path, output: Path, batch_size: int) -> None:
    """`encode` for an autoencoder run: raw samples in (scaled as in training), codes out."""
    from ..artifacts.autoencoder import ArrayEncoder
    from ..files import atomic_save_npy

    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    encoder = ArrayEncoder.from_run(run_dir)
    codes = encoder.encode(encoder.read_samples(input), batch_size=batch_size)  # a CSV by the run's columns
    atomic_save_npy(output, codes)
    typer.echo(f"wrote {codes.shape[0]} x {codes.shape[1]} codes to {output}", err=True)


@app.command()
def similarity(
    texts: Annotated[list[str], typer.Argument(help="Two or more texts to compare.")],
    model: ModelOption = "minilm",
    pooling: Annotated[str | None, typer.Option(help="mean, cls or max (default: the checkpoint's).")] = None,
) -> None:
    """Print the cosine-similarity matrix of the given texts."""
    from ..artifacts.text_encoder import TextEncoder

    check_options(pooling=pooling)
    if len(texts) < 2:
        raise InputDataError(f"similarity compares texts with each other; got {len(texts)}, give two or more "
                             '(quote each one: encoderlab similarity "first text" "second text")')

    encoder = TextEncoder.from_pretrained(model)
    matrix = encoder.similarity(texts, pooling=pooling)
    table = Table(title=f"cosine similarity ({model}, {pooling or encoder.pooling} pooling)")
    table.add_column("#", justify="right")
    table.add_column("text")
    for j in range(len(texts)):
        table.add_column(str(j), justify="right")
    for i, text in enumerate(texts):
        short = text if len(text) <= 48 else text[:45] + "…"
        table.add_row(str(i), short, *(f"{matrix[i, j]:.3f}" for j in range(len(texts))))
    Console(width=max(100, 60 + 8 * len(texts))).print(table)
