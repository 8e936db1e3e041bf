"""A fine-tuned classifier in fp32 and in both int8 paths, side by side: accuracy, macro-F1, agreement with fp32,
and predictions per CPU-second (one thread, runs alternating so a busy machine disturbs each alike).

    encoderlab finetune --config configs/finetune-tweets.yaml init=minilm mode=full out_dir=runs/tweets-full
    python benchmarks/int8_classifier.py runs/tweets-full --data tweets-sentiment --max-examples 1000

int8 "fbgemm": every encoder Linear in PyTorch's quantized kernels (SmoothQuant), fp32 around them (any x86/ARM CPU).
int8 "onednn": the feed-forward networks in oneDNN int8 (AMX), the rest of the encoder in bf16; skipped where the
CPU or the PyTorch build lacks it. Both calibrate on 256 of the model's training texts; the head stays fp32.
Scored on the run's own held-out test rows (the same seeded subset `encoderlab evaluate --max-examples` takes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="A fine-tuned classifier's run or final/ directory.")
    parser.add_argument("--data", default=None, help="Default: the data it was trained on (its test split).")
    parser.add_argument("--max-examples", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from sklearn.metrics import f1_score

    from encoderlab.artifacts.classifier import TextClassifier
    from encoderlab.compression.quantize import quantize_int8
    from encoderlab.cpu_features import describe_cpu
    from encoderlab.nn.int8_feedforward import onednn_int8_available
    from encoderlab.tasks.classify import calibration_texts, evaluation_records, seeded_subset

    torch.set_num_threads(1)
    fp32 = TextClassifier.from_dir(args.run)
    records, split = evaluation_records(fp32, args.data or fp32.info.data, "auto")
    records = seeded_subset(records, args.max_examples, fp32.info.seed)
    texts, labels = list(records.texts), np.asarray(records.labels)
    calibration = calibration_texts(fp32)
    models = {"fp32": fp32, "int8 fbgemm": quantize_int8(fp32, calibration, kernel="fbgemm")}
    if onednn_int8_available():
        models["int8 onednn"] = quantize_int8(fp32, calibration, kernel="onednn")
    seconds: dict[str, list[float]] = {name: [] for name in models}
    predictions: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.process_time()
            predictions[name] = model.predict_proba(texts, batch_size=32).argmax(-1)
            seconds[name].append(time.process_time() - started)
    print(f"# {describe_cpu()}; one thread; {len(texts)} {split} texts of {args.run}\n")
    print("| model | accuracy | macro-F1 | agreement with fp32 | texts per CPU-s |\n|---|---:|---:|---:|---:|")
    for name in models:
        y = predictions[name]
        print(f"| {name} | {np.mean(y == labels):.3f} | {f1_score(labels, y, average='macro'):.3f} | "
              f"{np.mean(y == predictions['fp32']):.3f} | {len(texts) / np.median(seconds[name]):.0f} |")


if __name__ == "__main__":
    main()
