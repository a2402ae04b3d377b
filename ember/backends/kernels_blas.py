"""Calling OpenBLAS's ``cblas_sgemm`` from compiled kernels, and float32 GEMMs split over
numba's threads (compiled by numba through :mod:`ember.backends.jit`).

The GEMM is called by address (an argument, so numba can cache the kernels that call it):
NumPy's OpenBLAS exports the ILP64 ``cblas_sgemm`` (64-bit integers), which
:func:`ember.backends.cpu.sgemm_address` finds. Operands are passed as byte addresses with
their leading dimensions and CBLAS transpose flags, so transposed views need no copy.
"""

import numpy as np

from .jit import inline_helpers

try:
    from numba import prange
    from numba.core import types as _types
    from numba.core.extending import intrinsic as _intrinsic
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]
    _intrinsic = None  # type: ignore[assignment]

__all__ = ["sgemm_batched", "sgemm_cols", "sgemm_rows", "sgemm_shared_a"]

NO_TRANS, TRANS = 111, 112  # CBLAS_TRANSPOSE
_ROW_MAJOR = 101
_F0 = np.float32(0.0)

# OpenBLAS (0.3.17+, its AVX-512 kernel families) computes products of up to 1e6
# multiply-adds with "small matrix" kernels that read the operands in place; larger ones pack
# both operands first. For a recurrent step's (1024, 256) @ (256, 32) the packing of the
# weight costs a fifth of the time: one core, 90 GFLOP/s as one call, 113 as calls of <= 64
# rows (AMD EPYC, NumPy's OpenBLAS; also (256, 1024) @ (1024, 32): 91 -> 109). Other kernel
# families have no such path: there a product stays one call.
SMALL_GEMM_MACS = 1_000_000


def _small_kernels():
    """Whether the GEMM blocks call OpenBLAS with its AVX-512 small-matrix kernels. MKL
    (:func:`ember.backends.cpu.blas_backend`) runs whole blocks faster than tiles (one Xeon
    core, GFLOP/s whole / tiles: (64, 784) @ (784, 128) 143 / 83, (512, 288) @ (288, 64)
    138 / 87, (64, 784) @ (128, 784)^T 118 / 56)."""
    from .cpu import blas_backend, openblas_avx512

    return openblas_avx512() and blas_backend() == "openblas"


def _tiles_pay(m, n, k, untransposed=True):
    """Whether a block of ``(m, k) @ (k, n)`` may run as small-matrix tiles on this CPU.

    On AMD EPYC cores OpenBLAS's packed SkylakeX kernel runs at ~100 GFLOP/s and the tiles at
    ~113 for any block whose B panel stays in cache (the limits of the tile rules below). An
    Intel Xeon (Sapphire Rapids) core runs the packed kernel at ~120-147, so there tiles pay
    only for thin products: few rows, few columns, or a short K. Measured on one core,
    GFLOP/s one call -> tiles: (32, 256) @ (256, 1024) 84 -> 130, (64, 784) @ (784, 128)
    115 -> 147, (64, 784) @ (784, 128)^T 89 -> 115, (512, 288) @ (288, 64) 129 -> 159,
    (512, 64) @ (64, 256) 122 -> 137, (286, 72) @ (72, 200) 121 -> 137; but (512, 256) @
    (256, 768) 147 -> 139, (64, 256) @ (256, 768) 126 -> 95, (512, 576) @ (576, 64)
    125 -> 122, (512, 96) @ (96, 128) 130 -> 126, (512, 64) @ (64, 256)^T 117 -> 75."""
    from .cpu import cpu_vendor

    if cpu_vendor() != "GenuineIntel":
        return True
    if m <= 32:
        return True
    if untransposed and n <= 64 and k <= 512:
        return True
    return n <= 256 and (m <= 64 or (untransposed and k <= 80))


def step_tiles(m, n, k):
    """``(tile_m, tile_n)`` for an untransposed float32 ``(m, k) @ (k, n)`` that is too small
    to split over threads (a recurrent step's product): 64 columns (all when fewer) and as
    many rows (a multiple of 8) as keep a tile within ``SMALL_GEMM_MACS``; ``(m, n)`` (one
    call) where no such tile exists or the BLAS has no small-matrix kernels. Measured on one
    AMD EPYC core, GFLOP/s: (32, 256) @ (256, 256) one call 60, 32x64 tiles 114, 32x16 30;
    (32, 1024) @ (1024, 64) one call 84, 8x64 tiles 115, 16x32 96 (narrow tiles are slow).

    Example:
        >>> from ember.backends.kernels_blas import step_tiles
        >>> step_tiles(3, 5, 7)
        (3, 5)
    """
    if not _small_kernels() or m * n * k <= SMALL_GEMM_MACS or not _tiles_pay(m, n, k):
        return m, n
    cols = min(n, 64)
    rows = min(m, SMALL_GEMM_MACS // (cols * k) // 8 * 8)
    if rows < 8 and rows < m:
        return m, n
    return rows, cols


def small_gemm_tiles(m, n, k):
    """``(tile_m, tile_n)``: the tiles of an untransposed float32 ``(m, k) @ (k, n)`` that
    OpenBLAS's small-matrix kernels run faster than one packed call, or ``(m, n)`` (one call).

    Tiles pay while B's panel stays in the core's cache: ``k <= 1024`` and ``k * n < 2**18``.
    A tile takes all of B's columns when 8 rows of them fit in ``SMALL_GEMM_MACS``, else the
    widest of 512, 256, ... 16 columns that leaves 24 rows. Measured on one AMD EPYC core,
    GFLOP/s one call -> tiles: (2048, 256) @ (256, 256) 102 -> 113, (1024, 64) @ (64, 2048)
    75 -> 106, (2048, 1024) @ (1024, 64) 91 -> 109, (128, 784) @ (784, 128) 100 -> 115;
    (2048, 1024) @ (1024, 256) 100 -> 82-92, (96, 2048) @ (2048, 256) 97 -> 87-95 (hence the
    limits).

    Example:
        >>> from ember.backends.kernels_blas import small_gemm_tiles
        >>> small_gemm_tiles(4096, 4096, 4096)
        (4096, 4096)
    """
    if not _small_kernels() or k > 1024 or k * n >= 1 << 18 or m * n * k <= SMALL_GEMM_MACS:
        return m, n
    if not _tiles_pay(m, n, k):
        return m, n
    narrower = [(cols, 24) for cols in (512, 256, 128, 64, 32, 16) if cols < n]
    for cols, least in [(n, 8), *narrower]:
        rows = SMALL_GEMM_MACS // (k * cols) // 8 * 8
        if rows >= least:
            return min(rows, m), cols
    return m, n


def sgemm(fptr, ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    """C (m, n) = op(A) @ op(B), row-major float32, through the ILP64 ``cblas_sgemm`` at
    address ``fptr``; ``a``, ``b``, ``c`` are byte addresses, ``ta``/``tb`` CBLAS flags.
    Only callable from compiled kernels (an intrinsic there).

    Example:
        >>> from ember.backends import kernels_blas
        >>> kernels_blas.NO_TRANS, kernels_blas.TRANS
        (111, 112)
    """
    raise NotImplementedError("sgemm is only callable from compiled kernels")


def sgemm_beta(fptr, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """C = op(A) @ op(B) + ``beta`` * C (float32 ``beta``; 0 ignores C's old values, NaN
    included, as :func:`sgemm`). Only callable from compiled kernels (an intrinsic there).

    Example:
        >>> from ember.backends.kernels_blas import sgemm_beta
        >>> callable(sgemm_beta)
        True
    """
    raise NotImplementedError("sgemm_beta is only callable from compiled kernels")


if _intrinsic is not None:
    from llvmlite import ir as _ir

    def _sgemm_codegen(with_beta):
        """The call of ``cblas_sgemm`` at the address in argument 0; the other arguments as
        :func:`sgemm`'s, plus ``beta`` before ``c`` when ``with_beta`` (else beta is 0)."""

        def codegen(context, builder, signature, args):
            i32, i64, f32 = _ir.IntType(32), _ir.IntType(64), _ir.FloatType()
            fp = f32.as_pointer()
            fnty = _ir.FunctionType(
                _ir.VoidType(), [i32, i32, i32, i64, i64, i64, f32, fp, i64, fp, i64, f32, fp, i64]
            )
            fn = builder.inttoptr(args[0], fnty.as_pointer())

            def i64v(v):
                return builder.sext(v, i64) if v.type.width < 64 else v

            def i32v(v):
                return builder.trunc(v, i32) if v.type.width > 32 else v

            if with_beta:
                beta = args[10]
                if beta.type != f32:
                    beta = builder.fptrunc(beta, f32)
                c, ldc = args[11], args[12]
            else:
                beta, c, ldc = _ir.Constant(f32, 0.0), args[10], args[11]
            builder.call(
                fn,
                [
                    _ir.Constant(i32, _ROW_MAJOR),
                    i32v(args[1]),
                    i32v(args[2]),
                    i64v(args[3]),
                    i64v(args[4]),
                    i64v(args[5]),
                    _ir.Constant(f32, 1.0),
                    builder.inttoptr(args[6], fp),
                    i64v(args[7]),
                    builder.inttoptr(args[8], fp),
                    i64v(args[9]),
                    beta,
                    builder.inttoptr(c, fp),
                    i64v(ldc),
                ],
            )
            return context.get_dummy_value()

        return codegen

    @_intrinsic
    def _sgemm_intrinsic(typingctx, fptr, ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
        sig = _types.void(fptr, ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
        return sig, _sgemm_codegen(False)

    @_intrinsic
    def _sgemm_beta_intrinsic(typingctx, fptr, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
        sig = _types.void(fptr, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)
        return sig, _sgemm_codegen(True)

    sgemm = _sgemm_intrinsic  # type: ignore[assignment]  # the compiled forms
    sgemm_beta = _sgemm_beta_intrinsic  # type: ignore[assignment]


def small_gemm_tiles_nt(m, n, k):
    """``(tile_m, tile_n)`` for a float32 ``(m, k) @ (n, k)^T`` (a linear layer: B is a
    transposed weight): 16 x 64 tiles of OpenBLAS's small-matrix kernels for ``k <= 800``,
    else ``(m, n)`` (one call). Measured on one AMD EPYC core, GFLOP/s one call -> tiles:
    (64, 784) @ (784, 128) 76 -> 112, (64, 256) @ (256, 768) 77 -> 104, (512, 784) @ (784,
    128) 100 -> 113, (512, 256) @ (256, 768) 103 -> 104; (512, 1024) @ (1024, 256) 99 -> 35
    (hence the limit: the transposed panel must stay in cache).

    Example:
        >>> from ember.backends.kernels_blas import small_gemm_tiles_nt
        >>> small_gemm_tiles_nt(8, 8, 8)
        (8, 8)
    """
    if not _small_kernels() or k > 800 or m * n * k <= SMALL_GEMM_MACS:
        return m, n
    if not _tiles_pay(m, n, k, untransposed=False):
        return m, n
    return min(16, m), min(64, n)


def sgemm_tiles(fptr, ta, tb, m, n, k, a, lda, a_row, b, ldb, b_col, beta, c, ldc, tile_m, tile_n):
    """C (m, n) = op(A) @ op(B) + ``beta`` * C as calls of ``tile_m`` x ``tile_n``
    (:func:`small_gemm_tiles`, :func:`step_tiles`) on the calling thread. Byte addresses;
    ``a_row``: bytes from one row of op(A) to the next, ``b_col`` from one column of op(B)
    to the next. Only callable from compiled kernels (inlined there).

    Example:
        >>> from ember.backends.kernels_blas import sgemm_tiles
        >>> callable(sgemm_tiles)
        True
    """
    for j0 in range(0, n, tile_n):
        cols = min(tile_n, n - j0)
        for i0 in range(0, m, tile_m):
            sgemm_beta(fptr, ta, tb, min(tile_m, m - i0), cols, k, a + i0 * a_row, lda,
                       b + j0 * b_col, ldb, beta, c + (i0 * ldc + j0) * 4, ldc)  # fmt: skip


def sgemm_rows(
    fptr, ta, tb, m, n, k, a, lda, a_row, b, ldb, b_col, out, bias, has_bias, step, tile_m, tile_n
):
    """``out`` (m, n) = op(A) @ op(B) (+ ``bias`` (n,) on every row when ``has_bias``) in
    blocks of ``step`` rows, one ``cblas_sgemm`` per block, the blocks split over numba's
    threads; each block adds the bias to its rows right after its GEMM (in parallel, and
    while they are still in cache, where a separate ``out += bias`` pass was one thread over
    the whole output). ``a_row``: bytes from one row of op(A) to the next (``lda * 4``
    untransposed, 4 transposed), ``b_col`` from one column of op(B) to the next; ``out`` has
    unit stride along its rows. A block runs as calls of ``tile_m`` x ``tile_n``
    (:func:`small_gemm_tiles`, :func:`small_gemm_tiles_nt`)."""
    nblk = (m + step - 1) // step
    ldc = out.strides[0] // 4
    for blk in prange(nblk):
        i0 = blk * step
        rows = min(step, m - i0)
        c = out[i0:].ctypes.data
        sgemm_tiles(fptr, ta, tb, rows, n, k, a + i0 * a_row, lda, a_row, b, ldb, b_col, _F0, c,
                    ldc, min(tile_m, rows), tile_n)  # fmt: skip
        if has_bias:
            for r in range(i0, i0 + rows):
                o = out[r]
                for j in range(n):
                    o[j] += bias[j]


def sgemm_cols(fptr, ta, tb, m, n, k, a, lda, a_row, b, ldb, b_col, c, ldc, step, tile_m, tile_n):
    """C = op(A) @ op(B) in blocks of ``step`` columns of C (see :func:`sgemm_rows`);
    ``b_col``: bytes from one column of op(B) to the next (4 untransposed, ``ldb * 4``
    transposed). A block runs as calls of ``tile_m`` x ``tile_n``."""
    nblk = (n + step - 1) // step
    for blk in prange(nblk):
        j0 = blk * step
        cols = min(step, n - j0)
        sgemm_tiles(fptr, ta, tb, m, cols, k, a, lda, a_row, b + j0 * b_col, ldb, b_col, _F0,
                    c + j0 * 4, ldc, tile_m, min(tile_n, cols))  # fmt: skip


def sgemm_batched(
    fptr,
    ta,
    tb,
    m,
    n,
    k,
    a,
    lda,
    a_outer,
    a_inner,
    b,
    ldb,
    b_outer,
    b_inner,
    c,
    ldc,
    c_step,
    nb,
    n_inner,
):
    """C[i] = op(A[i]) @ op(B[i]) for ``nb`` matrices, one ``cblas_sgemm`` each, split over
    numba's threads (attention's per-head products: each ~1M multiply-adds, too small to
    hand to Python threads one by one). The batch is two levels, so views such as the heads
    of a split ``qkv`` projection need no copy: matrix ``i`` of A starts at
    ``a + (i // n_inner) * a_outer + (i % n_inner) * a_inner`` bytes (B likewise); C's
    matrices are ``c_step`` bytes apart."""
    for i in prange(nb):
        io = i // n_inner
        ii = i - io * n_inner
        sgemm(fptr, ta, tb, m, n, k, a + io * a_outer + ii * a_inner, lda,
              b + io * b_outer + ii * b_inner, ldb, c + i * c_step, ldc)  # fmt: skip


def sgemm_shared_a(fptr, m, n, k, a, b, b_img, out, step, bias, has_bias, tile_m, tile_n):
    """``out[i]`` (m, n) = A (m, k) @ B[i] (k, n) (+ ``bias`` (m,) on every column when
    ``has_bias``) for every image i of ``out`` (N, m, n; C-contiguous), A and the B[i]
    untransposed float32 and C-contiguous (byte addresses ``a``, ``b``; images ``b_img``
    bytes apart): a 1x1 convolution of NCHW images. The units, ``step`` columns of one image
    each, split over numba's threads; each runs as ``tile_m`` x ``tile_n`` tiles
    (:func:`small_gemm_tiles`) and adds the bias to its own columns.

    Example:
        >>> from ember.backends.kernels_blas import sgemm_shared_a
        >>> callable(sgemm_shared_a)
        True
    """
    nimg = out.shape[0]
    per = (n + step - 1) // step
    for u in prange(nimg * per):
        img = u // per
        j0 = (u - img * per) * step
        cols = min(step, n - j0)
        o = out[img]
        sgemm_tiles(fptr, NO_TRANS, NO_TRANS, m, cols, k, a, k, k * 4, b + img * b_img + j0 * 4,
                    n, 4, _F0, o.ctypes.data + j0 * 4, n, tile_m, tile_n)  # fmt: skip
        if has_bias:
            for r in range(m):
                orow = o[r]
                br = bias[r]
                for j in range(j0, j0 + cols):
                    orow[j] += br


inline_helpers(globals(), ("sgemm_tiles",))
