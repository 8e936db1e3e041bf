import pytest
import torch

from encoderlab.nn import pool


def test_mean_max_cls_ignore_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])  # third position is padding
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(pool(hidden, mask, "max"), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(pool(hidden, mask, "cls"), torch.tensor([[1.0, 2.0]]))


def test_unknown_pooling():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(torch.zeros(1, 1, 2), torch.ones(1, 1), "median")
