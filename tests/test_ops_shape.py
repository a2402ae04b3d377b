"""Shape/layout ops and scans against PyTorch: values, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.ops import shape as S
from ember.ops.scan import cumprod, cumsum

RNG = np.random.default_rng(0)


def _pair(a, grad=True):
    e = ember.tensor(a, requires_grad=grad and a.dtype.kind == "f")
    t = torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")
    return e, t


def check(fe, ft, *arrays, grad=True, atol=1e-6):
    """Run ``fe`` on ember tensors and ``ft`` on torch tensors; compare outputs and the
    gradients of a random weighted sum of the (first) output."""
    es, ts = zip(*[_pair(a, grad) for a in arrays])
    oe, ot = fe(*es), ft(*ts)
    if isinstance(ot, (tuple, list)):
        for a, b in zip(oe, ot):
            assert tuple(a.shape) == tuple(b.shape)
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol)
        oe, ot = oe[0], ot[0]
    assert tuple(oe.shape) == tuple(ot.shape), (oe.shape, ot.shape)
    np.testing.assert_allclose(oe.detach().numpy(), ot.detach().numpy(), atol=atol)
    if grad and ot.requires_grad:
        w = RNG.standard_normal(tuple(ot.shape))
        (oe * ember.tensor(w)).sum().backward()
        (ot * torch.tensor(w)).sum().backward()
        for e, t in zip(es, ts):
            if t.requires_grad and t.grad is None:
                assert e.grad is None or not e.grad.numpy().any()
            elif t.requires_grad:
                assert e.grad is not None
                np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), atol=atol)


def R(*shape):
    return RNG.standard_normal(shape)


def fd_check(f, a, eps=1e-6, atol=1e-5):
    """Finite-difference gradient check (float64) of sum(w * f(x))."""
    x = ember.tensor(a, requires_grad=True)
    out = f(x)
    w = RNG.standard_normal(tuple(out.shape))
    (out * ember.tensor(w)).sum().backward()
    num = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        ap, am = a.copy(), a.copy()
        ap[i] += eps
        am[i] -= eps
        fp = (f(ember.tensor(ap)).numpy() * w).sum()
        fm = (f(ember.tensor(am)).numpy() * w).sum()
        num[i] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), num, atol=atol)


# -- flip / roll ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,dims",
    [((3, 4), (0,)), ((3, 4), (-1,)), ((2, 3, 4), (0, 2)), ((0, 3), (0, 1)), ((5,), ()), ((), ())],
)
def test_flip(shape, dims):
    check(lambda x: x.flip(dims), lambda x: x.flip(dims), R(*shape))
    check(lambda x: ember.flip(x, dims), lambda x: torch.flip(x, dims), R(*shape))


def test_flip_noncontiguous_and_variants():
    check(lambda x: x.transpose(0, 1).flip(0), lambda x: x.transpose(0, 1).flip(0), R(3, 4))
    check(lambda x: x.flip(0, 1), lambda x: x.flip(0, 1), R(3, 4))
    check(ember.fliplr, torch.fliplr, R(3, 4))
    check(ember.flipud, torch.flipud, R(3, 4))
    with pytest.raises(IndexError, match="flip"):
        ember.randn(2, 3).flip(2)
    with pytest.raises(ValueError, match="flip"):
        ember.randn(2, 3).flip(0, -2)


@pytest.mark.parametrize(
    "shape,shifts,dims",
    [
        ((3, 4), 1, 0),
        ((3, 4), -5, 1),
        ((3, 4), (1, 2), (0, 1)),
        ((3, 4), 3, None),
        ((2, 0), 1, 0),
        ((4,), 7, -1),
    ],
)
def test_roll(shape, shifts, dims):
    check(lambda x: x.roll(shifts, dims), lambda x: x.roll(shifts, dims), R(*shape))


def test_roll_errors():
    with pytest.raises(ValueError, match="roll"):
        ember.randn(3, 4).roll((1, 2), 0)


# -- repeat / tile / repeat_interleave -------------------------------------------------------
@pytest.mark.parametrize(
    "shape,reps",
    [
        ((2, 3), (2, 1)),
        ((2, 3), (3, 1, 2)),
        ((), (2, 3)),
        ((3,), (0,)),
        ((2, 0), (2, 2)),
        ((2, 3), (1, 1)),
    ],
)
def test_repeat(shape, reps):
    check(lambda x: x.repeat(*reps), lambda x: x.repeat(*reps), R(*shape))
    check(lambda x: x.repeat(reps), lambda x: x.repeat(reps), R(*shape))


def test_repeat_errors():
    with pytest.raises(ValueError, match="repeat.*number of repeat dims"):
        ember.randn(2, 3).repeat(2)


@pytest.mark.parametrize("shape,reps", [((2, 3), (2,)), ((2, 3), (2, 1, 2)), ((4,), (2, 2))])
def test_tile(shape, reps):
    check(lambda x: ember.tile(x, reps), lambda x: torch.tile(x, reps), R(*shape))
    check(
        lambda x: x.T.tile(reps) if x.ndim == 2 else x.tile(reps),
        lambda x: x.T.tile(reps) if x.ndim == 2 else x.tile(reps),
        R(*shape),
    )


@pytest.mark.parametrize("rep,dim", [(2, None), (3, 0), (2, -1), ([1, 0, 2], 1)])
def test_repeat_interleave(rep, dim):
    a = R(2, 3)
    if isinstance(rep, list):
        check(
            lambda x: x.repeat_interleave(ember.tensor(rep), dim),
            lambda x: x.repeat_interleave(torch.tensor(rep), dim),
            a,
        )
    else:
        check(
            lambda x: ember.repeat_interleave(x, rep, dim),
            lambda x: torch.repeat_interleave(x, rep, dim),
            a,
        )


def test_repeat_interleave_index_only_and_errors():
    r = [2, 0, 3]
    assert (
        ember.repeat_interleave(ember.tensor(r)).tolist()
        == torch.repeat_interleave(torch.tensor(r)).tolist()
    )
    with pytest.raises(ValueError, match="repeat_interleave"):
        ember.randn(2, 3).repeat_interleave(ember.tensor([1, 2]), 1)


# -- tril / triu / diagonal ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 5, 3), (0, 3)])
@pytest.mark.parametrize("k", [0, 1, -2, 7])
def test_tril_triu(shape, k):
    check(lambda x: x.tril(k), lambda x: x.tril(k), R(*shape))
    check(lambda x: ember.triu(x, k), lambda x: torch.triu(x, k), R(*shape))
    check(
        lambda x: x.transpose(-1, -2).triu(diagonal=k),
        lambda x: x.transpose(-1, -2).triu(diagonal=k),
        R(*shape),
    )


def test_tril_errors_and_inplace():
    with pytest.raises(ValueError, match="tril.*at least 2"):
        ember.randn(3).tril()
    x = ember.ones(3, 3)
    x.triu_(1)
    assert x.numpy().tolist() == torch.ones(3, 3).triu_(1).tolist()


@pytest.mark.parametrize(
    "shape,off,d1,d2",
    [
        ((3, 4), 0, 0, 1),
        ((3, 4), 1, 0, 1),
        ((3, 4), -2, 0, 1),
        ((2, 3, 4), 0, 2, 0),
        ((2, 3, 4), 1, -1, -2),
        ((3, 4), 5, 0, 1),
        ((0, 4), 0, 0, 1),
    ],
)
def test_diagonal(shape, off, d1, d2):
    check(lambda x: x.diagonal(off, d1, d2), lambda x: x.diagonal(off, d1, d2), R(*shape))


def test_diagonal_errors_and_fd():
    with pytest.raises(ValueError, match="diagonal"):
        ember.randn(3).diagonal()
    with pytest.raises(ValueError, match="diagonal.*identical"):
        ember.randn(3, 3).diagonal(0, 1, -1)
    fd_check(lambda x: x.diagonal(1, 1, 0), R(3, 4))


# -- pad -----------------------------------------------------------------------------------
PADS = [
    ((2, 3, 5), (1, 2), "constant"),
    ((2, 3, 5), (1, 2, 0, 3), "constant"),
    ((2, 3, 5), (-1, 2, 1, -1), "constant"),
    ((2, 3, 4, 5), (2, 1, 1, 2), "reflect"),
    ((2, 3, 5), (4, 3), "reflect"),
    ((2, 3, 5), (3, 2), "replicate"),
    ((1, 2, 3, 4), (2, 1, 3, 0), "replicate"),
    ((2, 3, 5), (2, 5), "circular"),
    ((1, 2, 3, 4), (1, 2, 3, 1), "circular"),
    ((1, 2, 2, 3, 4), (1, 1, 1, 1, 1, 1), "reflect"),
    ((1, 2, 2, 3, 4), (1, 0, 2, 1, 0, 1), "replicate"),
    ((2, 0, 3), (1, 1), "constant"),
    ((0, 3, 4), (1, 1), "reflect"),
]


@pytest.mark.parametrize("shape,p,mode", PADS)
def test_pad(shape, p, mode):
    F = torch.nn.functional
    check(lambda x: S.pad(x, p, mode=mode), lambda x: F.pad(x, p, mode=mode), R(*shape))


def test_pad_value_noncontig_fd():
    F = torch.nn.functional
    check(
        lambda x: S.pad(x.transpose(1, 2), (1, 2, 2, 0), value=3.5),
        lambda x: F.pad(x.transpose(1, 2), (1, 2, 2, 0), value=3.5),
        R(2, 3, 4),
    )
    fd_check(lambda x: S.pad(x, (2, 1), mode="reflect"), R(1, 2, 4))
    fd_check(lambda x: S.pad(x, (2, 1, 1, 1), mode="circular"), R(1, 2, 3))


def test_pad_double_backward():
    x = ember.tensor(R(1, 2, 4), requires_grad=True)
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    y = (S.pad(x, (2, 1), mode="reflect") ** 2).sum()
    yt = (torch.nn.functional.pad(xt, (2, 1), mode="reflect") ** 2).sum()
    (g,) = ember.autograd.grad(y, [x], create_graph=True)
    (gt,) = torch.autograd.grad(yt, [xt], create_graph=True)
    (g**2).sum().backward()
    (gt**2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-6)


def test_pad_errors():
    x = ember.randn(2, 3, 4)
    with pytest.raises(ValueError, match="pad.*divisible by 2"):
        S.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad.*too large"):
        S.pad(x, (1,) * 8)
    with pytest.raises(ValueError, match="padding size should be less than"):
        S.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ValueError, match="unsupported padding mode"):
        S.pad(x, (1, 1), mode="wrap")
    with pytest.raises(ValueError, match="pad: negative padding"):
        S.pad(x, (-3, -2))


# -- meshgrid ------------------------------------------------------------------------------
@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(indexing):
    a, b, c = R(3), R(4), R(2)
    check(
        lambda x, y, z: ember.meshgrid(x, y, z, indexing=indexing)[1],
        lambda x, y, z: torch.meshgrid(x, y, z, indexing=indexing)[1],
        a,
        b,
        c,
    )
    check(
        lambda x, y: ember.meshgrid([x, y], indexing=indexing)[0],
        lambda x, y: torch.meshgrid([x, y], indexing=indexing)[0],
        a,
        b,
    )
    with pytest.raises(ValueError, match="meshgrid"):
        ember.meshgrid(ember.randn(2, 2))


# -- scans ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,dim", [((5,), 0), ((3, 4), 1), ((3, 4), -2), ((2, 0, 3), 1), ((), 0), ((2, 3, 4), 2)]
)
def test_cumsum_cumprod(shape, dim):
    check(lambda x: x.cumsum(dim), lambda x: x.cumsum(dim), R(*shape))
    check(lambda x: cumprod(x, dim), lambda x: torch.cumprod(x, dim), R(*shape))


def test_cumprod_with_zeros_and_fd():
    a = R(3, 6)
    a[0, 2] = 0
    a[1, 1] = a[1, 4] = 0
    a[2, 5] = 0
    check(lambda x: ember.cumprod(x, 1), lambda x: torch.cumprod(x, 1), a)
    check(lambda x: ember.prod(x, 1), lambda x: torch.prod(x, 1), a)
    fd_check(lambda x: ember.cumprod(x, 1), a)
    fd_check(lambda x: ember.cumsum(x.transpose(0, 1), 0), R(3, 4))


def test_scan_dtypes_and_errors():
    x = ember.tensor([[1, 2], [3, 4]], dtype=ember.int32)
    assert cumsum(x, 0).dtype == ember.int64
    assert cumprod(x, 1).tolist() == [[1, 2], [3, 12]]
    assert ember.cumsum(ember.ones(3), 0, dtype=ember.float64).dtype == ember.float64
    with pytest.raises(IndexError, match="cumsum.*out of range"):
        cumsum(ember.ones(3), 1)


def test_cumprod_double_backward():
    a = R(5)
    a[2] = 0
    x = ember.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    (g,) = ember.autograd.grad(cumprod(x, 0).sum(), [x], create_graph=True)
    (gt,) = torch.autograd.grad(torch.cumprod(xt, 0).sum(), [xt], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), atol=1e-8)
    (g * ember.tensor(a)).sum().backward()
    (gt * torch.tensor(a)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-8)


# -- reshape/expand/cat still right after the tidy -------------------------------------------
def test_reshape_expand_cat_grads():
    check(
        lambda x: x.reshape(3, 2).expand(2, 3, 2),
        lambda x: x.reshape(3, 2).expand(2, 3, 2),
        R(2, 3),
    )
    check(
        lambda x, y: ember.cat([x, y.T], 1), lambda x, y: torch.cat([x, y.T], 1), R(2, 3), R(4, 2)
    )


# -- property tests --------------------------------------------------------------------------
shapes = st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple)


@settings(max_examples=25, deadline=None)
@given(shapes, st.data())
def test_flip_roll_property(shape, data):
    nd = len(shape)
    dims = tuple(
        data.draw(st.lists(st.integers(-nd, nd - 1), max_size=nd, unique_by=lambda d: d % nd))
    )
    a = R(*shape)
    check(lambda x: x.flip(dims), lambda x: x.flip(dims), a)
    shifts = tuple(data.draw(st.integers(-6, 6)) for _ in dims)
    if dims:
        check(lambda x: x.roll(shifts, dims), lambda x: x.roll(shifts, dims), a)


@settings(max_examples=25, deadline=None)
@given(shapes, st.data())
def test_repeat_pad_property(shape, data):
    reps = tuple(
        data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape) + 2))
    )
    a = R(*shape)
    check(lambda x: x.repeat(reps), lambda x: x.repeat(reps), a)
    k = data.draw(st.integers(0, len(shape)))
    p = tuple(data.draw(st.integers(-1, 3)) for _ in range(2 * k))
    F = torch.nn.functional
    try:
        want = F.pad(torch.tensor(a), p)
    except RuntimeError:
        with pytest.raises(ValueError):
            S.pad(ember.tensor(a), p)
        return
    assert want.shape == tuple(S.pad(ember.tensor(a), p).shape)
    check(lambda x: S.pad(x, p), lambda x: F.pad(x, p), a)
