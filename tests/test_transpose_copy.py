"""The tiled transposed copy (``ember.ops._layout.c_order``): exact copies for float32 and
float64 at aliasing and other strides, on one and two threads, through ``contiguous()`` and
the row kernels."""

import numpy as np
import pytest
import torch

import ember
from ember.ops._layout import c_order

SHAPES = [(1024, 64), (64, 1024), (1024, 1024), (1030, 1024), (1024, 70), (100, 2048), (300, 200)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_c_order_of_a_transposed_matrix_is_an_exact_copy(shape, dtype):
    src = np.random.default_rng(0).standard_normal(shape[::-1]).astype(dtype)
    x = src.T  # (shape) with source rows shape[0] elements apart
    got = c_order(x)
    assert got.flags.c_contiguous and got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, x)
    assert not np.shares_memory(got, src)


def test_c_order_passes_other_arrays_to_numpy():
    a = np.arange(12.0).reshape(3, 4)
    assert c_order(a) is a
    ints = np.arange(4096 * 32).reshape(32, 4096).T  # ints: NumPy's copy
    np.testing.assert_array_equal(c_order(ints), ints)
    sl = np.ones((1024, 2048), np.float32)[:, ::2].T  # not unit-stride: NumPy's copy
    np.testing.assert_array_equal(c_order(sl), sl)
    as64 = c_order(np.ones((1024, 1024), np.float32).T, np.float64)
    assert as64.dtype == np.float64 and as64.flags.c_contiguous


@pytest.mark.parametrize("threads", [1, 2])
def test_contiguous_and_row_kernels_on_transposed_tensors(threads):
    old = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:
        x = np.random.default_rng(1).standard_normal((1024, 96)).astype(np.float32)
        e, t = ember.tensor(x).t(), torch.tensor(x).t()
        c = e.contiguous()
        assert c.is_contiguous() and c.stride() == t.contiguous().stride()
        np.testing.assert_array_equal(c.numpy(), t.contiguous().numpy())
        np.testing.assert_allclose(
            e.softmax(-1).numpy(), t.softmax(-1).numpy(), rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(e.sum(-1).numpy(), t.sum(-1).numpy(), rtol=1e-5, atol=1e-4)
    finally:
        ember.set_num_threads(old)
