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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.artifacts.finetuned import finetuned_dir
from encoderlab.data.records import seeded_subset
from encoderlab.tasks.classify import load_labelled_splits
from encoderlab.tasks.prune import teacher_data_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="OUT_DIRs of `encoderlab finetune` on the same data")
    parser.add_argument("--tfidf", type=Path, required=True, help="tfidf_baseline.py --output JSON (best_params)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    first = TextClassifier.from_dir(args.runs[0]).info
    # the first run's data as it was trained on: its file, columns, split, seed and subset sizes (config.yaml)
    cfg = teacher_data_config(finetuned_dir(args.runs[0]), first)
    splits = load_labelled_splits(cfg)
    train = seeded_subset(splits.train, cfg.max_train_examples, cfg.seed)
    test = seeded_subset(splits.test, cfg.max_test_examples, cfg.seed)
    gold = np.asarray(test.labels)
    params = json.loads(args.tfidf.read_text())["best_params"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=params["min_df"], sublinear_tf=params["sublinear_tf"])
    tfidf = LogisticRegression(C=params["C"], max_iter=2000).fit(vectorizer.fit_transform(train.texts), train.labels)
    tfidf_right = tfidf.predict(vectorizer.transform(test.texts)) == gold
    print(f"{len(test)} test texts, {len(train)} training texts; TF-IDF {params}: {int(tfidf_right.sum())} right "
          f"({tfidf_right.mean():.4f})")
    print("| model | reads | right | accuracy | only it right | only TF-IDF right | McNemar p |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for run in args.runs:
        classifier = TextClassifier.from_dir(run)
        if classifier.info.data != first.data or classifier.info.split != first.split:
            raise SystemExit(f"{run} was trained on {classifier.info.data} split {classifier.info.split}, not "
                             f"{first.data} split {first.split}")
        right = np.asarray(classifier.predict_proba(test.texts).argmax(-1)) == gold
        only_it, only_tfidf = int((right & ~tfidf_right).sum()), int((~right & tfidf_right).sum())
        p = binomtest(only_it, only_it + only_tfidf).pvalue if only_it + only_tfidf else 1.0
        reading = classifier.long_text
        reads = (f"windows {reading.window}/{reading.stride}, {reading.pooling}" if reading.chunked
                 else f"first {reading.window} pieces")
        print(f"| {run.name} | {reads} | {int(right.sum())} | {right.mean():.4f} | {only_it} | {only_tfidf} | "
              f"{p:.2f} |")


if __name__ == "__main__":
    main()
