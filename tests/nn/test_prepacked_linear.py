"""PrepackedLinear is a plain nn.Linear everywhere except CPU fp32 inference, where it is the same up to ~1e-7."""

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from encoderlab.models.bert import BertConfig, BertModel
from encoderlab.nn.lora import LoRALinear
from encoderlab.nn.mlp import ACTIVATIONS
from encoderlab.nn.prepacked_linear import (
    ONEDNN_ACTIVATIONS,
    PrepackedLinear,
    bf16_matmul_native,
    prepack_available,
    prepack_linears,
)

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


@pytest.mark.parametrize("activation", sorted(ONEDNN_ACTIVATIONS))
def test_fused_activation_matches_activation_after_linear(activation):
    linear, packed = _pair()
    x = torch.randn(2, 9, 48)
    with torch.inference_mode():
        assert packed.fuses(x, activation)
        torch.testing.assert_close(packed.forward_activated(x, activation), ACTIVATIONS[activation](linear(x)),
                                   rtol=1e-5, atol=1e-6)


def test_fusion_only_in_plain_inference_without_hooks():
    _, packed = _pair()
    x = torch.randn(3, 48)
    assert not packed.fuses(x, "gelu")  # gradients wanted: training path
    with torch.inference_mode():
        assert not packed.fuses(x, "tanh")  # no oneDNN twin
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not packed.fuses(x, "gelu")
        handle = packed.register_forward_hook(lambda module, inputs, output: None)
        assert not packed.fuses(x, "gelu")  # the hook must see the linear's own output
        handle.remove()
        assert packed.fuses(x, "gelu")


def _tiny_bert(activation: str, ffn_kind: str = "mlp") -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_positions=16,
                     activation=activation, ffn_kind=ffn_kind)
    model = BertModel(cfg).eval()
    prepack_linears(model)
    return model


@pytest.mark.parametrize("activation,ffn_kind", [("gelu", "mlp"), ("gelu_tanh", "mlp"), ("silu", "glu")])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "packed"])
def test_fused_feed_forward_equals_unfused(monkeypatch, activation, ffn_kind, padded):
    model = _tiny_bert(activation, ffn_kind)
    model.cfg.unpad = not padded  # a ragged batch runs packed (N, C) with unpad, padded (B, T, C) without
    ids = torch.randint(1, 50, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 7:], mask[2, 3:] = 0, 0
    calls = []
    fused_call = PrepackedLinear.forward_activated

    def counted(self, x, activation):
        calls.append(activation)
        return fused_call(self, x, activation)

    monkeypatch.setattr(PrepackedLinear, "forward_activated", counted)
    with torch.inference_mode():
        fused = model(ids, mask)
        assert len(calls) == model.cfg.n_layers  # every block's up-projection ran fused
        monkeypatch.setattr(PrepackedLinear, "fuses", lambda self, x, activation: False)
        unfused = model(ids, mask)
    torch.testing.assert_close(fused[mask.bool()], unfused[mask.bool()], rtol=0, atol=1e-5)


def test_layers_that_are_not_prepacked_run_unfused():
    model = _tiny_bert("gelu")
    ffn = model.blocks[0].ffn
    ffn.up = LoRALinear(nn.Linear(32, 64), rank=2)
    x = torch.randn(5, 32)
    with torch.inference_mode():
        torch.testing.assert_close(ffn(x), ffn.down(F.gelu(ffn.up(x))), rtol=0, atol=0)


def test_threads_sharing_a_layer_pack_its_weight_once(monkeypatch):
    linear, packed = _pair()
    reorder, calls = torch.ops.mkldnn._reorder_linear_weight, []

    def slow_reorder(weight):
        calls.append(threading.get_ident())
        time.sleep(0.05)  # widen the window in which a second thread could start packing too
        return reorder(weight)

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", slow_reorder)
    x = torch.randn(5, 48)
    start = threading.Barrier(4)

    def run():
        start.wait()
        with torch.inference_mode():
            return packed(x)

    with ThreadPoolExecutor(4) as pool:
        outputs = [f.result() for f in [pool.submit(run) for _ in range(4)]]
    assert len(calls) == 1
    for y in outputs:
        torch.testing.assert_close(y, linear(x).detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not bf16_matmul_native(), reason="this CPU has no native bf16 matmul")
@pytest.mark.parametrize("activation", [None, "gelu"])
def test_bf16_layers_run_packed_and_match_f_linear_in_bf16(monkeypatch, activation):
    torch.manual_seed(0)
    layer = PrepackedLinear.from_linear(nn.Linear(64, 96)).to(torch.bfloat16)
    x = torch.randn(37, 64).bfloat16()
    calls = []
    real = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda *a: calls.append(a[0].dtype) or real(*a))
    with torch.inference_mode():
        got = layer(x) if activation is None else layer.forward_activated(x, activation)
    want = F.linear(x.float(), layer.weight.float(), layer.bias.float())
    want = want if activation is None else F.gelu(want)
    assert calls == [torch.bfloat16] and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)  # bf16 rounding of inputs and output


def test_residual_add_inside_the_matmul_equals_the_add_after_it(monkeypatch):
    torch.manual_seed(0)
    layer = PrepackedLinear.from_linear(nn.Linear(48, 32))
    x, residual = torch.randn(2, 9, 48), torch.randn(2, 9, 32)
    with torch.inference_mode():
        expected = F.linear(x, layer.weight, layer.bias) + residual
        calls = []
        real = torch.ops.mkldnn._linear_pointwise.binary
        monkeypatch.setattr(torch.ops.mkldnn._linear_pointwise, "binary", lambda *a: calls.append(1) or real(*a))
        torch.testing.assert_close(layer.forward_plus(x, residual), expected, rtol=0, atol=1e-5)
        assert calls == [1] or not prepack_available()
        seen = []
        handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))  # a hook sees the plain output
        torch.testing.assert_close(layer.forward_plus(x, residual), expected, rtol=0, atol=1e-5)
        handle.remove()
        assert seen == [(2, 9, 32)] and len(calls) <= 1


def test_an_encoder_block_gives_the_same_in_training_and_inference_without_dropout():
    torch.manual_seed(0)
    for norm in ("post", "pre"):
        block = BertModel(BertConfig(vocab_size=50, d_model=32, n_layers=1, n_heads=4, d_ff=64, dropout=0.0,
                                     attention_dropout=0.0, norm_position=norm, max_positions=16)).blocks[0]
        prepack_linears(block)
        x = torch.randn(3, 7, 32)
        with torch.no_grad():
            trained = block.train()(x)  # adds after each sublayer
            inferred = block.eval()(x)  # adds inside the output projections
        torch.testing.assert_close(inferred, trained, rtol=0, atol=1e-5)


def test_bf16_counts_as_native_only_with_a_bf16_instruction(monkeypatch):
    """PyTorch's check says yes on AVX-512 without BF16 too (oneDNN emulates there): a CPU whose flags name
    neither avx512_bf16 nor amx_bf16 keeps bf16 autocast instead of the bf16 twin."""
    from encoderlab.nn import prepacked_linear

    monkeypatch.setattr(prepacked_linear, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not prepacked_linear.bf16_matmul_native.__wrapped__()
    monkeypatch.setattr(prepacked_linear.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(prepacked_linear, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert prepacked_linear.bf16_matmul_native.__wrapped__() == torch.backends.mkldnn.is_available()
