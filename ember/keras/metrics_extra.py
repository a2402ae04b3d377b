"""Keras 3 ``MeanIoU`` and ``R2Score`` (streaming, with ``sample_weight``).

Example:
    >>> from ember.keras import metrics
    >>> m = metrics.MeanIoU(num_classes=2)
    >>> m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
    >>> round(float(m.result()), 4)
    0.3333
"""

from __future__ import annotations

import numpy as np

from ember.metrics._base import safe_div, to_numpy

from .metrics_confusion import KerasMetric, entry_weights

__all__ = ["MeanIoU", "R2Score"]


class MeanIoU(KerasMetric):
    """Keras ``MeanIoU``: the mean over classes of ``tp / (tp + fp + fn)`` from a weighted
    confusion matrix, over the classes that occur (in targets or predictions).
    ``sparse_y_true``/``sparse_y_pred=False`` take the arg-max along ``axis``;
    ``ignore_class`` entries do not count."""

    name = "mean_io_u"

    def __init__(
        self,
        num_classes,
        name=None,
        dtype=None,
        ignore_class=None,
        sparse_y_true=True,
        sparse_y_pred=True,
        axis=-1,
    ):
        self.num_classes, self.ignore_class = int(num_classes), ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        super().__init__(name or "mean_io_u", dtype)

    def _empty_state(self):
        return {"cm": np.zeros((self.num_classes, self.num_classes))}

    def _batch_state(self, preds, target, sample_weight=None):
        p, t = to_numpy(preds), to_numpy(target)
        if not self.sparse_y_pred:
            p = np.argmax(p, axis=self.axis)
        if not self.sparse_y_true:
            t = np.argmax(t, axis=self.axis)
        w = entry_weights(sample_weight, t.shape).ravel() if sample_weight is not None else None
        t, p = t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
        if w is None:
            w = np.ones(t.shape)
        if self.ignore_class is not None:
            keep = t != self.ignore_class
            t, p, w = t[keep], p[keep], w[keep]
        n = self.num_classes
        for name, lab in (("target", t), ("prediction", p)):
            if lab.size and (lab.min() < 0 or lab.max() >= n):
                raise ValueError(f"MeanIoU: {name} class outside [0, {n})")
        cm = np.bincount(t * n + p, weights=w, minlength=n * n).reshape(n, n)
        return {"cm": cm}

    def _value(self, state):
        cm = state["cm"]
        tp = np.diag(cm)
        den = cm.sum(axis=0) + cm.sum(axis=1) - tp
        valid = np.count_nonzero(den)
        return float(safe_div(np.sum(safe_div(tp, den)), valid))

    def _extra_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }


class R2Score(KerasMetric):
    """Keras ``R2Score``: the coefficient of determination per output column,
    aggregated by ``class_aggregation`` (``'uniform_average'``,
    ``'variance_weighted_average'`` or ``None`` for the per-column scores), adjusted for
    ``num_regressors`` when non-zero."""

    def __init__(
        self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None
    ):
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(f"R2Score: unknown class_aggregation {class_aggregation!r}")
        if int(num_regressors) < 0:
            raise ValueError(f"R2Score: num_regressors must be >= 0, got {num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        super().__init__(name, dtype)

    def _empty_state(self):
        return {"sum": None, "sq": None, "res": None, "count": None, "n": 0.0}

    def _batch_state(self, preds, target, sample_weight=None):
        p = to_numpy(preds).astype(np.float64)
        t = to_numpy(target).astype(np.float64)
        if t.ndim == 1:
            t = t[:, None]
        if p.ndim == 1:
            p = p[:, None]
        if t.shape != p.shape or t.ndim != 2:
            raise ValueError(f"R2Score: y_true {t.shape} and y_pred {p.shape} must be (N, D)")
        w = entry_weights(sample_weight, t.shape)
        return {
            "sum": np.sum(t * w, axis=0),
            "sq": np.sum(t * t * w, axis=0),
            "res": np.sum((t - p) ** 2 * w, axis=0),
            "count": np.sum(w, axis=0),
            "n": float(t.size),  # Keras counts every entry
        }

    def _value(self, state):
        if state["sum"] is None:
            return 0.0
        mean = safe_div(state["sum"], state["count"])
        total = state["sq"] - state["sum"] * mean
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = 1.0 - state["res"] / total
        raw = np.where(np.isfinite(raw), raw, 0.0)
        if self.class_aggregation == "uniform_average":
            r2 = np.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            r2 = safe_div(np.sum(total * raw), np.sum(total))
        else:
            r2 = raw
        k, n = self.num_regressors, state["n"]
        if k:
            if k > n - 1:
                return r2
            r2 = 1.0 - (1.0 - r2) * (n - 1.0) / (n - k - 1.0) if n - k - 1 else r2
        return float(r2) if np.ndim(r2) == 0 else r2

    def _extra_config(self):
        return {"class_aggregation": self.class_aggregation, "num_regressors": self.num_regressors}
