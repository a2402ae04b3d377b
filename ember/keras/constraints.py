"""Weight constraints (``kernel_constraint=keras.constraints.NonNeg()``): functions applied to
a weight, in Keras' layout, after every optimizer step.

Example:
    >>> import ember
    >>> from ember.keras import constraints
    >>> constraints.get("non_neg")(ember.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import ember

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]

EPSILON = 1e-7


class Constraint:
    """Base class: ``constraint(w)`` returns the projected weight."""

    def __call__(self, w):
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _norms(w, axis):
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return (w * w).sum(dim=axes, keepdim=True).sqrt()


class NonNeg(Constraint):
    """Negative entries become 0."""

    def __call__(self, w):
        return w.clamp(min=0.0)


class MaxNorm(Constraint):
    """Rescale the slices along ``axis`` whose norm exceeds ``max_value``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = norms.clamp(0.0, float(self.max_value))
        return w * (desired / (EPSILON + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Move the norms of the slices along ``axis`` into ``[min_value, max_value]`` (by the
    fraction ``rate``)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        clipped = norms.clamp(float(self.min_value), float(self.max_value))
        desired = self.rate * clipped + (1.0 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self):
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


class UnitNorm(Constraint):
    """Slices along ``axis`` of norm 1."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm
_ALL = {
    "max_norm": MaxNorm,
    "min_max_norm": MinMaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "MaxNorm": MaxNorm,
    "MinMaxNorm": MinMaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
}


def get(identifier):
    """A constraint for a name (``'non_neg'``), a config dict, an object or a callable.

    Example:
        >>> from ember.keras import constraints
        >>> type(constraints.get("max_norm")).__name__
        'MaxNorm'
    """
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _ALL:
            raise ValueError(f"unknown constraint {identifier!r}; known: {sorted(_ALL)}")
        return _ALL[identifier]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        if identifier["class_name"] not in _ALL:
            raise ValueError(
                f"unknown constraint {identifier['class_name']!r}; known: {sorted(_ALL)}"
            )
        return _ALL[identifier["class_name"]].from_config(identifier.get("config") or {})
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as a constraint")


def serialize(constraint) -> dict | None:
    """Keras' serialized form of a constraint: ``{'module': 'keras.constraints',
    'class_name': ..., 'config': ..., 'registered_name': None}``."""
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise TypeError(f"cannot serialize the constraint {constraint!r}")
    return {
        "module": "keras.constraints",
        "class_name": type(constraint).__name__,
        "config": constraint.get_config(),
        "registered_name": None,
    }


def apply_constraints(params) -> None:
    """Project every parameter that carries a constraint (set by the layer that owns it)."""
    with ember.no_grad():
        for p in params:
            spec = getattr(p, "_keras_constraint", None)
            if spec is not None:
                constraint, to_keras, from_keras = spec
                p.copy_(from_keras(constraint(to_keras(p))).to(p.dtype))
