"""``ember.masked`` against ``torch.masked`` (PyTorch 2.13) on dense tensors: every function
``torch.masked`` exposes (but the MaskedTensor class), with random, broadcast, all-False and
absent masks, fully masked-out slices, ``dim`` (None, ints, tuples, negative, ()),
``keepdim``, ``dtype``, 0-d / empty / non-contiguous inputs; values in float32 and float64,
gradients in float64 (and float64 finite differences), and the errors."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402
import ember.masked as masked  # noqa: E402

warnings.filterwarnings("ignore", module="torch.masked")

REDUCTIONS = ["sum", "prod", "amax", "amin", "mean", "norm", "var", "std", "logsumexp"]
ONE_DIM = ["argmax", "argmin", "median"]
NORMALIZATIONS = ["softmax", "log_softmax", "softmin", "cumsum", "cumprod", "normalize"]
# torch.masked's public functions (the MaskedTensor helpers aside) are exactly these
TORCH_NAMES = set(REDUCTIONS) | set(ONE_DIM) | set(NORMALIZATIONS) | {"logaddexp"}


def test_names_match_torch_masked():
    helpers = {"MaskedTensor", "as_masked_tensor", "is_masked_tensor", "masked_tensor"}
    assert set(torch.masked.__all__) - helpers == TORCH_NAMES
    assert set(masked.__all__) == TORCH_NAMES


def _masks(shape, rng):
    yield "none", None
    yield "random", rng.random(shape) < 0.6
    if len(shape) >= 2:
        m = rng.random(shape) < 0.6
        m[0] = False  # a fully masked-out slice along every later dim
        yield "row_out", m
        yield "broadcast", rng.random(shape[-1:]) < 0.6
    yield "all_false", np.zeros(shape, bool)


def _close(e, t, what, rtol=1e-5, atol=1e-6):
    ev, tv = e.detach().numpy(), t.detach().numpy()
    assert ev.shape == tv.shape, f"{what}: shape {ev.shape} vs torch {tv.shape}"
    assert ev.dtype == tv.dtype, f"{what}: dtype {ev.dtype} vs torch {tv.dtype}"
    np.testing.assert_allclose(ev, tv, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _call(mod, name, x, mask, kw):
    if mask is not None:
        mask = (torch.tensor if mod is torch.masked else ember.tensor)(mask)
    args = ()
    if name in ("norm", "normalize"):
        args = (kw.pop("ord", 2.0),)
    return getattr(mod, name)(x, *args, **kw, mask=mask)


def _check(name, a, mask, kw, grad=True):
    """Value (and, in float64, the gradient of a weighted sum) against torch.masked."""
    tx = torch.tensor(a, requires_grad=grad)
    ex = ember.tensor(a, requires_grad=grad)
    tr = _call(torch.masked, name, tx, mask, dict(kw))
    er = _call(masked, name, ex, mask, dict(kw))
    what = f"{name} {kw} mask={None if mask is None else mask.astype(int).tolist()}"
    _close(er, tr, what)
    if not grad or not tr.requires_grad:
        return
    w = np.random.default_rng(0).standard_normal(tuple(tr.shape))
    finite = np.isfinite(tr.detach().numpy())
    w = np.where(finite, w, 0.0)  # cotangents only on finite outputs: inf * 0 is nan
    (tr * torch.tensor(w)).sum().backward()
    (er * ember.tensor(w)).sum().backward()
    tg = np.zeros(a.shape) if tx.grad is None else tx.grad.numpy()
    eg = np.zeros(a.shape) if ex.grad is None else ex.grad.numpy()
    np.testing.assert_allclose(eg, tg, rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)], ids=str)
def test_reductions_match_torch(name, shape):
    rng = np.random.default_rng(len(shape))
    a = rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)
    dims = [None, 0, -1, ()] + ([(0, 1), (-1, 0)] if len(shape) > 1 else [])
    for (_, mask), dim, keepdim in itertools.product(list(_masks(shape, rng)), dims, (False, True)):
        kw = {"dim": dim, "keepdim": keepdim}
        if name == "logsumexp" and dim is None:
            continue  # torch.masked.logsumexp needs a dim (torch.logsumexp's)
        _check(name, a, mask, kw)
    # the op's own options
    mask = rng.random(shape) < 0.7
    if name == "norm":
        for ord in (1, 3.0, float("inf"), -float("inf"), 0.5, 0):
            _check(name, a, mask, {"ord": ord, "dim": -1})
    if name in ("var", "std"):
        for extra in ({"unbiased": False}, {"correction": 0}, {"correction": 2}):
            _check(name, a, mask, {"dim": -1, **extra})


@pytest.mark.parametrize("name", ONE_DIM)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)], ids=str)
def test_index_and_median_match_torch(name, shape):
    rng = np.random.default_rng(10 + len(shape))
    a = rng.permutation(int(np.prod(shape))).reshape(shape) / 3.0  # no ties
    dims = [0, -1] + ([None] if name != "median" else [])
    for (mname, mask), dim, keepdim in itertools.product(
        list(_masks(shape, rng)), dims, (False, True)
    ):
        if name != "median" and mname in ("row_out", "all_false"):
            continue  # the index of an all-identity slice is an implementation detail
        _check(name, a, mask, {"dim": dim, "keepdim": keepdim}, grad=name == "median")


@pytest.mark.parametrize("name", NORMALIZATIONS)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)], ids=str)
def test_normalizations_match_torch(name, shape):
    rng = np.random.default_rng(20 + len(shape))
    a = rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)
    for (_, mask), dim in itertools.product(list(_masks(shape, rng)), range(len(shape))):
        kw = {"dim": dim}
        if name == "normalize":
            for ord in (2.0, 1.0, float("inf")):
                _check(name, a, mask, {"ord": ord, **kw})
        else:
            _check(name, a, mask, kw)
            _check(name, a, mask, {"dim": dim - len(shape)})


def test_logaddexp_matches_torch():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    masks = [None, rng.random((3, 4)) < 0.5, rng.random(4) < 0.5, np.zeros((3, 4), bool)]
    for ma, mb in itertools.product(masks, masks):
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        ea, eb = ember.tensor(a, requires_grad=True), ember.tensor(b, requires_grad=True)
        t = torch.masked.logaddexp(
            ta,
            tb,
            input_mask=None if ma is None else torch.tensor(ma),
            other_mask=None if mb is None else torch.tensor(mb),
        )
        e = masked.logaddexp(
            ea,
            eb,
            input_mask=None if ma is None else ember.tensor(ma),
            other_mask=None if mb is None else ember.tensor(mb),
        )
        _close(e, t, "logaddexp")
        fin = np.isfinite(t.detach().numpy())
        (t * torch.tensor(fin * 1.0)).sum().backward()
        (e * ember.tensor(fin * 1.0)).sum().backward()
        for eg, tg in ((ea.grad, ta.grad), (eb.grad, tb.grad)):
            np.testing.assert_allclose(eg.numpy(), tg.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", REDUCTIONS + ONE_DIM + NORMALIZATIONS)
def test_float32_dtype_and_special_inputs(name):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, (4, 6)).astype(np.float32)
    mask = rng.random((4, 6)) < 0.6
    dim_kw = {"dim": 1}
    _check(name, a, mask, dim_kw, grad=False)
    # non-contiguous input and mask
    tx, ex = torch.tensor(a).T[::2], ember.tensor(a).T[::2]
    tm, em = torch.tensor(mask).T[::2], ember.tensor(mask).T[::2]
    args = (2.0,) if name in ("norm", "normalize") else ()
    _close(
        getattr(masked, name)(ex, *args, dim=0, mask=em),
        getattr(torch.masked, name)(tx, *args, dim=0, mask=tm),
        f"{name} non-contiguous",
    )
    # 0-d input
    if name not in ("argmax", "argmin"):
        for m in (True, False):
            _close(
                getattr(masked, name)(ember.tensor(1.5), *args, dim=0, mask=ember.tensor(m)),
                getattr(torch.masked, name)(torch.tensor(1.5), *args, dim=0, mask=torch.tensor(m)),
                f"{name} 0-d",
            )
    # dtype= (float32 input, float64 result)
    if name not in ("median",):
        ekw = {"dim": 1, "dtype": ember.float64, "mask": ember.tensor(mask)}
        tkw = {"dim": 1, "dtype": torch.float64, "mask": torch.tensor(mask)}
        _close(
            getattr(masked, name)(ember.tensor(a), *args, **ekw),
            getattr(torch.masked, name)(torch.tensor(a), *args, **tkw),
            f"{name} dtype",
        )


def test_empty_and_integer_inputs():
    e0, t0 = ember.zeros(0, 3), torch.zeros(0, 3)
    em, tm = ember.zeros(0, 3, dtype=ember.bool), torch.zeros(0, 3, dtype=torch.bool)
    for name in ("sum", "prod", "mean", "norm", "var"):
        args = (2.0,) if name == "norm" else ()
        _close(
            getattr(masked, name)(e0, *args, dim=0, mask=em),
            getattr(torch.masked, name)(t0, *args, dim=0, mask=tm),
            f"{name} empty",
        )
    ai = np.array([[1, 5, 2], [7, 3, 4]], dtype=np.int32)
    mi = np.array([[True, False, True], [False, True, True]])
    for name in ("sum", "prod", "amax", "amin", "argmax", "argmin", "median", "cumsum"):
        kw = {"dim": 1}
        _close(
            getattr(masked, name)(ember.tensor(ai), **kw, mask=ember.tensor(mi)),
            getattr(torch.masked, name)(torch.tensor(ai), **kw, mask=torch.tensor(mi)),
            f"{name} int32",
        )


def test_finite_differences_float64():
    # the composed gradients of a few ops against central differences
    rng = np.random.default_rng(2)
    a = rng.uniform(0.5, 2.0, (3, 4))
    mask = ember.tensor(rng.random((3, 4)) < 0.7)
    for fn in (
        lambda x: masked.var(x, 1, mask=mask),
        lambda x: masked.normalize(x, 3.0, 1, mask=mask),
        lambda x: masked.softmin(x, 0, mask=mask).sin(),
        lambda x: masked.logsumexp(x, 1, mask=mask),
        lambda x: masked.prod(x, (0, 1), mask=mask),
    ):
        x = ember.tensor(a, requires_grad=True)
        fn(x).sum().backward()
        num = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            d = np.zeros_like(a)
            d[i] = 1e-6
            hi = float(fn(ember.tensor(a + d)).sum().item())
            lo = float(fn(ember.tensor(a - d)).sum().item())
            num[i] = (hi - lo) / 2e-6
        np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: masked.sum(x, mask=ember.ones(2, 3, 4, dtype=ember.bool)), IndexError, "higher"),
        (lambda x: masked.sum(x, mask=ember.ones(4, dtype=ember.bool)), ValueError, "broadcast"),
        (lambda x: masked.sum(x, 2, mask=None), IndexError, "out of range"),
        (lambda x: masked.sum(x, (0, 0)), ValueError, "multiple times"),
        (lambda x: masked.mean(x.to(ember.int64)), ValueError, "floating point"),
        (lambda x: masked.var(x, unbiased=True, correction=1), ValueError, "only one"),
        (lambda x: masked.softmax(x, (0, 1)), TypeError, "dim must be an int"),
        (lambda x: masked.median(x.to(ember.int64), 1, mask=x > 9), ValueError, "fully masked"),
        (lambda x: masked.sum([1.0, 2.0]), TypeError, "expected a Tensor"),
        (lambda x: masked.amax(x, mask=[True]), TypeError, "expected a Tensor as mask"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(ember.rand(2, 3))
