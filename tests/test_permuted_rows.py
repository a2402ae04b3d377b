"""``F.linear`` on inputs whose leading axes are permuted in memory (the (B, T, H) view of a
(T, B, H) RNN output, a transposed batch), and the embedding's backward on such gradients:
the rows are read in memory order without a copy, and the values, gradients and layouts match
PyTorch's results."""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.ops.nn import memory_order


@pytest.mark.parametrize(
    "stored,perm",
    [((5, 3, 8), (1, 0, 2)), ((2, 3, 4, 6), (2, 0, 1, 3)), ((4, 1, 3, 6), (2, 1, 0, 3))],
)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_permuted_rows_matches_torch(stored, perm, bias):
    rng = np.random.default_rng(len(stored))
    base = rng.standard_normal(stored)
    w = rng.standard_normal((7, stored[-1]))
    b = rng.standard_normal(7) if bias else None
    g = rng.standard_normal(tuple(stored[i] for i in perm[:-1]) + (7,))

    ex = ember.tensor(base, requires_grad=True)
    ew = ember.tensor(w, requires_grad=True)
    eb = ember.tensor(b, requires_grad=True) if bias else None
    ey = F.linear(ex.permute(*perm), ew, eb)
    (ey * ember.tensor(g)).sum().backward()

    tx = torch.tensor(base, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = torch.nn.functional.linear(tx.permute(*perm), tw, tb)
    (ty * torch.tensor(g)).sum().backward()

    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for e, t in [(ex, tx), (ew, tw)] + ([(eb, tb)] if bias else []):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_linear_reads_permuted_rows_in_place_and_keeps_their_layout():
    x = ember.randn(6, 4, 16).transpose(0, 1)  # (4, 6, 16) laid out (6, 4, 16)
    assert memory_order(x.numpy()) == [1, 0]
    y = F.linear(x, ember.randn(3, 16)).numpy()
    assert y.shape == (4, 6, 3)
    assert y.transpose(1, 0, 2).flags.c_contiguous  # computed in x's memory order


def test_memory_order_is_none_where_no_permutation_is_contiguous():
    a = np.zeros((4, 6, 8))
    assert memory_order(a) is None  # already contiguous
    assert memory_order(a[:, ::2]) is None  # a strided slice
    assert memory_order(a.transpose(2, 1, 0)) is None  # the last axis is not unit-stride
    assert memory_order(np.zeros((3, 5))) is None  # 2-D: nothing to reorder


def test_linear_backward_kernel_on_permuted_rows_without_graph():
    # the fused backward primitive (no create_graph) takes the same row order as forward
    rng = np.random.default_rng(3)
    base = rng.standard_normal((5, 2, 6)).astype(np.float32)
    w = rng.standard_normal((9, 6)).astype(np.float32)
    ex, ew = ember.tensor(base, requires_grad=True), ember.tensor(w, requires_grad=True)
    F.linear(ex.transpose(0, 1), ew).square().sum().backward()
    tx, tw = torch.tensor(base, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.linear(tx.transpose(0, 1), tw).square().sum().backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_embedding_backward_of_a_permuted_gradient_matches_torch():
    # the gradient reaching the table is the (B, T, E) view of a (T, B, E) array, as an
    # LSTM's input gradient is; repeated ids sum their rows
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 7, size=(4, 6))
    table = rng.standard_normal((7, 5)).astype(np.float32)
    g = rng.standard_normal((6, 4, 5)).astype(np.float32)
    ew = ember.tensor(table, requires_grad=True)
    y = F.embedding(ember.tensor(ids), ew)
    (y * ember.tensor(g).transpose(0, 1)).sum().backward()
    tw = torch.tensor(table, requires_grad=True)
    ty = torch.nn.functional.embedding(torch.tensor(ids), tw)
    (ty * torch.tensor(g).transpose(0, 1)).sum().backward()
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)
