"""`ImageTextEncoder`: a trained CLIP-style dual encoder, used on images and texts.

    model = ImageTextEncoder.from_dir("runs/emoji-vit")           # the run directory or its final/
    images = model.encode_images("photos/")                        # a folder, a CSV with an `image` column,
    images = model.encode_images(["a.png", "b.png"])               # a list of paths, or (N, 3, H, W) pixels
    texts = model.encode_texts(["grinning face", "red apple"])     # (N, d) unit vectors, same space
    model.score(images, texts)                                     # (N_images, N_texts) cosine similarities
    model.classify("photos/", ["Smileys & Emotion", "Flags"])      # zero-shot: the best label per image
    model.classify_proba("photos/")                                 # (N, categories), the training categories

On disk (final/): `image_text.json` (this kind's marker: the DualEncoderConfig, the image size the model
reads and the size of the training images), `model.safetensors` (image tower, projections, temperature)
and `text/`: the text tower in the Hugging Face layout with its tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict, to_dict
from ..data.images import image_paths, read_images
from ..errors import InputDataError
from ..models.dual_encoder import DualEncoder, DualEncoderConfig
from ..tokenization import TextTokenizer
from .registry import Kind
from .text_tower import InfoFile, load_state, load_text_tower, read_info, save_with_text_tower, write_info

INFO_FILE = "image_text.json"
Images = str | Path | Sequence[str | Path] | np.ndarray


@dataclass
class ImageTextInfo(InfoFile):
    """What image_text.json holds."""

    model: dict[str, Any]
    """The DualEncoderConfig."""
    source_size: int | None
    """Pixel size of the training images: inputs of another size are refused (None: any size, resized)."""
    max_length: int
    """Token limit of the text side."""
    prompt: str = "{}"
    """How a class name becomes a text for zero-shot classification ('{}' is replaced by the name)."""
    categories: list[str] = field(default_factory=list)
    """The training data's category names: zero-shot labels when a prediction names none (empty: none known)."""
    kind: str = "image-text-dual-encoder"


class ImageTextEncoder:
    """A trained image-text dual encoder: images (a folder, a CSV of paths, paths or pixels) and texts into one
    space of unit vectors; `encode` embeds images, `encode_texts` texts."""

    kind = "image-text"

    def __init__(self, model: DualEncoder, tokenizer: TextTokenizer, max_length: int = 32,
                 source_size: int | None = None, prompt: str = "{}", categories: Sequence[str] = ()):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.source_size = source_size
        self.prompt = prompt
        self.categories = list(categories)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        save_with_text_tower(self.model, self.tokenizer, directory)
        info = ImageTextInfo(to_dict(self.model.cfg), self.source_size, self.max_length, self.prompt, self.categories)
        write_info(directory, INFO_FILE, info)
        return directory

    @classmethod
    def from_dir(cls, path: str | Path) -> ImageTextEncoder:
        directory, info = read_info(path, INFO_FILE, ImageTextInfo, "an image-text model")
        text, tokenizer = load_text_tower(directory)
        model = DualEncoder(from_dict(DualEncoderConfig, info.model), text)
        model.load_state_dict(load_state(directory, text))
        return cls(model, tokenizer, info.max_length, info.source_size, info.prompt, info.categories)

    # ------------------------------------------------------------------------------------------- inputs
    @property
    def image_size(self) -> int:
        return self.model.cfg.image.image_size

    def pixels(self, images: Images) -> np.ndarray:
        """A folder, a CSV of paths, a list of paths or an (N, 3, H, W) array -> checked (N, 3, size, size)."""
        if isinstance(images, np.ndarray):
            expected = (3, self.image_size, self.image_size)
            if images.ndim != 4 or images.shape[1:] != expected:
                raise InputDataError(f"images of shape {images.shape}: expected (N, {', '.join(map(str, expected))}) "
                                     "pixels in [0, 1]; or pass image paths, a folder or a CSV of paths")
            if images.size and (images.min() < 0 or images.max() > 1):
                raise InputDataError("image pixels must be in [0, 1] (divide uint8 images by 255)")
            return images.astype(np.float32, copy=False)
        paths = image_paths(images) if isinstance(images, str | Path) else list(images)
        return read_images(paths, self.image_size, self.source_size)

    # ------------------------------------------------------------------------------------------- compute
    @torch.inference_mode()
    def encode_images(self, images: Images, batch_size: int = 128) -> np.ndarray:
        """(N, d_embed) float32 unit vectors."""
        x = self.pixels(images)
        self.model.eval()
        out = [self.model.encode_image(torch.from_numpy(x[i:i + batch_size])).numpy()
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.cfg.d_embed), dtype=np.float32)

    def encode(self, images: Images, batch_size: int = 128) -> np.ndarray:
        """The registry's `Encodes` operation: images -> (N, d_embed) unit vectors (texts: `encode_texts`)."""
        return self.encode_images(images, batch_size)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """(N, d_embed) float32 unit vectors."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputDataError("texts must be a list of strings")
        self.model.eval()
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer.pad(self.tokenizer.encode_ids([t.strip() for t in texts[i:i + batch_size]],
                                                                 self.max_length))
            out.append(self.model.encode_text(batch.input_ids, batch.attention_mask).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.cfg.d_embed), dtype=np.float32)

    def score(self, images: Images | np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(N_images, N_texts) cosine similarities."""
        return self.encode_images(images) @ self.encode_texts(texts).T

    def zero_shot_labels(self, labels: Sequence[str] | None = None) -> list[str]:
        """`labels`, or the training categories when None; a clear error when neither is there."""
        labels = list(self.categories if labels is None else labels)
        if len(labels) < 2 or not all(isinstance(label, str) and label.strip() for label in labels):
            known = f" (its training categories: {self.categories})" if self.categories else \
                " (it records no training categories)"
            raise InputDataError(f"zero-shot classification needs two or more non-empty label names, got {labels}"
                                 f"{known}; pass them, e.g. --labels 'Flags,Food & Drink'")
        return labels

    def classify_proba(self, images: Images, labels: Sequence[str] | None = None) -> np.ndarray:
        """Zero-shot: (N_images, N_labels) softmax of the model's scaled similarities to each label's prompt
        (labels default to the training categories)."""
        labels = self.zero_shot_labels(labels)
        logits = self.score(images, [self.prompt.format(label) for label in labels]) * self.logit_scale
        logits -= logits.max(axis=1, keepdims=True)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    @property
    def logit_scale(self) -> float:
        """The trained inverse temperature the contrastive loss scaled cosines by."""
        return min(100.0, float(self.model.logit_scale.detach().exp()))  # clamped at 100 as in training

    def classify(self, images: Images, labels: Sequence[str] | None = None) -> list[str]:
        """Zero-shot: for each image, the label whose prompt text is most similar (default: the training
        categories)."""
        labels = self.zero_shot_labels(labels)
        return [labels[k] for k in self.classify_proba(images, labels).argmax(axis=1)]


KIND = Kind(
    name="image-text",
    summary="a CLIP-style image-text dual encoder. Embed images with `encoderlab encode --model {path} --input "
            "FOLDER_OR_CSV`, label them zero-shot with `encoderlab predict`; `evaluate` and `serve` take it too",
    holds=lambda d: (d / INFO_FILE).is_file(),
    load=ImageTextEncoder.from_dir,
)
