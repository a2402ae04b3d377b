"""Constructor argument checks shared by the layers: a wrong type is a ``TypeError``, a value
out of range a ``ValueError``, both naming the layer, the argument and the value (as PyTorch
raises them, and also where PyTorch only fails later, at the first forward).

Example:
    >>> from ember.nn.modules import _check
    >>> _check.size("Linear", "in_features", 4)
    4
    >>> _check.size("Linear", "in_features", "4")
    Traceback (most recent call last):
    ...
    TypeError: Linear: in_features must be an int, got str '4'
"""

from __future__ import annotations

import numbers
import operator

__all__ = [
    "REDUCTIONS",
    "choice",
    "dim",
    "integer",
    "optional_real",
    "optional_sizes",
    "prob",
    "real",
    "shape",
    "size",
    "sizes",
]


def _got(v) -> str:
    return f"{type(v).__name__} {v!r}"


def integer(who: str, name: str, v) -> int:
    """``v`` as an int (Python or NumPy integer); TypeError for anything else (floats too)."""
    if isinstance(v, (bool, float)):
        raise TypeError(f"{who}: {name} must be an int, got {_got(v)}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{who}: {name} must be an int, got {_got(v)}") from None


def size(who: str, name: str, v, minimum: int = 0) -> int:
    """A size: an int >= ``minimum`` (0 by default)."""
    n = integer(who, name, v)
    if n < minimum:
        raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {n}")
    return n


def sizes(who: str, name: str, v, n: int, minimum: int = 0) -> tuple[int, ...]:
    """An int or a tuple/list of ``n`` ints, each >= ``minimum``; returns an ``n``-tuple."""
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"{who}: {name} must be an int or {n} ints, got {len(v)}: {v!r}")
        return tuple(size(who, name, x, minimum) for x in v)
    return (size(who, name, v, minimum),) * n


def optional_sizes(who: str, name: str, v, n: int, minimum: int = 0):
    """Like :func:`sizes` but ``None`` entries (and ``None`` itself) are kept."""
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"{who}: {name} must be an int or {n} ints, got {len(v)}: {v!r}")
        return tuple(None if x is None else size(who, name, x, minimum) for x in v)
    return size(who, name, v, minimum)


def shape(who: str, name: str, v) -> tuple[int, ...]:
    """An int or a sequence of ints >= 0 (``normalized_shape``, ``unflattened_size``)."""
    if isinstance(v, (tuple, list)):
        return tuple(size(who, name, x) for x in v)
    return (size(who, name, v),)


def real(who: str, name: str, v, minimum: float | None = None) -> float:
    """A real number (not a string or bool), optionally >= ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{who}: {name} must be a number, got {_got(v)}")
    v = float(v)
    if minimum is not None and not v >= minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {v}")
    return v


def optional_real(who: str, name: str, v, minimum: float | None = None) -> float | None:
    return None if v is None else real(who, name, v, minimum)


def prob(who: str, name: str, p) -> float:
    """A probability in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{who}: {name} must be a number, got {_got(p)}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(
            f"{who}: {name} probability has to be between 0 and 1, but got {p}"
            if name == "dropout"
            else f"{who}: {name} has to be between 0 and 1, but got {p}"
        )
    return float(p)


def dim(who: str, name: str, v, allow_none: bool = False):
    """A dimension index (any int) or, when allowed, None."""
    if v is None and allow_none:
        return None
    return integer(who, name, v)


def choice(who: str, name: str, v, options) -> str:
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"{who}: {name} must be one of {sorted(options)}, got {v!r}")
    return v


REDUCTIONS = ("none", "mean", "sum")
