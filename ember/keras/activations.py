"""Keras activations by name (``'relu'``, ``'softmax'``, ...), written with ember ops.

Example:
    >>> import ember
    >>> from ember.keras import activations
    >>> activations.get("relu")(ember.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import ember

__all__ = [
    "elu",
    "exponential",
    "gelu",
    "get",
    "hard_sigmoid",
    "leaky_relu",
    "linear",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "swish",
    "tanh",
]


def linear(x):
    return x


def relu(x, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ember.relu(x)
    y = ember.where(x >= threshold, x, negative_slope * (x - threshold))
    return y.clamp(max=max_value) if max_value is not None else y


def relu6(x):
    return ember.relu(x).clamp(max=6.0)


def sigmoid(x):
    return ember.sigmoid(x)


def tanh(x):
    return ember.tanh(x)


def softmax(x, axis: int = -1):
    return ember.softmax(x, dim=axis)


def log_softmax(x, axis: int = -1):
    return ember.log_softmax(x, dim=axis)


def gelu(x, approximate: bool = False):
    return ember.gelu(x, approximate="tanh" if approximate else "none")


def elu(x, alpha: float = 1.0):
    return ember.elu(x, alpha)


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return scale * ember.elu(x, alpha)


def softplus(x):
    return ember.softplus(x)


def softsign(x):
    return x / (x.abs() + 1.0)


def silu(x):
    return ember.silu(x)


swish = silu


def leaky_relu(x, negative_slope: float = 0.2):
    return ember.leaky_relu(x, negative_slope)


def exponential(x):
    return ember.exp(x)


def hard_sigmoid(x):
    # NOTE: Keras 3 definition: relu6(x + 3) / 6
    return (x + 3.0).clamp(0.0, 6.0) / 6.0


def mish(x):
    return x * ember.tanh(ember.softplus(x))


_ALL = {
    "linear": linear,
    "relu": relu,
    "relu6": relu6,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "gelu": gelu,
    "elu": elu,
    "selu": selu,
    "softplus": softplus,
    "softsign": softsign,
    "silu": silu,
    "swish": swish,
    "leaky_relu": leaky_relu,
    "exponential": exponential,
    "hard_sigmoid": hard_sigmoid,
    "mish": mish,
}


def get(identifier):
    """A callable for a name, ``None`` (linear) or a callable (returned as is)."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        fn = _ALL.get(identifier.lower())
        if fn is None:
            raise ValueError(f"unknown activation {identifier!r}; known: {sorted(_ALL)}")
        return fn
    raise TypeError(f"cannot interpret {identifier!r} as an activation")


def serialize(fn) -> str | None:
    """The name of an activation (for ``get_config``)."""
    for k, v in _ALL.items():
        if v is fn:
            return k
    return getattr(fn, "__name__", None)
