"""Per-channel sums (every axis but 1: conv bias gradients) against PyTorch: C-contiguous
NCHW-like arrays take a BLAS plane-sum path, channels-last ones another, the rest NumPy's
reduction; all must agree with PyTorch for float32 and float64, keepdim, 3-D to 5-D, odd
sizes and non-contiguous inputs, and through the conv bias gradient."""

import numpy as np
import pytest
import torch

import ember

SHAPES = [(3, 5, 17), (2, 3, 7, 9), (4, 6, 5, 5), (1, 2, 3, 4, 5), (5, 7, 1, 33)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "channels_last"])
def test_channel_sums_match_torch(shape, dtype, keepdim, layout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    if layout == "strided":
        wide = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        wide[..., ::2] = x
        xin = wide[..., ::2]
    elif layout == "channels_last":
        perm = (0,) + tuple(range(2, len(shape))) + (1,)
        inv = np.argsort(perm)
        xin = np.ascontiguousarray(x.transpose(perm)).transpose(inv)
    else:
        xin = x
    dims = (0,) + tuple(range(2, len(shape)))
    got = ember.from_numpy(xin).sum(dims, keepdim=keepdim).numpy()
    ref = torch.tensor(x).sum(dims, keepdim=keepdim).numpy()
    assert got.dtype == dtype and got.shape == ref.shape
    tol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.sqrt(x.size))


def test_channel_sums_as_conv_bias_gradient():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    grads = []
    for lib in (ember, torch):
        bs = lib.tensor(b, requires_grad=True)
        y = lib.nn.functional.conv2d(lib.tensor(x), lib.tensor(w), bs, padding=1)
        (y * y).sum().backward()
        grads.append(bs.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-3)


def test_sum_bad_dim_names_the_problem():
    with pytest.raises(Exception, match="dim|range"):
        ember.zeros((2, 3, 4)).sum((0, 5))
