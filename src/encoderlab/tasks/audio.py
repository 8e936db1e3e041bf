"""`train_audio_classifier(cfg)`: train a CNN or Transformer audio classifier and measure it honestly.

    run_task(train_audio_classifier, AudioConfig, "configs/audio-langid.yaml", ["model.architecture=transformer"])

One run: load the clips (the Asterisk prompts, a folder of class sub-folders, or a .csv/.jsonl of path,label),
split them by group (prompt id: a sentence heard in training is never tested), estimate the per-mel feature
statistics on the training clips, train with the shared Trainer (SpecAugment on the training batches,
validation accuracy every `eval_every` steps), then score the final model on the test clips: accuracy,
macro-F1, the confusion matrix, the same-speaker control (`control_labels`: among those classes' clips,
deciding among those classes only), and accuracy with white noise added at each of `noise_snrs` dB. The MFCC
mean/std + logistic-regression baseline (C tuned on validation) is scored on the same clips, clean and noisy.

OUT_DIR gets config.yaml, log.jsonl, checkpoints/, final/ (an `artifacts.audio.AudioClassifier`),
metrics.json, test_confusion.png, spectrograms.png and audio_report.md (the tables, ready for docs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..artifacts.audio import AudioClassifier, AudioClassifierInfo
from ..config import to_dict
from ..data.asterisk import NAME as ASTERISK
from ..data.asterisk import SPEAKERS, load_asterisk_prompts
from ..data.audio import LabelledAudio, check_channels, load_labelled_audio, normalize_level, split_by_group
from ..data.records import parse_fractions
from ..errors import ConfigError, InputDataError
from ..evaluation.audio import FEATURES, LinearBaseline, add_noise, noisy_copies, pair_accuracy
from ..evaluation.classification import ClassificationReport, classification_report
from ..files import atomic_write_text
from ..models.audio import AudioEncoderConfig, AudioModel, pad_waves, with_classes
from ..nn.spectrogram import SpectrogramConfig, frame_mask, spec_augment
from ..training import TrainConfig, Trainer
from ..training.distributed import unwrap
from ..training.precision import apply_threads

NOISE_SEED = 1234
"""Seed of the noise added to the test clips (the same noise for the model and the baseline)."""


@dataclass
class AudioConfig(TrainConfig):
    out_dir: str = "runs/audio"
    """Where the run is written."""
    data: str = ASTERISK
    """asterisk-prompts (Debian's recorded telephone prompts, fetched on first use), a folder of class
    sub-folders of .wav/.flac/.ogg files, or a .csv/.tsv/.jsonl list of path,label[,group]."""
    languages: list[str] = field(default_factory=lambda: ["en", "es", "fr", "it", "ru"])
    """asterisk-prompts only: the languages (classes) to use."""
    data_root: str = ""
    """asterisk-prompts only: an already unpacked package tree (the folder holding usr/); empty = the cache."""
    sample_rate: int = 8000
    """Every clip is resampled to this rate (Hz); the front end reads it."""
    max_seconds: float = 4.0
    """Clips are cut to their first max_seconds (shorter clips stay short: batches are padded and masked)."""
    channels: str = "mix"
    """Multi-channel files: 'mix' averages the channels, 'refuse' makes them an error."""
    level_dbfs: float | None = None
    """Scale every clip to this RMS level in dB full scale (e.g. -26) after decoding, in training and at
    prediction time: removes loudness differences between recordings; null keeps clips as recorded."""
    split: str = "0.7,0.15,0.15"
    """Train/validation/test fractions of the groups (prompt ids, or files for a folder without groups)."""
    split_seed: int = 0
    """Seed of the group split (kept apart from `seed`, so that runs with other seeds test the same clips)."""
    model: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    """The classifier; model.n_classes and model.spectrogram.sample_rate come from the data."""

    spec_augment: bool = True
    """SpecAugment on training batches (mel-band and frame masks)."""
    freq_masks: int = 2
    freq_width: int = 8
    """Up to this many mel bands per frequency mask."""
    time_masks: int = 2
    time_width: float = 0.1
    """Up to this fraction of a clip's frames per time mask."""

    train_noise_snr: list[float] = field(default_factory=list)
    """Noise augmentation: [low, high] dB; a training clip gets white noise at an SNR drawn uniformly from
    [low, high] with probability train_noise_prob (the baselines get one such noisy copy of every training
    clip in addition to the clean one); empty = clean training."""
    train_noise_prob: float = 0.5

    baselines: list[str] = field(default_factory=lambda: ["mfcc", "level"])
    """Linear baselines fitted and scored on the same clips (need scikit-learn): "mfcc" (MFCC mean/std +
    logistic regression) and "level" (recording level / silence statistics: no speech content, it measures
    how far recording conditions alone separate the classes); empty to skip."""
    n_mfcc: int = 20
    noise_snrs: list[float] = field(default_factory=lambda: [20.0, 10.0, 0.0])
    """Test accuracy with white noise at these SNRs (dB); empty to skip."""
    control_labels: list[str] = field(default_factory=lambda: ["en", "es"])
    """The same-speaker control: accuracy among these classes' test clips, deciding among them only; empty to
    skip (labels missing from the data are skipped with a note)."""
    plots: bool = True
    """Write test_confusion.png and spectrograms.png."""
    eval_batch_size: int = 64

    best_metric: str = "eval_accuracy"
    best_mode: str = "max"
    batch_size: int = 32
    eval_every: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_fractions(self.split)
        check_channels(self.channels)
        if self.sample_rate < 1000:
            raise ConfigError(f"sample_rate={self.sample_rate} Hz is too low for speech or sound; use e.g. 8000")
        if self.level_dbfs is not None and not -60 <= self.level_dbfs <= 0:
            raise ConfigError(f"level_dbfs={self.level_dbfs} must be in [-60, 0] dB full scale (e.g. -26), or null")
        if self.max_seconds <= 0:
            raise ConfigError(f"max_seconds={self.max_seconds} must be positive")
        if min(self.freq_masks, self.freq_width, self.time_masks) < 0 or not 0 <= self.time_width <= 1:
            raise ConfigError("freq_masks, freq_width and time_masks must be >= 0 and time_width in [0, 1]")
        unknown = [b for b in self.baselines if b not in FEATURES]
        if unknown:
            raise ConfigError(f"baselines={self.baselines}: unknown {unknown}; choose from {list(FEATURES)}")
        snr = self.train_noise_snr
        if snr and (len(snr) != 2 or snr[0] > snr[1]):
            raise ConfigError(f"train_noise_snr={self.train_noise_snr} must be [low, high] in dB, e.g. [0, 30]")
        if not 0 <= self.train_noise_prob <= 1:
            raise ConfigError(f"train_noise_prob={self.train_noise_prob} must be in [0, 1]")
        if self.n_mfcc < 1 or self.n_mfcc > self.model.spectrogram.n_mels:
            raise ConfigError(f"n_mfcc={self.n_mfcc} must be in [1, model.spectrogram.n_mels="
                              f"{self.model.spectrogram.n_mels}]")


# ----------------------------------------------------------------------------------------------- data
class Clips(Dataset):
    def __init__(self, data: LabelledAudio) -> None:
        self.waves = [torch.from_numpy(w) for w in data.waves]
        self.labels = data.labels

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.waves[i], self.labels[i]


def collate(items: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    waves, lengths = pad_waves([w for w, _ in items])
    return {"waves": waves, "lengths": lengths, "labels": torch.tensor([y for _, y in items])}


def load_data(cfg: AudioConfig) -> LabelledAudio:
    if cfg.data == ASTERISK:
        data = load_asterisk_prompts(cfg.sample_rate, cfg.max_seconds, tuple(cfg.languages),
                                     root=cfg.data_root or None)
    else:
        data = load_labelled_audio(cfg.data, cfg.sample_rate, cfg.max_seconds, cfg.channels)  # type: ignore[arg-type]
    if cfg.level_dbfs is not None:
        data.waves = [normalize_level(w, cfg.level_dbfs) for w in data.waves]
    return data


@torch.no_grad()
def feature_statistics(model: AudioModel, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-mel mean and std of the log-mel frames of `waves` (real frames only)."""
    total = torch.zeros(model.cfg.spectrogram.n_mels, dtype=torch.float64)
    square = torch.zeros_like(total)
    count = 0
    for start in range(0, len(waves), 64):
        batch, lengths = pad_waves([torch.from_numpy(w) for w in waves[start:start + 64]])
        log_mel, n_frames = model.front(batch, lengths)  # (B, M, T)
        mask = frame_mask(n_frames, log_mel.size(-1))[:, None, :].double()  # (B, 1, T)
        total += (log_mel.double() * mask).sum(dim=(0, 2))
        square += (log_mel.double().square() * mask).sum(dim=(0, 2))
        count += int(n_frames.sum())
    mean = total / count
    return mean.float(), (square / count - mean.square()).clamp(min=0).sqrt().float()


# ----------------------------------------------------------------------------------------------- training
def make_loss_fn(cfg: AudioConfig):
    def augment(features: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        return spec_augment(features, n_frames, cfg.freq_masks, cfg.freq_width, cfg.time_masks, cfg.time_width)

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        waves = batch["waves"]
        if cfg.train_noise_snr:
            waves = add_training_noise(waves, batch["lengths"], cfg.train_noise_snr, cfg.train_noise_prob)
        logits = model(waves, batch["lengths"], augment if cfg.spec_augment else None)
        return F.cross_entropy(logits, batch["labels"]), len(batch["labels"])

    return loss_fn


def add_training_noise(waves: torch.Tensor, lengths: torch.Tensor, snr_range: list[float], prob: float
                       ) -> torch.Tensor:
    """waves (B, L) zero-padded -> each clip, with probability `prob`, plus white noise at an SNR drawn from
    snr_range (dB) relative to its own mean power; padding stays zero."""
    B, L = waves.shape
    inside = frame_mask(lengths, L)  # (B, L)
    power = waves.square().sum(dim=1) / lengths.clamp(min=1)  # (B,)
    snr = snr_range[0] + (snr_range[1] - snr_range[0]) * torch.rand(B, device=waves.device)
    scale = (power / 10.0 ** (snr / 10.0)).sqrt() * (torch.rand(B, device=waves.device) < prob)  # (B,)
    return waves + torch.randn_like(waves) * scale[:, None] * inside


def noisy_training_copies(waves: list[np.ndarray], snr_range: list[float], seed: int) -> list[np.ndarray]:
    """One noisy copy of every clip at an SNR drawn uniformly from snr_range (the baselines' augmentation)."""
    rng = np.random.default_rng(seed)
    return [add_noise(w, float(rng.uniform(*snr_range)), rng) for w in waves]


def eval_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
    logits = model(batch["waves"], batch["lengths"])
    n = len(batch["labels"])
    return {"loss": (F.cross_entropy(logits, batch["labels"]), n),
            "accuracy": ((logits.argmax(-1) == batch["labels"]).float().mean(), n)}


# ----------------------------------------------------------------------------------------------- scoring
def control_classes(cfg: AudioConfig, names: tuple[str, ...]) -> list[int]:
    present = [names.index(n) for n in cfg.control_labels if n in names]
    return present if len(present) >= 2 else []


def score(name: str, y: list[int], proba: np.ndarray, names: tuple[str, ...], control: list[int]) -> dict:
    report = classification_report(y, proba.argmax(1).tolist(), names)
    out = {f"{name}_accuracy": report.accuracy, f"{name}_macro_f1": report.macro_f1}
    if control:
        out[f"{name}_control_accuracy"], out["control_n"] = pair_accuracy(y, proba, control)
    return out


def fit_baselines(cfg: AudioConfig, train: LabelledAudio, val: LabelledAudio, spectrogram: SpectrogramConfig
                  ) -> dict[str, LinearBaseline]:
    """The cfg.baselines, fitted on the training clips (plus one noisy copy each with train_noise_snr) with C
    tuned on the validation clips."""
    waves, labels = list(train.waves), list(train.labels)
    if cfg.train_noise_snr:
        waves += noisy_training_copies(train.waves, cfg.train_noise_snr, cfg.seed)
        labels += train.labels
    return {kind: LinearBaseline.fit(kind, waves, labels, val.waves, val.labels, spectrogram, cfg.n_mfcc,
                                     seed=cfg.seed) for kind in cfg.baselines}


def score_on_test(cfg: AudioConfig, test: LabelledAudio, scorers: dict[str, Callable[[list[np.ndarray]], np.ndarray]]
                  ) -> dict:
    """Accuracy, macro-F1 and the control of every scorer (metric prefix -> waves -> (N, K) probabilities) on the
    test clips, clean and with noise at each of cfg.noise_snrs (the same noise for every scorer)."""
    control = control_classes(cfg, test.label_names)
    metrics: dict = {}
    for snr in [None, *cfg.noise_snrs]:
        waves = test.waves if snr is None else noisy_copies(test.waves, snr, NOISE_SEED)
        suffix = "" if snr is None else f"_snr{snr:g}"
        for prefix, proba_of in scorers.items():
            values = score(prefix, test.labels, proba_of(waves), test.label_names, control)
            metrics |= {f"{k}{suffix}": v for k, v in values.items() if k != "control_n" or snr is None}
    return metrics


def test_metrics(cfg: AudioConfig, clf: AudioClassifier, splits: tuple[LabelledAudio, ...],
                 out_dir: Path) -> dict:
    train, val, test = splits
    names = test.label_names

    def model_proba(waves: list[np.ndarray]) -> np.ndarray:
        return clf.proba_of_waves(waves, cfg.eval_batch_size)

    baselines = fit_baselines(cfg, train, val, clf.model.cfg.spectrogram)
    scorers = {"test": model_proba} | {f"{kind}_test": b.predict_proba for kind, b in baselines.items()}
    metrics = score_on_test(cfg, test, scorers)
    metrics["val_accuracy"] = score("val", val.labels, model_proba(val.waves), names, [])["val_accuracy"]
    for kind, baseline in baselines.items():
        metrics |= {f"{kind}_C": baseline.C, f"{kind}_val_accuracy": baseline.val_accuracy}
    report = classification_report(test.labels, model_proba(test.waves).argmax(1).tolist(), names)
    metrics["test_confusion"] = report.confusion.tolist()
    if cfg.plots:
        report.plot_confusion(out_dir / "test_confusion.png",
                              title=f"{cfg.model.architecture} on held-out prompts: accuracy {report.accuracy:.3f}")
    return metrics


def write_report(cfg: AudioConfig, metrics: dict, splits: tuple[LabelledAudio, ...], path: Path) -> None:
    """audio_report.md: the numbers of this run as markdown tables (docs/audio.md quotes them)."""
    arch = cfg.model.architecture
    titles = {"mfcc": "MFCC mean/std + logistic regression",
              "level": "level & silence statistics + LR (no speech content)"}
    rows = [(arch, "test")] * ("test_accuracy" in metrics) + [(titles[k], f"{k}_test") for k in cfg.baselines]
    control = "control_accuracy" if f"{rows[0][1]}_control_accuracy" in metrics else None
    size = f"; {metrics['parameters']} parameters" if "parameters" in metrics else ""
    lines = [f"Data: {cfg.data}; train/val/test clips {', '.join(str(len(s)) for s in splits)}, split by group "
             f"(seed {cfg.split_seed}){size}.", "",
             "| model | accuracy | macro-F1 |" + (f" {'-vs-'.join(cfg.control_labels)} (control) |" if control else ""),
             "|---|---:|---:|" + ("---:|" if control else "")]
    for label, key in rows:
        cell = f" {metrics[f'{key}_{control}']:.4f} |" if control else ""
        lines.append(f"| {label} | {metrics[f'{key}_accuracy']:.4f} | {metrics[f'{key}_macro_f1']:.4f} |{cell}")
    if cfg.noise_snrs:
        lines += ["", "| model | clean | " + " | ".join(f"SNR {s:g} dB" for s in cfg.noise_snrs) + " |",
                  "|---|---:|" + "---:|" * len(cfg.noise_snrs)]
        for label, key in rows:
            values = [metrics[f"{key}_accuracy"]] + [metrics[f"{key}_accuracy_snr{s:g}"] for s in cfg.noise_snrs]
            lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
        if control:
            lines += ["", f"{'-vs-'.join(cfg.control_labels)} control under noise:", "",
                      "| model | clean | " + " | ".join(f"SNR {s:g} dB" for s in cfg.noise_snrs) + " |",
                      "|---|---:|" + "---:|" * len(cfg.noise_snrs)]
            for label, key in rows:
                values = [metrics[f"{key}_control_accuracy"]] + [metrics[f"{key}_control_accuracy_snr{s:g}"]
                                                                  for s in cfg.noise_snrs]
                lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def plot_spectrograms(clf: AudioClassifier, test: LabelledAudio, path: Path) -> None:
    """One test clip per class: its standardised log-mel spectrogram as the model sees it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [next(i for i, y in enumerate(test.labels) if y == k) for k in sorted(set(test.labels))][:6]
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 1.6 * len(picks)), squeeze=False)
    hop_seconds = clf.model.cfg.spectrogram.hop_length / clf.model.cfg.spectrogram.sample_rate
    with torch.no_grad():
        for ax, i in zip(axes[:, 0], picks, strict=True):
            wave = torch.from_numpy(test.waves[i])[None]
            features, n_frames = clf.model.features(wave, torch.tensor([wave.size(1)]))
            ax.imshow(features[0, :, :int(n_frames)].numpy(), origin="lower", aspect="auto", cmap="magma",
                      extent=(0, int(n_frames) * hop_seconds, 0, features.size(1)))
            label = test.label_names[test.labels[i]]
            speaker = f", voice {SPEAKERS.get(label, '?')}" if test.source == ASTERISK else ""
            ax.set_title(f"{label}: {test.groups[i]}{speaker}", fontsize=9)
            ax.set_ylabel("mel band")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- the task
def train_audio_classifier(cfg: AudioConfig) -> dict:
    apply_threads(cfg.threads)
    data = load_data(cfg)
    splits = split_by_group(data, parse_fractions(cfg.split), cfg.split_seed)
    train, val, test = splits
    for name, part in (("validation", val), ("test", test)):
        if len(part) == 0:
            raise InputDataError(f"{data.source}: the {name} split is empty; give more groups or change split=")
    cfg = dataclasses.replace(cfg, model=with_classes(cfg.model, len(data.label_names), data.sample_rate))
    model = AudioModel(cfg.model)
    model.set_feature_stats(*feature_statistics(model, train.waves))
    info = AudioClassifierInfo(model=to_dict(cfg.model), label_names=list(data.label_names),
                               sample_rate=data.sample_rate, max_seconds=cfg.max_seconds, channels=cfg.channels,
                               level_dbfs=cfg.level_dbfs, data=cfg.data)

    def save_final(trained: nn.Module, directory: Path) -> None:
        AudioClassifier(trained, info).save(directory)

    trainer = Trainer(cfg, model, Clips(train), loss_fn=make_loss_fn(cfg), collate_fn=collate,
                      eval_data=Clips(val), eval_fn=eval_fn, save_final=save_final,
                      lengths=[len(w) for w in train.waves])
    result = trainer.fit()
    out_dir = Path(cfg.out_dir)
    clf = AudioClassifier(unwrap(trainer.model).cpu(), info)
    metrics = dict(result.metrics)
    metrics |= {"parameters": clf.model.num_parameters(), "train_clips": len(train), "val_clips": len(val),
                "test_clips": len(test), "skipped_clips": data.skipped, "label_names": list(data.label_names),
                "train_audio_seconds": train.seconds()}
    metrics |= test_metrics(cfg, clf, splits, out_dir)
    if cfg.plots:
        plot_spectrograms(clf, test, out_dir / "spectrograms.png")
    write_report(cfg, metrics, splits, out_dir / "audio_report.md")
    return metrics



# ----------------------------------------------------------------------------------------------- saved models
@dataclass
class EvaluationClips:
    classifier: AudioClassifier
    clips: LabelledAudio
    """Waveforms prepared as in training, labels indexing the model's label_names."""
    split: str
    """Which clips: train / validation / test of the run's own split, or all of `data`."""
    data: str
    control: list[int]
    """Class ids of the same-speaker control (empty when its labels are not all the model's)."""


def evaluation_clips(model: str | Path, data: str | None = None, split: str = "auto") -> EvaluationClips:
    """The labelled clips to score a saved audio classifier on, prepared as in training. split=auto: the run's
    own held-out test clips when `data` is its training data (or not given), every clip of `data` otherwise;
    train / validation / test repeat the run's group split (they need the run's config.yaml); all: every clip."""
    from .saved_run import rows_to_score

    chosen = rows_to_score(model, AudioClassifier, AudioConfig, "an audio classifier", data, split,
                           data_hint="a folder of class sub-folders, or a .csv/.jsonl of path,label")
    clf, cfg, data, split = chosen.model, chosen.config, chosen.data, chosen.split
    if cfg is not None and split != "all":  # the run's own split of its own data
        clips = split_by_group(load_data(cfg), parse_fractions(cfg.split), cfg.split_seed)[
            ("train", "validation", "test").index(split)]
    else:  # another folder or list: read as the model reads files
        languages = {"languages": cfg.languages} if cfg is not None else {}
        clips = load_data(AudioConfig(data=data, sample_rate=clf.sample_rate, max_seconds=clf.info.max_seconds or 3600,
                                      channels=clf.info.channels, level_dbfs=clf.info.level_dbfs, **languages))
    if len(clips) == 0:
        raise InputDataError(f"{data!r} has no clips in the {split} split; use another --split")
    unknown = sorted(set(clips.label_names) - set(clf.label_names))
    if unknown:
        raise InputDataError(f"{data!r} has labels {unknown[:5]} that the model never learned (its classes: "
                             f"{clf.label_names}); drop those recordings or retrain with them")
    index = {name: k for k, name in enumerate(clf.label_names)}
    clips = LabelledAudio(clips.waves, [index[clips.label_names[y]] for y in clips.labels], tuple(clf.label_names),
                          clips.groups, clips.sample_rate, clips.source, clips.paths)
    return EvaluationClips(clf, clips, split, data, control_classes(cfg or AudioConfig(), clips.label_names))


def evaluate_audio(model: str | Path, data: str | None = None, split: str = "auto",
                   output_dir: str | Path | None = None, max_examples: int | None = None, seed: int = 0
                   ) -> tuple[ClassificationReport, dict, Path]:
    """Score a saved audio classifier as its run scored its test clips: accuracy, macro-F1, per-class precision
    and recall, the confusion matrix and the same-speaker control; write eval_<data>_<split>.json and its
    confusion PNG (default: the run's evaluations/). -> (the report, the control numbers, the JSON path)."""
    from ..artifacts.runs import evaluations_dir
    from .saved_run import data_name

    chosen = evaluation_clips(model, data, split)
    clips = chosen.clips
    if max_examples is not None and len(clips) > max_examples:
        clips = clips.subset(np.sort(np.random.default_rng(seed).permutation(len(clips))[:max_examples]).tolist())
    proba = chosen.classifier.proba_of_waves(clips.waves)
    report = classification_report(clips.labels, proba.argmax(1).tolist(), clips.label_names)
    control: dict = {}
    if chosen.control:
        accuracy, n = pair_accuracy(clips.labels, proba, chosen.control)
        control = {"control_labels": [clips.label_names[k] for k in chosen.control], "control_accuracy": accuracy,
                   "control_n": n}
    directory = Path(output_dir) if output_dir else evaluations_dir(model)
    path = report.save(directory, f"eval_{data_name(chosen.data)}_{chosen.split}",
                       extra={"model": str(model), "data": chosen.data, "split": chosen.split, **control})
    return report, control, path
