"""Float32 convolutions through the compiled im2col + GEMM loops of
:mod:`ember.backends.kernels_convgemm` (the ``[jit]`` extra with numba's OpenMP or TBB layer,
and NumPy's OpenBLAS ``cblas_sgemm``).

:mod:`ember.ops.conv` prepares the operands (NHWC input, GEMM-shaped weights) and calls
:func:`forward` or :func:`backward`; both return None where the compiled kernels are not
available, and the caller then runs its pool-driven NumPy blocks.

Example:
    >>> import numpy as np
    >>> from ember.ops import _conv_gemm
    >>> _conv_gemm.blocks(32, 32, 32, 144)  # images per block, rows per block, GEMM rows
    (1, 32, 1024)
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._parallel import blas_loop_kernel, one_blas_thread, parallel_kernel

_F32 = np.dtype(np.float32)

# An im2col block of about this many elements (1 MB of float32: L2-resident while its GEMM
# reads it), and at least 8 blocks for small batches so that threads finish together.
BLOCK_ELEMS = 1 << 18
# a GEMM over fewer rows reads the whole weight matrix for little work
MIN_ROWS = 64


def blocks(n, ho, wo, k):
    """``(images per block, output rows per block, GEMM rows per block)`` for ``n`` images
    of ``ho`` x ``wo`` output pixels and ``k`` im2col columns. Whole images per block when
    an image's im2col fits a block and the batch has at least 8 images; else blocks of rows
    of one image. From the shapes only (results do not depend on the thread count)."""
    per_image = ho * wo * k
    min_rows = min(ho, -(-MIN_ROWS // max(wo, 1)))
    if per_image <= BLOCK_ELEMS and (n >= 8 or ho * wo < MIN_ROWS or ho < 2):
        nbi = max(1, BLOCK_ELEMS // max(per_image, 1))
        nbi = min(nbi, max(1, -(-n // 8)))
        nbi = max(nbi, -(-MIN_ROWS // max(ho * wo, 1)))
        nbi = max(1, min(nbi, n))
        return nbi, ho, nbi * ho * wo
    rpc = max(1, BLOCK_ELEMS // max(wo * k, 1))
    if n < 8:  # about 8 blocks in all
        rpc = min(rpc, -(-ho // min(ho, -(-8 // max(n, 1)))))
    rpc = min(ho, max(rpc, min_rows))
    return 1, rpc, rpc * wo


def _tiles(rows, n, k):
    from ..backends.kernels_blas import small_gemm_tiles  # (imports numba: only once used)

    return small_gemm_tiles(rows, n, k)


def _setup(name, n, ho, wo, k, workspace):
    """``(kernel, sgemm address, images per block, rows per block, scratch)`` for the compiled
    loop ``name`` over ``n`` images of ``ho`` x ``wo`` output rows and ``k`` im2col columns,
    or None: the blocks of :func:`blocks` and one im2col scratch buffer per numba thread."""
    found = blas_loop_kernel(name)
    if found is None:
        return None
    kern, fptr, threads = found
    nbi, rpc, rows = blocks(n, ho, wo, k)
    return kern, fptr, nbi, rpc, workspace((threads, rows, k), _F32, "gemm-cols")


def _units(n, ho, nbi, rpc):
    """How many blocks :func:`blocks` makes (the kernels' ``prange`` length)."""
    return -(-n // nbi) if rpc >= ho else n * -(-ho // rpc)


def _sum_parts(parts):
    """Per-block partial sums added in block order (the same on any thread count)."""
    return parts[0] if len(parts) == 1 else np.add.reduce(parts, axis=0)


def usable(x_dtype, groups, padding):
    """Whether :func:`forward`/:func:`backward` take a convolution with these properties
    (float32 compute, one group, no cropping)."""
    return x_dtype == _F32 and groups == 1 and min(padding) >= 0


def forward(xm, wm, out, bias, kernel, stride, dilation, padding, workspace):
    """``out`` (N, Ho, Wo, O) = conv of NHWC ``xm`` with ``wm`` (kh*kw*C, O) (+ ``bias``);
    ``padding`` (top, bottom, left, right). Returns ``out``, or None where the compiled
    kernel is unavailable (``out`` untouched)."""
    n, ho, wo, _ = out.shape
    found = _setup("conv_gemm_fwd", n, ho, wo, wm.shape[0], workspace)
    if found is None:
        return None
    kern, fptr, nbi, rpc, scratch = found
    b = np.ascontiguousarray(bias, dtype=_F32) if bias is not None else wm[0]
    tiles = _tiles(scratch.shape[1], out.shape[3], wm.shape[0])
    packed, wpk = _panels(wm)
    with one_blas_thread():
        kern(fptr, xm, wm, out, b, bias is not None, *kernel, *stride, *dilation,
             padding[0], padding[2], nbi, rpc, scratch, tiles, packed, wpk)  # fmt: skip
    return out


_NO_PANELS = np.zeros((1, 1, 32), _F32)


def _panels(w):
    """``(True, w packed)`` for the packed micro-kernel where it runs
    (:func:`ember.ops._parallel.packed_kernel_available`) and ``w`` has at least 32 columns
    (with 16 output channels OpenBLAS's tiles measured faster: 32x16x32x32 -> 16, 1.6 vs
    1.9 ms), else ``(False, a placeholder)``."""
    from ._parallel import pack_b, packed_kernel_available

    if w.shape[1] < 32 or not packed_kernel_available():
        return False, _NO_PANELS
    return True, pack_b(w)


def implicit_usable(dtype, c, kw, groups, dilation, padding):
    """Whether :func:`forward_implicit` takes a convolution: float32, one group, no
    dilation, no cropping, rows of at least 8 input elements per kernel row (``kw * c``;
    with fewer the tiles' per-call work is too small), on the packed micro-kernel
    (:func:`ember.ops._parallel.packed_kernel_available`)."""
    from ._parallel import packed_kernel_available

    return (
        dtype == _F32
        and groups == 1
        and tuple(dilation) == (1, 1)
        and min(padding) >= 0
        and kw * c >= 8
        and packed_kernel_available()
    )


def forward_implicit(x, wm, out, bias, kernel, stride, padding):
    """``out`` (N, Ho, Wo, O) = conv of ``x`` (NCHW shape, either layout) with ``wm``
    (kh*kw*C, O) (+ ``bias``) as an implicit GEMM
    (:func:`ember.backends.kernels_convgemm.conv_implicit_fwd`): the input padded once as
    NHWC (a copy the size of the input, not the kh*kw times larger im2col matrix; an NCHW
    input is transposed and padded in the same pass), the weights packed per kernel row.
    Measured on 2 Xeon cores, channels-last input, ms: 32x16x32x32 -> 16 3x3 1.50 -> 0.79
    (PyTorch/oneDNN 0.74), 32x64x8x8 -> 64 0.84 -> 0.69 (0.61), 64x6x14x14 -> 16 5x5 0.41 ->
    0.22 (0.24). None where the compiled kernel is unavailable (``out`` untouched)."""
    from ..backends import jit
    from ..backends.kernels_gemm import NR

    kern = parallel_kernel("conv_implicit_fwd", 1 << 62) or jit.get("conv_implicit_fwd")
    if kern is None:
        return None
    xp = _padded_nhwc(x, padding, remember=True)
    if xp is None:
        return None
    kh, kw = kernel
    k = kw * x.shape[1]
    o = wm.shape[1]
    wpk = np.empty((kh, -(-o // NR), k, NR), _F32)
    pack_panels = jit.get("pack_panels")  # (small: one thread)
    for i in range(kh):
        pack_panels(wm[i * k : (i + 1) * k], wpk[i])
    b = np.ascontiguousarray(bias, dtype=_F32) if bias is not None else wm[0]
    with one_blas_thread():
        kern(xp, wpk, out, b, bias is not None, kh, kw, *stride)
    return out


def _padded_nhwc(x, padding, remember=False):
    """``x`` (NCHW shape) as a C-contiguous float32 NHWC array with ``padding`` (top,
    bottom, left, right) zeros around each image, or None without the compiled kernels.
    ``remember``: a forward's copy of an NCHW input is kept for its weight gradient (when
    autograd records; :func:`ember.ops._conv_util.remember_padded`); a weight gradient inside
    that VJP takes it instead of converting again."""
    from ..backends import jit
    from ._conv_util import forward_padded, remember_padded
    from ._layout import nchw_to_nhwc, nchw_to_nhwc_padded

    xt = x.transpose(0, 2, 3, 1)
    if not (xt.flags.c_contiguous and x.dtype == _F32):  # not channels-last float32
        if not remember and (fp := forward_padded(x, padding)) is not None:
            return fp[1]
        xp = nchw_to_nhwc_padded(x, padding)
        if xp is not None:
            if remember and _core._state.grad_enabled:
                remember_padded(x, padding, xp)
            return xp
        xt = nchw_to_nhwc(x, dtype=_F32)
    if not any(padding):
        return xt
    pad = parallel_kernel("pad_nhwc", 1 << 62) or jit.get("pad_nhwc")
    if pad is None:
        return None
    n, h, w, c = xt.shape
    pt, pb, pl, pr = padding
    xp = np.empty((n, h + pt + pb, w + pl + pr, c), _F32)
    pad(xt, xp, pt, pl)
    return xp


def grad_input_col2im(gm, wm, gxp, kernel, stride, dilation, nbi, workspace):
    """``gxp`` (N, Hp, Wp, C; zeroed) += the col2im of ``gm`` (NHWC output gradient) times
    ``wm`` (O, kh*kw*C; columns ordered (i, j, c)) in blocks of ``nbi`` images, all on numba's
    threads (:func:`ember.backends.kernels_convgemm.conv_gemm_grad_input`). Measured on 2
    Xeon cores against the pool's blocks of NumPy GEMMs and compiled scatters, ms: the input
    gradient of 8x64x32x32 -> 128 3x3 stride 2 2.15 -> 1.6-1.9. Returns ``gxp``, or None where the
    packed micro-kernel or numba's parallel layer is unavailable (``gxp`` untouched)."""
    from ..backends import jit
    from ._parallel import pack_b, packed_kernel_available

    if not packed_kernel_available():
        return None
    kern = parallel_kernel("conv_gemm_grad_input", 1 << 62) or jit.get("conv_gemm_grad_input")
    if kern is None:
        return None
    _, ho, wo, _ = gm.shape
    k = wm.shape[1]
    threads = jit._load_numba().config.NUMBA_NUM_THREADS
    scratch = workspace((threads, nbi * ho * wo, k), _F32, "col2im-cols")
    with one_blas_thread():
        kern(np.ascontiguousarray(gm, dtype=_F32), pack_b(np.ascontiguousarray(wm, dtype=_F32)),
             gxp, *kernel, *stride, *dilation, nbi, scratch)  # fmt: skip
    return gxp


def grad_weight(xm, gm, kernel, stride, dilation, padding, workspace):
    """The weight gradient as (kh*kw*C, O) rows ordered (i, j, c), from NHWC input ``xm``
    and NHWC output gradient ``gm``; ``padding`` (top, bottom, left, right). None where the
    compiled kernel is unavailable."""
    n, ho, wo, o = gm.shape
    k = kernel[0] * kernel[1] * xm.shape[3]
    found = _setup("conv_gemm_grad_weight", n, ho, wo, k, workspace)
    if found is None:
        return None
    kern, fptr, nbi, rpc, scratch = found
    parts = np.empty((_units(n, ho, nbi, rpc), k, o), _F32)
    with one_blas_thread():
        kern(fptr, xm, gm, parts, *kernel, *stride, *dilation, padding[0], padding[2],
             nbi, rpc, scratch)  # fmt: skip
    return _sum_parts(parts)


# Units of output rows for the implicit weight gradient: each writes its own partial sum
# (kh*kw*C x O), added in unit order; fixed by the shapes, never by the thread count.
_GW_UNITS = 8


def grad_weight_implicit(x, gm, kernel, stride, padding):
    """The weight gradient as (kh*kw*C, O) rows ordered (i, j, c), from ``x`` (NCHW shape,
    either layout) and the NHWC output gradient ``gm``, as an implicit GEMM
    (:func:`ember.backends.kernels_convgemm.conv_implicit_grad_weight`): the input padded
    once and read in place, no im2col matrix. Measured on 2 Xeon cores against the im2col +
    OpenBLAS loops (:func:`grad_weight`), ms: 16x16x32x32 -> 32 5x5 'valid' 2.39 -> 1.60
    (oneDNN 1.54), 8x64x32x32 -> 64 3x3 3.65 -> 3.13 (2.78), 32x16x32x32 -> 16 1.77 -> 1.23
    (1.09), 1x64x56x56 -> 64 1.46 -> 1.24 (1.12); stride 2 loses (1.66 -> 1.95: the A
    runs no longer overlap), so callers keep it for stride 1. None where the compiled
    kernel is unavailable."""
    from ..backends import jit
    from ..backends.kernels_gemm import NR

    kern = parallel_kernel("conv_implicit_grad_weight", 1 << 62) or jit.get(
        "conv_implicit_grad_weight"
    )
    if kern is None:
        return None
    xp = _padded_nhwc(x, padding)
    if xp is None:
        return None
    n, ho, wo, o = gm.shape
    kh, kw = kernel
    rows = n * ho
    if rows == 0 or wo == 0:  # an empty batch (or output): no term in any sum
        return np.zeros((kh * kw * xp.shape[3], o), _F32)
    rpu = -(-rows // min(rows, _GW_UNITS))
    npan = -(-o // NR)
    width = 16 if o <= 16 else npan * NR  # the columns the tiles write (all of them)
    parts = np.empty((-(-rows // rpu), kh * kw * xp.shape[3], width), _F32)
    # one gradient-row panel buffer per numba thread (small: any thread id is covered)
    bps = np.empty((jit._load_numba().config.NUMBA_NUM_THREADS, npan * wo * NR), _F32)
    with one_blas_thread():
        kern(xp, np.ascontiguousarray(gm, dtype=_F32), parts, kh, kw, *stride, rpu, bps)
    return _sum_parts(parts)[:, :o]


def backward(gm, wf, xm, gx, kernel, dilation, padding, workspace):
    """The stride-1 convolution's input gradient ``gx`` (N, H, W, C) and its weight gradient
    as (kh*kw*O, C) rows ordered (i', j', o) of the flipped kernel, from NHWC output gradient
    ``gm``, flipped weights ``wf`` (kh*kw*O, C) and NHWC input ``xm``; ``padding`` the
    forward's (top, bottom, left, right). None where the compiled kernel is unavailable."""
    n, h, w, c = gx.shape
    k = wf.shape[0]
    found = _setup("conv_gemm_bwd", n, h, w, k, workspace)
    if found is None:
        return None
    kern, fptr, nbi, rpc, scratch = found
    parts = np.empty((_units(n, h, nbi, rpc), k, c), _F32)
    # the gradient is gathered at input positions: the flipped kernel's padding
    kh, kw = kernel
    pt = dilation[0] * (kh - 1) - padding[0]
    pl = dilation[1] * (kw - 1) - padding[2]
    tiles = _tiles(scratch.shape[1], c, k)
    packed, wpk = _panels(wf)
    with one_blas_thread():
        kern(fptr, gm, wf, xm, gx, parts, kh, kw, *dilation, pt, pl, nbi, rpc, scratch, tiles,
             packed, wpk)  # fmt: skip
    return _sum_parts(parts)
