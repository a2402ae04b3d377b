"""``Tensor.view(dtype)`` reinterprets the bytes, as PyTorch (it used to convert the values)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember

CASES = [
    ("float32", "int32", (2, 3)),
    ("float32", "float16", (2, 4)),
    ("float32", "uint8", (3,)),
    ("int16", "int32", (4,)),
    ("float64", "float32", (2, 2)),
    ("bool", "uint8", (5,)),
    ("uint8", "bool", (4,)),
    ("float32", "bfloat16", (2, 2)),
    ("int64", "float64", ()),
]


@pytest.mark.parametrize("src, dst, shape", CASES)
def test_view_dtype_reinterprets_like_torch(src, dst, shape):
    rng = np.random.default_rng(0)
    if src == "bool":
        a = rng.standard_normal(shape) > 0
    elif src == "uint8":
        a = rng.integers(0, 2, shape).astype(np.uint8)
    else:
        a = np.asarray((rng.standard_normal(shape) * 100).astype(src))
    t = torch.from_numpy(a.copy()).view(getattr(torch, dst))
    e = ember.tensor(a).view(getattr(ember, dst))
    assert tuple(e.shape) == tuple(t.shape) and str(e.dtype).split(".")[-1] == dst
    np.testing.assert_array_equal(e.float().numpy(), t.float().numpy())


def test_view_dtype_shares_memory_and_is_not_differentiable():
    x = ember.zeros(4, requires_grad=True)
    v = x.detach().view(ember.int32)
    v[1] = 1065353216  # the bits of 1.0
    assert x.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert not x.view(ember.int32).requires_grad


def test_view_dtype_refusals_name_the_problem():
    with pytest.raises(ValueError, match="whole number"):
        ember.ones(3).view(ember.float64)
    with pytest.raises(ValueError, match="0-d"):
        ember.tensor(1.0).view(ember.float16)
    with pytest.raises(ValueError, match="contiguous"):
        ember.ones(2, 4).t().view(ember.float16)


def test_view_dtype_in_a_compiled_function_is_a_graph_break():
    def f(x):
        return (x * 2).view(ember.int32) + 1

    g = ember.compile(f)
    x = ember.tensor([1.0, 2.0])
    with pytest.warns(UserWarning):
        got = g(x)
    assert got.tolist() == f(x).tolist()
