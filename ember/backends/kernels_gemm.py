"""A float32 GEMM of Ember's own for AVX-512 machines: a register-tiled micro-kernel over a
packed B (compiled by numba through :mod:`ember.backends.jit`).

The micro-kernel computes an ``MR x 32`` tile of C = A @ B as ``MR * 2`` zmm accumulators:
per step of K it loads 32 floats of the packed panel of B (two vectors), broadcasts one
element of each of the ``MR`` rows of A and issues ``MR * 2`` fused multiply-adds. It is a
numba intrinsic emitting the LLVM vector IR itself (numba's loops would keep the accumulators
in memory). B is packed once per call into panels of 32 columns, (K, 32) each, contiguous
and zero-padded; A is read in place through its strides (callers pass an A with contiguous
rows: a transposed A, the weight gradient's, ran slower here than in OpenBLAS). K runs in
chunks of ``KC`` (a chunk's panel stays in L1/L2) and rows in blocks of ``MC`` (A's block
stays in L2).

Every element of C is one chain of fused multiply-adds over K in order (a chunk's sum added
to C between chunks), whatever the tile, block or thread it falls in: the results do not
depend on the blocking or on the thread count.

Measured on one Xeon core (Sapphire Rapids), GFLOP/s, OpenBLAS 0.3.31 (one call / its best
small-matrix tiles) -> this kernel: (32, 256) @ (256, 256) 86/105 -> 169, (32, 65) @ (65, 256)
75 -> 157, (64, 784) @ (784, 128) 115/147 -> 165, (512, 256) @ (256, 768) 147 -> 169.

Example:
    >>> import numpy as np
    >>> from ember.backends.kernels_gemm import NR, pack_panels
    >>> b = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> p = np.empty((1, 2, NR), np.float32)
    >>> pack_panels(b, p)
    >>> p[0, :, :4].tolist()
    [[0.0, 1.0, 2.0, 0.0], [3.0, 4.0, 5.0, 0.0]]
"""

import numpy as np

try:
    from llvmlite import ir
    from numba import prange, types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]
    intrinsic = None  # type: ignore[assignment]

__all__ = [
    "NR",
    "pack_panels",
    "sgemm_packed_batched",
    "sgemm_packed_cols",
    "sgemm_packed_rows",
    "sgemm_panels",
]

NV = 2  # zmm vectors per tile row
NR = 16 * NV  # columns of a tile (and of a packed panel)
MR = 8  # rows of a full tile (16 accumulators, 2 B vectors, a broadcast: 19 of 32 zmm)
KC = 512  # K per chunk: a panel chunk is 64 KB, an 8-row A chunk 16 KB
MC = 256  # rows per block of A
# The tile loop prefetches the packed panel this many floats (16 steps of K, 2 KB) ahead:
# the panel streams from L2 and the hardware prefetcher alone left the FMAs waiting (one Xeon
# core, median of 6 alternated runs, GFLOP/s without -> with: 2048x256x768 148 -> 154,
# 2048x768x256 140 -> 152, 512x256x768 134 -> 140; two cores 274 -> 282, 253 -> 271, 255
# -> 251). Prefetches never fault, so reading past a panel's end is harmless.
PF_DIST = 512


def pack_panels(b, out):
    """``out`` (ceil(N / NR), K, NR) = the columns of ``b`` (K, N; any strides) in panels of
    ``NR``, the last one zero-padded."""
    for p in prange(out.shape[0]):
        _pack_panel(b, out, p)


def _pack_panel(b, bp, p):
    """Panel ``p`` of ``bp`` = columns ``p * NR`` onward of ``b`` (K, N), zero-padded."""
    k, n = b.shape
    j0 = p * NR
    w = min(NR, n - j0)
    for kk in range(k):
        row = bp[p, kk]
        br = b[kk]
        for j in range(w):
            row[j] = br[j0 + j]
        for j in range(w, NR):
            row[j] = 0.0


def _tile_codegen(mr, nv):
    """The code of the ``mr x 16 nv`` tile: C[rows, cols] (+)= A[rows, :k] @ panel[:k]
    (the panel's first ``16 nv`` columns)."""

    def codegen(context, builder, signature, args):
        a_, a_off, a_rs, a_cs, b_, b_off, k_, c_, c_off, ldc, acc = args
        f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
        v16 = ir.VectorType(f32, 16)

        def data(idx, val):
            arr = context.make_array(signature.args[idx])(context, builder, val)
            return builder.bitcast(arr.data, f32.as_pointer())

        ap, bp, cp = data(0, a_), data(4, b_), data(7, c_)
        mod = builder.module
        fma = mod.globals.get("llvm.fma.v16f32") or ir.Function(
            mod, ir.FunctionType(v16, [v16, v16, v16]), "llvm.fma.v16f32"
        )
        entry = builder.block
        # two copies of the loop: A's rows contiguous (a_cs == 1: every row's address is its
        # base plus the one induction variable, no per-row pointer increments competing with
        # the FMAs for ports: 278 -> 324-346 GFLOP/s on a 2048x1024x256 product, 2 Xeon
        # cores) and any column stride
        unit_loop = builder.append_basic_block("tile_loop_unit")
        strided_loop = builder.append_basic_block("tile_loop_strided")
        done = builder.append_basic_block("tile_done")
        zero = ir.Constant(v16, None)
        undef = ir.Constant(v16, ir.Undefined)
        lane0 = ir.Constant(ir.VectorType(i32, 16), [0] * 16)
        builder.cbranch(builder.icmp_signed("==", a_cs, ir.Constant(i64, 1)), unit_loop,
                        strided_loop)  # fmt: skip

        def emit_loop(loop, unit):
            builder.position_at_end(loop)
            i = builder.phi(i64)
            i.add_incoming(ir.Constant(i64, 0), entry)
            accs = [[builder.phi(v16) for _ in range(nv)] for _ in range(mr)]
            for row in accs:
                for p in row:
                    p.add_incoming(zero, entry)
            bstep = builder.add(b_off, builder.mul(i, ir.Constant(i64, NR)))
            if PF_DIST:
                i8p = ir.IntType(8).as_pointer()
                pf = mod.globals.get("llvm.prefetch.p0") or ir.Function(
                    mod, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
                )
                flags = [ir.Constant(i32, f) for f in (0, 3, 1)]  # read, keep everywhere, data
                for v in range(nv):
                    ahead = builder.add(bstep, ir.Constant(i64, PF_DIST + v * 16))
                    builder.call(pf, [builder.bitcast(builder.gep(bp, [ahead]), i8p), *flags])
            bvecs = []
            for v in range(nv):
                ptr = builder.gep(bp, [builder.add(bstep, ir.Constant(i64, v * 16))])
                bvecs.append(builder.load(builder.bitcast(ptr, v16.as_pointer()), align=4))
            astep = builder.add(a_off, i if unit else builder.mul(i, a_cs))
            new = []
            for r in range(mr):
                row = builder.add(astep, builder.mul(a_rs, ir.Constant(i64, r)))
                s = builder.insert_element(
                    undef, builder.load(builder.gep(ap, [row]), align=4), ir.Constant(i32, 0)
                )
                s = builder.shuffle_vector(s, undef, lane0)  # broadcast
                new.append([builder.call(fma, [s, bvecs[v], accs[r][v]]) for v in range(nv)])
            nxt = builder.add(i, ir.Constant(i64, 1))
            i.add_incoming(nxt, loop)
            for r in range(mr):
                for v in range(nv):
                    accs[r][v].add_incoming(new[r][v], loop)
            builder.cbranch(builder.icmp_signed("<", nxt, k_), loop, done)
            return new

        new_unit = emit_loop(unit_loop, True)
        new_strided = emit_loop(strided_loop, False)
        builder.position_at_end(done)
        new = []
        for r in range(mr):
            row = []
            for v in range(nv):
                p = builder.phi(v16)
                p.add_incoming(new_unit[r][v], unit_loop)
                p.add_incoming(new_strided[r][v], strided_loop)
                row.append(p)
            new.append(row)
        add = builder.icmp_signed("!=", acc, ir.Constant(acc.type, 0))
        for r in range(mr):
            row = builder.add(c_off, builder.mul(ldc, ir.Constant(i64, r)))
            for v in range(nv):
                ptr = builder.gep(cp, [builder.add(row, ir.Constant(i64, v * 16))])
                ptr = builder.bitcast(ptr, v16.as_pointer())
                val = new[r][v]
                summed = builder.fadd(builder.load(ptr, align=4), val)
                builder.store(builder.select(add, summed, val), ptr, align=4)
        return context.get_dummy_value()

    return codegen


def _make_tile(mr, nv):
    def tile(a, a_off, a_rs, a_cs, b, b_off, k, c, c_off, ldc, acc):
        """C[c_off + r*ldc + j] (+= when ``acc``) sum_i A[a_off + r*a_rs + i*a_cs] *
        B[b_off + i*NR + j] for r < mr, j < 16 nv, i < k (k >= 1); element offsets."""
        raise NotImplementedError("only callable from compiled kernels")

    if intrinsic is not None:

        def typer(typingctx, a, a_off, a_rs, a_cs, b, b_off, k, c, c_off, ldc, acc):
            sig = types.void(a, types.int64, types.int64, types.int64, b, types.int64,
                             types.int64, c, types.int64, types.int64, types.int64)  # fmt: skip
            return sig, _tile_codegen(mr, nv)

        typer.__name__ = f"_tile{mr}x{16 * nv}"
        return intrinsic(typer)
    return tile


_tile8, _tile4, _tile2, _tile1 = (_make_tile(m, 2) for m in (8, 4, 2, 1))
# half-width tiles (16 columns): a panel with at most 16 valid columns (16 output channels)
_half16, _half8, _half4, _half2, _half1 = (_make_tile(m, 1) for m in (16, 8, 4, 2, 1))


def _rows_of_panel(a, a_rs, a_cs, bp, boff, kc, c, coff, ldc, acc, m1, m2, half):
    """The tiles of rows ``m1:m2`` against one panel chunk (8, then 4, 2, 1 rows), of its 32
    columns, or of its first 16 when ``half``."""
    m = m1
    while m2 - m > 0:
        left = m2 - m
        off = m * a_rs
        co = coff + m * ldc
        if left >= 16 and half:  # (16 accumulators, as a full tile's 8 rows have)
            _half16(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            m += 16
        elif left >= 8:
            if half:
                _half8(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            else:
                _tile8(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            m += 8
        elif left >= 4:
            if half:
                _half4(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            else:
                _tile4(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            m += 4
        elif left >= 2:
            if half:
                _half2(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            else:
                _tile2(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            m += 2
        else:
            if half:
                _half1(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            else:
                _tile1(a, off, a_rs, a_cs, bp, boff, kc, c, co, ldc, acc)
            m += 1


def _gemm_block(a, bp, c, r0, r1, p0, p1, acc):
    """C[r0:r1, panels p0:p1] (+= when ``acc``) A[r0:r1] @ B (packed). The last panel's
    columns past C's edge go through a scratch tile and are copied."""
    k = a.shape[1]
    n = c.shape[1]
    edge = np.empty((MC, NR), np.float32)
    a_rs = a.strides[0] // 4
    a_cs = a.strides[1] // 4
    ldc = c.strides[0] // 4
    for k0 in range(0, k, KC):
        kc = min(KC, k - k0)
        add = acc if k0 == 0 else 1
        ak = a[:, k0:]
        for m1 in range(r0, r1, MC):
            m2 = min(r1, m1 + MC)
            for p in range(p0, p1):
                boff = (p * k + k0) * NR
                j0 = p * NR
                w = min(NR, n - j0)
                if w == NR or w == 16:
                    _rows_of_panel(ak, a_rs, a_cs, bp, boff, kc, c, j0, ldc, add, m1, m2,
                                   w == 16)  # fmt: skip
                else:  # a partial panel: into the scratch, then the valid columns
                    _rows_of_panel(ak[m1:], a_rs, a_cs, bp, boff, kc, edge, 0, NR, 0, 0,
                                   m2 - m1, w < 16)  # fmt: skip
                    for r in range(m1, m2):
                        cr = c[r]
                        er = edge[r - m1]
                        for j in range(w):
                            cr[j0 + j] = cr[j0 + j] + er[j] if add else er[j]


def _add_bias(c, bias, r0, r1, j0, j1):
    """C[r0:r1, j0:j1] += bias[j0:j1], row by row over slices (LLVM vectorizes this form;
    indexing ``c[r][j]`` and ``bias[j]`` in one loop it did not: 61 vs 9 us on 128x784)."""
    bb = bias[j0:j1]
    for r in range(r0, r1):
        cr = c[r, j0:j1]
        for j in range(j1 - j0):
            cr[j] = cr[j] + bb[j]


def _gemm_flat(a, aoff, a_rs, k, bp, c, coff, ldc, m, n, acc, edge):
    """C[coff + r * ldc + j] (+= when ``acc``) sum over kk < k of a[aoff + r * a_rs + kk] *
    B[kk, j], for r < m, j < n: an A whose rows are runs of ``k`` contiguous elements at a
    stride of ``a_rs`` in the flat array ``a`` (a convolution's input read in place as its
    im2col rows), B packed in ``bp`` (ceil(n / NR), k, NR), C flat. ``edge``: an (MC, NR)
    scratch for the last panel's columns past ``n``."""
    npan = (n + NR - 1) // NR
    for k0 in range(0, k, KC):
        kc = min(KC, k - k0)
        add = acc if k0 == 0 else 1
        ak = a[aoff + k0 :]
        for m1 in range(0, m, MC):
            m2 = min(m, m1 + MC)
            for p in range(npan):
                boff = (p * k + k0) * NR
                j0 = p * NR
                w = min(NR, n - j0)
                if w == NR or w == 16:
                    _rows_of_panel(ak, a_rs, 1, bp, boff, kc, c, coff + j0, ldc, add, m1, m2,
                                   w == 16)  # fmt: skip
                else:
                    _rows_of_panel(ak[m1 * a_rs :], a_rs, 1, bp, boff, kc, edge, 0, NR, 0, 0,
                                   m2 - m1, w < 16)  # fmt: skip
                    for r in range(m1, m2):
                        q = coff + r * ldc + j0
                        er = edge[r - m1]
                        for j in range(w):
                            c[q + j] = c[q + j] + er[j] if add else er[j]


def sgemm_packed_rows(a, bp, c, bias, has_bias, step, acc):
    """``c`` (M, N) (+= when ``acc``) ``a`` (M, K) @ B, B packed by :func:`pack_panels`, in
    blocks of ``step`` rows split over numba's threads; each block adds ``bias`` (N,) to its
    rows when ``has_bias``."""
    m = a.shape[0]
    n = c.shape[1]
    npan = bp.shape[0]
    for blk in prange((m + step - 1) // step):
        r0 = blk * step
        r1 = min(m, r0 + step)
        _gemm_block(a, bp, c, r0, r1, 0, npan, acc)
        if has_bias:
            _add_bias(c, bias, r0, r1, 0, n)


def sgemm_packed_cols(a, bp, c, step, acc):
    """``c`` (M, N) (+= when ``acc``) ``a`` @ B (packed), in blocks of ``step`` panels split
    over numba's threads (a short, wide C)."""
    m = a.shape[0]
    npan = bp.shape[0]
    for blk in prange((npan + step - 1) // step):
        p0 = blk * step
        _gemm_block(a, bp, c, 0, m, p0, min(npan, p0 + step), acc)


def sgemm_panels(a, b, bp, c, bias, has_bias, step, acc):
    """``c`` (M, N) (+= when ``acc``) ``a`` (M, K) @ ``b`` (K, N; any strides) (+ ``bias``
    (N,) when ``has_bias``), in blocks of ``step`` panels split over numba's threads: each
    block packs its own panels of ``b`` into ``bp`` (ceil(N / NR), K, NR) and computes
    their columns, so packing and the product are one parallel region (one thread wake-up)
    and no block reads panels another core packed."""
    n = b.shape[1]
    m = a.shape[0]
    npan = bp.shape[0]
    for blk in prange((npan + step - 1) // step):
        p0 = blk * step
        p1 = min(npan, p0 + step)
        for p in range(p0, p1):
            _pack_panel(b, bp, p)
        _gemm_block(a, bp, c, 0, m, p0, p1, acc)
        if has_bias:
            _add_bias(c, bias, 0, m, p0 * NR, min(n, p1 * NR))


def sgemm_packed_batched(x4, y4, o4):
    """``o4[i, j] = x4[i, j] @ y4[i, j]`` for every (outer, inner) batch item (4-D views of
    any strides, x4's rows contiguous: attention heads in place), the items split over
    numba's threads; each item packs its B into a panel buffer of its own."""
    n_out = o4.shape[0]
    n_in = o4.shape[1]
    k = x4.shape[3]
    n = o4.shape[3]
    m = o4.shape[2]
    npan = (n + NR - 1) // NR
    for it in prange(n_out * n_in):
        io = it // n_in
        ii = it - io * n_in
        b = y4[io, ii]
        bp = np.empty((npan, k, NR), np.float32)
        for p in range(npan):
            _pack_panel(b, bp, p)
        _gemm_block(x4[io, ii], bp, o4[io, ii], 0, m, 0, npan, 0)


try:
    from .jit import inline_helpers

    inline_helpers(
        globals(), ("_pack_panel", "_rows_of_panel", "_gemm_block", "_gemm_flat", "_add_bias")
    )
except ImportError:  # pragma: no cover
    pass
