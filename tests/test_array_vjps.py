"""The VJPs' array fast paths (ember.ops._array_vjps) give the Tensor rules' cotangents bit
for bit, and backward through them equals backward without them and PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember.ops import _ad
from ember.ops._ad import ARRAY_VJPS, VJPS
from ember.ops._core import REGISTRY


def F(t):
    """The functional module of ``t``'s framework."""
    return ember.nn.functional if isinstance(t, ember.Tensor) else torch.nn.functional


def _x(shape, dtype, seed, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return np.abs(a) + 0.5 if positive else a


# (label, fn(*tensors), input shapes, positive inputs)
CASES = [
    ("add", lambda a, b: a + b, [(5, 7), (5, 7)], False),
    ("add bias", lambda a, b: a + b, [(5, 7), (7,)], False),
    ("add scalar", lambda a: a + 1.5, [(3, 4)], False),
    ("sub", lambda a, b: a - b, [(5, 7), (5, 1)], False),
    ("rsub scalar", lambda a: 2.0 - a, [(9,)], False),
    ("mul", lambda a, b: a * b, [(4, 6), (4, 6)], False),
    ("mul broadcast", lambda a, b: a * b, [(2, 3, 4), (3, 1)], False),
    ("mul scalar", lambda a: a * 3.0, [(64, 65)], False),
    ("div", lambda a, b: a / b, [(4, 6), (4, 6)], True),
    ("div scalar", lambda a: a / 7.0, [(5,)], False),
    ("rdiv", lambda a: 2.0 / a, [(5, 3)], True),
    ("neg", lambda a: -a, [(6,)], False),
    ("exp", lambda a: a.exp(), [(33, 31)], False),
    ("log", lambda a: a.log(), [(10, 3)], True),
    ("tanh", lambda a: a.tanh(), [(8, 8)], False),
    ("tanh big", lambda a: a.tanh(), [(40, 70)], False),
    ("sigmoid", lambda a: a.sigmoid(), [(3, 5)], False),
    ("relu", lambda a: a.relu(), [(7, 9)], False),
    ("relu big", lambda a: a.relu(), [(70, 90)], False),
    ("gelu", lambda a: F(a).gelu(a), [(4, 5)], False),
    ("gelu tanh", lambda a: F(a).gelu(a, approximate="tanh"), [(4, 5)], False),
    ("silu", lambda a: F(a).silu(a), [(6, 2)], False),
    ("matmul", lambda a, b: a @ b, [(5, 3), (3, 4)], False),
    ("matmul batched", lambda a, b: a @ b, [(2, 5, 3), (3, 4)], False),
    ("linear", lambda a, w, b: F(a).linear(a, w, b), [(6, 4), (3, 4), (3,)], False),
    ("linear 3-d", lambda a, w: F(a).linear(a, w), [(2, 6, 4), (3, 4)], False),
    ("sum all", lambda a: a.sum(), [(6, 5)], False),
    ("sum dim", lambda a: a.sum(1), [(6, 5, 2)], False),
    ("sum keepdim", lambda a: a.sum(0, keepdim=True), [(6, 5)], False),
    ("sum big", lambda a: a.sum(-1), [(70, 80)], False),
    ("mean", lambda a: a.mean(), [(6, 5)], False),
    ("mean dims", lambda a: a.mean((0, 2)), [(3, 4, 5)], False),
    ("reshape", lambda a: a.reshape(3, -1), [(6, 4)], False),
]


def _grads(fn, arrays, lib, seed=1):
    ts = [lib.tensor(a.copy(), requires_grad=True) for a in arrays]
    y = fn(*ts)
    g = np.random.default_rng(seed).standard_normal(tuple(y.shape)).astype(arrays[0].dtype)
    y.backward(lib.tensor(g))
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_backward_with_and_without_array_rules(case, dtype, monkeypatch):
    _, fn, shapes, positive = case
    arrays = [_x(s, dtype, k, positive) for k, s in enumerate(shapes)]
    y, fast = _grads(fn, arrays, ember)
    monkeypatch.setattr(_ad, "ARRAY_VJPS", {})
    monkeypatch.setattr("ember.autograd.engine.ARRAY_VJPS", {})
    _, slow = _grads(fn, arrays, ember)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)  # the same kernels: the same bits
    yt, want = _grads(fn, arrays, torch)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(y, yt, **tol)
    for a, b in zip(fast, want):
        np.testing.assert_allclose(a, b, **tol)


def test_every_array_rule_is_exercised_and_has_a_vjp():
    # Ember's own primitives (unregistered ones, e.g. a docstring's example op, are not)
    ours = [p for p in ARRAY_VJPS if REGISTRY.get(p.name) is p]
    names = {p.name for p in ours}
    assert all(p in VJPS for p in ours)
    covered = {"add", "sub", "mul", "div", "neg", "exp", "log", "tanh", "sigmoid", "relu"}
    covered |= {"gelu", "silu", "matmul", "linear", "sum", "mean", "reshape"}
    assert names == covered


def test_rules_step_aside_for_mixed_dtypes_complex_and_recording():
    # a float32 tensor times a float64 one: promoted before the primitive, so both paths
    # see one dtype; complex products take the Tensor rule (conjugates)
    a = ember.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    b = ember.tensor(np.array([3.0, 4.0], np.float64), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == ember.float32 and a.grad.tolist() == [3.0, 4.0]
    assert b.grad.dtype == ember.float64 and b.grad.tolist() == [1.0, 2.0]
    z = ember.tensor(np.array([1 + 2j, 3 - 1j], np.complex64), requires_grad=True)
    zt = torch.tensor(z.detach().numpy(), requires_grad=True)
    (z * z).abs().sum().backward()
    (zt * zt).abs().sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy(), rtol=1e-6)
    # create_graph records the backward: second derivatives through the Tensor rules
    x = ember.tensor(np.array([0.3, -0.7], np.float32), requires_grad=True)
    (gx,) = ember.autograd.grad((x.tanh() * x).sum(), [x], create_graph=True)
    gx.sum().backward()
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    (gt,) = torch.autograd.grad((xt.tanh() * xt).sum(), [xt], create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5)


def test_saved_tensor_modified_in_place_is_still_caught():
    x = ember.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x.exp()
    z = y * 2.0
    y.add_(1.0)  # exp's VJP reads its output
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
