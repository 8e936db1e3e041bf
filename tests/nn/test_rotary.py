import pytest
import torch

from encoderlab.nn import RotaryEmbedding, apply_rotary


def test_rotation_keeps_lengths_and_scores_depend_only_on_the_offset():
    torch.manual_seed(0)
    rotary = RotaryEmbedding(d_head=16)
    q, k = torch.randn(16), torch.randn(16)

    def score(m: int, n: int) -> torch.Tensor:
        return apply_rotary(q, rotary(torch.tensor(m))) @ apply_rotary(k, rotary(torch.tensor(n)))

    torch.testing.assert_close(apply_rotary(q, rotary(torch.tensor(37))).norm(), q.norm())
    torch.testing.assert_close(score(3, 7), score(103, 107), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(score(0, 0), q @ k, atol=1e-5, rtol=1e-5)  # position 0 is no rotation
    assert not torch.allclose(score(3, 7), score(7, 3))  # direction matters: m - n, not |m - n|


def test_angles_broadcast_over_batch_and_heads():
    rotary = RotaryEmbedding(d_head=8)
    cos, sin = rotary(torch.arange(5))
    assert cos.shape == sin.shape == (5, 8)
    x = torch.randn(2, 3, 5, 8)  # (B, heads, T, d_head)
    y = apply_rotary(x, (cos, sin))
    torch.testing.assert_close(y[1, 2, 4], apply_rotary(x[1, 2, 4], rotary(torch.tensor(4))))


def test_odd_head_width_is_refused():
    with pytest.raises(ValueError, match="d_head=7 must be even"):
        RotaryEmbedding(7)
