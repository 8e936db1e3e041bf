"""The baseline every fine-tuning table is measured against: TF-IDF (1-2-grams) + logistic regression.

Same data, same seeded split and the same train / validation / test subsets as `encoderlab finetune` (it
calls the task's own loading code with the same options). The regularisation strength C, min_df and
sublinear tf are tuned on the validation split by macro-F1; the chosen model is scored once on test.
English uses word 1-2-grams; Chinese text has no spaces, so it uses character 1-2-grams (the usual
stand-in for words without a segmenter) — `--analyzer` overrides.

    python benchmarks/tfidf_baseline.py --data tweets-sentiment --max-train-examples 1000 --max-test-examples 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from encoderlab.data.records import seeded_subset
from encoderlab.evaluation.classification import classification_report
from encoderlab.tasks.classify import ClassifyConfig, load_labelled_splits

GRID = {"C": [0.3, 1.0, 3.0, 10.0, 30.0], "min_df": [1, 2], "sublinear_tf": [True, False]}
HAN = re.compile(r"[\u4e00-\u9fff]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="tweets-sentiment")
    parser.add_argument("--split", default="0.8,0.1,0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-examples", type=int, default=None)
    parser.add_argument("--max-eval-examples", type=int, default=None)
    parser.add_argument("--max-test-examples", type=int, default=None)
    parser.add_argument("--analyzer", choices=["auto", "word", "char"], default="auto")
    parser.add_argument("--output", type=Path, default=None, help="Write the result as JSON here.")
    args = parser.parse_args()

    started = time.perf_counter()
    cfg = ClassifyConfig(data=args.data, split=args.split, seed=args.seed, out_dir="unused")
    splits = load_labelled_splits(cfg)
    train = seeded_subset(splits.train, args.max_train_examples, args.seed)
    validation = seeded_subset(splits.validation, args.max_eval_examples, args.seed)
    test = seeded_subset(splits.test, args.max_test_examples, args.seed)
    analyzer = args.analyzer
    if analyzer == "auto":
        han = sum(len(HAN.findall(t)) for t in train.texts[:200])
        analyzer = "char" if han > 0.3 * sum(len(t) for t in train.texts[:200]) else "word"

    best = None
    for C, min_df, sublinear in itertools.product(GRID["C"], GRID["min_df"], GRID["sublinear_tf"]):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), analyzer=analyzer, min_df=min_df, sublinear_tf=sublinear)
        x_train = vectorizer.fit_transform(train.texts)
        model = LogisticRegression(C=C, max_iter=2000).fit(x_train, train.labels)
        pred = model.predict(vectorizer.transform(validation.texts))
        f1 = classification_report(validation.labels, pred, train.label_names).macro_f1
        if best is None or f1 > best[0]:
            best = (f1, {"C": C, "min_df": min_df, "sublinear_tf": sublinear}, vectorizer, model)
    val_f1, params, vectorizer, model = best
    report = classification_report(test.labels, model.predict(vectorizer.transform(test.texts)), train.label_names)
    result = {"data": args.data, "analyzer": f"{analyzer} 1-2-grams", "best_params": params,
              "validation_macro_f1": val_f1, "test_accuracy": report.accuracy, "test_macro_f1": report.macro_f1,
              "train_examples": len(train), "validation_examples": len(validation), "test_examples": len(test),
              "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(result, indent=2))
    print(f"| TF-IDF ({analyzer} 1-2-grams) + logistic regression | — | {report.accuracy:.3f} | "
          f"{report.macro_f1:.3f} | {result['seconds']:.0f} s |")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
