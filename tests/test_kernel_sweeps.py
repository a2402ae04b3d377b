"""Seeded random sweeps over the CPU kernels' case split (layouts, dtypes, strides, dilation,
padding, groups, depthwise, few channels, batch sizes 1-10) against PyTorch: every path of
conv2d (forward and all gradients), max pooling (values, indices, NaN, ceil mode) and
batch norm + ReLU must agree. Each case is small; the sweep is the point."""

from functools import partial

import numpy as np
import pytest
import torch
from _f32_bounds import EPS32, assert_within, batch_norm_bound, multilinear_bound

import ember

F, TF = ember.nn.functional, torch.nn.functional


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _conv_case(rng):
    n, groups = int(rng.integers(1, 11)), int(rng.choice([1, 1, 1, 2, 3]))
    cg = int(rng.integers(1, 7))
    c = cg * groups
    if rng.random() < 0.2:  # depthwise
        groups = c = int(rng.integers(1, 20))
        cg = 1
    o = int(rng.integers(1, 5)) * groups
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    ph, pw = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    h = int(rng.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 14))
    w = int(rng.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 14))
    pad = "same" if (rng.random() < 0.2 and sh == sw == 1) else (ph, pw)
    kwargs = {"stride": (sh, sw), "padding": pad, "dilation": (dh, dw), "groups": groups}
    return (n, c, h, w), (o, cg, kh, kw), kwargs


@pytest.mark.parametrize("seed", range(4))
def test_conv2d_sweep(seed):
    rng = np.random.default_rng(100 + seed)
    checked = 0
    while checked < 40:
        xs, ws, kwargs = _conv_case(rng)
        dtype = np.float64 if rng.random() < 0.5 else np.float32
        x, wt = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
        yt = TF.conv2d(xt, wtt, bt, **kwargs)
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        yt.backward(torch.tensor(g))
        xa = _channels_last(x) if rng.random() < 0.5 else x
        xe = ember.from_numpy(xa).requires_grad_()
        we, be = ember.tensor(wt, requires_grad=True), ember.tensor(b, requires_grad=True)
        ye = F.conv2d(xe, we, be, **kwargs)
        ye.backward(ember.tensor(g))
        case = f"{xs} {ws} {kwargs} {dtype.__name__}"
        # per element: sqrt(terms) * eps * sum|products| (see _f32_bounds); float64 is held
        # to the same form with its own epsilon
        bounds = multilinear_bound(partial(TF.conv2d, **kwargs), (x, wt, b), g)
        if dtype == np.float64:
            bounds = [bd * (np.finfo(np.float64).eps / EPS32) for bd in bounds]
        for got, ref, bound, what in zip(
            (ye.detach(), xe.grad, we.grad, be.grad),
            (yt, xt.grad, wtt.grad, bt.grad),
            bounds,
            ("output", "grad x", "grad w", "grad b"),
        ):
            assert_within(got.numpy(), ref.detach().numpy(), bound, f"{what} {case}")
        checked += 1


@pytest.mark.parametrize("seed", range(2))
def test_max_pool_and_batch_norm_sweep(seed):
    rng = np.random.default_rng(200 + seed)
    pools = 0
    while pools < 40:
        n, c = int(rng.integers(1, 6)), int(rng.integers(1, 40))
        h, w = int(rng.integers(2, 12)), int(rng.integers(2, 12))
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        kw = {
            "kernel_size": k,
            "stride": s,
            "padding": int(rng.integers(0, k // 2 + 1)),
            "dilation": int(rng.integers(1, 3)),
            "ceil_mode": bool(rng.random() < 0.3),
            "return_indices": True,
        }
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        if rng.random() < 0.2:
            x[0, 0, 0, 0] = np.nan
        xt = torch.tensor(x, requires_grad=True)
        try:
            yt, it = TF.max_pool2d(xt, **kw)
        except RuntimeError:  # an input too small for the window: PyTorch refuses too
            continue
        g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yt.backward(torch.tensor(g))
        xe = ember.from_numpy(_channels_last(x) if rng.random() < 0.6 else x).requires_grad_()
        ye, ie = F.max_pool2d(xe, **kw)
        ye.backward(ember.tensor(g))
        case = f"{x.shape} {kw}"
        np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy(), err_msg=case)
        np.testing.assert_array_equal(ie.numpy(), it.numpy(), err_msg=case)
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), atol=1e-5, err_msg=case)
        pools += 1
    for _ in range(25):
        n, c = int(rng.integers(1, 6)), int(rng.integers(1, 40))
        h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        if n * h * w < 2:
            continue
        x = (rng.standard_normal((n, c, h, w)) * 3 + 5).astype(np.float32)
        g = rng.standard_normal(x.shape).astype(np.float32)
        wt, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
        xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
        torch.relu(TF.batch_norm(xt, None, None, wtt, bt, training=True)).backward(torch.tensor(g))
        xe = ember.from_numpy(_channels_last(x) if rng.random() < 0.6 else x).requires_grad_()
        we, be = ember.tensor(wt, requires_grad=True), ember.tensor(b, requires_grad=True)
        ye = ember.relu(F.batch_norm(xe, None, None, we, be, training=True))
        ye.backward(ember.tensor(g))
        yt = torch.relu(
            TF.batch_norm(xt.detach(), None, None, wtt.detach(), bt.detach(), training=True)
        )
        b_y, b_gx, b_gw, b_gb = batch_norm_bound(x, wt, b, g * (yt.detach().numpy() > 0))
        case = f"{x.shape}"
        for got, ref, bound, what in (
            (ye.detach(), yt, b_y, "output"),
            (xe.grad, xt.grad, b_gx, "grad x"),
            (we.grad, wtt.grad, b_gw, "grad w"),
            (be.grad, bt.grad, b_gb, "grad b"),
        ):
            assert_within(got.numpy(), ref.detach().numpy(), bound, f"{what} {case}")


def test_the_float32_bounds_catch_a_small_error():
    """The sweeps' bounds are tight enough to see a 1e-5 relative error in one element."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    y = TF.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    b_y, _, _ = multilinear_bound(TF.conv2d, (x, w), g)
    assert_within(y, y, b_y, "same")
    bad = y.copy()
    bad[1, 2, 3, 0] *= 1 + 1e-5
    with pytest.raises(AssertionError, match=r"1 of 128 elements"):
        assert_within(bad, y, b_y, "conv")
    bn_y = TF.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    bound = batch_norm_bound(x, None, None, np.ones_like(x))[0]
    bad = bn_y.copy()
    bad[0, 1, 2, 2] += 1e-5 * max(1.0, abs(bad[0, 1, 2, 2]))
    with pytest.raises(AssertionError, match=r"1 of 216 elements"):
        assert_within(bad, bn_y, bound, "batch norm")
