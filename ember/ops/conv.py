"""Convolution primitives: ``conv2d`` and its two backward primitives.

Kernels compute in a CNHW layout internally (measured 1.5x faster than NHWC here: the
im2col copy moves contiguous runs of Wo and the GEMM is (O, K) @ (K, N*Ho*Wo), the shape
OpenBLAS likes). The (padded) input is viewed through a zero-copy ``as_strided`` window
view, gathered once into an im2col matrix and multiplied by the weight in one BLAS GEMM per
group. The result is returned as an NCHW-shaped *view* of the CNHW buffer (no transpose
copy); NumPy ufuncs keep that layout, so the next conv reads it back as CNHW for free and
per-channel reductions (batch norm) run over contiguous memory.

The three primitives form an adjoint family, so gradients of any order exist:

- ``conv2d(x, w)``; VJP: ``conv2d_grad_input(g, w)``, ``conv2d_grad_weight(x, g)``;
- ``conv2d_grad_input(g, w)`` (= transposed convolution); VJP: ``conv2d(gg, w)``,
  ``conv2d_grad_weight(gg, g)``;
- ``conv2d_grad_weight(x, g)``; VJP: ``conv2d_grad_input(g, gg)``, ``conv2d(x, gg)``.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._core import SAVE_INPUTS, AbstractValue, Primitive, ShapeError, bind

__all__ = ["clear_workspace", "conv2d_grad_input_p", "conv2d_grad_weight_p", "conv2d_p", "conv_out_size", "gemm"]


# -- BLAS threading for small GEMMs ---------------------------------------------------------------
# OpenBLAS wakes all its threads for every GEMM. For the GEMMs of small convnets (LeNet, CIFAR
# ResNets: up to ~100M multiply-adds) that wake-up costs more than it saves: on this 2-core VM a
# threaded 4096x150x16 GEMM measured 10 ms against 0.25 ms on one thread, and the
# bench/bench_train.py ResNet ran 1.6x faster with one BLAS thread (threads of the other
# framework, or other processes, keep the cores busy). Switching the count back and forth also
# costs the next threaded GEMM a wake-up. So GEMMs under 2**27 multiply-adds run on one thread;
# big ones (a 32x64x56x56 3x3 conv is 3.7G) keep all threads. EMBER_GEMM_SMALL_MACS overrides.
_SMALL_GEMM_MACS = int(os.environ.get("EMBER_GEMM_SMALL_MACS", str(1 << 27)))


def _find_blas_threads():
    try:
        import ctypes
        path = None
        with open("/proc/self/maps") as f:
            for line in f:
                if "openblas" in line.lower():
                    path = line.split()[-1]
                    break
        if path is None:
            return None, None
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                s = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                g = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if s is not None and g is not None:
                    s.argtypes = [ctypes.c_int]
                    s.restype = None
                    g.restype = ctypes.c_int
                    return s, g
    except (OSError, AttributeError):  # pragma: no cover - no OpenBLAS or /proc: leave it
        return None, None
    return None, None


_set_threads, _get_threads = _find_blas_threads()


def gemm(a, b, out=None):
    """``a @ b`` (2-D) on BLAS; products under ~16M multiply-adds run on one thread."""
    if _set_threads is not None and a.shape[0] * a.shape[1] * b.shape[-1] < _SMALL_GEMM_MACS:
        n = _get_threads()
        if n > 1:
            _set_threads(1)
            try:
                return np.matmul(a, b, out=out)
            finally:
                _set_threads(n)
    return np.matmul(a, b, out=out)


def conv_out_size(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _compute_dtype(a):
    # bf16/f16: compute in float32 and round once (NumPy GEMM on halves is slow).
    if a.dtype.kind == "V" or a.dtype == np.float16:
        return np.dtype(np.float32)
    return a.dtype


def _pad_cnhw(x, pad, dtype):
    """``x`` (NCHW shape, any strides) as a zero-padded CNHW array (a view when unpadded)."""
    t, b, l, r = pad
    if min(pad) < 0:  # negative padding crops (transposed conv with output_padding)
        h, w = x.shape[2:]
        x = x[:, :, max(-t, 0):h - max(-b, 0), max(-l, 0):w - max(-r, 0)]
        t, b, l, r = (max(p, 0) for p in pad)
    n, c, h, w = x.shape
    xt = x.transpose(1, 0, 2, 3)
    if not (t or b or l or r):
        return xt if xt.dtype == dtype else xt.astype(dtype)
    out = _workspace((c, n, h + t + b, w + l + r), dtype)  # transient: reuse the buffer
    if t:
        out[:, :, :t] = 0
    if b:
        out[:, :, h + t:] = 0
    if l:
        out[:, :, t:t + h, :l] = 0
    if r:
        out[:, :, t:t + h, w + l:] = 0
    out[:, :, t:t + h, l:l + w] = xt
    return out


def _im2col(xp, kh, kw, stride, dilation, ho, wo, c0=0, cg=None):
    """im2col of CNHW ``xp``: a (Cg*kh*kw, N*Ho*Wo) matrix gathered from a zero-copy
    ``as_strided`` window view (rows of Wo are contiguous runs when the stride is 1)."""
    c = xp.shape[0] if cg is None else cg
    base = xp if c0 == 0 and cg is None else xp[c0:c0 + c]
    n = xp.shape[1]
    sc, sn, sh, sw = base.strides
    if kh == kw == 1 and stride == (1, 1):
        return base.reshape(c, n * ho * wo)  # a view when CNHW-contiguous
    v = as_strided(base, (c, kh, kw, n, ho, wo),
                   (sc, sh * dilation[0], sw * dilation[1], sn, sh * stride[0], sw * stride[1]),
                   writeable=False)
    cols = _workspace(v.shape, v.dtype)
    _copy(cols, v)
    return cols.reshape(c * kh * kw, n * ho * wo)


# -- im2col workspace -------------------------------------------------------------------------------
# The im2col matrix and the padded input never escape a kernel (the GEMM reads them and returns
# a new array), so their buffers are reused across calls: writing into an existing buffer measured 16.2 -> 9.5 ms for the
# 32x64x56x56 3x3 im2col (a fresh allocation page-faults). Per thread, at most _WS_ENTRIES
# buffers / _WS_BYTES bytes are kept; clear_workspace() releases them.
_WS_ENTRIES = 32  # per-block im2col buffers of every layer shape stay resident
_WS_BYTES = 512 << 20
_ws = threading.local()


def _workspace(shape, dtype, tag=None):
    d = getattr(_ws, "bufs", None)
    if d is None:
        d = _ws.bufs = {}
    key = (tuple(shape), np.dtype(dtype).str, tag)
    buf = d.pop(key, None)
    if buf is not None:  # a hit: the set of buffers (and their total size) is unchanged
        d[key] = buf  # most recently used last
        return buf
    buf = np.empty(shape, dtype)
    if buf.nbytes > _WS_BYTES:
        return buf
    d[key] = buf
    total = sum(b.nbytes for b in d.values())
    while len(d) > _WS_ENTRIES or total > _WS_BYTES:
        total -= d.pop(next(iter(d))).nbytes
    return buf


def clear_workspace():
    """Release the im2col buffers kept by the conv kernels (of the calling thread)."""
    _ws.bufs = {}


_POOL = None
_PAR_COPY_ELEMS = 1 << 21  # threaded im2col above 2M elements (measured 30 -> 16.5 ms, 2 cores)


def _pool():
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has no pool threads
        from concurrent.futures import ThreadPoolExecutor
        nthreads = min(os.cpu_count() or 1, 4)
        _POOL = (os.getpid(), ThreadPoolExecutor(nthreads, thread_name_prefix="ember-im2col"))
    return _POOL[1]


# -- cache-blocked im2col + GEMM ----------------------------------------------------------------
# A whole-batch im2col matrix (19 MB for a 32x16x32x32 3x3 conv) is written to memory and read
# back by the GEMM. Gathering it a few images at a time into a buffer that stays in L2 and
# multiplying each block at once measured 6.5 -> 3.9 ms for that conv (one thread). Blocks of
# about _CHUNK_ELEMS floats. Convs of at least EMBER_CONV_PAR_MACS multiply-adds split their
# blocks over two threads (BLAS on one thread each: NumPy releases the GIL in copies and
# GEMMs); off by default: on the shared 2-core VM the bench ResNet step measured the same or
# ~5% slower with it (the other core is usually busy), and the optimizer's memory-bound
# passes were slower split in two.
_CHUNK_ELEMS = int(os.environ.get("EMBER_CONV_CHUNK", str(1 << 18)))
_PAR_CONV_MACS = int(os.environ.get("EMBER_CONV_PAR_MACS", str(1 << 62)))


def _chunk_ranges(n, per_image):
    nb = max(1, _CHUNK_ELEMS // max(per_image, 1))
    return [(a, min(a + nb, n)) for a in range(0, n, nb)]


def _run_chunks(ranges, fn, macs):
    """Call ``fn(list_of_ranges)``, split over two threads when worth it; returns the results."""
    nthreads = 2 if (len(ranges) >= 2 and macs >= _PAR_CONV_MACS and _set_threads is not None
                     and (os.cpu_count() or 1) >= 2) else 1
    if nthreads == 1:
        if _set_threads is not None and macs < _SMALL_GEMM_MACS:
            n = _get_threads()
            if n > 1:
                _set_threads(1)
                try:
                    return [fn(ranges)]
                finally:
                    _set_threads(n)
        return [fn(ranges)]
    half = (len(ranges) + 1) // 2
    n = _get_threads()
    if n > 1:
        _set_threads(1)
    try:
        fut = _pool().submit(fn, ranges[half:])
        first = fn(ranges[:half])
        return [first, fut.result()]
    finally:
        if n > 1:
            _set_threads(n)


def _wide_ok(xp, stride):
    """Stride 1 over planes with contiguous rows: im2col rows can be gathered 'wide'."""
    isz = xp.itemsize
    return stride == (1, 1) and xp.strides[3] == isz and xp.strides[2] == xp.shape[3] * isz


def _im2col_wide(xp, kh, kw, dilation, ho, wo, a, b, c0=0, cg=None):
    """Stride-1 im2col of images ``a:b`` with rows as wide as the (padded) input: the row of
    kernel offset (i, j) is the contiguous run of L = (Ho-1)*Wp + Wo elements of each plane
    starting at i*dh*Wp + j*dw; columns x >= Wo of each output row are junk (they read the
    next row). One copy of runs of L instead of Wo elements (3-8x faster for small images).
    Returns the (Cg*kh*kw, (b-a)*L) matrix and L."""
    c = xp.shape[0] if cg is None else cg
    base = xp[c0:c0 + c, a:b]
    wp = xp.shape[3]
    isz = xp.itemsize
    ln = (ho - 1) * wp + wo
    sc, sn = base.strides[:2]
    v = as_strided(base, (c, kh, kw, b - a, ln),
                   (sc, dilation[0] * wp * isz, dilation[1] * isz, sn, isz), writeable=False)
    cols = _workspace(v.shape, v.dtype)
    np.copyto(cols, v)
    return cols.reshape(c * kh * kw, (b - a) * ln), ln


def _fwd_cols_gemm(xp, wm, kh, kw, stride, dilation, ho, wo, out, c0=0, cg=None):
    """``out (O, N*Ho*Wo) = wm @ im2col(xp)`` computed block by block over images."""
    n = xp.shape[1]
    k = wm.shape[1]
    o = wm.shape[0]
    hw = ho * wo
    wide = _wide_ok(xp, stride) and wo < xp.shape[3]
    wp = xp.shape[3]
    ln = (ho - 1) * wp + wo
    ranges = _chunk_ranges(n, k * (ln if wide else hw))
    if kh == kw == 1 and stride == (1, 1) or (len(ranges) == 1 and not wide):
        return gemm(wm, _im2col(xp, kh, kw, stride, dilation, ho, wo, c0, cg), out=out)
    isz = out.itemsize

    def work(parts):
        for a, b in parts:
            dst = out[:, a * hw:b * hw]
            if not wide:
                np.matmul(wm, _im2col(xp[:, a:b], kh, kw, stride, dilation, ho, wo, c0, cg),
                          out=dst)
                continue
            cols, _ = _im2col_wide(xp, kh, kw, dilation, ho, wo, a, b, c0, cg)
            tmp = _workspace((o, (b - a) * ln), out.dtype, "wide-out")
            np.matmul(wm, cols, out=tmp)
            np.copyto(dst.reshape(o, b - a, ho, wo),
                      as_strided(tmp, (o, b - a, ho, wo), (tmp.strides[0], ln * isz, wp * isz,
                                                          isz)))

    _run_chunks(ranges, work, o * k * n * hw)
    return out


def _gw_cols_gemm(xp, gm, kh, kw, stride, dilation, ho, wo, c0=0, cg=None):
    """``im2col(xp) @ gm.T`` (K, O) accumulated block by block over images."""
    n = xp.shape[1]
    c = xp.shape[0] if cg is None else cg
    k = c * kh * kw
    o = gm.shape[0]
    hw = ho * wo
    wide = _wide_ok(xp, stride) and wo < xp.shape[3]
    wp = xp.shape[3]
    ln = (ho - 1) * wp + wo
    ranges = _chunk_ranges(n, k * (ln if wide else hw))
    if kh == kw == 1 and stride == (1, 1) or (len(ranges) == 1 and not wide):
        return gemm(_im2col(xp, kh, kw, stride, dilation, ho, wo, c0, cg), gm.T)

    def work(parts):
        acc = None
        for a, b in parts:
            gsl = gm[:, a * hw:b * hw]
            if wide:
                cols, _ = _im2col_wide(xp, kh, kw, dilation, ho, wo, a, b, c0, cg)
                gw = np.zeros((o, b - a, ln), gm.dtype)
                isz = gw.itemsize
                np.copyto(as_strided(gw, (o, b - a, ho, wo), (gw.strides[0], ln * isz,
                                                              wp * isz, isz)),
                          gsl.reshape(o, b - a, ho, wo))
                gsl = gw.reshape(o, (b - a) * ln)
            else:
                cols = _im2col(xp[:, a:b], kh, kw, stride, dilation, ho, wo, c0, cg)
            r = np.matmul(cols, gsl.T)
            if acc is None:
                acc = r
            else:
                acc += r
        return acc

    res = _run_chunks(ranges, work, o * k * n * hw)
    acc = res[0]
    for r in res[1:]:
        acc += r
    return acc


def _copy(dst, src):
    """``dst[...] = src``; big copies are split over channels across threads (NumPy releases
    the GIL while copying)."""
    nthreads = min(os.cpu_count() or 1, 4)
    c = dst.shape[0]
    if dst.size < _PAR_COPY_ELEMS or nthreads < 2 or c < 2:
        np.copyto(dst, src)
        return
    pool = _pool()
    step = -(-c // nthreads)
    parts = [slice(i, min(i + step, c)) for i in range(0, c, step)]
    for f in [pool.submit(np.copyto, dst[p], src[p]) for p in parts]:
        f.result()


def _w_matrix(w, g, groups, dtype):
    """Weight (O, C/g, kh, kw) of group ``g`` as an (O/g, C/g*kh*kw) GEMM operand."""
    o = w.shape[0] // groups
    wg = w[g * o:(g + 1) * o] if groups > 1 else w
    return wg.reshape(o, -1).astype(dtype, copy=False)


def _g_matrix(g, dtype):
    """Output cotangent (N, O, Ho, Wo) as an (O, N*Ho*Wo) matrix (free when CNHW-strided)."""
    n, o, ho, wo = g.shape
    return g.transpose(1, 0, 2, 3).reshape(o, n * ho * wo).astype(dtype, copy=False)


def _nchw_view(out2d, n, ho, wo, o, dtype):
    out = out2d.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
    return out if out.dtype == dtype else out.astype(dtype)


# -- forward --------------------------------------------------------------------------------
def _conv2d_impl(x, w, b=None, *, stride, padding, dilation, groups):
    dtype = _compute_dtype(x)
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = conv_out_size(h, kh, stride[0], padding[0], padding[1], dilation[0])
    wo = conv_out_size(wd, kw, stride[1], padding[2], padding[3], dilation[1])
    xp = _pad_cnhw(x, padding, dtype)
    og = o // groups
    out = np.empty((o, n * ho * wo), dtype)
    if groups == 1:
        _fwd_cols_gemm(xp, _w_matrix(w, 0, 1, dtype), kh, kw, stride, dilation, ho, wo, out)
    else:
        for g in range(groups):
            _fwd_cols_gemm(xp, _w_matrix(w, g, groups, dtype), kh, kw, stride, dilation, ho, wo,
                           out[g * og:(g + 1) * og], g * cg, cg)
    if b is not None:
        out += b.astype(dtype, copy=False)[:, None]
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
    og = o // groups
    eh, ew = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    if stride == (1, 1) and max(t, b) <= eh and max(l, r) <= ew and h * wd <= 1.25 * ho * wo:
        # Stride 1, 'same'-like padding: the transposed convolution is a convolution of g
        # with the flipped, in/out-swapped kernel (one im2col + GEMM, no scatter-add loop).
        # (For 'valid' convs the full-padded im2col is larger than col2im's: scatter instead.)
        wt = w.reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4)
        wt = wt.reshape(groups * cg, og, kh, kw)[:, :, ::-1, ::-1]
        return _conv2d_impl(g, np.ascontiguousarray(wt), stride=stride,
                            padding=(eh - t, eh - b, ew - l, ew - r), dilation=dilation,
                            groups=groups)
    hp, wp = h + t + max(b, 0), wd + l + max(r, 0)
    if stride == (1, 1) and b >= 0 and r >= 0 and hp - eh == ho and wp - ew == wo:
        return _col2im_wide(g, w, dtype, groups, dilation, (t, l), (h, wd), (hp, wp))
    gm = _g_matrix(g, dtype)
    gxp = np.zeros((c, n, hp, wp), dtype)
    sh, sw = stride
    dh, dw = dilation
    for gi in range(groups):
        wm = _w_matrix(w, gi, groups, dtype)
        gsl = gm if groups == 1 else gm[gi * og:(gi + 1) * og]
        dcols = gemm(wm.T, gsl).reshape(cg, kh, kw, n, ho, wo)
        dst = gxp[gi * cg:(gi + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                hs, ws = i * dh, j * dw
                dst[:, :, hs:hs + (ho - 1) * sh + 1:sh, ws:ws + (wo - 1) * sw + 1:sw] += \
                    dcols[:, i, j]
    gx = gxp[:, :, t:t + h, l:l + wd].transpose(1, 0, 2, 3)
    return gx if gx.dtype == g.dtype else gx.astype(g.dtype)


def _col2im_wide(g, w, dtype, groups, dilation, tl, hw, hpwp):
    """Stride-1 col2im with rows as wide as the padded input: g gets zero columns up to the
    padded width, so the column block of kernel offset (i, j) is one contiguous run of Ho*Wp
    per (channel, image) that lands at flat offset i*dh*Wp + j*dw of the padded plane (the
    zero columns spill harmlessly into the next row). The scatter-add then runs over runs of
    Ho*Wp elements instead of Wo (5-10x fewer NumPy inner loops for small images)."""
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    (t, l), (h, wd), (hp, wp) = tl, hw, hpwp
    c, og = cg * groups, o // groups
    gpw = np.zeros((o, n, ho, wp), dtype)
    gpw[..., :wo] = g.transpose(1, 0, 2, 3)
    gm = gpw.reshape(o, n * ho * wp)
    plane = hp * wp
    slack = dilation[1] * (kw - 1) + 1
    buf = np.zeros(c * n * plane + slack, dtype)
    isz = buf.itemsize
    for gi in range(groups):
        wm = _w_matrix(w, gi, groups, dtype)
        gsl = gm if groups == 1 else gm[gi * og:(gi + 1) * og]
        dcols = gemm(wm.T, gsl).reshape(cg, kh, kw, n, ho * wp)
        base = gi * cg * n * plane
        for i in range(kh):
            for j in range(kw):
                off = base + i * dilation[0] * wp + j * dilation[1]
                dst = as_strided(buf[off:], (cg, n, ho * wp), (n * plane * isz, plane * isz, isz))
                dst += dcols[:, i, j]
    gxp = buf[:c * n * plane].reshape(c, n, hp, wp)
    gx = gxp[:, :, t:t + h, l:l + wd].transpose(1, 0, 2, 3)
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
    xp = _pad_cnhw(x, padding, dtype)
    gm = _g_matrix(g, dtype)
    # (K, M) @ (M, O/g) then transpose: measured faster than (O/g, M) @ (M, K) on OpenBLAS
    gw = np.empty((o, cg * kh * kw), dtype)
    for gi in range(groups):
        gsl = gm if groups == 1 else gm[gi * og:(gi + 1) * og]
        gw[gi * og:(gi + 1) * og] = (
            _gw_cols_gemm(xp, gsl, kh, kw, stride, dilation, ho, wo, gi * cg, cg) if groups > 1
            else _gw_cols_gemm(xp, gsl, kh, kw, stride, dilation, ho, wo)).T
    gw = gw.reshape(o, cg, kh, kw)
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
