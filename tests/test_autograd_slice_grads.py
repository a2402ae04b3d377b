"""Gradients of basic-index views (slices, ``split``, ``chunk``, ``unbind``, integer
indices) are kept as pieces of their input's pending gradient by the backward engine
(``ember.autograd.engine._slice_grad``, ``ember.autograd._slice_parts``) instead of as
full-size zero arrays. The results
equal PyTorch's and, bit for bit, the ``index_put_zeros`` rule's; an array the engine
handed on (to a hook, to two inputs of an add) is never written into afterwards. Also: the
layout of matmul's gradients for transposed operands, and the engine's sums of two large
gradients.
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


def _naive_sum(shape, pieces):
    out = np.zeros(shape)
    for idx, g in pieces:
        out[idx] += g
    return out


def test_slice_parts_equal_the_plain_sum_for_random_pieces():
    """Pieces that tile, overlap, step, use Ellipsis or negative ints: the deferred sum is
    the plain zeros-and-add sum bit for bit."""
    from ember.autograd._slice_parts import SliceParts

    rng = np.random.default_rng(0)
    shape = (5, 6, 4)

    def random_index():
        idx = []
        for n in shape:
            kind = rng.integers(4)
            if kind == 0:
                idx.append(int(rng.integers(-n, n)))
            elif kind == 1:
                a, b = sorted(rng.integers(0, n + 1, 2))
                idx.append(slice(int(a), int(b)))
            elif kind == 2:
                idx.append(slice(None, None, int(rng.integers(1, 3)) * int(rng.choice([-1, 1]))))
            else:
                idx.append(slice(None))
        if rng.integers(3) == 0:
            return (Ellipsis, *idx[1:])
        return tuple(idx)

    seen = set()
    for _ in range(300):
        pieces = []
        for _ in range(int(rng.integers(1, 5))):
            idx = random_index()
            pieces.append((idx, rng.standard_normal(np.empty(shape)[idx].shape)))
        parts = SliceParts(shape, np.dtype(np.float64), *pieces[0])
        for p in pieces[1:]:
            parts.add(*p)
        seen.add(parts.layout())
        np.testing.assert_array_equal(parts.array(), _naive_sum(shape, pieces))
    assert seen == {"tiles", "disjoint", "overlapping"}


@pytest.mark.parametrize("n", [3, 40])
def test_split_and_unbind_pieces_tile_without_zero_filling(monkeypatch, n):
    """Pieces along one axis that cover the array are copied into an uninitialized one."""
    from ember.autograd._slice_parts import SliceParts

    made = []
    real_array = SliceParts.array
    monkeypatch.setattr(SliceParts, "array", lambda p: made.append(p.layout()) or real_array(p))
    x0 = np.random.default_rng(2).standard_normal((n, 5)).astype(np.float32)
    x = ember.tensor(x0, requires_grad=True)
    h = x * 2
    (sum((r * (i + 1)).sum() for i, r in enumerate(h.unbind(0)))).backward()
    assert made == ["tiles"]
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(1, n + 1)[:, None] * np.ones(5))
    x.grad = None
    h = x * 2
    a, b = h[: n // 2], h[n // 2 + 1 :]  # a gap: zeros, then the pieces
    (a.sum() + (b * 3).sum()).backward()
    assert made == ["tiles", "disjoint"]
    want = np.full((n, 5), 2.0, np.float32)
    want[n // 2] = 0
    want[n // 2 + 1 :] = 6
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_a_whole_gradient_between_slices_keeps_the_arrival_order():
    x0 = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)

    def run(lib):
        x = lib.tensor(x0, requires_grad=True)
        h = x * 1.25
        a, b, c = h.split(2, dim=1)
        y = (a * 3).sum() + (h * h).sum() + b.exp().sum() + (h[:, 1:4] ** 2).sum() + c.sum()
        y.backward()
        return x.grad.numpy()

    fast = run(ember)
    np.testing.assert_allclose(fast, run(torch), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_matmul_gradients_of_transposed_operands_keep_their_layout(dtype):
    """``q @ k.transpose(-2, -1)``: the gradient reaching ``k`` is contiguous (the product
    is computed transposed for a column-major operand), and the values equal PyTorch's
    with either operand transposed."""
    rng = np.random.default_rng(4)

    def arr(*s):
        a = rng.standard_normal(s)
        if dtype == np.complex128:
            a = a + 1j * rng.standard_normal(s)
        return a.astype(dtype)

    q0, k0, g0 = arr(2, 3, 5, 4), arr(2, 3, 6, 4), arr(2, 3, 5, 6)

    def run(lib):
        q = lib.tensor(q0, requires_grad=True)
        k = lib.tensor(k0, requires_grad=True)
        s = q @ k.transpose(-2, -1)  # the right operand column-major
        t = k.transpose(-2, -1).transpose(-2, -1) @ q.transpose(-2, -1)
        u = q.transpose(-2, -1).transpose(-2, -1) @ (k[:, :, :4] * 2)  # the left one: plain
        w = k.transpose(-2, -1)[..., :4] @ q[:, :, :4]  # the left one column-major
        y = (s * lib.tensor(g0)).sum() + t.sum() * 2 + u.sum() * 3 + w.sum()
        (y.real if dtype == np.complex128 else y).backward()
        return q.grad.numpy(), k.grad.numpy()

    tol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(run(ember), run(torch)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)

    k = ember.tensor(k0, requires_grad=True)
    s = ember.tensor(q0) @ k.transpose(-2, -1)
    (s.real.sum() if dtype == np.complex128 else s.sum()).backward()
    assert k.grad.numpy().flags.c_contiguous


def test_large_gradient_sums_are_numpys_bit_for_bit():
    """Two large pending gradients of one layout add in a compiled loop: NumPy's sum, for
    either float dtype, other layouts and mixed dtypes (which keep NumPy's add)."""
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        a, b = (rng.standard_normal((64, 33, 40)).astype(dtype) for _ in range(2))
        np.testing.assert_array_equal(engine._sum2(a, b), a + b)
        bf = np.asfortranarray(b)
        np.testing.assert_array_equal(engine._sum2(a, bf), a + bf)
    a32 = a.astype(np.float32)
    r = engine._sum2(a32, a)
    assert r.dtype == np.float64
    np.testing.assert_array_equal(r, a32 + a)
    x = ember.tensor(rng.standard_normal((64, 33, 40)).astype(np.float32), requires_grad=True)
    h = x * 2
    (h * h).sum().add((h.exp()).sum()).backward()  # h's two gradients meet in _sum2
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    ht = xt * 2
    ((ht * ht).sum() + ht.exp().sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
