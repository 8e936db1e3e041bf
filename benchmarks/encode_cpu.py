"""Sentences/s of `TextEncoder.encode` vs `transformers` on the same weights, batches and threads.

Both sides do the full job from text to a normalised embedding: tokenise, forward, mean-pool, L2-normalise.
Measured side by side in one process, alternating, median of `--repeats` calls per side.

    .venv/bin/python benchmarks/encode_cpu.py [--repeats 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from encoderlab import TextEncoder  # noqa: E402

# Real English sentences; workloads are built by joining them until a target token length is reached.
SENTENCES = [
    "The committee approved the new budget after a long debate on Tuesday evening.",
    "Researchers found that the drug reduced symptoms in most of the patients they studied.",
    "She walked along the river, watching the boats drift slowly towards the harbour.",
    "The company reported higher profits despite rising costs for energy and raw materials.",
    "Heavy rain is expected across the north of the country over the weekend.",
    "He learned to play the violin as a child and still practises every morning.",
    "The museum will reopen next month with an exhibition of early photographs.",
    "Engineers are testing a lighter battery that could double the range of electric cars.",
    "The team scored twice in the final ten minutes to win the championship.",
    "Local farmers say the dry summer has cut their harvest by almost a third.",
]


def text_with_tokens(tokenizer, n_tokens: int, rng: random.Random) -> str:
    """A text of real sentences whose tokenisation (with [CLS]/[SEP]) has exactly `n_tokens` tokens."""
    words: list[str] = []
    while len(tokenizer.encode_ids([" ".join(words)], 100_000)[0]) < n_tokens:
        words += rng.choice(SENTENCES).split()
    while len(tokenizer.encode_ids([" ".join(words)], 100_000)[0]) > n_tokens:
        words.pop()
    return " ".join(words)


def hf_encode(hf_model, hf_tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    with torch.inference_mode():
        batch = hf_tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = hf_model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=1).numpy()


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import transformers

    transformers.logging.set_verbosity_error()
    ours = TextEncoder.from_pretrained("minilm")
    directory = str(ours.tokenizer.source)
    hf_model = transformers.AutoModel.from_pretrained(directory).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(directory)

    rng = random.Random(0)
    B = args.batch_size
    workloads = {
        f"fixed {B}x128": [text_with_tokens(ours.tokenizer, 128, rng) for _ in range(B)],
        f"variable {B}x16-128": [text_with_tokens(ours.tokenizer, rng.randint(16, 128), rng) for _ in range(B)],
    }
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {args.threads}, "
          f"batch {B}, median of {args.repeats} calls\n")
    print("| workload | encoderlab sent/s | transformers sent/s | ratio | max-abs diff |")
    print("|---|---:|---:|---:|---:|")
    for name, texts in workloads.items():
        def run_ours(texts=texts):
            return ours.encode(texts, batch_size=B, max_length=128)

        def run_hf(texts=texts):
            return hf_encode(hf_model, hf_tokenizer, texts, 128)

        diff = float(np.abs(run_ours() - run_hf()).max())
        for _ in range(3):  # warm-up both sides
            run_ours()
            run_hf()
        t_ours, t_hf = [], []
        for _ in range(args.repeats):  # alternate so drift in machine load hits both sides alike
            t_ours.append(median_time(run_ours, 1))
            t_hf.append(median_time(run_hf, 1))
        ours_rate = B / statistics.median(t_ours)
        hf_rate = B / statistics.median(t_hf)
        print(f"| {name} | {ours_rate:.1f} | {hf_rate:.1f} | {ours_rate / hf_rate:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
