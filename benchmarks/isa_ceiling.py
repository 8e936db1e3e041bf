"""CPUs without AMX, measured on one with it: encode's cost per text under oneDNN ISA ceilings, against a baseline tree.

    git worktree add /tmp/today a9d5707^          # the code as it was when issue #15 was filed
    python benchmarks/isa_ceiling.py --baseline-src /tmp/today/src
    python benchmarks/isa_ceiling.py --ceilings AVX2 --precisions fp32,int8 --texts 128 --rounds 2

Issue #15 asks that machines without AMX (AVX-512 or AVX2 only) get nothing slower than before its changes. With
no such machine here, each measurement caps oneDNN's instruction set (`ONEDNN_MAX_CPU_ISA`, which both trees'
PyTorch honours, and which this tree's kernel choices follow: cpu_features.py) and, for AVX2, ATen's vector
kernels too (`ATEN_CPU_CAPABILITY=avx2`):
  DEFAULT            this CPU as it is (AMX)
  AVX512_CORE_BF16   AVX-512 with BF16 and VNNI, no AMX (a Zen 4, a Cooper Lake)
  AVX512_CORE_VNNI   AVX-512 with VNNI, no BF16 (a Cascade Lake, an Ice Lake)
  AVX2               AVX2 only (a Haswell…Skylake client, a Zen 2/3)
What the emulation cannot cap: fbgemm (the int8 kernel off AMX) picks its kernels from the CPU itself, so its
int8 rows keep AVX-512 VNNI under every ceiling; the cache sizes and clock of this CPU stay.

Every (ceiling, tree) runs in a fresh process, one thread (`shards=1`), the same texts (BBC, 16–128 tokens, as
`encoderlab bench`'s corpus); rounds interleave the trees, so a busy machine's noise falls on both alike. Reported:
texts per CPU-second of the process (median over rounds) for each tree and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CEILINGS = ("DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_VNNI", "AVX2")

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from encoderlab import TextEncoder
texts, precisions = json.load(open(sys.argv[1])), sys.argv[2].split(",")
encoder = TextEncoder.from_pretrained("minilm")
out = {}
for precision in precisions:
    model, kind = encoder, precision
    if precision == "int8":
        from encoderlab.compression.quantize import quantize_int8
        model, kind = quantize_int8(encoder, texts[:64]), "fp32"
    model.encode(texts[:32], batch_size=32, precision=kind, shards=1)  # first calls pay for lazy set-up
    started = time.process_time()
    model.encode(texts, batch_size=32, precision=kind, shards=1)
    out[precision] = len(texts) / (time.process_time() - started)
print(json.dumps(out))
"""


def run_child(src: str, ceiling: str, texts_file: str, precisions: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if ceiling != "DEFAULT":
        env["ONEDNN_MAX_CPU_ISA"] = ceiling
    if ceiling.startswith("AVX2"):
        env["ATEN_CPU_CAPABILITY"] = "avx2"
    done = subprocess.run([sys.executable, "-c", CHILD, texts_file, precisions], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run of {src} under {ceiling} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", required=True, help="the src/ directory of the tree to compare against")
    parser.add_argument("--ceilings", default=",".join(CEILINGS))
    parser.add_argument("--precisions", default="fp32,bf16,int8")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from encoderlab import TextEncoder
    from encoderlab.cpu_features import describe_cpu
    from encoderlab.evaluation.speed import corpus_workload

    texts = next(iter(corpus_workload(TextEncoder.from_pretrained("minilm"), args.texts).values()))
    trees = {"this tree": str(ROOT / "src"), "baseline": str(Path(args.baseline_src).resolve())}
    ceilings = args.ceilings.split(",")
    speeds: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(texts, handle)
    try:
        for round_ in range(args.rounds):
            for ceiling in ceilings:
                for tree, src in (trees.items() if round_ % 2 == 0 else reversed(trees.items())):
                    speeds.setdefault((ceiling, tree), []).append(run_child(src, ceiling, handle.name,
                                                                            args.precisions))
                    print(f"round {round_ + 1}, {ceiling}, {tree}: {speeds[ceiling, tree][-1]}", file=sys.stderr)
    finally:
        os.unlink(handle.name)

    print(f"CPU: {describe_cpu()}; minilm, {len(texts)} BBC texts of 16-128 tokens, batch 32, 1 thread, "
          f"median of {args.rounds} rounds; texts per CPU-second\n")
    print("| ceiling | precision | this tree | baseline | ratio |")
    print("|---|---|---:|---:|---:|")
    for ceiling in ceilings:
        for precision in args.precisions.split(","):
            now = float(np.median([r[precision] for r in speeds[ceiling, "this tree"]]))
            before = float(np.median([r[precision] for r in speeds[ceiling, "baseline"]]))
            print(f"| {ceiling} | {precision} | {now:.1f} | {before:.1f} | {now / before:.2f}x |")


if __name__ == "__main__":
    main()
