"""Keras metrics: Keras 3 names, constructor signatures and ``update_state(y_true, y_pred)``,
on top of the ``ember.metrics`` streaming metrics (which take ``update(preds, target)``).

``'accuracy'`` follows Keras: its meaning depends on the loss (sparse labels, one-hot
targets, or binary probabilities). Metrics of sparse labels raise ``ValueError`` for a label
outside ``[0, num_classes)`` instead of counting it as a miss.

Other ``ember.metrics`` classes (``AUROC``, ``ConfusionMatrix``, ...) are reachable here too,
with their ``ember.metrics`` signatures.

Example:
    >>> import numpy as np
    >>> from ember.keras import metrics
    >>> m = metrics.SparseCategoricalAccuracy()
    >>> m.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    >>> float(m.result())
    0.5
"""

from __future__ import annotations

import numpy as np

import ember
from ember import metrics as M
from ember.metrics._base import to_numpy

from . import losses as L
from .losses import (
    binary_crossentropy,
    categorical_crossentropy,
    check_sparse_labels,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    sparse_categorical_crossentropy,
)
from .metrics_confusion import (
    AUC,
    FalseNegatives,
    FalsePositives,
    KerasMetric,
    Precision,
    PrecisionAtRecall,
    Recall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
)
from .metrics_extra import MeanIoU, R2Score

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CosineSimilarity",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanIoU",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "Poisson",
    "Precision",
    "PrecisionAtRecall",
    "R2Score",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SensitivityAtSpecificity",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]


# -- per-sample metric functions (Keras 3: one value per sample, not reduced) ---------------
def _tensor(x):
    return x if isinstance(x, ember.Tensor) else ember.as_tensor(x)


def _labels(y_true, y_pred, what):
    y_true, y_pred = _tensor(y_true), _tensor(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    check_sparse_labels(y_true, y_pred.shape[-1], what)
    return y_true.long(), y_pred


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the arg-max of ``y_pred`` is the integer label ``y_true``, else 0.0.

    Example:
        >>> from ember.keras import metrics
        >>> metrics.sparse_categorical_accuracy([1, 0], [[0.1, 0.9], [0.3, 0.7]]).tolist()
        [1.0, 0.0]
    """
    labels, y_pred = _labels(y_true, y_pred, "sparse_categorical_accuracy")
    return (y_pred.argmax(dim=-1) == labels).to(ember.float32)


def categorical_accuracy(y_true, y_pred):
    """1.0 where the arg-max of ``y_pred`` is the arg-max of the one-hot ``y_true``.

    Example:
        >>> from ember.keras import metrics
        >>> metrics.categorical_accuracy([[0, 1], [1, 0]], [[0.1, 0.9], [0.3, 0.7]]).tolist()
        [1.0, 0.0]
    """
    y_true, y_pred = _tensor(y_true), _tensor(y_pred)
    return (y_pred.argmax(dim=-1) == y_true.argmax(dim=-1)).to(ember.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``y_pred > threshold`` agrees with the 0/1 ``y_true``, elementwise.

    Example:
        >>> from ember.keras import metrics
        >>> metrics.binary_accuracy([1.0, 0.0], [0.7, 0.6]).tolist()
        [1.0, 0.0]
    """
    y_true, y_pred = _tensor(y_true), _tensor(y_pred)
    return ((y_pred > threshold).to(y_true.dtype) == y_true).to(ember.float32)


def _in_top_k(labels, y_pred, k):
    k = min(int(k), int(y_pred.shape[-1]))
    _, idx = y_pred.topk(k, dim=-1)
    return (idx == labels.unsqueeze(-1)).any(dim=-1).to(ember.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot target's class is among the ``k`` highest scores.

    Example:
        >>> from ember.keras import metrics
        >>> y = [[0, 0, 1], [1, 0, 0]]
        >>> metrics.top_k_categorical_accuracy(y, [[0.2, 0.5, 0.3], [0.1, 0.5, 0.4]], k=2).tolist()
        [1.0, 0.0]
    """
    y_true, y_pred = _tensor(y_true), _tensor(y_pred)
    return _in_top_k(y_true.argmax(dim=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1.0 where the integer label is among the ``k`` highest scores of ``y_pred``
    (``from_sorted_ids=True``: ``y_pred`` already holds the top class ids, best first).

    Example:
        >>> from ember.keras import metrics
        >>> p = [[0.2, 0.5, 0.3], [0.1, 0.5, 0.4]]
        >>> metrics.sparse_top_k_categorical_accuracy([2, 0], p, k=2).tolist()
        [1.0, 0.0]
    """
    if from_sorted_ids:
        y_true, ids = _tensor(y_true), _tensor(y_pred)
        if y_true.ndim == ids.ndim and y_true.ndim and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        top = ids[..., : int(k)].long()
        return (top == y_true.long().unsqueeze(-1)).any(dim=-1).to(ember.float32)
    labels, y_pred = _labels(y_true, y_pred, "sparse_top_k_categorical_accuracy")
    return _in_top_k(labels, y_pred, k)


def _weighted_sums(values, sample_weight) -> tuple[float, float]:
    """(sum(v * w), sum(w)) as Keras' ``Mean`` accumulates: values of a higher rank than the
    weights are averaged over their trailing axes first, then the weights broadcast."""
    v = to_numpy(values).astype(np.float64)
    w = to_numpy(sample_weight).astype(np.float64)
    while w.ndim > v.ndim and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim < v.ndim:
        v = v.mean(axis=tuple(range(w.ndim, v.ndim))) if w.ndim else v.mean()
    try:
        w = np.broadcast_to(w, v.shape)
    except ValueError:
        raise ValueError(
            f"sample_weight of shape {w.shape} does not match values of shape {v.shape}"
        ) from None
    return float((v * w).sum()), float(w.sum())


class _Keras:
    """Keras' metric API over an ``ember.metrics`` metric. ``sample_weight`` needs the
    per-sample values (``_values``) and the state's (numerator, denominator) keys."""

    dtype = None
    _weight_keys: tuple[str, str] | None = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if sample_weight is None:
            self.update(y_pred, y_true)
            return
        if self._weight_keys is None:
            raise NotImplementedError(
                f"{type(self).__name__}.update_state: sample_weight is not supported"
            )
        num, den = _weighted_sums(self._values(y_true, y_pred), sample_weight)
        self._merge(self._state, dict(zip(self._weight_keys, (num, den), strict=True)))
        self._count += 1

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, **self._extra_config()}

    def _extra_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class Metric(M.Metric):
    """Base class of custom metrics (``ember.metrics.Metric`` with Keras' signature)."""

    def __init__(self, dtype=None, name=None):
        super().__init__(name)
        self.dtype = dtype


class Accuracy(_Keras, M.Accuracy):
    """Keras ``Accuracy``: the fraction of predictions equal to the targets."""

    _weight_keys = ("correct", "total")

    def __init__(self, name="accuracy", dtype=None):
        M.Accuracy.__init__(self, name=name)
        self.dtype = dtype

    def _values(self, y_true, y_pred):
        return (to_numpy(y_pred) == to_numpy(y_true)).astype(np.float64)

    def _batch_state(self, preds, target):
        p, t = to_numpy(preds), to_numpy(target)
        if p.shape != t.shape:
            raise ValueError(
                f"Accuracy: predictions of shape {p.shape} and targets of shape {t.shape} differ"
            )
        ok = p == t
        return {"correct": float(np.count_nonzero(ok)), "total": float(ok.size)}


class BinaryAccuracy(_Keras, M.BinaryAccuracy):
    _weight_keys = ("correct", "total")

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        M.BinaryAccuracy.__init__(self, threshold=threshold, name=name)
        self.dtype = dtype

    def _values(self, y_true, y_pred):
        p, t = to_numpy(y_pred), to_numpy(y_true)
        if t.ndim == p.ndim - 1 and p.shape[-1] == 1:
            t = t[..., None]
        return ((p > self.threshold) == (t != 0)).astype(np.float64)

    def _extra_config(self):
        return {"threshold": self.threshold}


class CategoricalAccuracy(_Keras, M.CategoricalAccuracy):
    _weight_keys = ("correct", "total")

    def __init__(self, name="categorical_accuracy", dtype=None):
        M.CategoricalAccuracy.__init__(self, name=name)
        self.dtype = dtype

    def _values(self, y_true, y_pred):
        return categorical_accuracy(y_true, y_pred)


def _sparse_target(preds, target, what):
    p, t = to_numpy(preds), to_numpy(target)
    if t.ndim == p.ndim and t.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    if p.ndim >= 1:
        check_sparse_labels(t, p.shape[-1], what)
    return t


class SparseCategoricalAccuracy(_Keras, M.SparseCategoricalAccuracy):
    _weight_keys = ("correct", "total")

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        M.SparseCategoricalAccuracy.__init__(self, name=name)
        self.dtype = dtype

    def _values(self, y_true, y_pred):
        return sparse_categorical_accuracy(y_true, y_pred)

    def _batch_state(self, preds, target):
        _sparse_target(preds, target, "SparseCategoricalAccuracy")
        return super()._batch_state(preds, target)


class TopKCategoricalAccuracy(_Keras, M.TopKAccuracy):
    """Top-k accuracy against one-hot targets."""

    _weight_keys = ("correct", "total")

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        M.TopKAccuracy.__init__(self, k=k, name=name)
        self.dtype = dtype

    def _values(self, y_true, y_pred):
        return top_k_categorical_accuracy(y_true, y_pred, self.k)

    def _extra_config(self):
        return {"k": self.k}


class SparseTopKCategoricalAccuracy(_Keras, M.TopKAccuracy):
    """Top-k accuracy against integer labels."""

    def __init__(
        self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False
    ):
        if from_sorted_ids:
            raise NotImplementedError(
                "SparseTopKCategoricalAccuracy: from_sorted_ids=True is not supported"
            )
        M.TopKAccuracy.__init__(self, k=k, name=name)
        self.dtype, self.from_sorted_ids = dtype, from_sorted_ids

    _weight_keys = ("correct", "total")

    def _values(self, y_true, y_pred):
        return sparse_top_k_categorical_accuracy(y_true, y_pred, self.k)

    def _batch_state(self, preds, target):
        _sparse_target(preds, target, "SparseTopKCategoricalAccuracy")
        return super()._batch_state(preds, target)

    def _extra_config(self):
        return {"k": self.k, "from_sorted_ids": self.from_sorted_ids}


def _errors(y_true, y_pred):
    p, t = to_numpy(y_pred).astype(np.float64), to_numpy(y_true).astype(np.float64)
    if t.ndim == p.ndim - 1 and p.shape[-1] == 1:
        t = t[..., None]
    return p - t


class MeanSquaredError(_Keras, M.MeanSquaredError):
    _weight_keys = ("total", "count")

    def _values(self, y_true, y_pred):
        return _errors(y_true, y_pred) ** 2

    def __init__(self, name="mean_squared_error", dtype=None):
        M.MeanSquaredError.__init__(self, name=name)
        self.dtype = dtype


class MeanAbsoluteError(_Keras, M.MeanAbsoluteError):
    _weight_keys = ("total", "count")

    def _values(self, y_true, y_pred):
        return np.abs(_errors(y_true, y_pred))

    def __init__(self, name="mean_absolute_error", dtype=None):
        M.MeanAbsoluteError.__init__(self, name=name)
        self.dtype = dtype


class Mean(_Keras, M.Mean):
    """Weighted running mean: ``update_state(values, sample_weight=None)``."""

    def __init__(self, name="mean", dtype=None):
        M.Mean.__init__(self, name=name)
        self.dtype = dtype

    def update_state(self, values, sample_weight=None) -> None:
        self.update(values, sample_weight)


class Sum(_Keras, M.Sum):
    def __init__(self, name="sum", dtype=None):
        M.Sum.__init__(self, name=name)
        self.dtype = dtype

    def update_state(self, values, sample_weight=None) -> None:
        if sample_weight is not None:
            values = to_numpy(values) * to_numpy(sample_weight)
        self.update(values)


class _LossMean(_Keras, M.Mean):
    """The running mean of a per-sample loss (Keras' loss-named metrics)."""

    def _per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def _batch_state(self, preds, target):
        import ember

        p = preds if isinstance(preds, ember.Tensor) else ember.as_tensor(np.asarray(preds))
        with ember.no_grad():
            per = self._per_sample(target, p)
        return M.Mean._batch_state(self, per.detach())

    _weight_keys = ("total", "weight")

    def _values(self, y_true, y_pred):
        with ember.no_grad():
            return to_numpy(self._per_sample(y_true, _tensor(y_pred)).detach())


class MeanMetricWrapper(_LossMean):
    """Keras' ``MeanMetricWrapper``: the running mean of ``fn(y_true, y_pred, **kwargs)``, a
    per-sample function; ``compile(metrics=[fn])`` wraps a plain function in it, named after
    the function (Keras 3). ``y_true`` reaches ``fn`` as a tensor.

    Example:
        >>> from ember import keras
        >>> def abs_err(y_true, y_pred):
        ...     return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)
        >>> m = keras.metrics.MeanMetricWrapper(abs_err)
        >>> m.update_state([[1.0], [2.0]], [[1.5], [2.0]])
        >>> m.name, float(m.result())
        ('abs_err', 0.25)
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be callable, got {type(fn).__name__}")
        M.Mean.__init__(self, name=name or getattr(fn, "__name__", None) or "mean_metric")
        self.dtype = dtype
        self._fn, self._fn_kwargs = fn, kwargs

    def _per_sample(self, y_true, y_pred):
        return _tensor(self._fn(_tensor(y_true), y_pred, **self._fn_kwargs))


class SparseCategoricalCrossentropy(_LossMean):
    """Mean cross-entropy of integer labels (out-of-range labels raise ``ValueError``).
    ``ignore_class`` entries contribute 0 but still count in the mean, as Keras' metric
    does (the loss of the same name leaves them out of the mean)."""

    def __init__(
        self,
        name="sparse_categorical_crossentropy",
        dtype=None,
        from_logits=False,
        ignore_class=None,
        axis=-1,
    ):
        M.Mean.__init__(self, name=name)
        self.dtype, self.from_logits, self.ignore_class, self.axis = (
            dtype,
            from_logits,
            ignore_class,
            axis,
        )

    def _per_sample(self, y_true, y_pred):
        return L.sparse_categorical_crossentropy(
            y_true, y_pred, self.from_logits, self.axis, self.ignore_class
        )

    def _extra_config(self):
        return {
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "axis": self.axis,
        }


class CategoricalCrossentropy(_LossMean):
    def __init__(
        self,
        name="categorical_crossentropy",
        dtype=None,
        from_logits=False,
        label_smoothing=0,
        axis=-1,
    ):
        M.Mean.__init__(self, name=name)
        self.dtype, self.from_logits = dtype, from_logits
        self.label_smoothing, self.axis = label_smoothing, axis

    def _per_sample(self, y_true, y_pred):
        return L.categorical_crossentropy(
            y_true, y_pred, self.from_logits, self.label_smoothing, self.axis
        )

    def _extra_config(self):
        return {
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class BinaryCrossentropy(_LossMean):
    def __init__(
        self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0
    ):
        M.Mean.__init__(self, name=name)
        self.dtype, self.from_logits, self.label_smoothing = dtype, from_logits, label_smoothing

    def _per_sample(self, y_true, y_pred):
        return L.binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def _extra_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


def _plain_metric(cls_name, default_name, fn, doc):
    def __init__(self, name=default_name, dtype=None):
        M.Mean.__init__(self, name=name)
        self.dtype = dtype

    return type(
        cls_name,
        (_LossMean,),
        {
            "__init__": __init__,
            "_per_sample": lambda self, y_true, y_pred: fn(y_true, y_pred),
            "__doc__": doc,
            "__module__": __name__,
        },
    )


KLDivergence = _plain_metric(
    "KLDivergence", "kl_divergence", L.kl_divergence, "Mean Kullback-Leibler divergence."
)
Hinge = _plain_metric("Hinge", "hinge", L.hinge, "Mean hinge loss (labels 0/1 or -1/1).")
MeanAbsolutePercentageError = _plain_metric(
    "MeanAbsolutePercentageError",
    "mean_absolute_percentage_error",
    L.mape,
    "Mean absolute percentage error.",
)
LogCoshError = _plain_metric("LogCoshError", "logcosh", L.log_cosh, "Mean log(cosh(error)).")
Poisson = _plain_metric("Poisson", "poisson", L.poisson, "Mean Poisson loss.")


class CosineSimilarity(_LossMean):
    """Mean cosine similarity of targets and predictions along ``axis`` (positive, unlike
    the loss of the same name)."""

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        M.Mean.__init__(self, name=name)
        self.dtype, self.axis = dtype, axis

    def _per_sample(self, y_true, y_pred):
        return -L.cosine_similarity(y_true, y_pred, self.axis)

    def _extra_config(self):
        return {"axis": self.axis}


class RootMeanSquaredError(MeanSquaredError):
    """The square root of the mean squared error over every element."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        M.MeanSquaredError.__init__(self, squared=False, name=name)
        self.dtype = dtype


_BY_NAME = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mean": Mean,
    "sum": Sum,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "hinge": Hinge,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "logcosh": LogCoshError,
    "cosine_similarity": CosineSimilarity,
    "root_mean_squared_error": RootMeanSquaredError,
    "rmse": RootMeanSquaredError,
    "poisson": Poisson,
    "auc": AUC,
    "precision": Precision,
    "recall": Recall,
    "true_positives": TruePositives,
    "true_negatives": TrueNegatives,
    "false_positives": FalsePositives,
    "false_negatives": FalseNegatives,
    "r2_score": R2Score,
}


class _ShapeAccuracy(_LossMean):
    """``'accuracy'`` under a loss that does not name the kind (``'mse'``, a custom function):
    Keras 3 picks it from the shapes, binary when ``y_pred`` has one column, sparse when
    ``y_true`` has a lower rank (or one column), categorical otherwise."""

    def __init__(self, name="accuracy", dtype=None):
        M.Mean.__init__(self, name=name)
        self.dtype = dtype

    def _per_sample(self, y_true, y_pred):
        y_true = _tensor(y_true)
        p_last = y_pred.shape[-1] if y_pred.ndim else 1
        t_last = y_true.shape[-1] if y_true.ndim else 1
        if p_last == 1:
            if y_true.ndim == y_pred.ndim - 1:
                y_true = y_true.unsqueeze(-1)
            return binary_accuracy(y_true.to(y_pred.dtype), y_pred)
        if y_true.ndim < y_pred.ndim or t_last == 1:
            return sparse_categorical_accuracy(y_true, y_pred)
        return categorical_accuracy(y_true, y_pred)


def get(identifier, loss_name: str | None = None):
    """A fresh metric for ``identifier``; ``loss_name`` picks the kind of ``'accuracy'``.

    Example:
        >>> from ember.keras import metrics
        >>> type(metrics.get("accuracy", "sparse_categorical_crossentropy")).__name__
        'SparseCategoricalAccuracy'
    """
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = globals().get(identifier["class_name"])
        if not (isinstance(cls, type) and issubclass(cls, (_Keras, KerasMetric))):
            raise ValueError(f"unknown metric class {identifier['class_name']!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            ln = (loss_name or "").lower()
            if "sparse_categorical" in ln:
                return SparseCategoricalAccuracy(name=identifier)
            if "categorical" in ln:
                return CategoricalAccuracy(name=identifier)
            if "binary" in ln:
                return BinaryAccuracy(name=identifier)
            if loss_name is not None:  # compiled with another loss: by shape, as Keras 3
                return _ShapeAccuracy(name=identifier)
            return M.Accuracy(name=identifier)
        if key in _BY_NAME:
            return _BY_NAME[key](name=identifier)
    if (
        callable(identifier)
        and not isinstance(identifier, (type, M.Metric))
        and not hasattr(identifier, "update_state")
    ):  # a plain function of (y_true, y_pred): its running mean, as Keras 3
        return MeanMetricWrapper(identifier)
    return M.get(identifier)


def __getattr__(name):
    return getattr(M, name)
