"""Indexing ops against PyTorch: getitem/setitem, gather/scatter, index_*, masked_*, sort,
topk, unique, nonzero, take, one_hot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.ops import indexing as I

RNG = np.random.default_rng(1)


def R(*shape):
    return np.asarray(RNG.standard_normal(shape))


def _conv(a, mod):
    if isinstance(a, np.ndarray):
        rg = a.dtype.kind == "f"
        return (
            ember.tensor(a, requires_grad=rg) if mod is ember else torch.tensor(a, requires_grad=rg)
        )
    return a


def check(fe, ft, *arrays, atol=1e-6):
    es = [_conv(a, ember) for a in arrays]
    ts = [_conv(a, torch) for a in arrays]
    oe, ot = fe(*es), ft(*ts)
    if isinstance(ot, (tuple, list)):
        assert len(oe) == len(ot)
        for a, b in zip(oe, ot):
            assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol)
        oe, ot = oe[0], ot[0]
    assert tuple(oe.shape) == tuple(ot.shape), (oe.shape, ot.shape)
    np.testing.assert_allclose(oe.detach().numpy(), ot.detach().numpy(), atol=atol)
    if ot.requires_grad:
        w = RNG.standard_normal(tuple(ot.shape))
        (oe * ember.tensor(w)).sum().backward()
        (ot * torch.tensor(w)).sum().backward()
        for e, t in zip(es, ts):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                if t.grad is None:
                    assert e.grad is None or not e.grad.numpy().any()
                else:
                    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), atol=atol)


def L(*v):
    return np.array(v, dtype=np.int64)


# -- getitem -------------------------------------------------------------------------------
B = np.array
GETITEM = [
    lambda m: (slice(None, None, 2), 1),
    lambda m: (-1, slice(-3, None)),
    lambda m: (Ellipsis, 0),
    lambda m: (None, 1, Ellipsis, None),
    lambda m: (m.tensor(L(0, 2, 2)),),
    lambda m: (m.tensor(L(-1, 0)), slice(None), m.tensor(L(1, 3))),  # non-adjacent
    lambda m: (slice(None), m.tensor(L(0, 2)), m.tensor(L(1, 0))),  # adjacent
    lambda m: (m.tensor(L(0, 1)).reshape(2, 1), slice(1, 3), m.tensor(L(0, 3, 2))),  # bcast
    lambda m: (m.tensor(R(3, 4, 5) > 0),),
    lambda m: (m.tensor(R(3, 4) > 0), slice(None, None, 2)),
    lambda m: (1, m.tensor(R(4) > 0)),
    lambda m: (Ellipsis, m.tensor(L(4, 0, 1))),
    lambda m: (None, m.tensor(L(2)), Ellipsis),
    lambda m: (slice(1, 1),),
    lambda m: ([0, 2], 1),
    lambda m: (m.tensor(L(0, 1)), None, 2),
]


@pytest.mark.parametrize("k", range(len(GETITEM)))
def test_getitem(k):
    a = R(3, 4, 5)
    state = RNG.bit_generator.state
    ie = GETITEM[k](ember)
    RNG.bit_generator.state = state
    it = GETITEM[k](torch)
    check(lambda x: x[ie], lambda x: x[it], a)
    check(
        lambda x: x.transpose(0, 1).transpose(0, 1)[ie],
        lambda x: x.transpose(0, 1).transpose(0, 1)[it],
        a,
    )


def test_getitem_errors():
    x = ember.randn(3, 4)
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 4"):
        x[0, 4]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="shape of the mask"):
        x[ember.tensor([True, False])]
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        x[ember.tensor([0.5])]


def test_getitem_mask_is_data_dependent():
    assert I.getitem_mask_p.data_dependent and not I.getitem_p.data_dependent


# -- setitem -------------------------------------------------------------------------------
SETITEM = [
    (lambda m: (slice(None), 1), (3, 5)),
    (lambda m: (m.tensor(L(0, 2)), slice(None), m.tensor(L(1, 3))), (2, 4)),
    (lambda m: (m.tensor(L(0, 2)),), (1, 5)),
    (lambda m: (Ellipsis, 0), ()),
    (lambda m: (slice(0, 3, 2), None, 2), (2, 1, 5)),
]


@pytest.mark.parametrize("k", range(len(SETITEM)))
def test_setitem_grads(k):
    fn, vshape = SETITEM[k]
    a, v = R(3, 4, 5), R(*vshape)

    def run(m, x, val):
        y = x * 2  # non-leaf
        y[fn(m)] = val
        return y * 3

    check(lambda x, val: run(ember, x, val), lambda x, val: run(torch, x, val), a, v)


def test_setitem_mask_and_scalar():
    a = R(3, 4)
    m = a > 0

    def run(mod, x):
        y = x + 0
        y[mod.tensor(m)] = 7.0
        y[0] = 1.5
        return y

    check(lambda x: run(ember, x), lambda x: run(torch, x), a)


def test_setitem_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(ValueError, match="setitem: shape mismatch"):
        x[0] = ember.ones(3)
    leaf = ember.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        leaf[0] = 1.0


# -- gather / scatter ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,dim,ishape",
    [
        ((3, 4), 1, (3, 2)),
        ((3, 4), 0, (5, 4)),
        ((3, 4, 2), -1, (2, 3, 4)),
        ((3, 4), 1, (3, 0)),
        ((3, 4), 0, (2, 2)),
    ],
)
def test_gather(shape, dim, ishape):
    n = shape[dim]
    idx = RNG.integers(0, n, ishape)
    check(
        lambda x, i: ember.gather(x, dim, i), lambda x, i: torch.gather(x, dim, i), R(*shape), idx
    )
    check(
        lambda x, i: x.transpose(0, 1).transpose(0, 1).gather(dim, i),
        lambda x, i: x.transpose(0, 1).transpose(0, 1).gather(dim, i),
        R(*shape),
        idx,
    )


def test_gather_errors():
    x = ember.randn(3, 4)
    with pytest.raises(IndexError, match="gather.*index 4 is out of bounds for dimension 1"):
        ember.gather(x, 1, ember.tensor([[4]]))
    with pytest.raises(ValueError, match="gather.*same number of dimensions"):
        ember.gather(x, 1, ember.tensor([1]))
    with pytest.raises(TypeError, match="gather.*integer"):
        ember.gather(x, 1, ember.tensor([[1.0]]))


def _perm_index(shape, dim, n):
    """An index of ``shape`` whose entries along ``dim`` are distinct (deterministic scatter)."""
    out = np.empty(shape, np.int64)
    for pos in np.ndindex(*[s for i, s in enumerate(shape) if i != dim]):
        p = RNG.permutation(n)[: shape[dim]]
        sl = list(pos)
        sl.insert(dim, slice(None))
        out[tuple(sl)] = p
    return out


@pytest.mark.parametrize(
    "shape,dim,ishape,sshape",
    [
        ((3, 5), 1, (3, 2), (3, 2)),
        ((4, 3), 0, (2, 3), (3, 3)),
        ((2, 3, 4), -1, (2, 2, 3), (2, 3, 3)),
    ],
)
def test_scatter_and_scatter_add(shape, dim, ishape, sshape):
    idx = _perm_index(ishape, dim % len(shape), shape[dim])
    # torch has no scatter gradient when src is larger than index: compare grads on src[:ishape]
    check(
        lambda x, i, s: x.scatter(dim, i, s),
        lambda x, i, s: x.scatter(dim, i, s),
        R(*shape),
        idx,
        R(*ishape),
    )
    check(
        lambda x, i: ember.scatter(x, dim, i, value=2.5),
        lambda x, i: torch.scatter(x, dim, i, value=2.5),
        R(*shape),
        idx,
    )
    dup = RNG.integers(0, shape[dim], ishape)
    check(
        lambda x, i, s: x.scatter_add(dim, i, s),
        lambda x, i, s: x.scatter_add(dim, i, s),
        R(*shape),
        dup,
        R(*ishape),
    )
    a, s = R(*shape), R(*sshape)
    e = ember.tensor(a).scatter(dim, ember.tensor(dup), ember.tensor(s), reduce="add")
    t = torch.tensor(a).scatter(dim, torch.tensor(dup), torch.tensor(s), reduce="add")
    np.testing.assert_allclose(e.numpy(), t.numpy())
    # src larger than index: values vs torch, gradient = scattered entries (zeros elsewhere)
    e = ember.tensor(s, requires_grad=True)
    out = ember.tensor(a).scatter(dim, ember.tensor(idx), e)
    np.testing.assert_allclose(
        out.detach().numpy(),
        torch.tensor(a).scatter(dim, torch.tensor(idx), torch.tensor(s)).numpy(),
    )
    out.sum().backward()
    want = np.zeros(sshape)
    want[tuple(slice(0, k) for k in ishape)] = 1
    np.testing.assert_allclose(e.grad.numpy(), want)


def test_scatter_inplace_and_errors():
    x = ember.zeros(2, 3)
    x.scatter_(1, ember.tensor([[2], [0]]), ember.ones(2, 1))
    assert x.tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="scatter.*must not exceed the src shape"):
        ember.scatter(ember.zeros(3, 3), 0, ember.tensor([[0, 1]]), ember.ones(1, 1))
    with pytest.raises(IndexError, match="scatter.*out of bounds"):
        ember.scatter(ember.zeros(3, 3), 0, ember.tensor([[3]]), 1.0)
    with pytest.raises(ValueError, match="reduce argument"):
        ember.scatter(ember.zeros(3, 3), 0, ember.tensor([[1]]), 1.0, reduce="max")
    t = ember.ones(2, 3)
    t2 = t.scatter(0, ember.tensor([[1, 0, 1]]), 3.0, reduce="multiply")
    assert (
        t2.tolist()
        == torch.ones(2, 3).scatter(0, torch.tensor([[1, 0, 1]]), 3.0, reduce="multiply").tolist()
    )


# -- index_select / index_add / index_fill ---------------------------------------------------
@pytest.mark.parametrize(
    "shape,dim,idx",
    [((4, 3), 0, L(0, 3, 3, 1)), ((4, 3), -1, L(2)), ((2, 3, 4), 2, L()), ((5,), 0, L(4, 0))],
)
def test_index_select_add_fill(shape, dim, idx):
    check(lambda x, i: x.index_select(dim, i), lambda x, i: x.index_select(dim, i), R(*shape), idx)
    sshape = list(shape)
    sshape[dim] = len(idx)
    check(
        lambda x, i, s: x.index_add(dim, i, s, alpha=2.0),
        lambda x, i, s: x.index_add(dim, i, s, alpha=2.0),
        R(*shape),
        idx,
        R(*sshape),
    )
    check(
        lambda x, i: x.index_fill(dim, i, -1.5),
        lambda x, i: x.index_fill(dim, i, -1.5),
        R(*shape),
        idx,
    )
    check(
        lambda x, i, v: x.index_fill(dim, i, v.sum()),
        lambda x, i, v: x.index_fill(dim, i, v.sum()),
        R(*shape),
        idx,
        R(2),
    )


def test_index_errors():
    x = ember.randn(4, 3)
    with pytest.raises(IndexError, match="index_select.*index 4 is out of bounds"):
        x.index_select(0, ember.tensor([4]))
    with pytest.raises(ValueError, match="index_select.*vector"):
        x.index_select(0, ember.tensor([[0]]))
    with pytest.raises(ValueError, match=r"index_add: source shape \(2, 3\) must be \(1, 3\)"):
        x.index_add(0, ember.tensor([0]), ember.ones(2, 3))
    with pytest.raises(ValueError, match="index_fill.*0-dimensional value"):
        x.index_fill(0, ember.tensor([0]), ember.ones(2))


# -- masked_fill / masked_select -------------------------------------------------------------
@pytest.mark.parametrize(
    "xs,ms", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((0, 4), (4,)), ((), ())]
)
def test_masked(xs, ms):
    m = np.asarray(R(*ms) > 0)
    check(lambda x, mk: x.masked_fill(mk, 3.0), lambda x, mk: x.masked_fill(mk, 3.0), R(*xs), m)
    check(
        lambda x, mk, v: x.masked_fill(mk, v.sum()),
        lambda x, mk, v: x.masked_fill(mk, v.sum()),
        R(*xs),
        m,
        R(3),
    )
    check(lambda x, mk: x.masked_select(mk), lambda x, mk: x.masked_select(mk), R(*xs), m)
    check(
        lambda x, mk: ember.masked_select(x, mk),
        lambda x, mk: torch.masked_select(x, mk),
        R(*ms),
        np.asarray(R(*xs) > 0),
    )


def test_masked_fill_int_and_errors():
    x = ember.tensor([1, 2, 3])
    assert x.masked_fill(ember.tensor([True, False, True]), 9).tolist() == [9, 2, 9]
    assert x.masked_fill(ember.tensor([True, False, True]), 9).dtype == ember.int64
    with pytest.raises(ValueError, match=r"masked_fill: the mask of shape \(4,\)"):
        x.masked_fill(ember.tensor([True] * 4), 0)
    with pytest.raises(TypeError, match="masked_fill.*bool"):
        x.masked_fill(ember.tensor([1, 0, 1]), 0)
    y = ember.zeros(3)
    y.masked_fill_(ember.tensor([True, False, True]), 2.0)
    assert y.tolist() == [2, 0, 2]


# -- take / take_along_dim -------------------------------------------------------------------
def test_take_and_take_along_dim():
    check(
        lambda x, i: ember.take(x, i),
        lambda x, i: torch.take(x, i),
        R(3, 4),
        L(0, -1, 5, 5).reshape(2, 2),
    )
    check(
        lambda x, i: x.take_along_dim(i, 1),
        lambda x, i: x.take_along_dim(i, 1),
        R(3, 4),
        RNG.integers(0, 4, (1, 6)),
    )
    check(
        lambda x, i: ember.take_along_dim(x, i),
        lambda x, i: torch.take_along_dim(x, i),
        R(3, 4),
        RNG.integers(0, 12, (5,)),
    )
    with pytest.raises(IndexError, match="take.*out of bounds"):
        ember.take(ember.randn(2, 2), ember.tensor([4]))
    with pytest.raises(ValueError, match="take_along_dim.*same number of dimensions"):
        ember.take_along_dim(ember.randn(2, 2), ember.tensor([1]), 0)


def test_max_min_dim_uses_take_along_dim():
    check(lambda x: ember.max(x, 1), lambda x: torch.max(x, 1), R(3, 4))
    check(lambda x: x.min(0, keepdim=True), lambda x: x.min(0, keepdim=True), R(3, 4))


# -- sort / argsort / topk -------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 0, 3), -1), ((), 0)]
)
@pytest.mark.parametrize("desc", [False, True])
def test_sort(shape, dim, desc):
    check(lambda x: x.sort(dim, descending=desc), lambda x: x.sort(dim, descending=desc), R(*shape))
    check(
        lambda x: ember.argsort(x, dim, descending=desc),
        lambda x: torch.argsort(x, dim, descending=desc),
        R(*shape),
    )


def test_sort_stable_ties_nan_ints():
    a = np.array([3, 1, 2, 1, 3, 2, 1])
    for desc in (False, True):
        e = ember.tensor(a).sort(descending=desc, stable=True)
        t = torch.tensor(a).sort(descending=desc, stable=True)
        assert e.values.tolist() == t.values.tolist()
        assert e.indices.tolist() == t.indices.tolist()
    f = np.array([1.0, np.nan, -2.0, np.inf])
    for desc in (False, True):
        assert (
            ember.tensor(f).argsort(descending=desc).tolist()
            == torch.tensor(f).argsort(descending=desc).tolist()
        )
    b = np.array([True, False, True])
    assert (
        ember.tensor(b).sort(stable=True).indices.tolist()
        == torch.tensor(b).sort(stable=True).indices.tolist()
    )


@pytest.mark.parametrize(
    "shape,k,dim,largest",
    [((6,), 3, 0, True), ((3, 5), 2, 1, False), ((4, 3), 4, 0, True), ((3, 4), 0, -1, True)],
)
def test_topk(shape, k, dim, largest):
    check(
        lambda x: x.topk(k, dim, largest=largest),
        lambda x: x.topk(k, dim, largest=largest),
        R(*shape),
    )
    r = ember.randn(*shape).topk(k, dim)
    assert r.values is r[0] and r.indices is r[1]


def test_topk_kthvalue_errors():
    with pytest.raises(IndexError, match=r"topk: selected index k \(5\) out of range"):
        ember.randn(3, 4).topk(5)
    check(lambda x: x.kthvalue(2, 1), lambda x: x.kthvalue(2, 1), R(3, 4))


def test_sort_fd_grad():
    a = R(3, 5)
    x = ember.tensor(a, requires_grad=True)
    x.sort(1, descending=True).values[:, :2].sum().backward()
    want = np.zeros_like(a)
    top2 = np.argsort(-a, 1)[:, :2]
    np.put_along_axis(want, top2, 1.0, 1)
    np.testing.assert_allclose(x.grad.numpy(), want)


# -- unique / nonzero / one_hot ---------------------------------------------------------------
def test_unique():
    a = RNG.integers(0, 4, (3, 5))
    for inv in (False, True):
        for cnt in (False, True):
            e = ember.unique(ember.tensor(a), return_inverse=inv, return_counts=cnt)
            t = torch.unique(torch.tensor(a), return_inverse=inv, return_counts=cnt)
            e, t = (e, t) if isinstance(t, tuple) else ((e,), (t,))
            for u, v in zip(e, t):
                assert u.tolist() == v.tolist() and u.dtype.name == str(v.dtype)[6:]
    b = np.array([[1, 2], [0, 1], [1, 2]])
    e = ember.tensor(b).unique(dim=0, return_inverse=True, return_counts=True)
    t = torch.tensor(b).unique(dim=0, return_inverse=True, return_counts=True)
    for u, v in zip(e, t):
        assert u.tolist() == v.tolist()
    assert ember.tensor([2.5, 1.0, 2.5]).unique().tolist() == [1.0, 2.5]
    assert I.unique_p.data_dependent and I.nonzero_p.data_dependent


@pytest.mark.parametrize("shape", [(3, 4), (5,), (0, 3), ()])
def test_nonzero(shape):
    a = (RNG.integers(0, 2, shape) * RNG.integers(1, 5, shape)).astype(np.float32)
    assert ember.tensor(a).nonzero().tolist() == torch.tensor(a).nonzero().tolist()
    assert tuple(ember.tensor(a).nonzero().shape) == tuple(torch.tensor(a).nonzero().shape)
    e = ember.nonzero(ember.tensor(a), as_tuple=True)
    t = torch.nonzero(torch.tensor(a), as_tuple=True)
    assert len(e) == len(t) and all(u.tolist() == v.tolist() for u, v in zip(e, t))
    assert all(
        x.tolist() == y.tolist()
        for x, y in zip(ember.where(ember.tensor(a) > 0), torch.where(torch.tensor(a) > 0))
    )


def test_one_hot():
    F = torch.nn.functional
    a = np.array([[0, 3], [1, 1]])
    assert I.one_hot(ember.tensor(a)).tolist() == F.one_hot(torch.tensor(a)).tolist()
    r = I.one_hot(ember.tensor(a), num_classes=5)
    assert r.dtype == ember.int64 and r.tolist() == F.one_hot(torch.tensor(a), 5).tolist()
    assert tuple(I.one_hot(ember.tensor(np.zeros(0, np.int64)), 3).shape) == (0, 3)
    with pytest.raises(ValueError, match="one_hot.*smaller than num_classes"):
        I.one_hot(ember.tensor(a), 3)
    with pytest.raises(ValueError, match="one_hot.*non-negative"):
        I.one_hot(ember.tensor([-1]), 3)
    with pytest.raises(TypeError, match="one_hot.*index tensors"):
        I.one_hot(ember.tensor([1.0]))


# -- property tests --------------------------------------------------------------------------
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@settings(max_examples=25, deadline=None)
@given(shapes, st.data())
def test_gather_index_select_property(shape, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    n = shape[dim]
    ishape = tuple(
        data.draw(st.integers(0, s)) if i != dim % nd else data.draw(st.integers(0, 5))
        for i, s in enumerate(shape)
    )
    idx = RNG.integers(0, n, ishape)
    check(lambda x, i: x.gather(dim, i), lambda x, i: x.gather(dim, i), R(*shape), idx)
    sel = RNG.integers(-0, n, data.draw(st.integers(0, 4)))
    check(lambda x, i: x.index_select(dim, i), lambda x, i: x.index_select(dim, i), R(*shape), sel)


@settings(max_examples=25, deadline=None)
@given(shapes, st.data())
def test_sort_topk_property(shape, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    k = data.draw(st.integers(0, shape[dim]))
    desc = data.draw(st.booleans())
    a = R(*shape)
    check(lambda x: x.sort(dim, descending=desc), lambda x: x.sort(dim, descending=desc), a)
    check(lambda x: x.topk(k, dim), lambda x: x.topk(k, dim), a)
