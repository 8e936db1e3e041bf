"""encoderlab's int8 (SmoothQuant + PyTorch's fbgemm int8 kernels) against torchao's int8 dynamic quantization,
the announced successor of PyTorch's quantized tensors, on the same minilm weights and real text.

torchao is not a dependency; install it beside the venv to run this:

    .venv/bin/pip install --no-deps --target /tmp/torchao_site torchao==0.18.0
    PYTHONPATH=/tmp/torchao_site .venv/bin/python benchmarks/int8_vs_torchao.py [--repeats 7] [--threads 1]

Prints, per engine: ms per variable-length batch (median, calls interleaved), and the mean / worst cosine of
its embeddings to fp32 on 200 held-out BBC texts. torchao runs eagerly and, separately, with each quantized
Linear under torch.compile (what torchao's CPU int8 path needs to reach integer matmuls).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from encoderlab.artifacts.text_encoder import TextEncoder  # noqa: E402
from encoderlab.compression.quantize import quantize_int8  # noqa: E402
from encoderlab.data.catalog import load_dataset  # noqa: E402
from encoderlab.evaluation.speed import real_text_workloads  # noqa: E402
from encoderlab.nn.prepacked_linear import PrepackedLinear  # noqa: E402


def torchao_encoder(compile_linears: bool) -> TextEncoder:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    encoder = TextEncoder.from_pretrained("minilm")
    for module in encoder.bert.modules():  # torchao swaps the weights of plain nn.Linear layers
        if type(module) is PrepackedLinear:
            module.__class__ = nn.Linear
    quantize_(encoder.bert, Int8DynamicActivationInt8WeightConfig())
    if compile_linears:
        for parent in list(encoder.bert.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, torch.compile(child, dynamic=True))
    return encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fp32 = TextEncoder.from_pretrained("minilm")
    batch = real_text_workloads(fp32)["variable 32x16-128"]
    news = load_dataset("bbc-news", seed=0)
    calibration, held_out = news.train.texts[:256], news.test.texts[:200]
    engines = {"fp32": fp32, "encoderlab int8": quantize_int8(fp32, calibration),
               "torchao int8, eager": torchao_encoder(False)}
    start = time.perf_counter()
    engines["torchao int8, compiled"] = compiled = torchao_encoder(True)
    compiled.encode(batch, shards=1)
    print(f"torchao compile + first call: {time.perf_counter() - start:.1f} s")
    reference = fp32.encode(held_out, shards=1)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for call in range(args.repeats + 2):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine.encode(batch, shards=1)
            if call >= 2:
                times[name].append(time.perf_counter() - start)
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), variable 32x16-128 batch, "
          f"median of {args.repeats}\n")
    print("| engine | ms / batch | vs fp32 | mean cosine to fp32 | worst |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(times["fp32"])
    for name, engine in engines.items():
        cosine = (engine.encode(held_out, shards=1) * reference).sum(1)
        ms = statistics.median(times[name])
        print(f"| {name} | {1000 * ms:.0f} | {base / ms:.2f}x | {cosine.mean():.4f} | {cosine.min():.4f} |")


if __name__ == "__main__":
    main()
