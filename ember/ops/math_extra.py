"""Elementwise math beyond the core set: inverse hyperbolics, two-argument functions
(``atan2``, ``hypot``, ``copysign``, ``logaddexp``, ``fmax``/``fmin``, ``xlogy``), integer
functions (``gcd``, ``lcm``, shifts), predicates (``signbit``, ``isin``, ``isclose``) and
NaN-ignoring reductions, each with PyTorch's name, promotion and gradient.

Example:
    >>> import ember
    >>> ember.atan2(ember.tensor([1.0]), ember.tensor([-1.0])).tolist()  # doctest: +ELLIPSIS
    [2.356...]
    >>> ember.logaddexp(ember.tensor([0.0]), ember.tensor([0.0])).tolist()  # doctest: +ELLIPSIS
    [0.693...]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from . import _core
from ._ad import defvjp
from ._core import SAVE_BOTH, Primitive, bind
from ._ew_kernels import quiet
from ._promote import promote_args
from ._records import module_ops, op, small_integers, with_specials
from ._samples import defsample
from .complex_base import cj
from .complex_refuse import refuse_complex
from .elementwise import (
    _cmp_prim,
    _ew_abstract,
    _is_tensor,
    abs,
    convert,
    eq,
    exp,
    float_input,
    isfinite,
    isinf,
    isnan,
    log,
    log1p,
    logical_and,
    logical_or,
    rsqrt,
    sigmoid,
    sin,
    unary_primitive,
    where,
)

if TYPE_CHECKING:
    from .._tensor import Tensor


def _float_pair(a, b, name: str):
    """Both operands promoted together, then to the default float dtype when integral."""
    a, b, _ = promote_args(a, b)
    t = a if _is_tensor(a) else b
    if t._data.dtype.kind in "iub":
        f = dt.get_default_dtype()
        a = convert(a, f) if _is_tensor(a) else float(a)
        b = convert(b, f) if _is_tensor(b) else float(b)
    return a, b


# -- inverse hyperbolic functions ----------------------------------------------------------
acosh_p = unary_primitive("acosh", quiet(np.arccosh))
# (1 / sqrt(x - 1) sqrt(x + 1): the branch of 1 / sqrt(x^2 - 1) that holds for complex x)
defvjp(acosh_p, lambda g, out, x: (g * cj(rsqrt(x - 1.0) * rsqrt(x + 1.0)),))
asinh_p = unary_primitive("asinh", np.arcsinh)
defvjp(asinh_p, lambda g, out, x: (g * cj(rsqrt(x * x + 1.0)),))
atanh_p = unary_primitive("atanh", quiet(np.arctanh))
defvjp(atanh_p, lambda g, out, x: (g / cj(1.0 - x * x),))


@op(method=("acosh", "arccosh"), inplace=("acosh_", "arccosh_"), ref="acosh", domain=(1.2, 3))
def acosh(input: Tensor) -> Tensor:
    """Inverse hyperbolic cosine (nan below 1)."""
    return bind(acosh_p, (float_input(input, "acosh"),))


@op(method=("asinh", "arcsinh"), inplace=("asinh_", "arcsinh_"), ref="asinh")
def asinh(input: Tensor) -> Tensor:
    """Inverse hyperbolic sine."""
    return bind(asinh_p, (float_input(input, "asinh"),))


@op(method=("atanh", "arctanh"), inplace=("atanh_", "arctanh_"), ref="atanh", domain=(-0.9, 0.9))
def atanh(input: Tensor) -> Tensor:
    """Inverse hyperbolic tangent (nan outside [-1, 1], inf at the ends)."""
    return bind(atanh_p, (float_input(input, "atanh"),))


# -- two-argument functions ----------------------------------------------------------------
def _binary_float_prim(name, kernel, save=SAVE_BOTH):
    return Primitive(name, "elementwise", impl=kernel, abstract=_ew_abstract(name), save=save)


atan2_p = _binary_float_prim("atan2", np.arctan2)


@defvjp(atan2_p)
def _atan2_vjp(g, out, y, x):
    r = y * y + x * x
    gy = g * x / r
    gx = -g * y / r if _is_tensor(x) else None
    return (gy if _is_tensor(y) else None), gx


@op(method=("atan2", "arctan2"), inplace=("atan2_", "arctan2_"), ref="atan2", arity=2)
def atan2(input: Tensor | float, other: Tensor | float) -> Tensor:
    """The angle of the point ``(other, input)``: ``atan(input / other)`` in the right
    quadrant, in ``[-pi, pi]``."""
    a, b = _float_pair(input, other, "atan2")
    return bind(atan2_p, (a, b))


hypot_p = _binary_float_prim("hypot", np.hypot)


@defvjp(hypot_p)
def _hypot_vjp(g, out, x, y):
    # 0/0 at the origin: PyTorch gives 0 there too
    safe = where(out == 0, 1.0, out)
    gx = where(out == 0, 0.0, g * x / safe) if _is_tensor(x) else None
    gy = where(out == 0, 0.0, g * y / safe) if _is_tensor(y) else None
    return gx, gy


@op(method="hypot", inplace="hypot_", ref="hypot", arity=2)
def hypot(input: Tensor, other: Tensor | float) -> Tensor:
    """``sqrt(input**2 + other**2)`` without overflow in the squares."""
    a, b = _float_pair(input, other, "hypot")
    return bind(hypot_p, (a, b))


copysign_p = _binary_float_prim("copysign", np.copysign)


@defvjp(copysign_p)
def _copysign_vjp(g, out, x, y):
    # d/dx |x| * sign(y): the sign of x times that of the result; 0 where x is 0 (PyTorch)
    s = where(eq(x, 0.0), 0.0, where((x < 0) == (out < 0), 1.0, -1.0))
    return g * s, (g * 0.0 if _is_tensor(y) else None)


@op(method="copysign", inplace="copysign_", ref="copysign", arity=2, second_order=False)
def copysign(input: Tensor, other: Tensor | float) -> Tensor:
    """The magnitude of ``input`` with the sign of ``other`` (-0.0 counts as negative)."""
    a, b = _float_pair(input, other, "copysign")
    return bind(copysign_p, (a, b))


logaddexp_p = _binary_float_prim("logaddexp", np.logaddexp)
logaddexp2_p = _binary_float_prim("logaddexp2", np.logaddexp2)


@defvjp(logaddexp_p)
def _logaddexp_vjp(g, out, x, y):
    wx = sigmoid(x - y)
    return g * wx, (g * (1.0 - wx) if _is_tensor(y) else None)


@defvjp(logaddexp2_p)
def _logaddexp2_vjp(g, out, x, y):
    wx = sigmoid((x - y) * math.log(2.0))
    return g * wx, (g * (1.0 - wx) if _is_tensor(y) else None)


@op(method="logaddexp", ref="logaddexp", arity=2)
def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """``log(exp(input) + exp(other))`` without overflow (complex inputs: PyTorch's branch,
    ``m + log1p(exp(n - m))`` with ``m`` the operand of larger real part)."""
    a, b = _float_pair(input, other, "logaddexp")
    t = a if _is_tensor(a) else b
    if t._data.dtype.kind == "c":
        return _complex_logaddexp(a, b)
    return bind(logaddexp_p, (a, b))


def _complex_logaddexp(a, b):
    from .complex_ops import real

    if not _is_tensor(a):
        a = b * 0 + a
    if not _is_tensor(b):
        b = a * 0 + b
    first = real(a) >= real(b)
    m, n = where(first, a, b), where(first, b, a)
    return m + log1p(exp(n - m))


@op(method="logaddexp2", ref="logaddexp2", arity=2)
def logaddexp2(input: Tensor, other: Tensor) -> Tensor:
    """``log2(2**input + 2**other)`` without overflow."""
    return bind(logaddexp2_p, _float_pair(input, other, "logaddexp2"))


def _fminmax_prim(name, kernel, pick_x):
    p = _binary_float_prim(name, kernel)

    @defvjp(p)
    def vjp(g, out, x, y):
        # the gradient goes to the operand that was chosen (x on ties and when y is nan)
        wx = where(logical_or(pick_x(x, y), logical_or(eq(x, y), isnan(y))), 1.0, 0.0)
        wx = wx.to(g.dtype)
        return g * wx, (g * (1.0 - wx) if _is_tensor(y) else None)

    return p


fmax_p = _fminmax_prim("fmax", np.fmax, lambda x, y: x > y)
fmin_p = _fminmax_prim("fmin", np.fmin, lambda x, y: x < y)


@op(method="fmax", ref="fmax", arity=2, second_order=False)
def fmax(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum that ignores nan (nan only where both are nan)."""
    refuse_complex("fmax", input, other)
    a, b, _ = promote_args(input, other)
    return bind(fmax_p, (a, b))


@op(method="fmin", ref="fmin", arity=2, second_order=False)
def fmin(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum that ignores nan (nan only where both are nan)."""
    refuse_complex("fmin", input, other)
    a, b, _ = promote_args(input, other)
    return bind(fmin_p, (a, b))


@op(method="xlogy", inplace="xlogy_", ref="xlogy", arity=2, domain=(0.2, 3))
def xlogy(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input * log(other)``, 0 where ``input`` is 0 (nan where ``other`` is nan)."""
    refuse_complex("xlogy", input, other)
    x, y = _float_pair(input, other, "xlogy")
    if not _is_tensor(y):
        y = x * 0.0 + y
    if not _is_tensor(x):
        x = y * 0.0 + x
    zero = logical_and(eq(x, 0.0), ~isnan(y))
    return where(zero, 0.0, x * log(where(zero, 1.0, y)))


@op(method="float_power", inplace="float_power_", ref="float_power", arity=2, domain=(0.3, 3))
def float_power(input: Tensor | float, exponent: Tensor | float) -> Tensor:
    """``input ** exponent`` computed in float64 (complex128 when either is complex), as in
    PyTorch."""
    args: list = [input, exponent]
    cplx = any(x._data.dtype.kind == "c" if _is_tensor(x) else isinstance(x, complex) for x in args)
    d = dt.complex128 if cplx else dt.float64
    conv: list = [
        convert(x, d) if _is_tensor(x) else (complex(x) if cplx else float(x)) for x in args
    ]
    return conv[0] ** conv[1]


# -- unary compositions --------------------------------------------------------------------
@op(method="sinc", inplace="sinc_", ref="sinc")
def sinc(input: Tensor) -> Tensor:
    """The normalized sinc: ``sin(pi x) / (pi x)``, 1 at 0."""
    x = float_input(input, "sinc")
    px = x * math.pi
    zero = eq(x, 0.0)
    return where(zero, 1.0, sin(px) / where(zero, 1.0, px))


@op(method="deg2rad", inplace="deg2rad_", ref="deg2rad")
def deg2rad(input: Tensor) -> Tensor:
    """Degrees to radians."""
    refuse_complex("deg2rad", input)
    return float_input(input, "deg2rad") * (math.pi / 180.0)


@op(method="rad2deg", inplace="rad2deg_", ref="rad2deg")
def rad2deg(input: Tensor) -> Tensor:
    """Radians to degrees."""
    refuse_complex("rad2deg", input)
    return float_input(input, "rad2deg") * (180.0 / math.pi)


@op(method="logit", inplace="logit_", ref="logit", domain=(0.05, 0.95), cases=({}, {"eps": 0.1}))
def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``; with ``eps``, ``p`` is first clamped to ``[eps, 1 - eps]``."""
    refuse_complex("logit", input)
    p = float_input(input, "logit")
    if eps is not None:
        p = p.clamp(eps, 1.0 - eps)
    return log(p / (1.0 - p))


@op(method="positive", ref="positive")
def positive(input: Tensor) -> Tensor:
    """``input`` itself (bool tensors are refused, as in PyTorch)."""
    if input._data.dtype.kind == "b":
        raise TypeError("positive: bool tensors are not supported; use ~ or logical_not")
    return input


@op(method="sgn", inplace="sgn_", ref="sgn", grad=False, sample=small_integers)
def sgn(input: Tensor) -> Tensor:
    """The sign for real tensors (``sign``); ``input / |input|`` (0 at 0) for complex ones."""
    if input._data.dtype.kind == "c":
        from .complex_base import csgn

        return csgn(input)
    return input.sign()


@op(
    method="heaviside",
    inplace="heaviside_",
    ref="heaviside",
    arity=2,
    grad=False,
    sample=small_integers,
)
def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """0 where ``input < 0``, ``values`` where it is 0, 1 where it is positive."""
    refuse_complex("heaviside", input, values)
    if not _is_tensor(values):
        raise TypeError("heaviside: values must be a Tensor")
    if input._data.dtype != values._data.dtype:
        raise TypeError(
            f"heaviside is not implemented for tensors with different dtypes "
            f"({input.dtype} and {values.dtype})"
        )
    one = (input > 0).to(input.dtype)
    return where(eq(input, 0), values, one)


signbit_p = _cmp_prim("signbit", np.signbit)


@op(method="signbit", ref="signbit", sample=with_specials, grad=False)
def signbit(input: Tensor) -> Tensor:
    """Where the sign bit is set (true for -0.0 and negative numbers), as a bool tensor."""
    return bind(signbit_p, (input,))


@op(method="isposinf", ref="isposinf", sample=with_specials, grad=False)
def isposinf(input: Tensor) -> Tensor:
    """Where ``input`` is +inf."""
    refuse_complex("isposinf", input)
    return logical_and(isinf(input), input > 0)


@op(method="isneginf", ref="isneginf", sample=with_specials, grad=False)
def isneginf(input: Tensor) -> Tensor:
    """Where ``input`` is -inf."""
    refuse_complex("isneginf", input)
    return logical_and(isinf(input), input < 0)


@op(method="isreal", ref="isreal", sample=with_specials, grad=False)
def isreal(input: Tensor) -> Tensor:
    """Where ``input`` is real: everywhere for real tensors, where the imaginary part is 0
    for complex ones."""
    if input.is_complex():
        from .complex_ops import imag

        return eq(imag(input), 0.0)
    return logical_or(eq(input, input), isnan(input))


@op(
    method="isclose",
    ref="isclose",
    arity=2,
    grad=False,
    sample=small_integers,
    cases=({}, {"rtol": 0.1, "atol": 0.5, "equal_nan": True}),
)
def isclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> Tensor:
    """``|input - other| <= atol + rtol * |other|`` elementwise; infinities are close only to
    themselves; nan is close to nan only with ``equal_nan``."""
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be non-negative, got {rtol} and {atol}")
    a, b, _ = promote_args(input, other)
    if not _is_tensor(b):
        b = a * 0 + b
    if a._data.dtype.kind == "b":
        return eq(a, b)
    same = eq(a, b)
    fin = logical_and(isfinite(a), isfinite(b))
    af, bf = (
        (convert(a, dt.float64), convert(b, dt.float64)) if a._data.dtype.kind in "iu" else (a, b)
    )
    af, bf = where(fin, af, 0), where(fin, bf, 0)  # no inf - inf warnings off the finite set
    close = logical_and(fin, abs(af - bf) <= atol + rtol * abs(bf))
    out = logical_or(same, close)
    if equal_nan:
        out = logical_or(out, logical_and(isnan(a), isnan(b)))
    return out


def allclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether :func:`isclose` holds everywhere (a Python bool).

    Example:
        >>> import ember
        >>> ember.allclose(ember.tensor([1.0, 2.0]), ember.tensor([1.0, 2.0 + 1e-9]))
        True
    """
    return bool(isclose(input, other, rtol=rtol, atol=atol, equal_nan=equal_nan).all())


isin_p = Primitive(
    "isin",
    "elementwise",
    impl=lambda e, t, *, invert=False: np.isin(e, t, invert=invert),
    abstract=lambda e, t, *, invert=False: _ew_abstract("isin", dt.bool_)(e),
    nondiff=True,
)


@op(
    grad=False,
    ref="isin",
    arity=2,
    sample=small_integers,
    cases=({}, {"invert": True}),
    shapes=(((2, 3), (4,)), ((5,), (2, 2)), ((0,), (3,))),
)
def isin(
    elements: Tensor | float,
    test_elements: Tensor | float,
    *,
    assume_unique: bool = False,
    invert: bool = False,
) -> Tensor:
    """Whether each of ``elements`` occurs in ``test_elements`` (``~`` that with ``invert``)."""
    refuse_complex("isin", elements, test_elements)
    from .._creation import tensor

    e = elements if _is_tensor(elements) else tensor(elements)
    t = test_elements if _is_tensor(test_elements) else tensor(test_elements)
    e, t, _ = promote_args(e, t)
    return bind(isin_p, (e, t), {"invert": bool(invert)})


# -- integer functions ---------------------------------------------------------------------
def _int_binary_prim(name, kernel):
    return Primitive(name, "elementwise", impl=kernel, abstract=_ew_abstract(name), nondiff=True)


gcd_p = _int_binary_prim("gcd", np.gcd)
lcm_p = _int_binary_prim("lcm", np.lcm)
lshift_p = _int_binary_prim("bitwise_left_shift", np.left_shift)
rshift_p = _int_binary_prim("bitwise_right_shift", np.right_shift)


def _int_args(a, b, name):
    a, b, r = promote_args(a, b)
    if np.dtype(r).kind not in "iu":
        raise TypeError(f"{name}: expected integer tensors, got {np.dtype(r).name}")
    return a, b


@op(method="gcd", inplace="gcd_", ref="gcd", arity=2, dtypes=("int64",), grad=False)
def gcd(input: Tensor, other: Tensor) -> Tensor:
    """Greatest common divisor (non-negative; ``gcd(0, 0) = 0``)."""
    return bind(gcd_p, _int_args(input, other, "gcd"))


@op(method="lcm", inplace="lcm_", ref="lcm", arity=2, dtypes=("int64",), grad=False)
def lcm(input: Tensor, other: Tensor) -> Tensor:
    """Least common multiple (non-negative; 0 when either is 0)."""
    return bind(lcm_p, _int_args(input, other, "lcm"))


def _shift_sample(rng, shapes):
    # shift amounts past the int64 width and negative ones: PyTorch gives 0 (left) or the
    # sign fill (right) there, as NumPy's kernels do
    return [rng.integers(-50, 50, shapes[0]), rng.integers(-2, 70, shapes[1])]


@op(
    method="bitwise_left_shift",
    inplace="bitwise_left_shift_",
    ref="bitwise_left_shift",
    arity=2,
    dtypes=("int64",),
    grad=False,
    sample=_shift_sample,
)
def bitwise_left_shift(input: Tensor | int, other: Tensor | int) -> Tensor:
    """``input << other`` elementwise (also the ``<<`` operator).

    Example:
        >>> import ember
        >>> (ember.tensor([1, -3], dtype=ember.int8) << 2).tolist()
        [4, -12]
    """
    return bind(lshift_p, _int_args(input, other, "bitwise_left_shift"))


@op(
    method="bitwise_right_shift",
    inplace="bitwise_right_shift_",
    ref="bitwise_right_shift",
    arity=2,
    dtypes=("int64",),
    grad=False,
    sample=_shift_sample,
)
def bitwise_right_shift(input: Tensor | int, other: Tensor | int) -> Tensor:
    """``input >> other`` elementwise (arithmetic shift for signed integers; also ``>>``).

    Example:
        >>> import ember
        >>> (ember.tensor([16, -16]) >> 2).tolist()
        [4, -4]
    """
    return bind(rshift_p, _int_args(input, other, "bitwise_right_shift"))


# -- NaN-ignoring reductions ---------------------------------------------------------------
def _with_nans(rng, shapes):
    out = []
    for s in shapes:
        a = rng.uniform(-3, 3, s)
        a[rng.random(s) < 0.3] = np.nan
        out.append(np.asarray(a, np.float32))
    return out


@op(
    method="nansum",
    ref="nansum",
    sample=_with_nans,
    fd=False,
    shapes=(((2, 3),), ((3, 4),), ((0, 2),)),
    cases=({}, {"dim": 1}, {"dim": 0, "keepdim": True}),
)
def nansum(
    input: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False, *, dtype=None
) -> Tensor:
    """The sum treating nan as 0 (gradient 0 at the nan entries)."""
    refuse_complex("nansum", input)
    x = where(isnan(input), 0.0, input) if input._data.dtype.kind == "f" else input
    return x.sum(dim=dim, keepdim=keepdim, dtype=dtype)


@op(
    method="nanmean",
    ref="nanmean",
    sample=_with_nans,
    fd=False,
    shapes=(((2, 3),), ((3, 4),)),
    cases=({}, {"dim": 1}, {"dim": 0, "keepdim": True}),
)
def nanmean(
    input: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False, *, dtype=None
) -> Tensor:
    """The mean over the entries that are not nan (nan where all are nan)."""
    if input._data.dtype.kind != "f":
        raise TypeError(f"nanmean: expected a floating point tensor, got {input.dtype}")
    keep = ~isnan(input)
    s = nansum(input, dim=dim, keepdim=keepdim, dtype=dtype)
    n = keep.to(s.dtype).sum(dim=dim, keepdim=keepdim)
    return s / n


# -- products with a scale, adjoint, fill, mantissa/exponent ---------------------------------
_ABC_SHAPES = (((2, 3), (2, 3), (3,)), ((1, 3), (2, 1), (3,)), ((), (2,), ()))


@op(ref="addcmul", arity=3, shapes=_ABC_SHAPES, cases=({}, {"value": 0.5}))
def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: float = 1) -> Tensor:
    """``input + value * tensor1 * tensor2``."""
    p = tensor1 * tensor2
    return input + (p * value if value != 1 else p)


@op(ref="addcdiv", arity=3, shapes=_ABC_SHAPES, domain=(0.5, 2), cases=({}, {"value": -2.0}))
def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: float = 1) -> Tensor:
    """``input + value * tensor1 / tensor2``."""
    q = tensor1 / tensor2
    return input + (q * value if value != 1 else q)


@op(method="adjoint", ref="adjoint", shapes=(((2, 3),), ((2, 3, 4),)))
def adjoint(input: Tensor) -> Tensor:
    """The conjugate transpose of the last two dims (the transpose, for real tensors)."""
    if input.ndim < 2:
        raise ValueError(f"adjoint: expected a tensor with at least 2 dims, got {input.ndim}")
    t = input.transpose(-2, -1)
    return t.conj() if t.is_complex() else t


def _fill_ref(x, value):
    import torch

    return torch.fill(x, value)


@op(ref=_fill_ref, cases=({"value": 2.5},), grad=False)
def fill(input: Tensor, value: float | Tensor) -> Tensor:
    """A new tensor shaped like ``input`` holding ``value`` (differentiable in a tensor
    ``value``, not in ``input``)."""
    if isinstance(value, _core._Tensor):
        if value.ndim != 0:
            raise ValueError(f"fill: value must be a 0-d tensor, got {value.ndim}-D")
        return input.detach() * 0 + value.to(input.dtype)
    return where(eq(input, input) | isnan(input), value, value).to(input.dtype)


def _frexp_impl(x):
    mantissa, exponent = np.frexp(x)
    return mantissa, exponent.astype(np.int32)


frexp_p = Primitive(
    "frexp",
    "elementwise",
    impl=_frexp_impl,
    abstract=lambda x: (
        _ew_abstract("frexp")(x),
        _ew_abstract("frexp", dt.int32)(x),
    ),
    nondiff=True,
    n_out=2,
)


class _Frexp(tuple):
    """``(mantissa, exponent)`` result of :func:`frexp`."""

    @property
    def mantissa(self):
        return self[0]

    @property
    def exponent(self):
        return self[1]


@op(method="frexp")
def frexp(input: Tensor) -> tuple[Tensor, Tensor]:
    """``input = mantissa * 2**exponent`` with ``0.5 <= |mantissa| < 1`` (int32 exponents)."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"frexp: expected a floating point tensor, got {input.dtype}")
    m, e = bind(frexp_p, (input,))
    return _Frexp((m, e))


@op(method="ldexp", inplace="ldexp_", ref="ldexp", arity=2, sample=small_integers)
def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """``input * 2**other``."""
    x, y = _float_pair(input, other, "ldexp")
    return x * (2.0**y)


nextafter_p = Primitive(
    "nextafter", "elementwise", impl=np.nextafter, abstract=_ew_abstract("nextafter"), nondiff=True
)


@op(method="nextafter", inplace="nextafter_", ref="nextafter", arity=2, grad=False)
def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next representable float after ``input`` toward ``other``."""
    a, b, _ = promote_args(input, other)
    return bind(nextafter_p, (a, b))


def _frexp_sample():
    from .._creation import tensor

    return [((tensor([8.0, 0.3, 0.0, -3.0, np.inf]),), {})]


defsample(frexp_p, _frexp_sample)


__all__ = ["allclose", *module_ops(__name__)]
