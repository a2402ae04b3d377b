"""Streaming metrics (NumPy-backed, not differentiable).

Every metric has ``update(preds, target)``, ``compute()``, ``reset()``,
``merge_state(other)`` and ``m(preds, target)`` (update, then return the value of
that batch alone). Inputs are ember Tensors, NumPy arrays (or anything
``np.asarray`` takes). ``compute()`` returns an ember Tensor: 0-d float64 for scalar
metrics (``.item()`` gives a float), an array tensor for per-class values and
confusion matrices.

    >>> import numpy as np
    >>> from ember import metrics
    >>> m = metrics.Accuracy()
    >>> m.update(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
    >>> m.compute().item()
    0.5

``ember.metrics.get('accuracy')`` resolves Keras-style names to fresh metric objects.
"""

from . import functional
from ._base import Metric
from .classification import (
    AUROC,
    Accuracy,
    AveragePrecision,
    BinaryAccuracy,
    CategoricalAccuracy,
    ConfusionMatrix,
    F1Score,
    FBetaScore,
    Precision,
    Recall,
    SparseCategoricalAccuracy,
    TopKAccuracy,
)
from .regression import Mean, MeanAbsoluteError, MeanSquaredError, Sum

__all__ = [
    "AUROC",
    "Accuracy",
    "AveragePrecision",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "ConfusionMatrix",
    "F1Score",
    "FBetaScore",
    "Mean",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "Precision",
    "Recall",
    "SparseCategoricalAccuracy",
    "Sum",
    "TopKAccuracy",
    "available",
    "functional",
    "get",
]

_REGISTRY = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKAccuracy,
    "sparse_top_k_categorical_accuracy": TopKAccuracy,
    "top_k_accuracy": TopKAccuracy,
    "precision": Precision,
    "recall": Recall,
    "f1": F1Score,
    "f1_score": F1Score,
    "auc": AUROC,
    "auroc": AUROC,
    "roc_auc": AUROC,
    "average_precision": AveragePrecision,
    "pr_auc": AveragePrecision,
    "confusion_matrix": ConfusionMatrix,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mean": Mean,
    "sum": Sum,
}


def get(identifier):
    """Resolve a metric identifier to a fresh metric object.

    ``identifier`` is a name ('accuracy', 'acc', 'mse', 'auc', ...; see
    ``available()``), a Metric subclass (instantiated) or a Metric instance / other
    callable (returned as is). The returned metric's ``.name`` is the name given.
    """
    if isinstance(identifier, Metric) or (
        callable(identifier) and not isinstance(identifier, type)
    ):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        cls = _REGISTRY.get(key)
        if cls is None:
            raise ValueError(
                f"unknown metric {identifier!r}; known names: {', '.join(sorted(_REGISTRY))}"
            )
        return cls(name=identifier)
    raise TypeError(f"cannot interpret {identifier!r} as a metric")


def available():
    """The metric names ``get`` understands."""
    return sorted(_REGISTRY)
