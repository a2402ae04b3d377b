"""Group norm (and instance norm through it): one fused compiled pass per (sample, group) of
NCHW memory or per sample of channels-last memory, its backward primitive, and a composite of
ember ops when a graph of the backward pass is recorded (``create_graph``). The batch and layer
norm helpers it shares live in :mod:`ember.ops.normalization`, which re-exports these.

Example:
    >>> import ember
    >>> from ember.ops._group_norm import group_norm_p
    >>> group_norm_p.name
    'group_norm'
"""

from __future__ import annotations

import numpy as np

from ..backends.cpu import FAST_FLOATS
from ._ad import UNREAD_OUTPUTS, defvjp
from ._core import SAVE_BOTH, SAVE_NONE, AbstractValue, Primitive, ShapeError, _state, bind
from ._parallel import parallel_kernel
from ._samples import defsample
from .normalization import _bn_stats, _bshape, _f, _from_rows, _norm_backward_abstract

# -- group norm ----------------------------------------------------------------------------------
# One fused pass per (sample, group) (NCHW memory) or per sample (channels-last memory, as conv
# outputs): statistics and the per-channel affine in one kernel (y = x * scale_c + shift_c),
# mean and rstd (N, G) kept as outputs for the backward. The functional binds it in eager mode;
# traced graphs keep layer_norm + mul/add (what export and ember_lite read).
_GN_WORK = 8  # parallel_kernel's work units per element (three passes over x)


def _gn_kernel(name, work):
    from ..backends import jit

    return parallel_kernel(name, work) or jit.get(name)


def _gn_layout(x):
    """'rows' with the (N, HW, C) view of channels-last memory, or 'planes' with x as
    C-contiguous memory."""
    if x.ndim >= 3:
        xt = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
        if xt.flags.c_contiguous and not x.flags.c_contiguous:
            return "rows", xt.reshape(x.shape[0], -1, x.shape[1])
    return "planes", np.ascontiguousarray(x)


def _gn_vec(v, c, dtype):
    return np.zeros(c, dtype) if v is None else np.ascontiguousarray(v.reshape(-1), dtype=dtype)


def _gn_impl(x, w=None, b=None, *, groups, eps):
    n, c = x.shape[0], x.shape[1]
    kind, xv = _gn_layout(x)
    name = "gn_fwd_rows" if kind == "rows" else "gn_fwd_planes"
    kern = (
        _gn_kernel(name, _GN_WORK * x.size)
        if x.dtype in FAST_FLOATS
        and x.size
        and all(v is None or v.dtype == x.dtype for v in (w, b))
        else None
    )
    if kern is not None:
        wv, bv = _gn_vec(w, c, x.dtype), _gn_vec(b, c, x.dtype)
        mean = np.empty((n, groups), x.dtype)
        rstd = np.empty((n, groups), x.dtype)
        if kind == "rows":
            y = np.empty(xv.shape, x.dtype)
            kern(xv, wv, bv, w is not None, b is not None, eps, groups, y, mean, rstd)
            return _from_rows(y.reshape(-1, c), x.shape), mean, rstd
        x2 = xv.reshape(n * groups, -1)
        y = np.empty(x.shape, x.dtype)
        kern(
            x2, wv, bv, w is not None, b is not None, eps, groups, c // groups,
            y.reshape(x2.shape), mean.reshape(-1), rstd.reshape(-1),
        )  # fmt: skip
        return y, mean, rstd
    xr = x.reshape(n, groups, -1)
    xc, mean, var = _bn_stats(xr, (2,))
    rstd = (1.0 / np.sqrt(var + _f(x, eps))).astype(x.dtype, copy=False)
    xc *= rstd
    y = xc.reshape(x.shape)
    bs = _bshape(x.ndim, c)
    if w is not None:
        y = y * w.reshape(bs)
    if b is not None:
        y = y + b.reshape(bs)
    return y.astype(x.dtype, copy=False), mean[..., 0], rstd[..., 0]


def _gn_abstract(x, w=None, b=None, *, groups, eps):
    if x.ndim < 2 or x.shape[1] % groups:
        raise ShapeError(f"group_norm: input {x.shape} does not split into {groups} groups")
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and tuple(t.shape) != (x.shape[1],):
            raise ShapeError(
                f"group_norm: {name} must have shape ({x.shape[1]},) for input {x.shape}, "
                f"got {t.shape}"
            )
    st = AbstractValue((x.shape[0], groups), x.dtype)
    return AbstractValue(x.shape, x.dtype), st, st


group_norm_p = Primitive(
    "group_norm", "opaque", impl=_gn_impl, n_out=3, abstract=_gn_abstract, save=SAVE_BOTH
)


def _gn_composite_grads(g, x, w, groups, eps):
    """The group norm VJP in ember ops (used when a backward graph is recorded)."""
    n = x.shape[0]
    shape = tuple(x.shape)
    xr = x.reshape(n, groups, -1)
    xc = xr - xr.mean(2, keepdim=True)
    invstd = ((xc * xc).mean(2, keepdim=True) + eps).rsqrt()
    xhat = xc * invstd
    dims = (0,) + tuple(range(2, x.ndim))
    gw = (g * xhat.reshape(shape)).sum(dims)
    gb = g.sum(dims)
    gh = g * w.reshape(_bshape(x.ndim, x.shape[1])) if w is not None else g
    ghr = gh.reshape(n, groups, -1)
    gx = (ghr - ghr.mean(2, keepdim=True) - xhat * (ghr * xhat).mean(2, keepdim=True)) * invstd
    return gx.reshape(shape), gw, gb


@defvjp(group_norm_p)
def _gn_vjp(g, out, x, w=None, b=None, *, groups, eps):
    gy = g[0]
    if _state.grad_enabled:
        gx, gw, gb = _gn_composite_grads(gy, x, w, groups, eps)
    else:
        gx, gw, gb = bind(
            group_norm_backward_p,
            (gy, x, out[1], out[2]) + ((w,) if w is not None else ()),
            {"groups": groups, "eps": eps},
        )
    return gx, (gw if w is not None else None), (gb if b is not None else None)


UNREAD_OUTPUTS[group_norm_p] = frozenset({0})  # the VJP reads the statistics only


def _gn_backward_impl(g, x, mean, rstd, w=None, *, groups, eps):
    n, c = x.shape[0], x.shape[1]
    kind, xv = _gn_layout(x)
    name = "gn_bwd_rows" if kind == "rows" else "gn_bwd_planes"
    ok = x.dtype in FAST_FLOATS and x.size and g.dtype == x.dtype and g.shape == x.shape
    kern = _gn_kernel(name, _GN_WORK * x.size) if ok and (w is None or w.dtype == x.dtype) else None
    if kern is not None:
        wv = _gn_vec(w, c, x.dtype)
        mv = np.ascontiguousarray(mean, dtype=x.dtype)
        rv = np.ascontiguousarray(rstd, dtype=x.dtype)
        sg = np.empty((n, c))
        sgx = np.empty((n, c))
        if kind == "rows":
            perm = (0,) + tuple(range(2, x.ndim)) + (1,)
            g3 = np.ascontiguousarray(g.transpose(perm)).reshape(xv.shape)
            gx3 = np.empty(xv.shape, x.dtype)
            kern(g3, xv, mv, rv, wv, w is not None, groups, gx3, sg, sgx)
            gx = _from_rows(gx3.reshape(-1, c), x.shape)
        else:
            x2 = xv.reshape(n * groups, -1)
            g2 = np.ascontiguousarray(g).reshape(x2.shape)
            gx = np.empty(x.shape, x.dtype)
            kern(
                g2, x2, mv.reshape(-1), rv.reshape(-1), wv, w is not None, groups, c // groups,
                gx.reshape(x2.shape), sg.reshape(n * groups, -1), sgx.reshape(n * groups, -1),
            )  # fmt: skip
        mc = np.repeat(mv.astype(np.float64), c // groups, axis=1)
        rc = np.repeat(rv.astype(np.float64), c // groups, axis=1)
        gw = ((sgx - mc * sg) * rc).sum(0).astype(x.dtype)
        gb = sg.sum(0).astype(x.dtype)
        return gx, gw, gb
    shape = x.shape
    xr = x.reshape(n, groups, -1)
    r = rstd.reshape(n, groups, 1)
    xhat = (xr - mean.reshape(n, groups, 1)) * r
    dims = (0,) + tuple(range(2, x.ndim))
    gb = np.add.reduce(g, axis=dims)
    gw = np.add.reduce(g * xhat.reshape(shape), axis=dims)
    gh = g * w.reshape(_bshape(x.ndim, c)) if w is not None else g
    ghr = gh.reshape(n, groups, -1)
    m = _f(x, xr.shape[2])
    gx = ghr - np.add.reduce(ghr, axis=2, keepdims=True) / m
    gx -= xhat * (np.add.reduce(ghr * xhat, axis=2, keepdims=True) / m)
    gx *= r
    return gx.reshape(shape).astype(x.dtype, copy=False), gw.astype(x.dtype), gb.astype(x.dtype)


group_norm_backward_p = Primitive(
    "group_norm_backward",
    "opaque",
    impl=_gn_backward_impl,
    n_out=3,
    nondiff=True,
    save=SAVE_NONE,
    abstract=_norm_backward_abstract,
)


def _gn_sample():
    from .._creation import tensor

    rng = np.random.default_rng(5)
    x, w, b = (tensor(rng.standard_normal(s)) for s in ((2, 6, 3, 2), (6,), (6,)))
    return [((x, w, b), {"groups": 3, "eps": 1e-5}), ((x,), {"groups": 2, "eps": 1e-5})]


def _gn_backward_sample():
    from .._creation import tensor

    rng = np.random.default_rng(6)
    g, x, w = (tensor(rng.standard_normal(s)) for s in ((2, 6, 3), (2, 6, 3), (6,)))
    m, r = tensor(rng.standard_normal((2, 3))), tensor(rng.uniform(0.5, 2.0, (2, 3)))
    return [
        ((g, x, m, r, w), {"groups": 3, "eps": 1e-5}),
        ((g, x, m, r), {"groups": 3, "eps": 1e-5}),
    ]


defsample(group_norm_p, _gn_sample)
defsample(group_norm_backward_p, _gn_backward_sample)

__all__ = ["group_norm_backward_p", "group_norm_p"]
