"""Import of ONNX ``Resize`` (and the older ``Upsample``): nearest, linear and cubic
interpolation with every coordinate transformation mode, along any axes.

ONNX's interpolation is separable, so each resized axis is one step: NumPy computes the
source rows and weights from the sizes alone, and ember gathers and weighs them, so the
result stays differentiable in the input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._creation import tensor
from .._tensor import Tensor
from ._import import ONNXModule, _host, imports

__all__: list[str] = []


def _source(x: np.ndarray, n_in: int, n_out: int, scale: float, mode: str, roi: tuple) -> Any:
    """Input coordinates of output positions ``x`` (ONNX's coordinate_transformation_mode).
    As in onnx's reference, some modes use the unrounded output width ``scale * n_in``."""
    width = scale * n_in
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjust = n_out / (scale * n_in)
        center = n_in / 2
        return center * (1 - adjust) + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if width != 1 else np.full_like(x, -0.5)
    if mode == "align_corners":
        return x * (n_in - 1) / (width - 1) if width != 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        lo, hi = roi
        if width != 1:
            return lo * (n_in - 1) + x * (hi - lo) * (n_in - 1) / (width - 1)
        return np.full_like(x, lo * (n_in - 1) + (hi - lo) * (n_in - 1) / 2)
    raise NotImplementedError(f"Resize coordinate_transformation_mode {mode!r}")


def _nearest(c: np.ndarray, how: str) -> np.ndarray:
    if how == "floor":
        return np.floor(c)
    if how == "ceil":
        return np.ceil(c)
    frac = c - np.floor(c)
    half = np.isclose(frac, 0.5)
    if how == "round_prefer_ceil":
        return np.where(half, np.ceil(c), np.round(c))
    return np.where(half, np.floor(c), np.round(c))  # round_prefer_floor


def _cubic(t: np.ndarray, a: float) -> list[np.ndarray]:
    """Keys' cubic weights of the four neighbours at distances 1+t, t, 1-t, 2-t."""

    def near(d: np.ndarray) -> np.ndarray:
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: np.ndarray) -> np.ndarray:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(1 + t), near(t), near(1 - t), far(2 - t)]


def _axis(x: Tensor, axis: int, n_out: int, scale: float, a: dict[str, Any], roi: tuple):
    n_in = x.shape[axis]
    mode = a.get("mode", "nearest")
    ctm = a.get("coordinate_transformation_mode", "half_pixel")
    c = _source(np.arange(n_out, dtype=np.float64), n_in, n_out, scale, ctm, roi)
    if mode == "nearest":
        idx = np.clip(_nearest(c, a.get("nearest_mode", "round_prefer_floor")), 0, n_in - 1)
        taps = [(idx.astype(np.int64), np.ones(n_out))]
    elif mode == "linear":
        lo = np.floor(c)
        t = c - lo
        taps = [(lo, 1 - t), (lo + 1, t)]
    elif mode == "cubic":
        lo = np.floor(c)
        w = _cubic(c - lo, float(a.get("cubic_coeff_a", -0.75)))
        taps = [(lo + k - 1, w[k]) for k in range(4)]
        if a.get("exclude_outside", 0):
            inside = [((i >= 0) & (i <= n_in - 1)) for i, _ in taps]
            total = sum(wk * m for (_, wk), m in zip(taps, inside))
            taps = [(i, wk * m / total) for (i, wk), m in zip(taps, inside)]
    else:
        raise NotImplementedError(f"Resize mode {mode!r}")
    shape = [1] * x.ndim
    shape[axis] = n_out
    out = None
    for i, w in taps:
        rows = tensor(np.clip(i, 0, n_in - 1).astype(np.int64))
        part = x.index_select(axis, rows)
        if mode != "nearest":
            part = part * tensor(w.reshape(shape).astype(x.dtype.np))
        out = part if out is None else out + part
    if ctm == "tf_crop_and_resize":
        outside = (c < 0) | (c > n_in - 1)
        if outside.any():
            keep = tensor((~outside).reshape(shape).astype(x.dtype.np))
            fill = float(a.get("extrapolation_value", 0.0))
            out = out * keep + (1 - keep) * fill
    return out


def _resize(m: ONNXModule, x: Tensor, roi: Any, scales: Any, sizes: Any, a: dict) -> Tensor:
    if a.get("antialias", 0):
        raise NotImplementedError("Resize with antialias=1")
    n = x.ndim
    axes = [ax % n for ax in a.get("axes") or range(n)]
    roi_v = _host(roi).astype(np.float64).reshape(-1) if roi is not None and roi.size else None
    sc = _host(scales).astype(np.float64).reshape(-1) if scales is not None else np.zeros(0)
    out_sizes = {}
    factors = {}
    if sc.size:
        for ax, s in zip(axes, sc):
            factors[ax] = float(s)
            out_sizes[ax] = math.floor(x.shape[ax] * s)
    else:
        sz = _host(sizes).astype(np.int64).reshape(-1)
        policy = a.get("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            for ax, s in zip(axes, sz):
                out_sizes[ax] = int(s)
                factors[ax] = s / x.shape[ax]
        else:
            ratios = [s / x.shape[ax] for ax, s in zip(axes, sz)]
            r = min(ratios) if policy == "not_larger" else max(ratios)
            for ax in axes:
                factors[ax] = r
                out_sizes[ax] = math.floor(x.shape[ax] * r + 0.5)
    for k, ax in enumerate(axes):
        roi_ax = (roi_v[k], roi_v[k + len(axes)]) if roi_v is not None else (0.0, 1.0)
        if roi_v is not None and len(roi_v) == 2 * n:
            roi_ax = (roi_v[ax], roi_v[ax + n])
        x = _axis(x, ax, out_sizes[ax], factors[ax], a, roi_ax)
    return x


@imports("Resize")
def _resize_op(m: ONNXModule, x: Tensor, roi=None, scales=None, sizes=None, **a: Any) -> Tensor:
    if m.opset < 11:  # opset 10 took the scales as the second input
        return _resize(m, x, None, roi, None, {**a, "coordinate_transformation_mode": "asymmetric"})
    return _resize(m, x, roi, scales, sizes, a)


@imports("Upsample")
def _upsample(m: ONNXModule, x: Tensor, scales: Any = None, **a: Any) -> Tensor:
    sc = scales if scales is not None else np.asarray(a.pop("scales"), np.float32)
    a = {**a, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    if a.get("mode") == "linear":
        a["nearest_mode"] = "round_prefer_floor"
    return _resize(m, x, None, sc, None, a)
