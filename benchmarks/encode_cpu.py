"""Sentences/s of encoderlab's `TextEncoder.encode` vs `transformers` (and ONNX Runtime, int8, bf16) on the
same all-MiniLM-L6-v2 weights, the same batches of real text and the same threads, side by side in one run.

Every engine does the whole job from text to a normalised sentence embedding; the table also gives each
engine's max-abs difference and worst cosine to encoderlab fp32. Same code as `encoderlab bench`.

    .venv/bin/python benchmarks/encode_cpu.py [--repeats 20] [--threads 2] [--engines fp32,transformers]

`--mechanisms [repeats]` instead measures, at one thread, what encode's two CPU fast paths rest on: the
activation fused into the feed-forward's up-projection against the separate pass, and a batch against its
dealt shards run one after another (their sum is the cost of splitting; the larger one bounds the time
when they run side by side on their own cores).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from encoderlab.cli import main  # noqa: E402


def mechanisms(repeats: int = 15, shards: int = 2) -> None:
    import numpy as np
    import torch

    from encoderlab.artifacts.text_encoder import TextEncoder
    from encoderlab.evaluation.speed import real_text_workloads
    from encoderlab.nn.prepacked_linear import PrepackedLinear
    from encoderlab.sharding import deal_rows

    torch.set_num_threads(1)
    encoder = TextEncoder.from_pretrained("minilm")
    fuses = PrepackedLinear.fuses
    print(f"torch {torch.__version__}, 1 thread, median of {repeats}, calls interleaved")
    for workload, texts in real_text_workloads(encoder).items():
        ids = encoder.tokenizer.encode_ids([t.strip() for t in texts], 512)
        order = np.argsort([-len(seq) for seq in ids], kind="stable")  # as encode sorts
        cases = {"whole": [texts], "unfused": [texts],
                 "dealt": [[texts[i] for i in part] for part in deal_rows(order, shards)]}
        times: dict[str, list[list[float]]] = {name: [[] for _ in parts] for name, parts in cases.items()}
        for call in range(repeats + 2):  # the first 2 rounds warm up
            for name, parts in cases.items():
                PrepackedLinear.fuses = (lambda self, x, activation: False) if name == "unfused" else fuses
                for j, part in enumerate(parts):
                    start = time.perf_counter()
                    encoder.encode(part, batch_size=len(part), max_length=512, shards=1)
                    if call >= 2:
                        times[name][j].append(time.perf_counter() - start)
        PrepackedLinear.fuses = fuses
        ms = {name: [1000 * statistics.median(t) for t in per_part] for name, per_part in times.items()}
        whole, dealt = ms["whole"][0], ms["dealt"]
        print(f"{workload}: whole batch {whole:.0f} ms, activation unfused {ms['unfused'][0]:.0f} ms "
              f"(fused saves {100 * (1 - whole / ms['unfused'][0]):.1f}%); {shards} dealt shards "
              f"{' + '.join(f'{t:.0f}' for t in dealt)} ms: sum {sum(dealt) / whole:.3f}x, "
              f"largest {max(dealt) / whole:.3f}x of the whole batch")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mechanisms"]:
        mechanisms(*(int(a) for a in sys.argv[2:3]))
    else:
        main(["bench", *sys.argv[1:]])
