"""The same fine-tune with the `transformers` Trainer and with encoderlab, side by side in one process.

minilm (all-MiniLM-L6-v2) on tweets-sentiment, the exact data of configs/finetune-tweets.yaml (seeded
1,000-example training subset, 1,000-example test subset, max 64 word pieces), the same hyperparameters
(AdamW lr 5e-5, weight decay 0.01, linear decay after 6 warmup steps, batch 16, 1 epoch, clip 1.0, seed 0,
incomplete last batch dropped). One difference is the architecture each library uses by default:
`BertForSequenceClassification` classifies BERT's pooler output (tanh(W·h_CLS)); encoderlab's head
mean-pools the last hidden states (`--pooling cls` uses h_CLS without the pooler). Test accuracy and
macro-F1 come from each side's own predictions, scored by the same metric code; wall time is reported
as a ratio. Runs alternate hf, ours (x repeats); medians.

    python benchmarks/finetune_vs_hf.py [--repeats 1] [--pooling mean]
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

from encoderlab.data.records import seeded_subset  # noqa: E402
from encoderlab.evaluation.classification import classification_report  # noqa: E402
from encoderlab.pretrained import resolve_model_path  # noqa: E402
from encoderlab.tasks.classify import ClassifyConfig, finetune_classifier, load_labelled_splits  # noqa: E402

HPARAMS = dict(lr=5e-5, weight_decay=0.01, warmup_steps=6, batch_size=16, epochs=1, seed=0, max_length=64,
               max_train_examples=1000, max_test_examples=1000, clip=1.0)


def run_hf(train, test, names) -> tuple[float, float, float]:
    """(seconds, test accuracy, test macro-F1) with transformers' Trainer."""
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
        trainer.train()
        trainer.args.dataloader_drop_last = False
        logits = trainer.predict(encode(test)).predictions
    report = classification_report(test.labels, np.asarray(logits).argmax(-1).tolist(), names)
    return time.perf_counter() - started, report.accuracy, report.macro_f1


def run_ours(pooling: str) -> tuple[float, float, float]:
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
            schedule="linear", progress="off"))
    return time.perf_counter() - started, metrics["test_accuracy"], metrics["test_macro_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    args = parser.parse_args()
    cfg = ClassifyConfig(data="tweets-sentiment", out_dir="unused")
    splits = load_labelled_splits(cfg)
    train = seeded_subset(splits.train, HPARAMS["max_train_examples"], HPARAMS["seed"])
    test = seeded_subset(splits.test, HPARAMS["max_test_examples"], HPARAMS["seed"])
    results: dict[str, list[tuple[float, float, float]]] = {"transformers Trainer": [], "encoderlab": []}
    for _ in range(args.repeats):
        results["transformers Trainer"].append(run_hf(train, test, splits.train.label_names))
        results["encoderlab"].append(run_ours(args.pooling))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeat(s), median\n")
    print("| library | test accuracy | test macro-F1 | wall s (train + test predict) |")
    print("|---|---|---|---|")
    medians = {}
    for name, runs in results.items():
        seconds, acc, f1 = (statistics.median(r[i] for r in runs) for i in range(3))
        medians[name] = seconds
        print(f"| {name} | {acc:.3f} | {f1:.3f} | {seconds:.0f} |")
    print(f"\nwall-time ratio encoderlab / transformers: "
          f"{medians['encoderlab'] / medians['transformers Trainer']:.2f}x")


if __name__ == "__main__":
    main()
