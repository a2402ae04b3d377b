"""More Keras 3 losses: Poisson, squared and categorical hinge, the focal cross-entropies,
Dice and Tversky (formulas, defaults and names as in Keras 3).

Registered in ``ember.keras.losses`` (classes and ``compile(loss=...)`` names).

Example:
    >>> from ember.keras import losses
    >>> round(losses.Dice()([[1.0, 0.0]], [[1.0, 1.0]]).item(), 4)
    0.3333
"""

from __future__ import annotations

import ember

from .losses import EPSILON, Loss, _float, _mean_last, _plain_loss, _tensor_args

__all__ = [
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalHinge",
    "Dice",
    "Poisson",
    "SquaredHinge",
    "Tversky",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "dice",
    "poisson",
    "squared_hinge",
    "tversky",
]


@_tensor_args
def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + eps))`` over the last axis."""
    y_true = _float(y_true, y_pred)
    return _mean_last(y_pred - y_true * (y_pred + EPSILON).log())


def _hinge_labels(y_true):
    # Keras: 0/1 labels become -1/1 (only when every label is 0 or 1)
    is01 = bool(((y_true == 0) | (y_true == 1)).all().item())
    return 2.0 * y_true - 1.0 if is01 else y_true


@_tensor_args
def squared_hinge(y_true, y_pred):
    """``mean(max(1 - y_true * y_pred, 0)^2)`` over the last axis (0/1 labels -> -1/1)."""
    y_true = _hinge_labels(_float(y_true, y_pred))
    return _mean_last(ember.relu(1.0 - y_true * y_pred).square())


@_tensor_args
def categorical_hinge(y_true, y_pred):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` per sample."""
    y_true = _float(y_true, y_pred)
    pos = (y_true * y_pred).sum(dim=-1)
    neg = ((1.0 - y_true) * y_pred).max(dim=-1)[0]
    return ember.relu(neg - pos + 1.0)


@_tensor_args
def binary_focal_crossentropy(
    y_true,
    y_pred,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
):
    """Keras' binary focal cross-entropy: ``(1 - p_t)^gamma * bce`` (times ``alpha`` /
    ``1 - alpha`` with ``apply_class_balancing``), averaged over ``axis``."""
    y_true = _float(y_true, y_pred)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true.unsqueeze(-1)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ember.sigmoid(y_pred)
    p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
    bce = -(y_true * p.log() + (1.0 - y_true) * (1.0 - p).log())
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = (1.0 - p_t) ** gamma * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return focal.mean(dim=axis) if focal.ndim else focal


@_tensor_args
def categorical_focal_crossentropy(
    y_true,
    y_pred,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
):
    """Keras' categorical focal cross-entropy:
    ``sum(alpha * (1 - p)^gamma * -y_true * log(p))`` over ``axis``."""
    y_true = _float(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        y_pred = ember.softmax(y_pred, dim=axis)
    out = (y_pred / y_pred.sum(dim=axis, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    cce = -y_true * out.log()
    return (alpha * (1.0 - out) ** gamma * cce).sum(dim=axis)


def _dims(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


@_tensor_args
def dice(y_true, y_pred, axis=None):
    """``1 - 2 sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps)`` over ``axis``
    (``None``: every axis, a scalar)."""
    y_true = _float(y_true, y_pred)
    d = _dims(y_pred, axis)
    inter = (y_true * y_pred).sum(dim=d)
    return 1.0 - 2.0 * inter / (y_true.sum(dim=d) + y_pred.sum(dim=d) + EPSILON)


@_tensor_args
def tversky(y_true, y_pred, alpha: float = 0.5, beta: float = 0.5, axis=None):
    """``1 - TP / (TP + alpha * sum(y_true * (1 - y_pred)) + beta * sum((1 - y_true) * y_pred)
    + eps)``, exactly as Keras 3 computes it, over ``axis`` (``None``: every axis)."""
    y_true = _float(y_true, y_pred)
    d = _dims(y_pred, axis)
    inter = (y_true * y_pred).sum(dim=d)
    a = ((1.0 - y_pred) * y_true).sum(dim=d)
    b = (y_pred * (1.0 - y_true)).sum(dim=d)
    return 1.0 - inter / (inter + a * alpha + b * beta + EPSILON)


Poisson = _plain_loss("Poisson", poisson, "poisson", __name__)


SquaredHinge = _plain_loss("SquaredHinge", squared_hinge, "squared_hinge", __name__)


CategoricalHinge = _plain_loss("CategoricalHinge", categorical_hinge, "categorical_hinge", __name__)


class BinaryFocalCrossentropy(Loss):
    """Keras ``binary_focal_crossentropy`` as a loss object."""

    fn = staticmethod(binary_focal_crossentropy)
    default_name = "binary_focal_crossentropy"

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction="sum_over_batch_size",
        name="binary_focal_crossentropy",
        dtype=None,
    ):
        self._init_from(locals())


class CategoricalFocalCrossentropy(Loss):
    """Keras ``categorical_focal_crossentropy`` as a loss object."""

    fn = staticmethod(categorical_focal_crossentropy)
    default_name = "categorical_focal_crossentropy"

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction="sum_over_batch_size",
        name="categorical_focal_crossentropy",
        dtype=None,
    ):
        self._init_from(locals())


class Dice(Loss):
    """Keras ``dice`` as a loss object (``axis=None``: one value over the whole batch)."""

    fn = staticmethod(dice)
    default_name = "dice"

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        self._init_from(locals())


class Tversky(Loss):
    """Keras ``tversky`` as a loss object (``alpha = beta = 0.5`` is the Dice loss)."""

    fn = staticmethod(tversky)
    default_name = "tversky"

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction="sum_over_batch_size",
        name="tversky",
        axis=None,
        dtype=None,
    ):
        self._init_from(locals())
