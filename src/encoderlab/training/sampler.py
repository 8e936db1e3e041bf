"""Deterministic, resumable, rank-sharded batching.

The order of an epoch is a permutation drawn from a generator seeded by (seed, epoch) alone, so the data
position of a run is just (epoch, micro-batch index): resuming rebuilds the same permutation and starts at
that index, with no replayed and no skipped samples. Each global micro-batch is `batch_size * world_size`
consecutive permutation entries and rank r takes the r-th slice of it; a 1-process run with batch_size
2b therefore sees exactly the samples that a 2-process run with batch_size b sees, step for step.
Incomplete global batches at the end of an epoch are dropped, so every rank does the same number of steps.

With per-sample `lengths`, batches are length-bucketed: the epoch's permutation is cut into windows of
`BUCKET_WINDOW` global batches, each window is sorted by length and cut into global batches, and the order
of all global batches is shuffled. Batches then hold samples of similar length (little padding) while the
epoch stays a deterministic function of (seed, epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from ..errors import ConfigError

BUCKET_WINDOW = 50  # global batches per sorting window: wide enough to group lengths, narrow enough to mix


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of `epoch`: a function of (seed, epoch) only, independent of any global RNG."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class EpochBatchSampler(Sampler[list[int]]):
    """This rank's micro-batches of one epoch, starting at micro-batch `start` (for exact resume)."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, *, start: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 lengths: Sequence[int] | None = None) -> None:
        self.global_batch = batch_size * world_size
        if n < self.global_batch:
            raise ConfigError(f"the dataset has {n} samples, fewer than one global batch of {self.global_batch} "
                              f"(batch_size={batch_size} x {world_size} processes); lower batch_size")
        self.n, self.batch_size, self.start = n, batch_size, start
        self.seed, self.epoch, self.rank, self.shuffle = seed, epoch, rank, shuffle
        if lengths is not None and len(lengths) != n:
            raise ConfigError(f"lengths has {len(lengths)} entries for a dataset of {n} samples; give one per sample")
        self.lengths = None if lengths is None else torch.as_tensor(lengths)

    def __len__(self) -> int:
        return self.n // self.global_batch - self.start

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        if self.lengths is not None:
            order = self._bucketed(order)
        for b in range(self.start, self.n // self.global_batch):
            first = b * self.global_batch + self.rank * self.batch_size
            yield order[first:first + self.batch_size].tolist()


    def _bucketed(self, order: torch.Tensor) -> torch.Tensor:
        """`order` regrouped so each global batch holds samples of similar length, batches in shuffled order."""
        usable = order[: self.n // self.global_batch * self.global_batch]  # whole global batches only
        window = self.global_batch * BUCKET_WINDOW
        chunks = []
        for lo in range(0, len(usable), window):
            part = usable[lo:lo + window]
            chunks.append(part[torch.argsort(self.lengths[part], descending=True, stable=True)])
        batches = torch.cat(chunks).view(-1, self.global_batch)  # (n_batches, global_batch)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_919)
        return batches[torch.randperm(len(batches), generator=generator)].reshape(-1)


def eval_batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 equal_counts: bool = False) -> list[tuple[list[int], bool]]:
    """In-order batches of this rank's share (indices rank, rank + W, ...), each with a `counted` flag.

    Every sample is counted exactly once over all ranks. With `equal_counts`, a rank with fewer batches
    repeats its last one, uncounted, so that collective forwards (FSDP) run the same number of times.
    """
    mine = list(range(rank, n, world_size))
    batches = [(mine[i:i + batch_size], True) for i in range(0, len(mine), batch_size)]
    if equal_counts:
        most = -(-len(range(0, n, world_size)) // batch_size)  # rank 0 holds the largest share
        batches += [(batches[-1][0], False)] * (most - len(batches))
    return batches
