"""The int8 compute paths behind the quantized modules, and the choice between them.

* ``vnni``: numba kernels emitting AVX-512 VNNI ``vpdpbusd`` (u8 x s8 -> s32), see
  :mod:`._vnni`. Chosen when numba is installed, the ``[jit]`` kernels are enabled and the CPU
  reports ``avx512vnni``.
* ``blas``: NumPy only (forced with ``EMBER_INT8_BACKEND=blas`` or :func:`set_backend`). The
  uint8 activations and int8 weights are multiplied as float32 through BLAS sgemm, exactly:
  every product and partial sum is an integer below ``2**24`` as long as a chunk of ``K``
  stays under ``2**24 / (255 * 128)`` (513), so K is cut into chunks of 512 whose results are
  summed in float64 (exact as well). NumPy's own integer
  matmul does not use BLAS and is much slower.

Both give bit-identical int32 accumulators; the tests run both.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import jit
from ..ops._parallel import parallel_for
from ._qparams import qround

__all__ = [
    "PackedWeight",
    "backend",
    "dynamic_lstm",
    "dynamic_qgemm",
    "note_owner",
    "packed",
    "qgemm",
    "quantize_u8",
    "set_backend",
]

_K_CHUNK = 512  # 512 * 255 * 128 < 2**24: float32 sums stay exact
_forced: str | None = None


@functools.lru_cache(maxsize=1)
def _cpu_has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512_vnni" in line.split()
    except OSError:
        pass
    try:
        from llvmlite import binding

        return bool(binding.get_host_cpu_features().get("avx512vnni", False))
    except Exception:  # noqa: BLE001 - any failure to probe means "no VNNI"
        return False


def backend() -> str:
    """The int8 path in use: ``"vnni"`` or ``"blas"``.

    Example:
        >>> from ember.quantization import _kernels
        >>> _kernels.backend() in ("vnni", "blas")
        True
    """
    if _forced is not None:
        return _forced
    capable = jit.available() and _cpu_has_vnni()
    if os.environ.get("EMBER_INT8_BACKEND") == "blas":
        return "blas"
    return "vnni" if capable else "blas"


def set_backend(name: str | None) -> str | None:
    """Force ``"vnni"`` or ``"blas"`` (None: choose automatically); returns the old setting."""
    global _forced
    if name not in (None, "vnni", "blas"):
        raise ValueError(f"int8 backend must be 'vnni', 'blas' or None, got {name!r}")
    if name == "vnni" and not (jit._load_numba() and _cpu_has_vnni()):
        raise RuntimeError("the 'vnni' int8 backend needs numba and a CPU with avx512_vnni")
    old, _forced = _forced, name
    return old


def _vnni():
    from . import _vnni as v

    return v


@dataclass
class PackedWeight:
    """An int8 weight ``(N, K)`` with per-output-channel scales, ready for both paths."""

    q: np.ndarray  # int8 (N, K)
    scale: np.ndarray  # float32 (N,)
    colsum: np.ndarray  # int32 (N,): sum over K, for the activation zero point
    _packed: tuple | None = None
    _f32: np.ndarray | None = None

    @classmethod
    def from_int8(cls, q: np.ndarray, scale: np.ndarray) -> PackedWeight:
        q = np.ascontiguousarray(q, dtype=np.int8)
        return cls(q, np.asarray(scale, np.float32), q.sum(axis=1, dtype=np.int32))

    @property
    def vnni(self) -> tuple:
        if self._packed is None:
            self._packed = _vnni().pack_b(self.q)
        return self._packed

    @property
    def f32t(self) -> np.ndarray:
        if self._f32 is None:
            self._f32 = np.ascontiguousarray(self.q.T, dtype=np.float32)
        return self._f32


# -- the packed-weight cache -------------------------------------------------------------------
# The primitives receive plain arrays, so the packed form (VNNI tiles or the float32 transpose,
# and the column sums) is cached per weight array. A module notes the tensors owning its weight
# arrays; their version counters then tell an in-place update (load_state_dict) apart from the
# same array unchanged. Arrays with no owner (a loaded saved model's weights) are constants.
_OWNERS: dict[int, Any] = {}
_PACKS: dict[tuple[int, int, str], tuple[Any, Any, tuple, PackedWeight]] = {}


def note_owner(*tensors: Any) -> None:
    """Record the tensors whose arrays hold int8 weights and scales (see :func:`packed`)."""
    for t in tensors:
        if t is not None:
            r = _OWNERS.get(id(t._data))
            if r is None or r() is not t:
                _OWNERS[id(t._data)] = weakref.ref(t)


def _stamp(a: np.ndarray) -> int | None:
    r = _OWNERS.get(id(a))
    t = r() if r is not None else None
    return t._version[0] if t is not None and t._data is a else None


def _k_major(q: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv2d":  # the NHWC im2col order: (out, kh, kw, in)
        return q.transpose(0, 2, 3, 1).reshape(q.shape[0], -1)
    return q.reshape(q.shape[0], -1)


def packed(q: np.ndarray, scale: np.ndarray, layout: str) -> PackedWeight:
    """The :class:`PackedWeight` of an int8 weight in PyTorch's layout (``layout``:
    ``"linear"`` ``(N, K)`` or ``"conv2d"`` ``(N, C, kh, kw)``) with its per-channel scales,
    built once per weight array (rebuilt when an owning tensor was written in place).

    Example:
        >>> q, s = np.ones((2, 3), np.int8), np.ones(2, np.float32)
        >>> pw = packed(q, s, "linear")
        >>> pw is packed(q, s, "linear"), pw.colsum.tolist()
        (True, [3, 3])
    """
    key = (id(q), id(scale), layout)
    stamp = (_stamp(q), _stamp(scale))
    hit = _PACKS.get(key)
    if hit is not None and hit[0]() is q and hit[1]() is scale and hit[2] == stamp:
        return hit[3]
    pw = PackedWeight.from_int8(_k_major(q, layout), scale)
    if len(_PACKS) > 256:  # drop the entries of arrays that are gone
        for k in [k for k, v in _PACKS.items() if v[0]() is None or v[1]() is None]:
            del _PACKS[k]
        for k in [k for k, r in _OWNERS.items() if r() is None]:
            del _OWNERS[k]
    with contextlib.suppress(TypeError):  # no weak references to this array type: no cache
        _PACKS[key] = (weakref.ref(q), weakref.ref(scale), stamp, pw)
    return pw


def quantize_u8(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """float -> uint8 with PyTorch's rounding (half to even) and clamping.

    Example:
        >>> quantize_u8(np.array([-1.0, 0.0, 0.26, 9.0], np.float32), 0.1, 10).tolist()
        [0, 10, 13, 100]
    """
    return np.clip(qround(x, scale, zp), 0, 255).astype(np.uint8)


def _blas_acc(a: np.ndarray, w: PackedWeight) -> np.ndarray:
    k = a.shape[1]
    wt = w.f32t
    if k <= _K_CHUNK:
        return a.astype(np.float32) @ wt
    acc = np.zeros((a.shape[0], wt.shape[1]), np.float64)
    for s in range(0, k, _K_CHUNK):
        acc += a[:, s : s + _K_CHUNK].astype(np.float32) @ wt[s : s + _K_CHUNK]
    return acc


def _dequant(acc, zp, w: PackedWeight, act_scale, bias, relu):
    # acc holds exact integers (float32/float64 from BLAS); the zero-point term is exact too
    y = (acc - np.float64(zp) * w.colsum).astype(np.float32)
    y *= np.float32(act_scale) * w.scale
    if bias is not None:
        y += bias
    return np.maximum(y, 0, out=y) if relu else y


def qgemm(
    x: np.ndarray, scale: float, zp: int, w: PackedWeight, bias: np.ndarray | None, relu: bool
) -> np.ndarray:
    """``dequant(quant(x) @ w.T) + bias`` for float32 ``x (M, K)``, quantized per tensor with
    ``scale``/``zp``: float32 ``(M, N)``."""
    m, _k = x.shape
    n = w.q.shape[0]
    if backend() == "blas" or m == 0:
        return _dequant(_blas_acc(quantize_u8(x, scale, zp), w), zp, w, scale, bias, relu)
    v = _vnni()
    bpk, k4, np_ = w.vnni
    x = np.ascontiguousarray(x, np.float32)
    inv = np.float64(np.float32(1.0) / np.float32(scale))
    sc = w.scale * np.float32(scale)
    b = np.zeros(n, np.float32) if bias is None else bias
    out = np.empty((m, n), np.float32)

    def block(r0, r1, slot):
        mp = -(-(r1 - r0) // v.MR) * v.MR
        a = np.zeros((mp, 4 * k4), np.uint8)
        v.quantize_rows(x[r0:r1], inv, zp, a)
        acc = np.empty((mp, np_), np.int32)
        v.gemm_u8s8(a, bpk, k4, acc)
        v.epilogue(acc, r1 - r0, n, zp, w.colsum, sc, b, relu, out[r0:r1])

    parallel_for(m, 256, block, m * n * x.shape[1])
    return out


def qconv2d(
    x: np.ndarray,
    scale: float,
    zp: int,
    w: PackedWeight,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    bias: np.ndarray | None,
    relu: bool,
) -> np.ndarray:
    """A quantized 2-D convolution (groups=1) of float32 NCHW ``x`` (any strides): float32
    NCHW out, stored channels-last (Ember's pooling and the next conv read that directly).
    ``w`` is the weight flattened in ``(out, kh, kw, in)`` order (NHWC im2col)."""
    bsz, c, h, wd = x.shape
    kh, kw = kernel
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    n = w.q.shape[0]
    m, kdim = bsz * oh * ow, c * kh * kw
    if backend() == "blas" or m == 0:
        xq = quantize_u8(x, scale, zp)
        pads = ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2)
        xp = np.pad(xq, pads, constant_values=zp)
        win = np.lib.stride_tricks.sliding_window_view(
            xp, (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1), axis=(2, 3)
        )[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]][:, :, :oh, :ow]
        cols = win.transpose(0, 2, 3, 4, 5, 1).reshape(m, kdim)  # (kh, kw, c) order
        y = _dequant(_blas_acc(cols, w), zp, w, scale, bias, relu)
        return y.reshape(bsz, oh, ow, n).transpose(0, 3, 1, 2)
    v = _vnni()
    bpk, k4, np_ = w.vnni
    kp = 4 * k4
    # copy each tap's C channels as the widest words that divide them (a byte loop is ~8x
    # slower than a uint64 one, and numba does not vectorize it)
    word = np.dtype(f"u{next(s for s in (8, 4, 2, 1) if c % s == 0 and kp % s == 0)}")
    inv = np.float64(np.float32(1.0) / np.float32(scale))
    sc = w.scale * np.float32(scale)
    b = np.zeros(n, np.float32) if bias is None else bias
    p = oh * ow
    out = np.empty((m, n), np.float32)

    def block(i0, i1, slot):
        # a few images at a time: their im2col rows and accumulators stay in L2
        nb = i1 - i0
        xp = np.empty((nb, h + 2 * padding[0], wd + 2 * padding[1], c), np.uint8)
        v.quantize_nhwc_pad(x[i0:i1], inv, zp, *padding, xp)
        rows = nb * p
        mp = -(-rows // v.MR) * v.MR
        cols = np.empty((mp, kp), np.uint8)
        cols[rows:] = 0
        cols[:, kdim:] = 0
        v.im2col_nhwc(xp.view(word), kh, kw, *stride, *dilation, oh, ow, cols.view(word))
        acc = np.empty((mp, np_), np.int32)
        v.gemm_u8s8(cols, bpk, k4, acc)
        v.epilogue(acc, rows, n, zp, w.colsum, sc, b, relu, out[i0 * p : i1 * p])

    parallel_for(bsz, max(1, 2048 // max(p, 1)), block, m * n * kdim)
    return out.reshape(bsz, oh, ow, n).transpose(0, 3, 1, 2)


def dynamic_qparams(x: np.ndarray) -> tuple[float, int]:
    """The per-tensor uint8 (scale, zero point) of dynamic quantization: ``x``'s own range."""
    from ._qparams import affine_qparams

    if x.size == 0:
        return 1.0, 0
    lo, hi = float(x.min()), float(x.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("dynamic quantization: the input contains inf or nan")
    return affine_qparams(lo, hi)


def dynamic_qgemm(x: np.ndarray, w: PackedWeight, bias: np.ndarray | None) -> np.ndarray:
    """:func:`qgemm` with the input quantized from its own min/max (dynamic int8)."""
    scale, zp = dynamic_qparams(x)
    return qgemm(x, scale, zp, w, bias, False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def dynamic_lstm(
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    cells: list[tuple[PackedWeight, np.ndarray | None, PackedWeight]],
    num_layers: int,
    bidirectional: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dynamic int8 LSTM over time-major float32 ``x (T, B, in)``: the input projection of a
    whole sequence in one GEMM, the hidden one per step, the gates in float32. ``cells``: per
    layer and direction ``(w_ih, b_ih + b_hh or None, w_hh)``. Returns ``(out, h_n, c_n)``."""
    t_len, bsz = x.shape[0], x.shape[1]
    hsz = cells[0][2].q.shape[1]
    dirs = 2 if bidirectional else 1
    shape = (num_layers * dirs, bsz, hsz)
    if h0 is None or c0 is None:
        h0 = c0 = np.zeros(shape, np.float32)
    hn, cn = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, b, w_hh = cells[k]
            xs = x[::-1] if d else x
            gx = dynamic_qgemm(np.ascontiguousarray(xs.reshape(t_len * bsz, -1)), w_ih, b)
            gx = gx.reshape(t_len, bsz, 4 * hsz)
            h, c = h0[k], c0[k]
            out = np.empty((t_len, bsz, hsz), np.float32)
            for t in range(t_len):
                g = gx[t] + dynamic_qgemm(np.ascontiguousarray(h, np.float32), w_hh, None)
                i, f = _sigmoid(g[:, :hsz]), _sigmoid(g[:, hsz : 2 * hsz])
                gg, o = np.tanh(g[:, 2 * hsz : 3 * hsz]), _sigmoid(g[:, 3 * hsz :])
                c = f * c + i * gg
                h = o * np.tanh(c)
                out[t] = h
            outs.append(out[::-1] if d else out)
            hn.append(h)
            cn.append(c)
        x = outs[0] if dirs == 1 else np.concatenate(outs, axis=2)
    h_n = np.stack(hn).astype(np.float32, copy=False)
    c_n = np.stack(cn).astype(np.float32, copy=False)
    return np.ascontiguousarray(x), h_n, c_n
