"""One-shot functional forms of the metrics: ``f(preds, target, **options)``.

Each function builds the matching metric, feeds it one batch and returns
``compute()`` (an ember Tensor), so both forms always agree.
"""

from __future__ import annotations

from . import classification as _c
from . import regression as _r
from .classification import UNSET, binary_average_precision, binary_roc_auc  # noqa: F401

__all__ = [
    "accuracy",
    "auroc",
    "average_precision",
    "binary_accuracy",
    "categorical_accuracy",
    "confusion_matrix",
    "f1_score",
    "fbeta_score",
    "mae",
    "mean_absolute_error",
    "mean_squared_error",
    "mse",
    "precision",
    "recall",
    "sparse_categorical_accuracy",
    "top_k_accuracy",
]


def _once(cls, preds, target, **kw):
    m = cls(**kw)
    m.update(preds, target)
    return m.compute()


def accuracy(preds, target, task=None, threshold=0.5, num_classes=None, top_k=1):
    return _once(
        _c.Accuracy,
        preds,
        target,
        task=task,
        threshold=threshold,
        num_classes=num_classes,
        top_k=top_k,
    )


def binary_accuracy(preds, target, threshold=0.5):
    return _once(_c.BinaryAccuracy, preds, target, threshold=threshold)


def categorical_accuracy(preds, target):
    return _once(_c.CategoricalAccuracy, preds, target)


def sparse_categorical_accuracy(preds, target):
    return _once(_c.SparseCategoricalAccuracy, preds, target)


def top_k_accuracy(preds, target, k=5):
    return _once(_c.TopKAccuracy, preds, target, k=k)


def precision(preds, target, task=None, num_classes=None, average=UNSET, threshold=0.5):
    return _once(
        _c.Precision,
        preds,
        target,
        task=task,
        num_classes=num_classes,
        average=average,
        threshold=threshold,
    )


def recall(preds, target, task=None, num_classes=None, average=UNSET, threshold=0.5):
    return _once(
        _c.Recall,
        preds,
        target,
        task=task,
        num_classes=num_classes,
        average=average,
        threshold=threshold,
    )


def f1_score(preds, target, task=None, num_classes=None, average=UNSET, threshold=0.5):
    return _once(
        _c.F1Score,
        preds,
        target,
        task=task,
        num_classes=num_classes,
        average=average,
        threshold=threshold,
    )


def fbeta_score(preds, target, beta=1.0, task=None, num_classes=None, average=UNSET, threshold=0.5):
    return _once(
        _c.FBetaScore,
        preds,
        target,
        beta=beta,
        task=task,
        num_classes=num_classes,
        average=average,
        threshold=threshold,
    )


def auroc(preds, target, task=None, num_classes=None, average="macro"):
    return _once(_c.AUROC, preds, target, task=task, num_classes=num_classes, average=average)


def average_precision(preds, target, task=None, num_classes=None, average="macro"):
    return _once(
        _c.AveragePrecision, preds, target, task=task, num_classes=num_classes, average=average
    )


def confusion_matrix(preds, target, num_classes=None, normalize=None, task=None, threshold=0.5):
    return _once(
        _c.ConfusionMatrix,
        preds,
        target,
        num_classes=num_classes,
        normalize=normalize,
        task=task,
        threshold=threshold,
    )


def mean_squared_error(preds, target, squared=True):
    return _once(_r.MeanSquaredError, preds, target, squared=squared)


def mean_absolute_error(preds, target):
    return _once(_r.MeanAbsoluteError, preds, target)


mse = mean_squared_error
mae = mean_absolute_error
