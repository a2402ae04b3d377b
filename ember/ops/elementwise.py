"""Elementwise primitives: casting, binary arithmetic, comparisons and logic, ``where`` and
``clamp`` (the unary math functions live in ``unary.py``, whose names are all importable
from here too; activations with parameters live in ``activation.py``).

Each op is one record, one screen: the primitive (kernel + shape rule), its VJP in the
autodiff table (``defvjp``), and the public function with its metadata (``@op``: Tensor
method, in-place variant, PyTorch reference and input domain for the per-op tests).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from . import _core
from ._ad import defvjp
from ._core import (
    SAVE_BOTH,
    SAVE_INPUTS,
    SAVE_NONE,
    AbstractValue,
    Primitive,
    ShapeError,
    bind,
)
from ._ew_binary import par_binary
from ._ew_kernels import (
    quiet,
)
from ._ew_util import (  # noqa: F401  (shared machinery, see there; all importable here)
    _ew_abstract,
    _fused_grad,
    _grad_prim,
    _shape_of,
    _zero_grad_vjp,
    _zip_right,
    broadcast_shapes,
    fast_unary,
    fast_unary_grad,
    not_a_tensor,
    unary_primitive,
)
from ._promote import _FROM_NP, promote_args, result_type
from ._records import away_from_jumps, module_ops, op, small_integers, with_specials
from .complex_base import cj
from .complex_refuse import COMPLEX_NP, complex_error

if TYPE_CHECKING:
    from .._tensor import Tensor


# ---------------------------------------------------------------------------------------
# Casting
# ---------------------------------------------------------------------------------------
@quiet  # nan/inf to integers: unspecified values, silently (as PyTorch)
def _convert_impl(x, dtype):
    if hasattr(x, "astype"):
        if x.dtype.kind == "c" and dtype.category != 3:
            x = x.real  # complex to real keeps the real part (NumPy would warn)
        return x.astype(dtype.np, copy=False)
    return np.asarray(x, dtype.np)


def _convert_abstract(x, dtype):
    return AbstractValue(x.shape, dtype)


convert_p = Primitive(
    "convert", "elementwise", impl=_convert_impl, abstract=_convert_abstract, save=SAVE_INPUTS
)


@defvjp(convert_p)
def _convert_vjp(g, out, x, dtype):
    return (convert(g, _FROM_NP[x._data.dtype]),)


@op(toplevel=False)
def convert(x: Tensor, dtype) -> Tensor:
    """Cast ``x`` to ``dtype`` (differentiable between floating dtypes)."""
    dtype = dt.as_dtype(dtype)
    if x._data.dtype == dtype.np:
        return x
    return bind(convert_p, (x,), {"dtype": dtype})


# ---------------------------------------------------------------------------------------
# Binary arithmetic
# ---------------------------------------------------------------------------------------
def _binary(prim, a, b):
    a, b, _ = promote_args(a, b)
    return bind(prim, (a, b))


def _real_binary(prim, a, b, name):
    """``_binary`` for ops PyTorch refuses on complex tensors (orderings, max/min): the test
    reads the common dtype ``promote_args`` returns anyway."""
    a, b, d = promote_args(a, b)
    if d in COMPLEX_NP:
        raise complex_error(name, d)
    return bind(prim, (a, b))


# NOTE: quiet_fp: inf - inf, inf * 0 and overflow give nan/inf silently, as in PyTorch, on
# the calling thread and in the thread blocks alike (~0.15 us per call)
add_p = Primitive(
    "add",
    "elementwise",
    impl=par_binary(np.add, quiet_fp=True),
    abstract=_ew_abstract("add"),
    save=SAVE_NONE,
)
defvjp(add_p, lambda g, out, x, y: (g, g))
sub_p = Primitive(
    "sub",
    "elementwise",
    impl=par_binary(np.subtract, quiet_fp=True),
    abstract=_ew_abstract("sub"),
    save=SAVE_NONE,
)
defvjp(sub_p, lambda g, out, x, y: (g, -g))
mul_p = Primitive(
    "mul",
    "elementwise",
    impl=par_binary(np.multiply, quiet_fp=True),
    abstract=_ew_abstract("mul"),
)
# (cj: the conjugate factor for complex operands, see complex_base)
defvjp(mul_p, lambda g, out, x, y: (_mulc(g, cj(y)), _mulc(g, cj(x))))


def _mulc(g, c):
    """``g * c`` where ``c`` may be a raw constant (a Python scalar)."""
    return g * c if c is not None else None


div_p = Primitive(
    "div",
    "elementwise",
    impl=par_binary(np.true_divide, quiet_fp=True),
    abstract=_ew_abstract("div"),
    # the inputs only, as PyTorch's DivBackward: ``att = s / c; att += mask`` then backward
    # is no in-place error (a tensor divisor's gradient recomputes x / y)
    save=SAVE_INPUTS,
)


@defvjp(div_p)
def _div_vjp(g, out, x, y):
    gx = g / cj(y)
    gy = -gx * cj(x / y) if _is_tensor(y) else None
    return gx, gy


def _is_tensor(x):
    return isinstance(x, _core._Tensor)


def _pow_impl(x, y):
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        if y == 2:
            return x * x
        if y == 3:  # NOTE: x ** 3 on float32 NumPy arrays is ~10x slower than x * x * x
            return x * x * x
        if y == 0.5:
            return np.sqrt(x)
    return np.power(x, y)


pow_p = Primitive(
    "pow", "elementwise", impl=quiet(_pow_impl, 2), abstract=_ew_abstract("pow"), save=SAVE_BOTH
)


@defvjp(pow_p)
def _pow_vjp(g, out, x, y):
    if _is_tensor(y):
        # 0 where y == 0 (x^0 is constant), not 0 * 0^-1 = nan at x == 0 (as PyTorch)
        gx = where(y == 0, 0.0, g * y * pow(x, y - 1)) if _is_tensor(x) else None
        # d/dy x^y = x^y log x; defined as 0 where x == 0 (as PyTorch does)
        if not _is_tensor(x):  # a Python-scalar base: log in double precision
            lx = math.log(x) if x > 0 else (0.0 if x == 0 else float("nan"))
            return None, g * (out * lx)
        gy = g * where(x == 0, 0.0, out * log(where(x == 0, 1.0, x)))
        return gx, gy
    if y == 0:
        return (g * 0.0, None)
    if y == 2:
        return (g * cj(x * 2.0), None)
    return (g * cj(pow(x, y - 1) * y), None)


_floordiv_impl = quiet(np.floor_divide)


floor_divide_p = Primitive(
    "floor_divide",
    "elementwise",
    impl=_floordiv_impl,
    abstract=_ew_abstract("floor_divide"),
    nondiff=True,
)


_rem_impl = quiet(np.remainder)


remainder_p = Primitive(
    "remainder", "elementwise", impl=_rem_impl, abstract=_ew_abstract("remainder"), save=SAVE_INPUTS
)


@defvjp(remainder_p)
def _rem_vjp(g, out, x, y):
    gy = -g * floor_divide(x, y) if _is_tensor(y) else None
    return g, gy


maximum_p = Primitive(
    "maximum", "elementwise", impl=np.maximum, abstract=_ew_abstract("maximum"), save=SAVE_INPUTS
)
minimum_p = Primitive(
    "minimum", "elementwise", impl=np.minimum, abstract=_ew_abstract("minimum"), save=SAVE_INPUTS
)


def _minmax_vjp(cmp):
    def vjp(g, out, x, y):
        # Ties split the gradient evenly and a side gets none only where the other strictly
        # wins, as PyTorch does (so a nan, which compares false, sends it to both sides).
        xw = where(x == y, 0.5, where(cmp(y, x), 0.0, 1.0)).to(g.dtype)
        gx = g * xw
        if not _is_tensor(y):
            return gx, None
        yw = where(x == y, 0.5, where(cmp(x, y), 0.0, 1.0)).to(g.dtype)
        gy = g * yw
        return gx, gy

    return vjp


defvjp(maximum_p, _minmax_vjp(lambda a, b: a > b))
defvjp(minimum_p, _minmax_vjp(lambda a, b: a < b))


@op(method="add", inplace="add_", ref="add", arity=2, cases=({}, {"alpha": 2}))
def add(input: Tensor | float, other: Tensor | float, alpha: float = 1) -> Tensor:
    """``input + alpha * other`` with broadcasting and PyTorch type promotion."""
    if alpha != 1:
        other = other * alpha
    return _binary(add_p, input, other)


@op(
    method=("sub", "subtract"),
    inplace="sub_",
    ref="sub",
    arity=2,
    cases=({}, {"alpha": 2}),
)
def sub(input: Tensor | float, other: Tensor | float, alpha: float = 1) -> Tensor:
    """``input - alpha * other`` with broadcasting and PyTorch type promotion."""
    if alpha != 1:
        other = other * alpha
    return _binary(sub_p, input, other)


@op(method=("mul", "multiply"), inplace="mul_", ref="mul", arity=2)
def mul(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input * other`` with broadcasting and PyTorch type promotion."""
    return _binary(mul_p, input, other)


@op(method=("div", "divide", "true_divide"), inplace="div_", ref="div", arity=2, domain=(0.3, 3))
def div(input: Tensor | float, other: Tensor | float, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give floats); ``rounding_mode`` 'trunc' or 'floor'."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    r = result_type(input, other)
    if r.category < 2:
        if rounding_mode == "trunc":
            q = _binary(div_p, _to_float(input), _to_float(other))
            return trunc(q).to(r)
        input, other = _to_float(input), _to_float(other)
    q = _binary(div_p, input, other)
    return trunc(q) if rounding_mode == "trunc" else q


def _to_float(v):
    if _is_tensor(v):
        return convert(v, dt.get_default_dtype()) if v._data.dtype.kind in "iub" else v
    return float(v)


@op(
    method="floor_divide",
    inplace="floor_divide_",
    ref="floor_divide",
    arity=2,
    domain=(0.3, 3),
    grad=False,
    fd=False,
)
def floor_divide(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``floor(input / other)``, elementwise."""
    return _binary(floor_divide_p, input, other)


@op(
    method="remainder",
    inplace="remainder_",
    ref="remainder",
    arity=2,
    sample=away_from_jumps,
    second_order=False,
)
def remainder(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input - floor(input / other) * other`` (the sign of ``other``, as Python's ``%``)."""
    return _binary(remainder_p, input, other)


fmod_p = Primitive(
    "fmod",
    "elementwise",
    impl=quiet(np.fmod),
    abstract=_ew_abstract("fmod"),
    save=SAVE_INPUTS,
)
defvjp(fmod_p, lambda g, out, x, y: (g, -g * trunc(x / y) if _is_tensor(y) else None))


@op(method="fmod", inplace="fmod_", ref="fmod", arity=2, sample=away_from_jumps, second_order=False)
def fmod(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input - trunc(input / other) * other`` (the sign of ``input``, as C's ``fmod``)."""
    return _binary(fmod_p, input, other)


@op(method="pow", inplace="pow_", ref="pow", arity=2, domain=(0.3, 3))
def pow(input: Tensor | float, exponent: Tensor | float) -> Tensor:
    """``input ** exponent``; integer tensors to negative integer powers are an error, as in
    PyTorch."""
    if not _is_tensor(input):
        input, exponent, _ = promote_args(input, exponent)
        return bind(pow_p, (input, exponent))
    input, exponent, _ = promote_args(input, exponent)
    return bind(pow_p, (input, exponent))


@op(method="maximum", inplace="maximum_", ref="maximum", arity=2, second_order=False)
def maximum(input: Tensor, other: Tensor | float) -> Tensor:
    """The elementwise maximum (ties split the gradient evenly)."""
    return _real_binary(maximum_p, input, other, "maximum")


@op(method="minimum", inplace="minimum_", ref="minimum", arity=2, second_order=False)
def minimum(input: Tensor, other: Tensor | float) -> Tensor:
    """The elementwise minimum (ties split the gradient evenly)."""
    return _real_binary(minimum_p, input, other, "minimum")


# ---------------------------------------------------------------------------------------
# Comparisons and logic (no gradient)
# ---------------------------------------------------------------------------------------
def _cmp_prim(name, fn):
    return Primitive(
        name, "elementwise", impl=fn, abstract=_ew_abstract(name, dt.bool_), nondiff=True
    )


eq_p = _cmp_prim("eq", np.equal)
ne_p = _cmp_prim("ne", np.not_equal)
lt_p = _cmp_prim("lt", np.less)
le_p = _cmp_prim("le", np.less_equal)
gt_p = _cmp_prim("gt", np.greater)
ge_p = _cmp_prim("ge", np.greater_equal)


def _logic_abstract(name):
    def rule(*avals):
        r = _ew_abstract(name)(*avals)
        if r.dtype.category == 2:
            raise ShapeError(
                f"{name}: bitwise/logical ops need integer or bool tensors, got {r.dtype}"
            )
        return r

    return rule


def _bitwise_prim(name, fn):
    return Primitive(name, "elementwise", impl=fn, abstract=_logic_abstract(name), nondiff=True)


bitwise_and_p = _bitwise_prim("bitwise_and", np.bitwise_and)
bitwise_or_p = _bitwise_prim("bitwise_or", np.bitwise_or)
bitwise_xor_p = _bitwise_prim("bitwise_xor", np.bitwise_xor)
bitwise_not_p = Primitive(
    "bitwise_not",
    "elementwise",
    impl=np.invert,
    abstract=_logic_abstract("bitwise_not"),
    nondiff=True,
)
logical_not_p = _cmp_prim("logical_not", np.logical_not)
logical_and_p = _cmp_prim("logical_and", np.logical_and)
logical_or_p = _cmp_prim("logical_or", np.logical_or)
logical_xor_p = _cmp_prim("logical_xor", np.logical_xor)
isnan_p = _cmp_prim("isnan", lambda x: np.isnan(x))
isinf_p = _cmp_prim("isinf", lambda x: np.isinf(x))
isfinite_p = _cmp_prim("isfinite", lambda x: np.isfinite(x))


@op(method="eq", ref="eq", arity=2, sample=small_integers, grad=False)
def eq(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input == other`` as a bool tensor."""
    return _binary(eq_p, input, other)


@op(method=("ne", "not_equal"), ref="ne", arity=2, sample=small_integers, grad=False)
def ne(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input != other`` as a bool tensor."""
    return _binary(ne_p, input, other)


@op(method=("lt", "less"), ref="lt", arity=2, sample=small_integers, grad=False)
def lt(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input < other`` as a bool tensor."""
    return _real_binary(lt_p, input, other, "lt")


@op(method=("le", "less_equal"), ref="le", arity=2, sample=small_integers, grad=False)
def le(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input <= other`` as a bool tensor."""
    return _real_binary(le_p, input, other, "le")


@op(method=("gt", "greater"), ref="gt", arity=2, sample=small_integers, grad=False)
def gt(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input > other`` as a bool tensor."""
    return _real_binary(gt_p, input, other, "gt")


@op(method=("ge", "greater_equal"), ref="ge", arity=2, sample=small_integers, grad=False)
def ge(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input >= other`` as a bool tensor."""
    return _real_binary(ge_p, input, other, "ge")


@op(
    method="bitwise_and",
    inplace="bitwise_and_",
    ref="bitwise_and",
    arity=2,
    dtypes=("int64",),
    grad=False,
)
def bitwise_and(input: Tensor | int, other: Tensor | int) -> Tensor:
    """Elementwise bitwise and of integer or bool tensors."""
    return _binary(bitwise_and_p, input, other)


@op(
    method="bitwise_or",
    inplace="bitwise_or_",
    ref="bitwise_or",
    arity=2,
    dtypes=("int64",),
    grad=False,
)
def bitwise_or(input: Tensor | int, other: Tensor | int) -> Tensor:
    """Elementwise bitwise or of integer or bool tensors."""
    return _binary(bitwise_or_p, input, other)


@op(
    method="bitwise_xor",
    inplace="bitwise_xor_",
    ref="bitwise_xor",
    arity=2,
    dtypes=("int64",),
    grad=False,
)
def bitwise_xor(input: Tensor | int, other: Tensor | int) -> Tensor:
    """Elementwise bitwise xor of integer or bool tensors."""
    return _binary(bitwise_xor_p, input, other)


@op(method="bitwise_not", inplace="bitwise_not_", ref="bitwise_not", dtypes=("int64",), grad=False)
def bitwise_not(input: Tensor) -> Tensor:
    """Bitwise not of an integer or bool tensor (``~input``)."""
    return bind(bitwise_not_p, (input,))


@op(method="logical_not", ref="logical_not", sample=small_integers, grad=False)
def logical_not(input: Tensor) -> Tensor:
    """``input == 0`` as a bool tensor."""
    return bind(logical_not_p, (input,))


@op(method="logical_and", ref="logical_and", arity=2, sample=small_integers, grad=False)
def logical_and(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise and of the truth values, as a bool tensor."""
    return _binary(logical_and_p, input, other)


@op(method="logical_or", ref="logical_or", arity=2, sample=small_integers, grad=False)
def logical_or(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise or of the truth values, as a bool tensor."""
    return _binary(logical_or_p, input, other)


@op(method="logical_xor", ref="logical_xor", arity=2, sample=small_integers, grad=False)
def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise xor of the truth values, as a bool tensor."""
    return _binary(logical_xor_p, input, other)


@op(method="isnan", ref="isnan", sample=with_specials, grad=False)
def isnan(input: Tensor) -> Tensor:
    """Where ``input`` is nan, as a bool tensor."""
    return bind(isnan_p, (input,))


@op(method="isinf", ref="isinf", sample=with_specials, grad=False)
def isinf(input: Tensor) -> Tensor:
    """Where ``input`` is +inf or -inf, as a bool tensor."""
    return bind(isinf_p, (input,))


@op(method="isfinite", ref="isfinite", sample=with_specials, grad=False)
def isfinite(input: Tensor) -> Tensor:
    """Where ``input`` is neither nan nor inf, as a bool tensor."""
    return bind(isfinite_p, (input,))


@op(method="equal")
def equal(input: Tensor, other: Tensor) -> bool:
    """True when ``input`` and ``other`` have the same shape and elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(eq(input, other).all())


# ---------------------------------------------------------------------------------------
# where / clamp
# ---------------------------------------------------------------------------------------
def _where_impl(c, x, y):
    return np.where(c, x, y)


def _where_abstract(c, x, y):
    shape = broadcast_shapes(_shape_of(c), _shape_of(x), _shape_of(y), op="where")
    for v in (x, y):
        if isinstance(v, AbstractValue):
            return AbstractValue(shape, v.dtype)
    for v in (x, y):  # two scalars, cast to their result type by ``where`` itself
        if isinstance(v, (np.ndarray, np.generic)):
            return AbstractValue(shape, _FROM_NP[np.dtype(v.dtype)])
    return AbstractValue(shape, dt.get_default_dtype())


where_p = Primitive(
    "where", "elementwise", impl=_where_impl, abstract=_where_abstract, save=SAVE_INPUTS
)


@defvjp(where_p)
def _where_vjp(g, out, c, x, y):
    zero = zeros_like_scalar(g)
    gx = bind(where_p, (c, g, zero)) if _is_tensor(x) else None
    gy = bind(where_p, (c, zero, g)) if _is_tensor(y) else None
    return None, gx, gy


def zeros_like_scalar(g):
    return np.zeros((), g._data.dtype)


@op()
def where(condition, x: Tensor | float | None = None, y: Tensor | float | None = None) -> Tensor:
    """Elements of ``x`` where ``condition`` (a bool tensor) holds, else of ``y``
    (broadcast); with only ``condition``, ``nonzero(condition, as_tuple=True)``.

    Example:
        >>> import ember
        >>> c = ember.tensor([True, False])
        >>> ember.where(c, ember.tensor([1.0, 2.0]), 0.0).tolist()
        [1.0, 0.0]
    """
    if x is None and y is None:
        from .indexing import nonzero

        return nonzero(condition, as_tuple=True)
    if not _is_tensor(condition):
        from .._creation import tensor

        condition = tensor(condition, dtype=dt.bool_)
    if condition._data.dtype != np.bool_:
        # PyTorch takes a bool condition; uint8 still works, with its deprecation warning
        if condition._data.dtype != np.uint8:
            raise TypeError(
                "where: expected condition to be a boolean tensor, but got a tensor with "
                f"dtype {condition.dtype}"
            )
        warnings.warn(
            "where received a uint8 condition tensor. This behavior is deprecated and will be "
            "removed in a future version of PyTorch. Use a boolean condition instead.",
            UserWarning,
            stacklevel=2,
        )
        condition = convert(condition, dt.bool_)
    if _is_tensor(x) or _is_tensor(y):
        r = result_type(x, y)
        x = _cast_operand(x, r)
        y = _cast_operand(y, r)
    else:
        r = result_type(x, y)
        return bind(where_p, (condition, np.asarray(x, r.np), np.asarray(y, r.np)))
    return bind(where_p, (condition, x, y))


@op(method="where", export=False)
def where_method(input: Tensor, condition, other: Tensor | float) -> Tensor:
    """``Tensor.where``: ``input.where(condition, other)`` is ``where(condition, input, other)``.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0])
        >>> x.where(ember.tensor([True, False]), 0.0).tolist()
        [1.0, 0.0]
    """
    return where(condition, input, other)


def _cast_operand(v, r):
    if _is_tensor(v):
        return convert(v, r)
    return np.asarray(v, r.np)


@op(
    method=("clamp", "clip"),
    inplace=("clamp_", "clip_"),
    ref="clamp",
    cases=({"min": -1.0, "max": 1.5}, {"min": 0.5}),
)
def clamp(
    input: Tensor, min: float | Tensor | None = None, max: float | Tensor | None = None
) -> Tensor:
    """Clamp ``input`` into ``[min, max]`` (either may be None or a tensor)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if min is not None:
        input = _clamp_side(input, min, maximum_p, ge_p)
    if max is not None:
        input = _clamp_side(input, max, minimum_p, le_p)
    return input


clamp_min_p = Primitive(
    "clamp_min",
    "elementwise",
    impl=np.maximum,
    abstract=_ew_abstract("clamp_min"),
    save=SAVE_INPUTS,
)
clamp_max_p = Primitive(
    "clamp_max",
    "elementwise",
    impl=np.minimum,
    abstract=_ew_abstract("clamp_max"),
    save=SAVE_INPUTS,
)


@defvjp(clamp_min_p)
def _clamp_min_vjp(g, out, x, lo):
    # PyTorch passes the gradient to x where x >= min (ties go to x).
    m = x >= lo
    return (g * m.to(g.dtype), g * logical_not(m).to(g.dtype) if _is_tensor(lo) else None)


@defvjp(clamp_max_p)
def _clamp_max_vjp(g, out, x, hi):
    m = x <= hi
    return (g * m.to(g.dtype), g * logical_not(m).to(g.dtype) if _is_tensor(hi) else None)


def _clamp_side(x, bound, _unused_p, cmp_p):
    prim = clamp_min_p if cmp_p is ge_p else clamp_max_p
    a, b, d = promote_args(x, bound)
    if d in COMPLEX_NP:
        raise complex_error("clamp", d)
    return bind(prim, (a, b))


@op(method="clamp_min", inplace="clamp_min_", ref="clamp_min", cases=({"min": 0.5},))
def clamp_min(input: Tensor, min: float | Tensor) -> Tensor:
    """``max(input, min)`` (the gradient goes to ``input`` on ties)."""
    return clamp(input, min=min)


@op(method="clamp_max", inplace="clamp_max_", ref="clamp_max", cases=({"max": 0.5},))
def clamp_max(input: Tensor, max: float | Tensor) -> Tensor:
    """``min(input, max)`` (the gradient goes to ``input`` on ties)."""
    return clamp(input, max=max)


# The unary math ops live in unary.py, imported here where their section was: they build on
# the ops above, and the records keep their order. Every name stays importable from here.
from .unary import (  # noqa: E402, F401
    _TWO_OVER_SQRT_PI,
    _abs_abstract,
    _erf_vjp,
    _nan_to_num_vjp,
    _relu_grad,
    abs,
    abs_p,
    acos,
    acos_p,
    asin,
    asin_p,
    atan,
    atan_p,
    ceil,
    ceil_p,
    cos,
    cos_p,
    cosh,
    cosh_p,
    erf,
    erf_grad_p,
    erf_p,
    exp,
    exp2,
    exp2_p,
    exp_p,
    expm1,
    expm1_p,
    float_input,
    floor,
    floor_p,
    frac,
    frac_p,
    log,
    log1p,
    log1p_p,
    log2,
    log2_p,
    log10,
    log10_p,
    log_p,
    nan_to_num,
    nan_to_num_p,
    neg,
    neg_p,
    reciprocal,
    reciprocal_p,
    relu,
    relu_grad_p,
    relu_p,
    round,
    round_p,
    rsqrt,
    rsqrt_p,
    sigmoid,
    sigmoid_grad_p,
    sigmoid_p,
    sign,
    sign_p,
    sin,
    sin_p,
    sinh,
    sinh_p,
    sqrt,
    sqrt_p,
    square,
    tan,
    tan_p,
    tanh,
    tanh_grad_p,
    tanh_p,
    trunc,
    trunc_p,
)


@op(method="lerp", inplace="lerp_", ref="lerp", arity=2, cases=({"weight": 0.3},))
def lerp(input: Tensor, end: Tensor, weight: float | Tensor) -> Tensor:
    """``input + weight * (end - input)``."""
    return input + (end - input) * weight


__all__ = ["broadcast_shapes", *module_ops(__name__)]
