"""The skeptic's baseline for POS tagging: every word gets the tag it had most often in training (unknown
words get the most frequent tag overall). Same seeded split and the same train / test subsets as
`encoderlab finetune --config configs/finetune-pos.yaml`.

Scored twice: on every test word, and on the words a tagger with `--tokenizer`'s word pieces and
`--max-length` actually scores (the first pieces of each sentence), which is what the fine-tuned models report.

    python benchmarks/pos_baseline.py --tokenizer runs/table/pretrain-tiny-zh/final --max-train-examples 3000 \
        --max-test-examples 1000
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict

from encoderlab.data.records import seeded_subset
from encoderlab.models.heads import IGNORE_INDEX
from encoderlab.tasks.tag import TagConfig, TaggedPieces, load_tagged_splits
from encoderlab.tokenization import TextTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="peoples-daily-1998")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-examples", type=int, default=None)
    parser.add_argument("--max-test-examples", type=int, default=None)
    parser.add_argument("--tokenizer", default=None, help="Model directory whose tokenizer decides which words fit.")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    splits = load_tagged_splits(TagConfig(data=args.data, seed=args.seed, out_dir="unused", init="random"))
    train = seeded_subset(splits.train, args.max_train_examples, args.seed)
    test = seeded_subset(splits.test, args.max_test_examples, args.seed)
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, tags in zip(train.tokens, train.tags, strict=True):
        for word, tag in zip(words, tags, strict=True):
            counts[word][tag] += 1
    overall = Counter(t for tags in train.tags for t in tags).most_common(1)[0][0]
    best = {word: c.most_common(1)[0][0] for word, c in counts.items()}

    scored = None
    if args.tokenizer:
        pieces = TaggedPieces(test, TextTokenizer.from_dir(args.tokenizer), args.max_length)
        scored = [sum(1 for x in labels if x != IGNORE_INDEX) for labels in pieces.labels]  # words kept per sentence
    right = total = right_fit = total_fit = 0
    for i, (words, tags) in enumerate(zip(test.tokens, test.tags, strict=True)):
        for j, (word, tag) in enumerate(zip(words, tags, strict=True)):
            hit = best.get(word, overall) == tag
            right, total = right + hit, total + 1
            if scored is not None and j < scored[i]:
                right_fit, total_fit = right_fit + hit, total_fit + 1
    result = {"train_sentences": len(train), "test_sentences": len(test), "token_accuracy_all_words": right / total,
              "words": total}
    if scored is not None:
        result.update(token_accuracy_scored_words=right_fit / total_fit, scored_words=total_fit)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
