"""Regression and aggregation metrics: MeanSquaredError, MeanAbsoluteError, Mean, Sum."""

from __future__ import annotations

import numpy as np

from ..ops._core import ShapeError
from ._base import Metric, safe_div, to_numpy

__all__ = ["Mean", "MeanAbsoluteError", "MeanSquaredError", "Sum"]


def _pair(preds, target, name):
    if target is None:
        raise TypeError(f"{name}: update(preds, target) needs a target")
    p = to_numpy(preds).astype(np.float64)
    t = to_numpy(target).astype(np.float64)
    if p.shape != t.shape:
        if p.size == t.size and p.squeeze().shape == t.squeeze().shape:
            p = p.reshape(t.shape)
        else:
            raise ShapeError(
                f"{name}: preds of shape {tuple(p.shape)} and target of shape "
                f"{tuple(t.shape)} must have the same shape"
            )
    return p, t


class _ErrorMetric(Metric):
    def _empty_state(self):
        return {"total": 0.0, "count": 0.0}

    def _batch_state(self, preds, target):
        p, t = _pair(preds, target, type(self).__name__)
        return {"total": float(self._err(p - t).sum()), "count": float(p.size)}

    def _value(self, state):
        return float(safe_div(state["total"], state["count"]))


class MeanSquaredError(_ErrorMetric):
    """Mean of (preds - target)^2 over every element; ``squared=False`` gives the RMSE."""

    name = "mean_squared_error"

    def __init__(self, squared=True, name=None):
        self.squared = bool(squared)
        super().__init__(name)

    @staticmethod
    def _err(d):
        return d * d

    def _value(self, state):
        v = super()._value(state)
        return v if self.squared else float(np.sqrt(v))


class MeanAbsoluteError(_ErrorMetric):
    """Mean of |preds - target| over every element."""

    name = "mean_absolute_error"

    @staticmethod
    def _err(d):
        return np.abs(d)


class Mean(Metric):
    """Weighted running mean: ``update(values, weight=None)``; the weight broadcasts to
    the values' shape."""

    name = "mean"

    def _empty_state(self):
        return {"total": 0.0, "weight": 0.0}

    def _batch_state(self, values, weight=None, sample_weight=None):
        v = to_numpy(values).astype(np.float64)
        w = weight if weight is not None else sample_weight
        if w is None:
            return {"total": float(v.sum()), "weight": float(v.size)}
        w = to_numpy(w).astype(np.float64)
        try:
            w = np.broadcast_to(w, v.shape) if w.ndim <= v.ndim else None
        except ValueError:
            w = None
        if w is None:
            raise ShapeError(
                f"Mean: weight of shape {tuple(to_numpy(weight).shape)} does not "
                f"broadcast to values of shape {tuple(v.shape)}"
            )
        return {"total": float((v * w).sum()), "weight": float(w.sum())}

    def _value(self, state):
        return float(safe_div(state["total"], state["weight"]))


class Sum(Metric):
    """Running sum of every value seen."""

    name = "sum"

    def _empty_state(self):
        return {"total": 0.0}

    def _batch_state(self, values, target=None):
        return {"total": float(to_numpy(values).astype(np.float64).sum())}

    def _value(self, state):
        return float(state["total"])
