"""Fused scaled-dot-product attention (``sdpa``) and its backward primitive, and the fused
``softmax(x * scale + mask)`` of attention written out with plain ops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._ad import defvjp
from ._core import (
    SAVE_BOTH,
    SAVE_NONE,
    SAVE_OUTPUT,
    AbstractValue,
    Primitive,
    ShapeError,
    _state,
    bind,
)
from ._ew_kernels import quiet
from ._parallel import one_blas_thread, row_sums
from ._samples import defsample

if TYPE_CHECKING:
    from .._tensor import Tensor


def _f(x, v):
    """A Python float as a scalar of ``x``'s dtype (avoid float64 upcasts)."""
    return x.dtype.type(v)


# =========================================================================================
# Scaled dot-product attention: one fused kernel (scores GEMM, causal mask, stable softmax,
# output GEMM), saving only the log-sum-exp per row (as flash attention does); the backward
# recomputes the probabilities with one GEMM. Float32 runs the compiled per-head loops of
# ember.backends.kernels_attn (the scores of one head stay in L2; 16x4x128x64 forward and
# backward 7.8-8.6 ms where the batched NumPy code below took 9.4-10.8, PyTorch 9.5-10.0; AMD EPYC 2
# threads); other dtypes, and machines without numba, run the batched NumPy code.
# =========================================================================================
_CAUSAL_MASKS: dict[tuple[int, int], np.ndarray] = {}


def _causal_mask(L, S):
    """Boolean (L, S) mask of the *disallowed* positions (j > i), cached per shape."""
    m = _CAUSAL_MASKS.get((L, S))
    if m is None:
        m = _CAUSAL_MASKS[(L, S)] = np.triu(np.ones((L, S), np.bool_), 1)
    return m


def _sdpa_probs(q, k, scale, causal, lse=None):
    """exp(q k^T * scale - lse) (masked): the softmax probabilities, written in place."""
    s = np.matmul(q, np.swapaxes(k, -1, -2))
    s *= _f(s, scale)
    if causal:
        np.copyto(s, _f(s, -np.inf), where=_causal_mask(s.shape[-2], s.shape[-1]))
    if lse is not None:
        s -= lse[..., None]
        return np.exp(s, out=s), None
    m = np.max(s, axis=-1, keepdims=True)
    s -= m
    np.exp(s, out=s)
    l = row_sums(s)
    s *= np.reciprocal(l)
    np.log(l, out=l)
    l += m
    return s, l[..., 0]


def _heads_major(like, last=None):
    """An empty array shaped as ``like`` (its last dim ``last`` when given); 4-D (B, H, L, E)
    ones are laid out (B, L, H, E) in memory, so the usual ``y.transpose(1, 2).reshape(b, t,
    d)`` after attention (and the same on the gradients of q, k, v on their way back to a
    fused projection) is a free view instead of a copy."""
    shape = like.shape[:-1] + (like.shape[-1] if last is None else last,)
    if len(shape) == 4:
        b, h, n, e = shape
        return np.empty((b, n, h, e), like.dtype).transpose(0, 2, 1, 3)
    return np.empty(shape, like.dtype)


def _sdpa_impl(q, k, v, *, scale, causal):
    from .activation import _halves

    out = _heads_major(q, v.shape[-1])
    lse = np.empty(q.shape[:-1], q.dtype)
    if _sdpa_compiled(q, k, v, out, lse, scale, causal):
        return out, lse
    with one_blas_thread():  # the two halves of the batch run on two threads
        _halves(
            lambda *a: _sdpa_fwd(*a, scale, causal),
            q.shape[0] if q.ndim > 2 else 1,
            q,
            k,
            v,
            out,
            lse,
        )
    return out, lse


# Scores scratch per thread of at most this many elements (128 KB of float32: L2-resident
# between the two GEMMs); at least _MIN_BLOCK query rows per block.
_SCORE_ELEMS = 1 << 15
_MIN_BLOCK = 16
_F32 = np.dtype(np.float32)


def _heads(a):
    """``a`` as a 4-D (B, H, rows, features) view whose matrices BLAS reads in place (unit
    stride along the features), copying only where it must."""
    if a.ndim == 2:
        a = a[None, None]
    elif a.ndim == 3:
        a = a[:, None]
    elif a.ndim > 4:
        a = a.reshape((-1,) + a.shape[-3:])
    s = a.strides
    if s[3] != 4 or s[2] < 4 * max(a.shape[3], 1) or s[2] % 4:
        a = np.ascontiguousarray(a)
    return a


def _sdpa_plan(q, k, v, scale, causal, name):
    """``(kernel, sgemm address, block, 4-D views of q, k, v)`` for the compiled per-head
    loops (float32, numba's parallel layer), or None: the batched NumPy code runs."""
    if not (q.dtype == k.dtype == v.dtype == _F32) or 0 in q.shape or 0 in k.shape:
        return None
    from ._parallel import blas_loop_kernel

    found = blas_loop_kernel(name)
    if found is None:
        return None
    kern, fptr, threads = found
    ns = k.shape[-2]
    block = min(q.shape[-2], max(_MIN_BLOCK, _SCORE_ELEMS // ns))
    return kern, fptr, threads, block, _heads(q), _heads(k), _heads(v)


def _sdpa_compiled(q, k, v, out, lse, scale, causal):
    """Attention by :func:`ember.backends.kernels_attn.sdpa_fwd_heads` into ``out`` and
    ``lse``; False where it does not apply."""
    plan = _sdpa_plan(q, k, v, scale, causal, "sdpa_fwd_heads")
    if plan is None:
        return False
    kern, fptr, threads, block, q4, k4, v4 = plan
    o4 = _heads(out)
    scratch = np.empty((threads, block, k4.shape[2]), _F32)
    with one_blas_thread():
        kern(fptr, q4, k4, v4, o4, lse.reshape(-1, q4.shape[2]), float(scale), bool(causal),
             block, scratch)  # fmt: skip
    return True


def _sdpa_fwd(q, k, v, out, lse, scale, causal):
    p, l = _sdpa_probs(q, k, scale, causal)
    lse[...] = l
    np.matmul(p, v, out=out)


def _sdpa_abstract(q, k, v, *, scale, causal):
    if (
        q.ndim < 2
        or k.ndim != q.ndim
        or v.ndim != q.ndim
        or q.shape[:-2] != k.shape[:-2]
        or q.shape[:-2] != v.shape[:-2]
        or q.shape[-1] != k.shape[-1]
        or k.shape[-2] != v.shape[-2]
    ):
        raise ShapeError(
            f"scaled_dot_product_attention: incompatible shapes query {q.shape}, "
            f"key {k.shape}, value {v.shape}"
        )
    return (
        AbstractValue(q.shape[:-1] + (v.shape[-1],), q.dtype),
        AbstractValue(q.shape[:-1], q.dtype),
    )


def _sdpa_sample():
    rng = np.random.default_rng(0)
    from .._creation import tensor

    def r(*s):
        return tensor(rng.standard_normal(s)).requires_grad_()

    return [
        ((r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)), {"scale": 0.5, "causal": False}),
        ((r(1, 2, 4, 3), r(1, 2, 4, 3), r(1, 2, 4, 2)), {"scale": 0.7, "causal": True}),
    ]


sdpa_p = Primitive(
    "sdpa",
    "opaque",
    impl=_sdpa_impl,
    abstract=_sdpa_abstract,
    n_out=2,
    save=SAVE_BOTH,
)
defsample(sdpa_p, _sdpa_sample)


def _sdpa_composite_grads(g, glse, q, k, v, scale, causal):
    """The attention VJP in ember ops (used when a backward graph is recorded)."""
    from .elementwise import where
    from .linalg import matmul
    from .reduction import softmax

    s = matmul(q, k.mT) * scale
    if causal:
        from .._creation import from_numpy

        s = where(from_numpy(~_causal_mask(s.shape[-2], s.shape[-1])), s, float("-inf"))
    p = softmax(s, -1)
    gv = matmul(p.mT, g)
    gp = matmul(g, v.mT)
    ds = p * (gp - (gp * p).sum(-1, keepdim=True) + glse.unsqueeze(-1))
    return matmul(ds, k) * scale, matmul(ds.mT, q) * scale, gv


@defvjp(sdpa_p)
def _sdpa_vjp(g, out, q, k, v, *, scale, causal):
    if _state.grad_enabled:
        return _sdpa_composite_grads(g[0], g[1], q, k, v, scale, causal)
    return bind(
        sdpa_backward_p, (g[0], g[1], q, k, v, out[0], out[1]), {"scale": scale, "causal": causal}
    )


def _sdpa_backward_impl(g, glse, q, k, v, out, lse, *, scale, causal):
    from .activation import _halves

    gq, gk, gv = (_heads_major(a) for a in (q, k, v))
    plan = _sdpa_plan(q, k, v, scale, causal, "sdpa_bwd_heads")
    if plan is not None and g.dtype == out.dtype == lse.dtype == glse.dtype == _F32:
        kern, fptr, threads, block, q4, k4, v4 = plan
        g4, o4 = _heads(g), _heads(out)
        rows = q4.shape[2]
        lse2 = np.ascontiguousarray(lse).reshape(-1, rows)
        glse2 = np.ascontiguousarray(glse).reshape(-1, rows)
        scratch = np.empty((threads, 2, block, k4.shape[2]), _F32)
        with one_blas_thread():
            kern(fptr, g4, glse2, q4, k4, v4, o4, lse2, _heads(gq), _heads(gk), _heads(gv),
                 float(scale), bool(causal), block, scratch)  # fmt: skip
        return gq, gk, gv
    with one_blas_thread():
        _halves(
            lambda *a: _sdpa_bwd(*a, scale, causal),
            q.shape[0] if q.ndim > 2 else 1,
            g,
            glse,
            q,
            k,
            v,
            out,
            lse,
            gq,
            gk,
            gv,
        )
    return gq, gk, gv


def _sdpa_bwd(g, glse, q, k, v, out, lse, gq, gk, gv, scale, causal):
    p, _ = _sdpa_probs(q, k, scale, causal, lse)
    np.matmul(np.swapaxes(p, -1, -2), g, out=gv)
    ds = np.matmul(g, np.swapaxes(v, -1, -2))
    d = np.add.reduce(g * out, axis=-1, keepdims=True)
    d -= glse[..., None]
    ds -= d
    ds *= p
    ds *= _f(ds, scale)
    np.matmul(ds, k, out=gq)
    np.matmul(np.swapaxes(ds, -1, -2), q, out=gk)


def _sdpa_backward_sample():
    rng = np.random.default_rng(1)
    from .._creation import tensor

    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    out, lse = _sdpa_impl(q, k, v, scale=0.5, causal=True)
    g, glse = rng.standard_normal(out.shape), rng.standard_normal(lse.shape)
    return [
        (tuple(tensor(a) for a in (g, glse, q, k, v, out, lse)), {"scale": 0.5, "causal": True})
    ]


sdpa_backward_p = Primitive(
    "sdpa_backward",
    "opaque",
    impl=_sdpa_backward_impl,
    n_out=3,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, glse, q, k, v, out, lse, **kw: (
        AbstractValue(q.shape, q.dtype),
        AbstractValue(k.shape, k.dtype),
        AbstractValue(v.shape, v.dtype),
    ),
)
defsample(sdpa_backward_p, _sdpa_backward_sample)


# =========================================================================================
# softmax(x * scale + mask) over the last axis: the middle of attention written out with
# plain ops (q @ k^T * scale + mask, softmax, @ v), as one pass over the scores.
# =========================================================================================
_EMPTY_MASK: dict = {}


def _no_mask(n, dtype):
    """A (0, n) array: 'no additive mask' for the softmax row kernel."""
    key = (n, np.dtype(dtype).str)
    m = _EMPTY_MASK.get(key)
    if m is None:
        if len(_EMPTY_MASK) > 64:
            _EMPTY_MASK.clear()
        m = _EMPTY_MASK[key] = np.empty((0, n), dtype)
    return m


def _mask_rows(mask, shape):
    """``mask`` as an (M, n) C-contiguous matrix whose row ``i % M`` applies to row ``i`` of
    an array of ``shape`` viewed as (rows, n): M covers the trailing dims the mask varies
    over (a (L, S) mask on (B, H, L, S) scores gives M = L); other broadcasts are expanded."""
    nd = len(shape)
    m = mask.reshape((1,) * (nd - mask.ndim) + mask.shape)
    lead = 0  # leading dims where the mask is 1 (repeats)
    while lead < nd - 1 and m.shape[lead] == 1:
        lead += 1
    if m.shape[lead:] != tuple(shape[lead:]):
        m = np.broadcast_to(m, shape)
        lead = 0
    return np.ascontiguousarray(m.reshape(-1, shape[-1]))


def _sms_impl(x, mask=None, *, scale, masked):
    from . import _norm_kernels as nk
    from .reduction import _softmax_impl

    if x.ndim == 0 or x.size == 0:
        return _softmax_impl(x * _f(x, scale) + (0 if mask is None else mask), max(x.ndim - 1, 0))
    n = x.shape[-1]
    mrows = _no_mask(n, x.dtype) if mask is None else _mask_rows(mask.astype(x.dtype), x.shape)
    k = nk.kernel("softmax_scale_mask_rows", x, mrows)
    if k is None:
        z = x * _f(x, scale)
        if mask is not None:
            z += mask
        return _softmax_impl(z, x.ndim - 1)
    x2 = nk.rows(x, n)
    out = np.empty(x2.shape, x.dtype)
    par = ("softmax_scale_mask_rows", (x2, out, scale, mrows, False))
    nk.run_rows(lambda a, b: k(x2[a:b], out[a:b], scale, mrows, False), x2.shape[0], n, 16, par=par)
    return out.reshape(x.shape)


def _sms_abstract(x, mask=None, *, scale, masked):
    if mask is not None:
        try:
            shape = np.broadcast_shapes(tuple(x.shape), tuple(mask.shape))
        except ValueError:
            shape = None
        if shape != tuple(x.shape):
            raise ShapeError(
                f"softmax_scale_mask: mask of shape {mask.shape} does not broadcast to the "
                f"scores of shape {x.shape}"
            )
    return AbstractValue(x.shape, x.dtype)


softmax_scale_mask_p = Primitive(
    "softmax_scale_mask",
    "opaque",
    impl=quiet(_sms_impl),
    abstract=_sms_abstract,
    save=SAVE_OUTPUT,
)


@defvjp(softmax_scale_mask_p)
def _sms_vjp(g, out, x, mask=None, *, scale, masked):
    # (only the output is saved: x and mask arrive as None, so ``masked`` tells the arity)
    from .reduction import softmax_backward_p, sum

    if _state.grad_enabled:
        gy = g * out
        gz = gy - out * sum(gy, -1, keepdim=True)
    else:
        gz = bind(softmax_backward_p, (g, out), {"dim": out.ndim - 1, "log": False})
    return (gz * scale, gz) if masked else (gz * scale,)


def _sms_sample():
    from .._creation import tensor

    rng = np.random.default_rng(5)
    x = tensor(rng.standard_normal((2, 3, 4, 5))).requires_grad_()
    mask = tensor(rng.standard_normal((4, 5))).requires_grad_()
    return [((x, mask), {"scale": 0.5, "masked": True}), ((x,), {"scale": 2.0, "masked": False})]


defsample(softmax_scale_mask_p, _sms_sample)


def softmax_scale_mask(x: Tensor, mask: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """``softmax(x * scale + mask, -1)`` in one pass (the attention probabilities from raw
    scores); ``mask`` is additive (``-inf`` hides a position) and broadcasts to ``x``. A row
    with every position hidden gives NaN, as PyTorch's softmax.

    Example:
        >>> import ember
        >>> from ember.ops.attention import softmax_scale_mask
        >>> s = ember.tensor([[1.0, 2.0, 3.0]])
        >>> m = ember.tensor([0.0, 0.0, float("-inf")])
        >>> [round(v, 4) for v in softmax_scale_mask(s, m, 0.5)[0].tolist()]
        [0.3775, 0.6225, 0.0]
    """
    if mask is not None and mask._data.dtype != x._data.dtype:
        mask = mask.to(x.dtype)
    args = (x,) if mask is None else (x, mask)
    return bind(softmax_scale_mask_p, args, {"scale": float(scale), "masked": mask is not None})


def sdpa_op(q, k, v, scale, causal):
    """Fused attention for same-batch-shape float32/float64 q, k, v (no mask, no dropout)."""
    return bind(sdpa_p, (q, k, v), {"scale": float(scale), "causal": bool(causal)})[0]


__all__ = ["sdpa_op", "softmax_scale_mask"]
