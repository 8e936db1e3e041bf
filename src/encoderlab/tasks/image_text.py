"""`train_image_text(cfg)`: a CLIP-style dual encoder (image tower + our text encoder) trained contrastively on
image-text pairs, scored on held-out pairs: retrieval both ways and zero-shot classification.

    run_task(train_image_text, ImageTextConfig, "configs/emoji-clip.yaml", ["model.image.kind=cnn"])

Data: `emoji` (the npm package emoji-datasource-google@16.0.0, fetched with npm on first use; each image's
text is its name) or a CSV with columns `image` (paths relative to the CSV), `text`, and optionally `group`
(pairs of one group stay on one side of the split) and `category` (for zero-shot scoring). A seeded share
of the groups is held out for testing (emoji: a held-out base emoji takes all its skin-tone variants with
it), another share of the rest validates during training.

Scores on the test pairs (gallery = every test pair):
- text -> image and image -> text Recall@1/5/10 (and the median rank), against chance (k / N);
- zero-shot category accuracy: each test image against the prompt `category_prompt` of every category name,
  against chance (1 / categories), the majority category's share, and two baselines: the category of the
  nearest training image in pixel space, and "nearest name": the text tower alone, the category whose prompt
  is nearest to the image's own name (what the text side knows without seeing the image).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..artifacts.image_text import ImageTextEncoder
from ..artifacts.text_encoder import TextEncoder
from ..data.images import (
    EMOJI_SIZE,
    ImageTextPairs,
    emoji_root,
    emoji_subcategories,
    load_emoji,
    read_images,
    split_by_group,
)
from ..errors import ConfigError, InputDataError
from ..evaluation.retrieval import nearest_neighbour_labels, recall_at_k, zero_shot_accuracy
from ..models.dual_encoder import DualEncoder, DualEncoderConfig, contrastive_loss
from ..training import TrainConfig, Trainer
from ..training.distributed import unwrap
from ..training.optim import param_groups
from ..training.precision import apply_threads


@dataclass
class ImageTextConfig(TrainConfig):
    out_dir: str = "runs/image-text"
    """Where the run is written."""
    data: str = "emoji"
    """emoji, or a .csv with image, text[, group, category] columns."""
    test_fraction: float = 0.15
    """Share of the groups (base emoji) held out for testing."""
    val_fraction: float = 0.1
    """Share of the remaining groups that validates during training."""
    split_seed: int = 0
    """Seed of the held-out groups."""
    text_model: str = "minilm"
    """The text tower to start from: an alias or a checkpoint directory."""
    max_length: int = 32
    """Tokens per text."""
    text_lr_scale: float = 0.1
    """With model.train_text: the text tower's lr is lr * text_lr_scale."""
    shift: int = 2
    """Augmentation: each training batch is shifted by up to this many pixels (white fill); 0 = none."""
    category_prompt: str = "an emoji of the category {}"
    """Zero-shot: the text each category name becomes ('{}' is replaced by the name)."""
    description_prompt: str = "an emoji of {}"
    """Zero-shot prompt ensembles (emoji): the text each subcategory name becomes; a category's vector averages
    its own prompt and these."""
    model: DualEncoderConfig = field(default_factory=DualEncoderConfig)
    """Image tower, shared space, temperature, whether the text tower trains."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.test_fraction < 1.0 or not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("test_fraction and val_fraction must be between 0 and 1")
        if "{}" not in self.description_prompt:
            raise ConfigError(f"description_prompt={self.description_prompt!r} must contain {{}} (the name)")
        if "{}" not in self.category_prompt:
            raise ConfigError(f"category_prompt={self.category_prompt!r} must contain {{}} (the category name)")
        if self.shift < 0 or self.max_length < 2 or self.text_lr_scale <= 0:
            raise ConfigError("shift must be >= 0, max_length >= 2 and text_lr_scale > 0")


# ----------------------------------------------------------------------------------------------- data
def load_pairs(data: str) -> tuple[ImageTextPairs, int | None]:
    """(pairs, the pixel size every image must have or None)."""
    if data == "emoji":
        return load_emoji(emoji_root()), EMOJI_SIZE
    path = Path(data)
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise InputDataError(f"data={data!r}: use 'emoji' or a .csv file with image and text columns")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("image", "text") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputDataError(f"{data}: no column(s) {missing}; the file has {reader.fieldnames}. It needs "
                                 "'image' (a path relative to the file) and 'text'")
        rows = list(reader)
    groups = {g: i for i, g in enumerate(dict.fromkeys(r.get("group") or r["image"] for r in rows))}
    pairs = ImageTextPairs([path.parent / r["image"] for r in rows], [r["text"] for r in rows],
                           [groups[r.get("group") or r["image"]] for r in rows],
                           [r.get("category") or "" for r in rows])
    return pairs, None


class Pairs(Dataset):
    """Items: (pixels, token ids) or, with a locked text tower, (pixels, precomputed text features)."""

    def __init__(self, pixels: np.ndarray, texts: list[list[int]] | torch.Tensor):
        self.pixels, self.texts = torch.from_numpy(pixels), texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, list[int] | torch.Tensor]:
        return self.pixels[i], self.texts[i]


def random_shift(pixels: torch.Tensor, shift: int) -> torch.Tensor:
    """The batch (B, 3, H, W) moved by one random offset of up to `shift` pixels, filled with white."""
    dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,)))
    padded = nn.functional.pad(pixels, (shift, shift, shift, shift), value=1.0)
    H, W = pixels.shape[-2:]
    return padded[..., shift + dy:shift + dy + H, shift + dx:shift + dx + W]


def make_collate(pad_id: int):
    def collate(items: list[tuple[torch.Tensor, list[int] | torch.Tensor]]) -> dict[str, torch.Tensor]:
        pixels = torch.stack([p for p, _ in items])  # (B, 3, H, W)
        if isinstance(items[0][1], torch.Tensor):
            return {"pixels": pixels, "text_features": torch.stack([t for _, t in items])}  # (B, C_text)
        T = max(len(ids) for _, ids in items)
        input_ids = torch.full((len(items), T), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), T), dtype=torch.long)
        for row, (_, ids) in enumerate(items):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        return {"pixels": pixels, "input_ids": input_ids, "attention_mask": mask}

    return collate


def texts_of(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch's text inputs as DualEncoder.forward keywords."""
    if "text_features" in batch:
        return {"text_features": batch["text_features"]}
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def make_loss_fn(shift: int):
    """The training loss; training batches (only) are shifted by up to `shift` pixels (augmentation)."""

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        pixels = random_shift(batch["pixels"], shift) if shift else batch["pixels"]
        logits = model(pixels, **texts_of(batch))  # (B, B)
        return contrastive_loss(logits.float()), len(logits)

    return loss_fn


def eval_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
    logits = model(batch["pixels"], **texts_of(batch)).float()
    n = len(logits)
    hits = (logits.argmax(1) == torch.arange(n, device=logits.device)).float().mean()
    return {"loss": (contrastive_loss(logits), n), "batch_image_to_text_top1": (hits, n)}


def optimizer_groups(cfg: ImageTextConfig):
    def groups(model: nn.Module) -> list[dict[str, Any]]:
        out = []
        if cfg.model.train_text:
            out += [{**g, "lr_scale": cfg.text_lr_scale} for g in param_groups(model.text, cfg.weight_decay)]
        rest = [p for name, p in model.named_parameters() if not name.startswith("text.") and p.requires_grad]
        out.append({"params": [p for p in rest if p.ndim >= 2], "weight_decay": cfg.weight_decay})
        out.append({"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0})  # norms, biases, scale
        return out

    return groups


# ----------------------------------------------------------------------------------------------- scoring
def ensemble_prompts(names: list[str], prompt: str, descriptions: dict[str, list[str]],
                     description_prompt: str) -> tuple[list[str], np.ndarray]:
    """Every category's prompt plus one prompt per description (e.g. its subcategory names) -> (texts, owner):
    owner[i] is the category index of texts[i]; a category's vector is the mean of its texts' vectors."""
    texts, owner = [], []
    for k, name in enumerate(names):
        for text in [prompt.format(name)] + [description_prompt.format(d) for d in descriptions.get(name, [])]:
            texts.append(text)
            owner.append(k)
    return texts, np.array(owner)


def class_means(vectors: np.ndarray, owner: np.ndarray, n_classes: int) -> np.ndarray:
    """(N_texts, D) unit vectors and each one's class -> (n_classes, D) unit mean vectors."""
    means = np.stack([vectors[owner == k].mean(0) for k in range(n_classes)])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def score_held_out(encoder: ImageTextEncoder, name_encoder: TextEncoder, train: ImageTextPairs,
                   train_pixels: np.ndarray, test: ImageTextPairs, test_pixels: np.ndarray,
                   prompt: str, descriptions: dict[str, list[str]] | None = None,
                   description_prompt: str = "an emoji of {}") -> dict[str, Any]:
    """Retrieval both ways and zero-shot categories on the test pairs, with chance and the baselines. With
    `descriptions` (category -> e.g. its subcategory names), also zero-shot from prompt ensembles: each
    category's vector is the mean of its own prompt's and its descriptions' prompts' vectors (after Radford
    et al., 2021, section 3.1.4), for the dual encoder and for the nearest-name baseline alike."""
    images, texts = encoder.encode_images(test_pixels), encoder.encode_texts(test.texts)
    n = len(test)
    metrics: dict[str, Any] = {"test_pairs": n, "test_groups": len(set(test.groups))}
    metrics |= {f"text_to_image_{k}": v for k, v in recall_at_k(texts, images).items()}
    metrics |= {f"image_to_text_{k}": v for k, v in recall_at_k(images, texts).items()}
    metrics |= {f"chance_recall@{k}": min(k, n) / n for k in (1, 5, 10)}
    names = sorted(set(train.categories) | set(test.categories))
    if names == [""]:
        return metrics  # no categories: retrieval only
    index = {c: i for i, c in enumerate(names)}
    labels = np.array([index[c] for c in test.categories])
    prompts = [prompt.format(c) for c in names]
    metrics["zero_shot_category_accuracy"] = zero_shot_accuracy(images, encoder.encode_texts(prompts), labels)
    metrics["categories"] = len(names)
    metrics["chance_category_accuracy"] = 1.0 / len(names)
    metrics["majority_category_accuracy"] = float(np.bincount(labels, minlength=len(names)).max() / n)
    flat_train = train_pixels.reshape(len(train_pixels), -1)
    flat_test = test_pixels.reshape(n, -1)
    flat_train = flat_train / np.linalg.norm(flat_train, axis=1, keepdims=True)
    flat_test = flat_test / np.linalg.norm(flat_test, axis=1, keepdims=True)
    train_labels = np.array([index[c] for c in train.categories])
    metrics["pixel_nearest_neighbour_category_accuracy"] = float(
        (nearest_neighbour_labels(flat_test, flat_train, train_labels) == labels).mean())
    name_vectors = name_encoder.encode(test.texts, shards=1)
    prompt_vectors = name_encoder.encode(prompts, shards=1)
    metrics["nearest_name_category_accuracy"] = zero_shot_accuracy(name_vectors, prompt_vectors, labels)
    if descriptions:
        texts, owner = ensemble_prompts(names, prompt, descriptions, description_prompt)
        metrics["zero_shot_category_accuracy_ensemble"] = zero_shot_accuracy(
            images, class_means(encoder.encode_texts(texts), owner, len(names)), labels)
        metrics["nearest_name_category_accuracy_ensemble"] = zero_shot_accuracy(
            name_vectors, class_means(name_encoder.encode(texts, shards=1), owner, len(names)), labels)
        metrics["ensemble_prompts"] = len(texts)
    return metrics


# ----------------------------------------------------------------------------------------------- the task
def train_image_text(cfg: ImageTextConfig) -> dict[str, Any]:
    apply_threads(cfg.threads)
    pairs, source_size = load_pairs(cfg.data)
    rest, test = split_by_group(pairs, cfg.test_fraction, cfg.split_seed)
    train, val = split_by_group(rest, cfg.val_fraction, cfg.split_seed + 1)
    size = cfg.model.image.image_size
    pixels = {name: read_images(split.paths, size, source_size) for name, split in
              (("train", train), ("val", val), ("test", test))}
    text_encoder = TextEncoder.from_pretrained(cfg.text_model)
    tokenizer = text_encoder.tokenizer
    model = DualEncoder(cfg.model, text_encoder.bert)
    # the pretrained text tower, kept apart for the nearest-name baseline (the trained one may move)
    name_encoder = TextEncoder.from_pretrained(cfg.text_model)

    def dataset(split: ImageTextPairs, name: str) -> Pairs:
        ids = tokenizer.encode_ids([t.strip() for t in split.texts], cfg.max_length)
        if cfg.model.train_text:
            return Pairs(pixels[name], ids)
        with torch.no_grad():  # a locked text tower: every text's features once, not once per epoch
            features = [model.text_features(batch.input_ids, batch.attention_mask)
                        for batch in (tokenizer.pad(ids[i:i + 256]) for i in range(0, len(ids), 256))]
        return Pairs(pixels[name], torch.cat(features))

    categories = sorted(c for c in set(pairs.categories) if c)

    def save_final(trained: nn.Module, directory: Path) -> None:
        ImageTextEncoder(trained, tokenizer, cfg.max_length, source_size, cfg.category_prompt,
                         categories).save(directory)

    trainer = Trainer(cfg, model, dataset(train, "train"), loss_fn=make_loss_fn(cfg.shift),
                      collate_fn=make_collate(tokenizer.pad_id), eval_data=dataset(val, "val"),
                      eval_fn=eval_fn, save_final=save_final, param_groups=optimizer_groups(cfg))
    result = trainer.fit()
    metrics: dict[str, Any] = dict(result.metrics)
    encoder = ImageTextEncoder(unwrap(trainer.model).cpu(), tokenizer, cfg.max_length, source_size,
                               cfg.category_prompt, categories)
    descriptions = emoji_subcategories(emoji_root()) if cfg.data == "emoji" else None
    metrics |= score_held_out(encoder, name_encoder, train, pixels["train"], test, pixels["test"],
                              cfg.category_prompt, descriptions, cfg.description_prompt)
    metrics |= {"train_pairs": len(train), "val_pairs": len(val), "image_kind": cfg.model.image.kind,
                "text_trained": cfg.model.train_text,
                "temperature": float(1.0 / unwrap(trainer.model).logit_scale.detach().exp())}
    return metrics



# ----------------------------------------------------------------------------------------------- saved models
def evaluate_image_text(model: str | Path, data: str | None = None, split: str = "auto",
                        output_dir: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """Retrieval both ways (Recall@1/5/10, median rank) and, when the pairs have categories, zero-shot category
    accuracy of a saved image-text model. split=auto: the run's held-out test pairs when `data` is its training
    data (or not given), every pair of `data` (a .csv of image,text[,category]) otherwise. Written to
    eval_<data>_<split>.json (default: the run's evaluations/). -> (metrics, the JSON path)."""
    from ..artifacts.runs import evaluations_dir
    from ..files import atomic_write_json
    from .saved_run import data_name, rows_to_score

    chosen = rows_to_score(model, ImageTextEncoder, ImageTextConfig, "an image-text model", data, split,
                           splits=("auto", "test", "all"), data_hint="a .csv with image and text columns")
    encoder, cfg, data, split = chosen.model, chosen.config, chosen.data, chosen.split
    pairs, _ = load_pairs(data)
    if cfg is not None and split == "test":
        pairs = split_by_group(pairs, cfg.test_fraction, cfg.split_seed)[1]
    if len(pairs) < 2:
        raise InputDataError(f"{data!r}: {len(pairs)} pair(s) in the {split} split; retrieval needs at least 2")
    images, texts = encoder.encode_images(pairs.paths), encoder.encode_texts(pairs.texts)
    metrics: dict[str, Any] = {"model": str(model), "data": data, "split": split, "pairs": len(pairs)}
    metrics |= {f"text_to_image_{k}": v for k, v in recall_at_k(texts, images).items()}
    metrics |= {f"image_to_text_{k}": v for k, v in recall_at_k(images, texts).items()}
    metrics |= {f"chance_recall@{k}": min(k, len(pairs)) / len(pairs) for k in (1, 5, 10)}
    names = sorted(c for c in set(pairs.categories) | set(encoder.categories) if c)
    if len(names) >= 2 and all(pairs.categories):
        index = {c: i for i, c in enumerate(names)}
        labels = np.array([index[c] for c in pairs.categories])
        prompts = encoder.encode_texts([encoder.prompt.format(c) for c in names])
        metrics |= {"zero_shot_category_accuracy": zero_shot_accuracy(images, prompts, labels),
                    "categories": len(names), "chance_category_accuracy": 1.0 / len(names)}
    path = (Path(output_dir) if output_dir else evaluations_dir(model)) / f"eval_{data_name(data)}_{split}.json"
    atomic_write_json(path, metrics)
    return metrics, path
