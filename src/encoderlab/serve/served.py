"""One served model per saved kind: checks and tokenization in front (the event loop), batched inference behind
(the inference thread).

Every served model has `operations`: name -> run_batch(payloads) -> one result per payload, which the app puts
behind a `Batcher` each. The front methods turn a request's input into those payloads and refuse bad input
with an `APIError` (a 4xx) before anything is queued.

The front tokenizes with its own copy of the model's tokenizer: `tokenizers` objects carry truncation state,
and the model's own one belongs to the inference thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from ..artifacts.autoencoder import ArrayEncoder, anomaly_scores, batched
from ..artifacts.classifier import TextClassifier, run_encoder
from ..artifacts.recommender import Recommender
from ..artifacts.seq2seq import Seq2SeqPredictor
from ..artifacts.tagger import TokenTagger
from ..artifacts.text_encoder import TextEncoder
from ..errors import InputDataError
from ..tokenization import TextTokenizer
from .limits import APIError

MAX_SOURCE_TOKENS = 1024
"""seq2seq sources longer than this are refused (an RNN has no position limit, but a request should end)."""


def check_texts(texts: Sequence[str], field: str = "input") -> None:
    for i, text in enumerate(texts):
        if not text.strip():
            raise APIError(422, f"{field}[{i}] is empty (or only spaces); every text needs at least one character",
                           field, "empty_input")


def base64_field(item: Mapping[str, Any], key: str, i: int, what: str) -> bytes:
    """input[i][key]: `what` (a file) as a base64 string -> its bytes, or a 422 saying what to send."""
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise APIError(422, f"input[{i}] has no {key!r} field holding {what} as a base64 string; send "
                            f'{{"{key}": "<base64>"}}', "input", "invalid_input")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(422, f"input[{i}].{key} is not valid base64 ({exc}); encode the file's bytes, e.g. "
                            f"base64.b64encode(open(PATH, 'rb').read()).decode()", "input", "invalid_base64") from None


# ------------------------------------------------------------------------------------------- tokenizing
@dataclass
class Tokenized:
    ids: list[list[int]]
    """One id list per text (or per window, with chunking), special tokens included."""
    owner: list[int]
    """owner[k]: the input row that ids[k] belongs to (several windows share one with chunking)."""
    truncated: list[int]
    """Input rows that were cut to the model's limit."""

    @property
    def tokens(self) -> int:
        return sum(len(seq) for seq in self.ids)


class FrontTokenizer:
    """A private copy of a model's tokenizer for the event loop: texts or client token ids -> checked id lists."""

    def __init__(self, tokenizer: TextTokenizer, max_tokens: int, lower: bool = False):
        self.tokenizer = Tokenizer.from_str(tokenizer.tokenizer.to_str())
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_tokens, self.lower = max_tokens, lower
        self.vocab_size = self.tokenizer.get_vocab_size()
        # the special tokens the post-processor wraps every text in ([CLS] … [SEP], <s> … </s>)
        full = self.tokenizer.encode("a").ids
        plain = self.tokenizer.encode("a", add_special_tokens=False).ids
        at = next(i for i in range(len(full)) if full[i:i + len(plain)] == plain)
        self.prefix, self.suffix = full[:at], full[at + len(plain):]
        self.room = max_tokens - len(self.prefix) - len(self.suffix)
        """Content tokens that fit in one sequence."""

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Whole id lists (no truncation), prepared as TextEncoder.encode prepares texts (stripped, lower-cased
        when the checkpoint says so)."""
        prepared = [t.strip().lower() if self.lower else t.strip() for t in texts]
        return [enc.ids for enc in self.tokenizer.encode_batch(prepared)]

    def check_ids(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        """Client token ids: each must be an id of this model's vocabulary; rows without the special tokens get
        them, as tokenizing the text would."""
        out = []
        for i, row in enumerate(rows):
            if not row:
                raise APIError(422, f"input[{i}] is an empty list of token ids", "input", "empty_input")
            bad = next((t for t in row if not 0 <= t < self.vocab_size), None)
            if bad is not None:
                raise APIError(422, f"input[{i}] holds token id {bad}, which is not in this model's vocabulary "
                                    f"(ids 0..{self.vocab_size - 1}); send text, or ids from POST /v1/tokenize "
                                    "(ids from another tokenizer, e.g. tiktoken, mean nothing to this model)",
                               "input", "invalid_token_id")
            row = list(row)
            wrapped = row[:len(self.prefix)] == self.prefix and row[len(row) - len(self.suffix):] == self.suffix
            out.append(row if wrapped and len(row) >= len(self.prefix) + len(self.suffix) else
                       self.prefix + row + self.suffix)
        return out

    def content(self, ids: list[int]) -> list[int]:
        return ids[len(self.prefix):len(ids) - len(self.suffix)]

    def fit(self, rows: list[list[int]], truncate: bool, chunk: bool) -> Tokenized:
        """Rows longer than the limit: cut (truncate), split into windows (chunk), or refused with 413."""
        ids, owner, truncated = [], [], []
        for i, row in enumerate(rows):
            if len(row) <= self.max_tokens:
                ids.append(row)
                owner.append(i)
            elif chunk:
                body = self.content(row)
                for start in range(0, len(body), self.room):
                    ids.append(self.prefix + body[start:start + self.room] + self.suffix)
                    owner.append(i)
            elif truncate:
                ids.append(self.prefix + self.content(row)[:self.room] + self.suffix)
                owner.append(i)
                truncated.append(i)
            else:
                raise APIError(413, f"input[{i}] has {len(row)} tokens; this model takes at most {self.max_tokens}. "
                                    "Shorten it, send truncate=true to cut it, or start the server with --chunk "
                                    "to embed long texts in windows", "input", "context_length_exceeded")
        return Tokenized(ids, owner, truncated)


# ------------------------------------------------------------------------------------------- served models
class Served:
    """What every served model has."""

    kind: str = ""
    operations: dict[str, Callable[[list], Sequence]]

    def __init__(self, name: str):
        self.name = name

    def describe(self) -> dict[str, Any]:
        """Extra fields for this model's entry in GET /v1/models."""
        return {}

    def warmup(self) -> tuple[str, list]:
        """(operation, payloads) for one request's worth of warm-up."""
        raise NotImplementedError


class ServedTextModel(Served):
    """Text encoders and classifiers: texts (or token ids) -> embeddings; classifiers also -> probabilities."""

    front: FrontTokenizer

    def tokenize(self, texts_or_ids: Sequence, truncate: bool = True, chunk: bool = False) -> Tokenized:
        if texts_or_ids and isinstance(texts_or_ids[0], str):
            check_texts(texts_or_ids)
            rows = self.front.encode(texts_or_ids)
        else:
            rows = self.front.check_ids(texts_or_ids)
        return self.front.fit(rows, truncate, chunk)

    def warmup(self) -> tuple[str, list]:
        return "embed", self.tokenize(["warm-up: a short sentence to run once before serving."]).ids


class ServedTextEncoder(ServedTextModel):
    kind = "text-encoder"

    def __init__(self, name: str, encoder: TextEncoder, precision: str = "fp32", chunk: bool = False):
        super().__init__(name)
        self.encoder, self.chunk = encoder, chunk
        self.precision = precision
        self.front = FrontTokenizer(encoder.tokenizer, encoder.max_seq_length, encoder.do_lower_case)
        self.dim = encoder.dim
        self.normalize = encoder.normalize
        self.operations = {"embed": self.embed_ids}

    def describe(self) -> dict[str, Any]:
        return {"dimensions": self.dim, "max_input_tokens": self.front.max_tokens, "pooling": self.encoder.pooling,
                "normalized": self.normalize, "precision": self.precision, "chunking": self.chunk}

    def embed_ids(self, ids: list[list[int]]) -> list[np.ndarray]:
        """Inference thread: pooled, not yet normalised vectors of id lists the front already made (and checked),
        on TextEncoder.embed_ids: encode's padding-free, core-sharded path (bf16 on the model's bf16 twin where
        the CPU has native bf16; int8 arrives already quantized). The batcher made one batch of them."""
        precision = "bf16" if self.precision == "bf16" else "fp32"
        return list(self.encoder.embed_ids(ids, batch_size=max(1, len(ids)), precision=precision))

    def finish(self, vectors: list[np.ndarray], tokenized: Tokenized, n_inputs: int) -> np.ndarray:
        """Per-window vectors -> one (n_inputs, d) float32 row per input: windows averaged by token count, then
        L2-normalised when the model normalises (as TextEncoder.encode does)."""
        stacked = torch.from_numpy(np.stack(vectors)) if vectors else torch.zeros(0, self.dim)
        if len(tokenized.ids) != n_inputs:  # chunked: several windows per input
            weights = torch.tensor([len(seq) for seq in tokenized.ids], dtype=torch.float32)
            owner = torch.tensor(tokenized.owner)
            summed = torch.zeros(n_inputs, self.dim).index_add_(0, owner, stacked * weights[:, None])
            stacked = summed / torch.zeros(n_inputs).index_add_(0, owner, weights)[:, None]
        if self.normalize:
            stacked = F.normalize(stacked, p=2, dim=1)
        return stacked.numpy()


class ServedClassifier(ServedTextModel):
    kind = "classifier"

    def __init__(self, name: str, classifier: TextClassifier):
        super().__init__(name)
        self.classifier = classifier
        self.front = FrontTokenizer(classifier.tokenizer, classifier.max_length)
        self.labels = list(classifier.label_names)
        self.dim = classifier.model.bert.cfg.d_model
        self.normalize = False
        self.operations = {"classify": self.probabilities, "embed": self.features}

    def describe(self) -> dict[str, Any]:
        return {"labels": self.labels, "dimensions": self.dim, "max_input_tokens": self.front.max_tokens}

    def probabilities(self, ids: list[list[int]]) -> list[np.ndarray]:
        """Inference thread: (K,) probabilities per id list, as TextClassifier.predict_proba computes them."""
        logits = run_encoder(self.classifier.model, ids, self.classifier.tokenizer)
        return list(logits.softmax(-1).numpy().astype(np.float32))

    def features(self, ids: list[list[int]]) -> list[np.ndarray]:
        """Inference thread: the pooled features the head classifies, as TextClassifier.encode returns them."""
        model = self.classifier.model
        return list(run_encoder(lambda x, m: model.head.pool(model.bert(x, m), m), ids,
                                self.classifier.tokenizer).numpy())

    finish = ServedTextEncoder.finish


class ServedTagger(Served):
    kind = "tagger"

    def __init__(self, name: str, tagger: TokenTagger):
        super().__init__(name)
        self.tagger = tagger
        self.operations = {"tag": tagger.predict}

    def describe(self) -> dict[str, Any]:
        return {"tags": list(self.tagger.tag_names), "max_input_tokens": self.tagger.max_length}

    def sentences(self, inputs: Sequence[str | Sequence[str]]) -> list[list[str]]:
        """Each input: a list of words, or a string split on whitespace."""
        out = []
        for i, words in enumerate(inputs):
            words = words.split() if isinstance(words, str) else list(words)
            if not words or any(not w.strip() for w in words):
                raise APIError(422, f"input[{i}] has no words, or an empty word; send a sentence as a list of words "
                                    "or a string of space-separated words", "input", "empty_input")
            out.append(words)
        return out

    def warmup(self) -> tuple[str, list]:
        return "tag", [["warm", "up"]]


class ServedSeq2Seq(Served):
    kind = "seq2seq"

    def __init__(self, name: str, predictor: Seq2SeqPredictor):
        super().__init__(name)
        self.predictor = predictor
        self.operations = {"generate": self.generate}

    def describe(self) -> dict[str, Any]:
        return {"max_output_tokens": self.predictor.max_output_length}

    def sources(self, texts: Sequence[str], beam_size: int) -> tuple[list[tuple[str, int]], list[int]]:
        """(source, beam size) payloads and their costs (source tokens)."""
        costs = []
        for i, text in enumerate(texts):
            prepared = text.strip().lower() if self.predictor.lowercase else text.strip()
            n = len(self.predictor.source_vocab.encode(prepared))
            if n == 0:
                raise APIError(422, f"input[{i}] ({text[:40]!r}) has no token of the model's source vocabulary; send "
                                    "text like its training sources", "input", "empty_input")
            if n > MAX_SOURCE_TOKENS:
                raise APIError(413, f"input[{i}] has {n} tokens; the server takes sources of at most "
                                    f"{MAX_SOURCE_TOKENS}", "input", "context_length_exceeded")
            costs.append(n)
        return [(text, beam_size) for text in texts], costs

    def generate(self, payloads: list[tuple[str, int]]) -> list[str]:
        """Inference thread: one output per (source, beam size), requests with one beam size together."""
        out: list[str] = [""] * len(payloads)
        for beam in sorted({b for _, b in payloads}):
            rows = [i for i, (_, b) in enumerate(payloads) if b == beam]
            for i, text in zip(rows, self.predictor.predict([payloads[i][0] for i in rows], beam_size=beam),
                               strict=True):
                out[i] = text
        return out

    def warmup(self) -> tuple[str, list]:
        vocab = self.predictor.source_vocab
        token = next((t for t in vocab.decode_tokens(range(len(vocab))) if t.strip() and t.isalnum()), "a")
        return "generate", [(token, 1)]


@dataclass
class ScoreResult:
    score: float
    embedding: np.ndarray
    reconstruction: np.ndarray


class ServedAutoencoder(Served):
    kind = "autoencoder"

    def __init__(self, name: str, autoencoder: ArrayEncoder):
        super().__init__(name)
        self.autoencoder = autoencoder
        self.operations = {"score": self.score}

    def describe(self) -> dict[str, Any]:
        info = self.autoencoder.info
        return {"sample_shape": list(info.sample_shape), "dimensions": self.autoencoder.latent_dim,
                "columns": info.columns, "data": info.name}

    def samples(self, inputs: Sequence) -> list[np.ndarray]:
        """Raw samples (nested lists of numbers) -> the model's scale, one array each, checked as training data."""
        out = []
        for i, sample in enumerate(inputs):
            if isinstance(sample, Mapping) and "image" in sample:  # an image file, base64: read as in training
                sample = self._image(sample, i)
            elif isinstance(sample, Mapping):  # a table row by column name, as a CSV row is read
                sample = self._row_values(sample, i)
            try:
                array = np.asarray(sample, dtype=np.float32)
                out.append(self.autoencoder.prepare(array[None], where=f"input[{i}]")[0])  # one sample
            except InputDataError as exc:
                raise APIError(422, str(exc), "input", "invalid_sample") from exc
            except (ValueError, TypeError) as exc:  # ragged lists
                shape = list(self.autoencoder.sample_shape)
                raise APIError(422, f"input[{i}] is not a rectangular array of numbers of shape {shape} ({exc})",
                               "input", "invalid_sample") from exc
        return out

    def _image(self, item: Mapping[str, Any], i: int) -> np.ndarray:
        """{"image": base64 of an image file} -> the raw sample, as `predict --input FOLDER` reads the file."""
        data = base64_field(item, "image", i, "an image file")
        try:
            return self.autoencoder.read_image(data, f"input[{i}].image")
        except InputDataError as exc:
            raise APIError(422, str(exc), "input", "invalid_sample") from exc

    def _row_values(self, row: Mapping[str, Any], i: int) -> list[Any]:
        """A row object -> its values in the training columns' order; other keys (the label) are ignored."""
        columns = self.autoencoder.info.columns
        if not columns:
            shape = list(self.autoencoder.sample_shape)
            raise APIError(422, f"input[{i}] is an object, but this model was not trained on a table with named "
                                f"columns; send a nested list of numbers of shape {shape}", "input", "invalid_sample")
        missing = [c for c in columns if c not in row]
        if missing:
            raise APIError(422, f"input[{i}] has no column(s) {missing}; this model reads {columns}", "input",
                           "missing_column")
        return [row[c] for c in columns]

    def score(self, samples: list[np.ndarray]) -> list[ScoreResult]:
        """Inference thread: anomaly score, code and reconstruction of every (scaled) sample."""
        model = self.autoencoder.model
        x = np.stack(samples)
        scores, codes, rebuilt = anomaly_scores(model, x), batched(model.encode, x), batched(model.reconstruct, x)
        return [ScoreResult(float(s), c, r) for s, c, r in zip(scores, codes, rebuilt, strict=True)]

    def warmup(self) -> tuple[str, list]:
        return "score", [np.zeros(self.autoencoder.sample_shape, dtype=np.float32)]


class ServedRecommender(Served):
    kind = "recommender"

    def __init__(self, name: str, recommender: Recommender):
        super().__init__(name)
        self.recommender = recommender
        self.operations = {"recommend": self.recommend}

    def describe(self) -> dict[str, Any]:
        info = self.recommender.info
        return {"model_kind": self.recommender.model_kind, "users": len(info.user_ids), "items": len(info.item_ids)}

    def recommend(self, payloads: list[tuple[str | None, list[str] | None, int, bool]]) -> list:
        """Inference thread: (item, score) lists; a request's own bad input (an unknown user, say) comes back as
        its error, so it fails alone and not the batch it shared."""
        out: list = []
        for user, items, top, exclude_seen in payloads:
            try:
                out.append(self.recommender.recommend(user, top, exclude_seen) if user is not None else
                           self.recommender.recommend_history(items or [], top))
            except InputDataError as exc:
                out.append(exc)
        return out

    def warmup(self) -> tuple[str, list]:
        return "recommend", [(self.recommender.info.user_ids[0], None, 1, True)]


def serve_model(name: str, model: Any, precision: str = "fp32", chunk: bool = False) -> Served:
    """A loaded model (what `artifacts.registry.load` returns) -> its served form."""
    if isinstance(model, TextEncoder):
        return ServedTextEncoder(name, model, precision, chunk)
    if isinstance(model, TextClassifier):
        return ServedClassifier(name, model)
    if isinstance(model, TokenTagger):
        return ServedTagger(name, model)
    if isinstance(model, Seq2SeqPredictor):
        return ServedSeq2Seq(name, model)
    if isinstance(model, ArrayEncoder):
        return ServedAutoencoder(name, model)
    if isinstance(model, Recommender):
        return ServedRecommender(name, model)
    from .served_media import MEDIA_KINDS  # audio, table rows, images: requests of JSON objects

    for loaded, served in MEDIA_KINDS.items():
        if isinstance(model, loaded):
            return served(name, model)
    raise TypeError(f"no served form for {type(model).__name__}")
