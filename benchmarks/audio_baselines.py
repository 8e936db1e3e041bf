"""The linear baselines of `encoderlab audio` on their own (no network trained): MFCC mean/std and
level/silence statistics, each + logistic regression with C tuned on validation, on the same group split,
with the same noise and the same control as the task. Prints the markdown tables of audio_report.md.

    .venv/bin/python benchmarks/audio_baselines.py --config configs/audio-langid.yaml
    .venv/bin/python benchmarks/audio_baselines.py --config configs/audio-langid.yaml train_noise_snr=[0,30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from encoderlab.config import load_config
from encoderlab.data.audio import split_by_group
from encoderlab.data.records import parse_fractions
from encoderlab.models.audio import with_classes
from encoderlab.tasks.audio import AudioConfig, fit_baselines, load_data, score_on_test, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/audio-langid.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the task config")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(AudioConfig, args.config, args.overrides)
    data = load_data(cfg)
    splits = split_by_group(data, parse_fractions(cfg.split), cfg.split_seed)
    spectrogram = with_classes(cfg.model, len(data.label_names), data.sample_rate).spectrogram
    baselines = fit_baselines(cfg, splits[0], splits[1], spectrogram)
    metrics = score_on_test(cfg, splits[2], {f"{kind}_test": b.predict_proba for kind, b in baselines.items()})
    for kind, baseline in baselines.items():
        print(f"{kind}: C={baseline.C} (validation accuracy {baseline.val_accuracy:.4f})", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        write_report(cfg, metrics, splits, Path(tmp) / "report.md")
        print((Path(tmp) / "report.md").read_text())


if __name__ == "__main__":
    main()
