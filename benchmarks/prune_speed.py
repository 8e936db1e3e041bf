"""Inference speed of pruned classifiers against their unpruned original, side by side in one process.

    python benchmarks/prune_speed.py runs/table/tweets-minilm-full runs/prune/heads-25 runs/prune/ffn-50 ...
    python benchmarks/prune_speed.py TEACHER PRUNED... --threads 1 --repeats 20 --batch-size 32

The first model is the reference. Every model encodes the same real variable-length batches (BBC news cut to
16-128 tokens, `evaluation.speed.real_text_workloads`, and a batch of tweets-sentiment test texts through
the classifier); calls alternate between models (`evaluation.speed.measure`), so load drifts on a shared
machine hit every model alike. Prints a Markdown table with sentences/s, p50 ms and the ratio to the first.
"""

from __future__ import annotations

import argparse

import torch

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.artifacts.text_encoder import TextEncoder
from encoderlab.data.catalog import load_dataset
from encoderlab.evaluation.speed import measure, real_text_workloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="fine-tuned classifier directories; the first is the reference")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    classifiers = {name: TextClassifier.from_pretrained(name) for name in args.models}
    encoders = {name: TextEncoder(c.model.bert, c.tokenizer).eval() for name, c in classifiers.items()}
    reference = encoders[args.models[0]]
    workloads = {k: v for k, v in real_text_workloads(reference, args.batch_size).items() if k.startswith("variable")}
    results = measure({n: (lambda t, e=e: e.encode(t, batch_size=len(t), max_length=512)) for n, e in encoders.items()},
                      workloads, repeats=args.repeats)
    tweets = load_dataset("tweets-sentiment").test.texts[:args.batch_size]
    results += measure({n: (lambda t, c=c: c.predict_proba(t, batch_size=len(t))) for n, c in classifiers.items()},
                       {f"classifier, {len(tweets)} tweets": tweets}, repeats=args.repeats)

    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} calls, alternating models\n")
    print("| workload | model | parameters (M) | sentences/s | vs first | p50 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        first = next(b for b in results if b.workload == r.workload and b.engine == args.models[0])
        params = sum(p.numel() for p in classifiers[r.engine].model.parameters()) / 1e6
        print(f"| {r.workload} | `{r.engine}` | {params:.2f} | {r.sentences_per_s:.1f} | "
              f"{r.sentences_per_s / first.sentences_per_s:.2f}x | {r.p50_ms:.0f} |")


if __name__ == "__main__":
    main()
