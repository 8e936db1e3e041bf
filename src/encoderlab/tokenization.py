"""A thin layer over the `tokenizers` library: load a checkpoint's tokenizer and turn texts into padded
id/mask tensors.

`tokenizer.json` is read as is (the same file Hugging Face's fast tokenizers read, so ids are identical);
a checkpoint with only `vocab.txt` gets a BERT WordPiece tokenizer built from it with the casing that its
`tokenizer_config.json` declares. Truncation and padding are ours to set per call, not the file's.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from .errors import CheckpointError, ConfigError, InputDataError
from .files import atomic_write_bytes, atomic_write_text

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
# transformers' special-token roles -> the token texts that fill them, BERT's first, then RoBERTa's
SPECIAL_TOKEN_NAMES = {"pad_token": ("[PAD]", "<pad>"), "unk_token": ("[UNK]", "<unk>"), "cls_token": ("[CLS]", "<s>"),
                       "sep_token": ("[SEP]", "</s>"), "mask_token": ("[MASK]", "<mask>"), "bos_token": ("<s>",),
                       "eos_token": ("</s>",)}


@dataclass
class Batch:
    """Token ids, attention mask (1 = real token) and segment ids, each (B, T) int64."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor


class TextTokenizer:
    """Wraps a `tokenizers.Tokenizer`; turns texts into `Batch`es padded to the longest text in the batch."""

    def __init__(self, tokenizer: Tokenizer, pad_token: str | None = None, source: Path | None = None):
        """pad_token: the padding token's text (default: the one tokenizer.json pads with, else [PAD] or
        <pad>, whichever the vocabulary has; id 0 if none)."""
        padding = tokenizer.padding  # read before switching padding off: it names the pad token
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        names = [pad_token, padding["pad_token"] if padding else None, "[PAD]", "<pad>"]
        ids = [tokenizer.token_to_id(name) for name in names if name]
        self.pad_id = next((i for i in ids if i is not None), 0)
        self.source = source

    @classmethod
    def from_dir(cls, directory: str | Path) -> TextTokenizer:
        directory = Path(directory)
        tok_config = {}
        if (directory / "tokenizer_config.json").is_file():
            tok_config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad_token = tok_config.get("pad_token")
        if isinstance(pad_token, dict):  # older files store AddedToken dicts
            pad_token = pad_token.get("content")
        if (directory / "tokenizer.json").is_file():
            try:
                tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            except Exception as exc:  # the Rust error type is not importable; report it with the file
                raise CheckpointError(f"cannot read {str(directory / 'tokenizer.json')!r}: {exc}") from exc
        elif (directory / "vocab.txt").is_file():
            tokenizer = BertWordPieceTokenizer(
                str(directory / "vocab.txt"),
                lowercase=bool(tok_config.get("do_lower_case", True)),
                strip_accents=tok_config.get("strip_accents"),
                handle_chinese_chars=bool(tok_config.get("tokenize_chinese_chars", True)),
            )._tokenizer
        else:
            raise CheckpointError(
                f"{str(directory)!r} has no tokenizer: expected tokenizer.json or vocab.txt next to config.json"
            )
        return cls(tokenizer, pad_token=pad_token, source=directory)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode_ids(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Token ids with special tokens, truncated to `max_length` (special tokens included)."""
        self.tokenizer.enable_truncation(max_length=max_length)
        try:
            return [enc.ids for enc in self.tokenizer.encode_batch(texts)]
        finally:
            self.tokenizer.no_truncation()

    def pad(self, ids: list[list[int]]) -> Batch:
        """Right-pad a list of id sequences to the longest one."""
        T = max((len(seq) for seq in ids), default=0)
        input_ids = np.full((len(ids), T), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), T), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        input_ids_t = torch.from_numpy(input_ids)
        return Batch(input_ids_t, torch.from_numpy(mask), torch.zeros_like(input_ids_t))

    def __call__(self, texts: list[str], max_length: int) -> Batch:
        return self.pad(self.encode_ids(texts, max_length))

    def special_id(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise CheckpointError(f"the tokenizer{' in ' + repr(str(self.source)) if self.source else ''} has no "
                                  f"{token} token; masked-language modelling needs [CLS], [SEP], [MASK] and [PAD]")
        return token_id

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Token ids -> text (special tokens dropped by default)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def special_ids(self) -> list[int]:
        """Ids of every special (added) token: these are never masked and never predicted."""
        return sorted(self.tokenizer.get_added_tokens_decoder())

    def special_tokens_map(self) -> dict[str, str]:
        """transformers' names of the special tokens in this vocabulary: BERT's ([PAD], [CLS], ...) where it has
        them, else RoBERTa's (<pad>, <s>, ...)."""
        found = {}
        for role, names in SPECIAL_TOKEN_NAMES.items():
            present = [name for name in names if self.tokenizer.token_to_id(name) is not None]
            if present:
                found[role] = present[0]
        return found

    def _write_tokenizer_config(self, directory: Path, model_max_length: int | None) -> None:
        """tokenizer_config.json + special_tokens_map.json naming `PreTrainedTokenizerFast`: transformers then
        reads tokenizer.json as is, whatever config.json's model_type (a roformer directory would otherwise get
        RoFormerTokenizer, which needs rjieba and splits Chinese with jieba)."""
        specials = self.special_tokens_map()
        atomic_write_text(directory / "special_tokens_map.json", json.dumps(specials, indent=2) + "\n")
        limit = {} if model_max_length is None else {"model_max_length": model_max_length}
        atomic_write_text(directory / "tokenizer_config.json", json.dumps(
            {"tokenizer_class": "PreTrainedTokenizerFast", **limit, **specials}, indent=2) + "\n")

    def save_trained(self, directory: str | Path, model_max_length: int = 512) -> None:
        """tokenizer.json + tokenizer_config.json + special_tokens_map.json, readable by `transformers`' fast
        tokenizer (PreTrainedTokenizerFast) and by `TextTokenizer.from_dir`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / "tokenizer.json", self.tokenizer.to_str())
        self._write_tokenizer_config(directory, model_max_length)

    def save(self, directory: str | Path) -> None:
        """Copy the tokenizer files this tokenizer came from (or write tokenizer.json) into `directory`, with a
        tokenizer_config.json (written as in `save_trained` when the source had none)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        copied = False
        if self.source is not None:
            for name in TOKENIZER_FILES:
                src = self.source / name
                if src.is_file() and src.resolve() != (directory / name).resolve():
                    atomic_write_bytes(directory / name, src.read_bytes())
                    copied = copied or name in ("tokenizer.json", "vocab.txt")
        if not copied:
            atomic_write_text(directory / "tokenizer.json", self.tokenizer.to_str())
        if not (directory / "tokenizer_config.json").is_file():
            self._write_tokenizer_config(directory, model_max_length=None)


# ============================================================================ training a tokenizer
# Special tokens come first, so [PAD] is id 0 (BertConfig.pad_token_id's default) in every trained vocabulary.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# CJK ideographs (the blocks BERT's tokenizer treats as Chinese characters): each becomes its own pre-token.
HAN_PATTERN = ("[\u4E00-\u9FFF\u3400-\u4DBF\U00020000-\U0002A6DF\U0002A700-\U0002B73F\U0002B740-\U0002B81F"
               "\U0002B820-\U0002CEAF\uF900-\uFAFF\U0002F800-\U0002FA1F]")


@dataclass
class TokenizerConfig:
    """How to train a subword tokenizer on a corpus (the `tokenizer:` block of a pretraining config)."""

    kind: Literal["wordpiece", "bpe"] = "wordpiece"
    """'wordpiece' (BERT: `##` continuation pieces) or 'bpe' (byte-level BPE: lossless decode, no [UNK])."""
    vocab_size: int = 8000
    """Target vocabulary size, special tokens included (the trainer may keep a few more for the alphabet)."""
    lowercase: bool = True
    """Lower-case text before tokenising (an 'uncased' model)."""
    strip_accents: bool | None = None
    """Remove accents (é -> e); None follows `lowercase`, as BERT does."""
    chinese_chars: bool = True
    """Make every Han character its own word, as BERT-Chinese does (subwords never span characters)."""
    min_frequency: int = 2
    """A merge / subword must occur at least this often in the corpus."""
    limit_alphabet: int = 6000
    """WordPiece: at most this many distinct characters (the rarest become [UNK])."""

    def __post_init__(self) -> None:
        if self.kind not in ("wordpiece", "bpe"):
            raise ConfigError(f"tokenizer.kind={self.kind!r} is unknown; choose 'wordpiece' or 'bpe'")
        floor = len(SPECIAL_TOKENS) + (256 if self.kind == "bpe" else 1)
        if self.vocab_size < floor:
            raise ConfigError(f"tokenizer.vocab_size={self.vocab_size} is too small: the {len(SPECIAL_TOKENS)} special "
                              f"tokens {list(SPECIAL_TOKENS)}" + (" and the 256 byte symbols" if self.kind == "bpe"
                                                                 else "") +
                              f" alone need {floor}; use e.g. tokenizer.vocab_size=8000")
        if self.min_frequency < 1:
            raise ConfigError(f"tokenizer.min_frequency={self.min_frequency} must be >= 1")


def build_untrained_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    """A `tokenizers.Tokenizer` pipeline (normaliser, pre-tokeniser, decoder) around an empty model."""
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers

    strip = cfg.lowercase if cfg.strip_accents is None else cfg.strip_accents
    if cfg.kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=cfg.chinese_chars,
                                                          strip_accents=strip, lowercase=cfg.lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix="##")
    else:
        tokenizer = Tokenizer(models.BPE())  # byte-level: every byte is in the vocabulary, so no [UNK]
        steps = [normalizers.NFC()]
        if strip:
            steps = [normalizers.NFD(), normalizers.StripAccents(), normalizers.NFC()]
        if cfg.lowercase:
            steps.append(normalizers.Lowercase())
        tokenizer.normalizer = normalizers.Sequence(steps)
        splits = [pre_tokenizers.Split(Regex(HAN_PATTERN), behavior="isolated")] if cfg.chinese_chars else []
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            splits + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


# Why training goes through word counts, and registers WordPiece's continuation pieces itself:
# `tokenizers.trainers.WordPieceTrainer` creates the `##x` pieces while iterating over a hash map whose order
# is seeded per process, so their ids change from run to run, and merges of equal count are ranked by those
# ids (huggingface/tokenizers#1794). Two trainings on the same corpus gave vocabularies that differed in a few
# entries, shifting hundreds of ids after them, whatever RAYON_NUM_THREADS said. It also cuts the alphabet
# (limit_alphabet) with an unstable sort, so equally rare characters are kept or dropped at random. Here the
# words are counted, the alphabet is cut in a fixed order and every `##x` piece the words need is registered
# up front, sorted: the Rust trainer then never assigns an id in hash order.
def count_words(tokenizer: Tokenizer, texts: list[str]) -> Counter[str]:
    """How often each pre-token occurs in `texts` after `tokenizer`'s normaliser and pre-tokeniser: the word
    counts a `tokenizers` trainer learns from."""
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def keep_alphabet(words: Counter[str], limit: int) -> Counter[str]:
    """The words made only of the `limit` most frequent characters (ties broken by code point). A word that
    holds a dropped character is dropped whole: WordPiece encodes such a word as [UNK] anyway."""
    chars: Counter[str] = Counter()
    for word, count in words.items():
        for char in word:
            chars[char] += count
    if len(chars) <= limit:
        return words
    kept = {char for char, _ in sorted(chars.items(), key=lambda item: (-item[1], item[0]))[:limit]}
    return Counter({word: count for word, count in words.items() if kept.issuperset(word)})


def _train_on_counts(model, words: Counter[str], trainer) -> Tokenizer:
    """A bare `Tokenizer(model)` trained on `words`, each fed exactly `count` times through a whitespace split
    (pre-tokens never hold whitespace) and no normaliser (they are normalised already)."""
    from tokenizers import pre_tokenizers

    bare = Tokenizer(model)
    bare.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    batches = (" ".join([word] * count) for word, count in sorted(words.items()))
    bare.train_from_iterator(batches, trainer=trainer, length=len(words))
    return bare


def train_model(words: Counter[str], cfg: TokenizerConfig):
    """A WordPiece or BPE `tokenizers` model trained on word counts; its vocabulary starts with SPECIAL_TOKENS."""
    from tokenizers import models, pre_tokenizers, trainers

    if cfg.kind == "bpe":  # byte-level: ids are the sorted byte alphabet, then merges; nothing in hash order
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                      special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        return _train_on_counts(models.BPE(), words, trainer).model
    words = keep_alphabet(words, cfg.limit_alphabet)
    continuations = sorted({"##" + char for word in words for char in word[1:]})
    trainer = trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                        special_tokens=[*SPECIAL_TOKENS, *continuations],
                                        continuing_subword_prefix="##", show_progress=False)
    trained = _train_on_counts(models.WordPiece(unk_token="[UNK]"), words, trainer)
    # the pieces were special tokens only to fix their ids; in the model they are ordinary entries
    return models.WordPiece(trained.get_vocab(), unk_token="[UNK]", continuing_subword_prefix="##")


def train_tokenizer(texts, cfg: TokenizerConfig | None = None) -> TextTokenizer:
    """Train a WordPiece or byte-level BPE tokenizer on an iterable of texts.

    Deterministic: the same texts and config give the same tokenizer.json in every process, whatever
    RAYON_NUM_THREADS or TOKENIZERS_PARALLELISM say, and in any order of the texts (training reads word
    counts). Encodings get BERT's template: `[CLS] A [SEP]` (and `[CLS] A [SEP] B [SEP]` for pairs, segment
    1 for B).
    """
    from tokenizers import processors

    cfg = cfg or TokenizerConfig()
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise InputDataError("cannot train a tokenizer on an empty corpus; give it at least one non-blank text")
    tokenizer = build_untrained_tokenizer(cfg)
    tokenizer.model = train_model(count_words(tokenizer, texts), cfg)
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return TextTokenizer(tokenizer)
