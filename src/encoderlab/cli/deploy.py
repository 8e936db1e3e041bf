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
    if found is not None and found.kind.name == "seq2seq":  # a Transformer seq2seq run: encoder + decoder graphs
        from ..compression.export_onnx_seq2seq import export_seq2seq_onnx

        done = export_seq2seq_onnx(model, output, opset=opset, tolerance=tolerance)
        typer.echo(f"wrote {output}/encoder.onnx + decoder.onnx + decoder_memory.onnx + decoder_step.onnx (cached "
                   f"keys/values; opset {done.opset}); onnxruntime vs PyTorch on {done.n_sources} held-out sources: "
                   f"max-abs {done.max_abs_encoder:.1e} encoder output, {done.max_abs_logits:.1e} logits, "
                   f"{done.max_abs_step_logits:.1e} cached-step logits (tolerance {done.tolerance:g}); greedy "
                   f"outputs identical for {100 * done.greedy_agreement:.0f}% (cached: "
                   f"{100 * done.greedy_agreement_cached:.0f}%)")
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
    if found is not None and found.kind.name in ("classifier", "tagger"):  # say what is (not) in the graph
        typer.echo(f"note: {model} is a fine-tuned {found.kind.name}; the export holds its encoder only (hidden "
                   "states and the pooled embedding), not its head: no logits or labels. Serve the run itself "
                   f"(`encoderlab serve --model {model}`) for its predictions", err=True)
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
    engines: Annotated[str, typer.Option(help="Comma-separated: fp32,bf16,int8 (ours), transformers, onnxruntime, "
                                         "openvino, ctranslate2 (all their precisions; or e.g. openvino-int8)")]
    = "fp32,bf16,int8,transformers,onnxruntime",
    corpus: Annotated[int, typer.Option(help="Texts in the corpus workload (one call per engine, length-sorted "
                                        "batches); 0 leaves it out.")] = 1024,
    corpus_repeats: Annotated[int, typer.Option(help="Timed corpus calls per engine.")] = 3,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Your texts (.txt, one per line; .jsonl, .csv, "
                                              ".parquet): time a random batch of them instead of the BBC news "
                                              "batches.")] = None,
    text_field: Annotated[str, typer.Option(help="Field (.jsonl) or column (.csv, .parquet) of the text.")] = "text",
) -> None:
    """Inference speed side by side: sentences/s, ms/batch, peak memory, agreement with fp32; the CPU's
    features, each engine's kernels, and the share of the machine's matmul peak each engine uses."""
    import torch

    from ..artifacts.text_encoder import TextEncoder
    from ..cpu_features import describe_cpu
    from ..evaluation.speed import (
        build_engines,
        corpus_workload,
        encoder_gflop,
        file_text_workloads,
        markdown_table,
        matmul_peaks,
        measure,
        precision_of,
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
    try:
        built = build_engines(encoder, calibration, threads, tuple(engines.split(",")), notes, batch_size)
    except ValueError as exc:
        raise InputDataError(f"--engines {engines!r}: {exc}") from exc
    peaks = matmul_peaks(threads)  # before and after the engines: the best of both counts
    results = measure(built, workloads, repeats=repeats)
    big = {} if data is not None or corpus <= 0 else corpus_workload(encoder, corpus, batch_size)
    results += measure(built, big, repeats=corpus_repeats, warmup=1)
    peaks = {dtype: max(peak, matmul_peaks(threads).get(dtype, 0.0)) for dtype, peak in peaks.items()}
    typer.echo(f"model {model}, torch {torch.__version__}, {threads} threads, batch {batch_size}, "
               f"median of {repeats} calls ({corpus_repeats} on the corpus), real text ({data or 'bbc-news'})\n"
               f"CPU: {describe_cpu()}\n"
               "matmul peaks (2048², best of torch and oneDNN, one matmul or one per thread): "
               + ", ".join(f"{dtype} {peak:.0f} G{'OP' if dtype == 'int8' else 'FLOP'}/s"
                           for dtype, peak in peaks.items()) + "\n")
    typer.echo(markdown_table(results))
    all_workloads = {**workloads, **big}
    for r in results:
        peak = peaks.get(precision_of(r.engine), 0.0)
        if (r.engine.startswith("encoderlab") or r.workload in big) and peak > 0:
            useful = encoder_gflop(encoder, all_workloads[r.workload]) / (r.p50_ms / 1000)
            notes.append(f"{r.workload}: {r.engine} does {useful:.0f} useful GFLOP/s = {100 * useful / peak:.0f}% "
                         f"of this machine's {precision_of(r.engine)} matmul peak ({peak:.0f})")
    notes += [f"kernels, {name}: {engine.kernels}" for name, engine in built.items()]
    typer.echo("\n" + "\n".join(f"- {note}" for note in notes))
