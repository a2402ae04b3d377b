import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn, to_e

import ember
import ember.nn.functional as F


@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2},
        {"kernel_size": 3, "padding": 1},
        {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0)},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {"kernel_size": 2, "dilation": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    ],
)
def test_max_pool2d(kw):
    x = randn(2, 3, 9, 8)
    check(lambda x: F.max_pool2d(x, **kw), lambda x: TF.max_pool2d(x, **kw), [x])
    _eo, ei = F.max_pool2d(to_e(x), return_indices=True, **kw)
    _to, ti = TF.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    assert ei.dtype == ember.int64


def test_max_pool2d_double_backward_and_finite_difference():
    x = randn(1, 2, 5, 5, dtype=np.float64)
    numeric_grad_check(lambda x: F.max_pool2d(x, 3, 2, 1), [x])
    ex = to_e(x, True)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    (g,) = ember.autograd.grad(F.max_pool2d(ex, 2).pow(2).sum(), [ex], create_graph=True)
    (tg,) = torch.autograd.grad(TF.max_pool2d(tx, 2).pow(2).sum(), [tx], create_graph=True)
    (g * to_e(x)).sum().backward()
    (tg * torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy())


def test_max_pool_unbatched_and_1d():
    check(lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), [randn(3, 6, 6)])
    x = randn(2, 3, 11)
    check(lambda x: F.max_pool1d(x, 3, 2, 1), lambda x: TF.max_pool1d(x, 3, 2, 1), [x])
    check(lambda x: F.avg_pool1d(x, 3, 2, 1), lambda x: TF.avg_pool1d(x, 3, 2, 1), [x])


@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
        {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 1), "ceil_mode": True},
        {"kernel_size": 2, "divisor_override": 3},
    ],
)
def test_avg_pool2d(kw):
    check(lambda x: F.avg_pool2d(x, **kw), lambda x: TF.avg_pool2d(x, **kw), [randn(2, 3, 9, 8)])


def test_avg_pool2d_double_backward():
    x = randn(1, 2, 6, 6, dtype=np.float64)
    numeric_grad_check(lambda x: F.avg_pool2d(x, 3, 2, 1) ** 2, [x])
    ex = to_e(x, True)
    (g,) = ember.autograd.grad((F.avg_pool2d(ex, 3, 2, 1) ** 2).sum(), [ex], create_graph=True)
    g.sum().backward()
    tx = torch.from_numpy(x.copy()).requires_grad_()
    (tg,) = torch.autograd.grad((TF.avg_pool2d(tx, 3, 2, 1) ** 2).sum(), [tx], create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("size", [1, (3, 2), (4, 4), (5, 3), (None, 2)])
def test_adaptive_pools(size):
    x = randn(2, 3, 8, 7)
    check(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size), [x])
    check(lambda x: F.adaptive_max_pool2d(x, size), lambda x: TF.adaptive_max_pool2d(x, size), [x])


def test_adaptive_1d():
    x = randn(2, 3, 10)
    check(lambda x: F.adaptive_avg_pool1d(x, 4), lambda x: TF.adaptive_avg_pool1d(x, 4), [x])
    check(lambda x: F.adaptive_max_pool1d(x, 5), lambda x: TF.adaptive_max_pool1d(x, 5), [x])


def test_pool_errors():
    with pytest.raises(ValueError, match="max_pool2d: expected a 3-D .* got shape \\(4, 4\\)"):
        F.max_pool2d(to_e(randn(4, 4)), 2)
    with pytest.raises(ValueError, match="avg_pool2d: .*too small"):
        F.avg_pool2d(to_e(randn(1, 1, 2, 2)), 3)
    with pytest.raises(ValueError, match="pad should be at most half"):
        F.max_pool2d(to_e(randn(1, 1, 8, 8)), 2, padding=2)


@pytest.mark.parametrize(
    "kw",
    [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1}, {"kernel_size": 2, "ceil_mode": True}],
)
def test_max_pool2d_ties_route_like_torch(kw):
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 7, 8)).astype(np.float32)  # many ties
    _eo, ei = F.max_pool2d(to_e(x), return_indices=True, **kw)
    _to, ti = TF.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    check(lambda x: F.max_pool2d(x, **kw), lambda x: TF.max_pool2d(x, **kw), [x])
