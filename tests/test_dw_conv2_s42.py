"""Strided NCHW depthwise convolutions on channel planes (``kernels_conv.dw_planes_*``): the
3x3 stride-2 forward read from the padded plane (no phase planes), the stride-2 column-phase
split and merge of the gradients, and the plain row copies. Values and the input, weight and
bias gradients against PyTorch (float32 and float64, odd and even widths, paddings 0-2,
batch 1), NCHW and channels-last results bitwise equal where both sum in the same order,
1 and 2 threads bitwise equal, and the NumPy path (EMBER_JIT=0) agreeing."""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _parallel

# (N, C, H, W), kernel, stride, padding
CASES = [
    ((2, 5, 9, 11), 3, 2, 1),  # odd width
    ((4, 4, 10, 12), 3, 2, 1),  # even width (4 images: planes grad weight)
    ((4, 6, 7, 8), 3, 2, 0),  # no padding: even columns in phase 0
    ((4, 3, 9, 10), 3, 2, 2),  # padding 2
    ((4, 4, 11, 9), 3, 2, (1, 0)),  # mixed padding
    ((4, 5, 12, 13), 5, 2, 2),  # 5x5 stride 2 (phase planes)
    ((1, 3, 2, 3), 3, 2, 1),  # maps smaller than the kernel's reach
    ((3, 6, 14, 14), 3, 1, 1),  # 3x3 'same' (row copies)
    ((2, 4, 9, 8), 5, 1, 0),  # 5x5 'valid'
]


def _cl(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _data(shape, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, k, k)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    return x, w, b, rng


def _grad_shape(x, w, s, p):
    return tuple(
        torch.nn.functional.conv2d(
            torch.tensor(x), torch.tensor(w), stride=s, padding=p, groups=x.shape[1]
        ).shape
    )


def _run_ember(x, w, b, g, s, p, channels_last=False):
    xe = ember.from_numpy(_cl(x) if channels_last else x).requires_grad_()
    we = ember.tensor(w, requires_grad=True)
    be = ember.tensor(b, requires_grad=True)
    y = F.conv2d(xe, we, be, stride=s, padding=p, groups=x.shape[1])
    y.backward(ember.from_numpy(_cl(g) if channels_last else g))
    return [y.detach().numpy(), xe.grad.numpy(), we.grad.numpy(), be.grad.numpy()]


def _run_torch(x, w, b, g, s, p):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p, groups=x.shape[1])
    y.backward(torch.tensor(g))
    return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_torch(case, dtype):
    shape, k, s, p = case
    x, w, b, rng = _data(shape, k, dtype)
    g = rng.standard_normal(_grad_shape(x, w, s, p)).astype(dtype)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    for a, r, what in zip(
        _run_ember(x, w, b, g, s, p), _run_torch(x, w, b, g, s, p), ("y", "gx", "gw", "gb")
    ):
        assert a.dtype == dtype, what
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()))


def test_planes_kernels_run_for_nchw_inputs(monkeypatch):
    """The cases above take the plane kernels (what this file is about)."""
    calls = []
    get_for = jit.get_for

    def spy(name, dtype):
        calls.append(name)
        return get_for(name, dtype)

    monkeypatch.setattr(jit, "get_for", spy)
    shape, k, s, p = CASES[0]
    x, w, b, rng = _data((4, *shape[1:]), k, np.float32)
    g = rng.standard_normal(_grad_shape(x, w, s, p)).astype(np.float32)
    _run_ember(x, w, b, g, s, p)
    assert {"dw_planes_fwd", "dw_planes_grad_input", "dw_planes_grad_weight"} <= set(calls)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [c for c in CASES if c[2] == 2])
def test_nchw_and_channels_last_agree_bitwise(case, dtype):
    """The 3x3 stride-2 forward sums bias, then one group per tap row, as the channels-last
    kernel does; the strided input gradients of both layouts add the taps in the same order
    from zero: equal to the last bit (5x5 forwards group their rows differently)."""
    shape, k, s, p = case
    x, w, b, rng = _data(shape, k, dtype)
    g = rng.standard_normal(_grad_shape(x, w, s, p)).astype(dtype)
    planes = _run_ember(x, w, b, g, s, p)
    last = _run_ember(x, w, b, g, s, p, channels_last=True)
    if jit.available():
        if k == 3:
            np.testing.assert_array_equal(last[0], planes[0])
        np.testing.assert_array_equal(last[1], planes[1])
    for a, r in zip(last, planes):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5], CASES[7]])
def test_one_and_two_threads_bitwise_equal(case, monkeypatch):
    """Channel blocks come from the shape: 1 and 2 threads give the same bits."""
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    shape, k, s, p = case
    x, w, b, rng = _data((5, 17, *shape[2:]), k, np.float32)
    g = rng.standard_normal(_grad_shape(x, w, s, p)).astype(np.float32)
    old = ember.get_num_threads()
    try:
        runs = []
        for t in (1, 2):
            ember.set_num_threads(t)
            runs.append(_run_ember(x, w, b, g, s, p))
    finally:
        ember.set_num_threads(old)
    for a, r in zip(*runs):
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("case", [CASES[1], CASES[3]])
def test_numpy_path_agrees(case):
    """With the compiled kernels off (EMBER_JIT=0) the same ops give the same values."""
    shape, k, s, p = case
    x, w, b, rng = _data(shape, k, np.float64)
    g = rng.standard_normal(_grad_shape(x, w, s, p))
    on = _run_ember(x, w, b, g, s, p)
    old = jit.set_enabled(False)
    try:
        off = _run_ember(x, w, b, g, s, p)
    finally:
        jit.set_enabled(old)
    for a, r in zip(on, off):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_non_contiguous_input():
    """A sliced (non-contiguous) NCHW input: the kernels get a contiguous copy."""
    x, w, b, rng = _data((2, 8, 13, 16), 3, np.float32)
    xs = x[:, ::2, :, 1:]
    wv, bv = w[::2], b[::2]
    g = rng.standard_normal(_grad_shape(np.ascontiguousarray(xs), wv, 2, 1)).astype(np.float32)
    xe = ember.from_numpy(xs).requires_grad_()
    y = F.conv2d(xe, ember.tensor(wv), ember.tensor(bv), stride=2, padding=1, groups=4)
    y.backward(ember.from_numpy(g))
    xt = torch.tensor(np.ascontiguousarray(xs), requires_grad=True)
    yt = torch.nn.functional.conv2d(
        xt, torch.tensor(wv), torch.tensor(bv), stride=2, padding=1, groups=4
    )
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=2e-5)


def test_work_counts_the_moved_elements():
    """Plane kernels move every element: a big map with few multiply-adds (8x144x56x56 3x3
    stride 2: 8.1M, under the default ``PAR_MIN_WORK`` of 8.4M) counts 16 per element."""
    from ember.ops._conv_depthwise import _dw_work

    big, out = np.empty((8, 144, 56, 56), np.float32), np.empty((8, 144, 28, 28), np.float32)
    assert _dw_work(8 * 144 * 28 * 28 * 9, big, out) == 16 * (big.size + out.size)
    assert _dw_work(5, np.empty((2, 3, 4, 4))) == 16 * 96
    assert _dw_work(1 << 30, np.empty(3)) == 1 << 30
