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
