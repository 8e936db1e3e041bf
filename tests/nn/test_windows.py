"""Overlapping windows over long texts and pooling their vectors back (nn/windows.py)."""

import pytest
import torch

from encoderlab.errors import CheckpointError, ConfigError
from encoderlab.nn.windows import LongText, WindowPool, group_windows, split_windows, window_spans


@pytest.mark.parametrize(("n", "size", "stride"), [(1000, 126, 94), (127, 126, 94), (300, 10, 10), (301, 10, 3),
                                                    (57, 8, 1), (9, 8, 8)])
def test_windows_cover_every_piece_with_the_given_overlap(n, size, stride):
    spans = window_spans(n, size, stride)
    covered = torch.zeros(n, dtype=torch.long)
    for start, end in spans:
        assert end - start == size  # a text longer than a window never gets a short tail window
        covered[start:end] += 1
    assert bool((covered >= 1).all())
    assert spans[0][0] == 0 and spans[-1][1] == n
    starts = [start for start, _ in spans]
    assert all(b - a == stride for a, b in zip(starts[:-2], starts[1:-1], strict=True))  # share size - stride
    assert 0 < starts[-1] - starts[-2] <= stride  # the last one is aligned with the end: it may share more


def test_a_text_that_fits_is_one_window_unchanged():
    reading = LongText("chunk", window=8, stride=3)
    ids = [101, 5, 6, 7, 8, 9, 10, 102]  # exactly 8 with [CLS] and [SEP]
    assert split_windows(ids, reading) == [ids]
    assert window_spans(0, 6, 3) == [(0, 0)]  # an empty text still gets its one window


def test_windows_keep_the_special_tokens_and_the_text_in_order():
    content = list(range(1000, 1020))
    windows = split_windows([101, *content, 102], LongText("chunk", window=8, stride=4))
    assert all(w[0] == 101 and w[-1] == 102 and len(w) == 8 for w in windows)
    assert [w[1:-1] for w in windows] == [content[0:6], content[4:10], content[8:14], content[12:18], content[14:20]]
    # RoBERTa-style: two tokens after, none before
    windows = split_windows([*content, 2, 3], LongText("chunk", window=8, stride=6), n_prefix=0, n_suffix=2)
    assert all(w[-2:] == [2, 3] and len(w) == 8 for w in windows) and windows[0][:6] == content[:6]
    with pytest.raises(ConfigError, match="stride=6 is longer than a window's content"):
        split_windows([0, 1, *content, 2], LongText("chunk", window=8, stride=6), n_prefix=2, n_suffix=1)


def test_truncate_keeps_the_first_pieces_and_the_closing_token():
    assert split_windows([101, 1, 2, 3, 4, 5, 102], LongText("truncate", window=5)) == [[101, 1, 2, 3, 102]]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"window": 3}, "window=3 is too short"),
    ({"window": 128, "stride": 0}, "stride=0 must be between 1 and window - 2 = 126"),
    ({"window": 128, "stride": 127}, "stride=127 must be between 1 and window - 2 = 126"),
    ({"mode": "slide"}, "long_text='slide' is unknown; choose truncate or chunk"),
    ({"pooling": "sum"}, "window_pooling='sum' is unknown"),
])
def test_bad_window_or_stride_is_a_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LongText(**{"mode": "chunk", **kwargs})


def test_default_stride_and_saved_form():
    reading = LongText("chunk", window=128)
    assert reading.stride == 94  # neighbours share 32 of 126 pieces
    assert LongText.from_dict(reading.to_dict(), 64) == reading
    assert LongText.from_dict(None, 64) == LongText("truncate", 64)  # saved before chunking existed
    with pytest.raises(CheckpointError, match="head.json: long_text is invalid: stride=500"):
        LongText.from_dict({"mode": "chunk", "window": 128, "stride": 500, "pooling": "mean"}, 64)
    with pytest.raises(CheckpointError, match="not an object with mode, window, stride, pooling"):
        LongText.from_dict({"mode": "chunk", "windows": 3}, 64)


def test_group_windows_pads_text_after_text():
    vectors = torch.arange(12.0).view(6, 2)
    grouped, mask = group_windows(vectors, [1, 3, 2])
    assert grouped.shape == (3, 3, 2) and mask.tolist() == [[1, 0, 0], [1, 1, 1], [1, 1, 0]]
    assert grouped[1, 2].tolist() == [6.0, 7.0] and grouped[2, 1].tolist() == [10.0, 11.0]
    assert grouped[0, 1:].abs().sum() == 0
    with pytest.raises(ValueError, match="counts add up to 5 windows but 6"):
        group_windows(vectors, [1, 2, 2])


def test_window_pooling_mean_max_attention():
    torch.manual_seed(0)
    vectors, counts = torch.randn(6, 4), [1, 3, 2]
    mean = WindowPool("mean")(vectors, counts)
    assert torch.equal(mean[0], vectors[0])  # one window: its vector bit for bit
    torch.testing.assert_close(mean[1], vectors[1:4].mean(0))
    torch.testing.assert_close(WindowPool("max")(vectors, counts)[2], vectors[4:6].amax(0))
    attention = WindowPool("attention", d_model=4)
    torch.testing.assert_close(attention(vectors, counts), mean)  # starts as the mean: zero scores
    torch.nn.init.normal_(attention.score.weight)
    pooled = attention(vectors, counts)
    weights = (vectors[1:4] @ attention.score.weight.T + attention.score.bias).squeeze(1).softmax(0)
    torch.testing.assert_close(pooled[1], weights @ vectors[1:4])
    assert torch.equal(pooled[0], vectors[0])
    pooled.sum().backward()  # the scores learn
    assert attention.score.weight.grad.abs().sum() > 0
    assert torch.equal(WindowPool("max")(vectors[:3], [1, 1, 1]), vectors[:3])
