import pytest
import torch

from encoderlab.nn import MultiHeadSelfAttention, padding_mask_to_bias, reference_attention


def _attention_pair(d_model=32, n_heads=4):
    torch.manual_seed(0)
    fast = MultiHeadSelfAttention(d_model, n_heads, fused=True).eval()
    slow = MultiHeadSelfAttention(d_model, n_heads, fused=False).eval()
    slow.load_state_dict(fast.state_dict())
    return fast, slow


@pytest.mark.parametrize("padded", [False, True])
def test_fused_and_reference_paths_agree(padded):
    fast, slow = _attention_pair()
    x = torch.randn(3, 7, 32)
    mask = torch.ones(3, 7, dtype=torch.long)
    if padded:
        mask[1, 4:] = 0
        mask[2, 1:] = 0
    bias = padding_mask_to_bias(mask, x.dtype)
    torch.testing.assert_close(fast(x, bias), slow(x, bias), atol=1e-6, rtol=1e-5)


def test_padding_does_not_leak_into_real_positions():
    fast, _ = _attention_pair()
    x = torch.randn(1, 6, 32)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    bias = padding_mask_to_bias(mask, x.dtype)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 32) * 100  # garbage in the padded slots
    torch.testing.assert_close(fast(x, bias)[:, :4], fast(changed, bias)[:, :4])
    # ...and without the mask it would leak: the test can fail
    assert not torch.allclose(fast(x)[:, :4], fast(changed)[:, :4])


def test_reference_attention_is_softmax_qk_v():
    q, k, v = torch.randn(3, 1, 2, 5, 4).unbind(0)
    scores = torch.einsum("bhid,bhjd->bhij", q, k) / 2.0  # sqrt(d_head=4) = 2
    expected = torch.einsum("bhij,bhjd->bhid", scores.softmax(-1), v)
    torch.testing.assert_close(reference_attention(q, k, v), expected)


def test_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(30, 4)


def test_bf16_training_takes_the_explicit_path_and_matches_the_fused_kernel(monkeypatch):
    """bf16 with gradients on CPU runs the reference softmax (the fused kernel's bf16 backward is slow);
    outputs and gradients agree with the fused kernel in fp32 to bf16's precision."""
    fast, _ = _attention_pair()
    fast.train()
    x = torch.randn(3, 7, 32)
    bias = padding_mask_to_bias(torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6]), torch.float32)
    x32 = x.clone().requires_grad_()
    y32 = fast(x32, bias)
    y32.square().sum().backward()
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    x16 = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y16 = fast(x16, bias)
    y16.float().square().sum().backward()
    assert calls == []  # the explicit path
    torch.testing.assert_close(y16.float(), y32.detach(), atol=0.05, rtol=0.05)
    torch.testing.assert_close(x16.grad, x32.grad, atol=0.1, rtol=0.1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # inference keeps the fused kernel
        fast.eval()(x, bias)
    assert calls == [1]
