"""The 3x3 'same' depthwise plane kernels (stride 1, padding 1: MobileNet's) against PyTorch:
forward, input and weight gradients, float32 and float64, odd and minimal plane sizes,
non-contiguous and channels-last inputs, single images, and 1 and 2 threads bitwise equal.
The forward kernel also matches the general plane kernel bitwise (same sums, same order)."""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _parallel

needs_jit = pytest.mark.skipif(not jit.available(), reason="numba ([jit] extra) not installed")

# (N, C, H, W): minimal 3x3 planes, thin planes, odd sizes, a MobileNet-like block
SHAPES = [(2, 3, 3, 3), (1, 4, 3, 17), (3, 2, 11, 3), (2, 5, 7, 9), (4, 6, 13, 12), (1, 8, 28, 28)]


def _run(lib, x, w, b, g):
    # ember.from_numpy keeps the array's layout (channels-last, strided): the path it takes
    if lib is ember:
        xs, gs = ember.from_numpy(x).requires_grad_(), ember.from_numpy(g)
    else:
        xs, gs = torch.tensor(np.ascontiguousarray(x), requires_grad=True), torch.tensor(g)
    ws, bs = lib.tensor(w, requires_grad=True), lib.tensor(b, requires_grad=True)
    y = lib.nn.functional.conv2d(xs, ws, bs, padding=1, groups=x.shape[1])
    y.backward(gs)
    return [t.detach().numpy() for t in (y, xs.grad, ws.grad, bs.grad)]


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, w, b, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("layout", ["nchw", "strided", "nhwc"])
def test_dw3x3_matches_torch(shape, dtype, layout):
    x, w, b, g = _data(shape, dtype)
    xin = x
    if layout == "strided":  # every other column of a wider array
        wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), dtype)
        wide[..., ::2] = x
        xin = wide[..., ::2]
    elif layout == "nhwc":
        xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    got = _run(ember, xin, w, b, g)
    ref = _run(torch, x, w, b, g)
    # the weight gradient sums N*H*W products: its tolerance grows with them
    tol = 5e-6 if dtype == np.float32 else 1e-13
    for what, a, r in zip(("output", "grad input", "grad weight", "grad bias"), got, ref):
        assert a.dtype == dtype, what
        scale = max(1.0, np.abs(r).max())
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * scale * 4, err_msg=what)


@needs_jit
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_dw3x3_forward_equals_general_plane_kernel(shape, dtype):
    x, w, b, _ = _data(shape, dtype)
    w3 = np.ascontiguousarray(w[:, 0])
    c = shape[1]
    general, special = np.empty_like(x), np.empty_like(x)
    jit.get("dw_planes_fwd")(x, w3, general, 1, 0, c, 1, 1, 1, 1, 1, 1, b, True)
    jit.get("dw3x3_fwd")(x, w3, special, 0, c, b, True)
    np.testing.assert_array_equal(special, general)


@needs_jit
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dw3x3_weight_gradient_matches_general_kernel(dtype):
    x, _, _, g = _data((3, 4, 9, 7), dtype)
    gen, spec = np.empty((4, 3, 3)), np.empty((4, 3, 3))
    jit.get("dw_planes_grad_weight")(x, g, gen, 1, 0, 4, 1, 1, 1, 1, 1, 1)
    jit.get("dw3x3_grad_weight")(x, g, spec, 0, 4)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(spec, gen, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(4, 32, 13, 13), (1, 16, 20, 9), (10, 8, 5, 6)])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_dw3x3_one_and_two_threads_bitwise_equal(shape, layout, monkeypatch):
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    x, w, b, g = _data(shape, np.float32)
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        g = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    old = ember.get_num_threads()
    try:
        runs = []
        for t in (1, 2):
            ember.set_num_threads(t)
            runs.append(_run(ember, x, w, b, g))
    finally:
        ember.set_num_threads(old)
    for a, r in zip(*runs):
        np.testing.assert_array_equal(a, r)


def test_dw3x3_numpy_path_agrees():
    """With the compiled kernels off (EMBER_JIT=0) the same op gives the same values."""
    x, w, b, g = _data((2, 5, 7, 9), np.float64)
    on = _run(ember, x, w, b, g)
    old = jit.set_enabled(False)
    try:
        off = _run(ember, x, w, b, g)
    finally:
        jit.set_enabled(old)
    for a, r in zip(on, off):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_depthwise_bad_groups_name_the_problem():
    with pytest.raises(Exception, match="channels"):
        F.conv2d(ember.zeros((1, 4, 5, 5)), ember.zeros((4, 1, 3, 3)), padding=1, groups=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES + [(2, 3, 1, 6), (1, 5, 4, 1)])
def test_dw3x3_channels_last_forward_equals_planes(shape, dtype):
    """Both layouts group the sums the same way: channels-last and NCHW outputs are equal."""
    x, w, b, _ = _data(shape, dtype)
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    args = (ember.tensor(w), ember.tensor(b))
    planes = F.conv2d(ember.from_numpy(x), *args, padding=1, groups=shape[1]).numpy()
    last = F.conv2d(ember.from_numpy(xl), *args, padding=1, groups=shape[1]).numpy()
    ref = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1, groups=shape[1]
    ).numpy()
    if jit.available() and min(shape[2:]) >= 3:
        np.testing.assert_array_equal(last, planes)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(last, ref, rtol=tol, atol=tol)
