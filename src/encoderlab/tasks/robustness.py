"""`encoderlab robustness`: how a trained model holds up as its input gets noisier (evaluation/noise.py).

The model decides what is measured:
- a fine-tuned classifier (`encoderlab finetune` OUT_DIR): accuracy and macro-F1 on typo-ridden `data`
  (the held-out test split when it is the training data, as `encoderlab evaluate` picks it);
- any other text encoder (`minilm`, a checkpoint directory, a pretrain run): embedding cosine to the clean
  text and noisy→clean retrieval on the texts of `data`;
- a seq2seq run: exact match and token error rate on misspelt sources of its own test split (or `data`);
- an autoencoder run: reconstruction error against the clean input under Gaussian noise, on the run's own
  test split (or the arrays of `data`), with anomaly AUROC when the run has anomaly labels;
- an audio classifier run: accuracy, macro-F1 and the same-speaker control with white noise at SNR 20 / 10 /
  0 dB (or `levels`), on the run's own held-out test clips (or the recordings of `data`); seed 0 adds the very
  noise the run's own test metrics used, so the numbers match its metrics.json.
Results go to `robustness_<data>.json` and a PNG next to it (default: MODEL/evaluations for a run).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts.autoencoder import ArrayEncoder, anomaly_scores, batched
from ..artifacts.classifier import TextClassifier
from ..artifacts.registry import detect
from ..artifacts.seq2seq import Seq2SeqPredictor
from ..artifacts.text_encoder import TextEncoder
from ..errors import InputDataError
from ..evaluation.noise import (
    ARRAY_SIGMAS,
    AUDIO_SNRS,
    TEXT_RATES,
    array_robustness,
    audio_robustness,
    classifier_robustness,
    encoder_robustness,
    plot_robustness,
    transducer_robustness,
)
from ..files import atomic_write_json, file_in_the_way
from ..training.metrics_log import LOG_FILE


@dataclass
class RobustnessResult:
    kind: str
    """'classifier', 'text encoder', 'seq2seq' or 'autoencoder'."""
    noise: str
    """What the levels mean, in words."""
    rows: list[dict[str, float]]
    json_path: Path
    plot_path: Path


def _data_name(data: str | None, default: str) -> str:
    if not data:
        return default
    return Path(data).stem if Path(data).suffix else Path(data).name


def _output_dir(model: str | Path, output_dir: str | Path | None) -> Path:
    if output_dir is not None:
        return Path(output_dir)
    path = Path(model)
    if not path.is_dir():
        return Path("robustness")
    # a run's final/ given as --model: its results belong to the run, where `encoderlab report` looks
    if path.name == "final" and any((path.parent / f).is_file() for f in (LOG_FILE, "metrics.json")):
        path = path.parent
    return path / "evaluations"


def evaluate_robustness(model: str | Path, data: str | None = None, levels: list[float] | None = None,
                        output_dir: str | Path | None = None, max_examples: int | None = 1000,
                        text_column: str | None = None, label_column: str | None = None,
                        seed: int = 0) -> RobustnessResult:
    """Measure `model` at every noise level (level 0 included) and write the JSON and the plot."""
    blocking = file_in_the_way(output_dir) if output_dir is not None else None
    if blocking is not None:
        what = "is a file" if blocking == Path(output_dir) else f"is inside the file {str(blocking)!r}"
        raise InputDataError(f"--output-dir {str(output_dir)!r} {what}; name a new or existing directory "
                             "(the JSON and the plot are written into it)")
    if max_examples is not None and max_examples < 1:
        raise InputDataError(f"--max-examples {max_examples}: give at least 1 (the number of rows to score)")
    found = detect(model)
    saved = found.kind.name if found is not None else "text-encoder"  # else TextEncoder says what is wrong
    if saved == "audio-classifier":
        kind, noise = "audio classifier", "SNR of added white noise (dB)"
        rows, name = _audio_rows(model, data, levels or list(AUDIO_SNRS), max_examples, seed)
    elif saved == "autoencoder":
        kind, noise = "autoencoder", "Gaussian noise sigma on the model's scale"
        rows, name = _autoencoder_rows(model, data, levels or list(ARRAY_SIGMAS), max_examples, seed)
    elif saved == "seq2seq":
        kind, noise = "seq2seq", "typo rate (fraction of source characters hit)"
        rows, name = _seq2seq_rows(model, data, levels or list(TEXT_RATES), max_examples, text_column, label_column,
                                   seed)
    elif saved == "tagger":
        raise InputDataError(f"{model} is a token tagger; robustness covers text classifiers, text encoders, "
                             "seq2seq runs and autoencoders (use `encoderlab evaluate` for a tagger)")
    elif saved == "classifier":
        kind, noise = "classifier", "typo rate (fraction of characters hit)"
        rows, name = _classifier_rows(model, data, levels or list(TEXT_RATES), max_examples, text_column,
                                      label_column, seed)
    else:
        kind, noise = "text encoder", "typo rate (fraction of characters hit)"
        rows, name = _encoder_rows(model, data, levels or list(TEXT_RATES), max_examples, text_column, seed)
    directory = _output_dir(model, output_dir)
    json_path = directory / f"robustness_{name}.json"
    plot_path = directory / f"robustness_{name}.png"
    atomic_write_json(json_path, {"model": str(model), "data": data, "kind": kind, "noise": noise, "seed": seed,
                                  "rows": rows})
    plot_robustness(rows, plot_path, f"{Path(str(model)).name} on {name}: robustness", noise)
    return RobustnessResult(kind, noise, rows, json_path, plot_path)


@contextmanager
def _training_data_of(model: str | Path, data: str):
    """Reading a run's own test split needs its training data where the run found it: a file moved or
    deleted since, or a relative path read from another directory, is named as such, with the fix."""
    try:
        yield
    except InputDataError as exc:
        if data in str(exc) and not Path(data).expanduser().exists():
            raise InputDataError(f"{model}: its test split is read from its training data {data!r}, which is not "
                                 "there (moved, deleted, or a relative path and another working directory); run "
                                 "from where it was trained, or pass --data FILE") from None
        raise


def _classifier_rows(model, data, levels, max_examples, text_column, label_column, seed) -> tuple[list, str]:
    from ..data.records import seeded_subset
    from .classify import evaluation_records

    classifier = TextClassifier.from_dir(model)
    data = data or classifier.info.data
    if not data:
        raise InputDataError(f"{model}: say which labelled data to use with --data (a catalog name or a .csv/.jsonl)")
    records, split = evaluation_records(classifier, str(data), "auto", text_column, label_column)
    records = seeded_subset(records, max_examples, seed)
    rows = classifier_robustness(classifier.predict_proba, records.texts, records.labels, classifier.label_names,
                                 levels, seed)
    return rows, f"{_data_name(str(data), 'data')}_{split}"


def _encoder_rows(model, data, levels, max_examples, text_column, seed) -> tuple[list, str]:
    from ..artifacts.aliases import ALIASES
    from ..data.catalog import load_dataset
    from ..data.references import is_catalog_name
    from .classify import read_prediction_inputs

    if not data:
        if not Path(model).expanduser().exists() and str(model).lower() not in ALIASES:
            TextEncoder.from_pretrained(model)  # raises: not a directory, not an alias; check the path
        raise InputDataError("a text encoder needs texts to perturb: pass --data (a .txt/.jsonl/.csv file, or a "
                             "catalog name such as bbc-news)")
    if is_catalog_name(data):
        texts = list(load_dataset(data).test.texts)
    else:
        texts = read_prediction_inputs(data, text_column or "text")
    texts = [t for t in texts if t.strip()]
    if max_examples is not None and len(texts) > max_examples:
        keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:max_examples])
        texts = [texts[i] for i in keep]
    encoder = TextEncoder.from_pretrained(model)
    return encoder_robustness(encoder.encode, texts, levels, seed), _data_name(data, "texts")


def _autoencoder_rows(model, data, levels, max_examples, seed) -> tuple[list, str]:
    encoder = ArrayEncoder.from_dir(model)
    labels: np.ndarray | None = None
    if data:
        x = encoder.prepare(encoder.read_samples(data), where=str(data))
    else:  # the run's own held-out test split, prepared exactly as in training
        with _training_data_of(model, str(encoder.run_config().get("data", ""))):
            prepared = encoder.training_data()
        x = prepared.test.x
        labels = prepared.test.y if prepared.labels == "anomaly" else None
    if max_examples is not None and len(x) > max_examples:
        keep = np.sort(np.random.default_rng(seed).permutation(len(x))[:max_examples])
        x, labels = x[keep], None if labels is None else labels[keep]
    net = encoder.model
    rows = array_robustness(lambda z: batched(net.reconstruct, z), x, encoder.info.kind == "image",
                            levels, score=lambda z: anomaly_scores(net, z), anomaly_labels=labels, seed=seed)
    return rows, _data_name(data, f"{_data_name(encoder.info.name or 'data', 'data')}_test")


def _audio_rows(model, data, levels, max_examples, seed) -> tuple[list, str]:
    from .audio import NOISE_SEED, evaluation_clips

    chosen = evaluation_clips(model, data, "auto")
    clips = chosen.clips
    if max_examples is not None and len(clips) > max_examples:
        clips = clips.subset(np.sort(np.random.default_rng(seed).permutation(len(clips))[:max_examples]).tolist())
    rows = audio_robustness(chosen.classifier.proba_of_waves, clips.waves, clips.labels,
                            clips.label_names, levels, NOISE_SEED + seed, chosen.control)
    return rows, f"{_data_name(chosen.data, 'data')}_{chosen.split}"


def _seq2seq_rows(model, data, levels, max_examples, text_column, label_column, seed) -> tuple[list, str]:
    """The run's own held-out test sources (or the pairs of `data`, its source and target columns named by
    `text_column` / `label_column`, default the run's own), scored as in training: exact match with any
    reference, token edits to the closest one."""
    from ..config import from_dict, read_yaml
    from ..data.pairs import Pairs, load_pairs
    from ..evaluation.sequences import SequenceScores
    from .seq2seq import Seq2SeqConfig, prepare_data, sample_sources

    predictor = Seq2SeqPredictor.from_dir(model)
    cfg = from_dict(Seq2SeqConfig, read_yaml(detect(model).directory / "config.yaml"))
    if data:
        pairs = load_pairs(data, text_column or cfg.source_column, label_column or cfg.target_column,
                           stress=cfg.stress, options=("--text-column", "--label-column"))
        pairs = Pairs([s.lower() for s in pairs.sources] if cfg.lowercase else pairs.sources, pairs.targets,
                      pairs.name)
    else:
        with _training_data_of(model, cfg.data):
            pairs = prepare_data(cfg).test
    pairs = sample_sources(pairs, max_examples, seed)
    references: dict[str, list[list[str]]] = {}
    for source, target in zip(pairs.sources, pairs.targets, strict=True):
        references.setdefault(source, []).append(predictor.target_vocab.pieces(target))
    sources = list(references)

    def score(outputs: list[str]) -> dict[str, float]:
        scores = SequenceScores()
        for output, source in zip(outputs, sources, strict=True):
            scores.add(predictor.target_vocab.pieces(output), references[source])
        return {"exact_match": scores.exact_match, "token_error_rate": scores.token_error_rate}

    return (transducer_robustness(predictor.predict, sources, score, levels, seed),
            _data_name(data, f"{_data_name(cfg.data, 'data')}_test"))
