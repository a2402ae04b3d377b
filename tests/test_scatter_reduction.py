"""scatter_reduce and index_reduce against PyTorch: values and first derivatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember

RNG = np.random.default_rng(0)
REDUCES = ["sum", "prod", "mean", "amax", "amin"]


def _close(e, t):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_reduce_values_and_grads(reduce, include_self, dim):
    x = RNG.uniform(0.5, 2, (4, 5))
    src = RNG.uniform(0.5, 2, (3, 4))  # PyTorch differentiates src only when shaped like index
    if reduce in ("amax", "amin"):  # ties, to check the even split of the gradient
        src[1, 2] = src[0, 2]
        src = np.round(src, 1)
        x = np.round(x, 1)
    idx = RNG.integers(0, 3, (3, 4))  # duplicates, and positions nobody writes
    ex, es = ember.tensor(x).requires_grad_(), ember.tensor(src).requires_grad_()
    tx, ts = torch.from_numpy(x).requires_grad_(), torch.from_numpy(src).requires_grad_()
    ey = ember.scatter_reduce(ex, dim, ember.tensor(idx), es, reduce, include_self=include_self)
    ty = torch.scatter_reduce(tx, dim, torch.from_numpy(idx), ts, reduce, include_self=include_self)
    _close(ey, ty)
    g = RNG.standard_normal(x.shape)
    ey.backward(ember.tensor(g))
    ty.backward(torch.from_numpy(g))
    _close(ex.grad, tx.grad)
    _close(es.grad, ts.grad)


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_with_zeros(include_self):
    x = np.array([0.0, 2.0, 3.0, 0.0])
    src = np.array([0.0, 5.0, 0.0, 7.0, 2.0, 0.0])
    idx = np.array([0, 0, 1, 1, 2, 3])
    ex, es = ember.tensor(x).requires_grad_(), ember.tensor(src).requires_grad_()
    tx, ts = torch.from_numpy(x).requires_grad_(), torch.from_numpy(src).requires_grad_()
    ey = ember.scatter_reduce(ex, 0, ember.tensor(idx), es, "prod", include_self=include_self)
    ty = torch.scatter_reduce(tx, 0, torch.from_numpy(idx), ts, "prod", include_self=include_self)
    _close(ey, ty)
    ey.sum().backward()
    ty.sum().backward()
    _close(ex.grad, tx.grad)
    _close(es.grad, ts.grad)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_integers(reduce, include_self):
    x = RNG.integers(-5, 6, (3, 4))
    src = RNG.integers(-5, 6, (3, 4))
    idx = RNG.integers(0, 3, (3, 4))
    e = ember.scatter_reduce(
        ember.tensor(x), 0, ember.tensor(idx), ember.tensor(src), reduce, include_self=include_self
    )
    t = torch.scatter_reduce(
        torch.from_numpy(x),
        0,
        torch.from_numpy(idx),
        torch.from_numpy(src),
        reduce,
        include_self=include_self,
    )
    np.testing.assert_array_equal(e.numpy(), t.numpy())
    assert str(e.dtype) == "ember.int64"


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_matches_torch(reduce, include_self):
    x = RNG.uniform(0.5, 2, (5, 3))
    src = RNG.uniform(0.5, 2, (4, 3))
    idx = np.array([0, 4, 0, 2])
    ex, es = ember.tensor(x).requires_grad_(), ember.tensor(src).requires_grad_()
    tx, ts = torch.from_numpy(x).requires_grad_(), torch.from_numpy(src).requires_grad_()
    ey = ex.index_reduce(0, ember.tensor(idx), es, reduce, include_self=include_self)
    ty = tx.index_reduce(0, torch.from_numpy(idx), ts, reduce, include_self=include_self)
    _close(ey, ty)
    ey.sum().backward()
    ty.sum().backward()
    _close(ex.grad, tx.grad)
    _close(es.grad, ts.grad)


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_reduce_uses_the_leading_part_of_a_larger_src(reduce):
    x, src = RNG.uniform(0.5, 2, (4, 5)), RNG.uniform(0.5, 2, (4, 5))
    idx = RNG.integers(0, 4, (2, 3))
    e = ember.scatter_reduce(ember.tensor(x), 1, ember.tensor(idx), ember.tensor(src), reduce)
    t = torch.scatter_reduce(
        torch.from_numpy(x), 1, torch.from_numpy(idx), torch.from_numpy(src), reduce
    )
    _close(e, t)


def test_errors_name_the_problem():
    x = ember.zeros(3)
    with pytest.raises(ValueError, match="reduce must be one of"):
        ember.scatter_reduce(x, 0, ember.tensor([0]), ember.ones(1), "max")
    with pytest.raises(TypeError, match="int64"):
        ember.scatter_reduce(x, 0, ember.tensor([0], dtype=ember.int32), ember.ones(1), "sum")
    with pytest.raises(ValueError, match="reduce must be one of"):
        ember.index_reduce(x, 0, ember.tensor([0]), ember.ones(1), "sum")
