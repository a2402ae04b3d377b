"""Loop kernels for group norm (NCHW planes and channels-last rows, forward and backward) and
cross entropy over class indices of (N, C, d1, ...) logits (compiled by numba through
:mod:`ember.backends.jit`).

Every kernel's outer loop is ``prange`` over groups of a sample or over samples, and each
iteration writes only its own part of the outputs: results are bitwise the same on any
number of threads. Statistics are float64 sums of float32 (or float64) vector-lane chunks,
as in :mod:`ember.backends.kernels_norm`.
"""

import math

import numpy as np

from .kernels_norm import _fast, _inline, fexp, rowsum, rowsumsq

try:
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]

__all__ = [
    "ce_grad_mid",
    "ce_mid",
    "gn_bwd_planes",
    "gn_bwd_rows",
    "gn_fwd_planes",
    "gn_fwd_rows",
]

_CHUNK = 512  # elements (or rows of the channels-last kernels) summed in the input's dtype
_RCHUNK = 32


@_fast
def gn_fwd_planes(x, w, b, has_w, has_b, eps, groups, cg, out, mean, rstd):
    """Group norm of NCHW-contiguous memory seen as (N*G, Cg*HW) rows: out = x * scale_c +
    shift_c per channel; ``mean``/``rstd`` (N*G,) are written in x's dtype."""
    rows, m = x.shape
    hw = m // cg
    for i in prange(rows):
        xi = x[i]
        oi = out[i]
        mu_t = x.dtype.type(rowsum(xi) / m)
        r_t = x.dtype.type(1.0 / math.sqrt(rowsumsq(xi, mu_t) / m + eps))
        mean[i] = mu_t
        rstd[i] = r_t
        g0 = (i % groups) * cg
        for c in range(cg):
            sc = r_t * w[g0 + c] if has_w else r_t
            sh = (b[g0 + c] if has_b else x.dtype.type(0)) - mu_t * sc
            xs = xi[c * hw : (c + 1) * hw]
            os = oi[c * hw : (c + 1) * hw]
            for j in range(hw):
                os[j] = xs[j] * sc + sh


@_fast
def gn_bwd_planes(g, x, mean, rstd, w, has_w, groups, cg, gx, sg, sgx):
    """Group norm backward on (N*G, Cg*HW) rows: gx, and per (sample, channel) float64
    sums of g and g * x into ``sg``/``sgx`` (N*G, Cg) (the weight/bias gradients)."""
    rows, m = x.shape
    hw = m // cg
    for i in prange(rows):
        gi = g[i]
        xi = x[i]
        oi = gx[i]
        mu = mean[i]
        r = rstd[i]
        g0 = (i % groups) * cg
        a = 0.0
        bb = 0.0
        for c in range(cg):
            s1 = 0.0
            s2 = 0.0
            for c0 in range(c * hw, (c + 1) * hw, _CHUNK):
                c1 = min(c0 + _CHUNK, (c + 1) * hw)
                gs = gi[c0:c1]
                xs = xi[c0:c1]
                t1 = x.dtype.type(0)
                t2 = x.dtype.type(0)
                for j in range(gs.shape[0]):
                    t1 += gs[j]
                    t2 += gs[j] * xs[j]
                s1 += t1
                s2 += t2
            sg[i, c] = s1
            sgx[i, c] = s2
            wc = w[g0 + c] if has_w else 1.0
            a += wc * s1
            bb += wc * (s2 - mu * s1)
        r64 = float(r)
        k1 = -(r64 * r64 * r64) * bb / m
        k0 = -r64 * a / m - float(mu) * k1
        k1_t = x.dtype.type(k1)
        k0_t = x.dtype.type(k0)
        for c in range(cg):
            sc = r * w[g0 + c] if has_w else r
            gs = gi[c * hw : (c + 1) * hw]
            xs = xi[c * hw : (c + 1) * hw]
            os = oi[c * hw : (c + 1) * hw]
            for j in range(hw):
                os[j] = gs[j] * sc + xs[j] * k1_t + k0_t


@_fast
def gn_fwd_rows(x, w, b, has_w, has_b, eps, groups, out, mean, rstd):
    """Group norm of channels-last memory (N, HW, C): ``mean``/``rstd`` (N, G) in x's dtype."""
    n, hw, c = x.shape
    cg = c // groups
    cnt = hw * cg
    for i in prange(n):
        xi = x[i]
        oi = out[i]
        s64 = np.zeros(c)
        acc = np.empty(c, x.dtype)
        for r0 in range(0, hw, _RCHUNK):
            acc[:] = 0
            for r in range(r0, min(r0 + _RCHUNK, hw)):
                row = xi[r]
                for j in range(c):
                    acc[j] += row[j]
            for j in range(c):
                s64[j] += acc[j]
        mu_c = np.empty(c, x.dtype)
        for gi in range(groups):
            s = 0.0
            for j in range(gi * cg, (gi + 1) * cg):
                s += s64[j]
            mt = x.dtype.type(s / cnt)
            mean[i, gi] = mt
            for j in range(gi * cg, (gi + 1) * cg):
                mu_c[j] = mt
        s64[:] = 0
        for r0 in range(0, hw, _RCHUNK):
            acc[:] = 0
            for r in range(r0, min(r0 + _RCHUNK, hw)):
                row = xi[r]
                for j in range(c):
                    d = row[j] - mu_c[j]
                    acc[j] += d * d
            for j in range(c):
                s64[j] += acc[j]
        sc = np.empty(c, x.dtype)
        sh = np.empty(c, x.dtype)
        for gi in range(groups):
            s = 0.0
            for j in range(gi * cg, (gi + 1) * cg):
                s += s64[j]
            rt = x.dtype.type(1.0 / math.sqrt(s / cnt + eps))
            rstd[i, gi] = rt
            for j in range(gi * cg, (gi + 1) * cg):
                sc[j] = rt * w[j] if has_w else rt
                sh[j] = (b[j] if has_b else x.dtype.type(0)) - mu_c[j] * sc[j]
        for r in range(hw):
            row = xi[r]
            orow = oi[r]
            for j in range(c):
                orow[j] = row[j] * sc[j] + sh[j]


@_fast
def gn_bwd_rows(g, x, mean, rstd, w, has_w, groups, gx, sg, sgx):
    """Group norm backward on channels-last (N, HW, C): gx, and float64 per (sample,
    channel) sums of g and g * x into ``sg``/``sgx`` (N, C)."""
    n, hw, c = x.shape
    cg = c // groups
    cnt = hw * cg
    for i in prange(n):
        gi_ = g[i]
        xi = x[i]
        oi = gx[i]
        s1 = sg[i]
        s2 = sgx[i]
        s1[:] = 0
        s2[:] = 0
        a1 = np.empty(c, x.dtype)
        a2 = np.empty(c, x.dtype)
        for r0 in range(0, hw, _RCHUNK):
            a1[:] = 0
            a2[:] = 0
            for r in range(r0, min(r0 + _RCHUNK, hw)):
                grow = gi_[r]
                xrow = xi[r]
                for j in range(c):
                    a1[j] += grow[j]
                    a2[j] += grow[j] * xrow[j]
            for j in range(c):
                s1[j] += a1[j]
                s2[j] += a2[j]
        sc = np.empty(c, x.dtype)
        k1c = np.empty(c, x.dtype)
        k0c = np.empty(c, x.dtype)
        for q in range(groups):
            mu = float(mean[i, q])
            r = rstd[i, q]
            r64 = float(r)
            a = 0.0
            bb = 0.0
            for j in range(q * cg, (q + 1) * cg):
                wc = w[j] if has_w else 1.0
                a += wc * s1[j]
                bb += wc * (s2[j] - mu * s1[j])
            k1 = -(r64 * r64 * r64) * bb / cnt
            k0 = -r64 * a / cnt - mu * k1
            for j in range(q * cg, (q + 1) * cg):
                sc[j] = r * w[j] if has_w else r
                k1c[j] = x.dtype.type(k1)
                k0c[j] = x.dtype.type(k0)
        for r in range(hw):
            grow = gi_[r]
            xrow = xi[r]
            orow = oi[r]
            for j in range(c):
                orow[j] = grow[j] * sc[j] + xrow[j] * k1c[j] + k0c[j]


# -- cross entropy over (N, C, S) logits ------------------------------------------------------
@_inline
def _column_max(xa, m):
    """m[j] = max over k of xa[k, j] for (C, S) ``xa`` (the class axis first: each position's
    logits lie S apart, so the maxima run along the contiguous positions)."""
    m[:] = xa[0]
    for k in range(1, xa.shape[0]):
        r = xa[k]
        for j in range(m.shape[0]):
            v = r[j]
            m[j] = v if v > m[j] else m[j]


@_fast
def ce_mid(x, t, wt, per, eps, w, has_w, wsum):
    """per[a, s] = (logsumexp(x[a, :, s]) - x[a, t[a, s], s]) * wt[a, s] for (A, C, S)
    logits (t made safe for ignored positions, whose wt is 0); with label smoothing ``eps``
    as :func:`ember.backends.kernels_norm.ce_rows` (t < 0: an ignored position)."""
    a_, n, s_ = x.shape
    one_e = x.dtype.type(1.0 - eps)
    en = x.dtype.type(eps / n)
    ws = x.dtype.type(wsum)
    for a in prange(a_):
        m = np.empty(s_, x.dtype)
        s = np.zeros(s_, x.dtype)
        sd = np.zeros(s_, x.dtype)
        xa = x[a]
        _column_max(xa, m)
        if eps == 0:
            for k in range(n):
                r = xa[k]
                for j in range(s_):
                    s[j] += fexp(r[j] - m[j])
        else:
            for k in range(n):
                r = xa[k]
                wk = w[k] if has_w else x.dtype.type(1)
                for j in range(s_):
                    d = r[j] - m[j]
                    s[j] += fexp(d)
                    sd[j] += wk * d
        ta = t[a]
        wa = wt[a]
        pa = per[a]
        for j in range(s_):
            ls = x.dtype.type(math.log(s[j]))
            lse = m[j] + ls
            w_ = wa[j]
            tj = ta[j]
            if eps == 0:
                pa[j] = (lse - xa[tj, j]) * w_ if w_ != 0 else x.dtype.type(0)
            elif tj < 0:
                pa[j] = x.dtype.type(0)
            else:
                nll = (lse - xa[tj, j]) * w_ if w_ != 0 else x.dtype.type(0)
                pa[j] = one_e * nll + en * (ws * ls - sd[j])


@_fast
def ce_grad_mid(x, t, coef, out, eps, w, has_w, wsum):
    """out[a, :, s] = c * (softmax(x[a, :, s]) - onehot(t[a, s])) for (A, C, S), c =
    coef[a, s] * w[t[a, s]] (``has_w``) or coef[a, s]; with label smoothing ``eps`` as
    :func:`ember.backends.kernels_norm.ce_grad_rows`."""
    a_, n, s_ = x.shape
    one_e = x.dtype.type(1.0 - eps)
    en = x.dtype.type(eps / n)
    ws = x.dtype.type(wsum)
    for a in prange(a_):
        m = np.empty(s_, x.dtype)
        s = np.zeros(s_, x.dtype)
        cw = np.empty(s_, x.dtype)
        xa = x[a]
        oa = out[a]
        _column_max(xa, m)
        for k in range(n):
            r = xa[k]
            o = oa[k]
            for j in range(s_):
                v = fexp(r[j] - m[j])
                o[j] = v
                s[j] += v
        ca = coef[a]
        ta = t[a]
        for j in range(s_):
            cw[j] = ca[j] * w[ta[j]] if has_w else ca[j]
        if eps == 0:
            for j in range(s_):
                s[j] = cw[j] / s[j]
            for k in range(n):
                o = oa[k]
                for j in range(s_):
                    o[j] *= s[j]
            for j in range(s_):
                oa[ta[j], j] -= cw[j]
            continue
        for j in range(s_):
            s[j] = (one_e * cw[j] + en * ca[j] * ws) / s[j]
        for k in range(n):
            o = oa[k]
            wk = w[k] if has_w else x.dtype.type(1)
            for j in range(s_):
                o[j] = o[j] * s[j] - en * ca[j] * wk
        for j in range(s_):
            oa[ta[j], j] -= one_e * cw[j]
