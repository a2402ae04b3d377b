"""Loop kernels for convolutions (compiled by numba through :mod:`ember.backends.jit`):
depthwise convolutions on channel planes and col2im, the scatter-add of input gradients.

Depthwise convolutions of NCHW inputs run here plane by plane, with no transposed copy of
the input. A plane is copied into a zero-padded scratch plane, split into stride x stride
phase planes (Hq, Wq) when strided, and the output is computed in "wide rows": output pixel
(i, j) sits at i*Wq + j of a flat buffer of L = (Ho-1)*Wq + Wo elements, and kernel offset
(a, e) adds one phase plane shifted by a constant times one weight: one long contiguous loop
that vectorizes (loops over single output rows, strided rows, or with possibly negative
indices measured 3-10x slower). The columns j >= Wo of each wide row are junk and dropped.

Every kernel takes a range ``c0:c1`` of input channels so that callers can split channels
over threads: channels are independent, so the split never changes a result. ``m`` is the
channel multiplier (output channel ``c*m + q`` reads input channel ``c``); ``t`` and ``l``
are the top and left padding (negative: cropping).
"""

import numpy as np

__all__ = [
    "col2im_nhwc",
    "conv_planes_fwd",
    "conv_planes_grad_weight",
    "dw3x3_fwd",
    "dw3x3_grad_weight",
    "dw3x3_nhwc_fwd",
    "dw3x3_nhwc_grad_weight",
    "dw_nhwc_fwd",
    "dw_nhwc_grad_input",
    "dw_nhwc_grad_weight",
    "dw_planes_fwd",
    "dw_planes_grad_input",
    "dw_planes_grad_weight",
]

try:  # the few-channel convolution kernels split their rows or images over numba's threads
    from numba import get_thread_id, prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]

    def get_thread_id():
        return 0


try:  # helpers called from kernels are compiled with them when numba is present
    from numba.extending import register_jitable as _register_jitable

    # reassociation lets the dot product run in vector lanes (several partial sums)
    _inline_fast = _register_jitable(fastmath={"reassoc", "nsz", "contract"})
except ImportError:  # pragma: no cover - the ops then run their NumPy code

    def _inline_fast(fn):
        return fn

    def _inline(fn):
        return fn

else:
    _inline = _register_jitable


@_inline_fast
def _dot64(a, b):
    """sum(a * b) of two equally long 1-D slices, in float64."""
    s = 0.0
    for i in range(a.shape[0]):
        s += np.float64(a[i]) * np.float64(b[i])
    return s


@_inline_fast
def _dot(a, b):
    """sum(a * b) of two equally long 1-D slices, in their dtype."""
    s = a.dtype.type(0)
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@_inline
def _tap(xf, ph, sh, sw, wq, ra, ce, ln):
    """The run of ``ln`` input elements that kernel offset (``ra``, ``ce``) (rows, columns,
    dilation included) multiplies in wide-row order: a slice of the flat padded plane ``xf``
    (stride 1, rows ``wq`` long) or of one phase plane of ``ph``."""
    if sh == 1 and sw == 1:
        return xf[ra * wq + ce : ra * wq + ce + ln]
    base = (ra // sh) * wq + ce // sw
    return ph[ra % sh, ce % sw].reshape(ph.shape[2] * ph.shape[3])[base : base + ln]


@_inline
def _copy(d, s):
    """d[:] = s for 1-D slices (a plain loop: numba's slice assignment measured ~5x slower
    on 28-element rows)."""
    for u in range(d.shape[0]):
        d[u] = s[u]


@_inline
def _zero(d):
    """d[:] = 0 for a 1-D array (a plain loop, as :func:`_copy`)."""
    for u in range(d.shape[0]):
        d[u] = 0


@_inline
def _pad_plane(src, xp, ya, yb, ua, ub, t, l):
    """xp[ya:yb, ua:ub] = src[ya-t : yb-t, ua-l : ub-l], a row at a time (a plain loop over
    each contiguous row vectorizes; numba's 2-D slice assignment measured ~3x slower)."""
    for y in range(ya, yb):
        d = xp[y][ua:ub]
        s = src[y - t][ua - l : ub - l]
        for u in range(ub - ua):
            d[u] = s[u]


@_inline
def _split_row(src, ph, ry, qy, sw, l, ub, wq):
    """Input row ``src`` into its ``sw`` column phases, the rows ph[ry, :, qy] (Wq long):
    padded column v = u + ``l`` (< ``ub``) of input column u goes to
    ph[ry, v % sw, qy, v // sw]. Stride 2 (the common case) moves both phases in one loop
    over column pairs: loads of src[2j] and src[2j+1] from one base vectorize as an
    interleaved group (a loop per phase with a runtime stride does not; the weight gradient's
    3.8 -> 3.4 us per 56x56 plane)."""
    if sw == 2 and l >= 0:
        pa = l % 2  # the phase of the even input columns 2j (at pa's index qa + j)
        qa = l // 2
        qb = (l + 1) // 2  # odd columns 2j + 1: phase 1 - pa, index qb + j
        cnta = max(0, min(wq - qa, (ub - l + 1) // 2))
        cntb = max(0, min(wq - qb, (ub - l) // 2))
        da = ph[ry, pa, qy][qa : qa + cnta]
        db = ph[ry, 1 - pa, qy][qb : qb + cntb]
        nc = min(cnta, cntb)
        for j in range(nc):
            da[j] = src[np.uintp(2 * j)]
            db[j] = src[np.uintp(2 * j + 1)]
        for j in range(nc, cnta):
            da[j] = src[np.uintp(2 * j)]
        for j in range(nc, cntb):
            db[j] = src[np.uintp(2 * j + 1)]
        return
    for px in range(sw):
        u0 = (px - l) % sw  # first input column of this column phase
        q0 = (u0 + l) // sw
        cnt = min(wq - q0, (ub - l - u0 + sw - 1) // sw)
        d = ph[ry, px, qy][q0 : q0 + cnt]
        s2 = src[u0:]
        for j in range(cnt):  # unsigned: no negative-index check
            d[j] = s2[np.uintp(j * sw)]


def dw_planes_fwd(x, w, out, m, c0, c1, sh, sw, t, l, dh, dw, bias, has_b):
    """out[n, c*m+q, i, j] = sum_{a, e} x[n, c, i*sh - t + a*dh, j*sw - l + e*dw] *
    w[c*m+q, a, e] (+ bias[c*m+q] when ``has_b``: the sums start from it, which saves a
    pass over the output) for input channels c0 <= c < c1 (reads outside the input are
    zeros)."""
    n, _, h, wi = x.shape
    ho, wo = out.shape[2], out.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    hq = ho + ((kh - 1) * dh) // sh
    wq = wo + ((kw - 1) * dw) // sw
    hp, wp = hq * sh, wq * sw
    # zero-padded plane, its phase planes; borders are zeroed once and stay zero
    xp = np.zeros((hp, wp), x.dtype)
    ph = np.zeros((sh, sw, hq, wq), x.dtype)
    ya, yb = max(0, t), min(hp, h + t)
    ua, ub = max(0, l), min(wp, wi + l)
    ln = (ho - 1) * wq + wo
    acc = np.empty(ln, out.dtype)
    xf = xp.reshape(hp * wp)
    # 3x3 stride 2: no phase planes (splitting a row into column phases does not vectorize:
    # 1.6 of 2.5 us per 56x56 plane); each output row is computed at every column of the
    # padded plane (unit-stride loads, twice the multiplies) and its even columns kept
    s2 = kh == 3 and kw == 3 and sh == 2 and sw == 2 and dh == 1 and dw == 1
    lr = 2 * wo - 1
    row = np.empty(lr, out.dtype)
    for b in range(n):
        for c in range(c0, c1):
            if (sh == 1 and sw == 1) or s2:
                if ya < yb and ua < ub:
                    _pad_plane(x[b, c], xp, ya, yb, ua, ub, t, l)
            else:  # input rows straight into the phase planes (their borders stay zero)
                for y in range(ya, yb):
                    _split_row(x[b, c, y - t], ph, y % sh, y // sh, sw, l, ub, wq)
            for q in range(m):
                oc = c * m + q
                b0 = bias[oc] if has_b else out.dtype.type(0)
                if s2:
                    w00, w01, w02 = w[oc, 0, 0], w[oc, 0, 1], w[oc, 0, 2]
                    w10, w11, w12 = w[oc, 1, 0], w[oc, 1, 1], w[oc, 1, 2]
                    w20, w21, w22 = w[oc, 2, 0], w[oc, 2, 1], w[oc, 2, 2]
                    for i in range(ho):
                        r0 = 2 * i * wp
                        r1, r2 = r0 + wp, r0 + 2 * wp
                        x00, x01, x02 = xf[r0 : r0 + lr], xf[r0 + 1 : r0 + 1 + lr], xf[r0 + 2 :]
                        x10, x11, x12 = xf[r1 : r1 + lr], xf[r1 + 1 : r1 + 1 + lr], xf[r1 + 2 :]
                        x20, x21, x22 = xf[r2 : r2 + lr], xf[r2 + 1 : r2 + 1 + lr], xf[r2 + 2 :]
                        for p in range(lr):  # the sums grouped as below: the same bits
                            row[p] = (
                                b0
                                + (x00[p] * w00 + x01[p] * w01 + x02[p] * w02)
                                + (x10[p] * w10 + x11[p] * w11 + x12[p] * w12)
                                + (x20[p] * w20 + x21[p] * w21 + x22[p] * w22)
                            )
                        orow = out[b, oc, i]
                        for j in range(wo):
                            orow[j] = row[np.uintp(2 * j)]
                    continue
                if kh == 3 and kw == 3:
                    # all nine taps in one pass: one store of acc instead of three updates
                    # (every tap a slice indexed by the loop variable alone: an index
                    # p + offset would get a negative-index check that stops vectorization;
                    # strided: each tap a run of one phase plane)
                    x00 = _tap(xf, ph, sh, sw, wq, 0, 0, ln)
                    x01 = _tap(xf, ph, sh, sw, wq, 0, dw, ln)
                    x02 = _tap(xf, ph, sh, sw, wq, 0, 2 * dw, ln)
                    x10 = _tap(xf, ph, sh, sw, wq, dh, 0, ln)
                    x11 = _tap(xf, ph, sh, sw, wq, dh, dw, ln)
                    x12 = _tap(xf, ph, sh, sw, wq, dh, 2 * dw, ln)
                    x20 = _tap(xf, ph, sh, sw, wq, 2 * dh, 0, ln)
                    x21 = _tap(xf, ph, sh, sw, wq, 2 * dh, dw, ln)
                    x22 = _tap(xf, ph, sh, sw, wq, 2 * dh, 2 * dw, ln)
                    w00, w01, w02 = w[oc, 0, 0], w[oc, 0, 1], w[oc, 0, 2]
                    w10, w11, w12 = w[oc, 1, 0], w[oc, 1, 1], w[oc, 1, 2]
                    w20, w21, w22 = w[oc, 2, 0], w[oc, 2, 1], w[oc, 2, 2]
                    for p in range(ln):
                        acc[p] = (
                            b0
                            + (x00[p] * w00 + x01[p] * w01 + x02[p] * w02)
                            + (x10[p] * w10 + x11[p] * w11 + x12[p] * w12)
                            + (x20[p] * w20 + x21[p] * w21 + x22[p] * w22)
                        )
                    for i in range(ho):
                        _copy(out[b, oc, i], acc[i * wq : i * wq + wo])
                    continue
                for p in range(ln):
                    acc[p] = b0
                for a in range(kh):
                    ra = a * dh
                    if sh == 1 and sw == 1 and kw == 3:
                        # a row of three taps in one pass: one load and store of acc
                        base = ra * wp
                        x0 = xf[base : base + ln]
                        x1 = xf[base + dw : base + dw + ln]
                        x2 = xf[base + 2 * dw : base + 2 * dw + ln]
                        w0, w1, w2 = w[oc, a, 0], w[oc, a, 1], w[oc, a, 2]
                        for p in range(ln):
                            acc[p] += x0[p] * w0 + x1[p] * w1 + x2[p] * w2
                        continue
                    for e in range(kw):
                        wv = w[oc, a, e]
                        ce = e * dw
                        base = (ra // sh) * wq + ce // sw
                        if sh == 1 and sw == 1:
                            src = xf
                        else:
                            src = ph[ra % sh, ce % sw].reshape(hq * wq)
                        xs = src[base : base + ln]
                        for p in range(ln):
                            acc[p] += xs[p] * wv
                for i in range(ho):
                    _copy(out[b, oc, i], acc[i * wq : i * wq + wo])


def dw_planes_grad_input(g, w, gx, m, c0, c1, sh, sw, t, l, dh, dw):
    """gx[n, c] (input channels c0 <= c < c1; overwritten) = the transposed depthwise
    convolution of g: each output pixel's gradient times the weights, added back to the
    input pixels its window read."""
    n, _, h, wi = gx.shape
    ho, wo = g.shape[2], g.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    hq = max(ho + ((kh - 1) * dh) // sh, -(-(h + t) // sh))
    wq = max(wo + ((kw - 1) * dw) // sw, -(-(wi + l) // sw))
    ph = np.empty((sh, sw, hq, wq), gx.dtype)  # the padded input gradient, as phase planes
    ln = (ho - 1) * wq + wo
    gwide = np.zeros(ln, gx.dtype)  # junk columns stay zero
    gpad = np.zeros(ln + 4 * dw, gx.dtype)  # gwide with 2*dw zeros either side
    for b in range(n):
        for c in range(c0, c1):
            _zero(ph.reshape(ph.size))
            for q in range(m):
                oc = c * m + q
                for i in range(ho):
                    _copy(gwide[i * wq : i * wq + wo], g[b, oc, i])
                for a in range(kh):
                    ra = a * dh
                    if sh == 1 and sw == 1 and kw == 3:
                        # the three taps of a row in one pass (each output element sums
                        # contributions from three gradient pixels at once)
                        base = ra * wq
                        dst = ph[0, 0].reshape(hq * wq)[base : base + ln + 2 * dw]
                        w0, w1, w2 = w[oc, a, 0], w[oc, a, 1], w[oc, a, 2]
                        gpad[2 * dw : 2 * dw + ln] = gwide
                        g0 = gpad[2 * dw : 2 * dw + ln + 2 * dw]
                        g1 = gpad[dw : dw + ln + 2 * dw]
                        g2 = gpad[0 : ln + 2 * dw]
                        for p in range(ln + 2 * dw):
                            dst[p] += g0[p] * w0 + g1[p] * w1 + g2[p] * w2
                        continue
                    for e in range(kw):
                        wv = w[oc, a, e]
                        ce = e * dw
                        base = (ra // sh) * wq + ce // sw
                        dst = ph[ra % sh, ce % sw].reshape(hq * wq)[base : base + ln]
                        for p in range(ln):
                            dst[p] += gwide[p] * wv
            for r in range(h):
                y = r + t
                if y < 0:
                    gx[b, c, r] = 0
                elif sw == 1 and l >= 0:
                    _copy(gx[b, c, r], ph[y % sh, 0, y // sh, l : l + wi])
                elif sw == 2 and l >= 0:  # both column phases in one loop (interleaved stores)
                    dst = gx[b, c, r]
                    pa = l % 2  # even columns 2j: phase pa at l // 2 + j; odd: 1 - pa
                    ea = ph[y % sh, pa, y // sh][l // 2 :]
                    ob = ph[y % sh, 1 - pa, y // sh][(l + 1) // 2 :]
                    for j in range(wi // 2):
                        dst[np.uintp(2 * j)] = ea[j]
                        dst[np.uintp(2 * j + 1)] = ob[j]
                    if wi % 2:
                        dst[wi - 1] = ea[wi // 2]
                elif l >= 0:  # each column phase is a contiguous run of its phase row
                    for u0 in range(min(sw, wi)):
                        v0 = u0 + l
                        cnt = (wi - u0 + sw - 1) // sw
                        gx[b, c, r, u0::sw] = ph[
                            y % sh, v0 % sw, y // sh, v0 // sw : v0 // sw + cnt
                        ]
                else:
                    for u in range(wi):
                        v = u + l
                        gx[b, c, r, u] = ph[y % sh, v % sw, y // sh, v // sw] if v >= 0 else 0


def dw_planes_grad_weight(x, g, gw, m, c0, c1, sh, sw, t, l, dh, dw):
    """gw[c*m+q, a, e] (float64; input channels c0 <= c < c1) = sum over images and output
    pixels of x at the pixel's window offset (a, e) times g. Products are summed per output
    position over the images first (in the input's dtype: an elementwise loop that
    vectorizes), then over positions in float64 (eight running sums, added in a fixed
    order: one long dependent chain of adds measured as slow as the rest)."""
    n, _, h, wi = x.shape
    ho, wo = g.shape[2], g.shape[3]
    kh, kw = gw.shape[1], gw.shape[2]
    hq = ho + ((kh - 1) * dh) // sh
    wq = wo + ((kw - 1) * dw) // sw
    hp, wp = hq * sh, wq * sw
    xp = np.zeros((hp, wp), x.dtype)
    ph = np.zeros((sh, sw, hq, wq), x.dtype)
    ya, yb = max(0, t), min(hp, h + t)
    ua, ub = max(0, l), min(wp, wi + l)
    ln = (ho - 1) * wq + wo
    gwide = np.zeros(ln, g.dtype)
    acc = np.empty((kh, kw, ln), g.dtype)
    part = np.empty(8)
    for c in range(c0, c1):
        for q in range(m):
            oc = c * m + q
            _zero(acc.reshape(acc.size))
            for b in range(n):
                if sh == 1 and sw == 1:
                    if ya < yb and ua < ub:
                        _pad_plane(x[b, c], xp, ya, yb, ua, ub, t, l)
                else:  # input rows straight into the phase planes (their borders stay zero)
                    for y in range(ya, yb):
                        _split_row(x[b, c, y - t], ph, y % sh, y // sh, sw, l, ub, wq)
                for i in range(ho):
                    _copy(gwide[i * wq : i * wq + wo], g[b, oc, i])
                for a in range(kh):
                    for e in range(kw):
                        ra, ce = a * dh, e * dw
                        base = (ra // sh) * wq + ce // sw
                        if sh == 1 and sw == 1:
                            src = xp.reshape(hp * wp)
                        else:
                            src = ph[ra % sh, ce % sw].reshape(hq * wq)
                        xs = src[base : base + ln]
                        ac = acc[a, e]
                        for p in range(ln):
                            ac[p] += xs[p] * gwide[p]
            for a in range(kh):
                for e in range(kw):
                    ac = acc[a, e]
                    part[:] = 0.0
                    for p0 in range(0, ln - 7, 8):
                        for k in range(8):
                            part[k] += np.float64(ac[p0 + k])
                    s = 0.0
                    for p in range(ln - ln % 8, ln):
                        s += np.float64(ac[p])
                    for k in range(8):
                        s += part[k]
                    gw[oc, a, e] = s


def col2im_nhwc(cols, gxp, c0, y0, ho, wo, kh, kw, sh, sw, dh, dw):
    """gxp[n, y*sh + a*dh, x*sw + e*dw, c0 + k] += cols[(n*Ho + y - y0)*Wo + x, (a*kw + e)*cg + k]
    for output rows ``y0 <= y < y0 + Ho`` of a zeroed (or partly summed) padded NHWC input
    gradient ``gxp``: the adjoint of im2col. Pixels are visited in order, so the sums do not
    depend on how images (or an image's rows, run in order) are split. Without dilation along
    the width and with one group the kw runs of cg elements are one contiguous run of kw*cg in
    both arrays; the loops run on 1-D slices (indices known non-negative: they vectorize)."""
    _col2im(cols, gxp, c0, y0, ho, wo, kh, kw, sh, sw, dh, dw)


@_inline
def _col2im(cols, gxp, c0, y0, ho, wo, kh, kw, sh, sw, dh, dw):
    """The loops of :func:`col2im_nhwc` (also called from the compiled input-gradient loop of
    :mod:`ember.backends.kernels_convgemm`)."""
    n, hp, wp, c = gxp.shape
    cg = cols.shape[1] // (kh * kw)
    merged = dw == 1 and cg == c
    g2 = gxp.reshape(n, hp, wp * c)
    for b in range(n):
        for y in range(y0, y0 + ho):
            for x in range(wo):
                src = cols[(b * ho + y - y0) * wo + x]
                for a in range(kh):
                    dst = g2[b, y * sh + a * dh]
                    if merged:
                        run = kw * c
                        dd = dst[x * sw * c : x * sw * c + run]
                        ss = src[a * run : (a + 1) * run]
                        for k in range(run):
                            dd[k] += ss[k]
                    else:
                        for e in range(kw):
                            d0 = (x * sw + e * dw) * c + c0
                            s0 = (a * kw + e) * cg
                            dd = dst[d0 : d0 + cg]
                            ss = src[s0 : s0 + cg]
                            for k in range(cg):
                                dd[k] += ss[k]


def dw3x3_fwd(x, w, out, c0, c1, bias, has_b):
    """The plane kernel of :func:`dw_planes_fwd` for its most common case, 3x3 taps with stride
    1, padding 1 and no dilation (planes of at least 3x3), with no padded copy: output pixel p
    of a plane reads input p + (a-1)*W + (e-1) for tap (a, e), so the output rows whose taps
    all fall inside the plane are one long loop over the flat plane, written straight into
    ``out``; the first and last row skip their missing tap row, and the two edge columns
    (where a flat shift wraps to the neighbouring row) are recomputed one pixel at a time.
    Sums are grouped as in :func:`dw_planes_fwd` (bias, then one group per tap row), so the
    values are the same."""
    n = x.shape[0]
    h, wd = x.shape[2], x.shape[3]
    hw = h * wd
    nin = (h - 2) * wd - 2  # interior rows, less their first and last pixel
    for b in range(n):
        for c in range(c0, c1):
            xf = x[b, c].reshape(hw)
            of = out[b, c].reshape(hw)
            b0 = bias[c] if has_b else out.dtype.type(0)
            w00, w01, w02 = w[c, 0, 0], w[c, 0, 1], w[c, 0, 2]
            w10, w11, w12 = w[c, 1, 0], w[c, 1, 1], w[c, 1, 2]
            w20, w21, w22 = w[c, 2, 0], w[c, 2, 1], w[c, 2, 2]
            # rows 1 .. h-2: output (wd + 1 + u) reads input u + a*wd + e
            o = of[wd + 1 : wd + 1 + nin]
            x00, x01, x02 = xf[0:nin], xf[1 : 1 + nin], xf[2 : 2 + nin]
            x10, x11, x12 = xf[wd : wd + nin], xf[wd + 1 : wd + 1 + nin], xf[wd + 2 : wd + 2 + nin]
            s2 = 2 * wd
            x20, x21, x22 = xf[s2 : s2 + nin], xf[s2 + 1 : s2 + 1 + nin], xf[s2 + 2 : s2 + 2 + nin]
            for u in range(nin):
                o[u] = (
                    b0
                    + (x00[u] * w00 + x01[u] * w01 + x02[u] * w02)
                    + (x10[u] * w10 + x11[u] * w11 + x12[u] * w12)
                    + (x20[u] * w20 + x21[u] * w21 + x22[u] * w22)
                )
            # first row (no tap row 0): output 1 + u reads input u + (a-1)*wd + e
            m = wd - 2
            o = of[1 : 1 + m]
            y10, y11, y12 = xf[0:m], xf[1 : 1 + m], xf[2 : 2 + m]
            y20, y21, y22 = xf[wd : wd + m], xf[wd + 1 : wd + 1 + m], xf[wd + 2 : wd + 2 + m]
            for u in range(m):
                o[u] = (
                    b0
                    + (y10[u] * w10 + y11[u] * w11 + y12[u] * w12)
                    + (y20[u] * w20 + y21[u] * w21 + y22[u] * w22)
                )
            # last row (no tap row 2)
            r0 = (h - 2) * wd
            o = of[(h - 1) * wd + 1 : (h - 1) * wd + 1 + m]
            z00, z01, z02 = xf[r0 : r0 + m], xf[r0 + 1 : r0 + 1 + m], xf[r0 + 2 : r0 + 2 + m]
            r1 = r0 + wd
            z10, z11, z12 = xf[r1 : r1 + m], xf[r1 + 1 : r1 + 1 + m], xf[r1 + 2 : r1 + 2 + m]
            for u in range(m):
                o[u] = (
                    b0
                    + (z00[u] * w00 + z01[u] * w01 + z02[u] * w02)
                    + (z10[u] * w10 + z11[u] * w11 + z12[u] * w12)
                )
            # the edge columns (taps off the plane left out: they would add zeros)
            xp = x[b, c]
            op = out[b, c]
            v = wd - 2
            for i in range(h):
                a0 = b0
                a1 = b0
                if i >= 1:
                    a0 = a0 + (xp[i - 1, 0] * w01 + xp[i - 1, 1] * w02)
                    a1 = a1 + (xp[i - 1, v] * w00 + xp[i - 1, v + 1] * w01)
                a0 = a0 + (xp[i, 0] * w11 + xp[i, 1] * w12)
                a1 = a1 + (xp[i, v] * w10 + xp[i, v + 1] * w11)
                if i < h - 1:
                    a0 = a0 + (xp[i + 1, 0] * w21 + xp[i + 1, 1] * w22)
                    a1 = a1 + (xp[i + 1, v] * w20 + xp[i + 1, v + 1] * w21)
                op[i, 0] = a0
                op[i, v + 1] = a1


def dw3x3_grad_weight(x, g, gw, c0, c1):
    """gw[c, a, e] (float64) for the 3x3, stride-1, padding-1 depthwise convolution of
    :func:`dw3x3_fwd`: per image, tap (a, e) is a dot product of the flat gradient plane with
    the input plane shifted by (a-1)*W + (e-1), over the output rows whose tap row is inside
    the plane. Taps e = 0 and e = 2 would pick up wrapped-around neighbours at the left and
    right edge columns: they use a copy of the gradient with that column zeroed. Each dot
    product runs in the input's dtype with eight partial sums; images add up in float64."""
    n = x.shape[0]
    h, wd = x.shape[2], x.shape[3]
    hw = h * wd
    ml = np.ones(hw, g.dtype)  # zero at column 0 (taps e = 0)
    mr = np.ones(hw, g.dtype)  # zero at column W-1 (taps e = 2)
    for i in range(h):
        ml[i * wd] = 0
        mr[i * wd + wd - 1] = 0
    acc = np.zeros((c1 - c0, 3, 3))
    # images outside, channels inside: the planes are read in memory order
    for b in range(n):
        for c in range(c0, c1):
            xf = x[b, c].reshape(hw)
            gf = g[b, c].reshape(hw)
            for a in range(3):
                # output rows whose tap row i + a - 1 is inside: [max(0, 1-a), min(h, h+1-a)),
                # less the first and last output (their taps (a, 0) and (a, 2) may fall off
                # the plane; the masks zero them anyway), added one at a time below
                p0 = (wd if a == 0 else 0) + 1
                p1 = ((h - 1) * wd if a == 2 else hw) - 1
                off = (a - 1) * wd
                s0, s1, s2 = _dot3(xf[p0 + off - 1 : p1 + off + 1], gf[p0:p1], ml[p0:p1], mr[p0:p1])
                for p in (p0 - 1, p1):
                    for e in range(3):
                        q = p + off + e - 1
                        if 0 <= q < hw:
                            m = ml[p] if e == 0 else (mr[p] if e == 2 else 1)
                            acc[c - c0, a, e] += xf[q] * (gf[p] * m)
                acc[c - c0, a, 0] += s0
                acc[c - c0, a, 1] += s1
                acc[c - c0, a, 2] += s2
    for c in range(c0, c1):
        for a in range(3):
            for e in range(3):
                gw[c, a, e] = acc[c - c0, a, e]


@_inline_fast
def _dot3(xs, gs, ml, mr):
    """(sum xs[u] g[u] ml[u], sum xs[u+1] g[u], sum xs[u+2] g[u] mr[u]) over u < len(gs):
    the three taps of one tap row, in the slices' dtype."""
    s0 = s1 = s2 = gs.dtype.type(0)
    x0, x1, x2 = xs[0:], xs[1:], xs[2:]
    for u in range(gs.shape[0]):
        gv = gs[u]
        s0 += x0[u] * (gv * ml[u])
        s1 += x1[u] * gv
        s2 += x2[u] * (gv * mr[u])
    return s0, s1, s2


def dw3x3_nhwc_fwd(x, w, out, n0, n1, bias, has_b):
    """Channels-last 3x3 depthwise convolution, stride 1, padding 1 (no padded copy): for
    images n0 <= b < n1, out[b, i, j, c] = bias[c] + sum of the taps inside the image of
    x[b, i+a-1, j+e-1, c] * w[a, e, c], vectorized along channels and grouped as in
    :func:`dw3x3_fwd` (bias, then one group per tap row), so both layouts give the same
    values."""
    h, wd, c = x.shape[1], x.shape[2], x.shape[3]
    b0 = np.zeros(c, out.dtype)
    if has_b:
        b0[:] = bias[:c]
    w9 = w.reshape(9, c)
    for b in range(n0, n1):
        for i in range(h):
            top = i >= 1
            bot = i < h - 1
            if top and bot and wd >= 3:  # the row's interior pixels
                r0, r1, r2 = x[b, i - 1], x[b, i], x[b, i + 1]
                orow = out[b, i]
                # indexing three row arrays and one weight array (not 18 slices) keeps the
                # aliasing checks LLVM needs to vectorize the channel loop within its limit
                for j in range(1, wd - 1):
                    o = orow[j]
                    for k in range(c):
                        o[k] = (
                            b0[k]
                            + (
                                r0[j - 1, k] * w9[0, k]
                                + r0[j, k] * w9[1, k]
                                + r0[j + 1, k] * w9[2, k]
                            )
                            + (
                                r1[j - 1, k] * w9[3, k]
                                + r1[j, k] * w9[4, k]
                                + r1[j + 1, k] * w9[5, k]
                            )
                            + (
                                r2[j - 1, k] * w9[6, k]
                                + r2[j, k] * w9[7, k]
                                + r2[j + 1, k] * w9[8, k]
                            )
                        )
            for j in range(wd):
                lft = j >= 1
                rgt = j < wd - 1
                if top and bot and lft and rgt:
                    continue
                o = out[b, i, j]
                for k in range(c):
                    o[k] = b0[k]
                for a in range(3):
                    if (a == 0 and not top) or (a == 2 and not bot):
                        continue
                    xr = x[b, i + a - 1]
                    e0 = 0 if lft else 1
                    e1 = 3 if rgt else 2
                    for k in range(c):
                        s = xr[j + e0 - 1, k] * w[a, e0, k]
                        for e in range(e0 + 1, e1):
                            s = s + xr[j + e - 1, k] * w[a, e, k]
                        o[k] = o[k] + s


def dw3x3_nhwc_grad_weight(x, g, gw, n0, n1):
    """gw[a, e, c] (float64, zeroed by the caller; one partial sum per image block) += sum
    over images n0 <= b < n1 and pixels of x[b, i+a-1, j+e-1, c] * g[b, i, j, c] for taps
    inside the image (3x3, stride 1, padding 1, channels last). Each output row's products
    are summed in the input's dtype (along channels in vector lanes), rows in float64."""
    h, wd, c = x.shape[1], x.shape[2], x.shape[3]
    acc = np.empty((3, 3, c), g.dtype)
    for b in range(n0, n1):
        for i in range(h):
            _zero(acc.reshape(acc.size))
            for a in range(3):
                r = i + a - 1
                if r < 0 or r >= h:
                    continue
                xr = x[b, r]
                gr = g[b, i]
                for e in range(3):
                    ac = acc[a, e]
                    j0 = 1 if e == 0 else 0
                    j1 = wd - 1 if e == 2 else wd
                    for j in range(j0, j1):
                        xs = xr[j + e - 1]
                        gs = gr[j]
                        for k in range(c):
                            ac[k] += xs[k] * gs[k]
            for a in range(3):
                for e in range(3):
                    for k in range(c):
                        gw[a, e, k] += np.float64(acc[a, e, k])


# -- few input channels (a network's first layer): direct loops over channel planes ----------
# Per image, in "wide rows": output pixel (y, x) sits at y * Wp + x of a plane-wide row of
# L = (Ho - 1) * Wp + Wo elements, so each tap (i, j) reads one contiguous run of the flat
# padded plane starting at i * dh * Wp + j * dw: long vectorized loops (per output row they
# were 28-element loops, slower than the im2col GEMM they replaced).
def conv_planes_fwd(xpl, w, out, dh, dw, scratch):
    """``out`` (N, Ho, Wo, O) = the stride-1 convolution of zero-padded planes ``xpl``
    (C, N, Hp, Wp) with ``w`` (O, C, kh, kw), dilation (``dh``, ``dw``). One unit per image:
    every tap's wide run times each output channel's weight, accumulated over (c, i, j) in
    order into ``scratch[thread]`` (O, >= L), then the valid pixels written into the NHWC
    image. (The im2col GEMM of such a layer has K = C*kh*kw of ~25 and a handful of output
    channels: a BLAS call runs it at a few GFLOP/s.)"""
    o_, c_, kh, kw = w.shape
    n = out.shape[0]
    ho = out.shape[1]
    wo = out.shape[2]
    hp = xpl.shape[2]
    wp = xpl.shape[3]
    ln = (ho - 1) * wp + wo
    for b in prange(n):
        acc = scratch[get_thread_id()]
        for o in range(o_):
            a = acc[o, :ln]
            for q in range(ln):
                a[q] = 0.0
        for c in range(c_):
            plane = xpl[c, b].reshape(hp * wp)
            for i in range(kh):
                for j in range(kw):
                    off = i * dh * wp + j * dw
                    src = plane[off : off + ln]
                    for o in range(o_):
                        wv = w[o, c, i, j]
                        a = acc[o, :ln]
                        for q in range(ln):
                            a[q] += wv * src[q]
        # channel by channel over each row's contiguous run of the accumulator (the strided
        # stores into the NHWC image, not a 6-long inner loop per pixel: 536 -> 406 us for
        # LeNet's 64x1x28x28 -> 6 5x5 first layer)
        img = out[b].reshape(ho * wo * o_)
        for y in range(ho):
            for o in range(o_):
                ao = acc[o, y * wp : y * wp + wo]
                for x in range(wo):
                    img[(y * wo + x) * o_ + o] = ao[x]


def conv_planes_grad_weight(xpl, g, parts, dh, dw, scratch):
    """``parts[b]`` (O, C, kh, kw; float64) = image ``b``'s share of the weight gradient of
    the convolution of :func:`conv_planes_fwd`, from its NHWC output gradient ``g`` (N, Ho,
    Wo, O); one unit per image (the caller adds ``parts`` over images in order). The image's
    gradient is laid out in wide rows in ``scratch[thread]`` (O, >= L; zeros between rows),
    then dotted with every tap's wide run in float64: the sums over a batch's pixels cancel
    (float32 lanes measured 2.7e-5 off on a weight gradient of magnitude 60)."""
    o_, c_, kh, kw = parts.shape[1:]
    n = g.shape[0]
    ho = g.shape[1]
    wo = g.shape[2]
    hp = xpl.shape[2]
    wp = xpl.shape[3]
    ln = (ho - 1) * wp + wo
    for b in prange(n):
        gt = scratch[get_thread_id()]
        for o in range(o_):
            a = gt[o, :ln]
            for q in range(ln):
                a[q] = 0.0
        gi = g[b]
        for y in range(ho):
            gr = gi[y]
            for x in range(wo):
                for o in range(o_):
                    gt[o, y * wp + x] = gr[x, o]
        pb = parts[b]
        for c in range(c_):
            plane = xpl[c, b].reshape(hp * wp)
            for i in range(kh):
                for j in range(kw):
                    off = i * dh * wp + j * dw
                    src = plane[off : off + ln]
                    for o in range(o_):
                        pb[o, c, i, j] = _dot64(gt[o, :ln], src)


# -- channels-last depthwise convolutions, any kernel size, stride and dilation ---------------
# Conv outputs are channels-last, so a strided depthwise conv after a 1x1 one (MobileNet's
# downsampling blocks) gets NHWC memory: these loops read it in place (no padded copy, no
# transposed copy), vectorized along channels. Work is split over rows of the output (or of
# the input gradient) across all images, ``r0 <= row < r1`` of the flattened (image, row)
# index, so that single images split over threads too; every row is written by one block.
# Sums are grouped as in :func:`dw_planes_fwd`: bias, then one group per tap row.
def dw_nhwc_fwd(x, w, out, r0, r1, sh, sw, t, l, dh, dw, bias, has_b):
    """out[b, i, j, c] = bias[c] + sum over taps (a, e) inside the image of
    x[b, i*sh - t + a*dh, j*sw - l + e*dw, c] * w[a, e, c] (NHWC ``x``, ``out``; ``w``
    (kh, kw, C)) for the flattened output rows r0 <= b*Ho + i < r1."""
    h, wd, c = x.shape[1], x.shape[2], x.shape[3]
    ho, wo = out.shape[1], out.shape[2]
    kh, kw = w.shape[0], w.shape[1]
    b0 = np.zeros(c, out.dtype)
    if has_b:
        b0[:] = bias[:c]
    s = np.empty(c, out.dtype)
    for row in range(r0, r1):
        b = row // ho
        i = row - b * ho
        orow = out[b, i]
        for j in range(wo):
            o = orow[j]
            for k in range(c):
                o[k] = b0[k]
            q0 = j * sw - l
            # taps e0 <= e < e1 fall inside the row
            e0 = 0
            while e0 < kw and q0 + e0 * dw < 0:
                e0 += 1
            e1 = kw
            while e1 > e0 and q0 + (e1 - 1) * dw >= wd:
                e1 -= 1
            if e0 >= e1:
                continue
            r0_ = i * sh - t
            if kh == 3 and kw == 3 and e0 == 0 and e1 == 3 and r0_ >= 0 and r0_ + 2 * dh < h:
                # an interior 3x3 window: the nine taps in one pass over the channels (the
                # sum grouped per tap row as below: the same bits)
                xa, xb_, xc = x[b, r0_], x[b, r0_ + dh], x[b, r0_ + 2 * dh]
                a0, a1, a2 = xa[q0], xa[q0 + dw], xa[q0 + 2 * dw]
                m0, m1, m2 = xb_[q0], xb_[q0 + dw], xb_[q0 + 2 * dw]
                c0, c1, c2 = xc[q0], xc[q0 + dw], xc[q0 + 2 * dw]
                wa0, wa1, wa2 = w[0, 0], w[0, 1], w[0, 2]
                wb0, wb1, wb2 = w[1, 0], w[1, 1], w[1, 2]
                wc0, wc1, wc2 = w[2, 0], w[2, 1], w[2, 2]
                for k in range(c):
                    v = o[k] + (a0[k] * wa0[k] + a1[k] * wa1[k] + a2[k] * wa2[k])
                    v = v + (m0[k] * wb0[k] + m1[k] * wb1[k] + m2[k] * wb2[k])
                    o[k] = v + (c0[k] * wc0[k] + c1[k] * wc1[k] + c2[k] * wc2[k])
                continue
            for a in range(kh):
                r = i * sh - t + a * dh
                if r < 0 or r >= h:
                    continue
                xr = x[b, r]
                wa = w[a]
                if e0 == 0 and e1 == 3:  # a full row of three taps: one pass
                    x0, x1, x2 = xr[q0], xr[q0 + dw], xr[q0 + 2 * dw]
                    w0, w1, w2 = wa[0], wa[1], wa[2]
                    for k in range(c):
                        o[k] = o[k] + (x0[k] * w0[k] + x1[k] * w1[k] + x2[k] * w2[k])
                    continue
                xs = xr[q0 + e0 * dw]
                we = wa[e0]
                for k in range(c):
                    s[k] = xs[k] * we[k]
                for e in range(e0 + 1, e1):
                    xs = xr[q0 + e * dw]
                    we = wa[e]
                    for k in range(c):
                        s[k] = s[k] + xs[k] * we[k]
                for k in range(c):
                    o[k] = o[k] + s[k]


def dw_nhwc_grad_input(g, w, gx, r0, r1, sh, sw, t, l, dh, dw):
    """gx[b, y, u, c] (overwritten) = sum over the output pixels (i, j) and taps (a, e) with
    i*sh - t + a*dh = y and j*sw - l + e*dw = u of g[b, i, j, c] * w[a, e, c], for the
    flattened input rows r0 <= b*H + y < r1 (NHWC ``g``, ``gx``; ``w`` (kh, kw, C)): each
    input pixel gathers its taps, so nothing is zeroed or scattered."""
    h, wd, c = gx.shape[1], gx.shape[2], gx.shape[3]
    ho, wo = g.shape[1], g.shape[2]
    kh, kw = w.shape[0], w.shape[1]
    for row in range(r0, r1):
        b = row // h
        y = row - b * h
        grow = gx[b, y]
        for u in range(wd):
            o = grow[u]
            for k in range(c):
                o[k] = 0
            for a in range(kh):
                vi = y + t - a * dh
                if vi < 0 or vi % sh != 0 or vi // sh >= ho:
                    continue
                gr = g[b, vi // sh]
                wa = w[a]
                for e in range(kw):
                    vj = u + l - e * dw
                    if vj < 0 or vj % sw != 0 or vj // sw >= wo:
                        continue
                    gs = gr[vj // sw]
                    we = wa[e]
                    for k in range(c):
                        o[k] = o[k] + gs[k] * we[k]


def dw_nhwc_grad_weight(x, g, gw, r0, r1, sh, sw, t, l, dh, dw):
    """gw[a, e, c] (float64; the caller zeroes it, one partial per block of rows) += sum over
    the flattened output rows r0 <= b*Ho + i < r1 and their pixels of
    x[b, i*sh - t + a*dh, j*sw - l + e*dw, c] * g[b, i, j, c], taps inside the image only.
    Each row's products are summed in the input's dtype (channels in vector lanes), rows in
    float64."""
    h, wd, c = x.shape[1], x.shape[2], x.shape[3]
    ho, wo = g.shape[1], g.shape[2]
    kh, kw = gw.shape[0], gw.shape[1]
    acc = np.empty((kh, kw, c), g.dtype)
    for row in range(r0, r1):
        b = row // ho
        i = row - b * ho
        _zero(acc.reshape(acc.size))
        gr = g[b, i]
        for a in range(kh):
            r = i * sh - t + a * dh
            if r < 0 or r >= h:
                continue
            xr = x[b, r]
            for e in range(kw):
                ac = acc[a, e]
                off = e * dw - l
                # output columns j whose tap column j*sw + off is inside the row
                j0 = 0 if off >= 0 else (-off + sw - 1) // sw
                j1 = min(wo, (wd - 1 - off) // sw + 1) if wd - 1 - off >= 0 else 0
                for j in range(j0, j1):
                    xs = xr[j * sw + off]
                    gs = gr[j]
                    for k in range(c):
                        ac[k] += xs[k] * gs[k]
        for a in range(kh):
            for e in range(kw):
                for k in range(c):
                    gw[a, e, k] += np.float64(acc[a, e, k])
