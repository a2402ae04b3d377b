"""Loop kernels for convolutions on channel planes (compiled by numba through
:mod:`ember.backends.jit`).

Depthwise convolutions of NCHW inputs run here plane by plane, with no transposed copy of
the input. For stride 1 a plane is copied into a zero-padded scratch plane (Hp, Wp) and the
output is computed in "wide rows": output pixel (i, j) sits at i*Wp + j of a flat buffer of
L = (Ho-1)*Wp + Wo elements, and kernel offset (a, e) adds the scratch plane shifted by
a*dh*Wp + e*dw times one weight, one long contiguous loop that vectorizes (loops over single
rows of 32 elements, or with possibly negative indices, measured 3-10x slower). Strided
convolutions walk output rows instead.

Every kernel takes a range ``c0:c1`` of input channels so that callers can split channels
over threads: channels are independent, so the split never changes a result. ``m`` is the
channel multiplier (output channel ``c*m + q`` reads input channel ``c``); ``t`` and ``l``
are the top and left padding (negative: cropping).
"""

import numpy as np

__all__ = [
    "dw_planes_fwd",
    "dw_planes_grad_input",
    "dw_planes_grad_weight",
]


def dw_planes_fwd(x, w, out, m, c0, c1, sh, sw, t, l, dh, dw):
    """out[n, c*m+q, i, j] = sum_{a, e} x[n, c, i*sh - t + a*dh, j*sw - l + e*dw] *
    w[c*m+q, a, e] for input channels c0 <= c < c1 (reads outside the input are zeros)."""
    n, _, h, wi = x.shape
    ho, wo = out.shape[2], out.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    hp = (ho - 1) * sh + (kh - 1) * dh + 1
    wp = (wo - 1) * sw + (kw - 1) * dw + 1
    xp = np.empty((hp, wp), x.dtype)
    xf = xp.reshape(hp * wp)
    ln = (ho - 1) * wp + wo
    acc = np.empty(ln, out.dtype)
    for b in range(n):
        for c in range(c0, c1):
            # the plane, zero-padded (t, l may be negative: cropping); interior by slices
            xp[...] = 0
            ya, yb = max(0, t), min(hp, h + t)
            ua, ub = max(0, l), min(wp, wi + l)
            if ya < yb and ua < ub:
                xp[ya:yb, ua:ub] = x[b, c, ya - t : yb - t, ua - l : ub - l]
            for q in range(m):
                oc = c * m + q
                if sh == 1 and sw == 1:
                    for p in range(ln):
                        acc[p] = 0
                    for a in range(kh):
                        for e in range(kw):
                            wv = w[oc, a, e]
                            base = a * dh * wp + e * dw
                            xs = xf[base : base + ln]
                            for p in range(ln):
                                acc[p] += xs[p] * wv
                    for i in range(ho):
                        out[b, oc, i] = acc[i * wp : i * wp + wo]
                else:
                    for i in range(ho):
                        orow = out[b, oc, i]
                        for j in range(wo):
                            orow[j] = 0
                        for a in range(kh):
                            xr = xp[i * sh + a * dh]
                            for e in range(kw):
                                wv = w[oc, a, e]
                                xs = xr[e * dw : e * dw + (wo - 1) * sw + 1 : sw]
                                for j in range(wo):
                                    orow[j] += xs[j] * wv


def dw_planes_grad_input(g, w, gx, m, c0, c1, sh, sw, t, l, dh, dw):
    """gx[n, c] (input channels c0 <= c < c1; overwritten) = the transposed depthwise
    convolution of g: each output pixel's gradient times the weights, added back to the
    input pixels its window read."""
    n, _, h, wi = gx.shape
    ho, wo = g.shape[2], g.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    # the padded input grid that the forward's windows cover, accumulated, then cropped
    hp = max((ho - 1) * sh + (kh - 1) * dh + 1, h + t)
    wp = max((wo - 1) * sw + (kw - 1) * dw + 1, wi + l)
    gp = np.empty((hp, wp), gx.dtype)
    gf = gp.reshape(hp * wp)
    ln = (ho - 1) * wp + wo
    gw_ = np.empty(ln, gx.dtype)
    for b in range(n):
        for c in range(c0, c1):
            for p in range(hp * wp):
                gf[p] = 0
            for q in range(m):
                oc = c * m + q
                if sh == 1 and sw == 1:
                    # g in wide layout (junk columns zero), then each offset adds a shifted copy
                    for p in range(ln):
                        gw_[p] = 0
                    for i in range(ho):
                        gw_[i * wp : i * wp + wo] = g[b, oc, i]
                    for a in range(kh):
                        for e in range(kw):
                            wv = w[oc, a, e]
                            base = a * dh * wp + e * dw
                            ds = gf[base : base + ln]
                            for p in range(ln):
                                ds[p] += gw_[p] * wv
                else:
                    for i in range(ho):
                        grow = g[b, oc, i]
                        for a in range(kh):
                            xr = gp[i * sh + a * dh]
                            for e in range(kw):
                                wv = w[oc, a, e]
                                ds = xr[e * dw : e * dw + (wo - 1) * sw + 1 : sw]
                                for j in range(wo):
                                    ds[j] += grow[j] * wv
            for r in range(h):
                y = r + t
                if 0 <= y < hp:
                    for q in range(wi):
                        v = q + l
                        gx[b, c, r, q] = gp[y, v] if 0 <= v < wp else 0
                else:
                    for q in range(wi):
                        gx[b, c, r, q] = 0


def dw_planes_grad_weight(x, g, gw, m, c0, c1, sh, sw, t, l, dh, dw):
    """gw[c*m+q, a, e] (float64; input channels c0 <= c < c1) = sum over images and output
    pixels of x at the pixel's window offset (a, e) times g. Products are summed per output
    position over the images first (in the input's dtype: an elementwise loop that
    vectorizes), then over positions in float64, in a fixed order."""
    n, _, h, wi = x.shape
    ho, wo = g.shape[2], g.shape[3]
    kh, kw = gw.shape[1], gw.shape[2]
    hp = (ho - 1) * sh + (kh - 1) * dh + 1
    wp = (wo - 1) * sw + (kw - 1) * dw + 1
    xp = np.empty((hp, wp), x.dtype)
    xf = xp.reshape(hp * wp)
    ln = (ho - 1) * wp + wo
    gwide = np.zeros(ln, g.dtype)
    acc = np.empty((kh, kw, ln), g.dtype)
    for c in range(c0, c1):
        for q in range(m):
            oc = c * m + q
            acc[...] = 0.0
            for b in range(n):
                # the plane, zero-padded (t, l may be negative: cropping); interior by slices
                xp[...] = 0
                ya, yb = max(0, t), min(hp, h + t)
                ua, ub = max(0, l), min(wp, wi + l)
                if ya < yb and ua < ub:
                    xp[ya:yb, ua:ub] = x[b, c, ya - t : yb - t, ua - l : ub - l]
                for i in range(ho):
                    gwide[i * wp : i * wp + wo] = g[b, oc, i]
                for a in range(kh):
                    for e in range(kw):
                        ac = acc[a, e]
                        if sh == 1 and sw == 1:
                            base = a * dh * wp + e * dw
                            xs = xf[base : base + ln]
                            for p in range(ln):
                                ac[p] += xs[p] * gwide[p]
                        else:
                            for i in range(ho):
                                xr = xp[i * sh + a * dh]
                                xs = xr[e * dw : e * dw + (wo - 1) * sw + 1 : sw]
                                grow = g[b, oc, i]
                                ar = ac[i * wp : i * wp + wo]
                                for j in range(wo):
                                    ar[j] += xs[j] * grow[j]
            for a in range(kh):
                for e in range(kw):
                    s = 0.0
                    ac = acc[a, e]
                    for p in range(ln):
                        s += np.float64(ac[p])
                    gw[oc, a, e] = s
