"""In-place arithmetic written straight into the tensor's buffer (``x.add_(y)``, ``x *= s``):
PyTorch's values, the same bits as the out-of-place op, the buffer and views kept, overlap and
promotion cases through the general path."""

import numpy as np
import pytest
import torch

import ember

OPS = ["add_", "sub_", "mul_", "div_"]
SHAPES = [(5,), (300, 257), (64, 33, 40)]


def _pair(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", OPS)
def test_tensor_number_bias_and_same_shape_operands_match_torch_bitwise(op, shape, dtype):
    a = _pair(shape, dtype)
    others = [2.5, 3, _pair(shape, dtype, 1), _pair(shape[-1:], dtype, 2)]
    for other in others:
        x, xt = ember.tensor(a), torch.tensor(a)
        buf = x._data
        oe = ember.tensor(other) if isinstance(other, np.ndarray) else other
        ot = torch.tensor(other) if isinstance(other, np.ndarray) else other
        want = getattr(ember.tensor(a), op[:-1])(oe)  # the out-of-place op's bits
        assert getattr(x, op)(oe) is x
        getattr(xt, op)(ot)
        assert x._data is buf  # the same buffer
        np.testing.assert_array_equal(x.numpy(), want.numpy())
        rtol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(x.numpy(), xt.numpy(), rtol=rtol)


def test_augmented_assignment_views_and_version_counters():
    base = ember.ones(4, 6)
    row = base[1]
    v0 = base._version[0]
    row += ember.arange(6.0)
    row *= 2
    assert base[1].tolist() == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert base[0].tolist() == [1.0] * 6
    assert base._version[0] == v0 + 2
    col = base[:, 2]  # a strided view
    col.sub_(1.0)
    assert base[:, 2].tolist() == [0.0, 5.0, 0.0, 0.0]


def test_overlapping_operands_give_the_out_of_place_result():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    x = ember.tensor(a)
    x.add_(x[0])  # the bias row is part of the tensor written
    np.testing.assert_array_equal(x.numpy(), a + a[0])
    y = ember.tensor(a)
    y.add_(y)
    np.testing.assert_array_equal(y.numpy(), a + a)
    s = ember.tensor(np.arange(16.0, dtype=np.float32).reshape(4, 4))
    s.mul_(s.T)
    m = np.arange(16.0, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(s.numpy(), m * m.T)


def test_promotion_alpha_rounding_and_errors_keep_torchs_rules():
    x = ember.ones(3)
    x.add_(ember.tensor([1, 2, 3]), alpha=2)  # int other, alpha
    assert x.tolist() == [3.0, 5.0, 7.0]
    x.sub_(ember.tensor([1.0, 1.0, 1.0], dtype=ember.float64))  # float64 into float32
    assert x.dtype == ember.float32 and x.tolist() == [2.0, 4.0, 6.0]
    x.div_(4, rounding_mode="floor")
    assert x.tolist() == [0.0, 1.0, 1.0]
    i = ember.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.mul_(1.5)
    with pytest.raises((ValueError, RuntimeError)):
        ember.ones(3).add_(ember.ones(2, 3))  # the result would not fit the tensor
    w = ember.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.mul_(2)
    with ember.no_grad():
        w.mul_(2)
    assert w.tolist() == [2.0, 2.0, 2.0]


def test_a_large_update_on_one_and_two_threads_gives_the_same_bits():
    a = _pair((512, 300), np.float32)
    b = _pair((512, 300), np.float32, 3)
    outs = []
    before = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            x = ember.tensor(a)
            x.mul_(0.9).add_(ember.tensor(b)).div_(1.7)
            outs.append(x.numpy().copy())
    finally:
        ember.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])
