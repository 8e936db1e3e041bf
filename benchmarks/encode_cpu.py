"""Sentences/s of encoderlab's `TextEncoder.encode` vs `transformers` (and ONNX Runtime, int8, bf16) on the
same all-MiniLM-L6-v2 weights, the same batches of real text and the same threads, side by side in one run.

Every engine does the whole job from text to a normalised sentence embedding; the table also gives each
engine's max-abs difference and worst cosine to encoderlab fp32. Same code as `encoderlab bench`.

    .venv/bin/python benchmarks/encode_cpu.py [--repeats 20] [--threads 2] [--engines fp32,transformers]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from encoderlab.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
