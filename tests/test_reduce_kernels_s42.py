"""Full sums/means, sums over trailing and spatial axes (global average pooling, NCHW and
channels-last), row amax/amin/argmax/argmin and max(dim) against PyTorch, values and
gradients, float32 and float64, with and without the compiled kernels, on 1 and 2 threads
bitwise (kernels of ember/backends/kernels_reduce_s42.py)."""

import numpy as np
import pytest
import torch

import ember
from ember.backends import jit

F = ember.nn.functional
TF = torch.nn.functional


@pytest.fixture(params=[True, False], ids=["jit", "numpy"])
def jit_on(request):
    old = jit.set_enabled(request.param)
    yield request.param
    jit.set_enabled(old)


def _cl(a):
    """``a`` (N, C, H, W) in channels-last memory."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _check(fn, x, tol):
    xe = ember.from_numpy(x).requires_grad_()
    xt = torch.from_numpy(x).requires_grad_()
    ye, yt = fn(xe), fn(xt)
    assert tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(5).standard_normal(tuple(yt.shape)).astype(x.dtype)
    (ge,) = ember.autograd.grad(ye, [xe], ember.from_numpy(g))
    (gt,) = torch.autograd.grad(yt, [xt], torch.from_numpy(g))
    np.testing.assert_allclose(ge.numpy(), gt.numpy(), rtol=tol, atol=tol)


CASES = {
    "sum_all": ((300, 301), None, lambda x: x.sum()),
    "sum_all_T": ((300, 301), None, lambda x: x.T.sum()),
    "mean_all": ((40, 30, 25), None, lambda x: x.mean()),
    "sum_all_keepdim": ((40, 30, 25), None, lambda x: x.sum((0, 1, 2), keepdim=True)),
    "sum_all_cl": ((4, 9, 30, 31), _cl, lambda x: x.sum()),
    "sum_all_strided": ((200, 301), lambda a: a[:, ::3], lambda x: x.sum()),
    "mean_23": ((5, 37, 9, 11), None, lambda x: x.mean((2, 3))),
    "mean_23_keepdim": ((5, 37, 9, 11), None, lambda x: x.mean((2, 3), keepdim=True)),
    "mean_23_cl": ((5, 37, 9, 11), _cl, lambda x: x.mean((2, 3))),
    "mean_23_cl_keepdim": ((5, 37, 9, 11), _cl, lambda x: x.mean((2, 3), keepdim=True)),
    "sum_123": ((7, 64, 13, 11), None, lambda x: x.sum((1, 2, 3))),
    "sum_23_cl": ((6, 64, 7, 7), _cl, lambda x: x.sum((-2, -1))),
    "sum_0": ((130, 257), None, lambda x: x.sum(0)),
    "amax": ((50, 1001), None, lambda x: x.amax(-1)),
    "amin_keepdim": ((50, 1001), None, lambda x: x.amin(-1, keepdim=True)),
    "max_dim": ((50, 1001), None, lambda x: x.max(-1)[0]),
    "min_dim_keepdim": ((50, 1001), None, lambda x: x.min(-1, keepdim=True)[0]),
    "amax_T": ((300, 41), None, lambda x: x.T.amax(-1)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_values_and_gradients(case, dtype, jit_on):
    shape, prep, fn = CASES[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if prep is not None:
        x = prep(x)
    _check(fn, x, 2e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "conv"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_global_average_pool(layout, keepdim, jit_on):
    rng = np.random.default_rng(1)
    if layout == "conv":  # a conv output: an NCHW-shaped view of channels-last memory
        xi = rng.standard_normal((4, 8, 9, 9)).astype(np.float32)
        w = rng.standard_normal((64, 8, 3, 3)).astype(np.float32)
        x = F.conv2d(ember.from_numpy(xi), ember.from_numpy(w)).numpy()
    else:
        x = rng.standard_normal((4, 64, 7, 7)).astype(np.float32)
        x = _cl(x) if layout == "channels_last" else x
    _check(lambda t: t.mean((2, 3), keepdim=keepdim), x, 2e-5)
    aap = lambda t: (F if isinstance(t, ember.Tensor) else TF).adaptive_avg_pool2d(t, 1)
    _check(aap, x, 2e-5)


def test_full_sum_accuracy():
    """A float32 sum of 4M uniform values stays near PyTorch's 1e-7 relative error."""
    x = np.random.default_rng(2).uniform(0, 1, 1 << 22).astype(np.float32)
    exact = x.astype(np.float64).sum()
    for flag in (True, False):
        old = jit.set_enabled(flag)
        try:
            got = float(ember.from_numpy(x).sum())
            mean = float(ember.from_numpy(x).mean())
        finally:
            jit.set_enabled(old)
        assert abs(got - exact) / exact < 3e-7
        assert abs(mean - exact / x.size) / (exact / x.size) < 3e-7


def test_nan_inf_and_ties(jit_on):
    x = np.random.default_rng(3).standard_normal((12, 600)).astype(np.float32)
    x[3, 5] = np.nan
    x[4, 9] = -np.nan
    x[5, 300] = np.nan
    x[5, 10] = np.nan
    x[6, :] = np.inf
    x[7, :] = -np.inf
    x[8, :] = 2.0
    x[9, 100] = x[9, 500] = 50.0
    x[10, 0] = x[10, 599] = -50.0
    for fn in (
        lambda t: t.amax(-1),
        lambda t: t.amin(-1),
        lambda t: t.argmax(-1),
        lambda t: t.argmin(-1, keepdim=True),
        lambda t: t.max(-1)[1],
        lambda t: t.min(-1)[0],
    ):
        got = fn(ember.from_numpy(x)).numpy()
        ref = fn(torch.from_numpy(x)).numpy()
        np.testing.assert_array_equal(got, ref)
    # ties share amax's gradient; max(dim)'s goes to the first index only
    x2 = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
    _check(lambda t: t.amax(-1), x2, 1e-6)
    _check(lambda t: t.max(-1)[0], x2, 1e-6)


def test_empty_and_size_one(jit_on):
    for shape in [(0, 5), (3, 0, 4), (1, 1), (5, 1)]:
        x = np.ones(shape, np.float32)
        for fn in (lambda t: t.sum(), lambda t: t.mean(-1), lambda t: t.sum((0, 1))):
            got = fn(ember.from_numpy(x)).numpy()
            ref = fn(torch.from_numpy(x)).numpy()
            np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError):
        ember.from_numpy(np.ones((3, 0), np.float32)).amax(-1)


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.sum(),
        lambda t: t.T.mean(),
        lambda t: t.reshape(64, 128, 16, 16).mean((2, 3)),
        lambda t: t.amax(-1),
        lambda t: t.argmin(-1),
    ],
)
def test_bitwise_on_one_and_two_threads(fn, monkeypatch):
    """The compiled kernels (parallel builds from a low threshold) give the same bits on any
    thread count."""
    from ember.ops import _parallel

    monkeypatch.setattr(_parallel, "JIT_PAR_MIN_WORK", 1 << 10)
    x = ember.from_numpy(np.random.default_rng(4).standard_normal((4096, 512)).astype(np.float32))
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        a = fn(x).numpy()
        ember.set_num_threads(2)
        b = fn(x).numpy()
    finally:
        ember.set_num_threads(old)
    np.testing.assert_array_equal(a, b)


def test_kernels_directly():
    """The kernels against NumPy (compiled where numba is present, else as Python)."""
    from ember.backends import kernels_reduce_s42 as kr

    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 700))
    get = lambda n: jit.get(n) or getattr(kr, n)
    parts = np.empty(3)
    get("flat_block_sums")(x.reshape(-1), parts, 2000)
    np.testing.assert_allclose(parts.sum(), x.sum(), rtol=1e-12)
    out = np.empty(6)
    get("row_extrema")(x, out, True)
    np.testing.assert_array_equal(out, x.min(1))
    idx = np.empty(6, np.int64)
    get("row_arg_extrema")(x, idx, False)
    np.testing.assert_array_equal(idx, x.argmax(1))
    g = rng.standard_normal(6)
    gx = np.empty_like(x)
    get("amax_grad_rows")(g, x, x.max(1), gx)
    np.testing.assert_array_equal(gx, (x == x.max(1)[:, None]) * g[:, None])
