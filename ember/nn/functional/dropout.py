"""Dropout: the mask is drawn from an explicit seed (``ember.random.next_seed()``) passed as
a primitive param, so traced graphs are reproducible; kept values are scaled by 1/(1-p)."""

from __future__ import annotations

import warnings

from ... import random as _random
from ...ops._core import ShapeError, bind, refuse_integral
from ...ops.nn import dropout_p

__all__ = [
    "alpha_dropout",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
]


def _check_p(p, op):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _drop(input, p, mask_shape, op="dropout"):
    refuse_integral(op, input)
    return bind(
        dropout_p,
        (input,),
        {"seed": _random.next_seed(), "p": float(p), "mask_shape": tuple(mask_shape)},
    )


def dropout(input, p=0.5, training=True, inplace=False):
    _check_p(p, "dropout")
    if not training or p == 0:
        return input
    return _drop(input, p, input.shape)


def _feature_dropout(input, p, training, op, nd):
    # PyTorch's dims: dropout1d takes only (C, L) / (N, C, L); dropout2d treats a 3-D input as
    # (N, C, L) (one draw per (sample, channel), not per channel of an unbatched (C, H, W));
    # dropout3d adds a batch dim to anything but a 5-D input. One draw per (dim 0, dim 1).
    _check_p(p, op)
    if nd == 1 and input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input")
    if nd > 1 and input.ndim not in (nd + 1, nd + 2):
        warnings.warn(
            f"{op}: Received a {input.ndim}-D input to {op}, which is deprecated in PyTorch; "
            f"use dropout instead ({op} expects {nd + 1}D or {nd + 2}D inputs)",
            stacklevel=3,
        )
    if not training or p == 0:
        return input
    lead = (1,) if nd != 2 and input.ndim != nd + 2 else ()  # the batch dim PyTorch adds
    full = lead + tuple(input.shape)
    if len(full) < 2:
        raise ShapeError(f"{op}: Feature dropout requires at least 2 dimensions in the input")
    shape = full[:2] + (1,) * (len(full) - 2)
    return _drop(input, p, shape[len(lead) :], op)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, "dropout1d", 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, "dropout2d", 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, "dropout3d", 3)


def _alpha_drop(input, p, training, op, mask_shape):
    _check_p(p, op)
    if not training or p == 0:
        return input
    if p == 1:  # everything dropped: zeros (NaN stays NaN), as PyTorch
        return input * 0.0
    from ..._creation import ones

    alpha = -1.7580993408473766
    keep = _drop(ones(*mask_shape, dtype=input.dtype), p, mask_shape) * (1 - p)
    a = ((1 - p) * (1 + p * alpha * alpha)) ** -0.5
    b = -a * alpha * p
    return (input * keep + alpha * (1 - keep)) * a + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    return _alpha_drop(input, p, training, "alpha_dropout", tuple(input.shape))


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    # one draw per (sample, channel): the first two dims, as PyTorch
    if input.ndim < 2:
        raise ValueError(
            "feature_alpha_dropout: feature dropout requires at least 2 dimensions in the "
            f"input, got {input.ndim}"
        )
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha_drop(input, p, training, "feature_alpha_dropout", shape)
