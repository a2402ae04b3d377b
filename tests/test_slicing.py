"""Negative-step slicing (NumPy semantics, which PyTorch refuses): values and views against
NumPy; gradients, setitem and in-place writes through views against PyTorch built from
``torch.flip`` plus positive-step slices; float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.ops import _core
from ember.ops import indexing as I

RNG = np.random.default_rng(21)
SHAPE = (5, 6, 4)


def R(*shape):
    return RNG.standard_normal(shape)


def _mask(*shape):
    m = RNG.standard_normal(shape) > 0
    m.flat[0] = True
    return m


# Index expressions over SHAPE; arrays are NumPy (converted to tensors for ember/torch).
INDICES = [
    np.s_[::-1],
    np.s_[5:0:-2],
    np.s_[:, ::-3],
    np.s_[1, ::-1, 2],
    np.s_[..., ::-2],
    np.s_[None, 3:0:-1, ..., None, -1::-3],
    np.s_[100:-100:-1, -100:100:-1],  # out-of-range bounds clamp
    np.s_[0:3:-1],  # empty
    np.s_[-1:-7:-2, :, 3:1:-1],
    np.s_[::-1, ::-1, ::-1],
    np.s_[::-1, np.array([0, 5, 2])],  # with an integer array
    np.s_[np.array([4, 0]), ::-2, np.array([1, 3])],  # arrays split by a reversed slice
    np.s_[_mask(5), ::-1],  # with a boolean mask
    np.s_[::-2, _mask(6, 4)],
    np.s_[[0, 1], ::-1, True],
    np.s_[np.int64(4) : np.int32(1) : np.int8(-1)],
    np.s_[::-100, -1:-2:-1, ::100],  # steps longer than the dim
    np.s_[:, 4:4:-1],  # empty in the middle
]


def _to(mod, idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    return tuple(
        (ember.tensor(i) if mod is ember else torch.tensor(i)) if isinstance(i, np.ndarray) else i
        for i in idx
    )


def _width(i):
    """How many dims of the indexed tensor ``i`` consumes."""
    if i is None or i is Ellipsis:
        return 0
    if isinstance(i, (np.ndarray, list, bool)):
        a = np.asarray(i)
        return a.ndim if a.dtype == np.bool_ else 1
    return 1


def _translate(shape, idx):
    """(dims to flip, index on the flipped tensor) equal to ``idx``: each negative-step slice
    becomes a flip of its dim plus the positive-step slice that picks the same elements in
    the same order."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    fill = len(shape) - sum(_width(i) for i in idx)
    out, flips, d = [], [], 0
    for i in idx:
        w = fill if i is Ellipsis else _width(i)
        if isinstance(i, slice) and i.step is not None and int(i.step) < 0:
            n = shape[d]
            pick = range(*slice(i.start, i.stop, int(i.step)).indices(n))
            j0 = n - 1 - pick[0] if len(pick) else 0
            stop = j0 + (len(pick) - 1) * -pick.step + 1 if len(pick) else 0
            i = slice(j0, stop, -pick.step)
            flips.append(d)
        elif isinstance(i, np.ndarray):
            i = torch.tensor(i)
        out.append(i)
        d += w
    return flips, tuple(out)


def _torch_equiv(t, idx):
    """``t[idx]`` for a torch tensor, negative steps included."""
    flips, pos = _translate(t.shape, idx)
    return (t.flip(flips) if flips else t)[pos]


def _torch_set(t, idx, fn):
    """Out-of-place torch equivalent of ``t[idx] = fn(t[idx])``: flip, update the
    positive-step selection, flip back (flip copies, so this stays functional)."""
    flips, pos = _translate(t.shape, idx)
    z = t.flip(flips).clone()
    z[pos] = fn(z[pos].clone())  # the clone keeps fn's saved tensors out of z
    return z.flip(flips)


def _fd_check(f, a, eps=1e-6):
    """Central finite differences of ``sum(f(x) * w)`` against ember's gradient (float64)."""
    x = ember.tensor(a, requires_grad=True)
    y = f(x)
    w = R(*y.shape)
    (y * ember.tensor(w)).sum().backward()
    num = np.zeros_like(a)
    for k in range(a.size):
        d = np.zeros_like(a)
        d.flat[k] = eps
        hi = (f(ember.tensor(a + d)).numpy() * w).sum()
        lo = (f(ember.tensor(a - d)).numpy() * w).sum()
        num.flat[k] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), num, atol=1e-6)


# -- values and views ------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(len(INDICES)))
def test_values_and_views_match_numpy(k):
    a = R(*SHAPE)
    x = ember.tensor(a)
    want = a[INDICES[k]]
    got = x[_to(ember, INDICES[k])]
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    # a view exactly where NumPy gives one (an empty view shares no memory)
    is_view = want.base is a
    assert np.shares_memory(got.numpy(), x.numpy()) == (is_view and want.size > 0)
    assert (got._base is x) == is_view
    if want.size:
        assert got.stride() == tuple(s // a.itemsize for s in want.strides)


@pytest.mark.parametrize("k", range(len(INDICES)))
def test_oracle_agrees_with_numpy(k):
    """The flip-based torch oracle itself picks what NumPy picks."""
    a = R(*SHAPE)
    np.testing.assert_array_equal(_torch_equiv(torch.tensor(a), INDICES[k]).numpy(), a[INDICES[k]])


def test_zero_size_tensor():
    x = ember.zeros(0, 3, requires_grad=True)
    y = (x * 2.0)[::-1, ::-2]
    assert tuple(y.shape) == np.zeros((0, 3))[::-1, ::-2].shape
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3)


def test_view_writes_reach_base_and_share_version():
    a = R(*SHAPE)
    x = ember.tensor(a.copy())
    v = x[4:0:-2, ::-1]
    v0 = x._version[0]
    v.mul_(0.0)
    a[4:0:-2, ::-1] = 0.0
    np.testing.assert_array_equal(x.numpy(), a)
    assert x._version[0] == v._version[0] == v0 + 1
    w = v[::-1, 1]  # a view of a view: still the same storage and counter
    w.fill_(3.0)
    a[4:0:-2, ::-1][::-1, 1] = 3.0
    np.testing.assert_array_equal(x.numpy(), a)
    assert w._base is x and x._version[0] == v0 + 2
    x[::-1].add_(1.0)  # writes through the base reach earlier views too
    np.testing.assert_array_equal(v.numpy(), (a + 1.0)[4:0:-2, ::-1])


def test_modified_view_invalidates_saved_tensor():
    x = ember.tensor(R(4, 3), requires_grad=True)
    y = x * 1.0
    z = y[::-1].exp()  # exp saves its output, a fresh array; sin saves the view itself
    s = y[::-2].sin()
    y[::-1].add_(1.0)
    z.sum().backward(retain_graph=True)  # exp's saved output was not touched
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.sum().backward()


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(len(INDICES)))
def test_getitem_grad_matches_torch_flip(k):
    a = R(*SHAPE)
    x = ember.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    ye = (x * 2.0)[_to(ember, INDICES[k])]
    yt = _torch_equiv(t * 2.0, INDICES[k])
    w = R(*yt.shape)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("k", [0, 1, 5, 8, 10, 12])
def test_getitem_grad_finite_differences(k):
    _fd_check(lambda x: x[_to(ember, INDICES[k])], R(*SHAPE))


def test_double_backward():
    a = R(5, 4)
    x = ember.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    (ge,) = ember.autograd.grad((x[4:0:-2, ::-1] ** 3).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad((t.flip([0, 1])[0:4:2] ** 3).sum(), t, create_graph=True)
    (ge[::-1] * ember.tensor(a)).sum().backward()
    (gt.flip([0]) * torch.tensor(a)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-9, 9)),
            st.one_of(st.none(), st.integers(-9, 9)),
            st.one_of(st.none(), st.integers(-4, 4).filter(bool)),
        ),
        min_size=1,
        max_size=2,
    )
)
def test_any_slice_matches_numpy_and_torch(parts):
    idx = tuple(slice(*p) for p in parts)
    a = R(5, 6)
    x = ember.tensor(a, requires_grad=True)
    y = x[idx]
    np.testing.assert_array_equal(y.detach().numpy(), a[idx])
    t = torch.tensor(a, requires_grad=True)
    yt = _torch_equiv(t, idx)
    w = R(*yt.shape)
    (y * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-12)


# -- setitem ---------------------------------------------------------------------------------
SET_CASES = [
    (np.s_[::-1], (6, 4)),
    (np.s_[5:0:-2], ()),
    (np.s_[:, ::-3], (5, 2, 4)),
    (np.s_[1, ::-1, 3:0:-2], (2,)),
    (np.s_[np.array([0, 3]), ::-2], (3, 4)),
    (np.s_[..., 100::-3], (5, 6, 2)),
]


@pytest.mark.parametrize("k", range(len(SET_CASES)))
def test_setitem_assign_and_iadd_grads(k):
    idx, vshape = SET_CASES[k]
    a, v = R(*SHAPE), R(*vshape)
    x, ve = ember.tensor(a, requires_grad=True), ember.tensor(v, requires_grad=True)
    t, vt = torch.tensor(a, requires_grad=True), torch.tensor(v, requires_grad=True)
    y = x * 2.0
    y[_to(ember, idx)] = ve * 3.0
    y[_to(ember, idx)] += 1.0
    y[_to(ember, idx)] *= ve
    yt = _torch_set(t * 2.0, idx, lambda s: vt * 3.0 + 0 * s)
    yt = _torch_set(yt, idx, lambda s: s + 1.0)
    yt = _torch_set(yt, idx, lambda s: s * vt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-12)
    w = R(*SHAPE)
    (y * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ve.grad.numpy(), vt.grad.numpy(), atol=1e-12)


def test_setitem_values_match_numpy_without_grad():
    a = R(*SHAPE)
    x = ember.tensor(a.copy())
    x[::-1] = ember.tensor(a[0])
    x[5:0:-2] += 1
    x[:, 10:-10:-4, 1] = 7.0
    a[::-1] = a[0].copy()
    a[5:0:-2] += 1
    a[:, 10:-10:-4, 1] = 7.0
    np.testing.assert_array_equal(x.numpy(), a)


def test_setitem_overlapping_self_and_versions():
    a = np.arange(12.0).reshape(4, 3)
    x = ember.tensor(a.copy())
    v0 = x._version[0]
    x[::-1] = x  # reads the old values: a reversal, as in NumPy
    a[::-1] = a.copy()
    np.testing.assert_array_equal(x.numpy(), a)
    assert x._version[0] == v0 + 1
    x[::-1] += x
    b = a.copy()
    b[::-1] += b  # NumPy buffers overlapping operands
    np.testing.assert_array_equal(x.numpy(), b)
    x[1::-1, ::-2] = x[2:, :2]
    b[1::-1, ::-2] = b[2:, :2]
    np.testing.assert_array_equal(x.numpy(), b)


def test_setitem_finite_differences():
    v = R(3, 4)

    def f(x):
        y = x * 1.0
        # clone: mul saves its inputs, and a saved view of y would go stale
        y[::-2, 4:1:-1] = y[::-2, 1:4].clone() * ember.tensor(v)
        return y

    _fd_check(f, R(*SHAPE))


def test_inplace_through_view_grads():
    a = R(*SHAPE)
    x = ember.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y = x * 2.0
    v = y[::-1, 5:0:-2]
    v.exp_()  # exp saves its output: the update reaches y through the view
    v[::-1, :, 0].mul_(3.0)
    (y**2).sum().backward()
    yt = _torch_set(t * 2.0, np.s_[::-1, 5:0:-2], lambda s: s.exp())
    yt = _torch_set(yt, np.s_[:, 1:6:2, 0], lambda s: s * 3.0)  # same entries, plain steps
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-12)
    (yt**2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-12)


# -- other ops on negative-stride views ---------------------------------------------------------
def test_ops_accept_negative_strides():
    a, k, m = R(2, 3, 6, 6), R(4, 3, 3, 3), R(1, 2)
    x = ember.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    ye = ember.nn.functional.conv2d(x[:, ::-1, ::-1, ::-2], ember.tensor(k))
    yt = torch.nn.functional.conv2d(_torch_equiv(t, np.s_[:, ::-1, ::-1, ::-2]), torch.tensor(k))
    ye = (ye.relu() @ ember.tensor(m))[::-1].softmax(-1).sum(1)
    yt = (yt.relu() @ torch.tensor(m)).flip([0]).softmax(-1).sum(1)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), atol=1e-10)
    ye.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-10)
    r = ember.tensor(R(4, 5))[::-1, ::-2]
    assert not r.is_contiguous() and r.stride() == (-5, -2)
    c = r.contiguous()
    assert c.is_contiguous() and np.array_equal(c.numpy(), r.numpy())


def test_save_load_negative_stride_view(tmp_path):
    x = ember.tensor(R(4, 5))
    ember.save({"v": x[::-1, 4:0:-3]}, tmp_path / "v.ember")
    v = ember.load(tmp_path / "v.ember")["v"]
    np.testing.assert_array_equal(v.numpy(), x.numpy()[::-1, 4:0:-3])
    assert not np.shares_memory(v.numpy(), x.numpy())


def test_dlpack_refuses_negative_strides():
    x = ember.arange(6.0)
    with pytest.raises(BufferError, match="negative strides.*contiguous"):
        torch.from_dlpack(x[::-1])
    assert torch.from_dlpack(x[::-1].contiguous()).tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    y = ember.from_dlpack(x[::-2])  # ember to ember shares the view as is
    assert y.tolist() == [5.0, 3.0, 1.0] and np.shares_memory(y.numpy(), x.numpy())


# -- static params and errors ----------------------------------------------------------------
class _Recorder:
    def __init__(self):
        self.calls = []

    def process(self, prim, args, params):
        self.calls.append((prim, params))
        raise _Stop


class _Stop(Exception):
    pass


def _static(v):
    if isinstance(v, slice):
        return all(type(b) is int or b is None for b in (v.start, v.stop, v.step))
    if isinstance(v, tuple):
        return all(_static(i) for i in v)
    return v is None or v is Ellipsis or type(v) in (int, bool) or isinstance(v, np.ndarray)


def test_slice_bounds_become_static_int_params():
    x = ember.tensor(R(5, 6))
    rec = _Recorder()
    prev, _core._state.tracer = _core._state.tracer, rec
    try:
        for idx in [
            np.s_[np.int64(4) : np.int16(0) : np.int8(-2)],
            np.s_[ember.tensor(3) :: ember.tensor(-1), True::-1],
        ]:
            with pytest.raises(_Stop):
                x[idx]
        with pytest.raises(_Stop):
            I.index_put_value(x, np.s_[:, np.int64(9) : -9 : np.int64(-3)], 1.0)
    finally:
        _core._state.tracer = prev
    assert [p for p, _ in rec.calls] == [I.getitem_p, I.getitem_p, I.index_put_p]
    for _, params in rec.calls:
        assert _static(params["idx"])
    for _, params in rec.calls[:2]:
        assert all(type(s) is int for s in params["shape"])
    assert rec.calls[0][1]["idx"] == (slice(4, 0, -2),)
    assert rec.calls[1][1]["idx"] == (slice(3, None, -1), slice(1, None, -1))
    assert rec.calls[2][1]["idx"] == (slice(None), slice(9, -9, -3))


def test_slice_errors():
    x = ember.zeros(4, 3)
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        x[::0]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        x[:, 1:2:0] = 1.0
    with pytest.raises(IndexError, match="slice start must be an integer.*got float"):
        x[1.0:]
    with pytest.raises(IndexError, match="slice step must be an integer.*got str"):
        x[::"a"]
    with pytest.raises(IndexError, match="slice stop must be an integer.*2 elements"):
        x[: ember.tensor([1, 2])]
    with pytest.raises(ValueError, match="shape mismatch"):
        x[::-1] = ember.ones(3, 3)
