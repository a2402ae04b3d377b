"""AVX-512 VNNI kernels (numba): u8 x s8 -> s32 GEMM with ``vpdpbusd``, and its helpers.

LLVM does not turn a plain ``acc += int32(a) * int32(b)`` loop into ``vpdpbusd`` (it widens
to 32-bit lanes and ends up slower than float32 sgemm), so the micro-kernel is written as a
numba intrinsic that emits ``llvm.x86.avx512.vpdpbusd.512`` itself: a 4-row x 64-column tile
of 16 zmm accumulators, kept in registers across the whole K loop. Only imported when numba
is present and the CPU reports ``avx512vnni``; :mod:`._kernels` picks the path.

Layouts (all padded with zeros so the tile never reads out of bounds):
  A: uint8 ``(Mp, Kp)``, ``Mp % 4 == 0``, ``Kp % 4 == 0``;
  B: int8 weights ``(N, K)`` packed by :func:`pack_b` into bytes ``[N/64][K/4][64][4]``;
  C: int32 ``(Mp, Np)``, ``Np % 64 == 0``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..backends import jit

jit._load_numba()  # numba's target options (512-bit vectors) before anything here compiles

MR = 4  # rows of a tile
NV = 4  # zmm vectors (16 int32 columns each) per tile row: 64 columns
NB = 16 * NV


@intrinsic
def _tile(typingctx, a, a_off, lda, b, b_off, k4, out, o_off, ldo):
    sig = types.void(a, a_off, lda, b, b_off, k4, out, o_off, ldo)

    def codegen(context, builder, signature, args):
        a_, a_off_, lda_, b_, b_off_, k4_, out_, o_off_, ldo_ = args
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        v16 = ir.VectorType(i32, 16)

        def data(k, val, elt):
            arr = context.make_array(signature.args[k])(context, builder, val)
            return builder.bitcast(arr.data, elt.as_pointer())

        ap, bp, op = data(0, a_, i8), data(3, b_, i8), data(6, out_, i32)
        mod = builder.module
        name = "llvm.x86.avx512.vpdpbusd.512"
        fn = mod.globals.get(name) or ir.Function(mod, ir.FunctionType(v16, [v16, v16, v16]), name)
        entry = builder.block
        loop = builder.append_basic_block("vnni_loop")
        done = builder.append_basic_block("vnni_done")
        zero = ir.Constant(v16, None)
        builder.branch(loop)
        builder.position_at_end(loop)
        i = builder.phi(i64)
        i.add_incoming(ir.Constant(i64, 0), entry)
        accs = [[builder.phi(v16) for _ in range(NV)] for _ in range(MR)]
        for row in accs:
            for p in row:
                p.add_incoming(zero, entry)
        bstep = builder.add(b_off_, builder.mul(i, ir.Constant(i64, NB * 4)))
        bvecs = []
        for v in range(NV):
            ptr = builder.gep(bp, [builder.add(bstep, ir.Constant(i64, v * 64))])
            bvecs.append(builder.load(builder.bitcast(ptr, v16.as_pointer()), align=1))
        astep = builder.add(a_off_, builder.mul(i, ir.Constant(i64, 4)))
        new = []
        for r in range(MR):
            ptr = builder.gep(ap, [builder.add(astep, builder.mul(lda_, ir.Constant(i64, r)))])
            word = builder.load(builder.bitcast(ptr, i32.as_pointer()), align=1)
            splat = builder.insert_element(zero, word, ir.Constant(i32, 0))
            splat = builder.shuffle_vector(splat, zero, zero)  # broadcast lane 0
            new.append([builder.call(fn, [accs[r][v], splat, bvecs[v]]) for v in range(NV)])
        nxt = builder.add(i, ir.Constant(i64, 1))
        i.add_incoming(nxt, loop)
        for r in range(MR):
            for v in range(NV):
                accs[r][v].add_incoming(new[r][v], loop)
        builder.cbranch(builder.icmp_signed("<", nxt, k4_), loop, done)
        builder.position_at_end(done)
        for r in range(MR):
            rowoff = builder.add(o_off_, builder.mul(ldo_, ir.Constant(i64, r)))
            for v in range(NV):
                ptr = builder.gep(op, [builder.add(rowoff, ir.Constant(i64, v * 16))])
                builder.store(new[r][v], builder.bitcast(ptr, v16.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True)
def gemm_u8s8(a, bpk, k4, out):  # pragma: no cover - compiled
    mp, lda = a.shape
    ldo = out.shape[1]
    for nb in range(ldo // NB):
        boff = nb * k4 * NB * 4
        for m0 in range(0, mp, MR):
            _tile(a, m0 * lda, lda, bpk, boff, k4, out, m0 * ldo + nb * NB, ldo)


@njit(nogil=True, cache=True)
def quantize_rows(x, inv_scale, zp, out):  # pragma: no cover - compiled
    """``x`` float32 (M, K) -> ``out[:M, :K]`` uint8: PyTorch's rounding (``inv_scale`` is
    float64 holding ``float32(1 / scale)``; see ``_qparams.qround``), clamped to 0..255."""
    m, k = x.shape
    for i in range(m):
        for j in range(k):
            v = np.rint(np.float32(np.float64(x[i, j]) * inv_scale + zp))
            out[i, j] = np.uint8(min(max(v, 0.0), 255.0))


@njit(nogil=True, cache=True)
def quantize_nhwc_pad(x, inv_scale, zp, ph, pw, out):  # pragma: no cover - compiled
    """Float NCHW ``x`` -> uint8 NHWC ``out (B, H + 2ph, W + 2pw, C)``; the border is the zero
    point (real value 0), so the im2col below needs no bounds checks."""
    b_, c_, h_, w_ = x.shape
    out[:] = zp
    for b in range(b_):
        for y in range(h_):
            for i in range(w_):
                for c in range(c_):
                    v = np.rint(np.float32(np.float64(x[b, c, y, i]) * inv_scale + zp))
                    out[b, y + ph, i + pw, c] = np.uint8(min(max(v, 0.0), 255.0))


@njit(nogil=True, cache=True)
def im2col_nhwc(xp, kh, kw, sh, sw, dh, dw, oh, ow, out):  # pragma: no cover - compiled
    """Padded NHWC uint8 -> rows ``(b * oh + y) * ow + x``, columns ``(i * kw + j) * C + c``
    (each kernel tap copies C contiguous bytes)."""
    b_, _, _, c_ = xp.shape
    for b in range(b_):
        for y in range(oh):
            for x in range(ow):
                row = (b * oh + y) * ow + x
                col = 0
                for i in range(kh):
                    for j in range(kw):
                        src = xp[b, y * sh + i * dh, x * sw + j * dw]
                        for c in range(c_):
                            out[row, col + c] = src[c]
                        col += c_


@njit(nogil=True, cache=True)
def epilogue(acc, m, n, zp, colsum, scale, bias, relu, out):  # pragma: no cover - compiled
    """``out (m, n) = (acc - zp * colsum) * scale + bias`` (then ReLU)."""
    for i in range(m):
        for j in range(n):
            v = np.float32(acc[i, j] - zp * colsum[j]) * scale[j] + bias[j]
            out[i, j] = max(v, np.float32(0.0)) if relu else v


def pack_b(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """int8 ``(N, K)`` -> (packed bytes, K/4 rounded up, N rounded up to 64)."""
    n, k = w.shape
    kp, np_ = -(-k // 4) * 4, -(-n // NB) * NB
    wp = np.zeros((np_, kp), np.int8)
    wp[:n, :k] = w
    packed = wp.reshape(np_ // NB, NB, kp // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(packed).view(np.uint8).ravel(), kp // 4, np_
