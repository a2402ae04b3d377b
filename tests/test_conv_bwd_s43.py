"""conv2d forward and all three gradients (input, weight, bias) against PyTorch for the
shapes of the strided, 5x5, 1x1 and batch-1 cases (small versions), on the compiled and the
NumPy paths, and bitwise equal on one and two threads."""

import numpy as np
import pytest
import torch

import ember
from ember.backends import jit

PATHS = ["numpy"] + (["jit"] if jit.available() else [])


@pytest.fixture(params=PATHS)
def path(request):
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


# (x shape, w shape, stride, padding, dilation, groups)
CASES = [
    ((3, 8, 9, 11), (16, 8, 3, 3), 2, 1, 1, 1),  # strided, odd input sizes
    ((2, 6, 13, 12), (8, 6, 5, 5), 1, 0, 1, 1),  # 5x5 'valid'
    ((3, 8, 7, 9), (12, 8, 1, 1), 1, 0, 1, 1),  # 1x1
    ((1, 16, 10, 9), (16, 16, 3, 3), 1, 1, 1, 1),  # batch of one
    ((2, 8, 11, 10), (6, 8, 3, 3), 1, 2, 2, 1),  # dilation
    ((2, 8, 9, 9), (10, 4, 3, 3), 2, 1, 1, 2),  # groups=2, stride 2
    ((2, 4, 12, 13), (8, 4, 5, 5), 2, 2, 1, 1),  # 5x5 stride 2
]


def _run(lib, x, w, b, g, s, p, d, groups, channels_last=False):
    X = lib.from_numpy(x.copy(order="K"))  # (keeps a channels-last layout)
    if channels_last:
        X = X.contiguous(memory_format=lib.channels_last) if lib is torch else X
    X = X.requires_grad_()
    W = lib.tensor(w).requires_grad_()
    B = lib.tensor(b).requires_grad_()
    y = lib.nn.functional.conv2d(X, W, B, stride=s, padding=p, dilation=d, groups=groups)
    y.backward(lib.tensor(g))
    return [np.asarray(t.detach().numpy()) for t in (y, X.grad, W.grad, B.grad)]


def _data(case, dtype, seed=0):
    xs, ws, s, p, d, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) * 0.2).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    ho = (xs[2] + 2 * p - d * (ws[2] - 1) - 1) // s + 1
    wo = (xs[3] + 2 * p - d * (ws[3] - 1) - 1) // s + 1
    g = rng.standard_normal((xs[0], ws[0], ho, wo)).astype(dtype)
    return x, w, b, g


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_value_and_grads_match_torch(path, case, dtype):
    x, w, b, g = _data(case, dtype)
    _, _, s, p, d, groups = case
    got = _run(ember, x, w, b, g, s, p, d, groups)
    ref = _run(torch, x, w, b, g, s, p, d, groups)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, r in zip(got, ref):
        assert a.shape == r.shape
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES[:4])
def test_channels_last_input_matches_torch(case):
    x, w, b, g = _data(case, np.float32, seed=1)
    _, _, s, p, d, groups = case
    xcl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # NHWC memory
    got = _run(ember, xcl, w, b, g, s, p, d, groups)
    ref = _run(torch, x, w, b, g, s, p, d, groups, channels_last=True)
    for a, r in zip(got, ref):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_one_and_two_threads_bitwise(case):
    x, w, b, g = _data(case, np.float32, seed=2)
    _, _, s, p, d, groups = case
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = _run(ember, x, w, b, g, s, p, d, groups)
        ember.set_num_threads(2)
        two = _run(ember, x, w, b, g, s, p, d, groups)
    finally:
        ember.set_num_threads(old)
    for a, c in zip(one, two):
        assert np.array_equal(a, c)
