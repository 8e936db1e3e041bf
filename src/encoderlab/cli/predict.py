"""Using a trained model: `encoderlab predict`, `evaluate` and `seq2seq-predict`; predict and evaluate take every
saved kind that has labels, dispatched by the kind the registry finds (`KIND_PREDICTIONS`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
    model: Annotated[Path, typer.Option("--model", "-m", help="A saved model: the OUT_DIR of a training run "
                                        "(or its final/). The kind decides what --input holds.")],
    files: Annotated[list[Path] | None, typer.Argument(help="Audio runs: audio files, a folder of them or a .txt "
                                                       "listing them; image-text runs: images.")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Texts: .txt (one per line), .jsonl, .csv or "
                                               ".parquet; audio: a folder or a .txt of paths; multimodal: a "
                                               ".csv / .parquet with the run's columns; image-text: a folder or "
                                               "a .csv of paths; autoencoder: a .csv / .npy / .npz or images.")]
    = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write one JSON line per input "
                                                                       "(.jsonl), or a table with a .csv / .tsv "
                                                                       "name (audio, multimodal and image-text "
                                                                       "runs print JSON lines without it).")] = None,
    labels: Annotated[str | None, typer.Option(help="image-text runs: the zero-shot labels, comma-separated or a "
                                               ".txt (one per line); default: the training categories.")] = None,
    user: Annotated[list[str] | None, typer.Option("--user", "-u", help="Recommenders: a user id (repeatable); "
                                                   "prints the top items.")] = None,
    top: Annotated[int, typer.Option(help="Recommenders: how many items.")] = 10,
    text_column: Annotated[str, typer.Option(help="Text field (.jsonl) or column (.csv).")] = "text",
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 64,
    precision: PrecisionOption = "fp32",
    long_text: LongTextOption = None,
    window: WindowOption = None,
    stride: StrideOption = None,
) -> None:
    """Predict a label and class probabilities for every input: texts (classifiers; per-token tags for taggers),
    recordings (audio runs), table rows (multimodal runs) or images (image-text runs: zero-shot labels); with a
    recommender run and --user, print each user's top items; with an autoencoder run, every sample's anomaly
    score (and, for a normal_class= run, whether it reaches the run's threshold).

    \b
    encoderlab predict --model runs/tweets --input texts.txt --output labels.jsonl
    encoderlab predict --model runs/audio-langid a.wav b.flac
    encoderlab predict --model runs/clothing-gated --input rows.csv --output labels.csv
    encoderlab predict --model runs/emoji-clip --input photos/ --labels 'Flags,Food & Drink'
    encoderlab predict --model runs/shuttle-anomaly --input new_rows.csv --output scores.csv
    """
    from ..artifacts.registry import detect, identify

    check_options(batch_size=batch_size, window=window, stride=stride)
    found = detect(model)  # a saved kind, else a classifier (which says what else `model` is)
    if found is not None and found.kind.name == "recommender":
        from .recommend import recommend_predict

        return recommend_predict(model, user=user, history=None, top=top, include_seen=False)
    if user:
        raise InputDataError(f"--user is for recommenders; --model {model} is not one (give --input and --output)")
    if found is not None and found.kind.name == "autoencoder":
        fp32_only(precision, "autoencoder")
        return predict_anomaly_scores(found.directory, [*(files or []), *([input] if input else [])], output)
    if found is not None and found.kind.name in KIND_PREDICTIONS:
        fp32_only(precision, found.kind.name)
        loaded = identify(model).kind.load(found.directory)
        keys, proba, names = KIND_PREDICTIONS[found.kind.name](loaded, [*(files or []), *([input] if input else [])],
                                                               labels, batch_size)
        return write_predictions(keys, proba, names, output)
    if files:
        raise InputDataError(f"file arguments are for audio and image-text runs; --model {model} reads texts: give "
                             "--input FILE")
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


# ----------------------------------------------------------------------------------------------- by saved kind
# kind -> (loaded model, sources, --labels, batch size) -> (one key dict per input, (N, K) probabilities, names)
Prediction = tuple[list[dict], Any, list[str]]


def _predict_audio(clf, sources: list[Path], labels: str | None, batch_size: int) -> Prediction:
    from .audio import audio_paths

    no_labels(labels, "audio")
    paths = audio_paths(sources)
    return [{"path": str(p)} for p in paths], clf.predict_proba(paths, batch_size=batch_size), clf.label_names


def _predict_rows(classifier, sources: list[Path], labels: str | None, batch_size: int) -> Prediction:
    no_labels(labels, "multimodal")
    if len(sources) != 1:
        raise InputDataError(f"a multimodal run predicts the rows of one table: give --input rows.csv (or .parquet) "
                             f"with the columns {classifier.features.spec.feature_columns}")
    proba = classifier.predict_proba(sources[0], batch_size=batch_size)
    return [{"row": i} for i in range(len(proba))], proba, classifier.label_names


def _predict_images(encoder, sources: list[Path], labels: str | None, batch_size: int) -> Prediction:
    from ..data.images import image_paths

    if not sources:
        raise InputDataError("give the images: files, --input FOLDER or --input paths.csv (an `image` column)")
    paths = [p for source in sources for p in (image_paths(source) if source.is_dir() or source.suffix.lower() ==
                                               ".csv" else [source])]
    names = encoder.zero_shot_labels(_label_list(labels) if labels is not None else None)
    return [{"path": str(p)} for p in paths], encoder.classify_proba(paths, names), names


KIND_PREDICTIONS = {"audio-classifier": _predict_audio, "multimodal": _predict_rows, "image-text": _predict_images}


def predict_anomaly_scores(directory: Path, sources: list[Path], output: Path | None) -> None:
    """`predict` for an autoencoder run: every sample's anomaly score (reconstruction error, or a VAE's negative
    ELBO; higher = more unusual) and, for a run trained with normal_class=, whether it reaches the threshold
    the run chose on its validation split (metrics.json's test_threshold)."""
    from ..artifacts.autoencoder import ArrayEncoder

    if len(sources) != 1:
        raise InputDataError("an autoencoder run scores the samples of one file: give --input FILE (a .csv with "
                             "the training columns, .npy / .npz, an image or a folder of images)")
    encoder = ArrayEncoder.from_dir(directory)
    scores = encoder.score(encoder.read_samples(sources[0]))
    metrics_file = directory.parent / "metrics.json"
    threshold = None
    if encoder.info.labels == "anomaly" and metrics_file.is_file():
        threshold = json.loads(metrics_file.read_text(encoding="utf-8")).get("test_threshold")
    rows = [{"row": i, "score": round(float(s), 6)} | ({} if threshold is None else {"anomaly": bool(s >= threshold)})
            for i, s in enumerate(scores)]
    suffix = output.suffix.lower() if output is not None else ""
    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        text = "".join(sep.join(map(str, row)) + "\n" for row in [list(rows[0])] + [list(r.values()) for r in rows])
    else:
        text = "".join(json.dumps(row) + "\n" for row in rows)
    if output is None:
        typer.echo(text, nl=False)
        return
    from ..files import atomic_write_text

    atomic_write_text(output, text)
    flagged = "" if threshold is None else f", {sum(r['anomaly'] for r in rows)} at or above the run's threshold " \
                                            f"{threshold:.6g}"
    typer.echo(f"wrote {len(rows)} anomaly scores to {output}{flagged}", err=True)


def no_labels(labels: str | None, kind: str) -> None:
    if labels is not None:
        raise InputDataError(f"--labels names zero-shot labels for image-text runs; {kind} runs have their own classes")


def _label_list(labels: str) -> list[str]:
    path = Path(labels)
    if path.suffix.lower() == ".txt" and path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [label.strip() for label in labels.split(",") if label.strip()]


def write_predictions(keys: list[dict], proba, names: list[str], output: Path | None) -> None:
    """One JSON line per input (its key fields, label, probabilities), printed or written to a .jsonl; or a
    .csv / .tsv table with the key columns, label and prob_<class>."""
    from ..files import atomic_write_text

    suffix = output.suffix.lower() if output is not None else ""
    if suffix in (".csv", ".tsv"):
        import csv
        import io

        table = io.StringIO()
        writer = csv.writer(table, delimiter="\t" if suffix == ".tsv" else ",", lineterminator="\n")
        writer.writerow([*keys[0], "label", *(f"prob_{name}" for name in names)])
        for key, row in zip(keys, proba, strict=True):
            writer.writerow([*key.values(), names[int(row.argmax())], *(f"{float(p):.6f}" for p in row)])
        text = table.getvalue()
    else:
        text = "".join(json.dumps({**key, "label": names[int(row.argmax())], "probabilities": {
            n: round(float(p), 6) for n, p in zip(names, row, strict=True)}}, ensure_ascii=False) + "\n"
            for key, row in zip(keys, proba, strict=True))
    if output is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_text(output, text)
        typer.echo(f"wrote {len(keys)} predictions to {output}", err=True)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of a training run (or its final/).")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="Catalog name or .csv/.jsonl file with labels; "
                                             "audio: a folder of class sub-folders or a .csv of path,label; "
                                             "multimodal: a labelled .csv/.parquet; image-text: a .csv of "
                                             "image,text[,category] (default: the run's own data).")] = None,
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
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix of a trained classifier (text,
    tagger, audio — with the same-speaker control —, or multimodal — with AUROC); Recall@k and zero-shot
    accuracy of an image-text model."""
    from ..artifacts.registry import detect

    check_options(max_examples=max_examples, window=window, stride=stride)
    found = detect(model)  # a saved kind, else a classifier (which says what else `model` is)
    kind = found.kind.name if found is not None else "classifier"
    if kind in ("audio-classifier", "multimodal", "image-text"):
        fp32_only(precision, kind)
        if text_column or label_column or long_text or window or stride:
            raise InputDataError(f"--text-column, --label-column, --long-text, --window and --stride are for text "
                                 f"models; a {kind} run reads its data as it was trained")
    if kind == "image-text":
        from ..tasks.image_text import evaluate_image_text

        metrics, path = evaluate_image_text(model, data, split, output_dir)
        typer.echo(json.dumps({k: v for k, v in metrics.items() if k not in ("model", "data")}, indent=2))
        typer.echo(f"wrote {path}", err=True)
        return
    if data is None and kind in ("classifier", "tagger"):  # as --help says: the run's own (held-out) data
        from ..artifacts.finetuned import read_head_info

        info = read_head_info(model)
        data = info.test_data or info.data or None
        if data is None:
            raise InputDataError(f"{model}'s head.json does not say what it was trained on; give --data (a catalog "
                                 "name or a labelled .csv/.jsonl file)")
    extra: dict = {}
    if kind == "audio-classifier":
        from ..tasks.audio import evaluate_audio

        report, extra, path = evaluate_audio(model, data, split, output_dir, max_examples)
    elif kind == "multimodal":
        from ..tasks.multimodal import evaluate_multimodal

        if max_examples is not None:
            raise InputDataError("--max-examples is not supported for multimodal runs; pass a smaller table")
        report, extra, path = evaluate_multimodal(model, data, split, output_dir)
    elif kind == "tagger":
        from ..tasks.tag import evaluate_tagger

        fp32_only(precision, "tagging")
        sentences_only(long_text, window, stride)
        report, path = evaluate_tagger(model, data, split, output_dir, max_examples=max_examples)
    else:
        from ..tasks.classify import evaluate_classifier

        report, path = evaluate_classifier(model, data, split, output_dir, text_column, label_column, max_examples,
                                           precision=precision, long_text=long_text, window=window, stride=stride)
    saved = json.loads(path.read_text(encoding="utf-8"))
    scored, data = saved.get("split"), saved.get("data", data)
    what = {"all": "every row of", "test": "the held-out test rows of"}.get(scored, f"the {scored} rows of")
    typer.echo(f"{what} {data}:")  # which rows: --split auto picks the test split only for the training data
    typer.echo(report.format())
    if "auroc" in extra:
        typer.echo(f"AUROC={extra['auroc']:.4f}")
    if "control_accuracy" in extra:
        typer.echo(f"control ({'-vs-'.join(extra['control_labels'])}, deciding among them only): accuracy="
                   f"{extra['control_accuracy']:.4f} on {extra['control_n']} clips")
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
