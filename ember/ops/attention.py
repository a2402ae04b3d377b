"""Fused scaled-dot-product attention (``sdpa``) and its backward primitive."""

from __future__ import annotations

import numpy as np

from ._ad import defvjp
from ._core import (
    SAVE_BOTH,
    SAVE_NONE,
    AbstractValue,
    Primitive,
    ShapeError,
    _state,
    bind,
)
from ._parallel import one_blas_thread, row_sums
from ._samples import defsample


def _f(x, v):
    """A Python float as a scalar of ``x``'s dtype (avoid float64 upcasts)."""
    return x.dtype.type(v)


# =========================================================================================
# Scaled dot-product attention: one fused kernel (scores GEMM, causal mask, stable softmax,
# output GEMM), saving only the log-sum-exp per row (as flash attention does); the backward
# recomputes the probabilities with one GEMM and gives dQ/dK/dV as batched GEMMs.
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


def _sdpa_impl(q, k, v, *, scale, causal):
    from .activation import _halves

    shape = q.shape[:-1] + (v.shape[-1],)
    if q.ndim == 4:
        # the output is laid out (B, L, H, Ev) in memory, so the usual
        # ``y.transpose(1, 2).reshape(b, t, d)`` that follows attention is a free view
        out = np.empty((shape[0], shape[2], shape[1], shape[3]), q.dtype).transpose(0, 2, 1, 3)
    else:
        out = np.empty(shape, q.dtype)
    lse = np.empty(q.shape[:-1], q.dtype)
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

    gq, gk, gv = np.empty(q.shape, q.dtype), np.empty(k.shape, k.dtype), np.empty(v.shape, v.dtype)
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


def sdpa_op(q, k, v, scale, causal):
    """Fused attention for same-batch-shape float32/float64 q, k, v (no mask, no dropout)."""
    return bind(sdpa_p, (q, k, v), {"scale": float(scale), "causal": bool(causal)})[0]


__all__ = ["sdpa_op"]
