"""Shared check: a padding-free (unpad=True) model computes what its padded twin does, forward and backward."""

import torch


def assert_packed_equals_padded(packed, padded, ids, mask, *extra) -> torch.Tensor:
    """Same outputs on real tokens and same gradients for every parameter; returns the packed output."""
    real = mask.bool()
    out_packed, out_padded = packed(ids, mask, *extra), padded(ids, mask, *extra)
    torch.testing.assert_close(out_packed[real], out_padded[real], atol=1e-5, rtol=1e-5)
    out_packed[real].sum().backward()
    out_padded[real].sum().backward()
    for (name, p1), p2 in zip(padded.named_parameters(), packed.parameters(), strict=True):
        if p1.grad is not None:
            torch.testing.assert_close(p2.grad, p1.grad, atol=1e-4, rtol=1e-4, msg=name)
    return out_packed
