"""Small real runs of the kinds that do not read text alone, for the command and server tests: an audio CNN and
an audio Transformer on the bundled Asterisk clips (grouped by prompt), a text + tabular classifier on the
clothing-reviews sample, and an image-text model on the bundled emoji (the `emoji` dataset read from a copy in
a private cache). A few steps each: the tests check that every command and route gives the model's own
answers, not that the models are good."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

DATA = Path(__file__).parent / "data"
CLIPS = DATA / "audio" / "asterisk"
SAMPLE = DATA / "clothing_reviews_sample.csv"
EMOJI = DATA / "emoji"
EMOJI_IMAGES = EMOJI / "img" / "google" / "64"


def clip_table(directory: Path) -> Path:
    """A .csv of the bundled clips grouped by prompt (digit), so a digit is never on two sides of the split."""
    rows = [f"{p.resolve()},{p.parent.name},{p.stem}" for p in sorted(CLIPS.glob("*/*.flac"))]
    path = directory / "clips.csv"
    path.write_text("path,label,group\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def train_media_runs(root: Path, text_model: Path) -> dict[str, Path]:
    """name -> run directory: cnn, transformer (audio), table (multimodal, gated fusion), emoji (image-text)."""
    from encoderlab.tasks.audio import AudioConfig, train_audio_classifier
    from encoderlab.tasks.image_text import ImageTextConfig, train_image_text
    from encoderlab.tasks.multimodal import MultimodalConfig, train_multimodal
    from encoderlab.training import run_task

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache = os.environ.get("ENCODERLAB_CACHE")
    try:
        table = clip_table(root)
        audio = [f"data={table}", "max_steps=6", "batch_size=8", "threads=1", "eval_every=6", "split=0.5,0.25,0.25",
                 "progress=off", "noise_snrs=[10]", "baselines=[]", "plots=false", "level_dbfs=-26"]
        run_task(train_audio_classifier, AudioConfig, None, [*audio, f"out_dir={root / 'cnn'}",
                                                             "model.channels=[8,16,16]"])
        run_task(train_audio_classifier, AudioConfig, None, [
            *audio, f"out_dir={root / 'transformer'}", "model.architecture=transformer", "model.d_model=16",
            "model.n_layers=1", "model.n_heads=2", "model.d_ff=32"])
        run_task(train_multimodal, MultimodalConfig, None, [
            f"data={SAMPLE}", "text_columns=[Review Text]", "categorical_columns=[Class Name]",
            "numeric_columns=[Age]", "label_column=Recommended IND", "model.mode=gated", f"text_model={text_model}",
            "max_steps=2", "batch_size=16", "threads=1", "baselines=false", "max_length=32", "progress=off",
            f"out_dir={root / 'table'}"])
        shutil.copytree(EMOJI, root / "cache" / "emoji-datasource-google-16.0.0")
        os.environ["ENCODERLAB_CACHE"] = str(root / "cache")
        run_task(train_image_text, ImageTextConfig, None, [
            f"text_model={text_model}", "model.image.kind=cnn", "model.image.image_size=16",
            "model.image.cnn_channels=[8]", "model.d_embed=16", "test_fraction=0.3", "batch_size=8", "max_steps=2",
            "threads=1", "progress=off", f"out_dir={root / 'emoji'}"])
    finally:
        torch.set_num_threads(threads)
        if cache is None:
            os.environ.pop("ENCODERLAB_CACHE", None)
        else:
            os.environ["ENCODERLAB_CACHE"] = cache
    return {name: root / name for name in ("cnn", "transformer", "table", "emoji")}
