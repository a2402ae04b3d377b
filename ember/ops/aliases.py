"""PyTorch's alternative names for ops Ember records under one name (``absolute`` for
``abs``, ``greater`` for ``gt``, NumPy-style ``arccos`` ...): each is the same function
object, so it behaves, differentiates and traces exactly as the op it names.

Example:
    >>> import ember
    >>> ember.greater is ember.gt and ember.multiply is ember.mul
    True
"""

from __future__ import annotations

from .elementwise import abs, acos, asin, atan, clamp, div, ge, gt, le, lt, mul, ne, neg, sub, trunc
from .linalg import outer
from .math_extra import acosh, asinh, atan2, atanh
from .shape import movedim

absolute = abs
arccos = acos
arcsin = asin
arctan = atan
arccosh = acosh
arcsinh = asinh
arctanh = atanh
arctan2 = atan2
clip = clamp
divide = div
true_divide = div
fix = trunc
greater = gt
greater_equal = ge
less = lt
less_equal = le
multiply = mul
negative = neg
not_equal = ne
subtract = sub
moveaxis = movedim
ger = outer

#: alias name -> the recorded op it names (the tests check each against PyTorch's alias)
ALIASES = {
    "absolute": "abs",
    "arccos": "acos",
    "arcsin": "asin",
    "arctan": "atan",
    "arccosh": "acosh",
    "arcsinh": "asinh",
    "arctanh": "atanh",
    "arctan2": "atan2",
    "clip": "clamp",
    "divide": "div",
    "true_divide": "div",
    "fix": "trunc",
    "greater": "gt",
    "greater_equal": "ge",
    "less": "lt",
    "less_equal": "le",
    "multiply": "mul",
    "negative": "neg",
    "not_equal": "ne",
    "subtract": "sub",
    "moveaxis": "movedim",
    "ger": "outer",
}

__all__ = sorted(ALIASES)
