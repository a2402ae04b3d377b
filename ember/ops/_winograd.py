"""Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions with many channels (NHWC).

Each 2x2 block of output pixels is computed from a 4x4 input tile as
``Y = A^T [ (G g G^T) * (B^T d B) ] A``: the 36 multiply-adds per output pixel and channel pair
of the direct method become 16 per 2x2 block (2.25x fewer), spent in 16 GEMMs of
(tiles, C) @ (C, O). The transforms are additions over the tiles, done with NumPy on blocks of
images (or of tile rows, for few images) that stay in L2, spread over Ember's threads.

Measured on a 2-core AMD EPYC (one thread, float32, against im2col + GEMM): 32x256x8x8 ->
256 channels 29.7 -> 17.8 ms (PyTorch/oneDNN 19.2), 1x128x28x28 2.9 -> 1.5 ms (2.2),
1x64x56x56 2.8 -> 2.2 ms, 32x64x8x8 1.85 -> 1.6 ms; with 32 channels or fewer the GEMMs are
too thin and the transforms cost more than they save (32x32x16x16: 2.2 -> 2.4 ms), so
those stay on im2col. F(2, 3) keeps float32 errors at or below the direct method's on these
shapes (its transforms only add, subtract and halve).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._parallel import parallel_for

# from this many input and output channels (see above)
MIN_CHANNELS = 64
# and this many output pixels (images x rows x columns): the weight transform costs about as
# much as the GEMM work it saves on ~240 pixels (512x512 channels: 8 ms per call on one core),
# so a batch of 4 2x2 maps ran 11 ms through Winograd against ~3 ms as one im2col GEMM
MIN_PIXELS = 128


def usable(kh, kw, stride, dilation, groups, c, o, pixels=None):
    return (
        kh == kw == 3
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and min(c, o) >= MIN_CHANNELS
        and (pixels is None or pixels >= MIN_PIXELS)
    )


def _weights(w, dtype):
    """U = G w G^T per (output, input) channel pair, as 16 (C, O) GEMM operands. G maps a
    kernel row (w0, w1, w2) to (w0, (w0+w1+w2)/2, (w0-w1+w2)/2, w2); applied to contiguous
    (C, O) slabs (a batched 4x3 matmul or einsum measured 10-50x slower)."""
    o, c = w.shape[:2]
    wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=dtype)  # (3, 3, C, O)
    half = dtype.type(0.5)

    def g(k0, k1, k2, dst):
        dst[0] = k0
        np.add(k0, k2, out=dst[1])
        dst[1] *= half
        np.multiply(k1, half, out=dst[2])
        np.subtract(dst[1], dst[2], out=dst[3])
        dst[1] += dst[2]
        dst[2] = dst[3]
        dst[3] = k2

    t = np.empty((4, 3, c, o), dtype)
    g(wt[0], wt[1], wt[2], t)
    u = np.empty((4, 4, c, o), dtype)
    for r in range(4):
        g(t[r, 0], t[r, 1], t[r, 2], u[r])
    return u.reshape(16, c, o)


def _tile(d, u, dst, workspace):
    """dst (m, rows, 2, tw, 2, O) = the outputs of input tiles d (m, rows, tw, 4, 4, C)."""
    m, rows, tw, _, _, c = d.shape
    o = u.shape[2]
    nt = m * rows * tw
    dt = u.dtype
    t = workspace((4, m, rows, tw, 4, c), dt, "wino-t")
    np.subtract(d[:, :, :, 0], d[:, :, :, 2], out=t[0])  # B^T along tile rows
    np.add(d[:, :, :, 1], d[:, :, :, 2], out=t[1])
    np.subtract(d[:, :, :, 2], d[:, :, :, 1], out=t[2])
    np.subtract(d[:, :, :, 1], d[:, :, :, 3], out=t[3])
    v = workspace((4, 4, m, rows, tw, c), dt, "wino-v")
    np.subtract(t[..., 0, :], t[..., 2, :], out=v[:, 0])  # and along tile columns
    np.add(t[..., 1, :], t[..., 2, :], out=v[:, 1])
    np.subtract(t[..., 2, :], t[..., 1, :], out=v[:, 2])
    np.subtract(t[..., 1, :], t[..., 3, :], out=v[:, 3])
    mm = workspace((16, nt, o), dt, "wino-m")
    np.matmul(v.reshape(16, nt, c), u, out=mm)
    mm = mm.reshape(4, 4, nt, o)
    s = workspace((2, 4, nt, o), dt, "wino-s")  # A^T along tile rows
    np.add(mm[0], mm[1], out=s[0])
    s[0] += mm[2]
    np.subtract(mm[1], mm[2], out=s[1])
    s[1] -= mm[3]
    y = workspace((2, nt, o), dt, "wino-y")
    for dy in range(2):  # and along tile columns, into the output rows
        np.add(s[dy, 0], s[dy, 1], out=y[0])
        y[0] += s[dy, 2]
        np.subtract(s[dy, 1], s[dy, 2], out=y[1])
        y[1] -= s[dy, 3]
        dst[:, :, dy, :, 0] = y[0].reshape(m, rows, tw, o)
        dst[:, :, dy, :, 1] = y[1].reshape(m, rows, tw, o)


def conv3x3(xp, w, out, workspace, row_chunks, block_images):
    """``out`` (N, Ho, Wo, O) = the stride-1 3x3 convolution of padded NHWC ``xp``
    (N, Ho+2, Wo+2, C) with ``w`` (O, C, 3, 3)."""
    n, ho, wo, o = out.shape
    c = xp.shape[3]
    th, tw = -(-ho // 2), -(-wo // 2)
    if ho % 2 or wo % 2:  # odd sizes: one more zero row/column of input, a cropped output
        xe = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), xp.dtype)
        xe[:, : ho + 2, : wo + 2] = xp[:, : ho + 2, : wo + 2]
        full = np.empty((n, 2 * th, 2 * tw, o), out.dtype)
        conv3x3(xe, w, full, workspace, row_chunks, block_images)
        out[...] = full[:, :ho, :wo]
        return out
    u = _weights(w, out.dtype)
    sn, sh, sw, sc = xp.strides
    d = as_strided(xp, (n, th, tw, 4, 4, c), (sn, 2 * sh, 2 * sw, sh, sw, sc), writeable=False)
    ov = out.reshape(n, th, 2, tw, 2, o)
    work = n * th * tw * 16 * c * o
    # few images with many tiles: blocks of tile rows (so that threads share one image)
    nch, rpc = row_chunks(n, th) if th * tw >= 64 else (1, th)
    if nch > 1:

        def rows(u0, u1, slot):
            for k in range(u0, u1):
                img, r0 = k // nch, (k % nch) * rpc
                sl = slice(r0, min(th, r0 + rpc))
                _tile(d[img : img + 1, sl], u, ov[img : img + 1, sl], workspace)

        parallel_for(n * nch, 1, rows, work)
        return out

    def block(a, b, slot):
        _tile(d[a:b], u, ov[a:b], workspace)

    parallel_for(n, block_images(n, th * tw * 16 * max(c, o)), block, work)
    return out
