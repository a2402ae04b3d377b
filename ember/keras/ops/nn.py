"""Activations and ``one_hot`` (Keras' ``keras.ops.nn`` names)."""

from __future__ import annotations

import ember

from ._core import _dtype, _float, _t

__all__ = [
    "elu",
    "gelu",
    "hard_sigmoid",
    "leaky_relu",
    "log_softmax",
    "one_hot",
    "relu",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
]


def relu(x) -> ember.Tensor:
    """``max(x, 0)``.

    Example:
        >>> from ember.keras import ops
        >>> ops.relu([-1.0, 2.0]).tolist()
        [0.0, 2.0]
    """
    return ember.relu(_t(x))


def sigmoid(x) -> ember.Tensor:
    """``1 / (1 + exp(-x))``.

    Example:
        >>> from ember.keras import ops
        >>> ops.sigmoid([0.0]).tolist()
        [0.5]
    """
    return ember.sigmoid(_float(x))


def tanh(x) -> ember.Tensor:
    """Hyperbolic tangent.

    Example:
        >>> from ember.keras import ops
        >>> ops.tanh([0.0]).tolist()
        [0.0]
    """
    return ember.tanh(_float(x))


def silu(x) -> ember.Tensor:
    """``x * sigmoid(x)``.

    Example:
        >>> from ember.keras import ops
        >>> ops.silu([0.0]).tolist()
        [0.0]
    """
    return ember.silu(_float(x))


def gelu(x, approximate=True) -> ember.Tensor:
    """GELU; Keras' default is the tanh approximation.

    Example:
        >>> from ember.keras import ops
        >>> f"{ops.gelu([1.0]).item():.4f}"
        '0.8412'
    """
    return ember.gelu(_float(x), approximate="tanh" if approximate else "none")


def softmax(x, axis=-1) -> ember.Tensor:
    """Softmax over ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> ops.softmax([[0.0, 0.0]]).tolist()
        [[0.5, 0.5]]
    """
    return ember.softmax(_float(x), dim=int(axis))


def log_softmax(x, axis=-1) -> ember.Tensor:
    """Log-softmax over ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> f"{ops.log_softmax([[0.0, 0.0]])[0, 0].item():.4f}"
        '-0.6931'
    """
    return ember.log_softmax(_float(x), dim=int(axis))


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False) -> ember.Tensor:
    """One-hot rows (float32 by default) of integer labels; a label outside
    ``[0, num_classes)`` is a ``ValueError`` (Keras' torch backend raises too).

    Example:
        >>> from ember.keras import ops
        >>> ops.one_hot([0, 2], 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if sparse:
        raise NotImplementedError("keras.ops.one_hot: sparse=True is not supported")
    from ..losses import check_sparse_labels

    x = _t(x)
    check_sparse_labels(x, int(num_classes), "keras.ops.one_hot")
    x = x.long()
    classes = ember.arange(int(num_classes))
    out = (x.unsqueeze(-1) == classes).to(_dtype(dtype) or ember.float32)
    if axis != -1:
        out = ember.movedim(out, -1, int(axis))
    return out


def softplus(x) -> ember.Tensor:
    """``log(1 + exp(x))``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> f"{ops.softplus([0.0]).item():.4f}"
        '0.6931'
    """
    return ember.softplus(_float(x))


def softsign(x) -> ember.Tensor:
    """``x / (1 + |x|)``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.softsign([1.0, -3.0]).tolist()
        [0.5, -0.75]
    """
    x = _float(x)
    return x / (1.0 + x.abs())


def leaky_relu(x, negative_slope=0.2) -> ember.Tensor:
    """``x`` for positive entries, ``negative_slope * x`` otherwise.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.leaky_relu([-1.0, 2.0]).tolist()
        [-0.20000000298023224, 2.0]
    """
    return ember.leaky_relu(_float(x), float(negative_slope))


def elu(x, alpha=1.0) -> ember.Tensor:
    """``x`` for positive entries, ``alpha * (exp(x) - 1)`` otherwise.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.elu([0.0, 2.0]).tolist()
        [0.0, 2.0]
    """
    return ember.elu(_float(x), float(alpha))


def selu(x) -> ember.Tensor:
    """Scaled ELU (self-normalizing).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.selu([0.0]).tolist()
        [0.0]
    """
    from ember.nn import functional as F

    return F.selu(_float(x))


def hard_sigmoid(x) -> ember.Tensor:
    """``relu6(x + 3) / 6``, Keras 3's hard sigmoid.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.hard_sigmoid([-4.0, 0.0, 4.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return ember.clamp(_float(x) / 6.0 + 0.5, min=0.0, max=1.0)
