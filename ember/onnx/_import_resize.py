"""Import of ONNX ``Resize`` (and the older ``Upsample``): nearest, linear and cubic
interpolation with every coordinate transformation mode, along any axes; and
``GridSample`` (2-d and 3-d, every mode and padding).

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


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates at the borders until they fall in ``[lo, hi]``."""
    rng = hi - lo
    out = x.copy()
    for below in (True, False):
        mask = x < lo if below else x > hi
        dx = (lo - x) if below else (x - hi)
        n = np.floor(dx / rng)
        r = dx - n * rng
        even = n % 2 == 0
        near, far = (lo + r, hi - r) if below else (hi - r, lo + r)
        out = np.where(mask, np.where(even, near, far), out)
    return out.astype(x.dtype)


def _fetch(i: np.ndarray, d: int, lo: float, hi: float, padding: str) -> tuple:
    """Row numbers for integer positions ``i`` along an axis of size ``d`` and whether they
    read the input (``zeros`` padding reads 0 outside)."""
    if padding == "zeros":
        return np.clip(i, 0, d - 1), (i >= 0) & (i < d)
    if padding == "border":
        return np.clip(i, 0, d - 1), np.ones(i.shape, bool)
    r = _reflect(i.astype(np.float64), lo, hi).astype(np.int64)
    return np.clip(r, 0, d - 1), np.ones(i.shape, bool)


@imports("GridSample")
def _grid_sample(
    m: ONNXModule, x: Tensor, grid: Tensor, mode: str = "linear",
    padding_mode: str = "zeros", align_corners: int = 0,
) -> Tensor:  # fmt: skip
    """Samples ``x`` at ``grid``'s normalized positions; differentiable in ``x`` (the
    positions are read, so no gradient reaches ``grid``)."""
    import itertools

    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    dims = list(x.shape[2:])
    n, c = x.shape[0], x.shape[1]
    g = _host(grid).astype(np.float32)[..., ::-1]  # (x, y, z) order -> the spatial axes' order
    out_shape = g.shape[1:-1]
    taps_per_dim = []
    for k, d in enumerate(dims):
        v = g[..., k].reshape(n, -1)
        if align_corners:
            pos = (v + 1) / np.float32(2.0) * np.float32(d - 1)
            lo, hi = 0.0, d - 1.0
        else:
            pos = ((v + 1) * np.float32(d) - 1) / np.float32(2.0)
            lo, hi = -0.5, d - 0.5
        if mode == "nearest":
            pos = np.rint(pos)
        outside = (pos < lo) | (pos > hi)
        if padding_mode == "border":
            pos = np.where(outside, np.clip(pos, 0, d - 1), pos)
        elif padding_mode == "reflection":
            pos = np.where(outside, _reflect(pos, np.float32(lo), np.float32(hi)), pos)
        if mode == "nearest":
            taps = [(pos.astype(np.int64), np.ones_like(pos))]
        elif mode == "linear":
            x0 = np.floor(pos)
            t = pos - x0
            taps = [(x0.astype(np.int64), 1 - t), (x0.astype(np.int64) + 1, t)]
        elif mode == "cubic":
            from ._import_resize import _cubic

            x0 = np.floor(pos)
            w = _cubic(pos - x0, -0.75)
            taps = [(x0.astype(np.int64) + j - 1, w[j]) for j in range(4)]
        else:
            raise NotImplementedError(f"GridSample mode {mode!r}")
        taps_per_dim.append([(*_fetch(i, d, lo, hi, padding_mode), w) for i, w in taps])
    flat = x.reshape(n, c, -1)
    out = None
    for combo in itertools.product(*taps_per_dim):
        idx = np.zeros_like(combo[0][0])
        weight = np.ones(combo[0][0].shape, np.float64)
        for (i, valid, w), d in zip(combo, dims):
            idx = idx * d + i
            weight = weight * w * valid
        rows = tensor(np.ascontiguousarray(np.broadcast_to(idx[:, None, :], (n, c, idx.shape[1]))))
        part = flat.gather(2, rows) * tensor(weight[:, None, :].astype(x.dtype.np))
        out = part if out is None else out + part
    return out.reshape(n, c, *out_shape)
