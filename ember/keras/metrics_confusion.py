"""Keras 3 confusion-count metrics: ``TruePositives`` ... ``FalseNegatives``, ``Precision``
and ``Recall`` (``thresholds``, ``top_k``, ``class_id``), ``AUC`` and the
sensitivity/specificity/precision/recall-at-a-constraint metrics.

As in Keras, a prediction counts as positive when it is *strictly greater* than a threshold,
``y_true`` is read as a boolean, and ``sample_weight`` weighs each entry (a per-sample weight
broadcasts over the trailing axes). ``AUC`` uses ``num_thresholds`` thresholds
``[-eps, 1/(n-1), ..., (n-2)/(n-1), 1 + eps]`` and a Riemann sum over them.

Example:
    >>> from ember.keras import metrics
    >>> m = metrics.AUC(num_thresholds=3)
    >>> m.update_state([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> float(m.result())
    0.75
"""

from __future__ import annotations

import numpy as np

from ember.metrics._base import Metric, safe_div, to_numpy

__all__ = [
    "AUC",
    "FalseNegatives",
    "FalsePositives",
    "Precision",
    "PrecisionAtRecall",
    "Recall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "TrueNegatives",
    "TruePositives",
]

EPSILON = 1e-7
NEG_INF = -1e10


class KerasMetric(Metric):
    """An ``ember.metrics`` state machine with Keras' ``update_state(y_true, y_pred,
    sample_weight=None)`` and ``get_config``; subclasses implement ``_batch_state(preds,
    target, sample_weight=None)``."""

    dtype = None

    def __init__(self, name=None, dtype=None):
        super().__init__(name)
        self.dtype = dtype

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        self.update(y_pred, y_true, sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, **self._extra_config()}

    def _extra_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def entry_weights(sample_weight, shape) -> np.ndarray:
    """``sample_weight`` broadcast to ``shape``: aligned on the leading (batch) axes, so a
    per-sample weight covers every entry of its sample; ``None`` gives ones."""
    if sample_weight is None:
        return np.ones(shape, dtype=np.float64)
    w = to_numpy(sample_weight).astype(np.float64)
    while w.ndim > len(shape) and w.shape[-1] == 1:
        w = w[..., 0]
    w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"sample_weight of shape {tuple(to_numpy(sample_weight).shape)} does not "
            f"broadcast to predictions of shape {tuple(shape)}"
        ) from None


def _prepare(preds, target, sample_weight, top_k=None, class_id=None):
    """(bool targets, float predictions, weights), all of the predictions' shape."""
    p = to_numpy(preds).astype(np.float64)
    t = to_numpy(target)
    if t.shape != p.shape:
        if t.size != p.size:
            raise ValueError(
                f"targets of shape {t.shape} do not match predictions of shape {p.shape}"
            )
        t = t.reshape(p.shape)
    t = t != 0
    w = entry_weights(sample_weight, p.shape)
    if top_k is not None:
        k = int(top_k)
        kth = -np.sort(-p, axis=-1)[..., k - 1 : k] if k <= p.shape[-1] else -np.inf
        # Keras: the entries outside the top k become -inf (ties at the k-th value all stay)
        p = np.where(p >= kth, p, NEG_INF)
    if class_id is not None:
        p, t, w = p[..., class_id], t[..., class_id], w[..., class_id]
    return t, p, w


def confusion_at(t, p, w, thresholds) -> dict:
    """Weighted tp/fp/tn/fn of ``p > threshold`` for each threshold (flattened inputs)."""
    t, p, w = t.ravel(), p.ravel(), w.ravel()
    order = np.argsort(p, kind="stable")
    ps, pos_w, neg_w = p[order], (w * t)[order], (w * ~t)[order]
    cpos = np.concatenate([[0.0], np.cumsum(pos_w)])
    cneg = np.concatenate([[0.0], np.cumsum(neg_w)])
    idx = np.searchsorted(ps, np.asarray(thresholds, dtype=np.float64), side="right")
    fn, tn = cpos[idx], cneg[idx]  # entries <= threshold: predicted negative
    return {"tp": cpos[-1] - fn, "fp": cneg[-1] - tn, "tn": tn, "fn": fn}


def _parse_thresholds(thresholds, default):
    if thresholds is None:
        return [default], True
    single = np.ndim(thresholds) == 0
    ts = [float(thresholds)] if single else [float(x) for x in thresholds]
    if any(not 0.0 <= x <= 1.0 for x in ts):
        raise ValueError(f"thresholds must be in [0, 1], got {thresholds!r}")
    return ts, single


class _Thresholded(KerasMetric):
    """Confusion counts at a list of thresholds."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        default = 0.5 if top_k is None else NEG_INF
        self.init_thresholds = thresholds
        self.thresholds, self._single = _parse_thresholds(thresholds, default)
        self.top_k, self.class_id = top_k, class_id
        super().__init__(name, dtype)

    def _empty_state(self):
        z = np.zeros(len(self.thresholds))
        return {"tp": z, "fp": z.copy(), "tn": z.copy(), "fn": z.copy()}

    def _batch_state(self, preds, target, sample_weight=None):
        t, p, w = _prepare(preds, target, sample_weight, self.top_k, self.class_id)
        return confusion_at(t, p, w, self.thresholds)

    def _ratio(self, state):
        raise NotImplementedError

    def _value(self, state):
        v = self._ratio(state)
        return float(v[0]) if len(self.thresholds) == 1 else v

    def _extra_config(self):
        return {"thresholds": self.init_thresholds}


def _count_metric(cls_name, key, default_name):
    def __init__(self, thresholds=None, name=None, dtype=None):
        _Thresholded.__init__(self, thresholds, name=name or default_name, dtype=dtype)

    return type(
        cls_name,
        (_Thresholded,),
        {
            "__init__": __init__,
            "name": default_name,
            "_ratio": lambda self, state: np.asarray(state[key], dtype=np.float64),
            "__doc__": f"Keras ``{cls_name}``: the weighted count of {key} at ``thresholds`` "
            "(default 0.5; a list gives one count per threshold).",
            "__module__": __name__,
        },
    )


TruePositives = _count_metric("TruePositives", "tp", "true_positives")
TrueNegatives = _count_metric("TrueNegatives", "tn", "true_negatives")
FalsePositives = _count_metric("FalsePositives", "fp", "false_positives")
FalseNegatives = _count_metric("FalseNegatives", "fn", "false_negatives")


class Precision(_Thresholded):
    """Keras ``Precision``: ``tp / (tp + fp)`` at ``thresholds`` (default 0.5), of the
    ``top_k`` predictions per sample and/or of column ``class_id`` only.

    Example:
        >>> m = Precision()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> round(float(m.result()), 4)
        0.6667
    """

    name = "precision"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name or "precision", dtype)

    def _ratio(self, state):
        return safe_div(state["tp"], state["tp"] + state["fp"])

    def _extra_config(self):
        return {"thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id}


class Recall(Precision):
    """Keras ``Recall``: ``tp / (tp + fn)`` (same arguments as ``Precision``)."""

    name = "recall"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        _Thresholded.__init__(self, thresholds, top_k, class_id, name or "recall", dtype)

    def _ratio(self, state):
        return safe_div(state["tp"], state["tp"] + state["fn"])


def _riemann(x, y, method):
    if method == "interpolation":
        h = (y[:-1] + y[1:]) / 2.0
    elif method == "minoring":
        h = np.minimum(y[:-1], y[1:])
    else:
        h = np.maximum(y[:-1], y[1:])
    return np.sum((x[:-1] - x[1:]) * h, axis=0)


def _interpolate_pr_auc(tp, fp, fn):
    """Davis & Goadrich's interpolated PR AUC, as Keras' ``interpolate_pr_auc``."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = safe_div(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, safe_div(p[:-1], np.maximum(p[1:], 0)), 1.0)
    ratio = np.where(ratio > 0, ratio, 1.0)
    inc = safe_div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
    return np.sum(inc, axis=0)


class AUC(KerasMetric):
    """Keras ``AUC``: the area under the ROC or PR curve from confusion counts at
    ``num_thresholds`` thresholds (``multi_label``: one curve per column, averaged with
    ``label_weights``; otherwise every entry counts, weighted by ``label_weights``)."""

    name = "auc"

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name=None,
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        curve_u = str(curve).upper()
        if curve_u not in ("ROC", "PR"):
            raise ValueError(f'AUC: curve must be "ROC" or "PR", got {curve!r}')
        method = str(summation_method).lower()
        if method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                'AUC: summation_method must be "interpolation", "minoring" or "majoring", '
                f"got {summation_method!r}"
            )
        if thresholds is not None:
            inner = sorted(float(x) for x in thresholds)
            num_thresholds = len(inner) + 2
        else:
            if int(num_thresholds) <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            n = int(num_thresholds)
            inner = [(i + 1) / (n - 1) for i in range(n - 2)]
        self.num_thresholds = int(num_thresholds)
        self._thresholds = np.array([0.0 - EPSILON, *inner, 1.0 + EPSILON])
        self.curve, self.summation_method = curve_u, method
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, float)
        self.from_logits = bool(from_logits)
        super().__init__(name or "auc", dtype)

    @property
    def thresholds(self) -> list:
        return self._thresholds.tolist()

    def _empty_state(self):
        shape = (self.num_thresholds, self.num_labels) if self.multi_label else None
        if shape is not None and shape[1] is None:
            return {"tp": None, "fp": None, "tn": None, "fn": None}
        z = np.zeros(shape or self.num_thresholds)
        return {"tp": z, "fp": z.copy(), "tn": z.copy(), "fn": z.copy()}

    def _batch_state(self, preds, target, sample_weight=None):
        t, p, w = _prepare(preds, target, sample_weight)
        if self.from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        if not self.multi_label:
            if self.label_weights is not None:
                w = w * self.label_weights
            return confusion_at(t, p, w, self._thresholds)
        if p.ndim < 2:
            raise ValueError(f"AUC(multi_label=True): predictions (N, L) expected, got {p.shape}")
        nl = p.shape[-1]
        if self.num_labels is not None and nl != self.num_labels:
            raise ValueError(f"AUC: {nl} labels, but num_labels={self.num_labels}")
        cols = [confusion_at(t[..., j], p[..., j], w[..., j], self._thresholds) for j in range(nl)]
        return {k: np.stack([c[k] for c in cols], axis=1) for k in ("tp", "fp", "tn", "fn")}

    def _value(self, state):
        tp, fp, tn, fn = (state[k] for k in ("tp", "fp", "tn", "fn"))
        if tp is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            per = _interpolate_pr_auc(tp, fp, fn)
        else:
            recall = safe_div(tp, tp + fn)
            if self.curve == "ROC":
                x, y = safe_div(fp, fp + tn), recall
            else:
                x, y = recall, safe_div(tp, tp + fp)
            per = _riemann(x, y, self.summation_method)
        if not self.multi_label:
            return float(per)
        if self.label_weights is None:
            return float(np.mean(per))
        return float(safe_div(np.sum(per * self.label_weights), np.sum(self.label_weights)))

    def _extra_config(self):
        return {
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
            "thresholds": self.thresholds[1:-1],
        }


class _AtConstraint(KerasMetric):
    """Keras' ``SensitivitySpecificityBase``: confusion counts at ``num_thresholds``
    thresholds ``[0, 1/(n-1), ..., 1]``; the result is the largest dependent value over the
    thresholds where the constrained value is ``>= value`` (0 when none)."""

    _arg = "value"

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{type(self).__name__}: {self._arg} must be in [0, 1], got {value}")
        if int(num_thresholds) <= 0:
            raise ValueError(f"num_thresholds must be an integer > 0, got {num_thresholds}")
        n = int(num_thresholds)
        self.value, self.num_thresholds, self.class_id = float(value), n, class_id
        if n == 1:
            self.thresholds = [0.5]
        else:
            self.thresholds = [0.0] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1.0]
        super().__init__(name, dtype)

    def _empty_state(self):
        z = np.zeros(len(self.thresholds))
        return {"tp": z, "fp": z.copy(), "tn": z.copy(), "fn": z.copy()}

    def _batch_state(self, preds, target, sample_weight=None):
        t, p, w = _prepare(preds, target, sample_weight, class_id=self.class_id)
        return confusion_at(t, p, w, self.thresholds)

    def _curves(self, s):
        raise NotImplementedError

    def _value(self, state):
        constrained, dependent = self._curves(state)
        ok = constrained >= self.value
        return float(dependent[ok].max(initial=0.0)) if ok.any() else 0.0

    def _extra_config(self):
        return {
            "num_thresholds": self.num_thresholds,
            "class_id": self.class_id,
            self._arg: self.value,
        }


def _rates(s):
    return {
        "sensitivity": safe_div(s["tp"], s["tp"] + s["fn"]),
        "specificity": safe_div(s["tn"], s["tn"] + s["fp"]),
        "precision": safe_div(s["tp"], s["tp"] + s["fp"]),
    }


class SensitivityAtSpecificity(_AtConstraint):
    """The best sensitivity (recall) where the specificity is ``>= specificity``."""

    name = "sensitivity_at_specificity"
    _arg = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name or self.name, dtype)

    def _curves(self, s):
        r = _rates(s)
        return r["specificity"], r["sensitivity"]


class SpecificityAtSensitivity(_AtConstraint):
    """The best specificity where the sensitivity is ``>= sensitivity``."""

    name = "specificity_at_sensitivity"
    _arg = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name or self.name, dtype)

    def _curves(self, s):
        r = _rates(s)
        return r["sensitivity"], r["specificity"]


class PrecisionAtRecall(_AtConstraint):
    """The best precision where the recall is ``>= recall``."""

    name = "precision_at_recall"
    _arg = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name or self.name, dtype)

    def _curves(self, s):
        r = _rates(s)
        return r["sensitivity"], r["precision"]


class RecallAtPrecision(_AtConstraint):
    """The best recall where the precision is ``>= precision``."""

    name = "recall_at_precision"
    _arg = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name or self.name, dtype)

    def _curves(self, s):
        r = _rates(s)
        return r["precision"], r["sensitivity"]
