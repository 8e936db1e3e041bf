"""Length-bucketed batching keeps the sampler's promises: deterministic, resumable, every sample once."""

import torch

from encoderlab.training.sampler import EpochBatchSampler


def _batches(**kwargs):
    return list(EpochBatchSampler(**{"n": 1000, "batch_size": 8, "seed": 3, "epoch": 1, **kwargs}))


def test_bucketed_batches_group_similar_lengths_and_cover_each_sample_once():
    lengths = torch.randint(5, 500, (1000,)).tolist()
    plain, bucketed = _batches(), _batches(lengths=lengths)
    assert sorted(i for b in bucketed for i in b) == sorted(i for b in plain for i in b)  # same samples

    def mean_padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches) / len(batches)

    assert mean_padding(bucketed) < 0.25 * mean_padding(plain)
    first_lengths = [max(lengths[i] for i in b) for b in bucketed[:10]]
    assert first_lengths != sorted(first_lengths, reverse=True)  # batch order is shuffled, not sorted


def test_bucketed_order_is_deterministic_resumable_and_rank_consistent():
    lengths = torch.randint(5, 500, (1000,)).tolist()
    full = _batches(lengths=lengths)
    assert full == _batches(lengths=lengths)
    assert _batches(lengths=lengths, start=40) == full[40:]  # resume at batch 40: no replay, no skip
    assert full != _batches(lengths=lengths, epoch=2)
    two_ranks = [_batches(lengths=lengths, batch_size=4, world_size=2, rank=r) for r in (0, 1)]
    assert [a + b for a, b in zip(*two_ranks, strict=True)] == full  # ranks split the same global batches
