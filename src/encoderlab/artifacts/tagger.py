"""A fine-tuned token tagger (`encoderlab finetune task=tag`), loaded: lists of words -> lists of tags.

    tagger = TokenTagger.from_dir("runs/pos")           # the run directory or its final/
    tagger.predict([["中国", "人民"]])                    # [["ns", "n"]]

Words are split into word pieces by the model's tokenizer; the tag of a word is the prediction at its first
piece. Words cut off by `max_length` get None. The directory format is artifacts/finetuned.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import InputDataError
from ..models.heads import EncoderWithHead
from ..nn.prepacked_linear import prepack_linears
from ..tokenization import TextTokenizer
from .finetuned import HEAD_CONFIG, HeadInfo, head_task, load_finetuned
from .registry import Kind


def encode_words(tokenizer: TextTokenizer, sentences: Sequence[Sequence[str]], max_length: int):
    """Encodings of pre-split words (each word may become several pieces), truncated to max_length."""
    tok = tokenizer.tokenizer
    tok.enable_truncation(max_length=max_length)
    try:
        return tok.encode_batch([list(words) for words in sentences], is_pretokenized=True)
    finally:
        tok.no_truncation()


def check_sentences(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Lists of words; a bare string (not split into words) or a non-string word is a clear error."""
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise InputDataError("a tagger takes a list of sentences, each a list of words: [['the', 'cat']]")
    out = []
    for i, words in enumerate(sentences):
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise InputDataError(f"sentence {i} is {type(words).__name__}, not a list of words; split it first "
                                 "(e.g. text.split())")
        if not all(isinstance(w, str) for w in words):
            raise InputDataError(f"sentence {i}: every word must be a string")
        out.append(list(words))
    return out


class TokenTagger:
    """An encoder with a token-classification head and its tokenizer: one tag of `tag_names` per word."""

    kind = "tagger"

    def __init__(self, model: EncoderWithHead, tokenizer: TextTokenizer, info: HeadInfo):
        prepack_linears(model)  # CPU fp32 inference on oneDNN-packed weights (nn/prepacked_linear.py)
        self.model, self.tokenizer, self.info = model.eval(), tokenizer, info
        self.tag_names: tuple[str, ...] = tuple(info.label_names)
        self.max_length = info.max_length

    @classmethod
    def from_dir(cls, path: str | Path) -> TokenTagger:
        model, tokenizer, info = load_finetuned(path)
        if info.task != "token-classification":
            raise InputDataError(f"{str(path)!r} is a {info.task} model (a text classifier), not a tagger")
        return cls(model, tokenizer, info)

    from_pretrained = from_dir  # the name before the saved-model contract

    @torch.no_grad()
    def predict_ids(self, sentences: Sequence[Sequence[str]], batch_size: int = 32) -> list[list[int | None]]:
        """Tag ids per word (None for words beyond max_length)."""
        sentences = check_sentences(sentences)
        encodings = encode_words(self.tokenizer, sentences, self.max_length)
        out: list[list[int | None]] = []
        for start in range(0, len(encodings), batch_size):
            chunk = encodings[start:start + batch_size]
            batch = self.tokenizer.pad([enc.ids for enc in chunk])
            best = self.model(batch.input_ids, batch.attention_mask).argmax(-1)  # (B, T)
            for row, (enc, words) in enumerate(zip(chunk, sentences[start:start + batch_size], strict=True)):
                tags: list[int | None] = [None] * len(words)
                previous = None
                for position, word in enumerate(enc.word_ids):
                    if word is not None and word != previous:
                        tags[word] = int(best[row, position])
                    previous = word
                out.append(tags)
        return out

    def predict(self, sentences: Sequence[Sequence[str]], batch_size: int = 32) -> list[list[str | None]]:
        """Tag names per word (None for words beyond max_length)."""
        return [[None if t is None else self.tag_names[t] for t in tags]
                for tags in self.predict_ids(sentences, batch_size)]


KIND = Kind(
    name="tagger",
    summary="a fine-tuned token tagger. Use `encoderlab predict --model {path} --input sentences.txt` (one sentence "
            "of space-separated words per line) or `evaluate`",
    holds=lambda d: (d / HEAD_CONFIG).is_file() and head_task(d) == "token-classification",
    load=TokenTagger.from_dir,
)
