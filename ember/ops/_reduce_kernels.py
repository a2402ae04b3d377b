"""The NumPy/compiled kernels behind the reduction primitives of :mod:`ember.ops.reduction`.

The shared shape rule and gradient broadcasts (``_red_abstract``, ``_expand_back``, the filled
gradient of large reductions), the channel/last-axis sums that ``sum`` takes on conv layouts,
and the softmax / log_softmax forward and gradient row kernels. They declare no primitive or
op, so the records and their order stay in :mod:`ember.ops.reduction`, which re-exports every
name here.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..backends import jit
from ..backends.cpu import FAST_FLOATS
from . import _norm_kernels as nk
from . import _parallel
from ._core import (
    AbstractValue,
    ShapeError,
    _state,
)
from ._util import reduced_shape


def _red_abstract(name, out_dtype=None):
    def rule(x, dims, keepdim=False, **kw):
        for d in dims:
            if not 0 <= d < builtins.max(x.ndim, 1):
                raise ShapeError(f"{name}: dim {d} out of range for shape {x.shape}")
        return AbstractValue(
            reduced_shape(x.shape, dims, keepdim) if x.ndim else (), out_dtype or x.dtype
        )

    return rule


def _axes(dims, ndim):
    return dims if ndim else None


def _expand_back(g, shape, dims, keepdim, div=None, fill=False):
    """Broadcast a reduced gradient back to ``shape`` (divided by ``div`` when given);
    ``fill``: as a new array when eager and large (the gradient of sum and mean itself)."""
    if (
        fill
        and not _state.grad_enabled
        and _state.tracer is None
        and type(g._data) is np.ndarray
        and g._data.dtype in FAST_FLOATS
    ):
        r = _fill_back(g._data, shape, dims, keepdim, div)
        if r is not None:
            return r
    if not keepdim and len(shape) and g.ndim:  # (a full reduction's 0-d g broadcasts as is)
        g = g.reshape(reduced_shape(shape, dims, True))
    g = g.expand(shape)
    return g if div is None else g / div


_FILL_MIN = 1 << 16  # elements: below, the expanded view (copied where it lands) costs less


def _fill_kernel(g, out, dims):
    """Write the broadcast of ``g`` (keepdim shape) into ``out`` with a compiled row kernel
    when the reduced axes are the trailing or the leading ones (split over numba's threads:
    a (16, 128, 1024) sum's gradient, 2M elements, is under parallel_for's threshold);
    False when it does not apply."""
    from ._parallel import parallel_kernel

    nd = out.ndim
    ds = sorted(d % nd for d in dims)
    k = len(ds)
    if not k or k == nd:
        return False
    if ds == list(range(nd - k, nd)):  # trailing: one value per row
        name, arg = "fill_rows", np.ascontiguousarray(g).reshape(-1)
        rows = arg.size
    elif ds == list(range(k)):  # leading: one row repeated
        name, arg = "repeat_rows", np.ascontiguousarray(g).reshape(-1)
        rows = out.size // (arg.size or 1)
    else:
        return False
    if nk.kernel(name, arg, out) is None:
        return False
    o2 = out.reshape(rows, -1)
    # (a copy: memory-bound, two cores pay from ~64K elements, as for an elementwise add)
    (parallel_kernel(name, 16 * out.size) or nk.kernel(name, arg, out))(arg, o2)
    return True


def _fill_back(g, shape, dims, keepdim, div):
    """Eager backward of sum/mean: the broadcast gradient as a new contiguous array, written
    in row blocks on Ember's threads (an expanded view would be copied single-threaded where
    it lands, and a mean's division would read it once more); or None when small."""
    from . import _core
    from ._parallel import PAR_MIN_WORK, get_num_threads, parallel_for

    size = 1
    for s_ in shape:
        size *= s_
    if size < _FILL_MIN or not len(shape):
        return None
    if div is not None:
        g = g / g.dtype.type(div)  # the same quotients as dividing every broadcast element
    if not keepdim:
        g = g.reshape(reduced_shape(shape, dims, True))
    out = np.empty(shape, g.dtype)
    if _fill_kernel(g, out, dims):
        return _core._new(out)
    src = np.broadcast_to(g, shape)
    n0 = shape[0]
    if n0 < 2 or size < PAR_MIN_WORK or get_num_threads() < 2:
        np.copyto(out, src)
    else:
        per = -(-n0 // 8)
        parallel_for(n0, per, lambda a, b, slot: np.copyto(out[a:b], src[a:b]), size)
    return _core._new(out)


def _channels_last_channel_sums(x, axes):
    """Per-channel sums of a channels-last (N, C, H, W) array (a conv output or its gradient,
    e.g. a conv bias gradient) as one BLAS matrix-vector product over its (N*H*W, C) rows:
    NumPy's reduction runs an inner loop of only C elements per pixel there (10x slower)."""
    if x.ndim != 4 or axes != (0, 2, 3) or x.dtype not in FAST_FLOATS or x.size == 0:
        return None
    t = x.transpose(0, 2, 3, 1)
    if not t.flags.c_contiguous or x.flags.c_contiguous:
        return None
    rows = t.reshape(-1, x.shape[1])
    from ._parallel import one_blas_thread, ones_vector

    with one_blas_thread():
        return ones_vector(rows.shape[0], x.dtype) @ rows


def _nchw_channel_sums(x, axes):
    """Per-channel sums of a C-contiguous (N, C, *spatial) array over every axis but 1 (a
    conv bias gradient): each (image, channel) plane summed by one BLAS matrix-vector
    product, then the N rows added (NumPy's reduction over (0, 2, 3) measured 3x slower on
    16x128x28x28)."""
    if (
        x.ndim < 3
        or axes != (0,) + tuple(range(2, x.ndim))
        or x.dtype not in FAST_FLOATS
        or not x.flags.c_contiguous
        or x.size == 0
    ):
        return None
    n, c = x.shape[:2]
    planes = x.reshape(n * c, -1)
    if planes.shape[1] < 16:
        return None
    from ._parallel import one_blas_thread, ones_vector

    with one_blas_thread():
        per = planes @ ones_vector(planes.shape[1], x.dtype)
    return np.add.reduce(per.reshape(n, c), axis=0)


_ROW_SUM_MIN = 1 << 12  # below: NumPy's own reduction costs no more than the kernel call


def _last_axis_sums(x, keepdim, scale=1.0):
    """``scale`` times the sums over the last axis of a float32/float64 array with the
    compiled row kernel on Ember's threads, or None."""
    n = x.shape[-1]
    if x.size < _ROW_SUM_MIN or n < 16 or x.dtype not in FAST_FLOATS:
        return None
    k = jit.get("row_sums")
    if k is None:
        return None
    # (the sums of small arrays take ~0.5 us in the kernel: each helper call here counts)
    x2 = x if x.ndim == 2 and x.flags.c_contiguous else nk.rows(x, n)
    res = np.empty(x.shape[:-1] + ((1,) if keepdim else ()), x.dtype)
    out = res if res.ndim == 1 else res.reshape(-1)
    # cost 2: two threads from 1M elements (~60 us; with the earlier pool's 50 us hand-off,
    # 2M elements took 0.15 ms on two threads where one took 0.105)
    nk.run_rows(
        lambda a, b: k(x2[a:b], out[a:b], scale),
        x2.shape[0],
        n,
        2,
        par=("row_sums", (x2, out, scale)),
    )
    return res


# Rows summed in one sequential run by blocked_sum before the partial sums are added: the error
# of a float32 sum over n rows then grows with ~B + n / B instead of n.
_SUM_BLOCK = 128
_MID_SUM_MIN = 1 << 14  # elements from which the compiled kernel runs (below: NumPy's loops)


def blocked_sum(x, dims, keepdim, scale=None):
    """The sum (times ``scale``) over a run of adjacent axes ``dims`` of a C-contiguous
    float32/float64 array whose last axis is kept, in blocks of :data:`_SUM_BLOCK` rows; None
    where that does not apply (other dtypes and layouts; small float64 arrays).

    NumPy adds the rows of such a reduction one after another (its pairwise summation runs
    only along the contiguous inner loop), so a float32 sum over 10,000 rows drifts ~5e-6
    relative where PyTorch's cascade sum stays near 1e-7, and with a short kept axis its inner
    loop is a few elements long (a (64, 4096, 16) sum over axis 1: 5.5 ms). The compiled
    kernel (:func:`ember.backends.kernels_norm.mid_sums`) sums blocks of rows along the
    contiguous axis (1.1 ms on one core, 3e-7); without numba, float32 rows are summed in
    blocks by NumPy.

    Example:
        >>> import numpy as np
        >>> from ember.ops._reduce_kernels import blocked_sum
        >>> x = np.ones((1000, 3), np.float32)
        >>> blocked_sum(x, (0,), False).tolist()
        [1000.0, 1000.0, 1000.0]
    """
    if x.dtype not in FAST_FLOATS or not x.flags.c_contiguous or not dims or not x.size:
        return None
    d0, d1 = dims[0], dims[-1]
    if d1 - d0 != len(dims) - 1 or d1 >= x.ndim - 1:
        return None
    n = 1
    for d in dims:
        n *= x.shape[d]
    a = 1
    for s in x.shape[:d0]:
        a *= s
    kept = x.shape[:d0] + ((1,) * len(dims) if keepdim else ()) + x.shape[d1 + 1 :]
    x3 = x.reshape(a, n, -1)
    k = None
    if x.size >= _MID_SUM_MIN and n > 1:
        k = _parallel.parallel_kernel("mid_sums", x.size) or jit.get("mid_sums")
    if k is not None:
        out = np.empty((a, x3.shape[2]), x.dtype)
        k(x3, out, _SUM_BLOCK)
    else:
        q = n // _SUM_BLOCK
        if x.dtype != np.float32 or q < 2:
            return None
        main = x3[:, : q * _SUM_BLOCK].reshape(a, q, _SUM_BLOCK, -1)
        out = np.add.reduce(np.add.reduce(main, axis=2), axis=1)
        if q * _SUM_BLOCK < n:
            out += np.add.reduce(x3[:, q * _SUM_BLOCK :], axis=1)
    if scale is not None:
        out *= x.dtype.type(scale)
    return out.reshape(kept)


def _split3(shape, dim):
    a = b = 1
    for s in shape[:dim]:
        a *= s
    for s in shape[dim + 1 :]:
        b *= s
    return a, shape[dim], b


def softmax_kernel(x, dim, log):
    """softmax / log_softmax of a float32/float64 ``x`` along ``dim`` with the compiled row
    kernels on Ember's threads, or None without them."""
    if x.ndim == 0 or x.size == 0:
        return None
    a, n, b = _split3(x.shape, dim)
    if b == 1:
        k = nk.kernel("softmax_rows", x)
        if k is None:
            return None
        x2 = nk.rows(x, n)
        res = np.empty(x.shape, x.dtype)  # owns its memory: no copy when it becomes a .grad
        out = res.reshape(x2.shape)
        par = ("softmax_rows", (x2, out, log))
        nk.run_rows(lambda r0, r1: k(x2[r0:r1], out[r0:r1], log), a, n, 16, par=par)
        return res
    k = nk.kernel("softmax_mid", x)
    if k is None:
        return None
    x3 = np.ascontiguousarray(x).reshape(a, n, b)
    res = np.empty(x.shape, x.dtype)
    out = res.reshape(x3.shape)
    par = ("softmax_mid", (x3, out, log))
    nk.run_rows(lambda r0, r1: k(x3[r0:r1], out[r0:r1], log), a, n * b, 16, par=par)
    return res


def softmax_grad_kernel(g, y, dim, log, scale=1.0):
    """The gradient of softmax / log_softmax (output ``y``) along ``dim`` (times ``scale``)
    with the compiled row kernels, or None without them."""
    if y.ndim == 0 or y.size == 0 or g.shape != y.shape:
        return None
    a, n, b = _split3(y.shape, dim)
    name = "softmax_bwd_rows" if b == 1 else "softmax_bwd_mid"
    k = nk.kernel(name, g, y)
    if k is None:
        return None
    g3 = np.ascontiguousarray(g).reshape(a, n, b)
    y3 = np.ascontiguousarray(y).reshape(a, n, b)
    res = np.empty(y.shape, y.dtype)  # owns its memory: no copy when it becomes a .grad
    out = res.reshape(y3.shape)
    if b == 1:
        g2, y2, o2 = g3.reshape(a, n), y3.reshape(a, n), out.reshape(a, n)
        sc = float(scale)
        par = (name, (g2, y2, o2, sc, log))
        nk.run_rows(lambda r0, r1: k(g2[r0:r1], y2[r0:r1], o2[r0:r1], sc, log), a, n, 16, par=par)
    else:
        par = (name, (g3, y3, out, log))
        nk.run_rows(lambda r0, r1: k(g3[r0:r1], y3[r0:r1], out[r0:r1], log), a, n * b, 16, par=par)
        if scale != 1:
            res *= res.dtype.type(scale)
    return res


# -- full reductions, trailing/spatial sums, row extrema (kernels_reduce_s42) ----------------
_FULL_SUM_MIN = 1 << 14  # elements from which the compiled flat sum runs (below: NumPy's)


def _flat_view(x):
    """The elements of ``x`` as a 1-D view in memory order when its strides are a dense
    permutation of a C-contiguous layout (a transposed or channels-last array), else None."""
    if x.flags.c_contiguous:
        return x.reshape(-1)
    order = sorted(range(x.ndim), key=lambda d: -x.strides[d])
    t = x.transpose(order)
    return t.reshape(-1) if t.flags.c_contiguous else None


def full_sum(x, scale=None):
    """The sum of every element of a float32/float64 ``x`` (times ``scale``) as a 0-d array,
    with the compiled block kernel: fixed blocks of ``SUM_BLOCK`` elements in memory order
    (chunks of 512 in x's dtype, the chunk and block sums in float64), split over numba's
    threads; None without it or for small arrays (NumPy's pairwise sum then runs).

    Example:
        >>> import numpy as np
        >>> from ember.ops._reduce_kernels import full_sum
        >>> r = full_sum(np.ones((300, 300), np.float32))
        >>> r is None or float(r) == 90000.0
        True
    """
    if type(x) is not np.ndarray or x.dtype not in FAST_FLOATS or x.size < _FULL_SUM_MIN:
        return None
    k = jit.get("flat_block_sums")
    if k is None:
        return None
    from ..backends.kernels_reduce_s42 import SUM_BLOCK

    flat = _flat_view(x)
    if flat is None:
        flat = np.ascontiguousarray(x).reshape(-1)
    parts = np.empty(-(-flat.size // SUM_BLOCK), np.float64)
    (_parallel.parallel_kernel("flat_block_sums", flat.size) or k)(flat, parts, SUM_BLOCK)
    tot = np.add.reduce(parts)
    if scale is not None:
        tot = tot * scale
    return np.asarray(tot, dtype=x.dtype)


def trailing_sums(x, dims, keepdim, scale=None):
    """Sums (times ``scale``) over the trailing axes ``dims`` (two or more) of a C-contiguous
    float32/float64 array as rows of the compiled row kernel (a global average pool of an NCHW
    tensor), or over its spatial axes 2.. when the array is channels-last memory (as blocks
    of rows of the middle-axis kernel); None where neither applies.

    Example:
        >>> import numpy as np
        >>> from ember.ops._reduce_kernels import trailing_sums
        >>> r = trailing_sums(np.ones((4, 64, 8, 8), np.float32), (2, 3), False)
        >>> r is None or r.shape == (4, 64)
        True
    """
    nd = x.ndim
    if type(x) is not np.ndarray or nd < 3 or len(dims) < 2 or x.dtype not in FAST_FLOATS:
        return None
    if tuple(dims) != tuple(range(nd - len(dims), nd)) or not x.size:
        return None
    kept = x.shape[: nd - len(dims)] + ((1,) * len(dims) if keepdim else ())
    if x.flags.c_contiguous:
        n = 1
        for d in dims:
            n *= x.shape[d]
        r = _last_axis_sums(x.reshape(-1, n), False, 1.0 if scale is None else scale)
        return None if r is None else r.reshape(kept)
    if tuple(dims) == tuple(range(2, nd)):
        t = x.transpose((0,) + tuple(range(2, nd)) + (1,))
        if t.flags.c_contiguous:
            r = blocked_sum(t, tuple(range(1, nd - 1)), False, scale)
            return None if r is None else r.reshape(kept)
    return None


def _last_rows(x, dims):
    """``x`` as C-contiguous (rows, n) for a reduction over its last axis, or None (other
    axes, dtypes, an empty row)."""
    if type(x) is not np.ndarray or x.dtype not in FAST_FLOATS or x.ndim == 0 or not x.size:
        return None
    if tuple(dims) != (x.ndim - 1,) or x.size < _ROW_SUM_MIN:
        return None
    return nk.rows(x, x.shape[-1])


def row_extrema(x, dims, keepdim, want_min):
    """amax (amin when ``want_min``) over the last axis with the compiled row kernel, or
    None."""
    x2 = _last_rows(x, dims)
    if x2 is None or jit.get("row_extrema") is None:
        return None
    res = np.empty(x.shape[:-1] + ((1,) if keepdim else ()), x.dtype)
    out = res.reshape(-1)
    k = _parallel.parallel_kernel("row_extrema", x.size) or jit.get("row_extrema")
    k(x2, out, want_min)
    return res


def row_arg_extrema(x, dim, keepdim, want_min):
    """argmax (argmin when ``want_min``) over the last axis with the compiled row kernel
    (the first index; a NaN's first index), or None."""
    if dim is None:
        return None
    x2 = _last_rows(x, (dim,))
    if x2 is None or jit.get("row_arg_extrema") is None:
        return None
    res = np.empty(x.shape[:-1] + ((1,) if keepdim else ()), np.int64)
    out = res.reshape(-1)
    k = _parallel.parallel_kernel("row_arg_extrema", x.size) or jit.get("row_arg_extrema")
    k(x2, out, want_min)
    return res


def amax_grad(g, x, o, dims, keepdim):
    """The gradient of amax/amin (output ``o``) over ``dims``: ``g`` where ``x`` equals its
    slice's extremum, shared evenly by ties; the compiled row kernel for the last axis."""
    g = g.astype(x.dtype, copy=False)
    x2 = _last_rows(x, dims)
    if x2 is not None and g.size == o.size and jit.get("amax_grad_rows") is not None:
        res = np.empty(x.shape, x.dtype)
        gr = np.ascontiguousarray(g).reshape(-1)
        orow = np.ascontiguousarray(o).reshape(-1)
        k = _parallel.parallel_kernel("amax_grad_rows", 2 * x.size) or jit.get("amax_grad_rows")
        k(gr, x2, orow, res.reshape(x2.shape))
        return res
    ax = _axes(dims, x.ndim)
    if not keepdim and x.ndim:
        shp = reduced_shape(x.shape, dims, True)
        g, o = np.reshape(g, shp), np.reshape(o, shp)
    mask = (x == o).astype(x.dtype)
    count = np.add.reduce(mask, axis=ax, keepdims=True)
    return g * mask / count
