"""Served kinds whose requests carry JSON objects instead of texts: audio clips, table rows and images.

    {"model": "langid", "input": [{"audio": "<base64 of a .wav / .flac / .ogg file>"}]}      POST /v1/classify
    {"model": "reviews", "input": [{"Review Text": "Lovely", "Age": 34, "Class Name": "Knits"}]}
    {"model": "emoji", "input": [{"image": "<base64 of a .png>"}, {"text": "red apple"}, "grinning face"]}
                                                                                            POST /v1/embeddings

Each class turns a request's items into payloads on the event loop's side (`payloads`: base64 decoded, audio
decoded, mono, resampled, cut and level-normalised as in training; rows checked and encoded with the training
table's vocabularies; images decoded and size-checked), refusing bad items with a 422 naming `input[i]` and
the fix, so nothing that reaches the inference thread can fail on the client's account. The batched
operations then run the model's own methods, so a served answer equals `encoderlab predict`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..artifacts.audio import AudioClassifier
from ..artifacts.image_text import ImageTextEncoder
from ..artifacts.multimodal import MultimodalClassifier
from ..data.images import read_image
from ..data.tables import BadNumberError, EncodedTable
from ..errors import InputDataError
from .limits import APIError
from .served import Served, base64_field


def _objects(inputs: Sequence[Any], shape: str) -> list[dict[str, Any]]:
    """Every item a JSON object, else a 422 showing the expected `shape`."""
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise APIError(422, f"input[{i}] is a {type(item).__name__}; this model takes JSON objects, e.g. "
                                f"{shape}", "input", "invalid_input")
    return list(inputs)


class ServedAudioClassifier(Served):
    """An audio classifier: {"audio": base64 file bytes} items -> labels (/v1/classify), clip vectors
    (/v1/embeddings)."""

    kind = "audio-classifier"
    shape = '{"audio": "<base64 of a .wav/.flac/.ogg file>"}'

    def __init__(self, name: str, classifier: AudioClassifier):
        super().__init__(name)
        self.classifier = classifier
        self.labels = classifier.label_names
        self.dim = classifier.model.cfg.d_embedding
        self.operations = {"classify": self.probabilities, "embed": self.vectors}

    def describe(self) -> dict[str, Any]:
        info = self.classifier.info
        return {"labels": self.labels, "dimensions": self.dim, "sample_rate": info.sample_rate,
                "max_seconds": info.max_seconds, "input": self.shape}

    def payloads(self, inputs: Sequence[Any], operation: str = "classify") -> tuple[list[np.ndarray], list[int]]:
        """Decoded clips, as the model reads files, and their costs (spectrogram frames)."""
        raw = [base64_field(item, "audio", i, "an audio file") for i, item in enumerate(_objects(inputs, self.shape))]
        try:
            waves = self.classifier.load(raw)
        except InputDataError as exc:
            raise APIError(422, str(exc), "input", "invalid_audio") from None
        hop = self.classifier.model.cfg.spectrogram.hop_length
        return waves, [1 + len(w) // hop for w in waves]

    def probabilities(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Inference thread: (K,) probabilities per clip, as AudioClassifier.predict_proba computes them."""
        return list(self.classifier.proba_of_waves(waves))

    def vectors(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.classifier.encode_waves(waves))

    def warmup(self) -> tuple[str, list]:
        rate = self.classifier.sample_rate
        return "classify", [(0.1 * np.sin(np.arange(rate // 2) / 3.0)).astype(np.float32)]


class ServedMultimodal(Served):
    """A text + tabular classifier: {column: value} rows -> labels (/v1/classify), fused vectors (/v1/embeddings)."""

    kind = "multimodal"

    def __init__(self, name: str, classifier: MultimodalClassifier):
        super().__init__(name)
        self.classifier = classifier
        self.labels = classifier.label_names
        self.columns = classifier.features.spec.feature_columns
        self.dim = classifier.model.d_fused
        self.shape = "{" + ", ".join(f'"{c}": ...' for c in self.columns) + "}"
        self.operations = {"classify": self.probabilities, "embed": self.vectors}

    def describe(self) -> dict[str, Any]:
        spec = self.classifier.features.spec
        return {"labels": self.labels, "dimensions": self.dim, "input": self.shape,
                "columns": {"text": spec.text_columns, "categorical": spec.categorical_columns,
                            "numeric": spec.numeric_columns}}

    def payloads(self, inputs: Sequence[Any], operation: str = "classify"
                 ) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[int]]:
        """Rows checked and encoded as the training table was (vocabularies, standardisation) -> one
        (text, category ids, numbers) payload per row; cost: the text's words."""
        rows = _objects(inputs, self.shape)
        for i, row in enumerate(rows):
            missing = [c for c in self.columns if c not in row]
            if missing:
                raise APIError(422, f"input[{i}] has no column(s) {missing}; this model reads {self.columns} (a "
                                    "missing value may be null)", "input", "missing_column")
        try:
            x = self.classifier.prepare([{c: row[c] for c in self.columns} for row in rows])
        except BadNumberError as exc:  # the table reader's message speaks to someone training on a file
            raise APIError(422, f"input[{exc.row}]: column {exc.column!r} holds {exc.cell!r}, which is not a "
                                "number; this model reads it as a number (send null for a missing value)",
                           "input", "invalid_input") from None
        except InputDataError as exc:
            raise APIError(422, str(exc).replace("rows: row ", "input row "), "input", "invalid_input") from None
        return ([(x.texts[i], x.categories[i], x.numbers[i]) for i in range(len(x))],
                [2 + len(text.split()) for text in x.texts])

    @staticmethod
    def table(payloads: list[tuple[str, np.ndarray, np.ndarray]]) -> EncodedTable:
        texts, categories, numbers = zip(*payloads, strict=True)
        return EncodedTable(list(texts), np.stack(categories), np.stack(numbers), None)

    def probabilities(self, payloads: list) -> list[np.ndarray]:
        return list(self.classifier.predict_proba(self.table(payloads)))

    def vectors(self, payloads: list) -> list[np.ndarray]:
        return list(self.classifier.encode(self.table(payloads)))

    def warmup(self) -> tuple[str, list]:
        x = self.classifier.features
        return "classify", [("warm-up", np.zeros(len(x.vocabularies), dtype=np.int64),
                             np.zeros(len(x.means), dtype=np.float32))]


class ServedImageText(Served):
    """A CLIP-style dual encoder: images ({"image": base64 PNG}) and texts (strings or {"text": ...}) -> unit
    vectors in one space (/v1/embeddings); images -> zero-shot probabilities of the training categories
    (/v1/classify, when the run recorded two or more)."""

    kind = "image-text"
    shape = '{"image": "<base64 of a .png>"} or {"text": "a caption"} (or a plain string)'

    def __init__(self, name: str, encoder: ImageTextEncoder):
        super().__init__(name)
        self.encoder = encoder
        self.dim = encoder.model.cfg.d_embed
        self.normalize = True
        self.labels = list(encoder.categories)
        self.operations = {"embed": self.vectors}
        if len(self.labels) >= 2:
            self.operations["classify"] = self.zero_shot

    def describe(self) -> dict[str, Any]:
        size = self.encoder.source_size
        return {"dimensions": self.dim, "image_size": size, "categories": self.encoder.categories,
                "input": self.shape}

    def payloads(self, inputs: Sequence[Any], operation: str = "embed") -> tuple[list[tuple[str, Any]], list[int]]:
        """("image", (3, H, W) pixels) or ("text", string) per item; cost: patches or words. Zero-shot
        classification takes images only."""
        out: list[tuple[str, Any]] = []
        for i, item in enumerate(inputs):
            if operation == "classify" and not (isinstance(item, dict) and "image" in item):
                raise APIError(422, f"input[{i}] is not an image; /v1/classify labels images zero-shot with the "
                                    f"training categories {self.labels}: send {{\"image\": \"<base64 PNG>\"}} "
                                    "(texts go to /v1/embeddings)", "input", "invalid_input")
            if isinstance(item, dict) and set(item) == {"text"}:
                item = item["text"]
            if isinstance(item, str):
                if not item.strip():
                    raise APIError(422, f"input[{i}] is an empty text; send at least one character", "input",
                                   "empty_input")
                out.append(("text", item))
            elif isinstance(item, dict) and "image" in item:
                data = base64_field(item, "image", i, "an image file")
                try:
                    pixels = read_image(data, self.encoder.image_size, self.encoder.source_size, name=f"input[{i}]")
                except InputDataError as exc:
                    raise APIError(422, str(exc), "input", "invalid_image") from None
                out.append(("image", pixels))
            else:
                raise APIError(422, f"input[{i}] is neither a text nor an image; send {self.shape}", "input",
                               "invalid_input")
        return out, [16 if kind == "image" else 2 + len(value.split()) for kind, value in out]

    def vectors(self, payloads: list[tuple[str, Any]]) -> list[np.ndarray]:
        """Inference thread: images and texts each in one batch, answered in request order."""
        out: list[np.ndarray] = [np.empty(0)] * len(payloads)
        images = [i for i, (kind, _) in enumerate(payloads) if kind == "image"]
        texts = [i for i, (kind, _) in enumerate(payloads) if kind == "text"]
        if images:
            for i, row in zip(images, self.encoder.encode_images(np.stack([payloads[i][1] for i in images])),
                              strict=True):
                out[i] = row
        if texts:
            for i, row in zip(texts, self.encoder.encode_texts([payloads[i][1] for i in texts]), strict=True):
                out[i] = row
        return out

    def zero_shot(self, payloads: list[tuple[str, Any]]) -> list[np.ndarray]:
        """Inference thread: (categories,) zero-shot probabilities per image, as ImageTextEncoder.classify_proba."""
        return list(self.encoder.classify_proba(np.stack([pixels for _, pixels in payloads]), self.labels))

    def warmup(self) -> tuple[str, list]:
        size = self.encoder.image_size
        return "embed", [("text", "warm up"), ("image", np.ones((3, size, size), dtype=np.float32))]


MEDIA_KINDS: dict[type, type[Served]] = {AudioClassifier: ServedAudioClassifier,
                                         MultimodalClassifier: ServedMultimodal, ImageTextEncoder: ServedImageText}
"""Loaded model class -> its served form."""
