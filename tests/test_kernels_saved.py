"""The fast eager backward paths against PyTorch: layer norm's backward reading the forward's
saved statistics, the filled gradients of sum and mean, and kernel outputs that own their
memory (so a leaf's ``.grad`` is not copied again). Values and gradients in float32 and
float64, odd sizes, non-contiguous inputs, one and two threads bitwise equal, numba on and
off.
"""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _norm_kernels, _parallel, reduction

PATHS = ["numpy"] + (["jit"] if jit.available() else [])
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=PATHS)
def path(request):
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


def _tol(dtype):
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-11}


def _ln_grads(x, w, b, g, ns, eps=1e-5):
    xe, we, be = (ember.tensor(a).requires_grad_() for a in (x, w, b))
    y = F.layer_norm(xe, ns, we, be, eps=eps)
    y.backward(ember.tensor(g))
    return y.detach().numpy(), xe.grad.numpy(), we.grad.numpy(), be.grad.numpy()


def _ln_torch(x, w, b, g, ns, eps=1e-5):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.layer_norm(xt, ns, wt, bt, eps=eps)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,ns", [((3, 5, 37), (37,)), ((4, 6, 7), (6, 7)), ((0, 9), (9,))])
def test_layer_norm_saved_stats_match_torch(path, dtype, shape, ns):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w, b = (rng.standard_normal(ns).astype(dtype) for _ in range(2))
    g = rng.standard_normal(shape).astype(dtype)
    for a, r in zip(_ln_grads(x, w, b, g, ns), _ln_torch(x, w, b, g, ns), strict=True):
        np.testing.assert_allclose(a, r, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_saved_stats_equal_recomputed(dtype, monkeypatch):
    """The saved mean/rstd are exactly what the backward would recompute: bitwise equal."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 129)).astype(dtype)
    w, b = (rng.standard_normal(129).astype(dtype) for _ in range(2))
    g = rng.standard_normal(x.shape).astype(dtype)
    got = _ln_grads(x, w, b, g, (129,))
    monkeypatch.setattr(_norm_kernels, "saved_stats", lambda *a: None)
    ref = _ln_grads(x, w, b, g, (129,))
    for a, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, r)


def test_layer_norm_saved_stats_non_contiguous_and_twice_on_one_input(path):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((33, 4, 20)).astype(np.float32)
    x = np.swapaxes(base, 0, 1)  # (4, 33, 20), non-contiguous
    w, b = (rng.standard_normal(20).astype(np.float32) for _ in range(2))
    g = rng.standard_normal(x.shape).astype(np.float32)
    xe = ember.tensor(x).requires_grad_()
    xt = torch.tensor(x, requires_grad=True)
    # the same input twice, with different eps: each backward uses its own statistics
    ye = F.layer_norm(xe, (20,), ember.tensor(w), ember.tensor(b)) + F.layer_norm(
        xe, (20,), eps=0.5
    )
    yt = torch.nn.functional.layer_norm(
        xt, (20,), torch.tensor(w), torch.tensor(b)
    ) + torch.nn.functional.layer_norm(xt, (20,), eps=0.5)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=2e-5)


def test_layer_norm_statistics_are_dropped_with_their_input():
    if not jit.available():
        pytest.skip("numba is not installed or EMBER_JIT=0: the NumPy path keeps nothing")
    x = ember.tensor(np.random.default_rng(4).standard_normal((8, 16)).astype(np.float32))
    x.requires_grad_()
    y = F.layer_norm(x, (16,))
    assert _norm_kernels.saved_stats(x._data, 1, 1e-5) is not None
    key = (id(x._data), 1, 1e-5)
    del y, x
    assert key not in _norm_kernels._STATS
    z = ember.ones(8, 16)
    with ember.no_grad():  # nothing is kept when no graph is recorded
        F.layer_norm(z, (16,))
    assert _norm_kernels.saved_stats(z._data, 1, 1e-5) is None


def test_layer_norm_input_modified_in_place_still_raises():
    x = ember.tensor(np.random.default_rng(5).standard_normal((6, 10)).astype(np.float32))
    x.requires_grad_()
    h = x * 1.0
    y = F.layer_norm(h, (10,))
    h.add_(1.0)
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_layer_norm_second_order_uses_composite_grads():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 12))
    xe = ember.tensor(x).requires_grad_()
    xt = torch.tensor(x, requires_grad=True)
    (ge,) = ember.autograd.grad((F.layer_norm(xe, (12,)) ** 3).sum(), xe, create_graph=True)
    (gt,) = torch.autograd.grad(
        (torch.nn.functional.layer_norm(xt, (12,)) ** 3).sum(), xt, create_graph=True
    )
    (ge * ge).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)


# -- sum and mean backward: a new array written in row blocks ----------------------------------
REDUCE_CASES = [
    ((64, 33, 40), -1, False),
    ((64, 33, 40), 1, True),
    ((64, 33, 40), 0, False),
    ((64, 33, 40), (0, 2), True),
    ((64, 33, 40), None, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["sum", "mean"])
@pytest.mark.parametrize("shape,dim,keepdim", REDUCE_CASES)
def test_sum_mean_filled_grads(path, dtype, fn, shape, dim, keepdim):
    assert np.prod(shape) >= reduction._FILL_MIN  # the filled path, not the expanded view
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 0, 1)), 0, 1)  # non-contiguous
    xe, xt = ember.tensor(x).requires_grad_(), torch.tensor(x, requires_grad=True)
    kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    ye, yt = getattr(xe, fn)(**kw), getattr(xt, fn)(**kw)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **_tol(dtype))
    # the gradient is a broadcast (and for mean one division): exactly PyTorch's values
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())
    assert xe.grad._data.base is None and xe.grad._data.flags.c_contiguous


def test_sum_mean_filled_grads_one_and_two_threads(monkeypatch):
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    x = np.random.default_rng(8).standard_normal((70, 31, 30)).astype(np.float32)
    outs = []
    old = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            xe = ember.tensor(x).requires_grad_()
            (xe.mean(-1).sum() + xe.sum(1).sum()).backward()
            outs.append(xe.grad.numpy())
    finally:
        ember.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_sum_grad_is_a_graph_under_create_graph():
    x = ember.tensor(np.random.default_rng(9).standard_normal((70, 31, 30)))
    x.requires_grad_()
    (g,) = ember.autograd.grad((x * x).mean(), x, create_graph=True)
    assert g.requires_grad
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(x.shape, 2.0 / x.numel()), rtol=1e-12)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_grad_owns_its_memory(path, fn):
    a = np.random.default_rng(10).standard_normal((4, 5, 33)).astype(np.float32)
    x, xt = ember.tensor(a).requires_grad_(), torch.tensor(a, requires_grad=True)
    getattr(F, fn)(x, dim=-1).backward(ember.ones(4, 5, 33))
    getattr(torch.nn.functional, fn)(xt, dim=-1).backward(torch.ones(4, 5, 33))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=2e-6)
    assert x.grad._data.base is None


# -- 2x2 max pooling on NCHW planes ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (1, 4, 9, 7), (3, 1, 2, 2)])
def test_max_pool_2x2_nchw_planes_ties_and_nan(path, dtype, shape):
    rng = np.random.default_rng(11)
    x = rng.integers(-2, 3, shape).astype(dtype)  # many ties: the first maximum wins
    x.reshape(-1)[::7] = np.nan  # NaN propagates, its index the last NaN's
    xe, xt = ember.tensor(x).requires_grad_(), torch.tensor(x, requires_grad=True)
    ye, yt = F.max_pool2d(xe, 2), torch.nn.functional.max_pool2d(xt, 2)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())
    assert xe.grad._data.flags.c_contiguous


def test_max_pool_2x2_nchw_one_and_two_threads(monkeypatch):
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    x = np.random.default_rng(12).standard_normal((3, 10, 6, 5)).astype(np.float32)
    outs = []
    old = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            xe = ember.tensor(x).requires_grad_()
            y = F.max_pool2d(xe, 2)
            (y * y).sum().backward()
            outs += [y.detach().numpy(), xe.grad.numpy()]
    finally:
        ember.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[2])
    np.testing.assert_array_equal(outs[1], outs[3])


def test_depthwise_3x3_bias_and_dilation_match_torch(path):
    rng = np.random.default_rng(13)
    for dtype, dil, bias in ((np.float32, 1, True), (np.float64, 2, True), (np.float32, 1, False)):
        x = rng.standard_normal((2, 6, 11, 9)).astype(dtype)
        w = rng.standard_normal((6, 1, 3, 3)).astype(dtype)
        b = rng.standard_normal(6).astype(dtype) if bias else None
        kw = {"padding": dil, "dilation": dil, "groups": 6}
        ye = F.conv2d(
            ember.tensor(x), ember.tensor(w), None if b is None else ember.tensor(b), **kw
        )
        yt = torch.nn.functional.conv2d(
            torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), **kw
        )
        np.testing.assert_allclose(ye.numpy(), yt.numpy(), **_tol(dtype))
