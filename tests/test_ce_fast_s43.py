"""Cross entropy's fast path (2-D logits, no class weights, no smoothing, every target a
class): the same bits as the general path, PyTorch's values and gradients, and the cases that
must leave it (an ``ignore_index`` that may occur, out-of-range targets, weights)."""

import numpy as np
import pytest
import torch

import ember
from ember.ops.nn import _ce_grad_impl, _ce_impl

F = ember.nn.functional


def _data(n, c, dtype, seed=0, tdtype=np.int64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)).astype(dtype)
    t = rng.integers(1, c, n).astype(tdtype)  # class 0 never occurs
    return x, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c", [(128, 10), (7, 3), (513, 257), (1, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fast_path_bitwise_equal_to_the_general_path(dtype, n, c, reduction):
    x, t = _data(n, c, dtype)
    # ignore_index=0 lies in the targets' range: the general path (class 0 never occurs)
    fast = _ce_impl(x, t, None, ignore_index=-100, reduction=reduction)
    general = _ce_impl(x, t, None, ignore_index=0, reduction=reduction)
    np.testing.assert_array_equal(fast, general)
    g = np.asarray(np.linspace(0.5, 2.0, n).astype(dtype) if reduction == "none" else dtype(1.3))
    fast = _ce_grad_impl(g, x, t, None, ignore_index=-100, reduction=reduction)
    general = _ce_grad_impl(g, x, t, None, ignore_index=0, reduction=reduction)
    np.testing.assert_array_equal(fast, general)


@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_values_and_gradients_match_torch(tdtype, dtype, tol):
    x, t = _data(33, 11, dtype, seed=1, tdtype=tdtype)
    xe = ember.from_numpy(x).requires_grad_()
    le = F.cross_entropy(xe, ember.from_numpy(t))
    le.backward()
    xt = torch.from_numpy(x).requires_grad_()
    lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(t.astype(np.int64)))
    lt.backward()
    np.testing.assert_allclose(le.item(), lt.item(), rtol=tol)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)


def test_ignore_index_that_occurs_still_ignored():
    x, t = _data(20, 5, np.float32, seed=2)
    t[::3] = 2  # ignore_index 2 occurs
    got = F.cross_entropy(ember.from_numpy(x), ember.from_numpy(t), ignore_index=2)
    want = torch.nn.functional.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(t), ignore_index=2
    )
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)


def test_out_of_range_target_is_a_clear_error():
    x, t = _data(6, 4, np.float32)
    t[3] = 4
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(ember.from_numpy(x), ember.from_numpy(t))
    t[3] = -1
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(ember.from_numpy(x), ember.from_numpy(t))


def test_one_and_two_threads_bitwise_equal():
    x, t = _data(4096, 300, np.float32, seed=3)
    out = []
    for threads in (1, 2):
        prev = ember.get_num_threads()
        ember.set_num_threads(threads)
        try:
            xe = ember.from_numpy(x).requires_grad_()
            loss = F.cross_entropy(xe, ember.from_numpy(t))
            loss.backward()
            out.append((loss.detach().numpy().copy(), xe.grad.numpy().copy()))
        finally:
            ember.set_num_threads(prev)
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
