"""Adversarial cases for the CPU kernel layer against PyTorch: the cases the kernel tests and
sweeps leave out. Elementwise ops, reductions over tuples of axes with keepdim, softmax over
every dim of 3-D/4-D inputs, layer/RMS/group norm, cross-entropy's variants (probabilities,
(N, C, d1, d2), ignore_index + smoothing + weight), dropout's edge probabilities, embedding
(max_norm, repeated indices), conv1d/2d corner cases and pooling options; float32 and
float64, sizes that straddle the kernels' thresholds, non-contiguous inputs (transposed,
``::2`` slices, expanded, channels_last), non-finite values and empty dims; values and
gradients, and 1 vs 2 threads bitwise equal."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember.ops import _norm_kernels, _parallel

FLOATS = [np.float32, np.float64]


def _tol(dt):
    return {"rtol": 1e-5, "atol": 1e-6} if dt == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _layout(a, how):
    """``a``'s values in the layout ``how`` (the same values, other strides)."""
    if how == "contiguous":
        return a
    if how == "transposed":
        return np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)
    if how == "slice2":  # every other element of a twice-as-long last axis
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if how == "channels_last":
        return np.ascontiguousarray(np.moveaxis(a, 1, -1)).transpose(
            0, a.ndim - 1, *range(1, a.ndim - 1)
        )
    raise ValueError(how)


def _run(fe, ft, arrays, dt, grad=True, seed=0, tol=None, extra=None):
    """``fe(*ember inputs)`` vs ``ft(*torch inputs)``: values, and the gradients of every
    floating input for a random upstream gradient."""
    es = [ember.from_numpy(a) for a in arrays]
    ts = [torch.tensor(np.ascontiguousarray(a)) for a in arrays]
    for e, t in zip(es, ts):
        if grad and np.issubdtype(e.numpy().dtype, np.floating):
            e.requires_grad_()
            t.requires_grad_()
    ye, yt = fe(*es), ft(*ts)
    tol = tol or _tol(dt)
    if isinstance(yt, tuple):
        for a, b in zip(ye, yt):
            np.testing.assert_allclose(
                a.detach().numpy(), b.detach().numpy(), equal_nan=True, **tol
            )
        ye, yt = ye[0], yt[0]
    want = yt.detach().numpy()
    np.testing.assert_allclose(ye.detach().numpy(), want, equal_nan=True, **tol)
    assert ye.detach().numpy().dtype == want.dtype
    if grad and yt.requires_grad:
        g = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(want.dtype)
        ye.backward(ember.tensor(g))
        yt.backward(torch.tensor(g))
        for e, t in zip(es, ts):
            if t.grad is not None:
                np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), equal_nan=True, **tol)
    return ye


@pytest.fixture
def threads12(monkeypatch):
    """Force the threaded paths at any size; yields a runner giving (1-thread, 2-thread)."""
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    monkeypatch.setattr(_norm_kernels, "ROW_PAR_MIN", 0)
    old = ember.get_num_threads()

    def both(fn):
        out = []
        for n in (1, 2):
            ember.set_num_threads(n)
            out.append(fn())
        ember.set_num_threads(old)
        return out

    yield both
    ember.set_num_threads(old)


def _bitwise(r1, r2):
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a, b)


# -- elementwise -------------------------------------------------------------------------------
EW = {
    "exp": (ember.exp, torch.exp),
    "log": (ember.log, torch.log),
    "tanh": (ember.tanh, torch.tanh),
    "sigmoid": (ember.sigmoid, torch.sigmoid),
    "erf": (ember.erf, torch.erf),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
    ),
    "silu": (F.silu, TF.silu),
    "softplus": (F.softplus, TF.softplus),
    "softplus_b05_t1": (
        lambda x: F.softplus(x, beta=0.5, threshold=1.0),
        lambda x: TF.softplus(x, beta=0.5, threshold=1.0),
    ),
    "softplus_bneg": (
        lambda x: F.softplus(x, beta=-1.5, threshold=4.0),
        lambda x: TF.softplus(x, beta=-1.5, threshold=4.0),
    ),
}
EW_TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _ew_input(shape, dt, op, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape) * 4
    if op == "log":
        x = np.abs(x) + 1e-3
    return x.astype(dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", list(EW))
@pytest.mark.parametrize(
    "shape,layout",
    [
        ((4097,), "contiguous"),
        ((3, 17), "transposed"),
        ((5, 4097), "slice2"),
        ((2, 3, 5, 7), "channels_last"),
        ((270, 260), "transposed"),
        ((0, 5), "contiguous"),
    ],
)
def test_elementwise_layouts(op, dt, shape, layout):
    x = _layout(_ew_input(shape, dt, op), layout)
    fe, ft = EW[op]
    _run(fe, ft, [x], dt, tol=EW_TOL[dt])


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", list(EW))
def test_elementwise_expanded_input_gradient_sums(op, dt):
    row = _ew_input((1, 4099), dt, op)
    fe, ft = EW[op]
    _run(
        lambda v: fe(v.expand(5, 4099)),
        lambda v: ft(v.expand(5, 4099)),
        [row],
        dt,
        tol={"rtol": 1e-5, "atol": 5e-5} if dt == np.float32 else EW_TOL[dt],
    )


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", ["exp", "tanh", "sigmoid", "erf", "silu", "softplus", "gelu_tanh"])
def test_elementwise_nonfinite_large_array(op, dt):
    x = _ew_input(5000, dt, op)
    x[::97] = np.inf
    x[1::97] = -np.inf
    x[2::97] = np.nan
    x[3::97] = -0.0
    fe, ft = EW[op]
    _run(fe, ft, [x], dt, grad=False, tol=EW_TOL[dt])
    if op != "gelu_tanh":
        _run(fe, ft, [x], dt, tol=EW_TOL[dt])


@pytest.mark.parametrize("dt", FLOATS)
def test_elementwise_threads_bitwise_non_contiguous(threads12, dt):
    x = _layout(_ew_input((3, 70001), dt, "exp"), "transposed")
    xs = _layout(_ew_input((4, 9000), dt, "exp"), "slice2")

    def go():
        out = []
        for op, (fe, _) in EW.items():
            for v in (x, xs):
                e = ember.from_numpy(np.abs(v) + 0.1 if op == "log" else v).requires_grad_()
                y = fe(e)
                y.sum().backward()
                out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- reductions --------------------------------------------------------------------------------
RED = {
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), lambda x, d, k: x.sum(d, keepdim=k)),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), lambda x, d, k: x.mean(d, keepdim=k)),
    "amax": (lambda x, d, k: x.amax(d, keepdim=k), lambda x, d, k: x.amax(d, keepdim=k)),
    "var": (lambda x, d, k: x.var(d, keepdim=k), lambda x, d, k: x.var(d, keepdim=k)),
    "std": (lambda x, d, k: x.std(d, keepdim=k), lambda x, d, k: x.std(d, keepdim=k)),
}


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("fn", list(RED))
@pytest.mark.parametrize("dim", [0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2), (-1, 0)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "slice2"])
def test_reductions_axes_keepdim_layouts(fn, dt, dim, keepdim, layout):
    x = np.random.default_rng(1).standard_normal((3, 17, 5)).astype(dt)
    if fn == "amax":
        x[1, 3, :] = x[1, 4, :]  # ties share the gradient
    fe, ft = RED[fn]
    _run(lambda v: fe(v, dim, keepdim), lambda v: ft(v, dim, keepdim), [_layout(x, layout)], dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("fn", list(RED))
@pytest.mark.parametrize(
    "shape,dim",
    [
        ((70001,), 0),
        ((2, 35000), -1),
        ((35000, 2), 0),
        ((1100, 1001), 1),
        ((1001, 1100), 0),
        ((16, 4097), (0, 1)),
    ],
)
def test_reductions_across_thresholds(fn, dt, shape, dim):
    x = np.random.default_rng(2).standard_normal(shape).astype(dt) + 3
    fe, ft = RED[fn]
    tol = {"rtol": 1e-4, "atol": 1e-5} if dt == np.float32 else _tol(dt)  # long f32 sums
    _run(lambda v: fe(v, dim, False), lambda v: ft(v, dim, False), [x], dt, tol=tol)


@pytest.mark.parametrize("fn", list(RED))
def test_reductions_nonfinite(fn):
    x = np.random.default_rng(3).standard_normal((4, 4200)).astype(np.float32)
    x[0, 5] = np.inf
    x[1, 7] = -np.inf
    x[2, 9] = np.nan
    x[3, 1] = np.inf
    x[3, 2] = -np.inf
    fe, ft = RED[fn]
    for d in (1, 0):
        _run(
            lambda v, d=d: fe(v, d, False),
            lambda v, d=d: ft(v, d, False),
            [x],
            np.float32,
            grad=False,
        )


@pytest.mark.parametrize("fn", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("dim", [1, (0, 1), 2])
def test_reductions_empty(fn, dim):
    x = np.zeros((2, 0, 3), np.float64)
    fe, ft = RED[fn]
    _run(lambda v: fe(v, dim, True), lambda v: ft(v, dim, True), [x], np.float64)


@pytest.mark.parametrize("fn", list(RED))
def test_reductions_threads_bitwise(threads12, fn):
    x = np.random.default_rng(4).standard_normal((300, 1100)).astype(np.float32)
    xt = _layout(x, "transposed")
    fe = RED[fn][0]

    def go():
        out = []
        for v in (x, xt):
            for d in (0, 1, (0, 1)):
                e = ember.from_numpy(v).requires_grad_()
                y = fe(e, d, False)
                y.sum().backward()
                out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- softmax -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 4, 5), (1, 1, 4097), (2, 1, 1, 1)])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "slice2"])
def test_softmax_dims(fn, dt, shape, dim, layout):
    x = np.random.default_rng(5).standard_normal(shape).astype(dt) * 3
    _run(
        lambda v: getattr(F, fn)(v, dim),
        lambda v: getattr(TF, fn)(v, dim),
        [_layout(x, layout)],
        dt,
    )


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, -1])
def test_softmax_nonfinite_rows(fn, dt, dim):
    x = np.random.default_rng(6).standard_normal((6, 9)).astype(dt)
    x[0, 3] = np.inf  # one +inf: nan in PyTorch
    x[1, :] = -np.inf  # all -inf: nan
    x[2, 2] = -np.inf  # one -inf: 0 probability
    x[3, 4] = np.nan
    x[4, :4] = -np.inf
    xx = x if dim == -1 else np.ascontiguousarray(x.T)
    _run(lambda v: getattr(F, fn)(v, dim), lambda v: getattr(TF, fn)(v, dim), [xx], dt, grad=False)
    y = np.random.default_rng(7).standard_normal((5, 9)).astype(dt)
    y[0, 2] = y[3, 0] = -np.inf
    yy = y if dim == -1 else np.ascontiguousarray(y.T)
    _run(lambda v: getattr(F, fn)(v, dim), lambda v: getattr(TF, fn)(v, dim), [yy], dt)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_large_and_empty(fn):
    for shape, dim in [
        ((70, 1001), -1),
        ((1100, 1000), 1),
        ((1000, 1100), 0),
        ((0, 5), 1),
        ((3, 0), 1),
        ((3, 0), 0),
    ]:
        x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
        _run(
            lambda v, dim=dim: getattr(F, fn)(v, dim),
            lambda v, dim=dim: getattr(TF, fn)(v, dim),
            [x],
            np.float32,
        )


def test_softmax_threads_bitwise(threads12):
    x = np.random.default_rng(9).standard_normal((64, 1100)).astype(np.float64)

    def go():
        out = []
        for fn in ("softmax", "log_softmax"):
            for d in (0, 1):
                e = ember.from_numpy(x).requires_grad_()
                y = getattr(F, fn)(e, d)
                (y * y).sum().backward()
                out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- normalization -----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize(
    "shape,ns",
    [
        ((3, 1), (1,)),
        ((2, 3, 1, 1), (1, 1)),
        ((4, 3, 17), (3, 17)),
        ((5, 4097), (4097,)),
        ((2, 0, 4), (4,)),
        ((1, 3), (3,)),
    ],
)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "slice2"])
def test_layer_norm_no_affine(dt, shape, ns, layout):
    x = _layout(np.random.default_rng(10).standard_normal(shape).astype(dt) * 2 + 1, layout)
    _run(lambda v: F.layer_norm(v, ns), lambda v: TF.layer_norm(v, ns), [x], dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape,ns", [((3, 1), (1,)), ((4, 3, 17), (3, 17)), ((5, 4097), (4097,))])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_layer_norm_affine_and_rms_norm(dt, shape, ns, layout):
    rng = np.random.default_rng(11)
    x = _layout(rng.standard_normal(shape).astype(dt), layout)
    w, b = rng.standard_normal(ns).astype(dt), rng.standard_normal(ns).astype(dt)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dt == np.float32 else _tol(dt)
    _run(
        lambda v, w, b: F.layer_norm(v, ns, w, b),
        lambda v, w, b: TF.layer_norm(v, ns, w, b),
        [x, w, b],
        dt,
        tol=tol,
    )
    _run(lambda v, w: F.rms_norm(v, ns, w), lambda v, w: TF.rms_norm(v, ns, w), [x, w], dt, tol=tol)
    _run(lambda v: F.rms_norm(v, ns), lambda v: TF.rms_norm(v, ns), [x], dt, tol=tol)
    _run(
        lambda v: F.rms_norm(v, ns, eps=None),
        lambda v: TF.rms_norm(v, ns, eps=None),
        [x],
        dt,
        tol=tol,
    )


def test_norms_with_nonfinite_rows():
    x = np.random.default_rng(12).standard_normal((4, 9)).astype(np.float32)
    x[1, 2] = np.inf
    x[2, 3] = np.nan
    for fe, ft in [
        (lambda v: F.layer_norm(v, (9,)), lambda v: TF.layer_norm(v, (9,))),
        (lambda v: F.rms_norm(v, (9,)), lambda v: TF.rms_norm(v, (9,))),
    ]:
        _run(fe, ft, [x], np.float32, grad=False)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize(
    "shape,groups",
    [
        ((2, 6, 5), 3),
        ((1, 4, 3, 3), 4),
        ((3, 6, 1, 1), 1),
        ((2, 8, 17, 3), 2),
        ((1, 2, 70, 70), 2),
        ((0, 4, 3), 2),
    ],
)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_group_norm(dt, shape, groups, affine, layout):
    rng = np.random.default_rng(13)
    x = _layout(rng.standard_normal(shape).astype(dt) * 2 + 0.5, layout)
    c = shape[1]
    tol = {"rtol": 1e-4, "atol": 1e-5} if dt == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    if affine:
        w, b = rng.standard_normal(c).astype(dt), rng.standard_normal(c).astype(dt)
        _run(
            lambda v, w, b: F.group_norm(v, groups, w, b),
            lambda v, w, b: TF.group_norm(v, groups, w, b),
            [x, w, b],
            dt,
            tol=tol,
        )
    else:
        _run(
            lambda v: F.group_norm(v, groups), lambda v: TF.group_norm(v, groups), [x], dt, tol=tol
        )


def test_group_norm_channels_last():
    x = np.random.default_rng(14).standard_normal((2, 6, 4, 5)).astype(np.float32)
    _run(
        lambda v: F.group_norm(v, 3),
        lambda v: TF.group_norm(v, 3),
        [_layout(x, "channels_last")],
        np.float32,
        tol={"rtol": 1e-4, "atol": 1e-5},
    )


def test_norms_threads_bitwise(threads12):
    x = np.random.default_rng(15).standard_normal((257, 300)).astype(np.float32)
    xg = np.random.default_rng(16).standard_normal((3, 8, 40, 40)).astype(np.float32)

    def go():
        out = []
        for fn in (lambda v: F.layer_norm(v, (300,)), lambda v: F.rms_norm(v, (300,))):
            e = ember.from_numpy(_layout(x, "transposed")).requires_grad_()
            y = fn(e)
            (y * y).sum().backward()
            out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        e = ember.from_numpy(xg).requires_grad_()
        y = F.group_norm(e, 4)
        (y * y).sum().backward()
        out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- cross-entropy -----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probability_targets(dt, reduction, smoothing, weighted):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((4, 5, 3)).astype(dt)
    p = rng.random((4, 5, 3)).astype(dt)
    p /= p.sum(1, keepdims=True)
    w = (rng.random(5) + 0.2).astype(dt)
    kw = {"reduction": reduction, "label_smoothing": smoothing}

    def fe(v, t, *ww):
        return F.cross_entropy(v, t, weight=ww[0] if ww else None, **kw)

    def ft(v, t, *ww):
        return TF.cross_entropy(v, t, weight=ww[0] if ww else None, **kw)

    _run(fe, ft, [x, p] + ([w] if weighted else []), dt)
    _run(fe, ft, [_layout(x[:, :, 0], "transposed"), p[:, :, 0]], dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_cross_entropy_spatial_ignore(dt, reduction, smoothing, weighted, layout):
    rng = np.random.default_rng(18)
    x = _layout(rng.standard_normal((3, 5, 4, 2)).astype(dt), layout)
    tgt = rng.integers(0, 5, (3, 4, 2))
    tgt[0, 1, 1] = tgt[2, 0, 0] = 3
    w = (rng.random(5) + 0.2).astype(dt)
    kw = {"reduction": reduction, "label_smoothing": smoothing, "ignore_index": 3}
    we, wt = (ember.tensor(w), torch.tensor(w)) if weighted else (None, None)

    def fe(v, t):
        return F.cross_entropy(v, t, weight=we, **kw)

    def ft(v, t):
        return TF.cross_entropy(v, t, weight=wt, **kw)

    _run(fe, ft, [x, tgt], dt)


@pytest.mark.parametrize("dt", FLOATS)
def test_cross_entropy_large_rows_and_odd_classes(dt):
    rng = np.random.default_rng(19)
    for n, c in [(1, 1), (3, 4097), (70, 1001), (1100, 3)]:
        x = rng.standard_normal((n, c)).astype(dt)
        tgt = rng.integers(0, c, n)
        for ls in (0.0, 0.1):
            _run(
                lambda v, t, ls=ls: F.cross_entropy(v, t, label_smoothing=ls),
                lambda v, t, ls=ls: TF.cross_entropy(v, t, label_smoothing=ls),
                [x, tgt],
                dt,
            )
            _run(
                lambda v, t, ls=ls: F.cross_entropy(v, t, label_smoothing=ls),
                lambda v, t, ls=ls: TF.cross_entropy(v, t, label_smoothing=ls),
                [_layout(x, "transposed"), tgt],
                dt,
            )


def test_cross_entropy_nonfinite_logits():
    x = np.random.default_rng(20).standard_normal((4, 5)).astype(np.float32)
    x[0, 1] = -np.inf  # a -inf non-target logit: finite loss
    x[2, :] = np.nan
    tgt = np.array([2, 0, 1, 3])
    _run(
        lambda v, t: F.cross_entropy(v, t, reduction="none"),
        lambda v, t: TF.cross_entropy(v, t, reduction="none"),
        [x, tgt],
        np.float32,
    )


def test_cross_entropy_threads_bitwise(threads12):
    rng = np.random.default_rng(21)
    x = rng.standard_normal((900, 130)).astype(np.float32)
    tgt = rng.integers(0, 130, 900)
    tgt[::7] = -100

    def go():
        out = []
        for ls in (0.0, 0.2):
            e = ember.from_numpy(x).requires_grad_()
            y = F.cross_entropy(e, ember.tensor(tgt), label_smoothing=ls)
            y.backward()
            out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("n", [1, 17, 70001])
def test_dropout_edge_probabilities(dt, n):
    x = _layout(np.random.default_rng(22).standard_normal((3, n)).astype(dt), "transposed")
    for p, train, want_zero in ((0.0, True, False), (1.0, True, True), (0.7, False, False)):
        e = ember.from_numpy(x).requires_grad_()
        y = F.dropout(e, p=p, training=train)
        g = np.random.default_rng(23).standard_normal(x.shape).astype(dt)
        y.backward(ember.tensor(g))
        t = torch.tensor(x, requires_grad=True)
        yt = TF.dropout(t, p=p, training=train)
        yt.backward(torch.tensor(g))
        np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
        np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
        assert y.detach().numpy().dtype == dt
        assert (not y.detach().numpy().any()) == want_zero or x.size == 0


# -- embedding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("padding_idx", [None, 0, -1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_embedding_repeats_padding(dt, padding_idx, layout):
    rng = np.random.default_rng(24)
    w = _layout(rng.standard_normal((7, 5)).astype(dt), layout)
    idx = np.array([[0, 3, 3, 6], [6, 3, 0, 3], [1, 1, 1, 1]])
    _run(
        lambda i, w: F.embedding(i, w, padding_idx=padding_idx),
        lambda i, w: TF.embedding(i, w, padding_idx=padding_idx),
        [idx, w],
        dt,
    )
    big = rng.integers(0, 7, 5000)
    _run(
        lambda i, w: F.embedding(i, w, padding_idx=padding_idx),
        lambda i, w: TF.embedding(i, w, padding_idx=padding_idx),
        [big, w],
        dt,
    )


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_renormalizes_the_weight(dt, norm_type):
    rng = np.random.default_rng(25)
    w = (rng.standard_normal((6, 4)) * 3).astype(dt)
    idx = np.array([1, 4, 4, 0])
    we, wt = ember.tensor(w.copy()), torch.tensor(w.copy())
    ye = F.embedding(ember.tensor(idx), we, max_norm=1.5, norm_type=norm_type)
    yt = TF.embedding(torch.tensor(idx), wt, max_norm=1.5, norm_type=norm_type)
    np.testing.assert_allclose(ye.numpy(), yt.numpy(), **_tol(dt))
    np.testing.assert_allclose(we.numpy(), wt.numpy(), **_tol(dt))  # rows renormalized in place


def test_embedding_empty_indices():
    w = np.random.default_rng(26).standard_normal((4, 3)).astype(np.float32)
    _run(
        lambda i, w: F.embedding(i, w),
        lambda i, w: TF.embedding(i, w),
        [np.zeros((2, 0), np.int64), w],
        np.float32,
    )


def test_embedding_grad_threads_bitwise(threads12):
    rng = np.random.default_rng(27)
    w = rng.standard_normal((50, 64)).astype(np.float32)
    idx = rng.integers(0, 50, (300, 20))

    def go():
        e = ember.from_numpy(w).requires_grad_()
        y = F.embedding(ember.tensor(idx), e, padding_idx=3)
        (y * y).sum().backward()
        return [e.grad.numpy().copy()]

    _bitwise(*threads12(go))


# -- convolution -------------------------------------------------------------------------------
CONV2D = [
    ((2, 4, 9, 8), (6, 2, 3, 3), {"groups": 2}),
    ((2, 4, 9, 8), (4, 1, 3, 3), {"groups": 4, "stride": 2, "padding": 1}),  # depthwise
    ((1, 3, 11, 10), (6, 1, 3, 2), {"groups": 3, "dilation": 2}),  # depthwise x2
    ((2, 3, 13, 11), (4, 3, 3, 3), {"stride": 3, "padding": 2}),
    ((2, 3, 10, 9), (4, 3, 2, 3), {"stride": 2, "dilation": (2, 1)}),
    ((2, 3, 7, 8), (5, 3, 4, 3), {"padding": "same"}),
    ((2, 3, 7, 8), (5, 3, 3, 3), {"padding": "same", "dilation": 2}),
    ((2, 5, 6, 7), (3, 5, 1, 1), {}),
    ((2, 5, 6, 7), (3, 5, 1, 1), {"stride": 2}),
    ((1, 1, 8, 9), (1, 1, 3, 3), {"padding": 1}),
    ((1, 1, 5, 5), (2, 1, 5, 5), {}),
    ((3, 2, 1, 1), (4, 2, 1, 1), {}),
    ((0, 3, 5, 5), (4, 3, 3, 3), {}),
    ((2, 8, 16, 16), (8, 1, 3, 3), {"groups": 8, "padding": "same"}),
]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("case", range(len(CONV2D)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "slice2"])
def test_conv2d_corners(dt, case, layout):
    xs, ws, kw = CONV2D[case]
    rng = np.random.default_rng(30 + case)
    x = _layout(rng.standard_normal(xs).astype(dt), layout)
    w, b = rng.standard_normal(ws).astype(dt), rng.standard_normal(ws[0]).astype(dt)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dt == np.float32 else _tol(dt)
    _run(
        lambda x, w, b: F.conv2d(x, w, b, **kw),
        lambda x, w, b: TF.conv2d(x, w, b, **kw),
        [x, w, b],
        dt,
        tol=tol,
    )


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", ["reflect", "circular", "replicate"])
def test_conv2d_padding_modes(dt, mode):
    rng = np.random.default_rng(40)
    x, w = (
        rng.standard_normal((2, 3, 7, 6)).astype(dt),
        rng.standard_normal((4, 3, 3, 3)).astype(dt),
    )
    tol = {"rtol": 1e-4, "atol": 1e-4} if dt == np.float32 else _tol(dt)
    for pad, stride in ((1, 1), ((2, 1), 2)):
        ce = ember.nn.Conv2d(
            3,
            4,
            3,
            padding=pad,
            stride=stride,
            padding_mode=mode,
            dtype=ember.float64 if dt == np.float64 else ember.float32,
        )
        ct = torch.nn.Conv2d(
            3,
            4,
            3,
            padding=pad,
            stride=stride,
            padding_mode=mode,
            dtype=torch.float64 if dt == np.float64 else torch.float32,
        )
        with torch.no_grad():
            ct.weight.copy_(torch.tensor(w))
            ct.bias.zero_()
        with ember.no_grad():
            ce.weight.copy_(ember.tensor(w))
            ce.bias.zero_()
        _run(ce, ct, [x], dt, tol=tol)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize(
    "xs,ws,kw",
    [
        ((2, 4, 17), (6, 2, 3), {"groups": 2}),
        ((2, 4, 17), (4, 1, 5), {"groups": 4, "stride": 3}),
        ((1, 1, 9), (1, 1, 3), {"padding": "same", "dilation": 3}),
        ((3, 5, 8), (2, 5, 1), {}),
        ((2, 3, 10), (4, 3, 4), {"padding": "same"}),
        ((1, 2, 4097), (3, 2, 3), {"stride": 2}),
    ],
)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_conv1d_corners(dt, xs, ws, kw, layout):
    rng = np.random.default_rng(41)
    x = _layout(rng.standard_normal(xs).astype(dt), layout)
    w, b = rng.standard_normal(ws).astype(dt), rng.standard_normal(ws[0]).astype(dt)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dt == np.float32 else _tol(dt)
    _run(
        lambda x, w, b: F.conv1d(x, w, b, **kw),
        lambda x, w, b: TF.conv1d(x, w, b, **kw),
        [x, w, b],
        dt,
        tol=tol,
    )


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_conv1d_padding_modes(dt, mode):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((2, 3, 9)).astype(dt)
    edt, tdt = (
        (ember.float64, torch.float64) if dt == np.float64 else (ember.float32, torch.float32)
    )
    ce = ember.nn.Conv1d(3, 2, 3, padding=2, padding_mode=mode, dtype=edt)
    ct = torch.nn.Conv1d(3, 2, 3, padding=2, padding_mode=mode, dtype=tdt)
    with torch.no_grad():
        ct.weight.copy_(torch.tensor(ce.weight.detach().numpy()))
        ct.bias.copy_(torch.tensor(ce.bias.detach().numpy()))
    _run(ce, ct, [x], dt, tol={"rtol": 1e-4, "atol": 1e-5} if dt == np.float32 else _tol(dt))


def test_conv_threads_bitwise(threads12):
    rng = np.random.default_rng(43)
    x = _layout(rng.standard_normal((4, 8, 20, 20)).astype(np.float32), "channels_last")
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)

    def go():
        out = []
        for ww, kw in ((w, {"groups": 8, "padding": 1}), (w2, {"groups": 2, "stride": 2})):
            xe, we = ember.from_numpy(x).requires_grad_(), ember.tensor(ww, requires_grad=True)
            y = F.conv2d(xe, we, **kw)
            (y * y).sum().backward()
            out += [y.detach().numpy().copy(), xe.grad.numpy().copy(), we.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- pooling -----------------------------------------------------------------------------------
POOL = [
    {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": (3, 1), "padding": (1, 1)},
    {"kernel_size": 2, "stride": 1},
    {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True},
]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("case", range(len(POOL)))
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("div", [None, 5])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "slice2"])
def test_avg_pool2d_options(dt, case, cip, div, layout):
    x = _layout(np.random.default_rng(50).standard_normal((2, 3, 8, 7)).astype(dt), layout)
    kw = dict(POOL[case], count_include_pad=cip, divisor_override=div)
    _run(lambda v: F.avg_pool2d(v, **kw), lambda v: TF.avg_pool2d(v, **kw), [x], dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("case", range(len(POOL)))
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "slice2"])
def test_max_pool2d_options(dt, case, dilation, layout):
    x = np.random.default_rng(51).standard_normal((2, 3, 9, 8)).astype(dt)
    x[0, 1, 2, :] = x[0, 1, 3, :]  # ties
    x[1, 2, 4, 4] = np.nan
    x[1, 0, 0, 0] = -np.inf
    x = _layout(x, layout)
    kw = dict(POOL[case], dilation=dilation, return_indices=True)
    _run(lambda v: F.max_pool2d(v, **kw), lambda v: TF.max_pool2d(v, **kw), [x], dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 3, "stride": 2, "ceil_mode": True, "padding": 1},
        {"kernel_size": 2, "dilation": 3, "return_indices": True},
        {"kernel_size": 5, "stride": 3, "padding": 2, "ceil_mode": True, "return_indices": True},
    ],
)
def test_max_pool1d_options(dt, kw):
    x = _layout(np.random.default_rng(52).standard_normal((2, 3, 17)).astype(dt), "transposed")
    _run(lambda v: F.max_pool1d(v, **kw), lambda v: TF.max_pool1d(v, **kw), [x], dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("cip", [True, False])
def test_avg_pool1d_options(dt, cip):
    x = _layout(np.random.default_rng(53).standard_normal((2, 3, 17)).astype(dt), "transposed")
    for kw in (
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True},
    ):
        kw = dict(kw, count_include_pad=cip)
        _run(
            lambda v, kw=kw: F.avg_pool1d(v, **kw), lambda v, kw=kw: TF.avg_pool1d(v, **kw), [x], dt
        )


def test_pool_single_image_and_one_channel():
    x = np.random.default_rng(54).standard_normal((1, 1, 5, 5)).astype(np.float32)
    for fe, ft in [
        (lambda v: F.max_pool2d(v, 5), lambda v: TF.max_pool2d(v, 5)),
        (
            lambda v: F.avg_pool2d(v, 5, padding=2, count_include_pad=False),
            lambda v: TF.avg_pool2d(v, 5, padding=2, count_include_pad=False),
        ),
    ]:
        _run(fe, ft, [x], np.float32)
        _run(fe, ft, [x[0]], np.float32)  # unbatched (C, H, W)


def test_pool_threads_bitwise(threads12):
    x = _layout(
        np.random.default_rng(55).standard_normal((4, 16, 24, 24)).astype(np.float32),
        "channels_last",
    )

    def go():
        out = []
        for fn in (
            lambda v: F.max_pool2d(v, 3, 2, 1, ceil_mode=True),
            lambda v: F.avg_pool2d(v, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        ):
            e = ember.from_numpy(x).requires_grad_()
            y = fn(e)
            (y * y).sum().backward()
            out += [y.detach().numpy().copy(), e.grad.numpy().copy()]
        return out

    _bitwise(*threads12(go))


# -- regressions found here --------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("channels", [3, 20])  # NumPy loop / compiled channels-last kernel
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2},
        {"kernel_size": (2, 5), "stride": (1, 3), "padding": (1, 2)},
    ],
)
def test_max_pool_window_of_minus_inf_points_inside_the_input(dt, channels, layout, kw):
    """A window whose input values are all -inf: PyTorch's index is its first position inside
    the image, and the gradient goes there (it used to name a padding position: a negative
    flat index, and the gradient was lost)."""
    x = np.random.default_rng(60).standard_normal((2, channels, 8, 8)).astype(dt)
    x[0, 0, :4, :4] = -np.inf
    x[:, :, 5:, 5:] = -np.inf
    x[1, 1, :2, :2] = np.nan
    kw = dict(kw, return_indices=True)
    ye = _run(
        lambda v: F.max_pool2d(v, **kw), lambda v: TF.max_pool2d(v, **kw), [_layout(x, layout)], dt
    )
    it = TF.max_pool2d(torch.tensor(x), **kw)[1].numpy()
    ie = F.max_pool2d(ember.from_numpy(_layout(x, layout)), **kw)[1].numpy()
    np.testing.assert_array_equal(ie, it)
    assert (ie >= 0).all() and ye is not None


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("correction", [3, 4, 6])
def test_var_std_with_correction_at_or_past_the_count(dt, fn, correction):
    """n - correction <= 0: PyTorch's value is inf (nan for equal values) and its gradient
    2 (x - mean) / (n - correction), unclamped; it used to be nan (the value past the count,
    and the gradient everywhere)."""
    x = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0], [-1.0, 0.5, 0.25]], dt)
    for d in (1, (0, 1)):
        _run(
            lambda v, d=d: getattr(v, fn)(d, correction=correction),
            lambda v, d=d: getattr(v, fn)(d, correction=correction),
            [x],
            dt,
        )


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name", ["alpha_dropout", "feature_alpha_dropout"])
def test_alpha_dropouts_p1_and_feature_mask(dt, name):
    """p=1 drops everything (zeros, NaN stays NaN) as PyTorch (it raised ZeroDivisionError);
    feature_alpha_dropout draws one mask value per (sample, channel) (it was alpha_dropout)."""
    x = np.random.default_rng(61).standard_normal((2, 3, 4, 4)).astype(dt)
    x[0, 0, 0, 0] = np.nan
    fe, ft = getattr(F, name), getattr(TF, name)
    _run(lambda v: fe(v, 1.0, True), lambda v: ft(v, 1.0, True), [x], dt)
    _run(lambda v: fe(v, 0.5, False), lambda v: ft(v, 0.5, False), [x], dt)
    y = F.feature_alpha_dropout(ember.ones(4, 6, 3, 3, dtype=ember.float64), 0.5, True).numpy()
    assert np.ptp(y.reshape(24, 9), axis=1).max() == 0  # constant over each channel
    assert len(np.unique(y)) == 2
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        F.feature_alpha_dropout(ember.ones(5), 0.5, True)


# -- ~1.1M elements (past every parallel threshold) and expanded (stride-0) inputs -------------
BIG = {
    "exp": (ember.exp, torch.exp),
    "gelu": (F.gelu, TF.gelu),
    "softplus": (
        lambda v: F.softplus(v, beta=3.0, threshold=0.5),
        lambda v: TF.softplus(v, beta=3.0, threshold=0.5),
    ),
    "sum0": (lambda v: v.sum(0), lambda v: v.sum(0)),
    "var1": (lambda v: v.var(1), lambda v: v.var(1)),
    "amax01": (lambda v: v.amax((0, 1)), lambda v: v.amax((0, 1))),
    "softmax0": (lambda v: F.softmax(v, 0), lambda v: TF.softmax(v, 0)),
    "log_softmax1": (lambda v: F.log_softmax(v, 1), lambda v: TF.log_softmax(v, 1)),
    "layer_norm": (lambda v: F.layer_norm(v, (1001,)), lambda v: TF.layer_norm(v, (1001,))),
    "rms_norm": (lambda v: F.rms_norm(v, (1001,)), lambda v: TF.rms_norm(v, (1001,))),
}


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", list(BIG))
def test_million_elements(op, dt):
    x = np.random.default_rng(70).standard_normal((1100, 1001)).astype(dt)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dt == np.float32 else _tol(dt)  # long float32 sums
    _run(*BIG[op], [_layout(x, "transposed") if op.endswith("0") else x], dt, tol=tol)


@pytest.mark.parametrize("dt", FLOATS)
def test_expanded_inputs_sum_their_gradients(dt):
    rng = np.random.default_rng(71)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dt == np.float32 else _tol(dt)
    row = rng.standard_normal((1, 33)).astype(dt)
    for fe, ft in [
        (lambda v: F.softmax(v, 0), lambda v: TF.softmax(v, 0)),
        (lambda v: F.log_softmax(v, -1), lambda v: TF.log_softmax(v, -1)),
        (lambda v: F.layer_norm(v, (33,)), lambda v: TF.layer_norm(v, (33,))),
        (lambda v: F.rms_norm(v, (33,)), lambda v: TF.rms_norm(v, (33,))),
        (lambda v: v.mean((0, 1), keepdim=True), lambda v: v.mean((0, 1), keepdim=True)),
    ]:
        _run(
            lambda v, fe=fe, ft=ft: fe(v.expand(7, 33)),
            lambda v, fe=fe, ft=ft: ft(v.expand(7, 33)),
            [row],
            dt,
            tol=tol,
        )
    img = rng.standard_normal((1, 4, 9, 9)).astype(dt)
    w = rng.standard_normal((4, 1, 3, 3)).astype(dt)
    _run(
        lambda v, w: F.conv2d(v.expand(3, 4, 9, 9), w, groups=4, padding=1),
        lambda v, w: TF.conv2d(v.expand(3, 4, 9, 9), w, groups=4, padding=1),
        [img, w],
        dt,
        tol={"rtol": 1e-4, "atol": 1e-4} if dt == np.float32 else _tol(dt),
    )
    for fe, ft in [
        (lambda v: F.max_pool2d(v, 3, 2, 1), lambda v: TF.max_pool2d(v, 3, 2, 1)),
        (
            lambda v: F.avg_pool2d(v, 3, 2, 1, count_include_pad=False),
            lambda v: TF.avg_pool2d(v, 3, 2, 1, count_include_pad=False),
        ),
        (lambda v: F.group_norm(v, 2), lambda v: TF.group_norm(v, 2)),
    ]:
        _run(
            lambda v, fe=fe: fe(v.expand(3, 4, 9, 9)),
            lambda v, ft=ft: ft(v.expand(3, 4, 9, 9)),
            [img],
            dt,
            tol=tol,
        )


def test_var_of_infinite_values_is_nan_without_a_warning():
    """inf - inf inside the variance: nan, silently, as PyTorch (NumPy warned)."""
    x = np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ember.tensor(x).var(0).numpy()
    np.testing.assert_array_equal(got, torch.tensor(x).var(0).numpy())
