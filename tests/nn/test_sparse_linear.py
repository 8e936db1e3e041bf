"""SparseLinear: the EmbeddingBag path equals the dense x @ W reference, forward and backward."""

import torch

from encoderlab.nn.sparse_linear import SparseLinear, gather_bags, to_dense


def test_sparse_path_equals_dense_forward_and_backward():
    torch.manual_seed(0)
    layer = SparseLinear(50, 8)
    indices = torch.tensor([3, 7, 49, 0, 12, 12 + 1])
    offsets = torch.tensor([0, 3, 3])  # row 1 is empty
    values = torch.tensor([1.0, 0.5, 2.0, 1.0, -1.0, 3.0])
    sparse = layer(indices, offsets, values)
    grad_sparse = torch.autograd.grad(sparse.square().sum(), layer.weight.weight)[0]
    dense = layer.dense(to_dense(indices, offsets, values, 50))
    grad_dense = torch.autograd.grad(dense.square().sum(), layer.weight.weight)[0]
    torch.testing.assert_close(sparse, dense)
    torch.testing.assert_close(grad_sparse, grad_dense)
    torch.testing.assert_close(sparse[1], layer.bias)  # an empty row is the bias alone


def test_gather_bags_takes_rows_of_a_csr_table():
    indptr = torch.tensor([0, 2, 2, 5])
    indices = torch.tensor([10, 11, 20, 21, 22])
    got, offsets = gather_bags(torch.tensor([2, 1, 0]), indptr, indices)
    assert got.tolist() == [20, 21, 22, 10, 11] and offsets.tolist() == [0, 3, 3]
