"""Normalization primitives: batch norm (training statistics, fused backward) and layer norm.

Each is one fused kernel (few passes over memory) with a VJP written in ember ops; the fast
VJP uses a dedicated backward primitive, and switches to a composite of ember ops when a
graph of the backward pass is being recorded (``create_graph``), so higher-order gradients
stay exact. Channels-last inputs (conv outputs) take a row-matrix fast path (compiled with
the ``[jit]`` extra).
"""

from __future__ import annotations

import os
import types

import numpy as np

from ..backends.cpu import FAST_FLOATS
from ._ad import UNREAD_OUTPUTS, defvjp
from ._core import (
    SAVE_BOTH,
    SAVE_INPUTS,
    SAVE_NONE,
    AbstractValue,
    Primitive,
    ShapeError,
    _state,
    bind,
)
from ._parallel import PAR_MIN_WORK, parallel_for, parallel_kernel
from ._parallel import ones_vector as _ones
from ._samples import defsample


def _f(x, v):
    """A Python float as a scalar of ``x``'s dtype (avoid float64 upcasts)."""
    return x.dtype.type(v)


# =========================================================================================
# Normalization
# =========================================================================================
def _bn_stats(x, axes):
    m = np.prod([x.shape[a] for a in axes])
    mean = (
        np.add.reduce(
            x, axis=axes, keepdims=True, dtype=np.float64 if x.dtype.itemsize < 4 else None
        )
        / m
    )
    mean = mean.astype(x.dtype, copy=False)
    xc = x - mean
    var = np.add.reduce(xc * xc, axis=axes, keepdims=True) / _f(x, m)
    return xc, mean, var


def _bshape(ndim, c):
    return (1, c) + (1,) * (ndim - 2)


def _channels_last_rows(x):
    """The (N*spatial, C) row matrix of ``x`` (N, C, *spatial) when its memory is laid out
    channels-last (as conv outputs are), else None. float32/float64 only."""
    if x.ndim < 2 or x.dtype not in FAST_FLOATS:
        return None
    xt = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
    if not xt.flags.c_contiguous:
        return None
    return xt.reshape(-1, x.shape[1])


def _widen(x2):
    """View a (P, C) matrix as (P/k, k*C) rows of ~1024 elements (k divides P): NumPy
    broadcasts a per-channel vector along rows with an inner loop of one row, which for C=16
    is 16 elements (measured 3-5x slower than 1024-element rows)."""
    p, c = x2.shape
    k = max(1, min(p, 1024 // max(c, 1)))
    while p % k:
        k -= 1
    return x2.reshape(p // k, k * c), k


def _from_rows(y2, shape):
    """A (P, C) row matrix back as an (N, C, *spatial)-shaped channels-last view."""
    nd = len(shape)
    y = y2.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
    return y.transpose((0, nd - 1) + tuple(range(1, nd - 1)))


# Channels-last batch norm works on the widened (rows, k*C) matrix in row blocks of about
# _BN_BLOCK elements: each pass over a block runs in L2 on one of Ember's threads, and the
# per-block column sums are added in block order (results independent of the thread count).
# The forward reads x three times and writes y once; y = x * scale + shift with
# shift = b - mean * scale, so no centred copy of x is written.
_BN_BLOCK = int(os.environ.get("EMBER_BN_BLOCK", str(1 << 17)))
# Threads only for large activations: blocks of ~64K elements are a few NumPy calls of ~10 us,
# and two threads trading the GIL around such calls measured slower than one.
_BN_PAR_ELEMS = 1 << 21


def _bn_work(xw):

    return PAR_MIN_WORK if xw.size >= _BN_PAR_ELEMS else 0


def _row_blocks(rows, cols):
    per = max(1, _BN_BLOCK // max(cols, 1))
    return per, -(-rows // per)


# parallel_kernel's work units per element of a compiled batch norm pass (two passes, float64
# sums; ~0.5 ns per element on one core): a (8192, 32) forward took 137 us on one thread,
# 64 us on two; at 2 units per element it stayed on one thread up to 512K elements
_BN_WORK = 16


def _jit_blocks(p, c):
    """Rows per block and blocks of the compiled channels-last kernels: ~64K elements a
    block (fixed by the shape), so a 512 KB activation is two blocks, one per thread."""
    per = max(1, _BN_JIT_BLOCK // max(c, 1))
    return per, -(-p // per)


_BN_JIT_BLOCK = 1 << 16


def _bn_kernel(name, work):
    """The compiled batch norm kernel ``name`` (:mod:`ember.backends.kernels_bn`): its
    parallel build when ``work`` is worth splitting, else the serial one; None without
    numba."""
    from ..backends import jit

    return parallel_kernel(name, work) or jit.get(name)


def _tiled(v, c, dtype=None):
    """A per-channel vector tiled to the row kernels' chunk length."""
    from ..backends.kernels_bn import lanes_for

    t = np.tile(v, lanes_for(c) // c)
    return t if dtype is None else t.astype(dtype)


def _bn_scale_shift(s1, s2, shift, count, w, b, eps, dtype):
    """Mean, biased variance, and the forward's ``scale`` and ``shift`` (y = x * scale +
    shift) from per-block sums of ``x - shift`` and their squares (added in block order)."""
    d = np.add.reduce(s1, axis=0) / count
    mean = shift + d
    var = np.maximum(np.add.reduce(s2, axis=0) / count - d * d, 0.0)
    invstd = 1.0 / np.sqrt(var + eps)
    scale = invstd if w is None else invstd * w
    off = -mean * scale if b is None else b - mean * scale
    return mean.astype(dtype), var.astype(dtype), scale.astype(dtype), off.astype(dtype)


def _bn_train_rows_jit(x2, w, b, eps):
    """Compiled batch norm forward on channels-last rows: one statistics pass (float64 sums
    of x - x[0]) and one pass writing y = x * scale + shift, in row blocks on numba's
    threads, both in one kernel call (:func:`ember.backends.kernels_bn.bn_train_rows`).
    None without numba."""
    from ..backends.kernels_bn import lanes_for

    p, c = x2.shape
    kern = _bn_kernel("bn_train_rows", _BN_WORK * x2.size)
    if kern is None:
        return None
    per, nblk = _jit_blocks(p, c)
    dt = x2.dtype
    shift = x2[0].astype(np.float64)
    lanes = lanes_for(c)
    y2 = np.empty_like(x2)
    mean, var = np.empty(c, dt), np.empty(c, dt)
    none = _no_param(dt)
    kern(x2, shift, _tiled(shift, c), none if w is None else w, none if b is None else b,
         w is not None, b is not None,
         float(eps), y2, mean, var, np.empty(lanes, dt), np.empty(lanes, dt),
         np.empty((nblk, c)), np.empty((nblk, c)), per)  # fmt: skip
    return y2, mean, var


def _no_param(dtype):
    """A one-element stand-in for a missing weight or bias of the compiled kernels."""
    return np.zeros(1, dtype)


def _planes(x):
    """``x`` (N, C, *spatial) as C-contiguous (N, C, S) planes for the compiled NCHW
    kernels, or None (another layout or dtype, no numba)."""
    from ..backends import jit

    if x.ndim < 3 or x.dtype not in FAST_FLOATS or not x.flags.c_contiguous or not x.size:
        return None
    if not jit.available():
        return None
    return x.reshape(x.shape[0], x.shape[1], -1)


def _bn_train_planes(x3, w, b, eps):
    """Compiled batch norm forward on NCHW planes (N, C, S); None without numba."""
    n, c, s = x3.shape
    work = _BN_WORK * x3.size
    k_stats, k_affine = _bn_kernel("bn_stats_planes", work), _bn_kernel("affine_planes", work)
    if k_stats is None or k_affine is None:
        return None
    shift = x3[0, :, 0].astype(np.float64)
    s1, s2 = np.empty((n, c)), np.empty((n, c))
    k_stats(x3, shift, s1, s2)
    mean, var, scale, off = _bn_scale_shift(s1, s2, shift, n * s, w, b, eps, x3.dtype)
    y3 = np.empty_like(x3)
    k_affine(x3, scale, off, y3)
    return y3, mean, var


def _bn_train_rows(x2, w, b, eps):
    got = _bn_train_rows_jit(x2, w, b, eps)
    if got is not None:
        return got
    from .conv import _workspace

    m = _f(x2, x2.shape[0])
    xw, k = _widen(x2)
    rows, cols = xw.shape
    per, nblk = _row_blocks(rows, cols)
    part = np.empty((nblk, cols), xw.dtype)

    def sums(r0, r1, slot):
        np.matmul(_ones(r1 - r0, xw.dtype), xw[r0:r1], out=part[r0 // per])

    parallel_for(rows, per, sums, _bn_work(xw))
    mean = np.add.reduce(part, axis=0).reshape(k, -1).sum(0) / m
    mean_t = np.tile(mean, k)

    def sq_sums(r0, r1, slot):
        t = _workspace((r1 - r0, cols), xw.dtype, "bn-tmp")
        np.subtract(xw[r0:r1], mean_t, out=t)
        np.multiply(t, t, out=t)
        np.matmul(_ones(r1 - r0, xw.dtype), t, out=part[r0 // per])

    parallel_for(rows, per, sq_sums, _bn_work(xw))
    var = np.add.reduce(part, axis=0).reshape(k, -1).sum(0) / m
    invstd = 1.0 / np.sqrt(var + _f(x2, eps))
    scale = invstd if w is None else invstd * w
    shift = -mean * scale if b is None else b - mean * scale
    scale_t, shift_t = np.tile(scale, k), np.tile(shift, k)
    yw = np.empty_like(xw)

    def normalize(r0, r1, slot):
        y = yw[r0:r1]
        np.multiply(xw[r0:r1], scale_t, out=y)
        y += shift_t

    parallel_for(rows, per, normalize, _bn_work(xw))
    return yw.reshape(x2.shape), mean, var


def _bn_train_impl(x, w=None, b=None, *, eps):
    x2 = _channels_last_rows(x)
    if x2 is not None and x2.shape[0] > 0:
        y2, mean, var = _bn_train_rows(x2, w, b, eps)
        return _from_rows(y2, x.shape), mean, var
    x3 = _planes(x)
    got = _bn_train_planes(x3, w, b, eps) if x3 is not None else None
    if got is not None:
        return got[0].reshape(x.shape), got[1], got[2]
    axes = (0,) + tuple(range(2, x.ndim))
    xc, mean, var = _bn_stats(x, axes)
    invstd = 1.0 / np.sqrt(var + _f(x, eps))
    scale = invstd if w is None else invstd * w.reshape(invstd.shape)
    y = xc
    y *= scale
    if b is not None:
        y += b.reshape(invstd.shape)
    return y, mean.reshape(-1), var.reshape(-1)


def _bn_abstract(x, w=None, b=None, *, eps):
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected input with >= 2 dims (N, C, ...), got {x.shape}")
    c = x.shape[1]
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and tuple(t.shape) != (c,):
            raise ShapeError(
                f"batch_norm: {name} must have shape ({c},) for input {x.shape}, got {t.shape}"
            )
    return (
        AbstractValue(x.shape, x.dtype),
        AbstractValue((c,), x.dtype),
        AbstractValue((c,), x.dtype),
    )


batch_norm_train_p = Primitive(
    "batch_norm_train",
    "opaque",
    impl=_bn_train_impl,
    n_out=3,
    abstract=_bn_abstract,
    save=SAVE_BOTH,
)


def _bn_composite_grads(g, x, w, eps):
    """BatchNorm (training) VJP in ember ops (used when a backward graph is recorded)."""
    dims = (0,) + tuple(range(2, x.ndim))
    m = 1
    for d in dims:
        m *= x.shape[d]
    mean = x.mean(dims, keepdim=True)
    xc = x - mean
    var = (xc * xc).mean(dims, keepdim=True)
    invstd = (var + eps).rsqrt()
    xhat = xc * invstd
    gb = g.sum(dims, keepdim=True)
    gw = (g * xhat).sum(dims, keepdim=True)
    scale = invstd if w is None else invstd * w.reshape(_bshape(x.ndim, x.shape[1]))
    gx = (g - gb / m - xhat * (gw / m)) * scale
    return gx, gw.reshape(-1), gb.reshape(-1)


@defvjp(batch_norm_train_p)
def _bn_train_vjp(g, out, x, w=None, b=None, *, eps):
    gy = g[0]
    if _state.grad_enabled:
        gx, gw, gb = _bn_composite_grads(gy, x, w, eps)
    else:
        gx, gw, gb = bind(
            batch_norm_backward_p,
            (gy, x, out[1], out[2]) + ((w,) if w is not None else ()),
            {"eps": eps},
        )
    return gx, (gw if w is not None else None), (gb if b is not None else None)


UNREAD_OUTPUTS[batch_norm_train_p] = frozenset({0})  # the VJP reads the statistics only


def _bn_grad_coefs(sg, sgx, mean64, invstd, w, count, dtype):
    """``(gw, gb, c1, c2, c3)`` from per-block sums of g and g * xhat (added in block order):
    gx = (g - gb/m - xhat * gw/m) * scale = g * c1 + x * c2 + c3, per channel."""
    gb = np.add.reduce(sg, axis=0)
    gw = np.add.reduce(sgx, axis=0)
    scale = invstd if w is None else invstd * w
    c2 = -invstd * gw * scale / count
    c3 = mean64 * invstd * gw * scale / count - gb * scale / count
    return gw.astype(dtype), gb.astype(dtype), *(v.astype(dtype) for v in (scale, c2, c3))


def _bn_backward_rows_jit(g2, x2, mean, var, w, eps):
    """Compiled batch norm backward on channels-last rows: one pass for the two per-channel
    sums, one pass writing gx = g * c1 + x * c2 + c3, both in one kernel call
    (:func:`ember.backends.kernels_bn.bn_backward_rows`). None without numba."""
    from ..backends.kernels_bn import lanes_for

    p, c = x2.shape
    kern = _bn_kernel("bn_backward_rows", _BN_WORK * x2.size)
    if kern is None:
        return None
    per, nblk = _jit_blocks(p, c)
    dt = x2.dtype
    lanes = lanes_for(c)
    gx = np.empty_like(x2)
    gw, gb = np.empty(c, dt), np.empty(c, dt)
    kern(g2, x2, mean.astype(dt, copy=False), var.astype(dt, copy=False),
         _no_param(dt) if w is None else w, w is not None, float(eps),
         gx, gw, gb, np.empty(lanes), np.empty(lanes), np.empty(lanes, dt),
         np.empty(lanes, dt), np.empty(lanes, dt), np.empty((nblk, c)), np.empty((nblk, c)),
         per)  # fmt: skip
    return gx, gw, gb


def _bn_backward_planes(g3, x3, mean, var, w, eps):
    """Compiled batch norm backward on NCHW planes (N, C, S); None without numba."""
    n, c, s = x3.shape
    work = _BN_WORK * x3.size
    k_stats = _bn_kernel("bn_grad_stats_planes", work)
    k_input = _bn_kernel("bn_grad_input_planes", work)
    if k_stats is None or k_input is None:
        return None
    mean64 = mean.astype(np.float64)
    invstd = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    sg, sgx = np.empty((n, c)), np.empty((n, c))
    k_stats(g3, x3, mean64, invstd, sg, sgx)
    gw, gb, c1, c2, c3 = _bn_grad_coefs(sg, sgx, mean64, invstd, w, n * s, x3.dtype)
    gx = np.empty_like(x3)
    k_input(g3, x3, c1, c2, c3, gx)
    return gx, gw, gb


def _bn_backward_rows(g2, x2, mean, var, w, eps):
    if g2.flags.c_contiguous and x2.shape[0] > 0:
        got = _bn_backward_rows_jit(g2, x2, mean, var, w, eps)
        if got is not None:
            return got
    from .conv import _workspace

    m = _f(x2, x2.shape[0])
    xw, k = _widen(x2)
    gw2 = g2.reshape(xw.shape)
    rows, cols = xw.shape
    per, nblk = _row_blocks(rows, cols)
    invstd = 1.0 / np.sqrt(var + _f(x2, eps))
    mean_t, invstd_t = np.tile(mean, k), np.tile(invstd, k)
    part_b = np.empty((nblk, cols), xw.dtype)
    part_w = np.empty((nblk, cols), xw.dtype)

    def sums(r0, r1, slot):
        ones = _ones(r1 - r0, xw.dtype)
        t = _workspace((r1 - r0, cols), xw.dtype, "bn-tmp")
        np.subtract(xw[r0:r1], mean_t, out=t)  # xhat = (x - mean) * invstd
        t *= invstd_t
        t *= gw2[r0:r1]
        np.matmul(ones, t, out=part_w[r0 // per])
        np.matmul(ones, gw2[r0:r1], out=part_b[r0 // per])

    parallel_for(rows, per, sums, _bn_work(xw))
    gw = np.add.reduce(part_w, axis=0).reshape(k, -1).sum(0)
    gb = np.add.reduce(part_b, axis=0).reshape(k, -1).sum(0)
    scale = invstd if w is None else invstd * w
    # gx = (g - gb/m - xhat * gw/m) * scale = g * c1 + x * c2 + c3, per channel
    c1 = scale
    c2 = -invstd * gw * scale / m
    c3 = mean * invstd * gw * scale / m - gb * scale / m
    c1_t, c2_t, c3_t = np.tile(c1, k), np.tile(c2, k), np.tile(c3, k)
    gx = np.empty_like(xw)

    def grad_x(r0, r1, slot):
        o = gx[r0:r1]
        t = _workspace((r1 - r0, cols), xw.dtype, "bn-tmp")
        np.multiply(gw2[r0:r1], c1_t, out=o)
        np.multiply(xw[r0:r1], c2_t, out=t)
        o += t
        o += c3_t

    parallel_for(rows, per, grad_x, _bn_work(xw))
    return gx.reshape(x2.shape), gw, gb


def _bn_backward_impl(g, x, mean, var, w=None, *, eps):
    x2 = _channels_last_rows(x)
    if x2 is not None and x2.shape[0] > 0 and g.dtype == x.dtype:
        g2 = _channels_last_rows(g)
        if g2 is None:
            g2 = np.ascontiguousarray(g.transpose((0,) + tuple(range(2, g.ndim)) + (1,)))
            g2 = g2.reshape(x2.shape)
        gx2, gw, gb = _bn_backward_rows(g2, x2, mean, var, w, eps)
        return _from_rows(gx2, x.shape), gw, gb
    x3 = _planes(x)
    if x3 is not None and g.dtype == x.dtype:
        g3 = np.ascontiguousarray(g).reshape(x3.shape)
        got = _bn_backward_planes(g3, x3, mean, var, w, eps)
        if got is not None:
            return got[0].reshape(x.shape), got[1], got[2]
    axes = (0,) + tuple(range(2, x.ndim))
    bs = _bshape(x.ndim, x.shape[1])
    m = x.size // x.shape[1]
    invstd = (1.0 / np.sqrt(var + _f(x, eps))).reshape(bs)
    xhat = x - mean.reshape(bs)
    xhat *= invstd
    gb = np.add.reduce(g, axis=axes)
    gw = np.add.reduce(g * xhat, axis=axes)
    scale = invstd if w is None else invstd * w.reshape(bs)
    xhat *= (gw / _f(x, m)).reshape(bs)
    gx = g - xhat
    gx -= (gb / _f(x, m)).reshape(bs)
    gx *= scale
    return gx, gw, gb


def _norm_backward_abstract(g, x, *rest, **p):
    w = rest[-1] if rest and len(rest) in (1, 3) else None
    wshape = (
        tuple(w.shape)
        if w is not None
        else ((x.shape[1],) if "k" not in p else tuple(x.shape[x.ndim - p["k"] :]))
    )
    return (
        AbstractValue(x.shape, x.dtype),
        AbstractValue(wshape, x.dtype),
        AbstractValue(wshape, x.dtype),
    )


batch_norm_backward_p = Primitive(
    "batch_norm_backward",
    "opaque",
    impl=_bn_backward_impl,
    n_out=3,
    nondiff=True,
    save=SAVE_NONE,
    abstract=_norm_backward_abstract,
)


def _ln_dims(x, k):
    return tuple(range(x.ndim - k, x.ndim))


def _ln_rows(x, k):
    """``x`` as (rows, n) for the fast float32/float64 kernels, or None (halves, copies)."""
    if x.dtype.itemsize < 4 or x.dtype.kind != "f" or not x.flags.c_contiguous or x.ndim < k:
        return None
    n = 1
    for s in x.shape[x.ndim - k :]:
        n *= s
    return x.reshape(-1, n) if n else None


def _ln_stats_rows(x2):
    """Mean and 1/n sum of squared deviations per row, and the centred rows (a new array).

    Row sums go through ``einsum`` (no temporaries): every fresh array of this size costs
    its page faults, more than the arithmetic on it."""
    n = _f(x2, x2.shape[1])
    mean = np.einsum("ij->i", x2) / n
    xc = np.subtract(x2, mean[:, None])
    var = np.einsum("ij,ij->i", xc, xc) / n
    return xc, mean, var


def _vec(v, n, like):
    """A weight/bias as a contiguous (n,) array of ``like``'s dtype (``like[0]`` as a dummy
    when absent: the kernels take a flag)."""
    if v is None:
        return like[0] if like.shape[0] else np.zeros(n, like.dtype)
    if v.ndim == 1 and v.dtype == like.dtype and v.flags.c_contiguous:
        return v  # (the usual (n,) parameter: no reshape/ascontiguousarray calls)
    return np.ascontiguousarray(v.reshape(-1), dtype=like.dtype)


def _nk():
    """:mod:`ember.ops._norm_kernels` (imported on first use; a function-level import
    costs ~0.5 us per call on the small-tensor path)."""
    global _NK
    if _NK is None:
        from . import _norm_kernels

        _NK = _norm_kernels
    return _NK


_NK: types.ModuleType | None = None


def _ln_kernel(x, w, b, k, eps):
    """Layer norm with the compiled row kernel on Ember's threads, or None."""
    nk = _nk()
    if x.ndim < k or x.size == 0:
        return None
    n = 1
    for s_ in x.shape[x.ndim - k :]:
        n *= s_
    kern = nk.kernel("layer_norm_rows", x, *(t for t in (w, b) if t is not None))
    if kern is None:
        return None
    x2 = nk.rows(x, n)
    res = np.empty(x.shape, x.dtype)  # owns its memory (a reshaped view would be copied
    out = res.reshape(x2.shape)  # again wherever it becomes a leaf's .grad)
    wv, bv = _vec(w, n, x2), _vec(b, n, x2)
    stats = np.empty((2, x2.shape[0]))
    if nk.serial(nk._COST * x.size):  # what run_rows would call, without its set-up
        kern(x2, wv, bv, out, stats[0], stats[1], eps, w is not None, b is not None)
        nk.save_stats(x, k, eps, stats if _state.grad_enabled and _state.tracer is None else None)
        return res

    def block(r0, r1):
        kern(
            x2[r0:r1],
            wv,
            bv,
            out[r0:r1],
            stats[0, r0:r1],
            stats[1, r0:r1],
            eps,
            w is not None,
            b is not None,
        )

    par = (
        "layer_norm_rows",
        (x2, wv, bv, out, stats[0], stats[1], eps, w is not None, b is not None),
    )
    nk.run_rows(block, x2.shape[0], n, par=par)
    nk.save_stats(x, k, eps, stats if _state.grad_enabled and _state.tracer is None else None)
    return res


def _ln_impl(x, w=None, b=None, *, k, eps):
    r = _ln_kernel(x, w, b, k, eps)
    if r is not None:
        return r
    from . import _norm_kernels as nk

    nk.save_stats(x, k, eps, None)  # statistics kept for x come from this forward or none
    x2 = _ln_rows(x, k)
    if x2 is not None:
        y, _, var = _ln_stats_rows(x2)
        var += _f(x, eps)
        np.sqrt(var, out=var)
        np.reciprocal(var, out=var)
        y *= var[:, None]
        if w is not None:
            y *= w.reshape(-1)
        if b is not None:
            y += b.reshape(-1)
        return y.reshape(x.shape)
    axes = _ln_dims(x, k)
    xc, _, var = _bn_stats(x, axes)
    xc *= 1.0 / np.sqrt(var + _f(x, eps))
    if w is not None:
        xc *= w
    if b is not None:
        xc += b
    return xc


def _ln_abstract(x, w=None, b=None, *, k, eps):
    ns = x.shape[x.ndim - k :]
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and tuple(t.shape) != tuple(ns):
            raise ShapeError(
                f"layer_norm: {name} shape {t.shape} must equal normalized_shape "
                f"{ns} for input {x.shape}"
            )
    return AbstractValue(x.shape, x.dtype)


layer_norm_p = Primitive(
    "layer_norm", "opaque", impl=_ln_impl, abstract=_ln_abstract, save=SAVE_INPUTS
)


def _ln_composite_grads(g, x, w, k, eps):
    dims = _ln_dims(x, k)
    n = 1
    for d in dims:
        n *= x.shape[d]
    mean = x.mean(dims, keepdim=True)
    xc = x - mean
    var = (xc * xc).mean(dims, keepdim=True)
    invstd = (var + eps).rsqrt()
    xhat = xc * invstd
    lead = tuple(range(x.ndim - k))
    gw = (g * xhat).sum(lead) if w is not None else None
    gb = g.sum(lead)
    gh = g * w if w is not None else g
    gx = (gh - gh.mean(dims, keepdim=True) - xhat * (gh * xhat).mean(dims, keepdim=True)) * invstd
    _ = n
    return gx, gw, gb


@defvjp(layer_norm_p)
def _ln_vjp(g, out, x, w=None, b=None, *, k, eps):
    if _state.grad_enabled:
        gx, gw, gb = _ln_composite_grads(g, x, w, k, eps)
    else:
        from . import _norm_kernels as nk

        params = {"k": k, "eps": eps}
        # eager only: a traced graph must not capture this call's statistics as constants
        st = nk.saved_stats(x._data, k, eps) if _state.tracer is None else None
        if st is not None:
            params["stats"] = st
        gx, gw, gb = bind(layer_norm_backward_p, (g, x) + ((w,) if w is not None else ()), params)
    return gx, (gw if w is not None else None), (gb if b is not None else None)


def _row_grad_kernel(name, g, x, w, k, eps, with_b, stats=None):
    """The layer/RMS norm backward with a compiled row kernel: gx, and the weight (and bias)
    gradients summed from per-block float64 partials in block order; or None. ``stats``:
    the layer norm forward's (2, rows) float64 mean and rstd (see
    :func:`ember.ops._norm_kernels.saved_stats`), else the kernel recomputes them."""
    from . import _norm_kernels as nk

    if x.ndim < k or x.size == 0 or g.shape != x.shape:
        return None
    kern = nk.kernel(name, g, x, *((w,) if w is not None else ()))
    if kern is None:
        return None
    wshape = x.shape[x.ndim - k :]
    n = 1
    for s_ in wshape:
        n *= s_
    x2, g2 = nk.rows(x, n), nk.rows(g, n)
    rows = x2.shape[0]
    per = nk.block_rows(n)
    nblk = -(-rows // per)
    part = np.zeros((nblk, 2 if with_b else 1, n), x.dtype)
    wv = np.ascontiguousarray(w.reshape(-1)) if w is not None else part[0, 0]
    gx_full = np.empty(x.shape, x.dtype)  # owns its memory: no copy as a leaf's .grad
    gx = gx_full.reshape(x2.shape)
    have = stats is not None and stats.shape == (2, rows)
    st = stats if have else np.empty((2, 0))

    def block(r0, r1):
        pb = part[r0 // per]
        if with_b:
            kern(
                g2[r0:r1],
                x2[r0:r1],
                wv,
                w is not None,
                eps,
                gx[r0:r1],
                pb[0],
                pb[1],
                st[0, r0:r1],
                st[1, r0:r1],
                have,
            )
        else:
            kern(g2[r0:r1], x2[r0:r1], wv, w is not None, eps, gx[r0:r1], pb[0])

    if with_b:
        args = (g2, x2, wv, w is not None, eps, gx, part, st[0], st[1], have, per)
        par = ("layer_norm_bwd_blocks", args)
    else:
        par = ("rms_norm_bwd_blocks", (g2, x2, wv, w is not None, eps, gx, part, per))
    nk.run_rows(block, rows, n, fixed=True, par=par)
    tot = part[0].astype(np.float64)
    for i in range(1, nblk):  # in block order: independent of the thread count
        tot += part[i]
    gw = tot[0].reshape(wshape).astype(x.dtype)
    gb = tot[1].reshape(wshape).astype(x.dtype) if with_b else None
    return gx_full, gw, gb


def _ln_backward_impl(g, x, w=None, *, k, eps, stats=None):
    r = _row_grad_kernel("layer_norm_bwd_rows", g, x, w, k, eps, True, stats)
    if r is not None:
        return r
    x2 = _ln_rows(x, k)
    g2 = _ln_rows(g, k) if x2 is not None and g.dtype == x.dtype else None
    if g2 is not None:
        n = _f(x2, x2.shape[1])
        xhat, _, rstd = _ln_stats_rows(x2)
        rstd += _f(x, eps)
        np.sqrt(rstd, out=rstd)
        np.reciprocal(rstd, out=rstd)
        xhat *= rstd[:, None]
        gb = np.einsum("ij->j", g2).reshape(x.shape[x.ndim - k :])
        gw = np.einsum("ij,ij->j", g2, xhat).reshape(gb.shape)
        gx = g2 * w.reshape(-1) if w is not None else g2.copy()
        a = np.einsum("ij->i", gx) / n
        c = np.einsum("ij,ij->i", gx, xhat) / n
        xhat *= c[:, None]
        gx -= a[:, None]
        gx -= xhat
        gx *= rstd[:, None]
        return gx.reshape(x.shape), gw, gb
    axes = _ln_dims(x, k)
    lead = tuple(range(x.ndim - k))
    n = np.prod(x.shape[x.ndim - k :])
    xhat, _, var = _bn_stats(x, axes)
    invstd = 1.0 / np.sqrt(var + _f(x, eps))
    xhat *= invstd
    gb = np.add.reduce(g, axis=lead)
    gw = np.add.reduce(g * xhat, axis=lead)
    gh = g * w if w is not None else g
    a = np.add.reduce(gh, axis=axes, keepdims=True) / _f(x, n)
    c = np.add.reduce(gh * xhat, axis=axes, keepdims=True) / _f(x, n)
    xhat *= c
    gx = gh - a
    gx -= xhat
    gx *= invstd
    return gx, gw, gb


layer_norm_backward_p = Primitive(
    "layer_norm_backward",
    "opaque",
    impl=_ln_backward_impl,
    n_out=3,
    nondiff=True,
    save=SAVE_NONE,
    abstract=_norm_backward_abstract,
)


# -- RMS norm -------------------------------------------------------------------------------------
def _rms_impl(x, w=None, *, k, eps):
    from . import _norm_kernels as nk

    n = 1
    for s_ in x.shape[x.ndim - k :]:
        n *= s_
    kern = nk.kernel("rms_norm_rows", x, *((w,) if w is not None else ()))
    if kern is not None and x.size:
        x2 = nk.rows(x, n)
        res = np.empty(x.shape, x.dtype)
        out = res.reshape(x2.shape)
        wv = _vec(w, n, x2)
        rstd = np.empty(x2.shape[0])

        def block(r0, r1):
            kern(x2[r0:r1], wv, w is not None, eps, out[r0:r1], rstd[r0:r1])

        par = ("rms_norm_rows", (x2, wv, w is not None, eps, out, rstd))
        nk.run_rows(block, x2.shape[0], n, par=par)
        return res
    axes = _ln_dims(x, k)
    x64 = x.astype(np.float64)
    r = 1.0 / np.sqrt(np.mean(x64 * x64, axis=axes, keepdims=True) + eps)
    y = (x * r.astype(x.dtype)).astype(x.dtype, copy=False)
    return y * w if w is not None else y


def _rms_abstract(x, w=None, *, k, eps):
    if x.ndim < k:
        raise ShapeError(f"rms_norm: input of shape {x.shape} has fewer than {k} dims")
    ns = tuple(x.shape[x.ndim - k :])
    if w is not None and tuple(w.shape) != ns:
        raise ShapeError(
            f"rms_norm: weight shape {w.shape} must equal normalized_shape {ns} for input {x.shape}"
        )
    return AbstractValue(x.shape, x.dtype)


rms_norm_p = Primitive(
    "rms_norm", "opaque", impl=_rms_impl, abstract=_rms_abstract, save=SAVE_INPUTS
)


def _rms_sample():
    from .._creation import tensor

    rng = np.random.default_rng(6)
    x = tensor(rng.standard_normal((3, 4, 5))).requires_grad_()
    w = tensor(rng.standard_normal((4, 5))).requires_grad_()
    return [((x, w), {"k": 2, "eps": 1e-6}), ((x,), {"k": 1, "eps": 1e-5})]


defsample(rms_norm_p, _rms_sample)


def _rms_composite_grads(g, x, w, k, eps):
    dims = _ln_dims(x, k)
    r = ((x * x).mean(dims, keepdim=True) + eps).rsqrt()
    xhat = x * r
    gw = (g * xhat).sum(tuple(range(x.ndim - k))) if w is not None else None
    gh = g * w if w is not None else g
    gx = (gh - xhat * (gh * xhat).mean(dims, keepdim=True)) * r
    return gx, gw


@defvjp(rms_norm_p)
def _rms_vjp(g, out, x, w=None, *, k, eps):
    if _state.grad_enabled:
        gx, gw = _rms_composite_grads(g, x, w, k, eps)
    else:
        gx, gw = bind(
            rms_norm_backward_p, (g, x) + ((w,) if w is not None else ()), {"k": k, "eps": eps}
        )
    return gx, (gw if w is not None else None)


def _rms_backward_impl(g, x, w=None, *, k, eps):
    r = _row_grad_kernel("rms_norm_bwd_rows", g, x, w, k, eps, False)
    if r is not None:
        return r[0], r[1]
    axes = _ln_dims(x, k)
    lead = tuple(range(x.ndim - k))
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    rs = 1.0 / np.sqrt(np.mean(x64 * x64, axis=axes, keepdims=True) + eps)
    xhat = x64 * rs
    gw = np.add.reduce(g64 * xhat, axis=lead).astype(x.dtype)
    gh = g64 * w if w is not None else g64
    gx = (gh - xhat * np.mean(gh * xhat, axis=axes, keepdims=True)) * rs
    return gx.astype(x.dtype), gw


rms_norm_backward_p = Primitive(
    "rms_norm_backward",
    "opaque",
    impl=_rms_backward_impl,
    n_out=2,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, x, w=None, *, k, eps: (
        AbstractValue(x.shape, x.dtype),
        AbstractValue(tuple(x.shape[x.ndim - k :]), x.dtype),
    ),
)


def _rms_backward_sample():
    from .._creation import tensor

    rng = np.random.default_rng(4)
    g, x, w = (tensor(rng.standard_normal(s)) for s in ((3, 5), (3, 5), (5,)))
    return [((g, x, w), {"k": 1, "eps": 1e-6}), ((g, x), {"k": 2, "eps": 1e-5})]


defsample(rms_norm_backward_p, _rms_backward_sample)


# group norm: ember/ops/_group_norm.py (imported at the end: it uses the helpers above)
__all__ = ["batch_norm_train_p", "group_norm_p", "layer_norm_p", "rms_norm_p"]

from ._group_norm import group_norm_p  # noqa: E402
