"""The audio commands: `encoderlab audio` (train + evaluate), `audio-predict`, `audio-encode`, `audio-export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import TRAINING_COMMAND, ConfigFile, Overrides, ResumeDir, app, check_options, echo_final, echo_metrics

ModelDir = Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab audio` (or its final/).")]
Files = Annotated[list[Path] | None, typer.Argument(help="Audio files (.wav, .flac, .ogg, .mp3, ...), folders of "
                                                               "them, or .txt files listing paths.")]
Input = Annotated[Path | None, typer.Option("--input", "-i", help="A folder of audio files or a .txt listing them "
                                                                  "(as `predict` and `encode` take it).")]


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


def audio_paths(sources: list[Path]) -> list[Path]:
    """Audio files given as files, folders (every recording inside, AUDIO_SUFFIXES, sorted) or .txt lists of paths
    (relative to the list's folder), in the order given."""
    from ..data.audio import AUDIO_SUFFIXES
    from ..data.text_input import visible_files

    if not sources:
        raise InputDataError("no audio files given; pass one or more paths, a folder, or a .txt listing them")
    paths: list[Path] = []
    for source in sources:
        if source.is_dir():
            found = visible_files(source, AUDIO_SUFFIXES)
            if not found:
                raise InputDataError(f"folder {str(source)!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            paths += found
        elif source.suffix.lower() == ".txt":
            if not source.is_file():
                raise InputDataError(f"list {str(source)!r} does not exist; check the path")
            listed = [line.strip() for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
            if not listed:
                raise InputDataError(f"list {str(source)!r} is empty; write one audio file path per line")
            paths += [Path(p) if Path(p).is_absolute() else source.parent / p for p in listed]
        else:
            paths.append(source)
    return paths


@app.command("audio-predict")
def audio_predict(
    model: ModelDir,
    files: Files = None,
    input: Input = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write one JSON line per file here "
                                                                       "(default: print them).")] = None,
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 32,
) -> None:
    """Label every audio file: one JSON line per file with the label and the class probabilities (the same as
    `encoderlab predict --model RUN FILES`)."""
    from ..artifacts.audio import AudioClassifier
    from .predict import KIND_PREDICTIONS, write_predictions

    check_options(batch_size=batch_size)
    sources = [*(files or []), *([input] if input else [])]
    write_predictions(*KIND_PREDICTIONS["audio-classifier"](AudioClassifier.from_dir(model), sources, None,
                                                            batch_size), output)


@app.command("audio-encode")
def audio_encode(
    model: ModelDir,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the (N, d) float32 .npy.")],
    files: Files = None,
    input: Input = None,
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 32,
) -> None:
    """Embed every audio file (the pooled encoder output) and write the vectors, in input order, to a .npy."""
    from ..artifacts.audio import AudioClassifier
    from ..files import atomic_save_npy

    check_options(batch_size=batch_size)
    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    sources = [*(files or []), *([input] if input else [])]
    vectors = AudioClassifier.from_dir(model).encode(audio_paths(sources), batch_size=batch_size)
    atomic_save_npy(output, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}", err=True)


@app.command("audio-export")
def audio_export(
    model: ModelDir,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .onnx file.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    tolerance: Annotated[float, typer.Option(help="Largest allowed difference to PyTorch (relative).")] = 1e-4,
) -> None:
    """Export an audio classifier (CNN or Transformer) to one .onnx file with its log-mel front end inside
    (inputs: waves (B, L) float32 at the model's rate, zero-padded, and lengths (B,) int64; outputs: logits,
    embedding), checked with onnxruntime. `encoderlab export` writes a directory with the labels as well."""
    from ..compression.export_onnx_audio import export_audio_onnx

    report = export_audio_onnx(model, output, opset=opset, tolerance=tolerance)
    typer.echo(f"wrote {output} ({report.architecture}, inputs at {report.sample_rate} Hz); largest difference "
               f"to PyTorch: logits {report.max_abs_logits:.2e}, embedding {report.max_abs_embedding:.2e}", err=True)
