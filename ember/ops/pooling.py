"""Pooling primitives: max/avg pooling with their adjoint scatter/gather backward pair."""

from __future__ import annotations

import numpy as np

from .. import _dtype as dt
from ..backends.cpu import FAST_FLOATS
from ._ad import defvjp
from ._core import (
    SAVE_BOTH,
    SAVE_INPUTS,
    SAVE_NONE,
    AbstractValue,
    Primitive,
    ShapeError,
    bind,
)
from ._layout import nchw_to_nhwc
from ._parallel import parallel_kernel


def _f(x, v):
    """A Python float as a scalar of ``x``'s dtype (avoid float64 upcasts)."""
    return x.dtype.type(v)


# =========================================================================================
# Pooling (NCHW; kernels work on any strides, so NHWC-strided conv outputs cost no copy)
# =========================================================================================
def pool_out_size(n, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = n + 2 * p - eff
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:  # last window must start inside input or left pad
        o -= 1
    return o


def _channels_last(a):
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


def _new(shape, dtype, like, zero=False):
    """An (N, C, H, W) array laid out like ``like`` (channels-last for conv outputs): the
    elementwise ops that meet it next (relu's backward) then read both operands in order."""
    alloc = np.zeros if zero else np.empty
    if _channels_last(like):
        n, c, h, w = shape
        return alloc((n, h, w, c), dtype).transpose(0, 3, 1, 2)
    return alloc(shape, dtype)


def _padded(x, ph, pw, hp, wp, fill):
    n, c, h, w = x.shape
    if ph == 0 and pw == 0 and hp == h and wp == w:
        return x
    out = np.full((n, c, hp, wp), fill, x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x[:, :, : hp - ph, : wp - pw]
    return out


def _pool_geometry(x_shape, kernel, stride, padding, dilation, ceil_mode):
    h, w = x_shape[2:]
    ho = pool_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    wo = pool_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    # padded extent that every window fits in
    hp = max(h + 2 * padding[0], (ho - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1)
    wp = max(w + 2 * padding[1], (wo - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1)
    return ho, wo, hp, wp


def _offset_slices(i, j, ho, wo, stride, dilation):
    hs, ws = i * dilation[0], j * dilation[1]
    return (
        slice(None),
        slice(None),
        slice(hs, hs + (ho - 1) * stride[0] + 1, stride[0]),
        slice(ws, ws + (wo - 1) * stride[1] + 1, stride[1]),
    )


def _maxpool2x2(x, ho, wo):
    """2x2/stride-2 max pool. The index is the first maximum in window scan order, as
    PyTorch: the first max of the top row unless the bottom row's max is strictly greater."""
    x = x[:, :, : 2 * ho, : 2 * wo]
    tl, tr = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    bl, br = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    # NOTE: "v > best or isnan(v)" at each scan step, as PyTorch: NaN propagates and the
    # index is the last NaN's
    tsel, bsel = tr > tl, br > bl
    tmax, bmax = np.maximum(tl, tr), np.maximum(bl, br)
    rsel = bmax > tmax
    if x.dtype.kind in "fV":
        tsel |= np.isnan(tr)
        bsel |= np.isnan(br)
        rsel |= np.isnan(bmax)
    idx = np.where(rsel, bsel.view(np.int8) + np.int8(2), tsel.view(np.int8))
    return np.maximum(tmax, bmax, out=tmax), idx.astype(np.int8, copy=False)


_CHANNELS_LAST_ANY = object()  # a _jit_pool ``layout`` that accepts any input layout


def _jit_pool(name, x, layout=None):
    """The compiled pooling kernel for a non-empty float array ``x`` when ``layout`` (default
    ``x``) is channels-last, else None."""
    layout = x if layout is None else layout
    if (
        type(x) is not np.ndarray
        or x.dtype not in FAST_FLOATS
        or x.size == 0
        or (layout is not _CHANNELS_LAST_ANY and not _channels_last(layout))
    ):
        return None
    from ..backends import jit

    return jit.get(name)


def _maxpool_jit(k, x, ho, wo, *window):
    """Run compiled max-pool kernel ``k`` (``k(x, out, idx, *window)`` on channels-last
    arrays) over image blocks on Ember's threads; an NCHW input is transposed first."""
    from ._parallel import parallel_for

    n, c = x.shape[:2]
    xt = x.transpose(0, 2, 3, 1)  # free for channels-last inputs
    xt = xt if xt.flags.c_contiguous else nchw_to_nhwc(x)
    out = np.empty((n, ho, wo, c), x.dtype)
    kk = window[0] * window[1] if window else 4
    idx = np.empty((n, ho, wo, c), np.int8 if kk < 127 else np.int32)
    kp = parallel_kernel("max_pool_nhwc", 2 * x.size * kk) if window else None
    if kp is not None:  # images split over numba's threads
        kp(xt, out, idx, *window)
        return out.transpose(0, 3, 1, 2), idx.transpose(0, 3, 1, 2)

    def block(a, b, slot):
        k(xt[a:b], out[a:b], idx[a:b], *window)

    parallel_for(n, max(1, -(-n // 8)), block, 2 * x.size * kk)
    return out.transpose(0, 3, 1, 2), idx.transpose(0, 3, 1, 2)


def _planes_blocks(p, work, fn):
    """``fn(a, b)`` over blocks of the ``p`` planes of an NCHW array, on Ember's threads."""
    from ._parallel import parallel_for

    parallel_for(p, max(1, -(-p // 8)), lambda a, b, slot: fn(a, b), work)


def _maxpool_planes(k, x, ho, wo):
    """The compiled 2x2 max pool of a C-contiguous NCHW ``x`` on its planes: NCHW output
    and indices, no layout change."""
    n, c, h, w = x.shape
    xp = x.reshape(n * c, h, w)
    out = np.empty((n, c, ho, wo), x.dtype)
    idx = np.empty((n, c, ho, wo), np.int8)
    o3, i3 = out.reshape(n * c, ho, wo), idx.reshape(n * c, ho, wo)
    _planes_blocks(n * c, 8 * x.size, lambda a, b: k(xp[a:b], o3[a:b], i3[a:b]))
    return out, idx


# The general compiled kernel vectorizes over channels: worth it from about this many.
_JIT_POOL_MIN_C = 16


def _is_2x2(kernel, stride, padding, dilation):
    return kernel == stride == (2, 2) and padding == (0, 0) and dilation == (1, 1)


def _maxpool_impl(x, *, kernel, stride, padding, dilation, ceil_mode):
    ho, wo, hp, wp = _pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    tiled_2x2 = (
        _is_2x2(kernel, stride, padding, dilation) and 2 * ho <= x.shape[2] and 2 * wo <= x.shape[3]
    )
    k = _jit_pool("max_pool2x2_nhwc", x) if tiled_2x2 else None
    if k is not None:
        return _maxpool_jit(k, x, ho, wo)
    k = _jit_pool("max_pool2x2_planes", x, _CHANNELS_LAST_ANY) if tiled_2x2 else None
    if k is not None and x.flags.c_contiguous:
        return _maxpool_planes(k, x, ho, wo)
    if x.shape[1] >= _JIT_POOL_MIN_C:
        # any window, any input layout (an NCHW input is transposed for the kernel)
        k = _jit_pool("max_pool_nhwc", x, _CHANNELS_LAST_ANY)
        if k is not None:
            return _maxpool_jit(k, x, ho, wo, *kernel, *stride, *padding, *dilation)
    if tiled_2x2:
        return _maxpool2x2(x, ho, wo)
    fill = -np.inf if x.dtype.kind in "fV" else np.iinfo(x.dtype).min
    xp = _padded(x, padding[0], padding[1], hp, wp, fill)
    kh, kw = kernel
    v = xp[_offset_slices(0, 0, ho, wo, stride, dilation)]
    best = v.copy(order="K")  # keeps the input's memory layout (CNHW from a conv)
    idx = np.zeros_like(best, dtype=np.int8 if kh * kw < 127 else np.int32)
    m = np.empty_like(best, dtype=np.bool_)
    for i in range(kh):
        for j in range(kw):
            if i == 0 and j == 0:
                continue
            v = xp[_offset_slices(i, j, ho, wo, stride, dilation)]
            np.greater(v, best, out=m)
            if v.dtype.kind in "fV":  # NaN propagates, its index the last NaN's (PyTorch)
                m |= np.isnan(v)
            np.maximum(best, v, out=best)
            np.copyto(idx, i * kw + j, where=m)
    if padding != (0, 0):
        # a window whose values are all the fill (-inf): PyTorch's index is the window's first
        # position inside the input, never one in the padding (its gradient lands there)
        first = _first_inside(ho, stride[0], padding[0], dilation[0], kh)[:, None] * kw
        first = first + _first_inside(wo, stride[1], padding[1], dilation[1], kw)[None, :]
        np.copyto(idx, first.astype(idx.dtype), where=best == fill)
    return best, idx


def _first_inside(no, s, p, d, k):
    """The window offset of the first input position (not padding) of each of ``no`` output
    positions along one axis (0 where the window lies in the padding alone)."""
    a = np.maximum(0, -(-(p - np.arange(no) * s) // d))
    return np.where(a < k, a, 0)


def _pool_abstract_factory(name):
    def rule(x, *args, kernel, stride, padding, dilation=(1, 1), ceil_mode=False, **kw):
        if x.ndim != 4:
            raise ShapeError(f"{name}: expected a 4-D (N, C, H, W) input, got {x.shape}")
        ho, wo, _, _ = _pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
        if ho <= 0 or wo <= 0:
            raise ShapeError(
                f"{name}: input {x.shape} is too small for kernel {kernel} "
                f"(padding {padding}, dilation {dilation}): output {ho}x{wo}"
            )
        return AbstractValue(x.shape[:2] + (ho, wo), x.dtype)

    return rule


_maxpool_out_abs = _pool_abstract_factory("max_pool2d")


def _maxpool_abstract(x, **p):
    out = _maxpool_out_abs(x, **p)
    k = p["kernel"][0] * p["kernel"][1]
    return out, AbstractValue(out.shape, dt.int8 if k < 127 else dt.int32)


max_pool2d_p = Primitive(
    "max_pool2d", "opaque", impl=_maxpool_impl, n_out=2, abstract=_maxpool_abstract, save=SAVE_BOTH
)


@defvjp(max_pool2d_p)
def _maxpool_vjp(g, out, x, *, kernel, stride, padding, dilation, ceil_mode):
    idx = out[1]
    p = {
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "in_shape": tuple(x.shape),
        "ceil_mode": ceil_mode,
    }
    return (bind(max_pool2d_scatter_p, (g[0], idx), p),)


def _scatter_jit(k, g, idx, in_shape, zero, area, *window):
    """Run compiled scatter kernel ``k`` (``k(g, idx, gx, *window)``, channels-last) over
    image blocks; returns the (N, C, H, W)-shaped channels-last input gradient."""
    from ._parallel import parallel_for

    n, c, h, w = in_shape
    it = idx.transpose(0, 2, 3, 1)
    if window and not g.transpose(0, 2, 3, 1).flags.c_contiguous:
        # an NCHW gradient (the loss's, not a conv's): read in place and write an NCHW
        # input gradient, where transposed copies both ways cost 2-5x the scatter itself
        kp = parallel_kernel("max_pool_scatter_nhwc", 2 * g.size * area)
        if kp is not None:
            gx = np.zeros((n, c, h, w), g.dtype)
            kp(g.transpose(0, 2, 3, 1), it, gx.transpose(0, 2, 3, 1), *window)
            return gx
    gx = (np.zeros if zero else np.empty)((n, h, w, c), g.dtype)
    gt = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    kp = parallel_kernel("max_pool_scatter_nhwc", 2 * g.size * area) if window else None
    if kp is not None:
        kp(gt, it, gx, *window)
        return gx.transpose(0, 3, 1, 2)

    def block(a, b, slot):
        k(gt[a:b], it[a:b], gx[a:b], *window)

    parallel_for(n, max(1, -(-n // 8)), block, 2 * g.size * area)
    return gx.transpose(0, 3, 1, 2)


def _maxpool_scatter_impl(g, idx, *, kernel, stride, padding, dilation, in_shape, ceil_mode):
    n, c, h, w = in_shape
    ho, wo = g.shape[2:]
    # compiled kernels read the forward's channels-last indices
    if _is_2x2(kernel, stride, padding, dilation) and 2 * ho <= h and 2 * wo <= w:
        k = _jit_pool("max_pool2x2_scatter_nhwc", g, idx)
        if k is not None:  # writes every cell of the 2x2 windows: zeros only for the rest
            return _scatter_jit(k, g, idx, in_shape, (h, w) != (2 * ho, 2 * wo), 4)
        k = _jit_pool("max_pool2x2_scatter_planes", g, _CHANNELS_LAST_ANY)
        if k is not None and idx.flags.c_contiguous and idx.dtype == np.int8:
            # the NCHW indices of _maxpool_planes: an NCHW gradient
            p = n * c
            gx = (np.zeros if (h, w) != (2 * ho, 2 * wo) else np.empty)((n, c, h, w), g.dtype)
            g3 = np.ascontiguousarray(g).reshape(p, ho, wo)
            i3, x3 = idx.reshape(p, ho, wo), gx.reshape(p, h, w)
            _planes_blocks(p, 8 * gx.size, lambda a, b: k(g3[a:b], i3[a:b], x3[a:b]))
            return gx
    if c >= _JIT_POOL_MIN_C:
        k = _jit_pool("max_pool_scatter_nhwc", g, idx)
        if k is not None:
            return _scatter_jit(
                k,
                g,
                idx,
                in_shape,
                True,
                kernel[0] * kernel[1],
                kernel[1],
                *stride,
                *padding,
                *dilation,
            )
    _, _, hp, wp = _pool_geometry(in_shape, kernel, stride, padding, dilation, ceil_mode)
    kh, kw = kernel
    tiled = (
        stride == kernel
        and dilation == (1, 1)
        and padding == (0, 0)
        and hp == h
        and wp == w
        and ho * kh == h
        and wo * kw == w
    )
    if tiled:  # non-overlapping windows covering the input: each cell written exactly once
        gx = _new((n, c, hp, wp), g.dtype, idx)
        m = np.empty_like(idx, dtype=np.bool_)
        for i in range(kh):
            for j in range(kw):
                np.equal(idx, i * kw + j, out=m)
                np.multiply(g, m, out=gx[_offset_slices(i, j, ho, wo, stride, dilation)])
        return gx
    gx = _new((n, c, hp, wp), g.dtype, idx, zero=True)
    zero = g.dtype.type(0)
    for i in range(kh):
        for j in range(kw):
            gx[_offset_slices(i, j, ho, wo, stride, dilation)] += np.where(
                idx == i * kw + j, g, zero
            )
    return gx[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w]


max_pool2d_scatter_p = Primitive(
    "max_pool2d_scatter",
    "opaque",
    impl=_maxpool_scatter_impl,
    save=SAVE_INPUTS,
    abstract=lambda g, idx, *, in_shape, **kw: AbstractValue(in_shape, g.dtype),
)


@defvjp(max_pool2d_scatter_p)
def _maxpool_scatter_vjp(gg, out, g, idx, **p):
    p = {k: v for k, v in p.items() if k != "in_shape"}
    return bind(max_pool2d_gather_p, (gg, idx), p), None


def _maxpool_gather_impl(x, idx, *, kernel, stride, padding, dilation, ceil_mode):
    ho, wo = idx.shape[2:]
    _, _, hp, wp = _pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    xp = _padded(x, padding[0], padding[1], hp, wp, 0)
    out = np.zeros(idx.shape, x.dtype)
    kh, kw = kernel
    for i in range(kh):
        for j in range(kw):
            np.copyto(
                out, xp[_offset_slices(i, j, ho, wo, stride, dilation)], where=idx == i * kw + j
            )
    return out


max_pool2d_gather_p = Primitive(
    "max_pool2d_gather",
    "opaque",
    impl=_maxpool_gather_impl,
    save=SAVE_INPUTS,
    abstract=lambda x, idx, **kw: AbstractValue(idx.shape, x.dtype),
)


@defvjp(max_pool2d_gather_p)
def _maxpool_gather_vjp(gg, out, x, idx, **p):
    return bind(max_pool2d_scatter_p, (gg, idx), dict(p, in_shape=tuple(x.shape))), None


def _flat_indices_impl(idx, *, kernel, stride, padding, dilation, in_shape):
    """Window offsets -> PyTorch's flat indices into each input plane (H*W)."""
    w = in_shape[3]
    ho, wo = idx.shape[2:]
    kw = kernel[1]
    i = idx.astype(np.int64) // kw
    j = idx.astype(np.int64) % kw
    rows = (np.arange(ho) * stride[0] - padding[0])[:, None] + i * dilation[0]
    cols = (np.arange(wo) * stride[1] - padding[1])[None, :] + j * dilation[1]
    return rows * w + cols


max_pool2d_indices_p = Primitive(
    "max_pool2d_indices",
    "opaque",
    impl=_flat_indices_impl,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda idx, **kw: AbstractValue(idx.shape, dt.int64),
)


def _avg_divisor(
    in_hw, ho, wo, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, dtype
):
    if divisor_override:
        return dtype.type(divisor_override)
    divs = []
    for n, o, k, s, p in zip(in_hw, (ho, wo), kernel, stride, padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        size = end - start
        if not count_include_pad:
            size = np.minimum(end, n) - np.maximum(start, 0)
        divs.append(size)
    return np.multiply.outer(divs[0], divs[1]).astype(dtype)


def _avgpool_impl(
    x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, in_hw
):
    ho, wo, hp, wp = _pool_geometry(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    if (
        not divisor_override
        and _is_2x2(kernel, stride, padding, (1, 1))
        and 2 * ho <= x.shape[2]
        and 2 * wo <= x.shape[3]
        and type(x) is np.ndarray
        and x.flags.c_contiguous
    ):  # the tiling 2x2 pool of NCHW planes: one compiled pass
        k = _jit_pool("avg_pool2x2_planes", x, _CHANNELS_LAST_ANY)
        if k is not None:
            n, c, h, w = x.shape
            out = np.empty((n, c, ho, wo), x.dtype)
            xp3, o3 = x.reshape(n * c, h, w), out.reshape(n * c, ho, wo)
            _planes_blocks(n * c, 4 * x.size, lambda a, b: k(xp3[a:b], o3[a:b]))
            return out
    xp = _padded(x, padding[0], padding[1], hp, wp, 0)
    acc = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            v = xp[_offset_slices(i, j, ho, wo, stride, (1, 1))]
            if acc is None:
                acc = v.copy()
            else:
                acc += v
    acc /= _avg_divisor(
        x.shape[2:],
        ho,
        wo,
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        x.dtype,
    )
    return acc


# ``in_hw`` (the input's spatial size) is a param so the VJP needs no saved array (SAVE_NONE)
avg_pool2d_p = Primitive(
    "avg_pool2d",
    "opaque",
    impl=_avgpool_impl,
    save=SAVE_NONE,
    abstract=_pool_abstract_factory("avg_pool2d"),
)


@defvjp(avg_pool2d_p)
def _avgpool_vjp(g, out, x, **p):
    return (bind(avg_pool2d_grad_p, (g,), dict(p, in_shape=tuple(g.shape[:2]) + p["in_hw"])),)


def _avgpool_grad_impl(
    g, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, in_hw, in_shape
):
    n, c, h, w = in_shape
    ho, wo, hp, wp = _pool_geometry(in_shape, kernel, stride, padding, (1, 1), ceil_mode)
    if (
        tuple(kernel) == tuple(stride)
        and not any(padding)
        and (h, w) == (ho * kernel[0], wo * kernel[1])
        and g.ndim == 4
    ):
        return _avgpool_grad_tiled(g, kernel, divisor_override, in_shape)
    gd = g / _avg_divisor(
        (h, w),
        ho,
        wo,
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        g.dtype,
    )
    gx = np.zeros((n, c, hp, wp), g.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            gx[_offset_slices(i, j, ho, wo, stride, (1, 1))] += gd
    return gx[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w]


def _avgpool_grad_tiled(g, kernel, divisor_override, in_shape):
    """The gradient of an average pool whose windows tile the input exactly (kernel ==
    stride, no padding: the common 2x2/2 case): each input pixel gets its window's gradient
    divided by the window size (no zero fill, no adds), in the gradient's layout
    (channels-last stays channels-last): NCHW planes by the compiled kernel, else one
    broadcast copy."""
    n, c, h, w = in_shape
    kh, kw = kernel
    ho, wo = h // kh, w // kw
    div = g.dtype.type(divisor_override if divisor_override else kh * kw)
    if g.transpose(0, 2, 3, 1).flags.c_contiguous and not g.flags.c_contiguous:
        gx = np.empty((n, h, w, c), g.dtype)
        src = (g / div).transpose(0, 2, 3, 1)[:, :, None, :, None, :]
        gx.reshape(n, ho, kh, wo, kw, c)[...] = src
        return gx.transpose(0, 3, 1, 2)
    gx = np.empty((n, c, h, w), g.dtype)
    k = _jit_pool("avg_pool_tiled_grad", g, _CHANNELS_LAST_ANY)
    if k is not None:
        k = parallel_kernel("avg_pool_tiled_grad", 2 * gx.size) or k
        k(g, gx, kh, kw, div)
        return gx
    # (the same values as dividing by the divisor array of equal entries)
    gx.reshape(n, c, ho, kh, wo, kw)[...] = (g / div)[:, :, :, None, :, None]
    return gx


avg_pool2d_grad_p = Primitive(
    "avg_pool2d_grad",
    "opaque",
    impl=_avgpool_grad_impl,
    save=SAVE_NONE,
    abstract=lambda g, *, in_shape, **kw: AbstractValue(in_shape, g.dtype),
)


@defvjp(avg_pool2d_grad_p)
def _avgpool_grad_vjp(gg, out, g, *, in_shape, **p):
    return (bind(avg_pool2d_p, (gg,), p),)


def avg_pool2d_op(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return bind(
        avg_pool2d_p,
        (x,),
        {
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "ceil_mode": ceil_mode,
            "count_include_pad": count_include_pad,
            "divisor_override": divisor_override,
            "in_hw": tuple(x.shape[2:]),
        },
    )


def max_pool2d_op(x, kernel, stride, padding, dilation, ceil_mode, return_indices):
    p = {
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil_mode,
    }
    out, idx = bind(max_pool2d_p, (x,), p)
    if not return_indices:
        return out
    flat = bind(
        max_pool2d_indices_p,
        (idx,),
        {
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "in_shape": tuple(x.shape),
        },
    )
    return out, flat


__all__ = ["avg_pool2d_op", "max_pool2d_op", "pool_out_size"]
