"""Packed attention in length groups computes exactly per-sequence attention, for any mask layout."""

import itertools

import pytest
import torch

from encoderlab.nn import Packing, padding_mask_to_bias, plan_length_groups, reference_attention
from encoderlab.nn.packing import tile_length


def _cost(groups, lengths, overhead):
    return sum(len(g) * tile_length(max(lengths[i] for i in g)) ** 2 + overhead for g in groups)


@pytest.mark.parametrize("overhead", [0, 300, 2048, 10**9])
def test_plan_is_an_optimal_partition(overhead):
    lengths = [5, 31, 0, 7, 30, 12, 29, 6, 60, 33, 17]
    groups = plan_length_groups(lengths, overhead)
    assert sorted(i for g in groups for i in g) == [i for i, n in enumerate(lengths) if n > 0]
    # brute force: every split of the length-sorted sequences into consecutive runs
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lambda i: lengths[i])
    best = min(_cost([order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)), strict=True)], lengths, overhead)
               for r in range(len(order)) for cuts in itertools.combinations(range(1, len(order)), r))
    assert _cost(groups, lengths, overhead) == best
    if overhead == 10**9:
        assert len(groups) == 1  # calls so expensive that one padded call wins
    if overhead == 0:
        # free calls: no padding beyond the tile's own block
        assert all(len({tile_length(lengths[i]) for i in g}) == 1 for g in groups)


def _masks():
    right = torch.tensor([[1] * 9 + [0] * 3, [1] * 12, [1] * 2 + [0] * 10, [1] * 5 + [0] * 7, [0] * 12])
    left = right.flip(1)
    holes = (torch.rand(5, 12, generator=torch.Generator().manual_seed(0)) > 0.4).long()
    return {"right-padded": right, "left-padded": left, "holes": holes}


@pytest.mark.parametrize("layout", ["right-padded", "left-padded", "holes"])
@pytest.mark.parametrize("overhead", [0, 40, 10**9])
def test_grouped_attention_equals_padded_attention(layout, overhead):
    mask = _masks()[layout]
    torch.manual_seed(0)
    B, T, heads, d = *mask.shape, 3, 4
    q, k, v = (torch.randn(B, T, heads * d, dtype=torch.float64, requires_grad=True) for _ in range(3))

    def split(x):
        return x.view(B, T, heads, d).transpose(1, 2)

    bias = padding_mask_to_bias(mask, torch.float64)
    expected = reference_attention(split(q), split(k), split(v), bias).transpose(1, 2).reshape(B, T, -1)
    packing = Packing.from_mask(mask, torch.float64, overhead=overhead)
    packed = packing.attend(packing.unpad(q), packing.unpad(k), packing.unpad(v), heads, reference_attention)
    keep = mask.reshape(-1).bool()
    torch.testing.assert_close(packed, expected.reshape(B * T, -1)[keep], rtol=0, atol=1e-12)
    torch.testing.assert_close(packing.pad(packed)[mask.bool()], expected[mask.bool()], rtol=0, atol=1e-12)
    # gradients flow to the real tokens exactly as in the padded computation
    weights = torch.randn_like(packed)
    grads = torch.autograd.grad((packed * weights).sum(), (q, k, v))
    expected_grads = torch.autograd.grad((expected.reshape(B * T, -1)[keep] * weights).sum(), (q, k, v))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_tiles_are_padded_to_whole_blocks():
    mask = torch.tensor([[1] * 20 + [0] * 5, [1] * 25, [1] * 3 + [0] * 22])
    packing = Packing.from_mask(mask, torch.float32, overhead=0)
    assert sorted(g.length for g in packing.groups) == [16, 32]  # 25 and 20 share the 32-token tile
    assert all(g.length % 16 == 0 and g.attn_bias is not None for g in packing.groups)


def test_no_real_tokens_at_all():
    packing = Packing.from_mask(torch.zeros(2, 5, dtype=torch.long), torch.float32)
    empty = torch.zeros(0, 8)
    assert packing.attend(empty, empty, empty, 2, reference_attention).shape == (0, 8)
    assert packing.pad(empty).shape == (2, 5, 8)
