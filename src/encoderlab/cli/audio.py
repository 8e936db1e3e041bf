"""The audio commands: `encoderlab audio` (train + evaluate), `audio-predict`, `audio-encode`, `audio-export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import TRAINING_COMMAND, ConfigFile, Overrides, ResumeDir, app, check_options, echo_final, echo_metrics

ModelDir = Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab audio` (or its final/).")]
Files = Annotated[list[Path], typer.Argument(help="Audio files (.wav, .flac, .ogg, ...), or one .txt listing paths.")]


@app.command(context_settings=TRAINING_COMMAND)
def audio(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train and evaluate an audio classifier (log-mel + CNN or Transformer), with MFCC and level baselines,
    the same-speaker control and accuracy under noise (see docs/audio.md).

    \b
    encoderlab audio --config configs/audio-langid.yaml
    encoderlab audio data=my_sounds/ sample_rate=16000 model.architecture=transformer out_dir=runs/sounds
    \b
    Main keys: data=asterisk-prompts|FOLDER|list.csv  languages=\\[en,es,fr]  sample_rate=  max_seconds=
    model.architecture=cnn|transformer  train_noise_snr=[0,30]  noise_snrs=[20,10,0]  baselines=\\[mfcc,level]
    epochs=  max_steps=  batch_size=  lr=  threads=  out_dir=
    (an unknown key is an error that lists every valid one)"""
    from ..tasks.audio import AudioConfig, train_audio_classifier
    from ..training import run_task

    metrics = run_task(train_audio_classifier, AudioConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("test_accuracy", "test_macro_f1", "test_control_accuracy", "mfcc_test_accuracy",
                            "mfcc_test_control_accuracy", "level_test_control_accuracy", "step"))
    echo_final(metrics, extra=f"  tables: {Path(metrics.get('final_dir', '.')).parent / 'audio_report.md'}")


def _paths(files: list[Path]) -> list[Path]:
    if len(files) == 1 and files[0].suffix.lower() == ".txt":
        listed = [line.strip() for line in files[0].read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(files[0].parent / p) if not Path(p).is_absolute() else Path(p) for p in listed]
    if not files:
        raise InputDataError("no audio files given; pass one or more paths (or a .txt listing them)")
    return files


@app.command("audio-predict")
def audio_predict(
    files: Files,
    model: ModelDir,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write one JSON line per file here "
                                                                       "(default: print them).")] = None,
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 32,
) -> None:
    """Label every audio file: one JSON line per file with the label and the class probabilities."""
    from ..artifacts.audio import AudioClassifier
    from ..files import atomic_write_text

    check_options(batch_size=batch_size)
    clf = AudioClassifier.from_dir(model)
    paths = _paths(files)
    proba = clf.predict_proba(paths, batch_size=batch_size)
    lines = [json.dumps({"path": str(p), "label": clf.label_names[int(row.argmax())],
                         "probabilities": {n: round(float(v), 6) for n, v in zip(clf.label_names, row, strict=True)}},
                        ensure_ascii=False) for p, row in zip(paths, proba, strict=True)]
    if output is None:
        typer.echo("\n".join(lines))
    else:
        atomic_write_text(output, "\n".join(lines) + "\n")
        typer.echo(f"wrote {len(lines)} predictions to {output}", err=True)


@app.command("audio-encode")
def audio_encode(
    files: Files,
    model: ModelDir,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the (N, d) float32 .npy.")],
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 32,
) -> None:
    """Embed every audio file (the pooled encoder output) and write the vectors, in input order, to a .npy."""
    from ..artifacts.audio import AudioClassifier
    from ..files import atomic_save_npy

    check_options(batch_size=batch_size)
    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    vectors = AudioClassifier.from_dir(model).encode(_paths(files), batch_size=batch_size)
    atomic_save_npy(output, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}", err=True)


@app.command("audio-export")
def audio_export(
    model: ModelDir,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .onnx file.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Export an audio CNN to ONNX with its log-mel front end inside (inputs: waves (B, L) float32 at the
    model's rate, zero-padded, and lengths (B,) int64; outputs: logits, embedding), checked with onnxruntime."""
    from ..artifacts.audio import AudioClassifier

    clf = AudioClassifier.from_dir(model)
    diffs = clf.export_onnx(output, opset=opset)
    typer.echo(f"wrote {output} (inputs at {clf.sample_rate} Hz; labels {clf.label_names}); largest difference "
               f"to PyTorch: logits {diffs['max_abs_diff_logits']:.2e}", err=True)
