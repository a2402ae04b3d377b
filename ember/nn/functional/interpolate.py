"""``interpolate`` / ``upsample``: resizing of 3-, 4- and 5-D inputs, every PyTorch mode.

Every mode but ``area`` is separable: it resizes one spatial axis at a time. ``nearest`` and
``nearest-exact`` gather along the axis (``index_select``, exact, gradient by scatter-add);
``linear``/``bilinear``/``trilinear``, ``bicubic`` and the anti-aliased filters
(``antialias=True``: bilinear, bicubic, ``lanczos``) multiply the axis by an ``(out, in)``
weight matrix built with PyTorch's index and weight rules. ``area`` is adaptive average
pooling.

The source index of each output follows PyTorch's arithmetic, including its precision
(``nearest`` in float32, linear and cubic in the input's floating type), so the same sizes
and scale factors pick the same input elements.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> x = ember.arange(4.0).reshape(1, 1, 4)
    >>> F.interpolate(x, scale_factor=0.5, mode="linear").tolist()
    [[[0.5, 2.5]]]
    >>> tuple(F.interpolate(ember.ones(1, 1, 2, 2, 2), size=(3, 4, 5)).shape)
    (1, 1, 3, 4, 5)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ... import _creation as C
from ... import ops
from ...ops._core import ShapeError
from ...ops.complex_refuse import refuse_complex

__all__ = ["interpolate", "upsample", "upsample_bilinear", "upsample_nearest"]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_MODES_AA = ("bilinear", "bicubic", "lanczos")
_LINEAR_FOR = {3: "linear", 4: "bilinear", 5: "trilinear"}


def _nearest_index(n_in: int, n_out: int, scale, exact: bool) -> np.ndarray:
    """PyTorch's nearest source indices (float32 arithmetic, as its kernels)."""
    o = np.arange(n_out)
    if not exact and n_out == n_in:
        return o
    if not exact and n_out == 2 * n_in:
        return o >> 1
    f32 = np.float32
    sc = f32(1.0 / scale) if scale is not None and scale > 0 else f32(n_in) / f32(n_out)
    if exact:
        src = np.floor(((o + 0.5) * np.float64(sc)).astype(f32))
    else:
        src = np.floor(o.astype(f32) * sc)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _scale(n_in: int, n_out: int, align_corners: bool, scale, dt):
    """``area_pixel_compute_scale`` in the computation type ``dt``."""
    if align_corners:
        return dt(n_in - 1) / dt(n_out - 1) if n_out > 1 else dt(0.0)
    if scale is not None and scale > 0:
        return dt(1.0 / scale)
    return dt(n_in) / dt(n_out)


def _source(sc, n_out: int, align_corners: bool, cubic: bool, dt) -> np.ndarray:
    o = np.arange(n_out).astype(dt)
    if align_corners:
        return sc * o
    src = sc * (o + dt(0.5)) - dt(0.5)
    return src if cubic else np.maximum(src, dt(0.0))


def _linear_matrix(n_in, n_out, align_corners, scale, dt) -> np.ndarray:
    sc = _scale(n_in, n_out, align_corners, scale, dt)
    src = _source(sc, n_out, align_corners, False, dt)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(dt), 0.0, 1.0).astype(dt)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    m = np.zeros((n_out, n_in), dt)
    o = np.arange(n_out)
    np.add.at(m, (o, i0), dt(1.0) - lam)
    np.add.at(m, (o, i1), lam)
    return m


def _cubic(x, a: float):
    """The cubic convolution kernel (Keys) at ``|x|``."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _cubic_matrix(n_in, n_out, align_corners, scale, dt) -> np.ndarray:
    sc = _scale(n_in, n_out, align_corners, scale, dt)
    src = _source(sc, n_out, align_corners, True, dt)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    t = np.clip(src - i0.astype(dt), 0.0, 1.0).astype(dt)
    m = np.zeros((n_out, n_in), dt)
    o = np.arange(n_out)
    for j in range(4):
        w = _cubic((t - (j - 1)).astype(dt), -0.75).astype(dt)
        np.add.at(m, (o, np.clip(i0 + j - 1, 0, n_in - 1)), w)
    return m


def _aa_filter(mode: str):
    if mode == "bilinear":
        return 2, lambda x: np.maximum(1.0 - np.abs(x), 0.0)
    if mode == "bicubic":
        return 4, lambda x: _cubic(x, -0.5)

    def lanczos(x):
        return np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)

    return 6, lanczos


def _aa_matrix(n_in, n_out, align_corners, scale, mode, dt) -> np.ndarray:
    """Anti-aliased weights: the filter stretched by the downscaling factor, each row
    normalized (PyTorch's ``_upsample_*_aa``)."""
    size, filt = _aa_filter(mode)
    sc = float(_scale(n_in, n_out, align_corners, scale, dt))
    support = size * 0.5 * sc if sc >= 1.0 else size * 0.5
    inv = 1.0 / sc if sc >= 1.0 else 1.0
    max_size = math.ceil(support) * 2 + 1
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        center = sc * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        width = min(max(min(int(center + support + 0.5), n_in) - lo, 0), max_size)
        j = np.arange(lo, lo + width)
        w = filt((j - center + 0.5) * inv)
        total = w.sum()
        if total != 0.0:
            w = w / total
        m[i, j] = w
    return m.astype(dt)


def _along(x, axis: int, m: np.ndarray):
    """Multiply spatial ``axis`` of ``x`` by the ``(out, in)`` matrix ``m``."""
    mt = C.from_numpy(np.ascontiguousarray(m.T))
    if axis == x.ndim - 1:
        return ops.matmul(x, mt)
    return ops.matmul(x.transpose(axis, -1), mt).transpose(axis, -1)


def _spatial(v, n: int, what: str, op: str, input) -> list:
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ValueError(
                f"{op}: input and {what} must have the same number of spatial dimensions, "
                f"but got input with spatial dimensions of {list(input.shape[2:])} and {what} "
                f"{tuple(v)}"
            )
        return list(v)
    return [v] * n


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
):
    """Resize the spatial dimensions of ``(N, C, *spatial)`` (1 to 3 of them) to ``size``
    or by ``scale_factor``; ``mode`` as in PyTorch (``nearest``, ``nearest-exact``,
    ``linear``/``bilinear``/``trilinear`` for 3/4/5-D, ``bicubic`` and ``lanczos`` for 4-D,
    ``area``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> x = ember.arange(4.0).reshape(1, 1, 2, 2)
        >>> y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        >>> [round(v, 4) for v in y[0, 0, 0].tolist()]
        [0.0, 0.3333, 0.6667, 1.0]
    """
    refuse_complex("interpolate", input)
    op = "interpolate"
    from ..._tensor import Tensor

    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if mode not in _MODES + ("lanczos",):
        raise NotImplementedError(
            f"{op}: mode {mode!r} is not supported (nearest | linear | bilinear | bicubic | "
            "trilinear | lanczos | area | nearest-exact)"
        )
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                f"{op}: align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
        align = False
    else:
        align = bool(align_corners)
    nd = input.ndim - 2
    if nd not in (1, 2, 3):
        raise NotImplementedError(
            f"{op}: only 3D, 4D and 5D input tensors are supported (got {input.ndim}D) for "
            f"the modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
            f"nearest-exact (got {mode})"
        )
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    in_sp = [int(s) for s in input.shape[2:]]
    scales: list = [None] * nd
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                f"{op}: recompute_scale_factor is not meaningful with an explicit size."
            )
        out_sp = _spatial(size, nd, "output size", op, input)
        if not all(isinstance(s, numbers.Integral) for s in out_sp):
            raise TypeError(
                f"{op}: expected size to be an int or a tuple of ints, got {tuple(out_sp)}"
            )
        out_sp = [int(s) for s in out_sp]
    else:
        sf = [float(s) for s in _spatial(scale_factor, nd, "scale_factor", op, input)]
        if any(not s > 0 for s in sf):
            raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor!r}")
        out_sp = [math.floor(n * s) for n, s in zip(in_sp, sf)]
        if not (recompute_scale_factor or mode == "area"):
            scales = sf
    # mode="area" is adaptive average pooling, which PyTorch allows to size 0 (an empty
    # result); the other modes need positive output sizes
    if any(s < 0 or (s == 0 and mode != "area") for s in out_sp):
        raise ValueError(
            f"{op}: output size {tuple(out_sp)} must be positive (input {tuple(in_sp)})"
        )
    if antialias and not (mode in _MODES_AA and input.ndim == 4):
        raise ValueError(
            f"{op}: anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
            "requires a 4-D tensor as input"
        )
    if mode in ("linear", "bilinear", "trilinear") and mode != _LINEAR_FOR[input.ndim]:
        want = {"linear": 3, "bilinear": 4, "trilinear": 5}[mode]
        raise NotImplementedError(
            f"{op}: got {input.ndim}D input, but {mode} mode needs {want}D input"
        )
    if mode in ("bicubic", "lanczos") and input.ndim != 4:
        raise NotImplementedError(f"{op}: got {input.ndim}D input, but {mode} mode needs 4D input")
    if mode == "lanczos":
        if align:
            raise ValueError(f"{op}: Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError(f"{op}: Lanczos mode requires antialias=True")
    if any(n == 0 for n in in_sp):
        raise ShapeError(f"{op}: input spatial sizes must be non-zero, got {tuple(input.shape)}")
    # PyTorch's upsampling kernels (and its 3-D adaptive pooling behind area mode) refuse zero
    # channels; a zero batch gives an empty result
    if input.shape[1] == 0 and (mode != "area" or nd == 3):
        raise ShapeError(
            f"{op}: non-empty {input.ndim}D data tensor expected (mode {mode!r} needs at "
            f"least one channel), but got a tensor with sizes {tuple(input.shape)}"
        )
    if mode == "area":
        from .pooling import adaptive_avg_pool1d, adaptive_avg_pool2d
        from .volumetric import adaptive_avg_pool3d

        pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[nd - 1]
        return pool(input, tuple(out_sp))
    x = input
    if mode in ("nearest", "nearest-exact"):
        for i in range(nd):
            idx = _nearest_index(in_sp[i], out_sp[i], scales[i], mode == "nearest-exact")
            if not np.array_equal(idx, np.arange(in_sp[i])):
                x = ops.index_select(x, 2 + i, C.from_numpy(idx))
        return x
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: mode {mode!r} needs a floating-point input, got {input.dtype}")
    dt = np.dtype(input._data.dtype).type
    for i in range(nd):
        if antialias:
            m = _aa_matrix(in_sp[i], out_sp[i], align, scales[i], mode, dt)
        elif mode == "bicubic":
            m = _cubic_matrix(in_sp[i], out_sp[i], align, scales[i], dt)
        else:
            m = _linear_matrix(in_sp[i], out_sp[i], align, scales[i], dt)
        x = _along(x, 2 + i, m)
    return x


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    """Deprecated alias of :func:`interpolate` (PyTorch's ``F.upsample``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> tuple(F.upsample(ember.ones(1, 1, 2, 2), scale_factor=2).shape)
        (1, 1, 4, 4)
    """
    refuse_complex("upsample", input)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Nearest upsampling (PyTorch's deprecated ``F.upsample_nearest``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.upsample_nearest(ember.tensor([[[1.0, 2.0]]]), 4).tolist()
        [[[1.0, 1.0, 2.0, 2.0]]]
    """
    refuse_complex("upsample_nearest", input)
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Bilinear upsampling with ``align_corners=True`` (PyTorch's deprecated
    ``F.upsample_bilinear``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> tuple(F.upsample_bilinear(ember.ones(1, 1, 2, 2), (3, 3)).shape)
        (1, 1, 3, 3)
    """
    return interpolate(input, size, scale_factor, "bilinear", align_corners=True)
