"""Elementwise unary ops: exponentials and logarithms, roots, trigonometric and hyperbolic
functions, sigmoid/relu/erf, sign and rounding, ``nan_to_num`` (the binary arithmetic,
comparisons and ``where``/``clamp`` live in ``elementwise.py``, which re-exports every name
here).

Each op is one record, one screen: the primitive (kernel + shape rule), its VJP in the
autodiff table (``defvjp``), and the public function with its metadata (``@op``: Tensor
method, in-place variant, PyTorch reference and input domain for the per-op tests).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ..backends import cpu
from . import _core
from ._ad import defvjp
from ._core import (
    SAVE_INPUTS,
    SAVE_NONE,
    SAVE_OUTPUT,
    AbstractValue,
    Primitive,
    bind,
    refuse_integral,
)
from ._ew_kernels import (
    erf_impl,
    quiet,
    relu_grad_impl,
    relu_impl,
    sigmoid_grad_impl,
    sigmoid_impl,
    sign_impl,
    tanh_grad_impl,
)
from ._ew_util import (
    _ew_abstract,
    _fused_grad,
    _grad_prim,
    _zero_grad_vjp,
    fast_unary,
    fast_unary_grad,
    not_a_tensor,
    unary_primitive,
)
from ._records import module_ops, op
from .complex_base import cj, csgn
from .complex_refuse import complex_error, real_input
from .elementwise import convert, isfinite, mul, where

if TYPE_CHECKING:
    from .._tensor import Tensor


# ---------------------------------------------------------------------------------------
# Unary math: one record per op (primitive, VJP, public function with its metadata)
# ---------------------------------------------------------------------------------------


def float_input(x, op: str):
    """``x``, cast to the default float dtype when it holds integers or bools (the float
    unary ops promote them, as PyTorch does)."""
    try:
        kind = x._data.dtype.kind
    except AttributeError:
        raise not_a_tensor(op, x) from None
    if kind in "iub":
        return convert(x, dt.get_default_dtype())
    return x


neg_p = unary_primitive("neg", np.negative)
defvjp(neg_p, lambda g, out, x: (-g,), save=SAVE_NONE)


@op(method=("neg", "negative"), inplace="neg_", ref="neg")
def neg(input: Tensor) -> Tensor:
    """``-input``; bool tensors are an error (use ``~`` or ``logical_not``)."""
    if input._data.dtype == np.bool_:
        raise TypeError(
            "neg: negation, the `-` operator, on a bool tensor is not supported; "
            "use `~` or logical_not() instead"
        )
    return bind(neg_p, (input,))


exp_p = unary_primitive("exp", fast_unary("exp", quiet(np.exp), small=4096))
defvjp(exp_p, lambda g, out, x: (g * cj(out),), save=SAVE_OUTPUT)


@op(method="exp", inplace="exp_", ref="exp")
def exp(input: Tensor) -> Tensor:
    """``e ** input``.

    Example:
        >>> import ember
        >>> ember.exp(ember.tensor([0.0])).tolist()
        [1.0]
    """
    return bind(exp_p, (float_input(input, "exp"),))


exp2_p = unary_primitive("exp2", quiet(np.exp2))
defvjp(exp2_p, lambda g, out, x: (g * cj(out) * math.log(2.0),), save=SAVE_OUTPUT)


@op(method="exp2", inplace="exp2_", ref="exp2")
def exp2(input: Tensor) -> Tensor:
    """``2 ** input``.

    Example:
        >>> import ember
        >>> ember.exp2(ember.tensor([3.0])).tolist()
        [8.0]
    """
    return bind(exp2_p, (float_input(input, "exp2"),))


expm1_p = unary_primitive("expm1", quiet(np.expm1))
defvjp(expm1_p, lambda g, out, x: (g * cj(out + 1.0),), save=SAVE_OUTPUT)


@op(method="expm1", inplace="expm1_", ref="expm1")
def expm1(input: Tensor) -> Tensor:
    """``exp(input) - 1``, accurate near 0."""
    return bind(expm1_p, (float_input(input, "expm1"),))


log_p = unary_primitive("log", fast_unary("log", quiet(np.log), small=4096))
defvjp(log_p, lambda g, out, x: (g / cj(x),))


@op(method="log", inplace="log_", ref="log", domain=(0.2, 4))
def log(input: Tensor) -> Tensor:
    """Natural logarithm (``log(0) = -inf`` and ``log(-1) = nan``, silently).

    Example:
        >>> import ember
        >>> ember.log(ember.tensor([1.0, 0.0])).tolist()
        [0.0, -inf]
    """
    return bind(log_p, (float_input(input, "log"),))


log1p_p = unary_primitive("log1p", quiet(np.log1p))
defvjp(log1p_p, lambda g, out, x: (g / cj(x + 1.0),))


@op(method="log1p", inplace="log1p_", ref="log1p", domain=(-0.5, 4))
def log1p(input: Tensor) -> Tensor:
    """``log(1 + input)``, accurate near 0."""
    return bind(log1p_p, (float_input(input, "log1p"),))


log2_p = unary_primitive("log2", quiet(np.log2))
defvjp(log2_p, lambda g, out, x: (g / cj(x * math.log(2.0)),))


@op(method="log2", inplace="log2_", ref="log2", domain=(0.2, 4))
def log2(input: Tensor) -> Tensor:
    """Base-2 logarithm."""
    return bind(log2_p, (float_input(input, "log2"),))


log10_p = unary_primitive("log10", quiet(np.log10))
defvjp(log10_p, lambda g, out, x: (g / cj(x * math.log(10.0)),))


@op(method="log10", inplace="log10_", ref="log10", domain=(0.2, 4))
def log10(input: Tensor) -> Tensor:
    """Base-10 logarithm."""
    return bind(log10_p, (float_input(input, "log10"),))


sqrt_p = unary_primitive("sqrt", quiet(np.sqrt))
defvjp(sqrt_p, lambda g, out, x: (g / cj(out * 2.0),), save=SAVE_OUTPUT)


@op(method="sqrt", inplace="sqrt_", ref="sqrt", domain=(0.2, 4))
def sqrt(input: Tensor) -> Tensor:
    """Square root (nan for negative inputs)."""
    return bind(sqrt_p, (float_input(input, "sqrt"),))


rsqrt_p = unary_primitive("rsqrt", quiet(lambda x: np.reciprocal(np.sqrt(x)), 1))
defvjp(rsqrt_p, lambda g, out, x: (g * cj(out * out * out) * -0.5,), save=SAVE_OUTPUT)


@op(method="rsqrt", inplace="rsqrt_", ref="rsqrt", domain=(0.2, 4))
def rsqrt(input: Tensor) -> Tensor:
    """``1 / sqrt(input)``."""
    return bind(rsqrt_p, (float_input(input, "rsqrt"),))


def _abs_abstract(x):
    return AbstractValue(x.shape, x.dtype.to_real())


abs_p = Primitive("abs", "elementwise", impl=np.abs, abstract=_abs_abstract)
# (complex z: the gradient is g * z / |z|, PyTorch's sgn)
defvjp(abs_p, lambda g, out, x: (g * (csgn(x) if x._data.dtype.kind == "c" else sign(x)),))


@op(method=("abs", "absolute"), inplace="abs_", ref="abs", second_order=False)
def abs(input: Tensor) -> Tensor:
    """``|input|`` (its gradient at 0 is 0, as PyTorch's)."""
    return bind(abs_p, (input,))


sign_p = unary_primitive("sign", sign_impl)
defvjp(sign_p, _zero_grad_vjp, save=SAVE_NONE)


@op(method="sign", inplace="sign_", ref="sign")
def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of ``input`` (0 for nan, as PyTorch)."""
    return bind(sign_p, (input,))


reciprocal_p = unary_primitive("reciprocal", quiet(np.reciprocal))
defvjp(reciprocal_p, lambda g, out, x: (-g * cj(out * out),), save=SAVE_OUTPUT)


@op(method="reciprocal", inplace="reciprocal_", ref="reciprocal", domain=(0.3, 3))
def reciprocal(input: Tensor) -> Tensor:
    """``1 / input``."""
    return bind(reciprocal_p, (float_input(input, "reciprocal"),))


sin_p = unary_primitive("sin", np.sin)
defvjp(sin_p, lambda g, out, x: (g * cj(cos(x)),))


@op(method="sin", inplace="sin_", ref="sin")
def sin(input: Tensor) -> Tensor:
    """Sine (radians)."""
    return bind(sin_p, (float_input(input, "sin"),))


cos_p = unary_primitive("cos", np.cos)
defvjp(cos_p, lambda g, out, x: (-g * cj(sin(x)),))


@op(method="cos", inplace="cos_", ref="cos")
def cos(input: Tensor) -> Tensor:
    """Cosine (radians)."""
    return bind(cos_p, (float_input(input, "cos"),))


tan_p = unary_primitive("tan", quiet(np.tan))
defvjp(tan_p, lambda g, out, x: (g * cj(out * out + 1.0),), save=SAVE_OUTPUT)


@op(method="tan", inplace="tan_", ref="tan", domain=(-1.2, 1.2))
def tan(input: Tensor) -> Tensor:
    """Tangent (radians)."""
    return bind(tan_p, (float_input(input, "tan"),))


tanh_grad_p = _grad_prim("tanh_grad", fast_unary_grad("tanh", tanh_grad_impl))
tanh_p = unary_primitive("tanh", fast_unary("tanh", np.tanh, small=4096))
defvjp(tanh_p, _fused_grad(tanh_grad_p, lambda g, out: g * cj(1.0 - out * out)), save=SAVE_OUTPUT)


@op(method="tanh", inplace="tanh_", ref="tanh")
def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return bind(tanh_p, (float_input(input, "tanh"),))


asin_p = unary_primitive("asin", quiet(np.arcsin))
defvjp(asin_p, lambda g, out, x: (g * cj(rsqrt(1.0 - x * x)),))


@op(method=("asin", "arcsin"), inplace="asin_", ref="asin", domain=(-0.9, 0.9))
def asin(input: Tensor) -> Tensor:
    """Inverse sine (nan outside [-1, 1])."""
    return bind(asin_p, (float_input(input, "asin"),))


acos_p = unary_primitive("acos", quiet(np.arccos))
defvjp(acos_p, lambda g, out, x: (-g * cj(rsqrt(1.0 - x * x)),))


@op(method=("acos", "arccos"), inplace="acos_", ref="acos", domain=(-0.9, 0.9))
def acos(input: Tensor) -> Tensor:
    """Inverse cosine (nan outside [-1, 1])."""
    return bind(acos_p, (float_input(input, "acos"),))


atan_p = unary_primitive("atan", np.arctan)
defvjp(atan_p, lambda g, out, x: (g / cj(x * x + 1.0),))


@op(method=("atan", "arctan"), inplace="atan_", ref="atan")
def atan(input: Tensor) -> Tensor:
    """Inverse tangent."""
    return bind(atan_p, (float_input(input, "atan"),))


sinh_p = unary_primitive("sinh", quiet(np.sinh))
defvjp(sinh_p, lambda g, out, x: (g * cj(cosh(x)),))


@op(method="sinh", inplace="sinh_", ref="sinh")
def sinh(input: Tensor) -> Tensor:
    """Hyperbolic sine."""
    return bind(sinh_p, (float_input(input, "sinh"),))


cosh_p = unary_primitive("cosh", quiet(np.cosh))
defvjp(cosh_p, lambda g, out, x: (g * cj(sinh(x)),))


@op(method="cosh", inplace="cosh_", ref="cosh")
def cosh(input: Tensor) -> Tensor:
    """Hyperbolic cosine."""
    return bind(cosh_p, (float_input(input, "cosh"),))


sigmoid_grad_p = _grad_prim("sigmoid_grad", fast_unary_grad("sigmoid", sigmoid_grad_impl))
sigmoid_p = unary_primitive("sigmoid", fast_unary("sigmoid", sigmoid_impl))
defvjp(
    sigmoid_p,
    _fused_grad(sigmoid_grad_p, lambda g, out: g * out * (1.0 - out)),
    save=SAVE_OUTPUT,
)


@op(method="sigmoid", inplace="sigmoid_", ref="sigmoid")
def sigmoid(input: Tensor) -> Tensor:
    """``1 / (1 + exp(-input))`` without overflow."""
    if getattr(input, "_data", None) is not None and input._data.dtype.kind == "c":
        return reciprocal(exp(-input) + 1.0)  # (the fused kernel is real-only)
    return bind(sigmoid_p, (float_input(input, "sigmoid"),))


def _relu_grad(g, out):
    return bind(relu_grad_p, (g, out))


relu_p = unary_primitive("relu", relu_impl)
defvjp(relu_p, lambda g, out, x: (_relu_grad(g, out),), save=SAVE_OUTPUT)
# relu's backward g * (out > 0) as one primitive. It is linear in g with a zero derivative in
# out (almost everywhere), so its own VJP is itself: higher-order gradients stay exact.
relu_grad_p = Primitive(
    "relu_grad",
    "elementwise",
    impl=relu_grad_impl,
    abstract=lambda g, out: AbstractValue(g.shape, g.dtype),
    save=SAVE_INPUTS,
)
defvjp(relu_grad_p, lambda gg, r, g, out: (_relu_grad(gg, out), None))


@op(method="relu", inplace="relu_", ref="relu", second_order=False)
def relu(input: Tensor) -> Tensor:
    """``max(input, 0)``; bool tensors are an error, as in PyTorch."""
    refuse_integral("relu", input, kinds="b", message="{op}: Boolean inputs not supported for {op}")
    return bind(relu_p, (input,))


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
erf_p = unary_primitive("erf", fast_unary("erf", erf_impl))
erf_grad_p = _grad_prim(
    "erf_grad",
    fast_unary_grad("erf", lambda g, x: g * np.exp(-(x * x)) * x.dtype.type(_TWO_OVER_SQRT_PI)),
)


@defvjp(erf_p)
def _erf_vjp(g, out, x):
    if (
        not _core._state.grad_enabled
        and g._data.dtype == x._data.dtype
        and g._data.dtype in cpu.FAST_FLOATS
    ):
        return (bind(erf_grad_p, (g, x)),)  # one pass; the composite stays differentiable
    return (g * exp(-(x * x)) * _TWO_OVER_SQRT_PI,)


@op(method="erf", inplace="erf_", ref="erf")
def erf(input: Tensor) -> Tensor:
    """The error function."""
    return bind(erf_p, (real_input(input, "erf"),))


floor_p = unary_primitive("floor", np.floor)
defvjp(floor_p, _zero_grad_vjp, save=SAVE_NONE)


@op(method="floor", inplace="floor_", ref="floor", fd=False)
def floor(input: Tensor) -> Tensor:
    """Round down (integer tensors are returned as a copy)."""
    kind = input._data.dtype.kind
    if kind in "iubc":
        if kind == "c":
            raise complex_error("floor", input.dtype)
        return input.clone()
    return bind(floor_p, (input,))


ceil_p = unary_primitive("ceil", np.ceil)
defvjp(ceil_p, _zero_grad_vjp, save=SAVE_NONE)


@op(method="ceil", inplace="ceil_", ref="ceil", fd=False)
def ceil(input: Tensor) -> Tensor:
    """Round up (integer tensors are returned as a copy)."""
    kind = input._data.dtype.kind
    if kind in "iubc":
        if kind == "c":
            raise complex_error("ceil", input.dtype)
        return input.clone()
    return bind(ceil_p, (input,))


trunc_p = unary_primitive("trunc", np.trunc)
defvjp(trunc_p, _zero_grad_vjp, save=SAVE_NONE)


@op(method=("trunc", "fix"), inplace="trunc_", ref="trunc", fd=False)
def trunc(input: Tensor) -> Tensor:
    """Round toward zero (integer tensors are returned as a copy)."""
    kind = input._data.dtype.kind
    if kind in "iubc":
        if kind == "c":
            raise complex_error("trunc", input.dtype)
        return input.clone()
    return bind(trunc_p, (input,))


frac_p = unary_primitive("frac", lambda x: x - np.trunc(x))
defvjp(frac_p, lambda g, out, x: (g,), save=SAVE_NONE)


@op(method="frac", inplace="frac_", ref="frac", domain=(0.1, 0.9))
def frac(input: Tensor) -> Tensor:
    """The fractional part, ``input - trunc(input)``."""
    return bind(frac_p, (float_input(input, "frac"),))


round_p = Primitive(
    "round",
    "elementwise",
    impl=lambda x, decimals=0: np.round(x, decimals),  # half to even, as PyTorch
    abstract=_ew_abstract("round"),
    save=SAVE_NONE,
)
defvjp(round_p, _zero_grad_vjp)


@op(method="round", inplace="round_", ref="round", cases=({}, {"decimals": 1}), fd=False)
def round(input: Tensor, decimals: int = 0) -> Tensor:
    """Round half to even, to ``decimals`` places (integer tensors: a copy)."""
    kind = input._data.dtype.kind
    if kind in "iubc":
        if kind == "c":
            raise complex_error("round", input.dtype)
        return input.clone()
    return bind(round_p, (input,), {"decimals": int(decimals)} if decimals else {})


@op(method="square", inplace="square_", ref="square")
def square(input: Tensor) -> Tensor:
    """``input * input``."""
    return mul(input, input)


nan_to_num_p = Primitive(
    "nan_to_num",
    "elementwise",
    impl=lambda x, nan=0.0, posinf=None, neginf=None: np.nan_to_num(
        x, nan=nan, posinf=posinf, neginf=neginf
    ),
    abstract=_ew_abstract("nan_to_num"),
)


@defvjp(nan_to_num_p)
def _nan_to_num_vjp(g, out, x, **params):
    return (where(isfinite(x), g, 0.0),)


@op(method="nan_to_num", inplace="nan_to_num_", ref="nan_to_num")
def nan_to_num(
    input: Tensor,
    nan: float | None = None,
    posinf: float | None = None,
    neginf: float | None = None,
) -> Tensor:
    """Replace nan, +inf and -inf (defaults: 0 and the dtype's largest/smallest finite)."""
    nan = 0.0 if nan is None else nan
    return bind(nan_to_num_p, (input,), {"nan": nan, "posinf": posinf, "neginf": neginf})


__all__ = module_ops(__name__)
