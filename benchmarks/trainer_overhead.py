"""Trainer overhead: the full Trainer vs a bare hand-written loop, same model, data and optimizer, one run.

Both use the same DataLoader pipeline, AdamW, global-norm clipping and fp32 on CPU; the Trainer adds its
bookkeeping (lr schedule, item weighting, finiteness checks, JSONL log every 50 steps, a final checkpoint
and export). Runs alternate (bare, trainer, bare, ...) and the median of each is reported.

    .venv/bin/python benchmarks/trainer_overhead.py [--steps 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))
from iris_task import iris_splits  # noqa: E402  (the bundled real dataset)

from encoderlab.training import TrainConfig, Trainer  # noqa: E402
from encoderlab.training.seeding import seed_everything  # noqa: E402

BATCH, WIDTH = 64, 512


def make_model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(nn.Linear(4, WIDTH), nn.GELU(), nn.Linear(WIDTH, WIDTH), nn.GELU(),
                         nn.LayerNorm(WIDTH), nn.Linear(WIDTH, 3))


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def loss_fn(model: nn.Module, batch: tuple) -> tuple[torch.Tensor, int]:
    x, y = batch
    return F.cross_entropy(model(x), y), len(y)


def bare_loop(data: list, steps: int) -> float:
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    start = time.perf_counter()
    done = 0
    while done < steps:
        for x, y in DataLoader(data, batch_size=BATCH, shuffle=True, drop_last=True, collate_fn=collate):
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start


def trainer_loop(data: list, steps: int) -> float:
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = TrainConfig(out_dir=out_dir, max_steps=steps, batch_size=BATCH, lr=1e-3, schedule="linear",
                          clip_grad_norm=1.0, log_every=50, progress="off", device="cpu")
        trainer = Trainer(cfg, make_model(), data, loss_fn=loss_fn, collate_fn=collate)
        start = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # steadier timings on a shared 2-core machine
    train, _ = iris_splits()
    data = train * 8  # 960 rows: 15 steps of 64 per epoch
    bare_loop(data, 20), trainer_loop(data, 20)  # warm-up
    bare, trainer = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(data, args.steps))
        trainer.append(trainer_loop(data, args.steps))
    b, t = statistics.median(bare), statistics.median(trainer)
    params = sum(p.numel() for p in make_model().parameters())
    print(f"model: MLP {params / 1e3:.0f}k params, batch {BATCH}, {args.steps} steps, median of {args.repeats}")
    print("| loop | total s | ms/step |")
    print("|---|---|---|")
    print(f"| bare hand-written loop | {b:.2f} | {b / args.steps * 1e3:.2f} |")
    print(f"| Trainer.fit | {t:.2f} | {t / args.steps * 1e3:.2f} |")
    print(f"| **overhead** | | **{(t / b - 1) * 100:+.1f}%** |")


if __name__ == "__main__":
    main()
