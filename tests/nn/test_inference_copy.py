"""The bf16 twin a text encoder runs on CPUs with native bf16: cast once, remade when the weights change."""

import copy

import torch
from torch import nn

from encoderlab.nn.inference_copy import InferenceCopy


def test_the_copy_is_cast_once_and_follows_weight_updates():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
    twin = InferenceCopy(torch.bfloat16)
    first = twin.of(model)
    assert first is twin.of(model)  # cached while nothing changes
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in first.parameters())
    assert model[0].weight.dtype == torch.float32  # the original is untouched
    with torch.no_grad():
        model[0].weight.mul_(2)  # an optimizer step, in place
    second = twin.of(model)
    assert second is not first
    torch.testing.assert_close(second[0].weight.float(), model[0].weight.bfloat16().float())
    model[1].bias = nn.Parameter(torch.ones(8))  # a replaced parameter counts too
    assert twin.of(model) is not second


def test_a_copied_model_makes_its_own_twin():
    model = nn.Linear(4, 4)
    holder = {"twin": InferenceCopy(torch.bfloat16)}
    holder["twin"].of(model)
    clone = copy.deepcopy(holder)
    assert clone["twin"]._copy is None and clone["twin"].dtype == torch.bfloat16
