"""Scaled dot-product attention, one (batch, head) matrix per ``prange`` unit (float32;
compiled by numba through :mod:`ember.backends.jit`, run by its parallel build).

Per unit the scores of a block of query rows live in a per-thread scratch buffer that stays
in L2: ``cblas_sgemm`` (by address, single-threaded: :mod:`ember.backends.kernels_blas`)
writes ``q k^T``, one pass over each row scales, masks and normalizes it (the exponential is
the vectorized polynomial of :mod:`ember.backends.kernels_norm`), and a second GEMM
multiplies by ``v``. Only the log-sum-exp of each row is kept for the backward (as flash
attention does), which recomputes the probabilities the same way. The batched NumPy version
made every intermediate a (B, H, L, S) array that does not fit in cache.

Operands are 4-D (B, H, rows, features) views with a unit stride along the features (heads
sliced out of a fused projection are read in place). Each unit is computed by one thread with
the same machine code whatever the thread count, so results are bitwise the same on any
number of threads. The causal mask is PyTorch's: query row ``i`` sees keys ``j <= i``.
"""

import math

import numpy as np

from .jit import inline_helpers
from .kernels_blas import NO_TRANS, TRANS, sgemm, sgemm_beta
from .kernels_norm import _fast, fexp, rowmax

try:
    from numba import get_thread_id, prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range

    def get_thread_id():
        return 0


__all__ = ["sdpa_bwd_heads", "sdpa_fwd_heads"]

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_NEG_INF = np.float32(-np.inf)


def _ld(a):
    """The leading dimension (elements) of the matrices of a 4-D float32 view."""
    return a.strides[2] // 4


def _probs_rows(s, r0, nrows, ncols, scale, causal, lse, li, from_lse):
    """Rows of ``s`` (the scores of query rows ``r0:r0+nrows``) become probabilities in place:
    scaled, masked (``causal``: key ``j`` > query row ``i`` gets 0), normalized. With
    ``from_lse`` the saved log-sum-exp ``lse[li, row]`` normalizes them; else it is written."""
    for r in range(nrows):
        row = s[r, :ncols]
        valid = min(ncols, r0 + r + 1) if causal else ncols
        for j in range(valid):
            row[j] *= scale
        for j in range(valid, ncols):
            row[j] = _ZERO
        head = row[:valid]
        if from_lse:
            sub = lse[li, r0 + r]
            for j in range(valid):
                head[j] = fexp(head[j] - sub)
        else:
            m = rowmax(head)
            tot = _ZERO
            for j in range(valid):
                e = fexp(head[j] - m)
                head[j] = e
                tot += e
            inv = _ONE / tot
            for j in range(valid):
                head[j] *= inv
            lse[li, r0 + r] = m + np.float32(math.log(tot))


@_fast
def sdpa_fwd_heads(fptr, q, k, v, out, lse, scale, causal, block, scratch):
    """``out[b, h]`` = softmax(``q[b, h] @ k[b, h]^T * scale`` (causal: masked)) ``@ v[b, h]``
    and ``lse`` (B*H, L) its rows' log-sum-exp, for 4-D (B, H, rows, features) operands;
    query rows in blocks of ``block``; ``scratch`` (threads, block, S)."""
    nb = q.shape[0] * q.shape[1]
    nh = q.shape[1]
    nl = q.shape[2]
    e = q.shape[3]
    ns = k.shape[2]
    ev = v.shape[3]
    sc = np.float32(scale)
    nblk = (nl + block - 1) // block
    for u in prange(nb * nblk):
        i = u // nblk
        r0 = (u - i * nblk) * block
        rows = min(block, nl - r0)
        b = i // nh
        h = i - b * nh
        s = scratch[get_thread_id()]
        qi = q[b, h, r0:]
        oi = out[b, h, r0:]
        sgemm(fptr, NO_TRANS, TRANS, rows, ns, e,
              qi.ctypes.data, _ld(q), k[b, h].ctypes.data, _ld(k), s.ctypes.data, ns)  # fmt: skip
        _probs_rows(s, r0, rows, ns, sc, causal, lse, i, False)
        sgemm(fptr, NO_TRANS, NO_TRANS, rows, ev, ns,
              s.ctypes.data, ns, v[b, h].ctypes.data, _ld(v), oi.ctypes.data, _ld(out))  # fmt: skip


@_fast
def sdpa_bwd_heads(fptr, g, glse, q, k, v, out, lse, gq, gk, gv, scale, causal, block, scratch):
    """The gradients ``gq``, ``gk``, ``gv`` of :func:`sdpa_fwd_heads` given the output's
    gradient ``g`` (4-D like ``out``) and the log-sum-exp's ``glse`` (B*H, L): per block of
    query rows the probabilities ``p`` are recomputed from ``lse``, then ``gv += p^T g``,
    ``ds = p * (g v^T - rowsum(g * out) + glse) * scale``, ``gq = ds k``, ``gk += ds^T q``
    (the first block of a unit writes ``gk``/``gv``, later ones add). ``scratch`` (threads,
    2, block, S)."""
    nb = q.shape[0] * q.shape[1]
    nh = q.shape[1]
    nl = q.shape[2]
    e = q.shape[3]
    ns = k.shape[2]
    ev = v.shape[3]
    sc = np.float32(scale)
    for i in prange(nb):
        b = i // nh
        h = i - b * nh
        t = get_thread_id()
        p = scratch[t, 0]
        ds = scratch[t, 1]
        for r0 in range(0, nl, block):
            rows = min(block, nl - r0)
            beta = _ZERO if r0 == 0 else _ONE
            sgemm(fptr, NO_TRANS, TRANS, rows, ns, e,
                  q[b, h, r0:].ctypes.data, _ld(q), k[b, h].ctypes.data, _ld(k),
                  p.ctypes.data, ns)  # fmt: skip
            _probs_rows(p, r0, rows, ns, sc, causal, lse, i, True)
            sgemm_beta(fptr, TRANS, NO_TRANS, ns, ev, rows,
                       p.ctypes.data, ns, g[b, h, r0:].ctypes.data, _ld(g), beta,
                       gv[b, h].ctypes.data, _ld(gv))  # fmt: skip
            sgemm(fptr, NO_TRANS, TRANS, rows, ns, ev,
                  g[b, h, r0:].ctypes.data, _ld(g), v[b, h].ctypes.data, _ld(v),
                  ds.ctypes.data, ns)  # fmt: skip
            for r in range(rows):
                gr = g[b, h, r0 + r]
                orow = out[b, h, r0 + r]
                d = _ZERO
                for j in range(ev):
                    d += gr[j] * orow[j]
                d -= glse[i, r0 + r]
                pr = p[r, :ns]
                dr = ds[r, :ns]
                for j in range(ns):
                    dr[j] = pr[j] * (dr[j] - d) * sc
            sgemm(fptr, NO_TRANS, NO_TRANS, rows, e, ns,
                  ds.ctypes.data, ns, k[b, h].ctypes.data, _ld(k),
                  gq[b, h, r0:].ctypes.data, _ld(gq))  # fmt: skip
            sgemm_beta(fptr, TRANS, NO_TRANS, ns, e, rows,
                       ds.ctypes.data, ns, q[b, h, r0:].ctypes.data, _ld(q), beta,
                       gk[b, h].ctypes.data, _ld(gk))  # fmt: skip


inline_helpers(globals(), ("_ld", "_probs_rows"), boundscheck=False)
