"""Keras losses: ``loss(y_true, y_pred, sample_weight=None)`` with Keras semantics.

The class axis is last. Probability losses (``from_logits=False``, the Keras default) clip
the probabilities to ``[eps, 1 - eps]`` (eps = 1e-7) and take the log, as Keras does after a
softmax/sigmoid output layer; ``from_logits=True`` uses the stable log-softmax form.
Reduction is ``'sum_over_batch_size'`` (mean over samples of the per-sample loss, with
sample weights multiplying the per-sample losses), ``'sum'`` or ``'none'``.

Example:
    >>> import ember
    >>> from ember.keras import losses
    >>> p = ember.tensor([[0.9, 0.1], [0.2, 0.8]])
    >>> round(losses.get("sparse_categorical_crossentropy")(ember.tensor([0, 1]), p).item(), 4)
    0.1643
"""

from __future__ import annotations

import functools

import ember

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Dice",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "check_sparse_labels",
    "cosine_similarity",
    "dice",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "tversky",
]

EPSILON = 1e-7


def _t(x):
    return x if isinstance(x, ember.Tensor) else ember.as_tensor(x)


def _tensor_args(fn):
    """Let a per-sample loss take NumPy arrays and Python lists, as Keras' functions do."""

    @functools.wraps(fn)
    def wrapper(y_true, y_pred, *args, **kwargs):
        return fn(_t(y_true), _t(y_pred), *args, **kwargs)

    return wrapper


def _float(y_true, y_pred):
    y_true = _t(y_true)
    if y_true.dtype != y_pred.dtype:
        y_true = y_true.to(y_pred.dtype)
    return y_true


def _mean_last(x):
    return x.mean(dim=-1) if x.ndim > 0 else x


# -- per-sample loss functions (shape: batch dims without the last axis) -------------------
@_tensor_args
def sparse_categorical_crossentropy(
    y_true, y_pred, from_logits: bool = False, axis: int = -1, ignore_class: int | None = None
):
    y_true = _t(y_true)
    if axis != -1:
        y_pred = ember.movedim(y_pred, axis, -1)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    if tuple(y_true.shape) != tuple(y_pred.shape[:-1]):
        raise ValueError(
            f"sparse_categorical_crossentropy: labels of shape "
            f"{tuple(y_true.shape)} do not match predictions of shape "
            f"{tuple(y_pred.shape)} (expected labels of shape "
            f"{tuple(y_pred.shape[:-1])})"
        )
    logp = _log_probs(y_pred, from_logits)
    check_sparse_labels(y_true, y_pred.shape[-1], "sparse_categorical_crossentropy", ignore_class)
    labels = y_true.long()
    if ignore_class is not None:
        keep = labels != ignore_class
        labels = ember.where(keep, labels, ember.zeros_like(labels))
    classes = ember.arange(y_pred.shape[-1])
    onehot = (labels.unsqueeze(-1) == classes).to(logp.dtype)
    loss = -(onehot * logp).sum(dim=-1)
    if ignore_class is not None:
        loss = loss * keep.to(loss.dtype)
    return loss


def check_sparse_labels(labels, num_classes: int, what: str, ignore_class=None) -> None:
    """Raise ``ValueError`` naming the first label outside ``[0, num_classes)`` (labels equal
    to ``ignore_class`` excepted): one-hot encoding would turn it into a zero row that
    contributes nothing, silently.

    Example:
        >>> import ember
        >>> check_sparse_labels(ember.tensor([0, 2]), 3, "loss")
        >>> check_sparse_labels(ember.tensor([0, 3]), 3, "loss")
        Traceback (most recent call last):
        ...
        ValueError: loss: label 3 is out of range for 3 classes (labels must be in [0, 3))
    """
    labels = _t(labels)
    if labels.is_floating_point():
        bad_int = labels != labels.round()
        if bool(bad_int.any().item()):
            raise ValueError(f"{what}: labels must be integers, got {labels[bad_int][0].item()!r}")
    labels = labels.long()
    bad = (labels < 0) | (labels >= int(num_classes))
    if ignore_class is not None:
        bad = bad & (labels != int(ignore_class))
    if bool(bad.any().item()):
        first = int(labels[bad][0].item())
        raise ValueError(
            f"{what}: label {first} is out of range for {int(num_classes)} classes "
            f"(labels must be in [0, {int(num_classes)})"
            + (f" or equal ignore_class={ignore_class})" if ignore_class is not None else ")")
        )


def _log_probs(y_pred, from_logits):
    if from_logits:
        return ember.log_softmax(y_pred, dim=-1)
    # NOTE: Keras renormalises probabilities, then clips them away from 0 and 1 before the
    # log, so that a saturated softmax gives a large finite loss rather than inf.
    p = y_pred / y_pred.sum(dim=-1, keepdim=True)
    return p.clamp(EPSILON, 1.0 - EPSILON).log()


@_tensor_args
def categorical_crossentropy(
    y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
):
    y_true = _float(y_true, y_pred)
    if axis != -1:
        y_pred, y_true = ember.movedim(y_pred, axis, -1), ember.movedim(y_true, axis, -1)
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(
            f"categorical_crossentropy: targets of shape {tuple(y_true.shape)} "
            f"do not match predictions of shape {tuple(y_pred.shape)} (one-hot "
            "targets expected; use sparse_categorical_crossentropy for labels)"
        )
    if label_smoothing:
        c = y_pred.shape[-1]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / c
    return -(y_true * _log_probs(y_pred, from_logits)).sum(dim=-1)


@_tensor_args
def binary_crossentropy(
    y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
):
    y_true = _float(y_true, y_pred)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true.unsqueeze(-1)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        x = y_pred
        bce = ember.relu(x) - x * y_true + ember.log1p(ember.exp(-x.abs()))
    else:
        p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
        bce = -(y_true * p.log() + (1.0 - y_true) * (1.0 - p).log())
    return _mean_last(bce)


@_tensor_args
def mse(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    return _mean_last((y_pred - y_true).square())


@_tensor_args
def mae(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    return _mean_last((y_pred - y_true).abs())


@_tensor_args
def mape(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    return 100.0 * _mean_last(((y_true - y_pred) / y_true.abs().clamp(min=EPSILON)).abs())


@_tensor_args
def msle(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    a = ember.log1p(y_pred.clamp(min=EPSILON))
    b = ember.log1p(y_true.clamp(min=EPSILON))
    return _mean_last((a - b).square())


@_tensor_args
def huber(y_true, y_pred, delta: float = 1.0):
    y_true = _float(y_true, y_pred)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    err = (y_pred - y_true).abs()
    quad = 0.5 * err.square()
    lin = delta * err - 0.5 * delta * delta
    return _mean_last(ember.where(err <= delta, quad, lin))


@_tensor_args
def log_cosh(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    x = y_pred - y_true
    # log(cosh(x)) = x + softplus(-2x) - log 2, stable for large |x|
    return _mean_last(x + ember.softplus(-2.0 * x) - 0.6931471805599453)


@_tensor_args
def hinge(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    y_true = ember.where(y_true == 0, -ember.ones_like(y_true), y_true)
    return _mean_last(ember.relu(1.0 - y_true * y_pred))


@_tensor_args
def kl_divergence(y_true, y_pred):
    y_true = _float(y_true, y_pred).clamp(EPSILON, 1.0)
    y_pred = y_pred.clamp(EPSILON, 1.0)
    return (y_true * (y_true / y_pred).log()).sum(dim=-1)


@_tensor_args
def cosine_similarity(y_true, y_pred, axis: int = -1):
    y_true = _float(y_true, y_pred)
    a = y_true / (y_true.square().sum(dim=axis, keepdim=True).sqrt().clamp(min=1e-12))
    b = y_pred / (y_pred.square().sum(dim=axis, keepdim=True).sqrt().clamp(min=1e-12))
    return -(a * b).sum(dim=axis)


# -- Loss objects ---------------------------------------------------------------------------
_REDUCTIONS = ("sum_over_batch_size", "auto", "sum", "none", "mean", None)


# Keras' long names of the same functions
mean_squared_error = mse
mean_absolute_error = mae
mean_absolute_percentage_error = mape
mean_squared_logarithmic_error = msle


class Loss:
    """A loss object: per-sample function + reduction + config (Keras 3 signature).

    Example:
        >>> import ember
        >>> from ember.keras import losses
        >>> losses.MeanSquaredError(reduction="sum")(ember.ones(2, 3), ember.zeros(2, 3)).item()
        2.0
    """

    fn = None
    default_name = "loss"

    def __init__(
        self, name: str | None = None, reduction: str | None = "sum_over_batch_size", dtype=None
    ):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")
        self.reduction, self.name, self.dtype = reduction, name or self.default_name, dtype
        self.kwargs: dict = {}

    def _init_from(self, args: dict) -> None:
        """Set up from a subclass constructor's ``locals()``: ``name``, ``reduction`` and
        ``dtype`` as here, the other arguments (in order) for ``fn``."""
        kwargs = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        Loss.__init__(self, kwargs.pop("name"), kwargs.pop("reduction"), kwargs.pop("dtype"))
        self.kwargs = kwargs

    def call(self, y_true, y_pred):
        return type(self).fn(y_true, y_pred, **self.kwargs)

    def _valid(self, y_true):
        """A mask of the entries that count in the mean (None: all)."""
        return None

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras: the mask attached to the predictions (a masked sequence output) counts as
        # sample weights: masked entries weigh 0, and the mean is over the unmasked ones
        in_mask = y_pred.__dict__.get("_keras_mask") if isinstance(y_pred, ember.Tensor) else None
        per = self.call(y_true, y_pred)
        if sample_weight is not None:
            sw = _t(sample_weight).to(per.dtype)
            while sw.ndim < per.ndim:
                sw = sw.unsqueeze(-1)
            per = per * sw
        if in_mask is not None and per.ndim:
            m = in_mask.to(ember.bool)
            while m.ndim > per.ndim and m.shape[-1] == 1:
                m = m.squeeze(-1)
            while m.ndim < per.ndim:
                m = m.unsqueeze(-1)
            ignored = self._valid(y_true)
            if ignored is not None and tuple(ignored.shape) == tuple(m.shape):
                m = m & ignored.to(ember.bool)  # Keras ANDs it with ignore_class's mask
            per = per * m.to(per.dtype)
            if self.reduction in ("sum_over_batch_size", "auto", "mean"):
                # Keras' apply_mask: the weights total/valid on the kept entries
                valid = m.expand(*per.shape).to(per.dtype).sum()
                return per.sum() / valid.clamp(min=1.0)
        if self.reduction in ("none", None):
            return per
        if self.reduction == "sum":
            return per.sum()
        valid = self._valid(y_true)
        if valid is not None and per.ndim:
            # Keras averages over the entries that are not ignored
            return per.sum() / valid.to(per.dtype).sum().clamp(min=1.0)
        return per.mean() if per.ndim else per

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype, **self.kwargs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy of integer labels (out-of-range labels raise ``ValueError``)."""

    fn = staticmethod(sparse_categorical_crossentropy)
    default_name = "sparse_categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction="sum_over_batch_size",
        axis: int = -1,
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        self._init_from(locals())

    def _valid(self, y_true):
        ic = self.kwargs["ignore_class"]
        if ic is None:
            return None
        y = _t(y_true)
        if y.ndim > 1 and y.shape[-1] == 1:
            y = y.squeeze(-1)
        return y != ic


class CategoricalCrossentropy(Loss):
    fn = staticmethod(categorical_crossentropy)
    default_name = "categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        self._init_from(locals())


class BinaryCrossentropy(Loss):
    fn = staticmethod(binary_crossentropy)
    default_name = "binary_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        self._init_from(locals())


class Huber(Loss):
    fn = staticmethod(huber)
    default_name = "huber_loss"

    def __init__(
        self, delta: float = 1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None
    ):
        self._init_from(locals())


class CosineSimilarity(Loss):
    fn = staticmethod(cosine_similarity)
    default_name = "cosine_similarity"

    def __init__(
        self, axis: int = -1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None
    ):
        self._init_from(locals())


def _plain_loss(cls_name, fn, default_name, module=__name__):
    """A loss class without arguments of its own: ``(reduction, name, dtype)``."""

    def __init__(self, reduction="sum_over_batch_size", name=default_name, dtype=None):
        Loss.__init__(self, name, reduction, dtype)

    return type(
        cls_name,
        (Loss,),
        {
            "fn": staticmethod(fn),
            "default_name": default_name,
            "__init__": __init__,
            "__doc__": f"Keras ``{default_name}`` as a loss object.",
            "__module__": module,
        },
    )


MeanSquaredError = _plain_loss("MeanSquaredError", mse, "mean_squared_error")
MeanAbsoluteError = _plain_loss("MeanAbsoluteError", mae, "mean_absolute_error")
MeanAbsolutePercentageError = _plain_loss(
    "MeanAbsolutePercentageError", mape, "mean_absolute_percentage_error"
)
MeanSquaredLogarithmicError = _plain_loss(
    "MeanSquaredLogarithmicError", msle, "mean_squared_logarithmic_error"
)
LogCosh = _plain_loss("LogCosh", log_cosh, "log_cosh")
Hinge = _plain_loss("Hinge", hinge, "hinge")
KLDivergence = _plain_loss("KLDivergence", kl_divergence, "kl_divergence")

# the losses of losses_more.py (defined there to keep this file short)
from .losses_more import (  # noqa: E402
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    Dice,
    Poisson,
    SquaredHinge,
    Tversky,
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    dice,
    poisson,
    squared_hinge,
    tversky,
)

_BY_NAME = {
    "poisson": Poisson,
    "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
    "dice": Dice,
    "tversky": Tversky,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "huber": Huber,
    "huber_loss": Huber,
    "log_cosh": LogCosh,
    "logcosh": LogCosh,
    "hinge": Hinge,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "cosine_similarity": CosineSimilarity,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())}


def get(identifier):
    """A loss object for a name (``'mse'``), a class, an object, or a plain function
    ``fn(y_true, y_pred)`` (wrapped with the default reduction)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls(name=identifier)
    if isinstance(identifier, dict):
        return _CLASSES[identifier["class_name"]].from_config(identifier["config"])
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return _FnLoss(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as a loss")


class _FnLoss(Loss):
    def __init__(self, fn, reduction="sum_over_batch_size"):
        super().__init__(name=getattr(fn, "__name__", "loss"), reduction=reduction)
        self._fn = fn

    def call(self, y_true, y_pred):
        return self._fn(y_true, y_pred)


def serialize(loss) -> dict | str:
    if isinstance(loss, _FnLoss):
        raise TypeError(f"cannot serialize the custom loss function {loss.name!r}")
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
