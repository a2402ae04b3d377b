"""Strided (and other non-'same') depthwise convolutions: the channels-last kernels
(``kernels_conv.dw_nhwc_*``: conv outputs are NCHW-shaped views of NHWC memory) and the
fused 3x3 pass of the NCHW plane kernel, against PyTorch: values and the input, weight and
bias gradients, float32 and float64, odd sizes and 1x1 maps, dilation 2, batch 1, 1 and 2
threads bitwise equal, and the NumPy path (EMBER_JIT=0) agreeing."""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _parallel

# (N, C, H, W), kernel, stride, padding, dilation
CASES = [
    ((2, 6, 9, 11), 3, 2, 1, 1),  # MobileNet's downsampling 3x3, odd sizes
    ((1, 5, 8, 8), 3, 2, 1, 1),  # batch 1
    ((1, 7, 9, 7), 5, 2, 2, 1),  # EfficientNet's 5x5 stride 2
    ((3, 4, 1, 1), 3, 2, 1, 1),  # 1x1 maps
    ((2, 3, 8, 6), 3, 1, 0, 1),  # stride 1, 'valid'
    ((2, 4, 10, 9), 3, 2, 2, 2),  # dilation 2
    ((2, 4, 5, 6), 3, (2, 1), (1, 0), 1),  # mixed strides, padding
    ((1, 3, 4, 4), 5, 3, 2, 1),  # stride 3, kernel larger than the map
    ((2, 7, 13, 13), 5, 1, 2, 1),  # 5x5 'same'
]


def _layout(a, layout):
    return (
        np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if layout == "cl" else a
    )


def _data(shape, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, k, k)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    return x, w, b, rng


def _run_ember(x, w, b, g, s, p, d, layout):
    xe = ember.from_numpy(_layout(x, layout)).requires_grad_()
    we = ember.tensor(w, requires_grad=True)
    be = None if b is None else ember.tensor(b, requires_grad=True)
    y = F.conv2d(xe, we, be, stride=s, padding=p, dilation=d, groups=x.shape[1])
    y.backward(ember.from_numpy(_layout(g, layout)))
    res = [y.detach().numpy(), xe.grad.numpy(), we.grad.numpy()]
    return res + ([be.grad.numpy()] if b is not None else [])


def _run_torch(x, w, b, g, s, p, d):
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=x.shape[1])
    y.backward(torch.tensor(g))
    res = [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()]
    return res + ([bt.grad.numpy()] if b is not None else [])


def _out_shape(x, w, s, p, d):
    y = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), stride=s, padding=p, dilation=d, groups=x.shape[1]
    )
    return tuple(y.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("bias", [False, True])
def test_depthwise_matches_torch(case, dtype, layout, bias):
    shape, k, s, p, d = case
    x, w, b, rng = _data(shape, k, dtype)
    g = rng.standard_normal(_out_shape(x, w, s, p, d)).astype(dtype)
    got = _run_ember(x, w, b if bias else None, g, s, p, d, layout)
    ref = _run_torch(x, w, b if bias else None, g, s, p, d)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    for name, a, r in zip(("y", "gx", "gw", "gb"), got, ref):
        assert a.shape == r.shape, name
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol, err_msg=name)


def test_channels_last_input_from_a_1x1_conv_takes_the_nhwc_kernel(monkeypatch):
    """A 1x1 conv's output is channels-last memory: the strided depthwise conv after it
    runs the channels-last kernels (no padded or transposed copy), with PyTorch's values."""
    calls = []
    real = jit.get

    def spy(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(jit, "get", spy)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 11, 11)).astype(np.float32)
    w1 = rng.standard_normal((12, 8, 1, 1)).astype(np.float32)
    wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
    # (a 1x1 conv of an NCHW input stays NCHW; of a channels-last one, channels-last)
    xe = ember.from_numpy(_layout(x, "cl")).requires_grad_()
    w1e, wde = (ember.tensor(a, requires_grad=True) for a in (w1, wd))
    h = F.conv2d(xe, w1e)
    assert h.detach().numpy().transpose(0, 2, 3, 1).flags.c_contiguous
    y = F.conv2d(h, wde, stride=2, padding=1, groups=12)
    g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(ember.from_numpy(_layout(g, "cl")))  # (the gradient of a channels-last op)
    xt, w1t, wdt = (torch.tensor(a, requires_grad=True) for a in (x, w1, wd))
    yt = torch.nn.functional.conv2d(
        torch.nn.functional.conv2d(xt, w1t), wdt, stride=2, padding=1, groups=12
    )
    yt.backward(torch.tensor(g))
    for a, r in ((y, yt), (xe.grad, xt.grad), (w1e.grad, w1t.grad), (wde.grad, wdt.grad)):
        np.testing.assert_allclose(a.detach().numpy(), r.detach().numpy(), rtol=2e-4, atol=2e-4)
    if jit.available():
        assert {"dw_nhwc_fwd", "dw_nhwc_grad_input", "dw_nhwc_grad_weight"} <= set(calls)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3], CASES[6]])
def test_layouts_give_equal_forward_values(case, dtype):
    """Both layouts group a 3x3 or 5x5 window's sums the same way (bias, then one group per
    tap row): channels-last and NCHW outputs agree to the last bit for 3x3 kernels."""
    shape, k, s, p, d = case
    x, w, b, _ = _data(shape, k, dtype)
    args = (ember.tensor(w), ember.tensor(b))
    kw = {"stride": s, "padding": p, "dilation": d, "groups": shape[1]}
    planes = F.conv2d(ember.from_numpy(x), *args, **kw).numpy()
    last = F.conv2d(ember.from_numpy(_layout(x, "cl")), *args, **kw).numpy()
    if jit.available() and k == 3 and min(shape[2:]) > 1:
        np.testing.assert_array_equal(last, planes)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(last, planes, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(4, 32, 15, 13), (1, 16, 21, 9), (10, 8, 6, 7)])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_one_and_two_threads_bitwise_equal(shape, k, layout, monkeypatch):
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    x, w, b, rng = _data(shape, k, np.float32)
    g = rng.standard_normal(_out_shape(x, w, 2, k // 2, 1)).astype(np.float32)
    old = ember.get_num_threads()
    try:
        runs = []
        for t in (1, 2):
            ember.set_num_threads(t)
            runs.append(_run_ember(x, w, b, g, 2, k // 2, 1, layout))
    finally:
        ember.set_num_threads(old)
    for a, r in zip(*runs):
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_numpy_path_agrees(layout):
    """With the compiled kernels off (EMBER_JIT=0) the same ops give the same values."""
    shape, k, s, p, d = CASES[2]
    x, w, b, rng = _data(shape, k, np.float64)
    g = rng.standard_normal(_out_shape(x, w, s, p, d))
    on = _run_ember(x, w, b, g, s, p, d, layout)
    old = jit.set_enabled(False)
    try:
        off = _run_ember(x, w, b, g, s, p, d, layout)
    finally:
        jit.set_enabled(old)
    for a, r in zip(on, off):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_empty_batch():
    x = ember.zeros((0, 4, 7, 7)).permute(0, 1, 2, 3)
    y = F.conv2d(x, ember.zeros((4, 1, 3, 3)), stride=2, padding=1, groups=4)
    assert tuple(y.shape) == (0, 4, 4, 4)
