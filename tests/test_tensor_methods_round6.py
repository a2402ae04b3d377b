"""Tensor methods PyTorch users call: ``put_``/``index_put_`` (values and gradients),
``sum_to_size``, ``ndimension``, ``allclose``, ``storage_offset``, ``type``, ``sign`` of
bool tensors, and the in-place random fills (``exponential_``, ``geometric_``, ``cauchy_``,
``log_normal_``, ``random_``: their distributions, bounds, errors and seeding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember

_RNG = np.random.default_rng(6)


def _pair(shape, requires_grad=False):
    a = _RNG.standard_normal(shape).astype(np.float32)
    return (
        ember.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


def _close(e, t, **kw):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-6)


# -- put_ / put / index_put_ / index_put ----------------------------------------------------
@pytest.mark.parametrize("accumulate", [False, True])
def test_put_inplace_and_out_of_place_match_torch(accumulate):
    idx = [0, 5, -1, 2] if not accumulate else [0, 5, 5, -1, 0]
    xe, xt = _pair((2, 3))
    se, st = _pair((len(idx),))
    ie, it = ember.tensor(idx), torch.tensor(idx)
    _close(ember.put(xe, ie, se, accumulate), torch.put(xt, it, st, accumulate))
    _close(xe.put(ie, se, accumulate=accumulate), xt.put(it, st, accumulate=accumulate))
    r = xe.put_(ie, se, accumulate)
    assert r is xe
    xt.put_(it, st, accumulate)
    _close(xe, xt)


@pytest.mark.parametrize("accumulate", [False, True])
def test_put_inplace_gradients_match_torch(accumulate):
    idx = [1, 4, 0] if not accumulate else [1, 1, 4]
    xe, xt = _pair((2, 3), requires_grad=True)
    se, st = _pair((3,), requires_grad=True)
    ye, yt = xe * 2, xt * 2
    ye.put_(ember.tensor(idx), se, accumulate=accumulate)
    yt.put_(torch.tensor(idx), st, accumulate=accumulate)
    w = _RNG.standard_normal((2, 3)).astype(np.float32)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _close(ye, yt)
    _close(xe.grad, xt.grad)
    _close(se.grad, st.grad)


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_inplace_values_and_gradients_match_torch(accumulate):
    rows, cols = [0, 2, 2], [1, 0, 0] if accumulate else [1, 0, 3]
    xe, xt = _pair((3, 4), requires_grad=True)
    ve, vt = _pair((3,), requires_grad=True)
    ye, yt = xe + 0, xt + 0
    r = ye.index_put_((ember.tensor(rows), ember.tensor(cols)), ve, accumulate=accumulate)
    assert r is ye
    yt.index_put_((torch.tensor(rows), torch.tensor(cols)), vt, accumulate=accumulate)
    _close(ye, yt)
    w = _RNG.standard_normal((3, 4)).astype(np.float32)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _close(xe.grad, xt.grad)
    _close(ve.grad, vt.grad)
    # the method form of the out-of-place op
    xe2, xt2 = _pair((3, 4))
    _close(
        xe2.index_put([ember.tensor(rows)], ember.tensor(1.5), accumulate),
        xt2.index_put([torch.tensor(rows)], torch.tensor(1.5), accumulate),
    )


def test_put_and_index_put_errors_match_torch():
    x = ember.zeros(2, 3)
    with pytest.raises(TypeError, match="int64"):
        x.put_(ember.tensor([0.0]), ember.tensor([1.0]))
    with pytest.raises(TypeError, match="int64"):
        x.put_(ember.tensor([0], dtype=ember.int32), ember.tensor([1.0]))
    with pytest.raises(TypeError, match="same dtype"):
        x.put_(ember.tensor([0]), ember.tensor([1]))
    with pytest.raises(IndexError):
        x.put_(ember.tensor([7]), ember.tensor([1.0]))
    with pytest.raises(ValueError, match="same number of elements"):
        x.put_(ember.tensor([0, 1]), ember.tensor([1.0]))
    with pytest.raises(TypeError, match="dtypes must match"):
        x.index_put_((ember.tensor([1]),), ember.tensor(1.0, dtype=ember.float64))
    assert x.tolist() == [[0.0] * 3] * 2  # nothing was written
    t = torch.zeros(2, 3)
    for bad in (
        lambda: t.put_(torch.tensor([0.0]), torch.tensor([1.0])),
        lambda: t.put_(torch.tensor([0]), torch.tensor([1])),
        lambda: t.index_put_((torch.tensor([1]),), torch.tensor(1.0, dtype=torch.float64)),
    ):
        with pytest.raises(RuntimeError):
            bad()


def test_put_on_leaf_requiring_grad_refuses_like_torch():
    xe, xt = _pair((3,), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        xe.put_(ember.tensor([0]), ember.tensor([1.0]))
    with pytest.raises(RuntimeError, match="leaf"):
        xt.put_(torch.tensor([0]), torch.tensor([1.0]))


# -- sum_to_size ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,size",
    [
        ((2, 3), (3,)),
        ((2, 3), (1, 3)),
        ((2, 3), (2, 1)),
        ((2, 3, 4), (3, 1)),
        ((2, 3), (1, 1)),
        ((2, 3), ()),
        ((4, 1, 3), (1, 1, 3)),
    ],
)
def test_sum_to_size_values_and_gradients_match_torch(shape, size):
    xe, xt = _pair(shape, requires_grad=True)
    if size:
        ye, yt = xe.sum_to_size(*size), xt.sum_to_size(*size)
    else:  # torch needs the size: () as one argument
        ye, yt = xe.sum_to_size(size), xt.sum_to_size(size)
    assert tuple(ye.shape) == tuple(yt.shape)
    _close(ye, yt)
    _close(xe.sum_to_size(size), xt.sum_to_size(size))  # the size as one tuple
    w = _RNG.standard_normal(tuple(yt.shape)).astype(np.float32)
    (ye * ember.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _close(xe.grad, xt.grad)


def test_sum_to_size_identity_dtype_and_errors():
    x = ember.ones(2, 3)
    assert x.sum_to_size(2, 3) is x and torch.ones(2, 3).sum_to_size(2, 3) is not None
    xi = ember.ones(2, 3, dtype=ember.int32)
    ti = torch.ones(2, 3, dtype=torch.int32)
    assert xi.sum_to_size(3).dtype.name == str(ti.sum_to_size(3).dtype).split(".")[1]
    assert xi.sum_to_size(3).tolist() == ti.sum_to_size(3).tolist()
    with pytest.raises(TypeError, match="size"):
        x.sum_to_size()
    with pytest.raises(TypeError, match="size"):
        torch.ones(2, 3).sum_to_size()
    for bad in ((2, 2), (1, 3, 1), (2, 2, 3)):
        with pytest.raises(ValueError, match="not expandable"):
            x.sum_to_size(*bad)
        with pytest.raises(RuntimeError, match="not expandable"):
            torch.ones(2, 3).sum_to_size(*bad)


# -- ndimension, allclose, storage_offset, sign of bool, type -------------------------------
def test_ndimension_and_allclose_match_torch():
    for shape in ((), (3,), (2, 3, 4)):
        assert ember.zeros(shape).ndimension() == torch.zeros(shape).ndimension()
    a = np.array([1.0, 2.0, np.nan], dtype=np.float32)
    b = a + np.float32(1e-6)
    ea, eb, ta, tb = ember.tensor(a), ember.tensor(b), torch.tensor(a), torch.tensor(b)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0, "equal_nan": True}):
        got = ea.allclose(eb, **kw)
        assert type(got) is bool and got == ta.allclose(tb, **kw)
    assert ember.zeros(2, 3).allclose(ember.zeros(3)) == torch.zeros(2, 3).allclose(torch.zeros(3))


def test_storage_offset_of_views_matches_torch():
    e = ember.arange(24.0).reshape(2, 3, 4)
    t = torch.arange(24.0).reshape(2, 3, 4)
    views = [
        lambda x: x,
        lambda x: x[1],
        lambda x: x[1:, 1:, 2:],
        lambda x: x[:, 2],
        lambda x: x.transpose(0, 2)[1],
        lambda x: x.reshape(6, 4)[3:],
        lambda x: x[..., 1::2],
        lambda x: x + 1,
    ]
    for v in views:
        assert v(e).storage_offset() == v(t).storage_offset()
    c = np.array([1 + 2j, 3 + 4j], dtype=np.complex64)
    assert ember.tensor(c).imag.storage_offset() == torch.tensor(c).imag.storage_offset() == 1


def test_sign_of_bool_returns_bool_like_torch():
    b = [True, False, True]
    got, want = ember.tensor(b).sign(), torch.tensor(b).sign()
    assert got.dtype == ember.bool_ and want.dtype == torch.bool
    assert got.tolist() == want.tolist()
    x = ember.tensor(b)
    assert x.sign_() is x and x.tolist() == b
    assert ember.sign(ember.tensor(b)).tolist() == torch.sign(torch.tensor(b)).tolist()


_DTYPES = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
    "complex64",
    "complex128",
]


@pytest.mark.parametrize("name", _DTYPES)
def test_type_names_follow_torch_with_ember_prefix(name):
    ed = ember.bool_ if name == "bool" else getattr(ember, name)
    td = getattr(torch, name)
    got = ember.zeros(2, dtype=ed).type()
    want = torch.zeros(2, dtype=td).type()
    assert got == want.replace("torch.", "ember.")
    # the name converts back, with either prefix, as torch's does
    x = ember.zeros(2, dtype=ember.float64 if name != "float64" else ember.float32)
    assert x.type(got).dtype == ed and x.type(want).dtype == ed
    assert str(torch.zeros(2).type(want).dtype) == f"torch.{name}"


def test_type_with_dtype_converts_and_refuses_unknown_names():
    e, t = ember.tensor([1.7, -2.2]), torch.tensor([1.7, -2.2])
    assert e.type(ember.float32) is e and t.type(torch.float32) is t
    assert e.type(ember.int32).tolist() == t.type(torch.int32).tolist()
    assert e.type(ember.int32).dtype == ember.int32
    for bad in ("float", "ember.int32", "numpy.FloatTensor"):
        with pytest.raises(ValueError, match="invalid type"):
            e.type(bad)
    with pytest.raises(ValueError):
        t.type("float")


# -- random fills -------------------------------------------------------------------------
_N = 100_000


def _moments(x):
    a = x.numpy().astype(np.float64)
    return a.mean(), a.var()


def test_exponential_distribution_seed_and_errors():
    ember.manual_seed(3)
    x = ember.empty(_N).exponential_(2.0)
    m, v = _moments(x)
    assert abs(m - 0.5) < 0.01 and abs(v - 0.25) < 0.01 and x.min().item() >= 0
    assert x.dtype == ember.float32
    t = torch.empty(_N).exponential_(2.0)
    tm, tv = t.mean().item(), t.var().item()
    assert abs(m - tm) < 0.015 and abs(v - tv) < 0.02
    ember.manual_seed(3)
    assert ember.empty(_N).exponential_(2.0).tolist() == x.tolist()
    g1, g2 = ember.Generator().manual_seed(5), ember.Generator().manual_seed(5)
    a = ember.empty(8).exponential_(generator=g1)
    assert a.tolist() == ember.empty(8).exponential_(generator=g2).tolist()
    with pytest.raises(ValueError, match="lambda > 0"):
        ember.empty(3).exponential_(0.0)
    with pytest.raises(TypeError, match="floating-point"):
        ember.zeros(3, dtype=ember.int64).exponential_()
    with pytest.raises(RuntimeError):
        torch.zeros(3, dtype=torch.int64).exponential_()
    with pytest.raises(RuntimeError, match="leaf"):
        ember.empty(3, requires_grad=True).exponential_()


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_geometric_distribution_matches_torch(dtype):
    p = 0.3
    ember.manual_seed(4)
    x = ember.zeros(_N, dtype=getattr(ember, dtype)).geometric_(p)
    t = torch.zeros(_N, dtype=getattr(torch, dtype)).geometric_(p)
    assert x.dtype == getattr(ember, dtype)
    m, v = _moments(x)
    assert abs(m - 1 / p) < 0.05 and abs(v - (1 - p) / p**2) / ((1 - p) / p**2) < 0.05
    tm = t.double().mean().item()
    assert abs(m - tm) < 0.06 and x.min().item() == t.min().item() == 1
    ember.manual_seed(4)
    assert ember.zeros(50, dtype=getattr(ember, dtype)).geometric_(p).tolist() == x[:50].tolist()
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"p to be in \(0, 1\)"):
            ember.zeros(3).geometric_(bad)


def test_cauchy_and_log_normal_distributions():
    ember.manual_seed(5)
    c = ember.empty(_N).cauchy_(1.5, 0.5).numpy().astype(np.float64)
    # no mean: compare the median and the quartiles (median +- sigma)
    q1, med, q3 = np.percentile(c, [25, 50, 75])
    assert abs(med - 1.5) < 0.02 and abs(q1 - 1.0) < 0.02 and abs(q3 - 2.0) < 0.02
    tc = torch.empty(_N).cauchy_(1.5, 0.5).double().numpy()
    assert abs(np.median(tc) - med) < 0.03
    ln = ember.empty(_N, dtype=ember.float64).log_normal_(0.5, 0.25)
    assert ln.dtype == ember.float64
    m, v = _moments(ln)
    want_m = np.exp(0.5 + 0.25**2 / 2)
    want_v = (np.exp(0.25**2) - 1) * np.exp(2 * 0.5 + 0.25**2)
    assert abs(m - want_m) < 0.01 and abs(v - want_v) / want_v < 0.03
    tl = torch.empty(_N, dtype=torch.float64).log_normal_(0.5, 0.25)
    assert abs(tl.mean().item() - m) < 0.01
    ember.manual_seed(5)
    assert ember.empty(20).cauchy_(1.5, 0.5).numpy().tolist() == c[:20].astype(np.float32).tolist()
    with pytest.raises(ValueError, match="sigma > 0"):
        ember.empty(3).cauchy_(0.0, 0.0)
    with pytest.raises(ValueError, match="std > 0"):
        ember.empty(3).log_normal_(1.0, -1.0)
    for fill in (lambda x: x.cauchy_(), lambda x: x.log_normal_()):
        with pytest.raises(TypeError, match="floating-point"):
            fill(ember.zeros(3, dtype=ember.int32))


@pytest.mark.parametrize(
    "dtype,args,lo,hi",
    [
        ("float32", (), 0, 2**24),
        ("float64", (10,), 0, 9),
        ("float32", (-5, 5), -5, 4),
        ("int64", (3, 7), 3, 6),
        ("int8", (), 0, 127),
        ("uint8", (), 0, 255),
        ("int16", (-100, None), -100, 32767),
        ("bool", (), 0, 1),
    ],
)
def test_random_bounds_and_distribution_match_torch(dtype, args, lo, hi):
    ember.manual_seed(6)
    x = ember.zeros(_N, dtype=ember.bool_ if dtype == "bool" else getattr(ember, dtype))
    assert x.random_(*args) is x
    t = torch.zeros(_N, dtype=getattr(torch, dtype)).random_(*args)
    a = x.numpy().astype(np.float64)
    ta = t.double().numpy()
    assert a.min() >= lo and a.max() <= hi and ta.min() >= lo and ta.max() <= hi
    assert np.array_equal(a, np.round(a))
    width = hi - lo
    m, v = a.mean(), a.var()
    want_m, want_v = (lo + hi) / 2, ((width + 1) ** 2 - 1) / 12
    assert abs(m - want_m) <= 0.01 * width + 0.01
    assert abs(v - want_v) <= 0.02 * want_v + 0.01
    assert abs(m - ta.mean()) <= 0.015 * width + 0.02
    if width < 50:  # every value of the range turns up, as in torch
        assert set(np.unique(a)) == set(np.unique(ta)) == set(range(lo, hi + 1))
    ember.manual_seed(6)
    assert x.clone().random_(*args).tolist() == x.tolist()


def test_random_keywords_errors_and_warning():
    ember.manual_seed(0)
    x = ember.zeros(1000).random_(to=4)
    assert set(np.unique(x.numpy())) == {0.0, 1.0, 2.0, 3.0}
    y = ember.zeros(1000, dtype=ember.int64).random_(2, to=4)
    assert set(np.unique(y.numpy())) == {2, 3}
    with pytest.raises(ValueError, match="less than 'to'"):
        ember.zeros(3).random_(5, 2)
    with pytest.raises(ValueError, match="to - 1 is out of bounds"):
        ember.zeros(3, dtype=ember.bool_).random_(5)
    with pytest.raises(ValueError, match="from is out of bounds"):
        ember.zeros(3, dtype=ember.uint8).random_(-1, 5)
    with pytest.raises(ValueError, match="to - 1 is out of bounds"):
        ember.zeros(3, dtype=ember.uint8).random_(0, 300)
    with pytest.raises(ValueError, match="to - 1 is out of bounds"):
        ember.zeros(3, dtype=ember.float16).random_(0, 3_000_000)
    with pytest.raises(TypeError, match="must be an int"):
        ember.zeros(3).random_(0.5)
    for bad in (
        lambda: torch.zeros(3).random_(5, 2),
        lambda: torch.zeros(3, dtype=torch.bool).random_(5),
        lambda: torch.zeros(3, dtype=torch.uint8).random_(-1, 5),
        lambda: torch.zeros(3, dtype=torch.float16).random_(0, 3_000_000),
    ):
        with pytest.raises(RuntimeError):
            bad()
    with pytest.warns(UserWarning, match="2\\^24"):
        z = ember.zeros(100).random_(0, 2**25)
    assert z.min().item() >= 0 and z.max().item() < 2**25
