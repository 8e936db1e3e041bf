"""The same fine-tune with the `transformers` Trainer and with encoderlab, side by side in one process.

minilm (all-MiniLM-L6-v2) on tweets-sentiment, the exact data of configs/finetune-tweets.yaml (seeded
1,000-example training subset, 1,000-example test subset, max 64 word pieces), the same hyperparameters
(AdamW lr 5e-5, weight decay 0.01, linear decay after 6 warmup steps, batch 16, 1 epoch, clip 1.0, seed 0,
incomplete last batch dropped). One difference is the architecture each library uses by default:
`BertForSequenceClassification` classifies BERT's pooler output (tanh(W·h_CLS)); encoderlab's head
mean-pools the last hidden states (`--pooling cls` uses h_CLS without the pooler). Test accuracy and
macro-F1 come from each side's own predictions, scored by the same metric code; wall time is reported
as a ratio. Runs alternate hf, ours (x repeats); medians.

Both sides run in this process with the same torch thread count (`--threads`, default 1: the machine is
shared, and one thread keeps the two sides' conditions alike). Each side's wall time covers what a user
waits for: transformers loads the model, trains and predicts the test set; encoderlab loads the data and
model, trains, saves final/, loads it back and scores the validation and test sets from it (so ours does
a little more work).

    python benchmarks/finetune_vs_hf.py [--repeats 1] [--pooling mean] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from encoderlab.artifacts.aliases import resolve_model_path  # noqa: E402
from encoderlab.data.records import seeded_subset  # noqa: E402
from encoderlab.evaluation.classification import classification_report  # noqa: E402
from encoderlab.tasks.classify import ClassifyConfig, finetune_classifier, load_labelled_splits  # noqa: E402

HPARAMS = dict(lr=5e-5, weight_decay=0.01, warmup_steps=6, batch_size=16, epochs=1, seed=0, max_length=64,
               max_train_examples=1000, max_test_examples=1000, clip=1.0)


def run_hf(train, test, names) -> tuple[float, float, float, float]:
    """(seconds, test accuracy, test macro-F1, training seconds) with transformers' Trainer."""
    import transformers
    from transformers import (
        AutoTokenizer,
        BertForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    directory = str(resolve_model_path("minilm"))
    tokenizer = AutoTokenizer.from_pretrained(directory)
    transformers.set_seed(HPARAMS["seed"])
    model = BertForSequenceClassification.from_pretrained(directory, num_labels=len(names))

    def encode(records):
        enc = tokenizer([t.strip() for t in records.texts], truncation=True, max_length=HPARAMS["max_length"])
        return [{"input_ids": ids, "attention_mask": mask, "labels": y}
                for ids, mask, y in zip(enc["input_ids"], enc["attention_mask"], records.labels, strict=True)]

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=HPARAMS["batch_size"], per_device_eval_batch_size=64,
            num_train_epochs=HPARAMS["epochs"], learning_rate=HPARAMS["lr"], weight_decay=HPARAMS["weight_decay"],
            warmup_steps=HPARAMS["warmup_steps"], lr_scheduler_type="linear", max_grad_norm=HPARAMS["clip"],
            seed=HPARAMS["seed"], dataloader_drop_last=True, save_strategy="no", report_to=[], logging_steps=20,
            use_cpu=True, disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=encode(train),
                          data_collator=DataCollatorWithPadding(tokenizer))
        train_started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - train_started
        trainer.args.dataloader_drop_last = False
        logits = trainer.predict(encode(test)).predictions
    report = classification_report(test.labels, np.asarray(logits).argmax(-1).tolist(), names)
    return time.perf_counter() - started, report.accuracy, report.macro_f1, train_seconds


def run_ours(pooling: str, threads: int) -> tuple[float, float, float, float]:
    """The same with encoderlab; training seconds are Trainer.fit (with its final checkpoint and export)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        from encoderlab.training.seeding import seed_everything

        seed_everything(HPARAMS["seed"])
        metrics = finetune_classifier(ClassifyConfig(
            data="tweets-sentiment", init="minilm", mode="full", pooling=pooling, out_dir=out,
            lr=HPARAMS["lr"], weight_decay=HPARAMS["weight_decay"], warmup_steps=HPARAMS["warmup_steps"],
            batch_size=HPARAMS["batch_size"], epochs=HPARAMS["epochs"], seed=HPARAMS["seed"],
            max_length=HPARAMS["max_length"], max_train_examples=HPARAMS["max_train_examples"],
            max_eval_examples=64, max_test_examples=HPARAMS["max_test_examples"], clip_grad_norm=HPARAMS["clip"],
            schedule="linear", threads=threads, progress="off"))
    return (time.perf_counter() - started, metrics["test_accuracy"], metrics["test_macro_f1"],
            metrics["train_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--max-train-examples", type=int, default=HPARAMS["max_train_examples"],
                        help="smaller for a smoke test only; the table uses 1000")
    parser.add_argument("--max-test-examples", type=int, default=HPARAMS["max_test_examples"])
    args = parser.parse_args()
    HPARAMS["max_train_examples"], HPARAMS["max_test_examples"] = args.max_train_examples, args.max_test_examples
    torch.set_num_threads(args.threads)
    cfg = ClassifyConfig(data="tweets-sentiment", out_dir="unused")
    splits = load_labelled_splits(cfg)
    train = seeded_subset(splits.train, HPARAMS["max_train_examples"], HPARAMS["seed"])
    test = seeded_subset(splits.test, HPARAMS["max_test_examples"], HPARAMS["seed"])
    results: dict[str, list[tuple[float, float, float, float]]] = {"transformers Trainer": [], "encoderlab": []}
    for _ in range(args.repeats):
        results["transformers Trainer"].append(run_hf(train, test, splits.train.label_names))
        results["encoderlab"].append(run_ours(args.pooling, args.threads))
        for name, runs in results.items():
            seconds, acc, f1, train_seconds = runs[-1]
            print(f"{name}: {seconds:.0f} s ({train_seconds:.0f} s training), test accuracy {acc:.3f}, "
                  f"macro-F1 {f1:.3f}", flush=True)
    import transformers

    print(f"\ntorch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} "
          f"thread(s), train {len(train)}, test {len(test)}, {args.repeats} repeat(s), median; encoderlab "
          f"pooling={args.pooling}, transformers BertForSequenceClassification (pooler over [CLS])\n")
    print("| library | test accuracy | test macro-F1 | wall s (whole fine-tune) | training loop s |")
    print("|---|---|---|---|---|")
    medians = {}
    for name, runs in results.items():
        seconds, acc, f1, train_seconds = (statistics.median(r[i] for r in runs) for i in range(4))
        medians[name] = (seconds, train_seconds)
        print(f"| {name} | {acc:.3f} | {f1:.3f} | {seconds:.0f} | {train_seconds:.0f} |")
    ours, theirs = medians["encoderlab"], medians["transformers Trainer"]
    print(f"\nwall-time ratio encoderlab / transformers: {ours[0] / theirs[0]:.2f}x whole fine-tune, "
          f"{ours[1] / theirs[1]:.2f}x training loop (below 1: encoderlab is faster)")


if __name__ == "__main__":
    main()
