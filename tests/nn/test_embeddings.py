import math

import pytest
import torch

from encoderlab.nn import TextEmbeddings, sinusoidal_table


def test_sinusoidal_table_values():
    table = sinusoidal_table(50, 8)
    assert table.shape == (50, 8)
    assert table[0, 0] == 0.0 and table[0, 1] == 1.0  # sin(0), cos(0)
    assert math.isclose(table[3, 2].item(), math.sin(3 / 10000 ** (2 / 8)), rel_tol=1e-5)


def test_too_long_sequence_is_a_clear_error():
    emb = TextEmbeddings(100, 16, max_positions=8, n_segments=2)
    with pytest.raises(ValueError, match="exceeds max_positions=8"):
        emb(torch.zeros(1, 9, dtype=torch.long))
