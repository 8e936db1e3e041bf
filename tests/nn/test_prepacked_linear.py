"""PrepackedLinear is a plain nn.Linear everywhere except CPU fp32 inference, where it is the same up to ~1e-7."""

import copy

import pytest
import torch
from torch import nn

from encoderlab.nn.prepacked_linear import PrepackedLinear, prepack_available, prepack_linears

pytestmark = pytest.mark.skipif(not prepack_available(), reason="this PyTorch build has no oneDNN linear")


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    linear = nn.Linear(48, 24)
    return linear, PrepackedLinear.from_linear(linear)


@pytest.mark.parametrize("shape", [(7, 48), (3, 5, 48)])
def test_inference_matches_nn_linear(shape):
    linear, packed = _pair()
    x = torch.randn(*shape)
    with torch.inference_mode():
        torch.testing.assert_close(packed(x), linear(x), rtol=1e-5, atol=1e-6)
    assert "_packed" in packed.__dict__  # the fast path ran


def test_training_is_exactly_f_linear_with_gradients():
    linear, packed = _pair()
    x = torch.randn(6, 48, requires_grad=True)
    assert torch.equal(packed(x), linear(x))
    packed(x).square().sum().backward()
    assert packed.weight.grad is linear.weight.grad is not None  # shared parameters
    assert "_packed" not in packed.__dict__


def test_the_cache_follows_weight_updates():
    linear, packed = _pair()
    x = torch.randn(4, 48)
    with torch.no_grad():
        before = packed(x)
        linear.weight.mul_(2.0)  # in place, as an optimizer step does
        torch.testing.assert_close(packed(x), linear(x), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(before, packed(x))


def test_copies_and_state_dict_are_those_of_nn_linear():
    linear, packed = _pair()
    with torch.inference_mode():
        packed(torch.randn(2, 48))  # build the (uncopyable) oneDNN cache first
    clone = copy.deepcopy(packed)
    assert clone.state_dict().keys() == linear.state_dict().keys()
    with torch.inference_mode():
        x = torch.randn(3, 48)
        torch.testing.assert_close(clone(x), linear(x), rtol=1e-5, atol=1e-6)


def test_prepack_linears_swaps_plain_linears_only():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 4), nn.ReLU())
            self.special = PrepackedLinear.from_linear(nn.Linear(4, 2))

    block = Block()
    weight = block.a.weight
    assert prepack_linears(block) == 2
    assert type(block.a) is PrepackedLinear and type(block.b[0]) is PrepackedLinear
    assert block.a.weight is weight  # the same Parameter: optimizers and checkpoints see no change
