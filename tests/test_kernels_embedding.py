"""The embedding backward (a scatter-add of gradient rows into the table) against PyTorch:
the compiled row kernel over a stable sort of the indices, float32 and float64, repeated
and absent indices, 1-D to 3-D index arrays, padding_idx, non-contiguous upstream
gradients, and results bitwise the same on 1 and 2 threads and equal to the NumPy path."""

import numpy as np
import pytest
import torch

import ember
from ember.backends import jit
from ember.ops import _parallel

CASES = [((7,), 5, 3), ((4, 9), 11, 16), ((2, 3, 5), 40, 33), ((64,), 3, 8)]


def _grads(lib, idx, w, g, padding_idx=None):
    ws = lib.tensor(w, requires_grad=True)
    y = lib.nn.functional.embedding(lib.tensor(idx), ws, padding_idx=padding_idx)
    y.backward(lib.tensor(g) if lib is torch else ember.from_numpy(g))
    return ws.grad.numpy()


def _data(ishape, num, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num, ishape)
    w = rng.standard_normal((num, d)).astype(dtype)
    g = rng.standard_normal(ishape + (d,)).astype(dtype)
    return idx, w, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_grad_matches_torch(case, dtype, padding_idx):
    idx, w, g = _data(*case, dtype)
    got = _grads(ember, idx, w, g, padding_idx)
    ref = _grads(torch, idx, w, np.ascontiguousarray(g), padding_idx)
    assert got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_embedding_grad_non_contiguous_upstream():
    idx, w, g = _data((6, 5), 9, 12, np.float32)
    gt = np.ascontiguousarray(g.transpose(1, 0, 2)).transpose(1, 0, 2)  # same values, strided
    np.testing.assert_allclose(
        _grads(ember, idx, w, gt), _grads(torch, idx, w, g), rtol=1e-5, atol=1e-5
    )


def test_embedding_grad_one_and_two_threads_bitwise_equal(monkeypatch):
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    idx, w, g = _data((8, 50), 37, 70, np.float32, seed=3)
    old = ember.get_num_threads()
    try:
        runs = []
        for t in (1, 2):
            ember.set_num_threads(t)
            runs.append(_grads(ember, idx, w, g))
    finally:
        ember.set_num_threads(old)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_embedding_grad_numpy_path_agrees():
    idx, w, g = _data((5, 30), 13, 9, np.float64, seed=4)
    on = _grads(ember, idx, w, g)
    old = jit.set_enabled(False)
    try:
        off = _grads(ember, idx, w, g)
    finally:
        jit.set_enabled(old)
    np.testing.assert_allclose(on, off, rtol=1e-13, atol=1e-13)


def test_embedding_out_of_range_index_names_the_problem():
    w = ember.zeros((4, 3), requires_grad=True)
    with pytest.raises(Exception, match="index|range|bounds"):
        ember.nn.functional.embedding(ember.tensor([0, 4]), w)
