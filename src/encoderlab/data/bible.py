"""Spanish-English verse pairs from two public-domain Bibles: `data=bible-es-en` in `encoderlab seq2seq`.

    pairs = load_bible_pairs()        # ~31,000 (Spanish verse, English verse) pairs, grouped by chapter

Sources (both public domain): the Reina-Valera 1909 (Debian package `sword-text-sparv`, SWORD module
spaRV1909eb) and the World English Bible (`sword-text-web`, engWEB2015eb). On first use the two .deb files
are fetched with `apt-get download` and unpacked with `dpkg -x` into ~/.cache/encoderlab/debian/sword/
(no system install, no root needed beyond what apt-get download needs), then read with the PyPI package
`pysword==0.2.8` (pure Python, MIT). The aligned pairs are cached as a TSV next to them, so later runs
read one file.

Reading: `clean=False` and every `<note>…</note>` (translators' footnotes, WEB) replaced by a space, then
the remaining markup (`<w lemma=…>`, `<q>`, `<div/>`) dropped and whitespace collapsed. pysword's own
`clean=True` deletes the notes without a space and glues the neighbouring words together ("God<note>…
</note>created" -> "Godcreated"). Section headings that are not part of the text (`<title>` without
canonical="true") go too; a psalm's superscription is canonical and both Bibles have it in verse 1, so it
stays. The WEB appends its glossary to the last verse of Revelation: everything from the glossary's `<div>`
on is dropped. Verses are aligned by book, chapter and verse number (the WEB's deuterocanonical books and
verses only one side has are left out, as are empty verses), and a pair whose one side is more than
`MAX_LENGTH_RATIO` times longer than the other (in characters, beyond 60) is left out: the two Bibles number
a few passages differently (the WEB follows NRSVA versification, e.g. Romans 16:25-27 also at 14:23).

Every pair carries its chapter ("Gen.1") as its group, and `split_by_source` keeps a group together:
neighbouring verses of one chapter, which share names and phrasing, never sit on both sides of a split.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import InputDataError

BIBLE_ES_EN = "bible-es-en"
PACKAGES = {"sword-text-sparv": "spaRV1909eb", "sword-text-web": "engWEB2015eb"}
"""Debian package -> the SWORD module it holds (source first, target second)."""
PYSWORD_PIN = "pysword==0.2.8"
CACHE = Path("~/.cache/encoderlab/debian/sword").expanduser()
PAIRS_FILE = "bible-es-en.tsv"
GENERIC_PATH = ("or use your own pairs: data=pairs.tsv source_column=... target_column=... "
                "(a .csv / .tsv / .jsonl file, docs/seq2seq.md)")

MAX_LENGTH_RATIO = 3.0

_GLOSSARY = re.compile(r"<div\b[^>]*type=\"glossary\".*", re.S)
_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_HEADING = re.compile(r"<title\b(?![^>]*canonical=\"true\")[^>]*>.*?</title>", re.S)
_TAG = re.compile(r"<[^>]+>")


def clean_verse(osis: str) -> str:
    """OSIS markup -> plain text: notes and headings become a space, other tags vanish, whitespace is
    collapsed; an appended glossary is cut off."""
    text = _HEADING.sub(" ", _NOTE.sub(" ", _GLOSSARY.sub("", osis)))
    return " ".join(html.unescape(_TAG.sub("", text)).split())


def similar_lengths(a: str, b: str) -> bool:
    short, long = sorted((len(a), len(b)))
    return long <= 60 or long <= MAX_LENGTH_RATIO * short


def fetch_modules(cache: Path = CACHE) -> Path:
    """The SWORD data directory (usr/share/sword) with both modules, fetched and unpacked on first use."""
    root = cache / "root" / "usr" / "share" / "sword"
    if all((root / "mods.d" / f"{module}.conf").is_file() for module in PACKAGES.values()):
        return root
    missing = [tool for tool in ("apt-get", "dpkg") if shutil.which(tool) is None]
    if missing:
        raise InputDataError(f"data={BIBLE_ES_EN} fetches the Debian packages {', '.join(PACKAGES)} with apt-get "
                             f"download + dpkg -x, but {' and '.join(missing)} is not available here; unpack the two "
                             f".deb files into {cache / 'root'} yourself (dpkg-deb -x or ar + tar), {GENERIC_PATH}")
    cache.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        if not list(cache.glob(f"{package}_*.deb")):
            done = subprocess.run(["apt-get", "download", package], cwd=cache, capture_output=True, text=True)
            if done.returncode != 0:
                raise InputDataError(f"`apt-get download {package}` failed ({done.stderr.strip()[-300:]}); run "
                                     f"`apt-get update` first (or check the network), {GENERIC_PATH}")
        deb = sorted(cache.glob(f"{package}_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(cache / "root")], check=True)
    return root


def read_module_verses(root: Path, module: str) -> dict[tuple[str, int, int], str]:
    """(OSIS book, chapter, verse) -> cleaned verse text, for every non-empty verse of a SWORD module."""
    if importlib.util.find_spec("pysword") is None:
        raise InputDataError(f"data={BIBLE_ES_EN} reads the SWORD modules with the PyPI package {PYSWORD_PIN}; "
                             f"install it with `pip install {PYSWORD_PIN}`, {GENERIC_PATH}")
    from pysword.modules import SwordModules

    modules = SwordModules(str(root))
    modules.parse_modules()
    bible = modules.get_bible_from_module(module)
    verses = {}
    for books in bible.get_structure().get_books().values():
        for book in books:
            for chapter, n_verses in enumerate(book.chapter_lengths, start=1):
                for verse in range(1, n_verses + 1):
                    text = clean_verse(bible.get(books=[book.name], chapters=[chapter], verses=[verse], clean=False))
                    if text:
                        verses[(book.osis_name, chapter, verse)] = text
    return verses


def align(source: dict[tuple[str, int, int], str],
          target: dict[tuple[str, int, int], str]) -> list[tuple[str, str, str]]:
    """(chapter "Gen.1", source verse, target verse) for every reference both sides have, in canon order,
    where the two are of similar length (`similar_lengths`)."""
    return [(f"{ref[0]}.{ref[1]}", text, target[ref]) for ref, text in source.items()
            if ref in target and similar_lengths(text, target[ref])]


def load_bible_pairs(cache: Path = CACHE):
    """The aligned Spanish -> English verse pairs, grouped by chapter (read from the cached TSV if there)."""
    from .pairs import Pairs

    tsv = cache / PAIRS_FILE
    if not tsv.is_file():
        root = fetch_modules(cache)
        spanish, english = (read_module_verses(root, module) for module in PACKAGES.values())
        rows = align(spanish, english)
        partial = tsv.with_suffix(".tmp")
        with partial.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            writer.writerow(["chapter", "spanish", "english"])
            writer.writerows(rows)
        partial.replace(tsv)
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    if not rows:
        raise InputDataError(f"{tsv} holds no pairs; delete it to rebuild it, {GENERIC_PATH}")
    return Pairs([r[1] for r in rows], [r[2] for r in rows], BIBLE_ES_EN, groups=[r[0] for r in rows])
