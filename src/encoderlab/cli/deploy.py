"""Deploying a model: `encoderlab export` (ONNX) and `bench` (speed side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import ModelOption, app


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write (model.onnx, plus the "
                                         "tokenizer for a text encoder).")],
    model: ModelOption = "minilm",
    format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset version.")] = 17,
    tolerance: Annotated[float, typer.Option(help="Largest allowed max-abs difference to PyTorch.")] = 1e-4,
) -> None:
    """Export a text encoder, an autoencoder run or an audio classifier (CNN or Transformer, log-mel front end
    inside) for deployment, verified against our PyTorch outputs before it is written."""
    from ..artifacts.registry import detect
    from ..artifacts.text_encoder import TextEncoder
    from ..compression.export_onnx import export_onnx_dir

    if format != "onnx":
        raise InputDataError(f"--format {format!r} is not supported; use --format onnx")
    found = detect(model)
    if found is not None and found.kind.name == "autoencoder":
        from ..compression.export_onnx_autoencoder import export_autoencoder_onnx_dir

        done = export_autoencoder_onnx_dir(model, output, opset=opset, tolerance=tolerance)
        typer.echo(f"wrote {done.path} (opset {done.opset}); onnxruntime vs PyTorch on {done.n_samples} held-out "
                   f"samples, largest relative difference: code {done.max_rel_code:.1e}, reconstruction "
                   f"{done.max_rel_reconstruction:.1e}, score {done.max_rel_score:.1e} (tolerance {done.tolerance:g})")
        return
    if found is not None and found.kind.name == "audio-classifier":
        from ..compression.export_onnx_audio import export_audio_onnx_dir
        from ..errors import EncoderlabError
        from ..tasks.audio import evaluation_clips

        try:  # checked on the run's own held-out clips where they can be read (else noise clips)
            waves, checked_on = evaluation_clips(model).clips.waves, "held-out test clips of the run"
        except EncoderlabError as exc:
            waves, checked_on = None, "noise clips"
            typer.echo(f"note: checking the export on noise clips ({exc})", err=True)
        audio = export_audio_onnx_dir(model, output, checked_on=checked_on, opset=opset, tolerance=tolerance,
                                      waves=waves)
        longest = f", clips up to {audio.max_samples} samples" if audio.max_samples else ""
        typer.echo(f"wrote {audio.path} (opset {audio.opset}, {audio.architecture}, waves at {audio.sample_rate} Hz"
                   f"{longest}); onnxruntime vs PyTorch on {audio.n_clips} {audio.checked_on}, largest relative "
                   "difference: "
                   f"logits {audio.max_abs_logits:.1e}, embedding {audio.max_abs_embedding:.1e} "
                   f"(tolerance {audio.tolerance:g})")
        return
    report = export_onnx_dir(TextEncoder.from_pretrained(model), output, opset=opset, tolerance=tolerance)
    typer.echo(f"wrote {report.path} (opset {report.opset}); onnxruntime vs PyTorch on {report.n_texts} texts: "
               f"max-abs {report.max_abs_hidden:.1e} hidden, {report.max_abs_embedding:.1e} embedding "
               f"(tolerance {report.tolerance:g})")


@app.command()
def bench(
    model: ModelOption = "minilm",
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 32,
    repeats: Annotated[int, typer.Option(help="Timed calls per engine and workload (median reported).")] = 20,
    threads: Annotated[int, typer.Option(help="CPU threads for every engine.")] = 0,
    engines: Annotated[str, typer.Option(help="Comma-separated: fp32,bf16,int8,transformers,onnxruntime")]
    = "fp32,bf16,int8,transformers,onnxruntime",
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Your texts (.txt, one per line, or .jsonl): "
                                              "time a random batch of them instead of the BBC news batches.")] = None,
    text_field: Annotated[str, typer.Option(help="Field holding the text in a .jsonl --data file.")] = "text",
) -> None:
    """Inference speed side by side: sentences/s, ms/batch, peak memory, agreement with fp32."""
    import torch

    from ..artifacts.text_encoder import TextEncoder
    from ..evaluation.speed import (
        build_engines,
        corpus_throughput,
        encoder_gflop,
        file_text_workloads,
        markdown_table,
        matmul_peak_gflops,
        measure,
        real_text_workloads,
    )

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    encoder = TextEncoder.from_pretrained(model)
    if data is not None:
        workloads, calibration = file_text_workloads(data, encoder, batch_size, text_field)
        n_texts = len(next(iter(workloads.values())))
        if n_texts < batch_size:
            typer.echo(f"note: {data} holds {n_texts} non-blank texts, so the timed batch has {n_texts}, not "
                       f"--batch-size {batch_size}", err=True)
    else:
        workloads = real_text_workloads(encoder, batch_size)
        calibration = [t for texts in real_text_workloads(encoder, batch_size, seed=1).values() for t in texts]
    notes: list[str] = []
    built = build_engines(encoder, calibration, threads, tuple(engines.split(",")), notes)
    peak_before = matmul_peak_gflops(threads)  # measured before and after the engines: the best of both counts
    results = measure(built, workloads, repeats=repeats)
    typer.echo(f"model {model}, torch {torch.__version__}, {threads} threads, batch {batch_size}, "
               f"median of {repeats} calls, real text ({data or 'bbc-news'})\n")
    typer.echo(markdown_table(results))
    peak = max(peak_before, matmul_peak_gflops(threads))
    for r in results:
        if r.engine == "encoderlab fp32":
            useful = encoder_gflop(encoder, workloads[r.workload]) / (r.p50_ms / 1000)
            notes.append(f"{r.workload}: encoderlab fp32 does {useful:.0f} useful GFLOP/s = "
                         f"{100 * useful / peak:.0f}% of this machine's fp32 matmul peak ({peak:.0f} GFLOP/s)")
    if data is None and "encoderlab fp32" in built:
        ms, useful = corpus_throughput(encoder, batch_size)
        notes.append(f"a corpus of 8 different variable batches in one encode call: encoderlab fp32 takes {ms:.0f} "
                     f"ms per batch, {useful:.0f} useful GFLOP/s = {100 * useful / peak:.0f}% of the peak")
    typer.echo("\n" + "\n".join(f"- {note}" for note in notes))
