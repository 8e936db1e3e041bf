"""Memory and time per epoch of a Mult-DAE as the catalogue grows: sparse input (EmbeddingBag, ours) against
the same model fed densified rows (the reference path), on synthetic catalogues of 1k to 1M items.

    python benchmarks/recsys_sparse_scaling.py                       # the table in docs/recommendation.md
    python benchmarks/recsys_sparse_scaling.py --items 1000 100000   # chosen sizes

Each (catalogue size, input path) runs in a fresh process (peak RSS is per process), with 1 thread: an epoch
is 1,024 synthetic users with 50 items each (item popularity Zipf-like), batch 64, one Adam step per batch,
hidden 32, code 16. Reported: seconds per epoch (training steps only, after one warm-up step) and the peak
resident memory of the process. Both paths compute the same loss (tests/models/test_recommender.py); the
output softmax over the catalogue is dense in both, which is the Mult-* models' own O(items) cost.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

USERS, ITEMS_PER_USER, BATCH, HIDDEN, LATENT = 1024, 50, 64, 32, 16


def one(n_items: int, path: str) -> dict:
    import numpy as np
    import torch

    from encoderlab.models.recommender import MultVAE, RecommenderConfig, multinomial_loss, multinomial_loss_dense
    from encoderlab.nn.sparse_linear import to_dense

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    rows = [np.unique(rng.choice(n_items, ITEMS_PER_USER, p=popularity)) for _ in range(USERS)]
    model = MultVAE(RecommenderConfig(kind="mult-dae", n_items=n_items, hidden_dim=HIDDEN, latent_dim=LATENT))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def batch(start: int) -> dict:
        part = rows[start:start + BATCH]
        lengths = torch.tensor([len(r) for r in part])
        return {"indices": torch.from_numpy(np.concatenate(part)), "offsets": torch.cumsum(lengths, 0) - lengths,
                "values": torch.ones(int(lengths.sum()))}

    def step(b: dict) -> None:
        if path == "sparse":
            loss = multinomial_loss(model(**b), **b, beta=0.0).mean()
        else:
            x = to_dense(**b, n_cols=n_items)  # (B, I): what a dense pipeline builds per batch
            loss = multinomial_loss_dense(model.forward_dense(x), x, beta=0.0).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(batch(0))  # warm-up
    start = time.perf_counter()
    for s in range(0, USERS, BATCH):
        step(batch(s))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params_mb = sum(p.numel() for p in model.parameters()) * 4 / 2**20
    return {"items": n_items, "path": path, "seconds_per_epoch": round(seconds, 3), "peak_rss_mb": round(peak_mb),
            "parameters_mb": round(params_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="*", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--one", nargs=2, metavar=("ITEMS", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return
    print("| items | input | s / epoch | peak RSS (MB) | parameters (MB) |\n|---:|---|---:|---:|---:|")
    for n in args.items:
        for path in ("sparse", "dense"):
            out = subprocess.run([sys.executable, __file__, "--one", str(n), path], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {n:,} | {path} | failed: {out.stderr.strip().splitlines()[-1]} | | |")
                continue
            r = json.loads(out.stdout)
            print(f"| {n:,} | {path} | {r['seconds_per_epoch']} | {r['peak_rss_mb']:,} | {r['parameters_mb']} |",
                  flush=True)


if __name__ == "__main__":
    main()
