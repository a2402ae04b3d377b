"""Quantization parameters and the observers that choose them.

The formulas are PyTorch's (``torch.ao.quantization`` observers, ``quantize_per_tensor`` /
``quantize_per_channel``): activations are ``quint8`` affine (zero point in 0..255, the range
widened to include 0 so that zero padding is exact), weights ``qint8`` symmetric (zero point 0,
``scale = max|w| / 127.5``, values clamped to -128..127). Rounding is PyTorch's to the bit:
``rint(fma(x, float32(1 / scale), zero_point))`` in float32, half to even (:func:`qround`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "HistogramObserver",
    "MinMaxObserver",
    "affine_qparams",
    "dequantize",
    "qround",
    "quantize_per_channel",
    "quantize_per_tensor",
    "symmetric_qparams",
]

_EPS = float(np.finfo(np.float32).eps)
_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def _range(dtype: str) -> tuple[int, int]:
    if dtype not in _RANGES:
        raise ValueError(f"quantized dtype must be 'uint8' or 'int8', got {dtype!r}")
    return _RANGES[dtype]


def affine_qparams(min_val: float, max_val: float, dtype: str = "uint8") -> tuple[float, int]:
    """Scale and zero point covering ``[min_val, max_val]`` (widened to include 0).

    Example:
        >>> affine_qparams(-1.0, 3.0)
        (0.01568627450980392, 64)
    """
    qmin, qmax = _range(dtype)
    if not (np.isfinite(min_val) and np.isfinite(max_val)):
        raise ValueError(f"cannot quantize a range with inf/nan: [{min_val}, {max_val}]")
    lo, hi = min(float(min_val), 0.0), max(float(max_val), 0.0)
    scale = max((hi - lo) / (qmax - qmin), _EPS)
    zp = int(np.clip(qmin - round(lo / scale), qmin, qmax))
    return scale, zp


def symmetric_qparams(amax: np.ndarray) -> np.ndarray:
    """Per-channel symmetric int8 scales for channel maxima ``max|w|`` (zero point 0).

    Example:
        >>> symmetric_qparams(np.array([12.75, 0.0])).tolist()
        [0.1, 1.1920928955078125e-07]
    """
    return np.maximum(np.asarray(amax, np.float64) / 127.5, _EPS)


def qround(x: np.ndarray, scale: ArrayLike, zero_point: ArrayLike) -> np.ndarray:
    """``rint(x * (1/scale) + zero_point)`` with one rounding for the multiply-add (as
    PyTorch's fused multiply-add), as float32 integers before clamping.

    Example:
        >>> qround(np.array([0.25, -0.25], np.float32), 0.1, 37).tolist()
        [40.0, 34.0]
    """
    inv = (1.0 / np.asarray(scale, np.float32)).astype(np.float32).astype(np.float64)
    v = np.asarray(x, np.float32).astype(np.float64) * inv + np.asarray(zero_point, np.float64)
    return np.rint(v.astype(np.float32))


def quantize_per_tensor(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """``clamp(round(x / scale) + zero_point)`` as ``uint8``/``int8`` (PyTorch's formula).

    Example:
        >>> quantize_per_tensor(np.array([0.5, -2.0]), 0.1, 0, "int8").tolist()
        [5, -20]
    """
    qmin, qmax = _range(dtype)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return np.clip(qround(x, scale, zero_point), qmin, qmax).astype(dtype)


def quantize_per_channel(
    x: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, axis: int, dtype: str
) -> np.ndarray:
    """Per-channel quantization along ``axis`` (PyTorch's ``quantize_per_channel``).

    Example:
        >>> quantize_per_channel(np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([1.0, 0.5]),
        ...                      np.array([0, 0]), 0, "int8").tolist()
        [[1, 2], [2, 4]]
    """
    qmin, qmax = _range(dtype)
    x = np.asarray(x, np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    s = np.asarray(scales, np.float32).reshape(shape)
    z = np.asarray(zero_points, np.int64).reshape(shape)
    if np.any(s <= 0):
        raise ValueError("scales must be > 0")
    return np.clip(qround(x, s, z), qmin, qmax).astype(dtype)


def dequantize(
    q: np.ndarray, scale: ArrayLike, zero_point: ArrayLike, axis: int | None = None
) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32 (per channel along ``axis`` when given).

    Example:
        >>> dequantize(np.array([5, -20], np.int8), 0.1, 0).tolist()
        [0.5, -2.0]
    """
    q = np.asarray(q)
    s = np.asarray(scale, np.float32)
    z = np.asarray(zero_point, np.float32)
    if axis is not None:
        shape = [1] * q.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return ((q.astype(np.float32) - z) * s).astype(np.float32)


class MinMaxObserver:
    """Running min and max of everything it sees (PyTorch's ``MinMaxObserver``)."""

    def __init__(self) -> None:
        self.min_val, self.max_val = np.inf, -np.inf
        self.count = 0

    def __call__(self, x: np.ndarray) -> None:
        if x.size:
            if not np.all(np.isfinite(x)):
                raise ValueError("calibration data contains inf or nan")
            self.min_val = min(self.min_val, float(x.min()))
            self.max_val = max(self.max_val, float(x.max()))
        self.count += 1

    def calculate_qparams(self) -> tuple[float, int]:
        """Scale and zero point of the observed range (uint8 affine)."""
        if self.count == 0 or not np.isfinite(self.min_val):
            raise RuntimeError("observer has seen no data: run calibration batches first")
        return affine_qparams(self.min_val, self.max_val)


class HistogramObserver(MinMaxObserver):
    """A histogram of the values; the range kept is the one minimising the expected squared
    quantization error (clipping error of the values outside plus ``scale**2 / 12`` rounding
    noise of those inside) - outliers no longer stretch the scale."""

    bins = 2048

    def __init__(self) -> None:
        super().__init__()
        self.hist = np.zeros(self.bins, np.float64)

    def __call__(self, x: np.ndarray) -> None:
        old = (self.min_val, self.max_val)
        super().__call__(x)
        if not x.size:
            return
        lo, hi = min(self.min_val, 0.0), max(self.max_val, 0.0)
        if hi <= lo:
            hi = lo + _EPS
        if np.isfinite(old[0]) and self.hist.any():
            # re-bin the old counts into the (possibly) wider range at their bin centres
            olo, ohi = min(old[0], 0.0), max(old[1], 0.0)
            centres = olo + (np.arange(self.bins) + 0.5) * (max(ohi - olo, _EPS) / self.bins)
            self.hist = np.histogram(centres, self.bins, (lo, hi), weights=self.hist)[0]
        self.hist += np.histogram(np.asarray(x, np.float64), self.bins, (lo, hi))[0]

    def calculate_qparams(self) -> tuple[float, int]:
        """The uint8 qparams of the error-minimising range."""
        if self.count == 0 or not np.isfinite(self.min_val):
            raise RuntimeError("observer has seen no data: run calibration batches first")
        lo, hi = min(self.min_val, 0.0), max(self.max_val, 0.0)
        width = (hi - lo) / self.bins
        centres = lo + (np.arange(self.bins) + 0.5) * width
        best, best_err = (lo, hi), np.inf
        cum = np.concatenate([[0.0], np.cumsum(self.hist)])
        for keep in np.geomspace(1.0, 0.01, 60):  # fraction of the full range kept
            for frac_lo in np.linspace(0.0, 1.0, 11):
                cut = (1.0 - keep) * (hi - lo)
                a, b = lo + cut * frac_lo, hi - cut * (1.0 - frac_lo)
                scale = (max(b, 0.0) - min(a, 0.0)) / 255.0
                if scale <= 0:
                    continue
                below = np.clip(a - centres, 0, None)
                above = np.clip(centres - b, 0, None)
                clip_err = float(np.sum(self.hist * (below**2 + above**2)))
                ia, ib = np.searchsorted(centres, [a, b])
                inside = cum[ib] - cum[ia]
                err = clip_err + inside * scale**2 / 12.0
                if err < best_err:
                    best, best_err = (a, b), err
        return affine_qparams(*best)
