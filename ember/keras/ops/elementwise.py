"""Elementwise arithmetic, comparisons, logic and unary math (NumPy names)."""

from __future__ import annotations

import ember

from ._core import _float, _t

__all__ = [
    "abs",
    "absolute",
    "add",
    "ceil",
    "clip",
    "cos",
    "divide",
    "equal",
    "erf",
    "exp",
    "expm1",
    "floor",
    "floor_divide",
    "greater",
    "greater_equal",
    "isfinite",
    "isnan",
    "less",
    "less_equal",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "negative",
    "not_equal",
    "power",
    "reciprocal",
    "round",
    "rsqrt",
    "sign",
    "sin",
    "sqrt",
    "square",
    "subtract",
    "true_divide",
    "where",
]


def exp(x) -> ember.Tensor:
    """Elementwise ``e**x`` (integers become float32).

    Example:
        >>> from ember.keras import ops
        >>> ops.exp([0, 0]).tolist()
        [1.0, 1.0]
    """
    return ember.exp(_float(x))


def log(x) -> ember.Tensor:
    """Natural logarithm.

    Example:
        >>> from ember.keras import ops
        >>> ops.log([1.0]).tolist()
        [0.0]
    """
    return ember.log(_float(x))


def sqrt(x) -> ember.Tensor:
    """Square root (integers become float32).

    Example:
        >>> from ember.keras import ops
        >>> ops.sqrt([4, 9]).tolist()
        [2.0, 3.0]
    """
    return ember.sqrt(_float(x))


def erf(x) -> ember.Tensor:
    """The error function.

    Example:
        >>> from ember.keras import ops
        >>> ops.erf([0.0]).tolist()
        [0.0]
    """
    return ember.erf(_float(x))


def square(x) -> ember.Tensor:
    """``x * x`` (keeps integer dtypes).

    Example:
        >>> from ember.keras import ops
        >>> ops.square([-3, 2]).tolist()
        [9, 4]
    """
    x = _t(x)
    return x * x


def abs(x) -> ember.Tensor:
    """Absolute value (``absolute`` is the same op).

    Example:
        >>> from ember.keras import ops
        >>> ops.abs([-3, 2]).tolist()
        [3, 2]
    """
    return _t(x).abs()


absolute = abs


def clip(x, x_min, x_max) -> ember.Tensor:
    """``x`` limited to ``[x_min, x_max]``.

    Example:
        >>> from ember.keras import ops
        >>> ops.clip([-2.0, 0.5, 3.0], -1.0, 1.0).tolist()
        [-1.0, 0.5, 1.0]
    """
    return ember.clamp(_t(x), min=x_min, max=x_max)


def maximum(x1, x2) -> ember.Tensor:
    """Elementwise maximum (broadcasting).

    Example:
        >>> from ember.keras import ops
        >>> ops.maximum([1.0, 5.0], 3.0).tolist()
        [3.0, 5.0]
    """
    return ember.maximum(_t(x1), _t(x2))


def minimum(x1, x2) -> ember.Tensor:
    """Elementwise minimum (broadcasting).

    Example:
        >>> from ember.keras import ops
        >>> ops.minimum([1.0, 5.0], 3.0).tolist()
        [1.0, 3.0]
    """
    return ember.minimum(_t(x1), _t(x2))


def where(condition, x1=None, x2=None) -> ember.Tensor | tuple:
    """``x1`` where ``condition`` else ``x2``; with neither, the indices of the true entries
    (a tuple of index tensors per axis, as NumPy).

    Example:
        >>> from ember.keras import ops
        >>> ops.where([True, False], [1.0, 2.0], [9.0, 9.0]).tolist()
        [1.0, 9.0]
    """
    c = _t(condition)
    if x1 is None and x2 is None:
        return tuple(ember.nonzero(c, as_tuple=True))
    if x1 is None or x2 is None:
        raise ValueError("keras.ops.where: give both x1 and x2, or neither")
    return ember.where(c.bool(), _t(x1), _t(x2))


def add(x1, x2) -> ember.Tensor:
    """``x1 + x2`` (broadcasting).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.add([1, 2], 3).tolist()
        [4, 5]
    """
    return _t(x1) + _t(x2)


def subtract(x1, x2) -> ember.Tensor:
    """``x1 - x2`` (broadcasting).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.subtract([1.0, 2.0], 0.5).tolist()
        [0.5, 1.5]
    """
    return _t(x1) - _t(x2)


def multiply(x1, x2) -> ember.Tensor:
    """``x1 * x2`` (broadcasting).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.multiply([1, 2], 3).tolist()
        [3, 6]
    """
    return _t(x1) * _t(x2)


def divide(x1, x2) -> ember.Tensor:
    """True division (integers give float32).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.divide([1, 3], ops.convert_to_tensor(2)).tolist()
        [0.5, 1.5]
    """
    return _float(x1) / _t(x2)


true_divide = divide


def floor_divide(x1, x2) -> ember.Tensor:
    """``x1 // x2``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.floor_divide([7, -7], ops.convert_to_tensor(2)).tolist()
        [3, -4]
    """
    return ember.floor_divide(_t(x1), _t(x2))


def mod(x1, x2) -> ember.Tensor:
    """Remainder with the sign of the divisor, as NumPy.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.mod([7, -7], ops.convert_to_tensor(3)).tolist()
        [1, 2]
    """
    return ember.remainder(_t(x1), _t(x2))


def power(x1, x2) -> ember.Tensor:
    """``x1 ** x2``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.power([2.0, 3.0], 2.0).tolist()
        [4.0, 9.0]
    """
    return ember.pow(_t(x1), _t(x2))


def negative(x) -> ember.Tensor:
    """``-x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.negative([1, -2]).tolist()
        [-1, 2]
    """
    return -_t(x)


def sign(x) -> ember.Tensor:
    """-1, 0 or 1 by the sign of each entry.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.sign([-2.0, 0.0, 3.0]).tolist()
        [-1.0, 0.0, 1.0]
    """
    return ember.sign(_t(x))


def floor(x) -> ember.Tensor:
    """Round down.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.floor([1.5, -1.5]).tolist()
        [1.0, -2.0]
    """
    return ember.floor(_float(x))


def ceil(x) -> ember.Tensor:
    """Round up.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.ceil([1.5, -1.5]).tolist()
        [2.0, -1.0]
    """
    return ember.ceil(_float(x))


def round(x, decimals=0) -> ember.Tensor:
    """Round half to even, as NumPy.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.round([0.5, 1.5, 2.25], decimals=0).tolist()
        [0.0, 2.0, 2.0]
    """
    return ember.round(_t(x), decimals=int(decimals))


def sin(x) -> ember.Tensor:
    """Sine.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.sin([0.0]).tolist()
        [0.0]
    """
    return ember.sin(_float(x))


def cos(x) -> ember.Tensor:
    """Cosine.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.cos([0.0]).tolist()
        [1.0]
    """
    return ember.cos(_float(x))


def log1p(x) -> ember.Tensor:
    """``log(1 + x)``, accurate for small ``x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.log1p([0.0]).tolist()
        [0.0]
    """
    return ember.log1p(_float(x))


def expm1(x) -> ember.Tensor:
    """``exp(x) - 1``, accurate for small ``x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.expm1([0.0]).tolist()
        [0.0]
    """
    return ember.expm1(_float(x))


def rsqrt(x) -> ember.Tensor:
    """``1 / sqrt(x)``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.rsqrt([4.0]).tolist()
        [0.5]
    """
    return ember.rsqrt(_float(x))


def reciprocal(x) -> ember.Tensor:
    """``1 / x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.reciprocal([4.0]).tolist()
        [0.25]
    """
    return ember.reciprocal(_float(x))


def equal(x1, x2) -> ember.Tensor:
    """``x1 == x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.equal([1, 2], ops.convert_to_tensor(2)).tolist()
        [False, True]
    """
    return ember.eq(_t(x1), _t(x2))


def not_equal(x1, x2) -> ember.Tensor:
    """``x1 != x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.not_equal([1, 2], ops.convert_to_tensor(2)).tolist()
        [True, False]
    """
    return ember.ne(_t(x1), _t(x2))


def greater(x1, x2) -> ember.Tensor:
    """``x1 > x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.greater([1.0, 3.0], 2.0).tolist()
        [False, True]
    """
    return ember.gt(_t(x1), _t(x2))


def greater_equal(x1, x2) -> ember.Tensor:
    """``x1 >= x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.greater_equal([1.0, 2.0], 2.0).tolist()
        [False, True]
    """
    return ember.ge(_t(x1), _t(x2))


def less(x1, x2) -> ember.Tensor:
    """``x1 < x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.less([1.0, 3.0], 2.0).tolist()
        [True, False]
    """
    return ember.lt(_t(x1), _t(x2))


def less_equal(x1, x2) -> ember.Tensor:
    """``x1 <= x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.less_equal([1.0, 3.0], 1.0).tolist()
        [True, False]
    """
    return ember.le(_t(x1), _t(x2))


def logical_and(x1, x2) -> ember.Tensor:
    """Elementwise AND of truth values.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.logical_and([True, True], [True, False]).tolist()
        [True, False]
    """
    return ember.logical_and(_t(x1).bool(), _t(x2).bool())


def logical_or(x1, x2) -> ember.Tensor:
    """Elementwise OR of truth values.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.logical_or([True, False], [False, False]).tolist()
        [True, False]
    """
    return ember.logical_or(_t(x1).bool(), _t(x2).bool())


def logical_not(x) -> ember.Tensor:
    """Elementwise NOT of truth values.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.logical_not([True, False]).tolist()
        [False, True]
    """
    return ember.logical_not(_t(x).bool())


def isnan(x) -> ember.Tensor:
    """True where ``x`` is NaN.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.isnan([1.0, float('nan')]).tolist()
        [False, True]
    """
    return ember.isnan(_t(x))


def isfinite(x) -> ember.Tensor:
    """True where ``x`` is neither infinite nor NaN.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.isfinite([1.0, float('inf')]).tolist()
        [True, False]
    """
    return ember.isfinite(_t(x))
