"""Convolution and pooling kernels against PyTorch: every kernel path, values and gradients.

Each case runs through ``conv2d`` forward and backward (input, weight and bias gradients)
in float32 and float64, with the input laid out NCHW, channels-last (as conv outputs are)
and non-contiguous, with the compiled kernels on and off. The paths covered: im2col + GEMM
(3x3, 5x5 'valid', strided, dilated, grouped), Winograd F(2x2, 3x3) (3x3 stride 1, many
channels), col2im input gradients, 1x1 kernels (strided: subsampled), few-channel "plane" im2col,
depthwise kernels on channel planes (NCHW) and on channels-last images, single images split
over rows or channels. Results must not depend on the thread count (bitwise).
"""

from functools import partial

import numpy as np
import pytest
import torch
from _f32_bounds import EPS32, assert_within, multilinear_bound

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _parallel

PATHS = ["numpy"] + (["jit"] if jit.available() or not jit._enabled else [])


@pytest.fixture(params=PATHS)
def path(request):
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


# (N, C, H, W, O, kernel, stride, padding, dilation, groups)
CASES = {
    "3x3_pad1": (2, 5, 7, 9, 6, 3, 1, 1, 1, 1),
    "5x5_valid": (3, 4, 11, 10, 5, 5, 1, 0, 1, 1),
    "1x1": (2, 7, 5, 6, 3, 1, 1, 0, 1, 1),
    "1x1_stride2": (2, 7, 9, 6, 4, 1, 2, 0, 1, 1),
    "1x1_batch1": (1, 9, 17, 13, 5, 1, 1, 0, 1, 1),
    "1x1_batch9": (9, 3, 4, 5, 6, 1, 1, 0, 1, 1),
    "3x3_stride2": (3, 6, 9, 11, 5, 3, 2, 1, 1, 1),
    "dilated": (2, 4, 10, 9, 3, 3, 1, 2, 2, 1),
    "same_even": (2, 3, 8, 7, 4, (2, 4), 1, "same", 1, 1),
    "grouped": (2, 6, 7, 7, 4, 3, 1, 1, 1, 2),
    "one_channel_5x5": (3, 1, 12, 12, 6, 5, 1, 2, 1, 1),
    "batch1": (1, 16, 12, 12, 16, 3, 1, 1, 1, 1),
    "batch1_5x5_valid": (1, 8, 13, 12, 9, 5, 1, 0, 1, 1),
    "winograd": (2, 64, 6, 8, 64, 3, 1, 1, 1, 1),
    "winograd_odd_batch1": (1, 64, 9, 7, 72, 3, 1, 1, 1, 1),
    "winograd_wide": (2, 128, 5, 4, 128, 3, 1, 1, 1, 1),
    "winograd_valid": (2, 64, 7, 6, 64, 3, 1, 0, 1, 1),
    "depthwise": (2, 6, 9, 8, 6, 3, 1, 1, 1, 6),
    "depthwise_stride2": (2, 5, 9, 10, 5, 3, 2, 1, 1, 5),
    "depthwise_stride3_asym": (2, 3, 11, 8, 3, (3, 2), (3, 2), (2, 1), 1, 3),
    "depthwise_mult2_dilated": (2, 3, 7, 7, 6, 3, 1, 2, 2, 3),
    "depthwise_5x5_valid": (1, 4, 9, 9, 4, 5, 1, 0, 1, 4),
    "depthwise_batch1": (1, 8, 6, 5, 8, 3, 1, 1, 1, 8),
    # col2im input gradients: one run of kw*C per kernel row (stride 1 or 2 along rows),
    # runs of C per offset (grouped, dilated along the width)
    "col2im_5x5_valid_16ch": (2, 16, 10, 9, 7, 5, 1, 0, 1, 1),
    "col2im_stride2x1_valid": (2, 7, 9, 10, 3, 3, (2, 1), 0, 1, 1),
    "col2im_grouped_stride2": (2, 12, 9, 11, 8, 3, 2, 0, 1, 2),
    "col2im_dilated_valid": (2, 8, 12, 11, 5, 3, 1, 0, (1, 2), 1),
    # fewer than 8 images: col2im in blocks of input channels (uneven last block), 1x1
    # weight gradients in blocks of pixels
    "col2im_batch1_channel_blocks": (1, 136, 7, 6, 6, 3, 2, 1, 1, 1),
    "col2im_batch3_5x5_valid_channel_blocks": (3, 130, 7, 8, 5, 5, 1, 0, 1, 1),
    "1x1_batch2_pixel_blocks": (2, 5, 13, 11, 40, 1, 1, 0, 1, 1),
}


# every case in both dtypes and all three input layouts (not all six pairs: time)
LAYOUT_DTYPES = [("nchw", np.float32), ("nhwc", np.float64), ("strided", np.float32)]


def _layout(x, layout):
    if layout == "nhwc":  # channels-last, as a conv's output
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "strided":  # every other column of a wider array
        wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return np.ascontiguousarray(x)


def _data(case, dtype, seed=0):
    n, c, h, w, o, k, stride, padding, dilation, groups = case
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    kw_ = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return x, wt, b, kw_


def _ember_run(x, w, b, kw, g=None):
    xe = ember.from_numpy(x).requires_grad_()
    we, be = ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)
    y = F.conv2d(xe, we, be, **kw)
    if g is None:
        return y
    y.backward(ember.tensor(g))
    return y.detach().numpy(), xe.grad.numpy(), we.grad.numpy(), be.grad.numpy()


@pytest.mark.parametrize("layout,dtype", LAYOUT_DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_conv2d_matches_torch(path, name, layout, dtype):
    x, w, b, kw = _data(CASES[name], dtype)
    x = _layout(x, layout)
    y = _ember_run(x, w, b, kw)
    g = np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(dtype)
    got = _ember_run(x, w, b, kw, g)
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kw)
    yt.backward(torch.tensor(g))
    ref = (yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy())
    bounds = multilinear_bound(partial(torch.nn.functional.conv2d, **kw), (x, w, b), g)
    scale = 1.0 if dtype == np.float32 else np.finfo(np.float64).eps / EPS32
    for what, a, r, bound in zip(
        ("output", "grad input", "grad weight", "grad bias"), got, ref, bounds
    ):
        assert a.dtype == dtype, what
        assert a.shape == r.shape, what
        assert_within(a, r, bound * scale, f"{name} {layout} {what}")


@pytest.mark.parametrize("name", ["3x3_pad1", "depthwise_stride2", "depthwise_mult2_dilated"])
def test_conv2d_double_backward_matches_torch(path, name):
    """Gradients of gradients: the adjoint primitives (grad input, grad weight) on every path."""
    x, w, _, kw = _data(CASES[name], np.float64)
    out = []
    for lib in (ember, torch):
        xs = lib.tensor(x, requires_grad=True)
        ws = lib.tensor(w, requires_grad=True)
        y = lib.nn.functional.conv2d(xs, ws, **kw)
        gx, gw = lib.autograd.grad((y * y).sum(), (xs, ws), create_graph=True)
        hx, hw = lib.autograd.grad((gx * gx).sum() + (gw * gw).sum(), (xs, ws))
        out.append([t.detach().numpy() for t in (gx, gw, hx, hw)])
    for a, r in zip(*out):
        np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-9)


# big enough that the block loops go parallel (every path: GEMM, planes, depthwise, rows)
THREAD_CASES = {
    "3x3": (8, 16, 12, 12, 16, 3, 1, 1, 1, 1),
    "5x5_valid": (8, 6, 14, 14, 16, 5, 1, 0, 1, 1),
    "grouped_stride2_col2im": (8, 12, 11, 11, 8, 3, 2, 0, 1, 2),
    "stride2": (8, 16, 12, 12, 16, 3, 2, 1, 1, 1),
    "1x1": (3, 16, 20, 20, 24, 1, 1, 0, 1, 1),
    "1x1_batch12": (12, 16, 5, 5, 24, 1, 1, 0, 1, 1),
    "batch1": (1, 32, 16, 16, 32, 3, 1, 1, 1, 1),
    "batch1_stride2_col2im": (1, 136, 9, 9, 16, 3, 2, 1, 1, 1),
    "batch1_1x1": (1, 16, 17, 16, 40, 1, 1, 0, 1, 1),
    "winograd": (8, 64, 6, 6, 64, 3, 1, 1, 1, 1),
    "winograd_batch1": (1, 64, 16, 16, 64, 3, 1, 1, 1, 1),
    "depthwise": (4, 32, 13, 13, 32, 3, 1, 1, 1, 32),
    "depthwise_stride2": (1, 32, 13, 13, 64, 3, 2, 1, 1, 32),
}


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("name", list(THREAD_CASES))
def test_conv2d_one_and_two_threads_bitwise_equal(path, name, layout, monkeypatch):
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)  # parallel even for small shapes
    x, w, b, kw = _data(THREAD_CASES[name], np.float32)
    x = _layout(x, layout)
    g = np.random.default_rng(2).standard_normal(tuple(_ember_run(x, w, b, kw).shape))
    g = g.astype(np.float32)
    old = ember.get_num_threads()
    try:
        runs = []
        for t in (1, 2):
            ember.set_num_threads(t)
            runs.append(_ember_run(x, w, b, kw, g))
    finally:
        ember.set_num_threads(old)
    for a, r in zip(*runs):
        np.testing.assert_array_equal(a, r)


def test_conv2d_jit_and_numpy_paths_agree():
    """The compiled depthwise kernels and the NumPy path compute the same sums (to rounding)."""
    if not jit.available():
        pytest.skip("numba (the [jit] extra) is not installed or EMBER_JIT=0")
    x, w, b, kw = _data(CASES["depthwise_stride3_asym"], np.float64)
    g = np.random.default_rng(3).standard_normal(tuple(_ember_run(x, w, b, kw).shape))
    res = []
    for flag in (True, False):
        old = jit.set_enabled(flag)
        try:
            res.append(_ember_run(x, w, b, kw, g))
        finally:
            jit.set_enabled(old)
    for a, r in zip(*res):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_conv2d_bad_inputs_name_the_problem():
    x = ember.zeros((2, 4, 5, 5))
    with pytest.raises(Exception, match="channels"):
        F.conv2d(x, ember.zeros((3, 3, 3, 3)))
    with pytest.raises(Exception, match="too small"):
        F.conv2d(x, ember.zeros((3, 4, 7, 7)))
    with pytest.raises(Exception, match="groups|channels"):
        F.conv2d(x, ember.zeros((3, 1, 3, 3)), groups=3)


# -- pooling -------------------------------------------------------------------------------
POOLS = {
    "max2x2": ("max", (3, 5, 9, 8), 2, 2, 0),
    "max3x3_s2_p1": ("max", (2, 17, 9, 11), 3, 2, 1),
    "max2x2_many_channels": ("max", (2, 32, 8, 6), 2, 2, 0),
    "avg2x2": ("avg", (3, 5, 9, 8), 2, 2, 0),
    "avg3x3_s1_p1": ("avg", (2, 17, 7, 6), 3, 1, 1),
}


@pytest.mark.parametrize("layout,dtype", LAYOUT_DTYPES)
@pytest.mark.parametrize("name", list(POOLS))
def test_pooling_matches_torch(path, name, layout, dtype):
    kind, shape, k, s, p = POOLS[name]
    rng = np.random.default_rng(4)
    x = _layout(rng.standard_normal(shape).astype(dtype), layout)
    res = []
    for lib in (ember, torch):
        xs = lib.tensor(np.ascontiguousarray(x), requires_grad=True)
        if lib is ember:
            xs = ember.from_numpy(x).requires_grad_()
        fn = lib.nn.functional.max_pool2d if kind == "max" else lib.nn.functional.avg_pool2d
        y = fn(xs, k, s, p)
        g = rng.standard_normal(tuple(y.shape)).astype(dtype) if not res else res[0][2]
        y.backward(lib.tensor(g))
        res.append((y.detach().numpy(), xs.grad.numpy(), g))
    (ye, gxe, _), (yt, gxt, _) = res
    assert ye.dtype == dtype and gxe.dtype == dtype
    np.testing.assert_allclose(ye, yt, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gxe, gxt, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,o,kernel,padding,dilation",
    [((64, 1, 28, 28), 6, (5, 5), 2, 1), ((5, 3, 17, 19), 7, (3, 3), 1, 2),
     ((3, 1, 6, 40), 5, (2, 3), (1, 0), (1, 2)), ((1, 2, 9, 9), 33, (3, 3), 0, 1)],
)  # fmt: skip
def test_few_channel_convolution_kernels(shape, o, kernel, padding, dilation, dtype):
    """A few-channel convolution (a first layer: C * kw < 16) runs the compiled wide-row
    loops (kernels_conv.conv_planes_fwd / conv_planes_grad_weight): PyTorch's values and
    gradients, one and two threads bitwise alike."""
    rng = np.random.default_rng(o)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((o, shape[1]) + kernel).astype(dtype)

    def run():
        xe, we = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
        y = F.conv2d(xe, we, None, 1, padding, dilation)
        g = np.linspace(-1, 1, y.numel()).reshape(y.shape).astype(dtype)
        y.backward(ember.tensor(g))
        return y.detach().numpy(), we.grad.numpy(), xe.grad.numpy(), g

    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = run()
        ember.set_num_threads(2)
        two = run()
    finally:
        ember.set_num_threads(old)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, None, 1, padding, dilation)
    yt.backward(torch.tensor(two[3]))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(two[:3], (yt.detach().numpy(), wt.grad.numpy(), xt.grad.numpy())):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    if jit.parallel_available():
        assert {"conv_planes_fwd", "conv_planes_grad_weight"} <= set(jit._parallel_compiled)
