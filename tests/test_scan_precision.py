"""cumsum / cumprod accumulate as PyTorch's CPU scans (float32 in float64, float16 and
bfloat16 in float32, complex64 in complex128): bitwise equal results."""

import numpy as np
import pytest
import torch

import ember

DTYPES = [
    (ember.float32, torch.float32),
    (ember.float16, torch.float16),
    (ember.bfloat16, torch.bfloat16),
    (ember.float64, torch.float64),
]


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize(("edt", "tdt"), DTYPES)
@pytest.mark.parametrize("dim", [0, 1])
def test_bitwise_equal_to_torch(op, edt, tdt, dim):
    rng = np.random.default_rng(3)
    x = (rng.random((300, 7)) + (0.5 if op == "cumprod" else 0.0)).astype(np.float32)
    if op == "cumprod":
        x = x[:40]
    t = getattr(torch, op)(torch.from_numpy(x).to(tdt), dim).to(torch.float64).numpy()
    e = getattr(ember, op)(ember.from_numpy(x).to(edt), dim).to(ember.float64).numpy()
    np.testing.assert_array_equal(e, t)


def test_long_float32_cumsum_matches_float64_rounding():
    x = np.random.default_rng(0).random(200_000).astype(np.float32)
    got = ember.cumsum(ember.from_numpy(x), 0).numpy()
    np.testing.assert_array_equal(got, np.cumsum(x.astype(np.float64)).astype(np.float32))
    np.testing.assert_array_equal(got, torch.cumsum(torch.from_numpy(x), 0).numpy())


def test_complex64_and_overflow_then_zero():
    rng = np.random.default_rng(1)
    z = (rng.random(500) + 1j * rng.random(500)).astype(np.complex64)
    np.testing.assert_array_equal(
        ember.cumsum(ember.from_numpy(z), 0).numpy(), torch.cumsum(torch.from_numpy(z), 0).numpy()
    )
    p = [1e30, 1e30, 0.0]
    np.testing.assert_array_equal(
        ember.cumprod(ember.tensor(p), 0).numpy(), torch.cumprod(torch.tensor(p), 0).numpy()
    )


def test_gradients_unchanged():
    x = ember.tensor([[0.5, 2.0, 0.0], [1.5, -1.0, 3.0]], requires_grad=True)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    (ember.cumsum(x, 1) * ember.cumprod(x, 1)).sum().backward()
    (torch.cumsum(tx, 1) * torch.cumprod(tx, 1)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "dim"),
    [((10, 10000, 10), 1), ((20000, 7), 0), ((5, 3000, 4, 6), (1, 2)), ((3000, 2, 2), (0, 1))],
)
@pytest.mark.parametrize("op", ["sum", "mean", "nansum"])
def test_sums_over_long_strided_axes_keep_torch_accuracy(shape, dim, op):
    # NumPy adds the rows of a non-contiguous reduction one by one (error ~ n eps); Ember sums
    # blocks of rows first, which keeps the error at the order of PyTorch's cascade sum
    x = np.random.default_rng(4).random(shape).astype(np.float32)
    ref = getattr(np, op)(x.astype(np.float64), axis=dim)
    got = getattr(ember, op)(ember.from_numpy(x), dim).numpy()
    want = getattr(torch, op)(torch.from_numpy(x), dim).numpy()
    assert got.shape == want.shape and got.dtype == np.float32
    err = np.max(np.abs(got - ref) / np.abs(ref))
    torch_err = np.max(np.abs(want - ref) / np.abs(ref))
    assert err < max(10 * torch_err, 1e-6), (err, torch_err)


def test_blocked_sum_keepdim_gradient_and_small_cases():
    x = ember.from_numpy(np.random.default_rng(5).random((600, 3, 4)).astype(np.float32))
    x.requires_grad_(True)
    y = x.sum((0, 1), keepdim=True)
    assert tuple(y.shape) == (1, 1, 4)
    (y * ember.arange(4.0)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.broadcast_to(np.arange(4.0), (600, 3, 4)))
    small = np.arange(12, dtype=np.float32).reshape(4, 3)  # (fewer than two blocks: NumPy's)
    np.testing.assert_array_equal(ember.from_numpy(small).sum(0).numpy(), small.sum(0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "dim"), [((64, 600, 16), 1), ((1, 20000, 4), 1), ((3, 70, 50, 9), (1, 2))]
)
def test_mid_axis_sums_threads_bitwise_and_torch(shape, dim, dtype):
    x = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    before = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = ember.from_numpy(x).sum(dim).numpy()
        ember.set_num_threads(2)
        two = ember.from_numpy(x).sum(dim).numpy()
    finally:
        ember.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(one, torch.from_numpy(x).sum(dim).numpy(), rtol=rtol, atol=rtol)
    # a non-contiguous input (NumPy's own reduction) gives the same values within rounding
    xt = np.ascontiguousarray(x.swapaxes(0, -1)).swapaxes(0, -1)
    got = ember.from_numpy(xt).mean(dim).numpy()
    np.testing.assert_allclose(got, x.mean(axis=dim), rtol=rtol, atol=rtol)
