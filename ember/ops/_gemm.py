"""Matrix products on Ember's threads: ``gemm`` (one BLAS call, or row/column blocks of a large
product on the pool or as compiled ``cblas_sgemm`` blocks on numba's threads), Ember's packed
float32 micro-kernel GEMM (``pack_b``, the panel scratch buffers and the rules for when it is
used), batched ``matmul`` with its batch splits, and the ones-vector helpers (``ones_vector``,
``row_sums``).

Separate from ``_parallel.py``, which keeps the thread machinery these build on (BLAS thread
control, the pool and ``parallel_for``, ``parallel_kernel``); ``_parallel`` re-exports the
public names here, so ``from ._parallel import gemm`` keeps working. The split thresholds
depend on the sizes and dtypes only, never the thread count.
"""

from __future__ import annotations

import threading

import numpy as np

from .._env import env_flag, env_int
from ..backends import jit
from ..backends.cpu import openblas_avx512 as _openblas_avx512
from ._layout import c_order
from ._parallel import (
    _get_blas_threads,
    get_num_threads,
    one_blas_thread,
    parallel_for,
    parallel_kernel,
)

# GEMMs of at least this many multiply-adds are split over the pool: about 100 us of work on
# one core, so 16M with OpenBLAS's AVX-512 kernels and 8M with slower ones (the 128x784x128
# GEMMs of an MLP step, 12.8M, measured faster unsplit on AVX-512 and split on AVX2).
_PAR_GEMM_MACS = env_int("EMBER_PAR_GEMM_MACS", 1 << 24 if _openblas_avx512() else 1 << 23)
# With the compiled split (float32 blocks as cblas_sgemm calls on numba's threads, ~2-4 us per
# launch instead of the pool's 10-100 us hand-off) splitting pays from ~2M multiply-adds:
# measured on 2 AMD EPYC cores, 128x784x128 258 -> 147 us, 128x256x128 85 -> 55 us,
# 256x128x64 44 -> 29 us, 96x128x96 26 -> 24 us.
_PAR_GEMM_MACS_JIT = env_int("EMBER_PAR_GEMM_MACS_JIT", 1 << 21)


# below this many multiply-adds no GEMM is split or packed (whatever the dtype)
_SMALL_GEMM_MACS = min(_PAR_GEMM_MACS, _PAR_GEMM_MACS_JIT)


def _split_threshold(dtype) -> int:
    """Multiply-adds from which a GEMM of ``dtype`` is split over the threads (by size and
    dtype only, never the thread count)."""
    if dtype == _F32 and _compiled_gemm_available():
        return min(_PAR_GEMM_MACS, _PAR_GEMM_MACS_JIT)
    return _PAR_GEMM_MACS


def _compiled_gemm_available() -> bool:
    from ..backends import jit
    from ..backends.cpu import sgemm_address

    return jit.parallel_available() and bool(sgemm_address())


def gemm(a, b, out=None, bias=None):
    """``a @ b`` (``+ bias`` on every row when given) for 2-D ``a`` (M, K) and ``b`` (K, N):
    one BLAS call, or, for large products, row (or column) blocks of the output on Ember's
    threads, each block adding the bias to its own rows. Each output element is computed the
    same way whatever the split, so results do not depend on the thread count.

    Example:
        >>> import numpy as np
        >>> from ember.ops._parallel import gemm
        >>> a, b = np.ones((3, 4), np.float32), np.ones((4, 2), np.float32)
        >>> gemm(a, b).tolist()
        [[4.0, 4.0], [4.0, 4.0], [4.0, 4.0]]
        >>> gemm(a, b, bias=np.array([1.0, 2.0], np.float32))[0].tolist()
        [5.0, 6.0]
    """
    m, k = a.shape
    n = b.shape[-1]
    macs = m * k * n
    if macs < _SMALL_GEMM_MACS and (bias is None or bias.dtype == a.dtype == b.dtype):
        # never split nor packed: one BLAS call (a 64x84x120 product: 24 -> 11 us)
        with one_blas_thread():
            out = np.matmul(a, b, out=out)
        if bias is not None:
            out += bias
        return out
    if bias is not None:
        if bias.shape != (n,):  # another broadcast: added after the product
            out = gemm(a, b, out)
            out += bias
            return out
        bias = bias.astype(out.dtype if out is not None else np.result_type(a, b), copy=False)
    dtype = out.dtype if out is not None else np.result_type(a.dtype, b.dtype)
    packed = _gemm_packed(a, b, out, bias, macs)
    if packed is not None:
        return packed
    # NOTE: the blocks depend on the shape only, never on the thread count: BLAS rounds the
    # edge rows of a block differently, so a thread-dependent split would make results
    # depend on ember.set_num_threads (they are bitwise the same for any count).
    split = m if m >= n else n
    step = -(-max(64, -(-split // _GEMM_BLOCKS)) // 16) * 16
    if macs < _split_threshold(dtype) or dtype.kind not in "fc" or split <= step:
        with one_blas_thread():  # small, not floating point, or one block anyway
            out = np.matmul(a, b, out=out)
        if bias is not None:
            out += bias
        return out
    if out is None:
        out = np.empty((m, n), dtype)
    a, b = _untransposed_for_tiles(a, b, m >= n, step, macs)
    if m >= n:  # row blocks: contiguous slices of the output
        if _gemm_compiled(a, b, out, True, step, macs, bias):
            return out

        def rows(i0, i1, slot):
            np.matmul(a[i0:i1], b, out=out[i0:i1])
            if bias is not None:
                out[i0:i1] += bias

        parallel_for(m, step, rows, macs)
    else:  # column blocks (a short, wide output): strided slices, still BLAS operands
        if _gemm_compiled(a, b, out, False, step, macs):
            if bias is not None:
                out += bias
            return out

        def cols(j0, j1, slot):
            np.matmul(a, b[:, j0:j1], out=out[:, j0:j1])
            if bias is not None:
                out[:, j0:j1] += bias[j0:j1]

        parallel_for(n, step, cols, macs)
    return out


# float32 GEMMs from this many multiply-adds run Ember's packed micro-kernel where it is used
# (:func:`packed_gemm_available`); below it one BLAS call on one thread costs less (2 Xeon
# cores, us, BLAS / packed: 64x64x64 4.9 / 13.3, 64x128x128 22 / 33, 128x128x128 37 / 36,
# 128x256x128 67 / 50 (the packed one on two threads from 2M)).
_PACKED_MIN_MACS = env_int("EMBER_PACKED_GEMM_MIN_MACS", 1 << 21)
_PACKED: list = []


def packed_kernel_available() -> bool:
    """Whether Ember's own AVX-512 micro-kernel (:mod:`ember.backends.kernels_gemm`) can run
    here: numba's parallel layer and a CPU with AVX-512 (Intel or AMD), unless
    ``EMBER_PACKED_GEMM=0``. The convolutions' implicit GEMMs use it wherever it runs
    (:func:`ember.ops._conv_gemm.implicit_usable`); plain GEMMs only where it beats the BLAS
    (:func:`packed_gemm_available`). On a 2-core AMD EPYC (Zen 4) against im2col on
    OpenBLAS, ms per training step alternated in fresh processes: lenet 4.81-4.89 -> 4.09-
    4.17, resnet 51.5-54.2 -> 45.9-47.2; forward+backward of a 'valid' 5x5 16 -> 32 over
    32x32 9.53 -> 7.37-7.63, a 3x3 stride-2 64 -> 128 9.28-9.31 -> 8.25-8.30.

    Example:
        >>> from ember.ops._parallel import packed_kernel_available
        >>> packed_kernel_available() in (True, False)
        True
    """
    if not _PACKED:
        ok = env_flag("EMBER_PACKED_GEMM", True)
        if ok and jit.parallel_available():
            feats = jit._load_numba().config.CPU_FEATURES
            if not feats:
                from llvmlite import binding as ll

                feats = ll.get_host_cpu_features().flatten()
            ok = "+avx512f" in feats.split(",")
        _PACKED.append(bool(ok))
    return _PACKED[0] and jit.parallel_available()


def packed_gemm_available() -> bool:
    """Whether float32 GEMMs (linear layers' products) run Ember's own AVX-512 micro-kernel
    instead of the BLAS: where it runs (:func:`packed_kernel_available`) on Intel CPUs. There
    it beats OpenBLAS's kernels (one Xeon core, GFLOP/s: (2048, 256) @ (256, 768) 147 -> 166,
    (32, 256) @ (256, 256) 105 -> 169; two threads 2048x256x768 280 -> 331, PyTorch's MKL
    306). On an AMD EPYC (Zen 4, one thread, CPU ms, OpenBLAS / micro-kernel) OpenBLAS won:
    the mlp step 1.00-1.06 / 1.13-1.18, the LSTM step 53.9-55.3 / 57.7-58.0, 2048x256x768
    8.2-9.0 / 8.3-9.0; there only the convolutions use it.

    Example:
        >>> from ember.ops._parallel import packed_gemm_available
        >>> packed_gemm_available() in (True, False)
        True
    """
    if not _PACKED_GEMMS:
        from ..backends.cpu import cpu_vendor

        _PACKED_GEMMS.append(cpu_vendor() == "GenuineIntel")
    return _PACKED_GEMMS[0] and packed_kernel_available()


_PACKED_GEMMS: list = []  # (whether the CPU is one where plain GEMMs take the micro-kernel)


def mkl_blocks() -> bool:
    """Whether large float32 GEMMs run as MKL blocks (:func:`ember.backends.cpu.blas_backend`)
    rather than the packed micro-kernel: MKL beat it on the GPT's products (2 Xeon cores,
    steps/s: gpt 4.57 -> 4.84 without the micro-kernel for them). The panel blocks of a small A
    (a linear layer's batch) keep the micro-kernel (mlp 952 -> 1069 steps/s with it)."""
    from ..backends.cpu import blas_backend

    return blas_backend() == "mkl"


def packed_gemm_preferred() -> bool:
    """Whether the packed micro-kernel runs the large float32 products (row blocks over packed
    panels, batched heads, the LSTM's step products): where it is available
    (:func:`packed_gemm_available`) and the blocks' BLAS is not MKL (:func:`mkl_blocks`)."""
    return packed_gemm_available() and not mkl_blocks()


def pack_b(b, out=None):
    """``b`` (K, N) float32 in the micro-kernel's panels (:func:`ember.backends.kernels_gemm.
    pack_panels`), packed on numba's threads when large, into ``out`` (ceil(N / 32), K, 32;
    contiguous) when given."""
    from ..backends import jit
    from ..backends.kernels_gemm import NR

    k, n = b.shape
    bp = np.empty((-(-n // NR), k, NR), np.float32) if out is None else out
    (parallel_kernel("pack_panels", b.size * 8) or jit.get("pack_panels"))(b, bp)
    return bp


def _gemm_packed(a, b, out, bias, macs):
    """``a @ b`` (+ ``bias``) through the packed micro-kernel; None where it does not apply
    (see :func:`packed_gemm_available`; float32 only, no overlap between the output and an
    operand, A with contiguous rows or small: a large transposed A, the weight gradient's
    ``g.T``, ran slower here than in OpenBLAS).

    A small A (a linear layer's batch: up to 256K elements, 1 MB) runs as blocks of B's
    panels, one per thread, each packing its own panels and computing their columns
    (:func:`ember.backends.kernels_gemm.sgemm_panels`: one parallel region, no panel read
    across cores); a larger A as row blocks over panels packed first. Panels go to a
    per-thread scratch buffer reused across calls (fresh pages cost 20-40 us per 400 KB on
    a VM). Each element is the same chain of multiply-adds in every split. Measured on 2
    Xeon cores, us: (128, 784) @ W.T (784, 128) 170 -> 127, (64, 400) @ (400, 120)
    80 -> 46, (2048, 256) @ (256, 256) 960 -> 800."""
    if macs < _PACKED_MIN_MACS or not (a.dtype == b.dtype == _F32):
        return None
    if out is not None and (
        out.dtype != _F32
        or out.strides[1] != 4
        or np.may_share_memory(out, a)
        or np.may_share_memory(out, b)
    ):
        return None
    if bias is not None and bias.dtype != _F32:
        return None
    m, k = a.shape
    n = b.shape[1]
    small = m * k <= _PANELS_MAX_A
    if k == 0 or n < 32 or (a.strides[1] != 4 and not small):
        return None  # (fewer than 32 columns: half the tile would be wasted)
    if not (packed_gemm_available() if small else packed_gemm_preferred()):
        return None
    from ..backends import jit
    from ..backends.kernels_gemm import NR

    if a.strides[1] != 4:
        a = c_order(a)  # (a transposed matrix: the tiled copy where NumPy's crawls)
    if out is None:
        out = np.empty((m, n), np.float32)
    npan = -(-n // NR)
    bp = _scratch("panels", (npan, k, NR))
    split = macs >= _PAR_GEMM_MACS_JIT
    bv = np.ascontiguousarray(bias) if bias is not None else _NO_BIAS
    with one_blas_thread():  # the partial panels' scratch is numba's; BLAS is not called
        if small and npan >= 2:
            kern = (parallel_kernel("sgemm_panels", 1 << 62) if split else None) or jit.get(
                "sgemm_panels"
            )
            blocks = min(npan, max(2, get_num_threads())) if split else 1
            kern(a, b, bp, out, bv, bias is not None, -(-npan // blocks), 0)
            return out
        (parallel_kernel("pack_panels", b.size * 8) or jit.get("pack_panels"))(b, bp)
        if m >= n or not split:
            name = "sgemm_packed_rows"
            kern = (parallel_kernel(name, 1 << 62) if split else None) or jit.get(name)
            step = -(-max(64, -(-m // _GEMM_BLOCKS)) // 16) * 16 if split else m
            kern(a, bp, out, bv, bias is not None, max(step, 1), 0)
            return out
        kern = parallel_kernel("sgemm_packed_cols", 1 << 62) or jit.get("sgemm_packed_cols")
        kern(a, bp, out, max(1, -(-npan // _GEMM_BLOCKS)), 0)
    if bias is not None:
        out += bias
    return out


# A (M, K) up to this many elements runs as panel blocks that pack their own panels
_PANELS_MAX_A = env_int("EMBER_GEMM_PANELS_MAX_A", 1 << 18)
# scratch buffers above this many floats are allocated per call, not kept
_SCRATCH_MAX = 1 << 24
_scratch_local = threading.local()


def _scratch(name: str, shape: tuple) -> np.ndarray:
    """A float32 buffer of ``shape`` (uninitialized), this thread's own and reused by the
    next call on it that asks for ``name`` (no kernel keeps it past its call).

    Example:
        >>> from ember.ops._gemm import _scratch
        >>> _scratch("panels", (2, 3, 4)).base is _scratch("panels", (5,)).base
        True
    """
    size = 1
    for d in shape:
        size *= d
    if size > _SCRATCH_MAX:
        return np.empty(shape, np.float32)
    buf = getattr(_scratch_local, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1 << 16), np.float32)
        setattr(_scratch_local, name, buf)
    return buf[:size].reshape(shape)


def _untransposed_for_tiles(a, b, rowwise, step, macs):
    """``a`` and ``b``, a transposed float32 one copied untransposed where that is cheap
    (<= 1/256 element per multiply-add: a linear layer's weight) and lets the blocks run as
    OpenBLAS's small-matrix tiles (:func:`ember.backends.kernels_blas.small_gemm_tiles`)."""
    if a.dtype != _F32 or b.dtype != _F32:
        return a, b
    m, k = a.shape
    n = b.shape[1]
    block = (min(step, m), n) if rowwise else (m, min(step, n))
    from ..backends.kernels_blas import small_gemm_tiles

    if small_gemm_tiles(*block, k) == block:
        return a, b
    if a.strides[1] != 4 and a.size * 256 <= macs:
        a = c_order(a)
    if b.strides[1] != 4 and b.size * 256 <= macs:
        b = c_order(b)
    return a, b


_GEMM_BLOCKS = 4  # blocks per split GEMM (measured: 2-4 blocks beat 8 on 2 cores)
_F32 = np.dtype(np.float32)


def _blas_operand(x):
    """(CBLAS transpose flag, leading dimension) of a 2-D float32 array as a row-major
    operand without a copy, or None."""
    s0, s1 = x.strides
    r, c = x.shape
    if s1 == 4 and s0 % 4 == 0 and s0 >= 4 * max(c, 1):
        return 111, s0 // 4  # CblasNoTrans
    if s0 == 4 and s1 % 4 == 0 and s1 >= 4 * max(r, 1):
        return 112, s1 // 4  # CblasTrans
    return None


def _sgemm_kernel(name, a, b, out, macs):
    """``(kernel, sgemm address, a's and b's (flag, ld))`` for the compiled float32 GEMM
    kernel ``name`` on 2-D operands ``a``, ``b`` and output ``out``, or None where it does
    not apply (another dtype, operands BLAS cannot take without a copy, no numba)."""
    if not (a.dtype == b.dtype == out.dtype == _F32) or out.strides[1] != 4:
        return None
    oa, ob = _blas_operand(a), _blas_operand(b)
    if oa is None or ob is None or out.strides[0] < 4 * out.shape[1]:
        return None
    from ..backends.cpu import sgemm_address

    fptr = sgemm_address()
    kern = parallel_kernel(name, macs) if fptr else None
    return None if kern is None else (kern, fptr, oa, ob)


def _group_step(shape, strides):
    """The byte step of a group of batch dimensions walked as one flat index, or None where
    the group cannot be (its strides do not nest). Size-1 dimensions are free."""
    step = None
    expect = None
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size == 1:
            continue
        if step is None:
            step = stride
        elif stride != expect:
            return None
        expect = stride * size
    return 0 if step is None else step


def _batch_split(batch, xs, ys):
    """``(n_inner, x_outer, x_inner, y_outer, y_inner)``: the batch dimensions of ``x`` and
    ``y`` (byte strides ``xs``, ``ys``) as an outer and an inner flat index, each walked with
    one byte step, or None where no split point gives both operands such steps."""
    for cut in range(len(batch), -1, -1):
        outer, inner = batch[:cut], batch[cut:]
        steps = (
            _group_step(outer, xs[:cut]),
            _group_step(inner, xs[cut:]),
            _group_step(outer, ys[:cut]),
            _group_step(inner, ys[cut:]),
        )
        if None not in steps:
            n_inner = 1
            for d in inner:
                n_inner *= d
            return (max(n_inner, 1), *steps)
    return None


def blas_loop_kernel(name):
    """``(kernel, sgemm address, numba threads)`` for a compiled loop ``name`` that calls
    ``cblas_sgemm`` from its ``prange`` units (convolution, attention), or None (no numba
    parallel layer, no cblas). Any size takes the parallel build: the units are fixed by the
    shapes and one thread runs the same build.

    Example:
        >>> from ember.ops._parallel import blas_loop_kernel
        >>> found = blas_loop_kernel("sdpa_fwd_heads")
        >>> found is None or len(found) == 3
        True
    """
    from ..backends.cpu import sgemm_address

    fptr = sgemm_address()
    if not fptr:
        return None
    kern = parallel_kernel(name, 1 << 62)
    if kern is None:
        return None
    from ..backends import jit

    return kern, fptr, jit._load_numba().get_num_threads()


def _batched_compiled(x, y, o3, macs):
    """``o3[i] = x[i] @ y[i]`` over the flattened batch (float32) as one compiled kernel:
    one ``cblas_sgemm`` per matrix on numba's threads, reading strided views such as
    attention heads in place; False where it does not apply."""
    batch = x.shape[:-2]
    split = _batch_split(batch, x.strides[:-2], y.strides[:-2])
    if split is None:
        return False
    if _batched_packed(x, y, o3, split):
        return True
    first = (0,) * len(batch)
    found = _sgemm_kernel("sgemm_batched", x[first], y[first], o3[0], macs)
    if found is None:
        return False
    kern, fptr, oa, ob = found
    n_inner, x_outer, x_inner, y_outer, y_inner = split
    nb, m, n = o3.shape
    k = x.shape[-1]
    with one_blas_thread():
        kern(fptr, oa[0], ob[0], m, n, k, x.ctypes.data, oa[1], x_outer, x_inner,
             y.ctypes.data, ob[1], y_outer, y_inner, o3.ctypes.data, n, o3.strides[0],
             nb, n_inner)  # fmt: skip
    return True


def _batched_packed(x, y, o3, split):
    """The batched float32 product through the packed micro-kernel
    (:func:`packed_gemm_available`), each item packing its own B; False where it does not
    apply (rows of x not contiguous: a transposed A keeps the BLAS; fewer than 32 columns;
    MKL blocks chosen: :func:`packed_gemm_preferred`)."""
    m, k = x.shape[-2:]
    n = y.shape[-1]
    if x.strides[-1] != 4 or n < 32 or k == 0 or not packed_gemm_preferred():
        return False
    from numpy.lib.stride_tricks import as_strided

    n_inner, x_outer, x_inner, y_outer, y_inner = split
    n_outer = o3.shape[0] // n_inner
    x4 = as_strided(x, (n_outer, n_inner, m, k), (x_outer, x_inner) + x.strides[-2:])
    y4 = as_strided(y, (n_outer, n_inner, k, n), (y_outer, y_inner) + y.strides[-2:])
    o4 = o3.reshape(n_outer, n_inner, m, n)
    kern = parallel_kernel("sgemm_packed_batched", 1 << 62)
    if kern is None:
        return False
    kern(x4, y4, o4)
    return True


def _gemm_compiled(a, b, out, rowwise, step, macs, bias=None):
    """The split float32 GEMM as one compiled kernel whose blocks (the same as the pool's:
    fixed by the shape) run on numba's threads, each one ``cblas_sgemm`` call; False where
    it does not apply. Between the row kernels of a transformer step the pool's hand-off
    and numba's spinning threads would otherwise take turns on the cores. ``bias`` (row
    blocks only): added to each block's rows after its GEMM."""
    if bias is not None and (not rowwise or bias.dtype != _F32):
        return False
    found = _sgemm_kernel("sgemm_rows" if rowwise else "sgemm_cols", a, b, out, macs)
    if found is None:
        return False
    kern, fptr, oa, ob = found
    m, k = a.shape
    n = b.shape[1]
    ldc = out.strides[0] // 4
    # a block's tiles for OpenBLAS's small-matrix kernels (untransposed operands, or a
    # transposed B: a linear layer's weight; a transposed A measured no faster as tiles)
    block = (min(step, m), n) if rowwise else (m, min(step, n))
    tiles = block
    if oa[0] == 111:
        from ..backends.kernels_blas import small_gemm_tiles, small_gemm_tiles_nt

        tiles = (small_gemm_tiles if ob[0] == 111 else small_gemm_tiles_nt)(*block, k)
    with one_blas_thread():
        if rowwise:
            has_bias = bias is not None
            bv = np.ascontiguousarray(bias) if has_bias else _NO_BIAS
            kern(fptr, oa[0], ob[0], m, n, k, a.ctypes.data, oa[1], a.strides[0],
                 b.ctypes.data, ob[1], b.strides[1], out, bv, has_bias, step,
                 *tiles)  # fmt: skip
        else:
            kern(fptr, oa[0], ob[0], m, n, k, a.ctypes.data, oa[1], a.strides[0],
                 b.ctypes.data, ob[1], b.strides[1], out.ctypes.data, ldc, step,
                 *tiles)  # fmt: skip
    return True


_NO_BIAS = np.zeros(1, np.float32)


def matmul(x, y):
    """``np.matmul(x, y)`` for operands of >= 2 dims, with large products spread over Ember's
    threads: a batch times one matrix is one :func:`gemm`; equal batch shapes are split over
    the batch; other broadcasts run as one call.

    Example:
        >>> import numpy as np
        >>> from ember.ops._parallel import matmul
        >>> matmul(np.ones((2, 3, 4)), np.ones((4, 5))).shape
        (2, 3, 5)
    """
    m, k, n = x.shape[-2], x.shape[-1], y.shape[-1]
    # below both thresholds no dtype's GEMM is split: skip their checks (~3 us per call)
    least = min(_PAR_GEMM_MACS, _PAR_GEMM_MACS_JIT)
    if x.size * n < least and y.size * m < least:
        if _get_blas_threads is None or _get_blas_threads() == 1:  # (one_blas_thread's test)
            return np.matmul(x, y)
        with one_blas_thread():
            return np.matmul(x, y)
    least = _split_threshold(np.result_type(x.dtype, y.dtype))
    if x.size * n < least and y.size * m < least:  # small: one BLAS call
        with one_blas_thread():
            return np.matmul(x, y)
    if y.ndim == 2:
        return gemm(x.reshape(-1, k), y).reshape(x.shape[:-1] + (n,))
    batch = x.shape[:-2]
    nb = 1
    for d in batch:
        nb *= d
    macs = nb * m * k * n
    if (
        macs < least
        or nb < 2
        or y.shape[:-2] != batch
        or np.result_type(x.dtype, y.dtype).kind not in "fc"
    ):
        with one_blas_thread():
            return np.matmul(x, y)
    out = np.empty(batch + (m, n), np.result_type(x.dtype, y.dtype))
    o3 = out.reshape((nb, m, n))
    if _batched_compiled(x, y, o3, macs):
        return out
    xb, yb = x.reshape((nb, m, k)), y.reshape((nb, k, n))

    def block(i0, i1, slot):
        np.matmul(xb[i0:i1], yb[i0:i1], out=o3[i0:i1])

    parallel_for(nb, max(1, -(-nb // _GEMM_BLOCKS)), block, macs)
    return out


_ONES: dict = {}


def ones_vector(n: int, dtype) -> np.ndarray:
    """A cached read-only vector of ``n`` ones: sums over an axis as one BLAS
    matrix-vector product (``ones @ rows`` or ``a @ ones``)."""
    key = (n, np.dtype(dtype).str)
    v = _ONES.get(key)
    if v is None:
        if len(_ONES) > 32:
            _ONES.clear()
        v = _ONES[key] = np.ones(n, dtype)
        v.flags.writeable = False
    return v


def row_sums(a):
    """Sums over the last axis of a C-contiguous float32/float64 array as one BLAS
    matrix-vector product (NumPy's last-axis reduction is ~5x slower for rows of ~100
    elements), keeping the last axis with length 1; other arrays use NumPy.

    Example:
        >>> import numpy as np
        >>> from ember.ops._parallel import row_sums
        >>> row_sums(np.ones((2, 3), np.float32)).tolist()
        [[3.0], [3.0]]
    """
    n = a.shape[-1] if a.ndim else 0
    if (
        a.ndim < 1
        or n < 16
        or a.dtype.kind != "f"
        or a.dtype.itemsize < 4
        or not a.flags.c_contiguous
        or a.size == 0
    ):
        return np.add.reduce(a, axis=-1, keepdims=True)
    with one_blas_thread():
        return (a.reshape(-1, n) @ ones_vector(n, a.dtype)).reshape(a.shape[:-1] + (1,))
