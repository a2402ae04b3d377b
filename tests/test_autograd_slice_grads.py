"""Gradients of basic-index views (slices, ``split``, ``chunk``, ``unbind``, integer
indices) are added into their input's pending gradient in place by the backward engine
(``ember.autograd.engine._slice_grad``) instead of as full-size zero arrays. The results
equal PyTorch's and, bit for bit, the ``index_put_zeros`` rule's; an array the engine
handed on (to a hook, to two inputs of an add) is never written into afterwards.
"""

import numpy as np
import pytest
import torch

import ember
from ember.autograd import engine


def _graph(lib, x0):
    x = lib.tensor(x0, requires_grad=True)
    h = x * 1.5
    a, b, c = h.split(3, dim=1)
    parts = [
        (a * 2).sum(),
        (b * b).sum(),
        c.exp().sum(),
        h[1:3, 2:5].sum() * 3,  # overlaps a, b and c
        (h[2] * h[2]).sum(),  # an integer index
        h[0, 4] * 7,  # a 0-d view
        (h * h).sum(),  # a dense gradient beside the slices
        sum((r * (i + 1)).sum() for i, r in enumerate(h.unbind(0))),
        h.chunk(2, dim=0)[1].tanh().sum(),
    ]
    y = parts[0]
    for p in parts[1:]:
        y = y + p
    y.backward()
    return x.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slice_gradients_match_torch(dtype):
    x0 = np.random.default_rng(0).standard_normal((4, 9)).astype(dtype)
    got = _graph(ember, x0).numpy()
    want = _graph(torch, x0).numpy()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_in_place_sums_equal_the_rule_bit_for_bit(monkeypatch):
    x0 = np.random.default_rng(1).standard_normal((6, 9)).astype(np.float32)
    fast = _graph(ember, x0).numpy()
    monkeypatch.setattr(engine, "_slice_grad", lambda *a: 0)
    slow = _graph(ember, x0).numpy()
    np.testing.assert_array_equal(fast, slow)


def test_the_engine_adds_slices_in_place(monkeypatch):
    calls = []
    orig = engine._slice_grad

    def spy(*a):
        r = orig(*a)
        calls.append(r)
        return r

    monkeypatch.setattr(engine, "_slice_grad", spy)
    x = ember.tensor(np.ones((2, 6), np.float32), requires_grad=True)
    q, k, v = (x * 2).split(2, dim=1)
    (q.sum() + (k * 3).sum() + (v * 4).sum()).backward()
    assert sorted(calls) == [1, 1, 2]  # one fresh gradient, two slices added into it
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 2, 6, 6, 8, 8]] * 2)


def test_an_array_passed_to_two_inputs_is_not_written_through():
    """add's rule hands the same gradient array to both inputs; a slice gradient arriving
    later for one of them must not change the other's."""
    x = ember.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    u = x * 1.0
    w = x * 2.0
    s = u + w  # s's gradient array reaches u and w alike
    y = (s * 3).sum() + u[:, 1].sum() * 5  # then a slice gradient for u alone
    y.backward()
    want = torch.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    uu, ww = want * 1.0, want * 2.0
    ((uu + ww) * 3).sum().add(uu[:, 1].sum() * 5).backward()
    np.testing.assert_array_equal(x.grad.numpy(), want.grad.numpy())


def test_hooks_and_retained_gradients_see_the_whole_sum():
    x = ember.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    h = x * 2
    h.retain_grad()
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    a, b = h.split(2, dim=1)
    (a.sum() * 3 + b.sum() * 5).backward()
    want = np.array([[3, 3, 5, 5]] * 3, np.float32)
    np.testing.assert_array_equal(seen[0], want)
    np.testing.assert_array_equal(h.grad.numpy(), want)


def test_autograd_grad_and_create_graph_paths():
    x = ember.tensor(np.linspace(-1, 1, 12, dtype=np.float64).reshape(3, 4), requires_grad=True)
    h = x * x
    a, b = h.split(2, dim=1)
    y = (a * 3).sum() + (b**2).sum()
    (g,) = ember.autograd.grad(y, [x], create_graph=True)
    (gg,) = ember.autograd.grad(g.sum(), [x])
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    ht = xt * xt
    at, bt = ht.split(2, dim=1)
    (gt,) = torch.autograd.grad((at * 3).sum() + (bt**2).sum(), [xt], create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), [xt])
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gg.numpy(), ggt.numpy(), rtol=1e-12)
