"""``embedding``, ``one_hot``, ``pad`` (``interpolate``/``upsample`` live in interpolate.py)."""

from __future__ import annotations

import numpy as np

from ... import ops
from ...ops._core import ShapeError, bind
from ...ops.nn import embedding_index_error, embedding_p, one_hot_p
from .interpolate import interpolate, upsample, upsample_bilinear, upsample_nearest

__all__ = [
    "embedding",
    "interpolate",
    "one_hot",
    "pad",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
]


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
    idx = input._data  # (indices out of range: the lookup raises, naming the range)
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings")
        padding_idx = int(padding_idx) % n
    if max_norm is not None:
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise embedding_index_error(idx, n)
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    out = bind(embedding_p, (weight, input), {"padding_idx": padding_idx})
    if scale_grad_by_freq and idx.size and out.requires_grad:
        # each looked-up row's gradient divided by its index's count in ``input`` (as
        # PyTorch); the value is kept exactly (r + (r*f - r*f) == r for finite r)
        from ... import _creation as C

        flat = idx.reshape(-1) % n
        counts = np.bincount(flat, minlength=n)[flat].astype(weight._data.dtype)
        f = C.from_numpy((1.0 / counts).reshape(idx.shape + (1,)))
        scaled = out * f
        out = out.detach() + (scaled - scaled.detach())
    return out


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
