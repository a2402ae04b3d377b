"""Loop kernels for softmax, normalization, losses and reductions (compiled by numba
through :mod:`ember.backends.jit`).

Every kernel works on row blocks: a 2-D C-contiguous ``(rows, n)`` array (or ``(outer, n,
inner)`` for softmax over a middle axis), and writes into arrays it is given, so callers split
the rows over Ember's threads and a compiler can call the same kernels on its own buffers.
Results depend only on the row, never on the block or the thread, so they are bitwise the same
for any thread count.

Speed notes (measured with numba 0.68 on AVX-512 and AVX2 machines):

- ``math.exp`` in a numba loop is a scalar libm call (no SVML), so the kernels use
  :func:`fexp`, Cephes' polynomial (float32, max relative error 8e-8) and rational (float64,
  3e-16) forms in plain arithmetic that LLVM vectorizes.
- A maximum written as one running ``if`` does not vectorize (LLVM keeps NaN ordering);
  :func:`rowmax` takes the maximum of the floats' bits as integers, which does.
- ``fastmath`` is on without ``nnan``/``ninf``: sums may be reassociated (vector lanes) but
  NaN and inf checks stay; sums of float32 rows run in float32 vector lanes (as PyTorch's),
  normalization statistics and plain reductions sum chunks of 512 elements in vector lanes
  and add the chunk sums in float64 (converting every element to float64 halved the speed).
"""

import math

import numpy as np

try:  # row loops are prange: jit.get_parallel splits them over numba's threads (a serial
    # build runs them as range)
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]

__all__ = [
    "ce_grad_rows",
    "ce_rows",
    "col_sums",
    "embedding_grad_rows",
    "embedding_rows",
    "fill_rows",
    "layer_norm_bwd_blocks",
    "layer_norm_bwd_rows",
    "layer_norm_rows",
    "mid_sums",
    "repeat_rows",
    "rms_norm_bwd_blocks",
    "rms_norm_bwd_rows",
    "rms_norm_rows",
    "row_sums",
    "row_vars",
    "softmax_bwd_mid",
    "softmax_bwd_rows",
    "softmax_mid",
    "softmax_rows",
    "softmax_scale_mask_rows",
]

# reassociation (vector lanes) and contraction (FMA), but NaN/inf semantics are kept
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _fast(fn):
    """Mark a kernel to be compiled with :data:`FASTMATH` (read by :mod:`ember.backends.jit`)."""
    fn.jit_options = {"fastmath": FASTMATH}
    return fn


try:  # helpers called from kernels are compiled with them when numba is present (LLVM
    # inlines them; numba's own IR inlining warns on their branches)
    from numba.extending import register_jitable as _register_jitable

    _inline = _register_jitable(fastmath=FASTMATH)
except ImportError:  # pragma: no cover - the ops then run their NumPy code

    def _inline(fn):
        return fn


# -- float32 exp --------------------------------------------------------------------------------
_F = np.float32
_LOG2E = _F(1.4426950408889634)
_C1 = _F(0.693359375)  # ln 2 split in two: n * _C1 is exact for |n| < 2**15
_C2 = _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
# below _LO the result (< 1.7e-38) is flushed to 0; above _HI it is inf
_LO, _HI = _F(-87.0), _F(88.7)
_HALF, _ONE, _TWO, _ZERO, _INF = _F(0.5), _F(1.0), _F(2.0), _F(0.0), _F(np.inf)


def _exp32(x):
    # comparisons written so that NaN falls through unchanged (NaN in, NaN out)
    xc = x
    if xc < _LO:
        xc = _LO
    if xc > _HI:
        xc = _HI
    fx = np.floor(xc * _LOG2E + _HALF)
    r = xc - fx * _C1 - fx * _C2
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    y = p * r * r + r + _ONE
    # 2**n from its bits, as 2 * 2**(n-1) so that n = 128 (x near _HI) stays finite
    y = (y * _TWO) * np.int32((np.int32(fx) + 126) << 23).view(np.float32)
    if x < _LO:
        y = _ZERO
    if x > _HI:
        y = _INF
    return y


# float64: Cephes' rational form exp(r) = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)) (~1 ulp)
_D_C1, _D_C2 = 6.93145751953125e-1, 1.42860682030941723212e-6
_DP0, _DP1, _DP2 = 1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1
_DQ0, _DQ1 = 3.00198505138664455042e-6, 2.52448340349684104192e-3
_DQ2, _DQ3 = 2.27265548208155028766e-1, 2.00000000000000000009e0
_D_LO, _D_HI = -708.0, 709.0


def _exp64(x):
    xc = x
    if xc < _D_LO:
        xc = _D_LO
    if xc > _D_HI:
        xc = _D_HI
    fx = np.floor(xc * 1.4426950408889634 + 0.5)
    r = xc - fx * _D_C1 - fx * _D_C2
    rr = r * r
    px = r * ((_DP0 * rr + _DP1) * rr + _DP2)
    qx = ((_DQ0 * rr + _DQ1) * rr + _DQ2) * rr + _DQ3
    y = 1.0 + 2.0 * (px / (qx - px))
    y = (y * 2.0) * np.int64((np.int64(fx) + 1022) << 52).view(np.float64)
    if x < _D_LO:
        y = 0.0
    if x > _D_HI:
        y = np.inf
    return y


def fexp(x):
    """exp(x) in plain arithmetic that LLVM vectorizes (libm's exp stays a scalar call):
    relative error < 1e-7 (float32) and < 4e-16 (float64); results below ~1e-38 (float32) or ~3e-308
    (float64) flush to 0. Plain ``math.exp`` when run as Python.

    Example:
        >>> from ember.backends.kernels_norm import fexp
        >>> round(fexp(0.5), 6)
        1.648721
    """
    return math.exp(x)


def rowmax(a):
    """max of a 1-D float array (NaN: a NaN or a number; softmax turns a row with a NaN into
    NaN through ``exp(x - max)`` either way). Compiled, it compares the floats' bits as
    integers (``_rowmax32``, ``_rowmax64``).

    Example:
        >>> import numpy as np
        >>> from ember.backends.kernels_norm import rowmax
        >>> float(rowmax(np.array([1.0, 3.0, 2.0])))
        3.0
    """
    m = a[0]
    for v in a:
        m = v if v > m else m
    return m


# A float's bits, with the magnitude bits flipped for negatives, order as signed ints like the
# floats: an integer max reduction vectorizes where a float one (NaN ordering) does not
# (measured 1.1-1.6x faster than eight running float maxima).
def _rowmax32(a):
    bits = a.view(np.int32)
    mag = np.int32(0x7FFFFFFF)
    m = np.int32(-(2**31))
    for j in range(bits.shape[0]):
        i = bits[j]
        k = np.int32(i ^ ((i >> np.int32(31)) & mag))
        m = k if k > m else m
    return np.int32(m ^ ((m >> np.int32(31)) & mag)).view(np.float32)


def _rowmax64(a):
    bits = a.view(np.int64)
    mag = np.int64(0x7FFFFFFFFFFFFFFF)
    m = np.int64(-(2**63))
    for j in range(bits.shape[0]):
        i = bits[j]
        k = np.int64(i ^ ((i >> np.int64(63)) & mag))
        m = k if k > m else m
    return np.int64(m ^ ((m >> np.int64(63)) & mag)).view(np.float64)


_CHUNK = 512  # elements summed in the input's dtype (vector lanes) before a float64 add


@_inline
def rowsum(a):
    """sum(a) as a float64: chunks of _CHUNK elements are summed in a's dtype (vectorized,
    many lanes), the chunk sums in float64."""
    # NOTE: the chunk is a sub-view: a loop over range(c0, c1) of the row did not vectorize
    # (measured 18x slower)
    tot = 0.0
    for c0 in range(0, a.shape[0], _CHUNK):
        seg = a[c0 : c0 + _CHUNK]
        s = a.dtype.type(0)
        for j in range(seg.shape[0]):
            s += seg[j]
        tot += s
    return tot


@_inline
def rowsumsq(a, mu):
    """sum((a - mu)**2) as a float64, summed as :func:`rowsum` (``mu`` in a's dtype)."""
    tot = 0.0
    for c0 in range(0, a.shape[0], _CHUNK):
        seg = a[c0 : c0 + _CHUNK]
        s = a.dtype.type(0)
        for j in range(seg.shape[0]):
            d = seg[j] - mu
            s += d * d
        tot += s
    return tot


@_inline
def rowdevs(a, mu):
    """(sum((a - mu)**2), sum(a - mu)) as float64s, summed as :func:`rowsum`."""
    tot = 0.0
    dsum = 0.0
    for c0 in range(0, a.shape[0], _CHUNK):
        seg = a[c0 : c0 + _CHUNK]
        s = a.dtype.type(0)
        t = a.dtype.type(0)
        for j in range(seg.shape[0]):
            d = seg[j] - mu
            s += d * d
            t += d
        tot += s
        dsum += t
    return tot, dsum


try:  # fexp picks its code by dtype when compiled
    from numba import types as _nbtypes
    from numba.extending import overload as _overload

    # no reassociation inside exp: it would merge the two-part ln 2 reduction
    @_overload(fexp, jit_options={"fastmath": {"nsz", "contract", "afn"}})
    def _fexp_overload(x):
        if x == _nbtypes.float32:
            return _exp32
        if x == _nbtypes.float64:
            return _exp64
        return lambda x: math.exp(x)

    @_overload(rowmax, jit_options={"fastmath": FASTMATH})
    def _rowmax_overload(a):
        if a.dtype == _nbtypes.float32:
            return _rowmax32
        if a.dtype == _nbtypes.float64:
            return _rowmax64
        return None

except ImportError:  # pragma: no cover - the kernels then run as NumPy code in the ops
    pass


# -- softmax / log_softmax ------------------------------------------------------------------------
# NOTE: the row body is written out in both kernels: as a shared helper LLVM left it a call
# (20% slower on rows of 64), and numba's own inlining warns on its branches.
@_fast
def softmax_rows(x, out, log):
    """out[i] = softmax(x[i]) (log_softmax when ``log``) over the last axis of (R, n) arrays.
    A row of -inf gives NaN, as PyTorch."""
    rows, n = x.shape
    for i in prange(rows):
        src = x[i]
        oi = out[i]
        m = rowmax(src)
        s = x.dtype.type(0)
        if log:
            # (x - max) - log(sum), as PyTorch: x - (max + log(sum)) rounds at x's magnitude.
            # x - max goes through memory: reassoc would fold the two subtractions back
            for j in range(n):
                d = src[j] - m
                oi[j] = d
                s += fexp(d)
            ls = x.dtype.type(math.log(s))
            for j in range(n):
                oi[j] -= ls
        else:
            for j in range(n):
                e = fexp(src[j] - m)
                oi[j] = e
                s += e
            inv = x.dtype.type(1) / s
            for j in range(n):
                oi[j] *= inv


@_fast
def softmax_scale_mask_rows(x, out, scale, mask, log):
    """out[i] = softmax(x[i] * scale + mask[i % len(mask)]) over the last axis of (R, n)
    arrays (log_softmax when ``log``); ``mask`` is (M, n) additive (M = 0: no mask)."""
    rows, n = x.shape
    nm = mask.shape[0]
    sc = x.dtype.type(scale)
    for i in prange(rows):
        xi = x[i]
        oi = out[i]
        if nm:
            mi = mask[i % nm]
            for j in range(n):
                oi[j] = xi[j] * sc + mi[j]
        else:
            for j in range(n):
                oi[j] = xi[j] * sc
        m = rowmax(oi)
        s = x.dtype.type(0)
        if log:
            for j in range(n):
                s += fexp(oi[j] - m)
            lse = m + x.dtype.type(math.log(s))
            for j in range(n):
                oi[j] = oi[j] - lse
        else:
            for j in range(n):
                e = fexp(oi[j] - m)
                oi[j] = e
                s += e
            inv = x.dtype.type(1) / s
            for j in range(n):
                oi[j] *= inv


@_fast
def softmax_bwd_rows(g, y, out, scale, log):
    """Gradient of softmax_rows w.r.t. its pre-softmax input, times ``scale``:
    softmax: out = scale * y * (g - sum(g * y)); log: out = scale * (g - exp(y) * sum(g))."""
    rows, n = y.shape
    sc = y.dtype.type(scale)
    for i in prange(rows):
        gi = g[i]
        yi = y[i]
        oi = out[i]
        s = y.dtype.type(0)
        if log:
            for j in range(n):
                s += gi[j]
            for j in range(n):
                oi[j] = sc * (gi[j] - fexp(yi[j]) * s)
        else:
            for j in range(n):
                s += gi[j] * yi[j]
            for j in range(n):
                oi[j] = sc * (yi[j] * (gi[j] - s))


@_fast
def softmax_mid(x, out, log):
    """softmax (log_softmax when ``log``) over axis 1 of (A, n, B) arrays; the loops run along
    the contiguous last axis."""
    a_, n, b_ = x.shape
    one = x.dtype.type(1)
    for a in prange(a_):
        m = np.empty(b_, x.dtype)  # scratch per outer index: iterations may run in parallel
        s = np.empty(b_, x.dtype)
        xa = x[a]
        oa = out[a]
        m[:] = xa[0]
        for k in range(1, n):
            r = xa[k]
            for j in range(b_):
                v = r[j]
                m[j] = v if v > m[j] else m[j]
        s[:] = 0
        for k in range(n):
            r = xa[k]
            o = oa[k]
            for j in range(b_):
                d = r[j] - m[j]
                e = fexp(d)
                s[j] += e
                o[j] = d if log else e
        if log:  # (x - max) - log(sum), x - max through memory, as softmax_rows
            for j in range(b_):
                s[j] = x.dtype.type(math.log(s[j]))
            for k in range(n):
                o = oa[k]
                for j in range(b_):
                    o[j] -= s[j]
        else:
            for j in range(b_):
                s[j] = one / s[j]
            for k in range(n):
                o = oa[k]
                for j in range(b_):
                    o[j] *= s[j]


@_fast
def softmax_bwd_mid(g, y, out, log):
    """Gradient of softmax_mid (over axis 1 of (A, n, B) arrays)."""
    a_, n, b_ = y.shape
    for a in prange(a_):
        s = np.zeros(b_, y.dtype)  # scratch per outer index: iterations may run in parallel
        for k in range(n):
            gk = g[a, k]
            yk = y[a, k]
            for j in range(b_):
                s[j] += gk[j] if log else gk[j] * yk[j]
        for k in range(n):
            gk = g[a, k]
            yk = y[a, k]
            ok = out[a, k]
            for j in range(b_):
                if log:
                    ok[j] = gk[j] - fexp(yk[j]) * s[j]
                else:
                    ok[j] = yk[j] * (gk[j] - s[j])


# -- layer norm / rms norm ------------------------------------------------------------------------
@_fast
def layer_norm_rows(x, w, b, out, mean, rstd, eps, has_w, has_b):
    """out = (x - mean) * rstd * w + b per row of (R, n) (statistics in float64; mean and rstd
    (R,) are written too)."""
    rows, n = x.shape
    for i in prange(rows):
        xi = x[i]
        oi = out[i]
        mu = rowsum(xi) / n
        mu_t = x.dtype.type(mu)
        r = 1.0 / math.sqrt(rowsumsq(xi, mu_t) / n + eps)
        mean[i] = mu
        rstd[i] = r
        r_t = x.dtype.type(r)
        if has_w and has_b:
            for j in range(n):
                oi[j] = (xi[j] - mu_t) * r_t * w[j] + b[j]
        elif has_w:
            for j in range(n):
                oi[j] = (xi[j] - mu_t) * r_t * w[j]
        elif has_b:
            for j in range(n):
                oi[j] = (xi[j] - mu_t) * r_t + b[j]
        else:
            for j in range(n):
                oi[j] = (xi[j] - mu_t) * r_t


@_inline  # also called by layer_norm_bwd_blocks
@_fast
def layer_norm_bwd_rows(g, x, w, has_w, eps, gx, gw, gb, mean, rstd, saved):
    """Layer norm backward per row of (R, n): gx = rstd * (gh - mean(gh) - xhat *
    mean(gh * xhat)) with gh = g * w; gw += sum_rows g * xhat and gb += sum_rows g (the
    block's (n,) accumulators, in x's dtype). ``saved``: the forward's float64 (R,) ``mean``
    and ``rstd`` (as :func:`layer_norm_rows` writes them) are used, which saves two passes
    over x; otherwise the statistics are recomputed from x (the same values)."""
    rows, n = x.shape
    zero = x.dtype.type(0)
    for i in range(rows):
        xi = x[i]
        gi = g[i]
        oi = gx[i]
        if saved:
            mu_t = x.dtype.type(mean[i])
            r_t = x.dtype.type(rstd[i])
        else:
            mu_t = x.dtype.type(rowsum(xi) / n)
            r_t = x.dtype.type(1.0 / math.sqrt(rowsumsq(xi, mu_t) / n + eps))
        a = 0.0
        c = 0.0
        for c0 in range(0, n, _CHUNK):
            xs, gs, ws = xi[c0 : c0 + _CHUNK], gi[c0 : c0 + _CHUNK], w[c0 : c0 + _CHUNK]
            gws, gbs = gw[c0 : c0 + _CHUNK], gb[c0 : c0 + _CHUNK]
            sa = zero
            sc = zero
            for j in range(xs.shape[0]):
                xh = (xs[j] - mu_t) * r_t
                gv = gs[j]
                gws[j] += gv * xh
                gbs[j] += gv
                gh = gv * ws[j] if has_w else gv
                sa += gh
                sc += gh * xh
            a += sa
            c += sc
        a_t = x.dtype.type(a / n)
        c_t = x.dtype.type(c / n)
        for j in range(n):
            xh = (xi[j] - mu_t) * r_t
            gh = gi[j] * w[j] if has_w else gi[j]
            oi[j] = (gh - a_t - xh * c_t) * r_t


@_fast
def rms_norm_rows(x, w, has_w, eps, out, rstd):
    """out = x * rstd * w per row of (R, n), rstd = 1 / sqrt(mean(x**2) + eps) (float64)."""
    rows, n = x.shape
    for i in prange(rows):
        xi = x[i]
        oi = out[i]
        r = 1.0 / math.sqrt(rowsumsq(xi, x.dtype.type(0)) / n + eps)
        rstd[i] = r
        r_t = x.dtype.type(r)
        if has_w:
            for j in range(n):
                oi[j] = xi[j] * r_t * w[j]
        else:
            for j in range(n):
                oi[j] = xi[j] * r_t


@_inline  # also called by rms_norm_bwd_blocks
@_fast
def rms_norm_bwd_rows(g, x, w, has_w, eps, gx, gw):
    """RMS norm backward per row: gx = rstd * (gh - xhat * mean(gh * xhat)), gh = g * w,
    xhat = x * rstd; gw += sum_rows g * xhat (the block's (n,) accumulator, x's dtype)."""
    rows, n = x.shape
    zero = x.dtype.type(0)
    for i in range(rows):
        xi = x[i]
        gi = g[i]
        oi = gx[i]
        r_t = x.dtype.type(1.0 / math.sqrt(rowsumsq(xi, zero) / n + eps))
        c = 0.0
        for c0 in range(0, n, _CHUNK):
            xs, gs, ws, gws = (
                xi[c0 : c0 + _CHUNK],
                gi[c0 : c0 + _CHUNK],
                w[c0 : c0 + _CHUNK],
                gw[c0 : c0 + _CHUNK],
            )
            sc = zero
            for j in range(xs.shape[0]):
                xh = xs[j] * r_t
                gv = gs[j]
                gws[j] += gv * xh
                gh = gv * ws[j] if has_w else gv
                sc += gh * xh
            c += sc
        c_t = x.dtype.type(c / n)
        for j in range(n):
            xh = xi[j] * r_t
            gh = gi[j] * w[j] if has_w else gi[j]
            oi[j] = (gh - xh * c_t) * r_t


@_fast
def layer_norm_bwd_blocks(g, x, w, has_w, eps, gx, part, mean, rstd, saved, per):
    """:func:`layer_norm_bwd_rows` over blocks of ``per`` rows, block ``k`` accumulating into
    ``part[k, 0]`` (weight) and ``part[k, 1]`` (bias): the blocks are fixed by the caller, so
    the partials (added in block order by the caller) do not depend on the threads."""
    rows = x.shape[0]
    for blk in prange(part.shape[0]):
        r0 = blk * per
        r1 = min(r0 + per, rows)
        m = mean[r0:r1] if saved else mean
        r = rstd[r0:r1] if saved else rstd
        layer_norm_bwd_rows(
            g[r0:r1], x[r0:r1], w, has_w, eps, gx[r0:r1], part[blk, 0], part[blk, 1], m, r, saved
        )


@_fast
def rms_norm_bwd_blocks(g, x, w, has_w, eps, gx, part, per):
    """:func:`rms_norm_bwd_rows` over blocks of ``per`` rows, block ``k`` accumulating its
    weight gradient into ``part[k, 0]`` (see :func:`layer_norm_bwd_blocks`)."""
    rows = x.shape[0]
    for blk in prange(part.shape[0]):
        r0 = blk * per
        r1 = min(r0 + per, rows)
        rms_norm_bwd_rows(g[r0:r1], x[r0:r1], w, has_w, eps, gx[r0:r1], part[blk, 0])


# -- cross entropy over class indices ----------------------------------------------------------
@_fast
def ce_rows(x, t, wt, per, eps, w, has_w, wsum):
    """per[i] = (logsumexp(x[i]) - x[i, t[i]]) * wt[i] for (N, C) logits (t already made safe
    for ignored rows, whose wt is 0). Label smoothing ``eps`` != 0 (PyTorch's formula):
    per[i] = (1 - eps) * that + eps / C * sum_j w[j] * (lse - x[i, j]) (``w`` the class
    weights when ``has_w``, summing to ``wsum``; C when none), 0 where t[i] < 0 (ignored)."""
    rows, n = x.shape
    one_e = x.dtype.type(1.0 - eps)
    en = x.dtype.type(eps / n)
    ws = x.dtype.type(wsum)
    for i in prange(rows):
        xi = x[i]
        m = rowmax(xi)
        s = x.dtype.type(0)
        if eps == 0:
            for j in range(n):
                s += fexp(xi[j] - m)
            lse = m + x.dtype.type(math.log(s))
            w_ = wt[i]
            # a zero weight (ignored row) gives 0 even for non-finite logits
            per[i] = (lse - xi[t[i]]) * w_ if w_ != 0 else x.dtype.type(0)
            continue
        ti = t[i]
        if ti < 0:
            per[i] = x.dtype.type(0)
            continue
        # sum_j w_j (lse - x_j) = wsum * log(s) - sum_j w_j (x_j - m): both terms >= 0
        sd = x.dtype.type(0)
        if has_w:
            for j in range(n):
                d = xi[j] - m
                s += fexp(d)
                sd += w[j] * d
        else:
            for j in range(n):
                d = xi[j] - m
                s += fexp(d)
                sd += d
        ls = x.dtype.type(math.log(s))
        lse = m + ls
        w_ = wt[i]
        nll = (lse - xi[ti]) * w_ if w_ != 0 else x.dtype.type(0)
        smooth = ws * ls - sd
        per[i] = one_e * nll + en * smooth


@_fast
def ce_grad_rows(x, t, coef, out, eps, w, has_w, wsum):
    """out[i] = c * (softmax(x[i]) - onehot(t[i])) for (N, C) logits, c = coef[i] * w[t[i]]
    (class weights when ``has_w``; coef[i] alone otherwise). Label smoothing ``eps`` != 0:
    out[i] = ((1 - eps) c + eps / C * coef[i] * wsum) softmax(x[i]) - (1 - eps) c onehot(t[i])
    - eps / C * coef[i] * w (``w`` ones and ``wsum`` C without class weights)."""
    rows, n = x.shape
    one_e = x.dtype.type(1.0 - eps)
    en = x.dtype.type(eps / n)
    ws = x.dtype.type(wsum)
    for i in prange(rows):
        xi = x[i]
        oi = out[i]
        c0 = coef[i]
        ti = t[i]
        c = c0 * w[ti] if has_w else c0
        m = rowmax(xi)
        s = x.dtype.type(0)
        for j in range(n):
            v = fexp(xi[j] - m)
            oi[j] = v
            s += v
        if eps == 0:
            f = c / s
            for j in range(n):
                oi[j] *= f
            oi[ti] -= c
            continue
        c1 = one_e * c
        b = en * c0
        f = (c1 + b * ws) / s
        if has_w:
            for j in range(n):
                oi[j] = oi[j] * f - b * w[j]
        else:
            for j in range(n):
                oi[j] = oi[j] * f - b
        oi[ti] -= c1


# -- reductions -----------------------------------------------------------------------------------
def col_sums(x, out, nblk):
    """out[j] = sum(x[:, j]) of (M, N) ``x``: ``nblk`` fixed blocks of rows (split over
    numba's threads) each sum their rows in order into a partial row, and the partial rows
    are added in block order (the blocks depend on the shape only: the same bits on any
    number of threads). The inner loop runs along a row, so it vectorizes as it stands."""
    m, n = x.shape
    step = (m + nblk - 1) // nblk
    parts = np.zeros((nblk, n), x.dtype)
    for b in prange(nblk):
        pb = parts[b]
        for r in range(b * step, min(m, (b + 1) * step)):
            xr = x[r]
            for j in range(n):
                pb[j] += xr[j]
    for j in range(n):
        out[j] = parts[0, j]
    for b in range(1, nblk):
        pb = parts[b]
        for j in range(n):
            out[j] += pb[j]


def mid_sums(x, out, blk):
    """out[a, j] = sum(x[a, :, j]) of (A, N, C) ``x`` (a reduction over a middle axis): for
    each ``a`` (split over numba's threads), blocks of ``blk`` rows are summed in order into a
    partial row in x's dtype, and the partial rows into ``out`` (float32 error ~ (blk + N /
    blk) eps, not N eps as NumPy's row-by-row order; the same bits on any number of threads).
    The inner loops run along the contiguous last axis, so they vectorize however short it
    is."""
    na, n, c = x.shape
    for a in prange(na):
        xa = x[a]
        oa = out[a]
        part = np.empty(c, x.dtype)
        for j in range(c):
            oa[j] = 0
        for r0 in range(0, n, blk):
            for j in range(c):
                part[j] = 0
            for r in range(r0, min(n, r0 + blk)):
                xr = xa[r]
                for j in range(c):
                    part[j] += xr[j]
            for j in range(c):
                oa[j] += part[j]


@_fast
def row_sums(x, out, scale):
    """out[i] = scale * sum(x[i]) over the last axis of (R, n) (float32 lanes within chunks,
    float64 across them: see :func:`rowsum`)."""
    for i in prange(x.shape[0]):
        out[i] = rowsum(x[i]) * scale


@_fast
def row_vars(x, out, scale):
    """out[i] = scale * sum((x[i] - mean(x[i]))**2): two passes, sums as :func:`rowsum`, the
    second corrected by the deviations' own sum (the mean, rounded to x's dtype, is off by
    up to its chunk sums' error: ``sum(d**2) - sum(d)**2 / n`` removes that, as PyTorch's
    float64 accumulation does)."""
    n = x.shape[1]
    for i in prange(x.shape[0]):
        xi = x[i]
        mu = x.dtype.type(rowsum(xi) / n)
        ss, sd = rowdevs(xi, mu)
        out[i] = (ss - sd * sd / n) * scale


@_fast
def fill_rows(vals, out):
    """out[i, :] = vals[i] for (R, n) ``out`` (the gradient of a sum over trailing axes)."""
    n = out.shape[1]
    for i in prange(out.shape[0]):
        v = vals[i]
        oi = out[i]
        for j in range(n):
            oi[j] = v


@_fast
def repeat_rows(row, out):
    """out[i, :] = row for (R, n) ``out`` (the gradient of a sum over leading axes)."""
    n = out.shape[1]
    for i in prange(out.shape[0]):
        oi = out[i]
        for j in range(n):
            oi[j] = row[j]


# -- embedding -------------------------------------------------------------------------------
_GATHER_ROWS = 64  # rows per prange block of embedding_rows


def embedding_rows(w, idx, out):
    """out[i] = w[idx[i]] in fixed blocks of rows, the blocks a ``prange`` loop (a row copy:
    exact on any split). Returns how many indices are out of range (their rows are left
    unwritten; the caller raises): checking here saves two passes over the indices."""
    n = idx.shape[0]
    d = w.shape[1]
    rows = w.shape[0]
    bad = 0
    for blk in prange((n + _GATHER_ROWS - 1) // _GATHER_ROWS):
        for i in range(blk * _GATHER_ROWS, min(n, (blk + 1) * _GATHER_ROWS)):
            r = idx[i]
            if r < 0 or r >= rows:
                bad += 1
            else:
                out[i, :d] = w[r, :d]
    return bad


def embedding_grad_rows(g, order, srt, gw, step):
    """gw[r] for every table row r (every row written: no zeroed buffer needed) = the sum of
    the gradient rows g[i] with idx[i] == r, added in index order; ``order`` is a stable
    argsort of the indices and ``srt`` the sorted indices. Rows are written once each, in
    memory order (a scatter-add into a zeroed table touches random rows: 2-3x slower), in
    blocks of ``step`` rows (the prange loop: each row is summed by one iteration)."""
    d = g.shape[1]
    n = srt.shape[0]
    num = gw.shape[0]
    for blk in prange((num + step - 1) // step):
        r0 = blk * step
        p = np.searchsorted(srt, r0)
        for r in range(r0, min(num, r0 + step)):
            dst = gw[r]
            if p < n and srt[p] == r:
                src = g[order[p]]
                for j in range(d):
                    dst[j] = src[j]
                p += 1
                while p < n and srt[p] == r:
                    src = g[order[p]]
                    for j in range(d):
                        dst[j] += src[j]
                    p += 1
            else:
                for j in range(d):
                    dst[j] = 0
