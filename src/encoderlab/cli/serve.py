"""`encoderlab serve`: saved models behind an OpenAI-compatible HTTP API (see docs/serving.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import app


def model_name(spec: str) -> tuple[str, str]:
    """`NAME=PATH` or `PATH` -> (name, path); a path's name is its directory's (the run's, for a final/)."""
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name:
        return name, path
    path = Path(spec)
    return (path.parent.name if path.name == "final" else path.name) or spec, spec


def load_served(specs: list[str], precision: str, calibration: Path | None, text_field: str) -> dict:
    """name -> loaded model, through the registry; int8 quantizes text encoders and classifiers here (the serve
    package sits below compression)."""
    from ..artifacts.registry import load

    models = {}
    for spec in specs:
        name, path = model_name(spec)
        if name in models:
            raise InputDataError(f"two models are named {name!r}; name them: --model a={path} --model b=...")
        model = load(path)
        if precision == "int8":
            model = quantize(model, name, calibration, text_field)
        models[name] = model
    return models


def quantize(model, name: str, calibration: Path | None, text_field: str):
    from ..artifacts.classifier import TextClassifier
    from ..artifacts.text_encoder import TextEncoder
    from ..compression.quantize import quantize_int8

    if isinstance(model, TextClassifier):
        from ..tasks.classify import calibration_texts

        return quantize_int8(model, calibration_texts(model))
    if not isinstance(model, TextEncoder):
        return model  # other kinds run in fp32 (said at start-up)
    if calibration is not None:
        from ..data.text_input import read_texts

        texts = [t for t in read_texts(calibration, text_field=text_field) if t.strip()][:256]
    else:
        from ..evaluation.speed import real_text_workloads

        texts = [t for batch in real_text_workloads(model, 32, seed=1).values() for t in batch]
    typer.echo(f"{name}: int8, calibrated on {len(texts)} texts", err=True)
    return quantize_int8(model, texts)


@app.command()
def serve(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="A saved model to serve: an alias (minilm), a run directory or a model directory; "
                              "NAME=PATH names it. Repeat for several models.")] = ["minilm"],  # noqa: B006
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="ENCODERLAB_API_KEY", show_envvar=True,
                                                help="Require `Authorization: Bearer KEY`.")] = None,
    max_batch_tokens: Annotated[int, typer.Option(help="Token budget of one batched forward pass.")] = 8192,
    max_queue: Annotated[int, typer.Option(help="Texts waiting, all requests together; beyond: 429.")] = 4096,
    max_texts: Annotated[int, typer.Option(help="Inputs per request; beyond: 413.")] = 2048,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body in MB; beyond: 413.")] = 16.0,
    batching: Annotated[bool, typer.Option("--batching/--no-batching",
                                           help="Share forward passes across requests.")] = True,
    chunk: Annotated[bool, typer.Option("--chunk/--no-chunk",
                                        help="Embed texts over the model's limit in windows, averaged.")] = False,
    precision: Annotated[str, typer.Option(help="fp32; bf16 (text encoders) or int8 (text encoders and "
                                                "classifiers). Other kinds run in fp32.")] = "fp32",
    calibration: Annotated[Path | None, typer.Option(help="int8: texts to calibrate on (.txt/.jsonl/.csv); "
                                                          "default: BBC news sentences.")] = None,
    text_field: Annotated[str, typer.Option(help="Field/column of --calibration holding the text.")] = "text",
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: torch's, one per core).")] = None,
    workers: Annotated[int | None, typer.Option(help="Batches in flight at once, each on threads/workers threads "
                                                     "(default: 2 when there are 2+ threads).")] = None,
    drain_seconds: Annotated[float, typer.Option(help="On SIGTERM, time in-flight requests get to finish.")] = 30.0,
) -> None:
    """Serve saved models over HTTP: POST /v1/embeddings (OpenAI's format), /v1/classify, /v1/tag, /v1/generate,
    /v1/score, /v1/recommend, /v1/tokenize; GET /v1/models, /health, /ready, /metrics, / (a page to try them).
    Audio classifiers, multimodal classifiers and image-text models take JSON objects: {"audio": base64 file},
    {column: value} rows, {"image": base64 PNG} (see docs/serving.md)."""
    import importlib.util

    from ..errors import EncoderlabError
    from ..serve.settings import ServeSettings

    missing = [m for m in ("fastapi", "uvicorn", "orjson") if importlib.util.find_spec(m) is None]
    if missing:
        raise EncoderlabError(f"encoderlab serve needs {' and '.join(missing)}: pip install 'encoderlab[serve]'")

    settings = ServeSettings(host=host, port=port, api_key=api_key, max_batch_tokens=max_batch_tokens,
                             max_queue=max_queue, max_texts=max_texts, max_body_bytes=int(max_body_mb * 2**20),
                             batching=batching, chunk=chunk, precision=precision, workers=workers,
                             drain_seconds=drain_seconds)
    if not settings.loopback and settings.api_key is None:
        typer.echo(f"warning: listening on {host} without --api-key: anyone who can reach it can use it", err=True)
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from ..serve.app import create_app, run

    models = load_served(model, precision, calibration, text_field)
    for name, loaded in models.items():
        kind = getattr(loaded, "kind", "seq2seq")
        note = " (fp32: --precision applies to text models)" if precision != "fp32" and kind not in (
            "text-encoder", "classifier") else ""
        typer.echo(f"serving {name}: {kind}{note}", err=True)
    sys.stdout.flush()
    run(create_app(models, settings), settings)
