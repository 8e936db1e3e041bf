"""The `encoderlab` command: each subcommand maps to one function of the Python API.

User errors (`EncoderlabError`) are printed as one clear line without a traceback, exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from .errors import EncoderlabError, InputDataError

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


def _check_options(**values: int | str | None) -> None:
    """One clear line for an option value the task would reject deep inside (or with a traceback)."""
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if name == "pooling":
            from .nn.pooling import POOLINGS  # the commands that pass a pooling load torch anyway

            if value not in POOLINGS:
                raise InputDataError(f"{flag} {value} is unknown; choose {', '.join(POOLINGS[:-1])} or {POOLINGS[-1]}")
            continue
        least = 3 if name == "max_length" else 1  # [CLS] + one token + [SEP]
        if value < least:
            raise InputDataError(f"{flag} {value} must be at least {least}")


def _summary(text: str) -> None:
    """A training command's closing lines, on stderr, printed once: by rank 0 when torchrun runs several."""
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(text, err=True)


def _echo_metrics(metrics: dict, keys: tuple[str, ...], digits: int = 4) -> None:
    _summary(" ".join(f"{k}={metrics[k]:.{digits}g}" for k in keys if isinstance(metrics.get(k), int | float)))


def _echo_final(metrics: dict, label: str = "final model", extra: str = "") -> None:
    """Where the trained model is, and the command that shows the whole run."""
    final = metrics.get("final_dir")
    if final:
        _summary(f"{label}: {final}{extra}")
        _summary(f"look at the run: encoderlab report {Path(final).parent}")


@app.command()
def encode(
    input: Annotated[Path, typer.Option("--input", "-i", help=".txt (one text per line), .jsonl or .csv/.tsv file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the (N, d) float32 .npy.")],
    model: ModelOption = "minilm",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    pooling: Annotated[str | None, typer.Option(help="mean, cls or max (default: the checkpoint's).")] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize",
                                                    help="L2-normalise (default: the checkpoint's).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Truncate texts to this many tokens.")] = None,
    text_field: Annotated[str, typer.Option(help="Field (.jsonl) or column (.csv/.tsv) holding the text.")] = "text",
    device: Annotated[str, typer.Option(help="cpu, cuda, mps …")] = "cpu",
) -> None:
    """Embed every text of a file and write the vectors, in input order, to a .npy file.

    With an autoencoder run directory as --model, embeds the rows of a .npy / .npz / .csv file instead."""
    from .artifacts.autoencoder import autoencoder_dir

    _check_options(batch_size=batch_size, pooling=pooling, max_length=max_length)
    if autoencoder_dir(model) is not None:  # dispatch: autoencoder runs take arrays, not texts
        return _encode_arrays(Path(model), input, output, batch_size=max(batch_size, 256))
    if input.suffix.lower() in (".npy", ".npz"):
        raise InputDataError(f"--input {str(input)!r} holds arrays, which only an autoencoder run encodes, and "
                             f"--model {model!r} is not one; give the out_dir of `encoderlab autoencode` (or a "
                             ".txt/.jsonl of texts for a text encoder)")
    from .artifacts.text_encoder import TextEncoder
    from .data.text_input import read_texts
    from .files import atomic_save_npy

    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    texts = read_texts(input, text_field=text_field)
    if not texts:  # as predict: an empty input is a mistake (wrong file), not a (0, d) result
        raise InputDataError(f"input file {str(input)!r} is empty; give it at least one text")
    encoder = TextEncoder.from_pretrained(model, device=device)
    vectors = encoder.encode(texts, batch_size=batch_size, pooling=pooling, normalize=normalize,
                             max_length=max_length, show_progress=len(texts) > 8 * batch_size)
    atomic_save_npy(output, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}", err=True)


@app.command()
def similarity(
    texts: Annotated[list[str], typer.Argument(help="Two or more texts to compare.")],
    model: ModelOption = "minilm",
    pooling: Annotated[str | None, typer.Option(help="mean, cls or max (default: the checkpoint's).")] = None,
) -> None:
    """Print the cosine-similarity matrix of the given texts."""
    from .artifacts.text_encoder import TextEncoder

    _check_options(pooling=pooling)
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


def _check_command_of(config: Path | None, resume: Path | None, command: str) -> None:
    """A --config file or --resume run of the other command of the pretrain / finetune pair: say which
    command it is for, instead of failing on the first config key this command does not know."""
    from .artifacts.runs import command_of
    from .config import read_yaml

    for path, flag in ((config, "--config"), (None if resume is None else resume / "config.yaml", "--resume")):
        if path is None or not path.is_file():
            continue
        wrote = command_of(read_yaml(path))
        if wrote is not None and wrote != command:
            given = config if flag == "--config" else resume
            kind = "config" if flag == "--config" else "run"
            raise InputDataError(f"{given} is an `encoderlab {wrote}` {kind}; use `encoderlab {wrote} {flag} {given}`")


@app.command(context_settings=TRAINING_COMMAND)
def pretrain(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Pretrain a BERT encoder from scratch with masked-language modelling (see docs/pretraining.md).

    \b
    encoderlab pretrain data=corpus.txt out_dir=runs/mine max_steps=2000
    encoderlab pretrain --config configs/pretrain-tiny-en.yaml
    \b
    Main keys: data=FILE|FOLDER|catalog names  text_field=  out_dir=
    model.preset=bert-tiny|bert-mini|...  tokenizer.vocab_size=
    max_seq_len=  batch_size=  max_steps=  lr=  threads=
    (an unknown key is an error that lists every valid one)"""
    from .tasks.pretrain import PretrainConfig, pretrain_mlm
    from .training import run_task

    _check_command_of(config, resume, "pretrain")
    metrics = run_task(pretrain_mlm, PretrainConfig, config, overrides or [], resume_dir=resume)
    _echo_metrics(metrics, ("initial_eval_loss", "eval_loss", "initial_eval_accuracy", "eval_accuracy", "step",
                            "seconds"))
    _echo_final(metrics, extra=f"  loss curve: {metrics.get('loss_curve')}")


def _encode_arrays(run_dir: Path, input: Path, output: Path, batch_size: int) -> None:
    """`encode` for an autoencoder run: raw samples in (scaled as in training), codes out."""
    from .artifacts.autoencoder import ArrayEncoder
    from .files import atomic_save_npy

    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    encoder = ArrayEncoder.from_run(run_dir)
    codes = encoder.encode(encoder.read_samples(input), batch_size=batch_size)  # a CSV by the run's columns
    atomic_save_npy(output, codes)
    typer.echo(f"wrote {codes.shape[0]} x {codes.shape[1]} codes to {output}", err=True)


@app.command(context_settings=TRAINING_COMMAND)
def autoencode(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train an autoencoder or VAE on MNIST, Shuttle or your arrays (see docs/autoencoders.md)."""
    from .tasks.autoencode import AutoencodeConfig, train_autoencoder
    from .training import run_task

    metrics = run_task(train_autoencoder, AutoencodeConfig, config, overrides or [], resume_dir=resume)
    _echo_metrics(metrics, ("test_mse", "pca_test_mse", "test_bce", "test_neg_elbo", "test_nll", "test_auroc",
                            "test_ap", "step"), digits=5)
    _echo_final(metrics)


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write (model.onnx, plus the "
                                         "tokenizer for a text encoder).")],
    model: ModelOption = "minilm",
    format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset version.")] = 17,
    tolerance: Annotated[float, typer.Option(help="Largest allowed max-abs difference to PyTorch.")] = 1e-4,
) -> None:
    """Export a text encoder or an autoencoder run for deployment, verified against our PyTorch outputs
    before it is written."""
    from .artifacts.autoencoder import autoencoder_dir
    from .artifacts.text_encoder import TextEncoder
    from .compression.export_onnx import export_onnx_dir

    if format != "onnx":
        raise InputDataError(f"--format {format!r} is not supported; use --format onnx")
    if autoencoder_dir(model) is not None:
        from .compression.export_onnx_autoencoder import export_autoencoder_onnx_dir

        done = export_autoencoder_onnx_dir(model, output, opset=opset, tolerance=tolerance)
        typer.echo(f"wrote {done.path} (opset {done.opset}); onnxruntime vs PyTorch on {done.n_samples} held-out "
                   f"samples, largest relative difference: code {done.max_rel_code:.1e}, reconstruction "
                   f"{done.max_rel_reconstruction:.1e}, score {done.max_rel_score:.1e} (tolerance {done.tolerance:g})")
        return
    report = export_onnx_dir(TextEncoder.from_pretrained(model), output, opset=opset, tolerance=tolerance)
    typer.echo(f"wrote {report.path} (opset {report.opset}); onnxruntime vs PyTorch on {report.n_texts} texts: "
               f"max-abs {report.max_abs_hidden:.1e} hidden, {report.max_abs_embedding:.1e} embedding "
               f"(tolerance {report.tolerance:g})")


# ---------------------------------------------------------------------------------------------- fine-tuning
PrecisionOption = Annotated[str, typer.Option(help="fp32, or int8: the encoder's Linear layers in int8 (SmoothQuant, "
                                                    "calibrated on the model's own training texts).")]


def _fp32_only(precision: str, what: str) -> None:
    if precision != "fp32":
        raise InputDataError(f"--precision {precision} is available for text classifiers; {what} runs in fp32 "
                             "(drop --precision)")

def _finetune_task(config: Path | None, overrides: list[str], resume: Path | None):
    """(task function, config class) named by `task=` (an override, the YAML, or the resumed run's config)."""
    from .config import parse_overrides, read_yaml

    task = parse_overrides(overrides).get("task")
    if task is None and resume is not None and (resume / "config.yaml").is_file():
        task = read_yaml(resume / "config.yaml").get("task")
    if task is None and config is not None:
        task = read_yaml(config).get("task")
    task = task or "classify"
    if task == "classify":
        from .tasks.classify import ClassifyConfig, finetune_classifier
        return finetune_classifier, ClassifyConfig
    if task == "tag":
        from .tasks.tag import TagConfig, finetune_tagger
        return finetune_tagger, TagConfig
    if task == "embed":
        from .tasks.embed import EmbedConfig, train_embeddings
        return train_embeddings, EmbedConfig
    raise InputDataError(f"task={task!r} is unknown; choose classify, tag or embed")


@app.command(context_settings=TRAINING_COMMAND)
def finetune(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Fine-tune an encoder: classify texts, tag tokens or train sentence embeddings (docs/finetuning.md).

    \b
    encoderlab finetune data=reviews.csv text_column=review label_column=stars
    encoderlab finetune task=tag data=tags.conll init=runs/pretrain mode=lora
    encoderlab finetune task=embed data=pairs.jsonl init=minilm
    \b
    Main keys: task=classify|tag|embed  data=FILE|catalog name
    text_column= label_column=  init=minilm|random|RUN_DIR
    mode=full|frozen|lora  out_dir=  epochs=  max_steps=  lr=  threads=
    (an unknown key is an error that lists every valid one)"""
    from .training import run_task

    _check_command_of(config, resume, "finetune")
    task_fn, config_cls = _finetune_task(config, overrides or [], resume)
    metrics = run_task(task_fn, config_cls, config, overrides or [], resume_dir=resume)
    _echo_metrics(metrics, ("test_accuracy", "test_macro_f1", "test_token_accuracy", "validation_accuracy",
                            "validation_token_accuracy", "initial_validation_recall_at_1", "validation_recall_at_1",
                            "initial_validation_same_label_at_1", "validation_same_label_at_1",
                            "trainable_parameters", "step", "train_seconds", "seconds"))
    _echo_final(metrics)


@app.command(context_settings=TRAINING_COMMAND)
def prune(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Prune a fine-tuned classifier (magnitude, heads, ffn, heads+ffn), fine-tune it to recover, report
    sparsity, accuracy and speed before/after (see docs/pruning.md)."""
    from .tasks.prune import PruneConfig, prune_classifier
    from .training import run_task

    metrics = run_task(prune_classifier, PruneConfig, config, overrides or [], resume_dir=resume)
    _echo_metrics(metrics, ("sparsity", "parameters_before", "parameters_after", "test_accuracy_before",
                            "test_accuracy_pruned", "test_accuracy", "test_macro_f1", "step", "seconds"))
    for workload, speed in metrics.get("speed", {}).items():
        _summary(f"{workload}: {speed['sentences_per_s_before']:.1f} -> {speed['sentences_per_s_after']:.1f} "
                 f"sentences/s ({speed['speedup']:.2f}x)")
    _echo_final(metrics)


@app.command(context_settings=TRAINING_COMMAND)
def seq2seq(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train an LSTM/GRU encoder + attention decoder on CMUdict (grapheme-to-phoneme) or your own pairs
    (see docs/seq2seq.md)."""
    from .tasks.seq2seq import seq2seq_command

    metrics = seq2seq_command(config, overrides or [], resume)
    _echo_metrics(metrics, (*(k for k in metrics if "test_" in k and k.endswith(("exact_match", "error_rate"))),
                            "step"))
    _echo_final(metrics)


@app.command("seq2seq-predict")
def seq2seq_predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="A seq2seq run: its out_dir (or final/).")],
    texts: Annotated[list[str] | None, typer.Argument(help="Sources to convert (or --input FILE).")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help=".txt file, one source per line, or a pairs "
                                               ".csv/.tsv/.jsonl (its source column, as in training).")] = None,
    beam_size: Annotated[int, typer.Option(help="Beam width; 1 = greedy decoding.")] = 1,
) -> None:
    """Print `source<TAB>output` for every source with a trained seq2seq run (see docs/seq2seq.md)."""
    from .artifacts.seq2seq import seq2seq_dir
    from .config import read_yaml
    from .tasks.seq2seq import predict_seq2seq, print_predictions, read_inputs

    run = seq2seq_dir(model)  # a pairs file is read by the column the run trained on
    column = read_yaml(run / "config.yaml").get("source_column", "source") if run is not None else None
    sources = [*(texts or []), *(read_inputs(input, column=column) if input is not None else [])]
    if not sources:
        raise InputDataError("nothing to predict: give sources as arguments or --input FILE (one per line)")
    print_predictions(sources, predict_seq2seq(model, sources, beam_size=beam_size))


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
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix of a fine-tuned model."""
    from .tasks.finetune import finetuned_meta

    _check_options(max_examples=max_examples)
    if finetuned_meta(model).get("task") == "token-classification":
        from .tasks.tag import evaluate_tagger

        _fp32_only(precision, "tagging")
        report, path = evaluate_tagger(model, data, split, output_dir, max_examples=max_examples)
    else:
        from .tasks.classify import evaluate_classifier

        report, path = evaluate_classifier(model, data, split, output_dir, text_column, label_column, max_examples,
                                           precision=precision)
    scored = json.loads(path.read_text(encoding="utf-8")).get("split")
    what = {"all": "every row of", "test": "the held-out test rows of"}.get(scored, f"the {scored} rows of")
    typer.echo(f"{what} {data}:")  # which rows: --split auto picks the test split only for the training data
    typer.echo(report.format())
    typer.echo(f"wrote {path} and {path.with_name(path.stem + '_confusion.png')}", err=True)


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab finetune` (or its final/).")],
    input: Annotated[Path, typer.Option("--input", "-i", help=".txt (one text per line), .jsonl or .csv.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write one JSON line per input (.jsonl), "
                                                                "or a table with a .csv / .tsv name.")],
    text_column: Annotated[str, typer.Option(help="Text field (.jsonl) or column (.csv).")] = "text",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
    precision: PrecisionOption = "fp32",
) -> None:
    """Predict a label and class probabilities (or per-token tags) for every text of a file."""
    from .tasks.finetune import finetuned_meta

    _check_options(batch_size=batch_size)
    if finetuned_meta(model).get("task") == "token-classification":
        from .tasks.tag import predict_tags_file

        _fp32_only(precision, "tagging")
        n = predict_tags_file(model, input, output, text_column=text_column, batch_size=batch_size)
    else:
        from .tasks.classify import predict_file

        n = predict_file(model, input, output, text_column=text_column, batch_size=batch_size, precision=precision)
    typer.echo(f"wrote {n} predictions to {output}", err=True)


@app.command(context_settings=TRAINING_COMMAND)
def distill(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Distil a teacher into a shallower student: embeddings or classifier logits (docs/distillation.md)."""
    from .tasks.distill import DistillConfig
    from .tasks.distill import distill as distill_task
    from .training import run_task

    metrics = run_task(distill_task, DistillConfig, config, overrides or [], resume_dir=resume)
    _echo_metrics(metrics, ("initial_test_cosine_mean", "test_cosine_mean", "test_cosine_worst",
                            "initial_student_test_accuracy", "student_test_accuracy", "teacher_test_accuracy",
                            "speedup_variable_length", "student_parameters", "teacher_parameters", "step",
                            "train_seconds", "seconds"))
    _echo_final(metrics, "student", f"  (layers {metrics.get('layers')} of the teacher's "
                                    f"{metrics.get('teacher_layers')})")


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

    from .artifacts.text_encoder import TextEncoder
    from .evaluation.speed import (
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


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="One or more run directories (the out_dir of a training run).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The .html to write (default: "
                                                "RUN_DIR/report.html for one run, ./report.html for several).")] = None,
    title: Annotated[str | None, typer.Option(help="Page title (default: the run names).")] = None,
) -> None:
    """One HTML page of runs side by side: final metrics, training and eval curves, evaluations, plots."""
    from .report.html_report import build_report

    path = build_report(runs, output, title)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(runs)} run(s)); open it in a browser")


@app.command()
def robustness(
    model: Annotated[str, typer.Option("--model", "-m", help="A fine-tuned classifier's OUT_DIR, a text encoder "
                                       "(minilm, a checkpoint directory), a seq2seq run or an autoencoder run.")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="Texts (catalog name or .txt/.jsonl/.csv) or "
                                             "arrays to perturb (default: the run's own test data).")] = None,
    levels: Annotated[str | None, typer.Option(help="Comma-separated noise levels: typo rates for text "
                                               "(default 0,0.02,0.05,0.1,0.2), Gaussian sigma for arrays "
                                               "(default 0,0.1,0.2,0.3,0.5).")] = None,
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
    arrays), level by level against the clean input."""
    from .evaluation.robustness import markdown_table
    from .tasks.robustness import evaluate_robustness

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


def main(argv: list[str] | None = None) -> None:
    np.set_printoptions(precision=4, suppress=True)
    try:
        app(args=argv, standalone_mode=True)
    except EncoderlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
