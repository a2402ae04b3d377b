"""Neural-network primitives: losses, embedding, dropout, linear (normalization lives in
``normalization.py``, pooling in ``pooling.py``, attention in ``attention.py``).

Each is one fused kernel (few passes over memory) with a VJP written in ember ops.
Where the fast VJP uses a dedicated backward primitive, that primitive has its own VJP
(pooling: the scatter/gather pair are adjoint), or the VJP switches to a composite of
ember ops when a graph of the backward pass is being recorded (``create_graph``), so
higher-order gradients stay exact.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype as dt
from . import indexing as _indexing
from ._ad import defvjp
from ._core import (
    SAVE_INPUTS,
    SAVE_NONE,
    AbstractValue,
    OpIndexError,
    Primitive,
    ShapeError,
    _state,
    bind,
)
from ._samples import defsample


def _f(x, v):
    """A Python float as a scalar of ``x``'s dtype (avoid float64 upcasts)."""
    return x.dtype.type(v)


# =========================================================================================
# Losses: fused cross-entropy over class indices, nll and its adjoint scatter
# =========================================================================================
def _target_weights(t, weight, ignore_index, dtype):
    """Per-element weight w[t] (0 where t == ignore_index) and a safe target array."""
    valid = t != ignore_index
    ts = np.where(valid, t, 0)
    wt = valid.astype(dtype) if weight is None else np.where(valid, weight[ts], 0).astype(dtype)
    return ts, wt


def _check_classes(ts, c, ignore_index):
    """Targets outside [0, c) raise (NumPy's indexing would wrap negative ones): the
    functional wrappers check first, a compiled graph relies on this."""
    if ts.size and (ts.min() < 0 or ts.max() >= c):
        bad = int(ts.min()) if ts.min() < 0 else int(ts.max())
        raise IndexError(
            f"target {bad} is out of bounds for {c} classes (ignore_index={ignore_index})"
        )


def _take_class(a, ts):
    """a[n, t[n, ...], ...] for a (N, C, ...) and t (N, ...)."""
    return np.take_along_axis(a, ts[:, None], axis=1)[:, 0]


def _weight_total(wt, dtype):
    """sum(wt), the divisor of a 'mean' gradient; 1 where every target is ignored (all of
    wt is 0), so that gradient is 0 as PyTorch's rather than 0/0 = nan (the loss stays nan)."""
    s = wt.sum(dtype=dtype)
    return s if s != 0 or wt.any() else np.ones((), dtype)


def _reduce_loss(per, wt, reduction):
    if reduction == "none":
        return per
    s = per.sum(dtype=per.dtype)
    if reduction == "sum":
        return np.asarray(s)
    with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, silently
        return np.asarray(s / wt.sum(dtype=per.dtype))


def _nll_impl(logp, t, weight=None, *, ignore_index, reduction):
    ts, wt = _target_weights(t, weight, ignore_index, logp.dtype)
    _check_classes(ts, logp.shape[1], ignore_index)
    per = -_take_class(logp, ts) * wt
    return _reduce_loss(per, wt, reduction)


def _nll_abstract(logp, t, weight=None, *, ignore_index, reduction):
    shape = () if reduction != "none" else (logp.shape[0],) + tuple(logp.shape[2:])
    return AbstractValue(shape, logp.dtype)


nll_loss_p = Primitive(
    "nll_loss", "opaque", impl=_nll_impl, abstract=_nll_abstract, save=SAVE_INPUTS
)


@defvjp(nll_loss_p)
def _nll_vjp(g, out, logp, t, weight=None, *, ignore_index, reduction):
    args = (g, t) + ((weight,) if weight is not None else ())
    return (
        bind(
            nll_loss_grad_p,
            args,
            {"ignore_index": ignore_index, "reduction": reduction, "shape": tuple(logp.shape)},
        ),
        None,
        None,
    )


def _nll_grad_impl(g, t, weight=None, *, ignore_index, reduction, shape):
    ts, wt = _target_weights(t, weight, ignore_index, g.dtype)
    if reduction == "mean":
        coef = -wt * (g / _weight_total(wt, g.dtype))
    else:
        coef = -wt * g
    out = np.zeros(shape, g.dtype)
    np.put_along_axis(out, ts[:, None], coef[:, None].astype(g.dtype), axis=1)
    return out


nll_loss_grad_p = Primitive(
    "nll_loss_grad",
    "opaque",
    impl=_nll_grad_impl,
    save=SAVE_INPUTS,
    abstract=lambda g, t, w=None, *, shape, **kw: AbstractValue(shape, g.dtype),
)


@defvjp(nll_loss_grad_p)
def _nll_grad_vjp(gg, out, g, t, weight=None, *, ignore_index, reduction, shape):
    args = (gg, t) + ((weight,) if weight is not None else ())
    return (
        bind(nll_loss_p, args, {"ignore_index": ignore_index, "reduction": reduction}),
        None,
        None,
    )


def _row_sums(a):
    from ._parallel import row_sums

    return row_sums(a)


def _lse(x):
    m = np.max(x, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    s = np.exp(x - m)
    return np.log(_row_sums(s) if x.ndim == 2 else np.add.reduce(s, axis=1, keepdims=True)) + m


def _ce_kernel(name, x, ts):
    """The compiled cross-entropy row kernel ``name`` for (N, C) float logits and in-range
    targets (others: None, and the NumPy code raises or handles them)."""
    from . import _norm_kernels as nk

    if x.ndim != 2 or x.size == 0:
        return None
    k = nk.kernel(name, x)
    if k is None or (ts.size and (ts.min() < 0 or ts.max() >= x.shape[1])):
        return None
    return k


def _ce_mid_kernel(name, x, ts):
    """The compiled (N, C, S) kernel ``name`` of :mod:`ember.backends.kernels_norm_s42` for
    (N, C, d1, ...) float logits and in-range targets, or None."""
    from ..backends.cpu import FAST_FLOATS
    from ._parallel import parallel_kernel

    if x.ndim < 3 or x.size == 0 or type(x) is not np.ndarray or x.dtype not in FAST_FLOATS:
        return None
    if ts.size and (ts.min() < 0 or ts.max() >= x.shape[1]):
        return None
    from ..backends import jit

    return parallel_kernel(name, 16 * x.size) or jit.get(name)


def _smooth_args(x, weight, eps):
    """The trailing kernel arguments for label smoothing ``eps``: (eps, class weights in
    x's dtype (a dummy without), has_w, their sum (C without))."""
    if weight is None:
        return (float(eps), np.ones(1, x.dtype), False, float(x.shape[1]))
    w = np.ascontiguousarray(weight, dtype=x.dtype)
    return (float(eps), w, True, float(w.sum(dtype=x.dtype)))


def _ce_mid(x, ts, wt, sm):
    """Per-position losses of (N, C, d1, ...) logits with the compiled kernel, or None."""
    k = _ce_mid_kernel("ce_mid", x, ts)
    if k is None:
        return None
    n, c = x.shape[0], x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    per = np.empty(ts.shape, x.dtype)
    k(x3, np.ascontiguousarray(ts).reshape(n, -1), np.ascontiguousarray(wt).reshape(n, -1),
      per.reshape(n, -1), *sm)  # fmt: skip
    return per


def _ce_grad_mid(x, ts, coef, sm):
    """The gradient of (N, C, d1, ...) logits with the compiled kernel, or None."""
    k = _ce_mid_kernel("ce_grad_mid", x, ts)
    if k is None:
        return None
    n, c = x.shape[0], x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    c1 = np.ascontiguousarray(np.broadcast_to(coef, ts.shape), dtype=x.dtype).reshape(n, -1)
    out = np.empty(x.shape, x.dtype)
    k(x3, np.ascontiguousarray(ts).reshape(n, -1), c1, out.reshape(n, c, -1), *sm)
    return out


def _class_shape(x, v):
    """A (C,) array ``v`` shaped to broadcast along axis 1 of (N, C, d1, ...) ``x``."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


_NO_CLASS_WEIGHT: dict[np.dtype, np.ndarray] = {}  # dtype -> the row kernels dummy weights


def _ce_plain(name, x, t, weight, ignore_index, eps):
    """``(kernel, x, t, smoothing args)`` for the common case, else None (the general path):
    (N, C) float logits, no class weights, no smoothing, 1-D targets all in [0, C) and none
    possibly ``ignore_index``. Checks the targets once (the general path reads them 3-4 times
    and builds per-row weights: ~20 of a (128, 10) loss's ~30 us)."""
    if weight is not None or eps or x.ndim != 2 or t.ndim != 1 or not x.size:
        return None
    from ..backends.cpu import FAST_FLOATS

    if t.dtype.kind not in "iu" or type(x) is not np.ndarray or x.dtype not in FAST_FLOATS:
        return None
    lo, hi = t.min(), t.max()
    if lo < 0 or hi >= x.shape[1] or lo <= ignore_index <= hi:
        return None
    from ..backends import jit

    k = jit.get(name)
    if k is None:
        return None
    dummy = _NO_CLASS_WEIGHT.get(x.dtype)
    if dummy is None:
        dummy = _NO_CLASS_WEIGHT[x.dtype] = np.ones(1, x.dtype)
    sm = (0.0, dummy, False, float(x.shape[1]))
    return k, np.ascontiguousarray(x), np.ascontiguousarray(t), sm


def _ce_plain_loss(x, t, weight, ignore_index, reduction, eps):
    """The loss by :func:`_ce_plain`'s case, or None."""
    fast = _ce_plain("ce_rows", x, t, weight, ignore_index, eps)
    if fast is None:
        return None
    from . import _norm_kernels as nk

    k, x2, ti, sm = fast
    n = x.shape[0]
    w1, per = np.ones(n, x.dtype), np.empty(n, x.dtype)
    par = ("ce_rows", (x2, ti, w1, per, *sm))
    nk.run_rows(lambda a, b: k(x2[a:b], ti[a:b], w1[a:b], per[a:b], *sm), *x.shape, 8, par=par)
    if reduction == "none":
        return per
    s = per.sum(dtype=per.dtype)
    return np.asarray(s if reduction == "sum" else s / x.dtype.type(n))


def _ce_impl(x, t, weight=None, *, ignore_index, reduction, label_smoothing=0.0):
    plain = _ce_plain_loss(x, t, weight, ignore_index, reduction, label_smoothing)
    if plain is not None:
        return plain
    ts, wt = _target_weights(t, weight, ignore_index, x.dtype)
    _check_classes(ts, x.shape[1], ignore_index)
    eps = float(label_smoothing)
    sm = _smooth_args(x, weight, eps)
    # with smoothing, an ignored position is t < 0 (a valid one may have a zero class weight)
    tk = ts if eps == 0 else np.where(t != ignore_index, ts, -1)
    per = _ce_mid(x, tk, wt, sm)
    if per is not None:
        return _reduce_loss(per, wt, reduction)
    k = _ce_kernel("ce_rows", x, ts)
    if k is not None:
        from . import _norm_kernels as nk

        x2, ti, w1 = np.ascontiguousarray(x), np.ascontiguousarray(tk), np.ascontiguousarray(wt)
        per = np.empty(x.shape[0], x.dtype)
        par = ("ce_rows", (x2, ti, w1, per, *sm))
        nk.run_rows(lambda a, b: k(x2[a:b], ti[a:b], w1[a:b], per[a:b], *sm), *x.shape, 8, par=par)
        return _reduce_loss(per, wt, reduction)
    lse = _lse(x)
    per = (lse[:, 0] - _take_class(x, ts)) * wt
    if eps != 0:
        lp = x - lse
        if weight is not None:
            lp = lp * _class_shape(x, sm[1])
        smooth = -lp.sum(axis=1, dtype=x.dtype) * (t != ignore_index)
        per = _f(x, 1.0 - eps) * per + _f(x, eps / x.shape[1]) * smooth
    return _reduce_loss(per.astype(x.dtype, copy=False), wt, reduction)


def _ce_abstract(x, t, weight=None, *, ignore_index, reduction, label_smoothing=0.0):
    return _nll_abstract(x, t, weight, ignore_index=ignore_index, reduction=reduction)


cross_entropy_p = Primitive(
    "cross_entropy", "opaque", impl=_ce_impl, abstract=_ce_abstract, save=SAVE_INPUTS
)


@defvjp(cross_entropy_p)
def _ce_vjp(g, out, x, t, weight=None, *, ignore_index, reduction, label_smoothing=0.0):
    # d/dx of w[t] * (lse(x) - x[t]) = w[t] * (softmax(x) - onehot(t)); in ember ops.
    # Label smoothing e adds e / C * sum_j w_j (lse - x_j) at each non-ignored position:
    # d/dx = e / C * (sum(w) * softmax(x) - w).
    from .reduction import softmax

    wargs = (t,) + ((weight,) if weight is not None else ())
    p = {"ignore_index": ignore_index, "reduction": reduction}
    if label_smoothing:
        p["label_smoothing"] = label_smoothing
    if not _state.grad_enabled and x._data.dtype.kind == "f":
        return (bind(cross_entropy_grad_p, (g, x) + wargs, p), None, None)
    p = {"ignore_index": ignore_index, "reduction": reduction, "shape": tuple(x.shape)}
    onehot_part = bind(nll_loss_grad_p, (g,) + wargs, p)  # -w[t] g / denom at targets
    coef = bind(
        target_weight_p,
        wargs,
        {"ignore_index": ignore_index, "reduction": reduction, "dtype": x._data.dtype},
    )
    coef = coef * g
    if not label_smoothing:
        return (softmax(x, 1) * coef.unsqueeze(1) + onehot_part, None, None)
    e = float(label_smoothing)
    c = x.shape[1]
    # g per non-ignored position, divided by sum(w[t]) for 'mean' (1 when all are ignored)
    valid = bind(
        target_weight_p,
        (t,),
        {"ignore_index": ignore_index, "reduction": "sum", "dtype": x._data.dtype},
    )
    c0 = valid * g
    if reduction == "mean":
        den = bind(
            target_weight_p,
            wargs,
            {"ignore_index": ignore_index, "reduction": "sum", "dtype": x._data.dtype},
        ).sum()
        c0 = c0 / (den + (den == 0).to(den.dtype))
    wsum = weight.detach().sum().to(x.dtype) if weight is not None else float(c)
    a = coef * (1.0 - e) + c0 * wsum * (e / c)
    smooth = c0.unsqueeze(1) * (e / c)
    if weight is not None:
        wb = weight.detach().to(x.dtype).reshape((1, c) + (1,) * (x.ndim - 2))
        smooth = smooth * wb
    return (softmax(x, 1) * a.unsqueeze(1) + onehot_part * (1.0 - e) - smooth, None, None)


def _ce_grad_impl(g, x, t, weight=None, *, ignore_index, reduction, label_smoothing=0.0):
    """c * (softmax(x) - onehot(t)) with c = w[t] * g (divided by sum(w[t]) for 'mean'), in
    one buffer; label smoothing e: ((1 - e) c + e / C * sum(w) c0) softmax(x) - (1 - e) c
    onehot(t) - e / C * c0 w, c0 = g (divided as c) at non-ignored positions."""
    fast = _ce_plain("ce_grad_rows", x, t, weight, ignore_index, label_smoothing)
    if fast is not None:
        from . import _norm_kernels as nk

        k, x2, ti, sm = fast
        g = g.astype(x.dtype, copy=False)
        c0 = g / x.dtype.type(x.shape[0]) if reduction == "mean" else g
        c1 = np.ascontiguousarray(np.broadcast_to(c0, t.shape), dtype=x.dtype)
        out = np.empty(x.shape, x.dtype)
        par = ("ce_grad_rows", (x2, ti, c1, out, *sm))
        nk.run_rows(lambda a, b: k(x2[a:b], ti[a:b], c1[a:b], out[a:b], *sm), *x.shape, 8, par=par)
        return out
    ts, wt = _target_weights(t, weight, ignore_index, x.dtype)
    g = g.astype(x.dtype, copy=False)
    eps = float(label_smoothing)
    valid = (t != ignore_index).astype(x.dtype)
    c0 = valid * (g / _weight_total(wt, x.dtype)) if reduction == "mean" else valid * g
    sm = _smooth_args(x, weight, eps)
    out = _ce_grad_mid(x, ts, c0, sm)
    if out is not None:
        return out
    k = _ce_kernel("ce_grad_rows", x, ts)
    if k is not None:
        from . import _norm_kernels as nk

        x2, ti = np.ascontiguousarray(x), np.ascontiguousarray(ts)
        c1 = np.ascontiguousarray(np.broadcast_to(c0, ts.shape), dtype=x.dtype)
        out = np.empty(x.shape, x.dtype)
        par = ("ce_grad_rows", (x2, ti, c1, out, *sm))
        nk.run_rows(lambda a, b: k(x2[a:b], ti[a:b], c1[a:b], out[a:b], *sm), *x.shape, 8, par=par)
        return out
    coef = c0 * wt if weight is not None else c0
    coef = np.broadcast_to(coef, ts.shape)
    m = np.max(x, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    p = np.subtract(x, m, out=np.empty(x.shape, x.dtype))
    np.exp(p, out=p)
    s = _row_sums(p)[:, 0] if p.ndim == 2 else np.add.reduce(p, axis=1)
    ti = ts[:, None]
    if eps == 0:
        p *= (coef / s)[:, None]
        np.put_along_axis(p, ti, np.take_along_axis(p, ti, axis=1) - coef[:, None], axis=1)
        return p
    c1 = _f(x, 1.0 - eps) * coef
    b = _f(x, eps / x.shape[1]) * np.broadcast_to(c0, ts.shape)
    p *= ((c1 + b * _f(x, sm[3])) / s)[:, None]
    p -= b[:, None] * (_class_shape(x, sm[1]) if weight is not None else _f(x, 1.0))
    np.put_along_axis(p, ti, np.take_along_axis(p, ti, axis=1) - c1[:, None], axis=1)
    return p


def _ce_grad_sample():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((4, 3)))
    t = tensor(np.array([0, 2, 1, 2]))
    return [
        ((tensor(np.array(1.5)), x, t), {"ignore_index": 1, "reduction": "mean"}),
        (
            (tensor(rng.standard_normal(4)), x, t, tensor(np.array([0.5, 1.0, 2.0]))),
            {"ignore_index": -100, "reduction": "none"},
        ),
        (
            (tensor(np.array(0.7)), x, t, tensor(np.array([0.5, 0.0, 2.0]))),
            {"ignore_index": 1, "reduction": "mean", "label_smoothing": 0.2},
        ),
    ]


cross_entropy_grad_p = Primitive(
    "cross_entropy_grad",
    "opaque",
    impl=_ce_grad_impl,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, x, *a, **kw: AbstractValue(x.shape, x.dtype),
)
defsample(cross_entropy_grad_p, _ce_grad_sample)


def _target_weight_impl(t, weight=None, *, ignore_index, reduction, dtype):
    _, wt = _target_weights(t, weight, ignore_index, dtype)
    if reduction == "mean":
        wt = wt / _weight_total(wt, dtype)
    return wt.astype(dtype, copy=False)


target_weight_p = Primitive(
    "target_weight",
    "opaque",
    impl=_target_weight_impl,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda t, w=None, *, dtype, **kw: AbstractValue(
        t.shape, dt.from_numpy_dtype(np.dtype(dtype))
    ),
)


# =========================================================================================
# Embedding, dropout, one_hot
# =========================================================================================
def _embedding_impl(w, idx, *, padding_idx):
    if type(w) is np.ndarray and type(idx) is np.ndarray and w.ndim >= 1:
        out = _embedding_rows(w, idx)
        if out is not None:
            return out
        if idx.dtype.kind in "iu" and idx.size and (idx.min() < 0 or idx.max() >= w.shape[0]):
            raise embedding_index_error(idx, w.shape[0])
        # take's row copy loop: 15-20% faster than the general fancy-indexing machinery
        return np.take(w, idx, axis=0)
    return w[idx]


def embedding_index_error(idx, n: int) -> OpIndexError:
    """The error for lookup indices outside ``[0, n)`` (PyTorch's words, with the range).

    Example:
        >>> import numpy as np
        >>> from ember.ops.nn import embedding_index_error
        >>> str(embedding_index_error(np.array([3, 12]), 10)).split(" (")[0]
        'embedding: index out of range in self'
    """
    return OpIndexError(
        f"embedding: index out of range in self (indices must be in [0, {n}), got "
        f"min {int(idx.min())}, max {int(idx.max())})"
    )


def _embedding_rows(w, idx):
    """The lookup as the compiled row gather on numba's threads (a (16, 128) batch of
    256-wide float32 rows: 65 -> ~35 us on two threads), checking the indices as it copies;
    None where it does not apply (small, another dtype). Raises the IndexError of
    :func:`embedding_index_error` for an index out of range."""
    from ..backends.cpu import FAST_FLOATS
    from ._parallel import parallel_kernel

    if w.ndim != 2 or w.dtype not in FAST_FLOATS or idx.dtype.kind not in "iu" or idx.size == 0:
        return None
    kern = parallel_kernel("embedding_rows", 2 * idx.size * w.shape[1])
    if kern is None:
        return None
    flat = np.ascontiguousarray(idx.reshape(-1))
    out = np.empty((flat.size, w.shape[1]), w.dtype)
    if kern(np.ascontiguousarray(w), flat, out):
        raise embedding_index_error(flat, w.shape[0])
    return out.reshape(idx.shape + (w.shape[1],))


embedding_p = Primitive(
    "embedding",
    "opaque",
    impl=_embedding_impl,
    save=SAVE_INPUTS,
    abstract=lambda w, idx, **kw: AbstractValue(tuple(idx.shape) + tuple(w.shape[1:]), w.dtype),
)


@defvjp(embedding_p)
def _embedding_vjp(g, out, w, idx, *, padding_idx):
    return bind(embedding_grad_p, (g, idx), {"padding_idx": padding_idx, "num": w.shape[0]}), None


def _embedding_grad_kernel(g, idx, num, padding_idx):
    """The scatter-add with the compiled loop over a stable sort of the indices, split over
    blocks of table rows on numba's threads (each row is summed by one thread, in index
    order: the sums are the same on any number of threads), or None."""
    from . import _norm_kernels as nk
    from ._parallel import parallel_kernel

    if g.ndim != idx.ndim + 1 or idx.size == 0 or g.size == 0:
        return None
    k = nk.kernel("embedding_grad_rows", g)
    if k is None:
        return None
    flat = np.ascontiguousarray(idx.reshape(-1), dtype=np.int64)
    if flat.min() < 0 or flat.max() >= num:
        return None
    d = g.shape[-1]
    lead = memory_order(g)  # the rows of a transposed gradient in place (and idx alike)
    if lead is not None:
        flat = np.ascontiguousarray(idx.transpose(lead).reshape(-1), dtype=np.int64)
    g2 = _rows(g, lead) if lead is not None else nk.rows(g, d)
    order = np.argsort(flat, kind="stable")
    srt = flat[order]
    gw = np.empty((num, d), g.dtype)
    # 8 blocks of table rows on numba's threads (fixed by the size: any thread count sums
    # each row the same way)
    (parallel_kernel("embedding_grad_rows", 2 * (g.size + gw.size)) or k)(
        g2, order, srt, gw, -(-num // 8)
    )
    if padding_idx is not None:
        gw[padding_idx] = 0
    return gw


def _embedding_grad_impl(g, idx, *, padding_idx, num):
    r = _embedding_grad_kernel(g, idx, num, padding_idx)
    if r is not None:
        return r
    d = g.shape[idx.ndim :]
    gw = np.zeros((num,) + tuple(d), g.dtype)
    flat = idx.reshape(-1)
    g2 = g.reshape((flat.size,) + tuple(d))
    if flat.size:
        # sort + segmented sum (np.add.at is an order of magnitude slower); the stable sort
        # keeps each row's contributions in their original order
        order = np.argsort(flat, kind="stable")
        srt = flat[order]
        starts = np.flatnonzero(np.concatenate(([True], srt[1:] != srt[:-1])))
        rows = srt[starts]
        if starts.size == flat.size:  # all indices distinct (positions): a scatter
            gw[rows] = g2[order]
        else:
            gw[rows] = np.add.reduceat(g2[order], starts, axis=0)
    if padding_idx is not None:
        gw[padding_idx] = 0
    return gw


embedding_grad_p = Primitive(
    "embedding_grad",
    "opaque",
    impl=_embedding_grad_impl,
    save=SAVE_INPUTS,
    abstract=lambda g, idx, *, padding_idx, num: AbstractValue(
        (num,) + tuple(g.shape[idx.ndim :]), g.dtype
    ),
)


@defvjp(embedding_grad_p)
def _embedding_grad_vjp(gg, out, g, idx, *, padding_idx, num):
    r = bind(embedding_p, (gg, idx), {"padding_idx": None})
    if padding_idx is not None:
        from .elementwise import where

        keep = bind(_ne_const_p, (idx,), {"value": padding_idx})
        r = where(keep.reshape(tuple(idx.shape) + (1,) * (r.ndim - idx.ndim)), r, 0.0)
    return r, None


_ne_const_p = Primitive(
    "ne_const",
    "elementwise",
    impl=lambda a, *, value: a != value,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda a, *, value: AbstractValue(a.shape, dt.bool_),
)


def _dropout_impl(x, *, seed, p, mask_shape):
    from ._ew_dropout import dropout_apply  # the mask kernel lives with the elementwise ones

    return dropout_apply(x, seed, p, mask_shape)


dropout_p = Primitive(
    "dropout",
    "elementwise",
    impl=_dropout_impl,
    save=SAVE_NONE,
    abstract=lambda x, **kw: AbstractValue(x.shape, x.dtype),
)
defvjp(
    dropout_p,
    lambda g, out, x, *, seed, p, mask_shape: (
        bind(dropout_p, (g,), {"seed": seed, "p": p, "mask_shape": mask_shape}),
    ),
)


# one primitive for one_hot (ember.ops.indexing); nn.functional imports it from here
one_hot_p = _indexing.one_hot_p


# =========================================================================================
# Linear: one GEMM (+ bias) with the small-GEMM threading policy of the conv kernels
# =========================================================================================
def memory_order(x):
    """The order of ``x``'s leading axes (all but the last) in memory, outermost first, when
    ``x.transpose(order + [last])`` is C-contiguous and the order is not the identity (the
    (B, T, H) view of a (T, B, H) RNN output, a transposed batch); else None.

    Example:
        >>> import numpy as np
        >>> from ember.ops.nn import memory_order
        >>> memory_order(np.zeros((3, 2, 4)).transpose(1, 0, 2))
        [1, 0]
        >>> memory_order(np.zeros((3, 2, 4))) is None
        True
    """
    if x.ndim < 3 or x.flags.c_contiguous or x.strides[-1] != x.itemsize:
        return None
    order = sorted(range(x.ndim - 1), key=lambda i: -x.strides[i])
    if not x.transpose(order + [x.ndim - 1]).flags.c_contiguous:
        return None
    return order


def _rows(a, order):
    """``a`` as 2-D rows with its leading axes taken in ``order`` (a view when ``a`` is laid
    out so; else a copy)."""
    if order is not None:
        a = a.transpose(order + [a.ndim - 1])
    # (the row count spelled out: ``-1`` is ambiguous when the last axis is empty)
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _unrows(a2, lead, order):
    """The inverse of :func:`_rows` for a result with leading shape ``lead`` (a view)."""
    if order is None:
        return a2.reshape(lead + a2.shape[-1:])
    out = a2.reshape(tuple(lead[i] for i in order) + a2.shape[-1:])
    return out.transpose([*np.argsort(order).tolist(), len(lead)])


def _linear_impl(x, w, b=None):
    from ._parallel import gemm

    lowp = x.dtype.kind == "V" or x.dtype == np.float16
    xd, wd = (x.astype(np.float32), w.astype(np.float32)) if lowp else (x, w)
    # NOTE: rows in x's memory order: a transposed batch (a batch-first RNN's output) is
    # then read in place, not gathered into a copy; the output comes out laid out alike
    order = memory_order(xd)
    x2 = _rows(xd, order)
    bias = None
    if b is not None:
        bias = b.astype(np.result_type(x2.dtype, wd.dtype), copy=False)
    out = _unrows(gemm(x2, wd.T, bias=bias), x.shape[:-1], order)
    return out.astype(x.dtype) if lowp else out


def _linear_abstract(x, w, b=None):
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ShapeError(
            f"linear: input of shape {x.shape} and weight of shape {w.shape} cannot be multiplied"
        )
    return AbstractValue(tuple(x.shape[:-1]) + (w.shape[0],), x.dtype)


linear_p = Primitive(
    "linear", "contraction", impl=_linear_impl, abstract=_linear_abstract, save=SAVE_INPUTS
)


def _rows_of(t):
    """``t`` as (rows, last axis); ``-1`` keeps a symbolic batch size symbolic in traces, the
    row count is spelled out only where the last axis is empty (``-1`` is ambiguous then)."""
    return t.reshape(-1, t.shape[-1]) if t.shape[-1] else t.reshape(math.prod(t.shape[:-1]), 0)


@defvjp(linear_p)
def _linear_vjp(g, out, x, w, b=None):
    need_x = bool(x.requires_grad)
    need_w = bool(w.requires_grad)
    need_b = b is not None and bool(getattr(b, "requires_grad", False))
    if not _state.grad_enabled:
        # one fused kernel: both GEMMs and the bias reduction, no ember-level views
        gx, gw, gb = bind(
            linear_backward_p, (g, x, w), {"need_x": need_x, "need_w": need_w, "need_b": need_b}
        )
        return (gx if need_x else None), (gw if need_w else None), (gb if need_b else None)
    gx = bind(linear_p, (g, w.mT)) if need_x else None
    gw = gb = None
    if need_w or need_b:
        g2 = _rows_of(g) if g.ndim != 2 else g
        if need_w:
            x2 = _rows_of(x) if x.ndim != 2 else x
            gw = bind(linear_p, (g2.mT, x2.mT))
        if need_b:
            gb = g2.sum(0)
    return gx, gw, gb


_EMPTY = np.empty(0, np.float32)


def _linear_backward_impl(g, x, w, *, need_x, need_w, need_b):
    from ._parallel import gemm

    lowp = g.dtype.kind == "V" or g.dtype == np.float16
    # rows in the memory order of x or g, whichever is larger (the other one is copied)
    order = memory_order(x) if x.size >= g.size else memory_order(g)
    g2 = _rows(g, order)
    if lowp:
        g2 = g2.astype(np.float32)
    gx = gw = gb = _EMPTY
    if need_x:
        gx = _unrows(gemm(g2, w.astype(np.float32) if lowp else w), x.shape[:-1], order)
        gx = gx.astype(g.dtype) if lowp else gx
    if need_w:
        x2 = _rows(x, order)
        gw = gemm(g2.T, x2.astype(np.float32) if lowp else x2)
        gw = gw.astype(g.dtype) if lowp else gw
    if need_b:
        gb = column_sums(g2)
        gb = gb.astype(g.dtype) if lowp else gb
    return gx, gw, gb


def column_sums(a):
    """``a.sum(axis=0)`` of a 2-D array: float32/float64 C-contiguous ones from 64K elements
    in fixed blocks of rows on numba's threads (:func:`ember.backends.kernels_norm.col_sums`;
    a linear layer's bias gradient, 2 Xeon threads: (2048, 768) float32 291 -> 151 us,
    (2048, 256) 103 -> 26), else NumPy's reduction.

    Example:
        >>> import numpy as np
        >>> from ember.ops.nn import column_sums
        >>> column_sums(np.arange(6.0).reshape(3, 2)).tolist()
        [6.0, 9.0]
    """
    from ..backends.cpu import FAST_FLOATS

    if (
        a.size >= _COL_SUMS_MIN
        and a.shape[1] >= 16  # (narrower: NumPy sums each column pairwise, more accurately)
        and a.dtype in FAST_FLOATS
        and a.flags.c_contiguous
    ):
        from ._parallel import parallel_kernel

        k = parallel_kernel("col_sums", 1 << 62)  # (the size was decided above)
        if k is not None:
            out = np.empty(a.shape[1], a.dtype)
            k(a, out, 8)
            return out
    return np.add.reduce(a, axis=0)


_COL_SUMS_MIN = 1 << 16


def _linear_backward_abstract(g, x, w, *, need_x, need_w, need_b):
    e = AbstractValue((0,), dt.float32)
    return (
        AbstractValue(tuple(x.shape[:-1]) + (w.shape[1],), g.dtype) if need_x else e,
        AbstractValue(tuple(w.shape), g.dtype) if need_w else e,
        AbstractValue((w.shape[0],), g.dtype) if need_b else e,
    )


def _linear_backward_sample():
    rng = np.random.default_rng(2)
    from .._creation import tensor

    g, x, w = (tensor(rng.standard_normal(s)) for s in ((2, 3, 4), (2, 3, 5), (4, 5)))
    return [
        ((g, x, w), {"need_x": True, "need_w": True, "need_b": True}),
        ((g[0], x[0], w), {"need_x": False, "need_w": True, "need_b": False}),
    ]


linear_backward_p = Primitive(
    "linear_backward",
    "opaque",
    impl=_linear_backward_impl,
    abstract=_linear_backward_abstract,
    n_out=3,
    nondiff=True,
    save=SAVE_NONE,
)
defsample(linear_backward_p, _linear_backward_sample)


__all__ = [
    "cross_entropy_p",
    "dropout_p",
    "embedding_p",
    "linear_p",
    "nll_loss_p",
    "one_hot_p",
    "target_weight_p",
]
