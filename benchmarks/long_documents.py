"""Long documents, paired: saved classifiers and tuned TF-IDF on the same test articles, article by article.

Accuracy differences of a few articles in a thousand are noise unless the two models disagree on few
articles. This scores each saved run on the test split it was trained against (read as it was trained:
truncated or in windows, from head.json) and TF-IDF + logistic regression with the parameters
`tfidf_baseline.py` chose on validation, then counts the articles one gets right and the other wrong and
gives the exact McNemar (binomial) p-value of each encoder against TF-IDF.

    python benchmarks/tfidf_baseline.py --data bbc-news --split 0.48,0.1,0.42 --max-train-examples 1000 \\
        --output runs/long/tfidf.json
    python benchmarks/long_documents.py --tfidf runs/long/tfidf.json runs/long/frozen-truncate \
        runs/long/frozen-chunk-max

Any labelled data works the same way (a user's CSV too): the runs' data, columns, split, seed and training
subset come from the first run's config.yaml, and every run must have been trained on the same data and split.
`--max-test-examples 0` scores the whole test split whatever the run was trained with (a run that skipped its own
test scoring with max_test_examples=1 is scored here, once). `--outcomes FILE.json` keeps, text by text, which
model got it right.

Several splits of the same data (seeds 0, 1, 2 ...), pooled: `--pool a.json b.json c.json` reads `--outcomes`
files and tests the first run of each against its TF-IDF over all of them at once. The splits' test sets overlap
(each is drawn from the same texts), so their discordant counts cannot simply be added: a text tested twice
would count as two independent trials. Instead each distinct text is one unit, scored d = (times the encoder
alone was right) - (times TF-IDF alone was right) over the splits that tested it, and the exact two-sided
sign-flip test on the d's (under the null each text's d is as likely negative as positive) gives the p-value.
With disjoint test sets it is exactly the McNemar test of the added counts.

    python benchmarks/long_documents.py --tfidf runs/long/imdb-tfidf.json runs/long/imdb-full-chunk-max \
        --outcomes runs/long/imdb-s0.json                                         # one per split, then:
    python benchmarks/long_documents.py --pool runs/long/imdb-s0.json runs/long/imdb-s1.json runs/long/imdb-s2.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.artifacts.finetuned import finetuned_dir
from encoderlab.data.records import seeded_subset
from encoderlab.tasks.classify import load_labelled_splits
from encoderlab.tasks.prune import teacher_data_config


def text_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def mcnemar_p(only_it: int, only_tfidf: int) -> float:
    """Exact two-sided McNemar (binomial) p-value of the discordant counts."""
    return binomtest(only_it, only_it + only_tfidf).pvalue if only_it + only_tfidf else 1.0


def sign_flip_p(differences: list[int]) -> float:
    """Exact two-sided p of sum(d) under independent random signs of the integer d's: P(|S| >= |observed|).
    With every d in {-1, +1} it is the exact McNemar (sign) test."""
    d = [abs(int(x)) for x in differences if x]
    observed = abs(sum(int(x) for x in differences))
    total = sum(d)
    counts = np.zeros(2 * total + 1)  # counts[s + total]: ways to reach the sum s
    counts[total] = 1.0
    for x in d:
        counts = np.roll(counts, x) + np.roll(counts, -x)  # no wrap-around: |s| never exceeds total
    probs = counts / counts.sum()
    sums = np.arange(-total, total + 1)
    return float(min(1.0, probs[np.abs(sums) >= observed].sum()))


def pooled(outcomes: list[dict]) -> dict:
    """The first run of each split's outcomes against that split's TF-IDF, over every split: the added counts
    and the per-text sign-flip test (a text tested in several splits is one unit)."""
    per_text: dict[str, int] = defaultdict(int)
    only_it = only_tfidf = right = tfidf_right = tested = 0
    for split in outcomes:
        model = np.asarray(split["runs"][0]["right"], dtype=bool)
        tfidf = np.asarray(split["tfidf_right"], dtype=bool)
        for text, a, b in zip(split["texts"], model, tfidf, strict=True):
            per_text[text] += int(a) - int(b)
        only_it += int((model & ~tfidf).sum())
        only_tfidf += int((~model & tfidf).sum())
        right, tfidf_right, tested = right + int(model.sum()), tfidf_right + int(tfidf.sum()), tested + len(model)
    return {"splits": len(outcomes), "tested": tested, "distinct_texts": len(per_text), "right": right,
            "tfidf_right": tfidf_right, "only_it": only_it, "only_tfidf": only_tfidf,
            "added_counts_p": mcnemar_p(only_it, only_tfidf),
            "texts_ahead": sum(d > 0 for d in per_text.values()), "texts_behind": sum(d < 0 for d in per_text.values()),
            "per_text_p": sign_flip_p(list(per_text.values()))}


def print_pool(paths: list[Path]) -> None:
    outcomes = [json.loads(path.read_text()) for path in paths]
    print("| split (seed) | model | right | TF-IDF right | of | only it right | only TF-IDF right | McNemar p |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for split in outcomes:
        run = split["runs"][0]
        model, tfidf = np.asarray(run["right"], dtype=bool), np.asarray(split["tfidf_right"], dtype=bool)
        a, b = int((model & ~tfidf).sum()), int((~model & tfidf).sum())
        print(f"| {split['seed']} | {run['name']} | {int(model.sum())} | {int(tfidf.sum())} | {len(model)} | {a} | {b} "
              f"| {mcnemar_p(a, b):.3f} |")
    p = pooled(outcomes)
    print(f"\npooled over {p['splits']} splits: {p['tested']} test scorings of {p['distinct_texts']} distinct texts; "
          f"encoder {p['right']} right, TF-IDF {p['tfidf_right']}; only the encoder right {p['only_it']}, only "
          f"TF-IDF {p['only_tfidf']} (added as if independent: p = {p['added_counts_p']:.4f}).\nPer distinct text "
          f"(sign-flip over texts, valid with overlapping test sets): {p['texts_ahead']} texts favour the encoder, "
          f"{p['texts_behind']} TF-IDF, exact p = {p['per_text_p']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="OUT_DIRs of `encoderlab finetune` on the same data")
    parser.add_argument("--tfidf", type=Path, help="tfidf_baseline.py --output JSON (best_params)")
    parser.add_argument("--max-test-examples", type=int, default=None,
                        help="score this many test texts (0: all); default: as the first run was trained")
    parser.add_argument("--outcomes", type=Path, help="write which texts each model got right to this JSON")
    parser.add_argument("--pool", nargs="+", type=Path, help="--outcomes files of several splits: pooled test")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.pool:
        print_pool(args.pool)
        return
    if not args.runs or args.tfidf is None:
        parser.error("give the runs to score and --tfidf (or --pool FILES)")
    torch.set_num_threads(args.threads)

    first = TextClassifier.from_dir(args.runs[0]).info
    # the first run's data as it was trained on: its file, columns, split, seed and subset sizes (config.yaml)
    cfg = teacher_data_config(finetuned_dir(args.runs[0]), first)
    splits = load_labelled_splits(cfg)
    train = seeded_subset(splits.train, cfg.max_train_examples, cfg.seed)
    n_test = cfg.max_test_examples if args.max_test_examples is None else (args.max_test_examples or None)
    test = seeded_subset(splits.test, n_test, cfg.seed)
    gold = np.asarray(test.labels)
    params = json.loads(args.tfidf.read_text())["best_params"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=params["min_df"], sublinear_tf=params["sublinear_tf"])
    tfidf = LogisticRegression(C=params["C"], max_iter=2000).fit(vectorizer.fit_transform(train.texts), train.labels)
    tfidf_pred = tfidf.predict(vectorizer.transform(test.texts))
    tfidf_right = tfidf_pred == gold
    print(f"{len(test)} test texts, {len(train)} training texts; TF-IDF {params}: {int(tfidf_right.sum())} right "
          f"({tfidf_right.mean():.4f}, macro-F1 {f1_score(gold, tfidf_pred, average='macro'):.4f})")
    print("| model | reads | right | accuracy | macro-F1 | only it right | only TF-IDF right | McNemar p |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    record = {"data": cfg.data, "split": cfg.split, "seed": cfg.seed, "texts": [text_id(t) for t in test.texts],
              "gold": gold.tolist(), "tfidf_params": params, "tfidf_right": tfidf_right.tolist(), "runs": []}
    for run in args.runs:
        classifier = TextClassifier.from_dir(run)
        if classifier.info.data != first.data or classifier.info.split != first.split:
            raise SystemExit(f"{run} was trained on {classifier.info.data} split {classifier.info.split}, not "
                             f"{first.data} split {first.split}")
        predicted = np.asarray(classifier.predict_proba(test.texts).argmax(-1))
        right = predicted == gold
        only_it, only_tfidf = int((right & ~tfidf_right).sum()), int((~right & tfidf_right).sum())
        reading = classifier.long_text
        reads = (f"windows {reading.window}/{reading.stride}, {reading.pooling}" if reading.chunked
                 else f"first {reading.window} pieces")
        print(f"| {run.name} | {reads} | {int(right.sum())} | {right.mean():.4f} | "
              f"{f1_score(gold, predicted, average='macro'):.4f} | {only_it} | {only_tfidf} | "
              f"{mcnemar_p(only_it, only_tfidf):.3f} |")
        record["runs"].append({"name": run.name, "right": right.tolist()})
    if args.outcomes:
        args.outcomes.parent.mkdir(parents=True, exist_ok=True)
        args.outcomes.write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
