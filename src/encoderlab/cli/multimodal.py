"""Multimodal commands: `multimodal` and `image-text` (training), `multimodal-predict`, `multimodal-encode`,
`multimodal-evaluate` (using the saved kinds `multimodal` and `image-text`; see docs/multimodal.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import TRAINING_COMMAND, ConfigFile, Overrides, ResumeDir, app, echo_final, echo_metrics

ModelDir = Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of a multimodal / image-text run (or final/).")]


@app.command(context_settings=TRAINING_COMMAND)
def multimodal(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train a text + tabular classifier: text-only, tabular-only, or late / gated / early fusion, scored next
    to TF-IDF + one-hot logistic regression and boosted trees (see docs/multimodal.md).

    \b
    encoderlab multimodal --config configs/multimodal-clothing.yaml model.mode=gated
    encoderlab multimodal data=rows.parquet text_columns=[review] categorical_columns=[shop]
        numeric_columns=[age,price] label_column=stars model.mode=early
    \b
    Main keys: data=clothing-reviews|FILE  text_columns= categorical_columns= numeric_columns= label_column=
    model.mode=text|tabular|late|gated|early  model.tabular.kind=ft|mlp  text_model=minilm  max_length=
    train_limit=  epochs=  lr=  text_lr_scale=  threads=
    (an unknown key is an error that lists every valid one)"""
    from ..tasks.multimodal import MultimodalConfig, train_multimodal
    from ..training import run_task

    metrics = run_task(train_multimodal, MultimodalConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("test_accuracy", "test_macro_f1", "test_auroc", "test_n", "train_rows_used", "step"))
    for name, scores in metrics.get("baselines", {}).items():
        typer.echo(f"  baseline {name}: accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}  "
                   f"AUROC {scores['auroc']:.4f}")
    echo_final(metrics)


@app.command("image-text", context_settings=TRAINING_COMMAND)
def image_text(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train a CLIP-style image-text dual encoder (ViT or CNN image tower + our text encoder), scored on
    held-out pairs: Recall@1/5/10 both ways and zero-shot categories (see docs/multimodal.md).

    \b
    encoderlab image-text --config configs/emoji-clip.yaml model.image.kind=cnn
    encoderlab image-text data=pairs.csv     # columns image (path), text [, group, category]"""
    from ..tasks.image_text import ImageTextConfig, train_image_text
    from ..training import run_task

    metrics = run_task(train_image_text, ImageTextConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, tuple(k for k in metrics if "recall@" in k or k.endswith("category_accuracy")))
    echo_final(metrics)


def _load(model: Path):
    from ..artifacts.registry import identify

    found = identify(model)
    if found.kind.name not in ("multimodal", "image-text"):
        raise InputDataError(f"--model {str(model)!r} is a {found.kind.name}, not a multimodal or image-text model; "
                             "use `encoderlab predict/encode/evaluate` for it")
    return found.kind.name, found.kind.load(found.directory)


@app.command("multimodal-predict")
def multimodal_predict(
    model: ModelDir,
    input: Annotated[Path, typer.Option("--input", "-i", help=".csv / .parquet rows with the training columns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .csv: label and one probability per class.")],
    batch_size: Annotated[int, typer.Option(help="Rows per forward pass.")] = 64,
) -> None:
    """Predict the label (and class probabilities) of every row of a table with a multimodal model."""
    from ..files import atomic_write_text

    kind, loaded = _load(model)
    if kind != "multimodal":
        raise InputDataError("multimodal-predict needs a text + tabular classifier; an image-text model has no "
                             "labels (use multimodal-encode, or its classify() in Python)")
    probs = loaded.predict_proba(input, batch_size=batch_size)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["label", *(f"p_{name}" for name in loaded.label_names)])
    for row in probs:
        writer.writerow([loaded.label_names[int(row.argmax())], *(f"{p:.6f}" for p in row)])
    atomic_write_text(output, buffer.getvalue())
    typer.echo(f"wrote {len(probs)} predictions to {output}", err=True)


@app.command("multimodal-encode")
def multimodal_encode(
    model: ModelDir,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the (N, d) float32 .npy.")],
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Table rows (multimodal), or images: a folder "
                                                                     "or a .csv with an `image` column.")] = None,
    texts: Annotated[Path | None, typer.Option(help="image-text models: a .txt of texts (one per line) to embed "
                                                    "instead of images.")] = None,
) -> None:
    """The vectors of a multimodal model: fused row vectors, or image / text vectors in one shared space."""
    from ..files import atomic_save_npy

    kind, loaded = _load(model)
    if (input is None) == (texts is None):
        raise InputDataError("give exactly one of --input (rows or images) and --texts (a .txt, image-text models)")
    if texts is not None:
        if kind != "image-text":
            raise InputDataError("--texts is for image-text models; a multimodal classifier embeds table rows "
                                 "(--input)")
        lines = [line for line in texts.read_text(encoding="utf-8").splitlines() if line.strip()]
        vectors = loaded.encode_texts(lines)
    else:
        vectors = loaded.encode(input) if kind == "multimodal" else loaded.encode_images(input)
    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    atomic_save_npy(output, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors to {output}", err=True)


@app.command("multimodal-evaluate")
def multimodal_evaluate(
    model: ModelDir,
    data: Annotated[Path, typer.Option("--data", "-d", help="multimodal: labelled rows (.csv/.parquet); image-text: "
                                                            "a .csv with image and text columns.")],
) -> None:
    """multimodal: accuracy, macro-F1 and AUROC on labelled rows; image-text: Recall@1/5/10 both ways on pairs
    (and zero-shot category accuracy with a category column). Prints JSON; `encoderlab evaluate` gives the
    full report and writes it."""
    import tempfile

    kind, _ = _load(model)
    with tempfile.TemporaryDirectory() as scratch:  # this command prints; `evaluate` keeps the files
        if kind == "multimodal":
            from ..tasks.multimodal import evaluate_multimodal

            report, extra, _ = evaluate_multimodal(model, str(data), "all", scratch)
            metrics = {"accuracy": report.accuracy, "macro_f1": report.macro_f1, **extra, "n": report.n}
        else:
            from ..tasks.image_text import evaluate_image_text

            metrics, _ = evaluate_image_text(model, str(data), "all", scratch)
            metrics = {k: v for k, v in metrics.items() if k not in ("model", "data", "split")}
    typer.echo(json.dumps(metrics, indent=2))
