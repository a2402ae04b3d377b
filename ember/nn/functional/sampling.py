"""``interpolate``/``upsample``, ``embedding``, ``one_hot``, ``pad``."""

from __future__ import annotations

import math

import numpy as np

from ... import ops
from ...ops._core import ShapeError, bind
from ...ops.nn import embedding_p, one_hot_p

__all__ = [
    "embedding",
    "interpolate",
    "one_hot",
    "pad",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
]


def _interp_matrix(n_in, n_out, mode, align_corners, scale, dtype):
    """(n_out, n_in) matrix mapping an axis of length n_in to n_out (PyTorch's rules)."""
    m = np.zeros((n_out, n_in), np.float64)
    o = np.arange(n_out)
    if mode == "nearest":
        sc = (1.0 / scale) if scale else n_in / n_out
        src = np.minimum(np.floor(o * sc).astype(np.int64), n_in - 1)
        m[o, src] = 1.0
    elif mode == "nearest-exact":
        sc = (1.0 / scale) if scale else n_in / n_out
        src = np.minimum(np.floor((o + 0.5) * sc).astype(np.int64), n_in - 1)
        m[o, src] = 1.0
    else:  # linear
        if align_corners:
            src = o * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
        else:
            sc = (1.0 / scale) if scale else n_in / n_out
            src = np.maximum((o + 0.5) * sc - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = src - i0
        np.add.at(m, (o, i0), 1.0 - lam)
        np.add.at(m, (o, i1), lam)
    return m.astype(dtype)


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    op = "interpolate"
    nsp = input.ndim - 2
    if nsp not in (1, 2):
        raise ShapeError(f"{op}: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    if mode == "area":
        from .pooling import adaptive_avg_pool1d, adaptive_avg_pool2d

        if size is None:
            sf = (
                (scale_factor,) * nsp
                if not isinstance(scale_factor, (list, tuple))
                else tuple(scale_factor)
            )
            size = tuple(math.floor(n * f) for n, f in zip(input.shape[2:], sf))
        size = (size,) * nsp if isinstance(size, int) else tuple(size)
        return adaptive_avg_pool2d(input, size) if nsp == 2 else adaptive_avg_pool1d(input, size)
    if mode not in ("nearest", "nearest-exact", "linear", "bilinear"):
        raise NotImplementedError(
            f"{op}: mode {mode!r} is not supported (nearest, nearest-exact, linear, bilinear)"
        )
    if mode in ("nearest", "nearest-exact") and align_corners is not None:
        raise ValueError(
            f"{op}: align_corners option can only be set with the interpolating "
            "modes: linear | bilinear | bicubic | trilinear"
        )
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size or scale_factor must be defined")
    in_sp = tuple(input.shape[2:])
    if size is not None:
        size = (size,) * nsp if isinstance(size, int) else tuple(int(s) for s in size)
        scales = (None,) * nsp
    else:
        sf = (
            (scale_factor,) * nsp
            if not isinstance(scale_factor, (list, tuple))
            else tuple(scale_factor)
        )
        size = tuple(math.floor(n * s) for n, s in zip(in_sp, sf))
        scales = (None,) * nsp if recompute_scale_factor else tuple(float(s) for s in sf)
    if len(size) != nsp:
        raise ValueError(
            f"{op}: size {size} must have {nsp} elements for input of shape {tuple(input.shape)}"
        )
    kind = (
        "nearest"
        if mode in ("nearest",)
        else ("nearest-exact" if mode == "nearest-exact" else "linear")
    )
    dt = input._data.dtype
    from ..._creation import from_numpy

    x = input
    # last axis: x @ Mw^T
    mw = _interp_matrix(in_sp[-1], size[-1], kind, bool(align_corners), scales[-1], dt)
    x = ops.matmul(x, from_numpy(np.ascontiguousarray(mw.T)))
    if nsp == 2:
        mh = _interp_matrix(in_sp[0], size[0], kind, bool(align_corners), scales[0], dt)
        x = ops.matmul(from_numpy(mh), x)
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, "bilinear", align_corners=True)


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
):
    op = "embedding"
    if input._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected indices of integer dtype, got {input.dtype}")
    if weight.ndim != 2:
        raise ShapeError(f"{op}: weight must be 2-D, got shape {tuple(weight.shape)}")
    n = weight.shape[0]
    idx = input._data
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(
            f"{op}: index out of range in self (indices must be in [0, {n}), got "
            f"min {int(idx.min())}, max {int(idx.max())})"
        )
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings")
        padding_idx = int(padding_idx) % n
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    return bind(embedding_p, (weight, input), {"padding_idx": padding_idx})


def _renorm_rows(weight, idx, max_norm, norm_type):
    """Rescale (in place, no grad) the looked-up rows whose norm exceeds ``max_norm``."""
    from ...autograd import no_grad

    rows = np.unique(idx.reshape(-1))
    with no_grad():
        w = weight[rows]
        norms = ops.norm(w, norm_type, 1, keepdim=True)
        scale = ops.where(norms > max_norm, max_norm / (norms + 1e-7), norms * 0.0 + 1.0)
        weight[rows] = w * scale


def one_hot(input, num_classes=-1):
    try:
        from ...ops.indexing import one_hot as _oh
    except ImportError:
        _oh = None
    if _oh is not None:
        return _oh(input, num_classes)
    t = input._data
    if t.dtype.kind not in "iu":
        raise TypeError("one_hot: expected an integer (class index) tensor")
    if num_classes == -1:
        num_classes = int(t.max()) + 1 if t.size else 0
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError("one_hot: class values must be in [0, num_classes)")
    return bind(one_hot_p, (input,), {"num_classes": int(num_classes)})


def pad(input, pad, mode="constant", value=None):
    """Pad the last dims: ``pad = (left, right, top, bottom, ...)`` (from ember.ops.shape)."""
    from ...ops.shape import pad as _pad

    return _pad(input, pad, mode, value)
