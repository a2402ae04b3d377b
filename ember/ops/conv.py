"""Convolution primitives: ``conv2d`` and its two backward primitives.

Kernels compute in NHWC internally: the (padded) input is viewed through a zero-copy
``as_strided`` window view, gathered once into an im2col matrix (M = N*Ho*Wo rows,
K = kh*kw*C/groups columns) and multiplied by the weight in one BLAS GEMM per group.
The result is returned as an NCHW-shaped *view* of the NHWC buffer (no transpose copy);
NumPy ufuncs keep that layout, so the next conv reads it back as NHWC for free.

The three primitives form an adjoint family, so gradients of any order exist:

- ``conv2d(x, w)``; VJP: ``conv2d_grad_input(g, w)``, ``conv2d_grad_weight(x, g)``;
- ``conv2d_grad_input(g, w)`` (= transposed convolution); VJP: ``conv2d(gg, w)``,
  ``conv2d_grad_weight(gg, g)``;
- ``conv2d_grad_weight(x, g)``; VJP: ``conv2d_grad_input(g, gg)``, ``conv2d(x, gg)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._core import SAVE_INPUTS, AbstractValue, Primitive, ShapeError, bind

__all__ = ["conv2d_grad_input_p", "conv2d_grad_weight_p", "conv2d_p", "conv_out_size"]


def conv_out_size(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _compute_dtype(a):
    # bf16/f16: compute in float32 and round once (NumPy GEMM on halves is slow).
    if a.dtype.kind == "V" or a.dtype == np.float16:
        return np.float32
    return a.dtype


def _pad_nhwc(x, pad, dtype):
    """``x`` (NCHW, any strides) as a zero-padded NHWC array (a view when pad is 0)."""
    t, b, l, r = pad
    if min(pad) < 0:  # negative padding crops (transposed conv with output_padding)
        h, w = x.shape[2:]
        x = x[:, :, max(-t, 0):h - max(-b, 0), max(-l, 0):w - max(-r, 0)]
        t, b, l, r = (max(p, 0) for p in pad)
    n, c, h, w = x.shape
    xt = x.transpose(0, 2, 3, 1)
    if not (t or b or l or r):
        return xt if xt.dtype == dtype else xt.astype(dtype)
    out = np.empty((n, h + t + b, w + l + r, c), dtype)
    if t:
        out[:, :t] = 0
    if b:
        out[:, h + t:] = 0
    if l:
        out[:, t:t + h, :l] = 0
    if r:
        out[:, t:t + h, w + l:] = 0
    out[:, t:t + h, l:l + w] = xt
    return out


def _windows(xp, kh, kw, stride, dilation, ho, wo, c0=0, cg=None):
    """Zero-copy view (N, Ho, Wo, kh, kw, Cg) of the sliding windows of NHWC ``xp``."""
    n = xp.shape[0]
    c = xp.shape[3] if cg is None else cg
    sn, sh, sw, sc = xp.strides
    base = xp if c0 == 0 and cg is None else xp[..., c0:c0 + c]
    return as_strided(base, (n, ho, wo, kh, kw, c),
                      (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1],
                       sc), writeable=False)


def _im2col(xp, kh, kw, stride, dilation, ho, wo, c0=0, cg=None):
    v = _windows(xp, kh, kw, stride, dilation, ho, wo, c0, cg)
    n, _, _, _, _, c = v.shape
    if kh == 1 and kw == 1 and stride == (1, 1):
        m = v.reshape(n * ho * wo, c)  # a view when xp is NHWC-contiguous
        return m
    cols = np.empty((n, ho, wo, kh, kw, c), v.dtype)
    np.copyto(cols, v)
    return cols.reshape(n * ho * wo, kh * kw * c)


def _w_matrix(w, g, groups, dtype):
    """Weight (O, C/g, kh, kw) of group ``g`` as a (kh*kw*C/g, O/g) GEMM operand."""
    o = w.shape[0] // groups
    wg = w[g * o:(g + 1) * o]
    return wg.transpose(2, 3, 1, 0).reshape(-1, o).astype(dtype, copy=False)


def _g_matrix(g, dtype):
    """Output cotangent (N, O, Ho, Wo) as an NHWC (M, O) matrix (free when NHWC-strided)."""
    n, o, ho, wo = g.shape
    gt = g.transpose(0, 2, 3, 1)
    return gt.reshape(n * ho * wo, o).astype(dtype, copy=False)


def _nchw_view(out2d, n, ho, wo, o, dtype):
    out = out2d.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    return out if out.dtype == dtype else out.astype(dtype)


# -- forward --------------------------------------------------------------------------------
def _conv2d_impl(x, w, b=None, *, stride, padding, dilation, groups):
    dtype = _compute_dtype(x)
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = conv_out_size(h, kh, stride[0], padding[0], padding[1], dilation[0])
    wo = conv_out_size(wd, kw, stride[1], padding[2], padding[3], dilation[1])
    xp = _pad_nhwc(x, padding, dtype)
    og = o // groups
    if groups == 1:
        out = _im2col(xp, kh, kw, stride, dilation, ho, wo) @ _w_matrix(w, 0, 1, dtype)
    else:
        out = np.empty((n * ho * wo, o), dtype)
        for g in range(groups):
            cols = _im2col(xp, kh, kw, stride, dilation, ho, wo, g * cg, cg)
            np.matmul(cols, _w_matrix(w, g, groups, dtype), out=out[:, g * og:(g + 1) * og])
    if b is not None:
        out += b.astype(dtype, copy=False)
    return _nchw_view(out, n, ho, wo, o, x.dtype)


def _conv2d_abstract(x, w, b=None, *, stride, padding, dilation, groups):
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d: expected 4-D input and weight, got input {x.shape} and "
                         f"weight {w.shape}")
    if x.shape[1] != w.shape[1] * groups:
        raise ShapeError(f"conv2d: expected input with {w.shape[1] * groups} channels (weight "
                         f"shape {w.shape}, groups {groups}), got input of shape {x.shape}")
    ho = conv_out_size(x.shape[2], w.shape[2], stride[0], padding[0], padding[1], dilation[0])
    wo = conv_out_size(x.shape[3], w.shape[3], stride[1], padding[2], padding[3], dilation[1])
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"conv2d: input {x.shape} (padding {padding}) is too small for kernel "
                         f"{w.shape[2:]} with dilation {dilation}: output would be {ho}x{wo}")
    return AbstractValue((x.shape[0], w.shape[0], ho, wo), x.dtype)


conv2d_p = Primitive("conv2d", "opaque", impl=_conv2d_impl, abstract=_conv2d_abstract,
                     save=SAVE_INPUTS)


@conv2d_p.def_vjp
def _conv2d_vjp(g, out, x, w, b=None, *, stride, padding, dilation, groups):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    gx = bind(conv2d_grad_input_p, (g, w), dict(p, in_hw=tuple(x.shape[2:]))) \
        if x.requires_grad else None
    gw = bind(conv2d_grad_weight_p, (x, g), dict(p, kernel=tuple(w.shape[2:]))) \
        if w.requires_grad else None
    gb = g.sum((0, 2, 3)) if b is not None and getattr(b, "requires_grad", False) else None
    return gx, gw, gb


# -- grad input (transposed convolution) ---------------------------------------------------------
def _conv2d_grad_input_impl(g, w, *, stride, padding, dilation, groups, in_hw):
    dtype = _compute_dtype(g)
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    c = cg * groups
    h, wd = in_hw
    t, b, l, r = padding
    eh, ew = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    if stride == (1, 1) and max(t, b) <= eh and max(l, r) <= ew:
        # Stride 1: the transposed convolution is a convolution of g with the flipped,
        # in/out-swapped kernel (one im2col + GEMM, no scatter-add loop).
        og = o // groups
        wt = w.reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4)
        wt = wt.reshape(groups * cg, og, kh, kw)[:, :, ::-1, ::-1]
        return _conv2d_impl(g, wt, stride=stride, padding=(eh - t, eh - b, ew - l, ew - r),
                            dilation=dilation, groups=groups)
    hp, wp = h + t + max(b, 0), wd + l + max(r, 0)
    og = o // groups
    gm = _g_matrix(g, dtype)
    gxp = np.zeros((n, hp, wp, c), dtype)
    sh, sw = stride
    dh, dw = dilation
    for gi in range(groups):
        wm = _w_matrix(w, gi, groups, dtype)
        gsl = gm if groups == 1 else gm[:, gi * og:(gi + 1) * og]
        dcols = (gsl @ wm.T).reshape(n, ho, wo, kh, kw, cg)
        csl = slice(gi * cg, (gi + 1) * cg)
        for i in range(kh):
            for j in range(kw):
                hs, ws = i * dh, j * dw
                gxp[:, hs:hs + (ho - 1) * sh + 1:sh, ws:ws + (wo - 1) * sw + 1:sw, csl] += \
                    dcols[:, :, :, i, j, :]
    gx = gxp[:, t:t + h, l:l + wd, :].transpose(0, 3, 1, 2)
    return gx if gx.dtype == g.dtype else gx.astype(g.dtype)


def _conv2d_grad_input_abstract(g, w, *, stride, padding, dilation, groups, in_hw):
    return AbstractValue((g.shape[0], w.shape[1] * groups) + tuple(in_hw), g.dtype)


conv2d_grad_input_p = Primitive("conv2d_grad_input", "opaque", impl=_conv2d_grad_input_impl,
                                abstract=_conv2d_grad_input_abstract, save=SAVE_INPUTS)


@conv2d_grad_input_p.def_vjp
def _conv2d_grad_input_vjp(gg, out, g, w, *, stride, padding, dilation, groups, in_hw):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dg = bind(conv2d_p, (gg, w), p) if g.requires_grad else None
    dw = bind(conv2d_grad_weight_p, (gg, g), dict(p, kernel=tuple(w.shape[2:]))) \
        if w.requires_grad else None
    return dg, dw


# -- grad weight ---------------------------------------------------------------------------------
def _conv2d_grad_weight_impl(x, g, *, stride, padding, dilation, groups, kernel):
    dtype = _compute_dtype(x)
    c = x.shape[1]
    _, o, ho, wo = g.shape
    kh, kw = kernel
    cg, og = c // groups, o // groups
    xp = _pad_nhwc(x, padding, dtype)
    gm = _g_matrix(g, dtype)
    gw = np.empty((o, cg, kh, kw), dtype)
    for gi in range(groups):
        if groups == 1:
            cols, gsl = _im2col(xp, kh, kw, stride, dilation, ho, wo), gm
        else:
            cols = _im2col(xp, kh, kw, stride, dilation, ho, wo, gi * cg, cg)
            gsl = gm[:, gi * og:(gi + 1) * og]
        r = (cols.T @ gsl).reshape(kh, kw, cg, og)  # (K, O/g)
        gw[gi * og:(gi + 1) * og] = r.transpose(3, 2, 0, 1)
    return gw if gw.dtype == x.dtype else gw.astype(x.dtype)


def _conv2d_grad_weight_abstract(x, g, *, stride, padding, dilation, groups, kernel):
    return AbstractValue((g.shape[1], x.shape[1] // groups) + tuple(kernel), x.dtype)


conv2d_grad_weight_p = Primitive("conv2d_grad_weight", "opaque", impl=_conv2d_grad_weight_impl,
                                 abstract=_conv2d_grad_weight_abstract, save=SAVE_INPUTS)


@conv2d_grad_weight_p.def_vjp
def _conv2d_grad_weight_vjp(gg, out, x, g, *, stride, padding, dilation, groups, kernel):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dx = bind(conv2d_grad_input_p, (g, gg), dict(p, in_hw=tuple(x.shape[2:]))) \
        if x.requires_grad else None
    dg = bind(conv2d_p, (x, gg), p) if g.requires_grad else None
    return dx, dg
