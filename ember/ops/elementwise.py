"""Elementwise primitives: arithmetic, comparisons and math functions (activations with
parameters live in ``activation.py``).

Each op is one record: the primitive with its kernel (NumPy/CuPy share the API, so
the kernel takes ``xp`` from its input), abstract rule and VJP in ember ops.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype as dt
from ..backends import cpu, xp_of
from . import _core
from ._core import (
    SAVE_BOTH,
    SAVE_INPUTS,
    SAVE_NONE,
    SAVE_OUTPUT,
    AbstractValue,
    Primitive,
    ShapeError,
    bind,
)
from ._promote import _FROM_NP, promote_args, result_type

_np_dtype = np.dtype


def _shape_of(a):
    return a.shape if isinstance(a, AbstractValue) else ()


def broadcast_shapes(*shapes, op="broadcast"):
    """The broadcast of ``shapes``; a clear error naming the op when they don't match."""
    out = []
    for dims in _zip_right(shapes):
        size = 1
        for d in dims:
            if d != 1:
                if size != 1 and d != size:
                    raise ShapeError(
                        f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)}"
                        f" cannot be broadcast together (size {size} vs {d})"
                    )
                size = d
        out.append(size)
    return tuple(reversed(out))


def _zip_right(shapes):
    n = max((len(s) for s in shapes), default=0)
    for i in range(1, n + 1):
        yield [s[-i] if len(s) >= i else 1 for s in shapes]


def _ew_abstract(name, out_dtype=None):
    def rule(*avals, **params):
        shapes = [_shape_of(a) for a in avals]
        shape = broadcast_shapes(*shapes, op=name)
        ts = [a for a in avals if isinstance(a, AbstractValue)]
        d = out_dtype or (ts[0].dtype if ts else dt.get_default_dtype())
        return AbstractValue(shape, d)

    return rule


def not_a_tensor(op, x):
    """The TypeError for a non-Tensor where a Tensor is required (as PyTorch words it)."""
    return TypeError(f"{op}(): argument 'input' must be a Tensor, not {type(x).__name__}")


def _unary_prim(name, kernel, vjp, save=SAVE_INPUTS, nondiff=False, out_dtype=None):
    p = Primitive(
        name,
        "elementwise",
        impl=kernel,
        abstract=_ew_abstract(name, out_dtype),
        vjp=vjp,
        save=save,
        nondiff=nondiff,
    )
    return p


def _xp(a):
    return xp_of(a)


# ---------------------------------------------------------------------------------------
# Casting
# ---------------------------------------------------------------------------------------
def _convert_impl(x, dtype):
    return x.astype(dtype.np, copy=False) if hasattr(x, "astype") else np.asarray(x, dtype.np)


def _convert_abstract(x, dtype):
    return AbstractValue(x.shape, dtype)


convert_p = Primitive(
    "convert", "elementwise", impl=_convert_impl, abstract=_convert_abstract, save=SAVE_INPUTS
)


@convert_p.def_vjp
def _convert_vjp(g, out, x, dtype):
    return (convert(g, _FROM_NP[x._data.dtype]),)


def convert(x, dtype):
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


add_p = Primitive(
    "add",
    "elementwise",
    impl=np.add,
    abstract=_ew_abstract("add"),
    save=SAVE_NONE,
    vjp=lambda g, out, x, y: (g, g),
)
sub_p = Primitive(
    "sub",
    "elementwise",
    impl=np.subtract,
    abstract=_ew_abstract("sub"),
    save=SAVE_NONE,
    vjp=lambda g, out, x, y: (g, -g),
)
mul_p = Primitive(
    "mul",
    "elementwise",
    impl=np.multiply,
    abstract=_ew_abstract("mul"),
    vjp=lambda g, out, x, y: (_mulc(g, y), _mulc(g, x)),
)


def _mulc(g, c):
    """``g * c`` where ``c`` may be a raw constant (a Python scalar)."""
    return g * c if c is not None else None


def _div_impl(x, y):
    return np.true_divide(x, y)


div_p = Primitive(
    "div", "elementwise", impl=_div_impl, abstract=_ew_abstract("div"), save=SAVE_BOTH
)


@div_p.def_vjp
def _div_vjp(g, out, x, y):
    gx = g / y
    gy = -gx * out if _is_tensor(y) else None
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
    "pow", "elementwise", impl=_pow_impl, abstract=_ew_abstract("pow"), save=SAVE_BOTH
)


@pow_p.def_vjp
def _pow_vjp(g, out, x, y):
    if _is_tensor(y):
        gx = g * y * pow(x, y - 1) if _is_tensor(x) else None
        # d/dy x^y = x^y log x; defined as 0 where x == 0 (as PyTorch does)
        if not _is_tensor(x):  # a Python-scalar base: log in double precision
            lx = math.log(x) if x > 0 else (0.0 if x == 0 else float("nan"))
            return None, g * (out * lx)
        gy = g * where(x == 0, 0.0, out * log(where(x == 0, 1.0, x)))
        return gx, gy
    if y == 0:
        return (g * 0.0, None)
    if y == 2:
        return (g * (x * 2.0), None)
    return (g * (pow(x, y - 1) * y), None)


def _floordiv_impl(x, y):
    return np.floor_divide(x, y)


floor_divide_p = Primitive(
    "floor_divide",
    "elementwise",
    impl=_floordiv_impl,
    abstract=_ew_abstract("floor_divide"),
    nondiff=True,
)


def _rem_impl(x, y):
    return np.remainder(x, y)


remainder_p = Primitive(
    "remainder", "elementwise", impl=_rem_impl, abstract=_ew_abstract("remainder"), save=SAVE_INPUTS
)


@remainder_p.def_vjp
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
        # Ties split the gradient evenly, as PyTorch does.
        xw = where(cmp(x, y), 1.0, where(x == y, 0.5, 0.0)).to(g.dtype)
        gx = g * xw
        gy = g * (1.0 - xw) if _is_tensor(y) else None
        return gx, gy

    return vjp


maximum_p.vjp = _minmax_vjp(lambda a, b: a > b)
minimum_p.vjp = _minmax_vjp(lambda a, b: a < b)


def add(x, y, alpha=1):
    """``x + alpha * y`` with broadcasting and PyTorch type promotion."""
    if alpha != 1:
        y = y * alpha
    return _binary(add_p, x, y)


def _fast_binary(prim):
    """Operator fast path: two tensors of one dtype go straight to bind."""

    def op(x, y):
        try:
            if x._data.dtype is y._data.dtype:
                return bind(prim, (x, y))
        except AttributeError:
            pass
        a, b, _ = promote_args(x, y)
        return bind(prim, (a, b))

    op.__name__ = prim.name
    return op


def sub(x, y, alpha=1):
    if alpha != 1:
        y = y * alpha
    return _binary(sub_p, x, y)


def mul(x, y):
    return _binary(mul_p, x, y)


def div(x, y, rounding_mode=None):
    """True division (integers give floats); ``rounding_mode`` 'trunc' or 'floor'."""
    if rounding_mode == "floor":
        return floor_divide(x, y)
    r = result_type(x, y)
    if r.category < 2:
        if rounding_mode == "trunc":
            q = _binary(div_p, _to_float(x), _to_float(y))
            return trunc(q).to(r)
        x, y = _to_float(x), _to_float(y)
    q = _binary(div_p, x, y)
    return trunc(q) if rounding_mode == "trunc" else q


def _to_float(v):
    if _is_tensor(v):
        return convert(v, dt.get_default_dtype()) if v._data.dtype.kind in "iub" else v
    return float(v)


def floor_divide(x, y):
    return _binary(floor_divide_p, x, y)


def remainder(x, y):
    return _binary(remainder_p, x, y)


fmod_p = Primitive(
    "fmod",
    "elementwise",
    impl=np.fmod,
    abstract=_ew_abstract("fmod"),
    save=SAVE_INPUTS,
    vjp=lambda g, out, x, y: (g, -g * trunc(x / y) if _is_tensor(y) else None),
)


def fmod(x, y):
    return _binary(fmod_p, x, y)


def pow(x, y):
    """``x ** y``; integer tensors to negative integer powers are an error as in PyTorch."""
    if not _is_tensor(x):
        x, y, _ = promote_args(x, y)
        return bind(pow_p, (x, y))
    x, y, _ = promote_args(x, y)
    return bind(pow_p, (x, y))


def maximum(x, y):
    return _binary(maximum_p, x, y)


def minimum(x, y):
    return _binary(minimum_p, x, y)


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


def _cmp(prim, x, y):
    x, y, _ = promote_args(x, y)
    return bind(prim, (x, y))


def eq(x, y):
    return _cmp(eq_p, x, y)


def ne(x, y):
    return _cmp(ne_p, x, y)


def lt(x, y):
    return _cmp(lt_p, x, y)


def le(x, y):
    return _cmp(le_p, x, y)


def gt(x, y):
    return _cmp(gt_p, x, y)


def ge(x, y):
    return _cmp(ge_p, x, y)


def bitwise_and(x, y):
    return _binary(bitwise_and_p, x, y)


def bitwise_or(x, y):
    return _binary(bitwise_or_p, x, y)


def bitwise_xor(x, y):
    return _binary(bitwise_xor_p, x, y)


def bitwise_not(x):
    return bind(bitwise_not_p, (x,))


def logical_not(x):
    return bind(logical_not_p, (x,))


def logical_and(x, y):
    return _cmp(logical_and_p, x, y)


def logical_or(x, y):
    return _cmp(logical_or_p, x, y)


def logical_xor(x, y):
    return _cmp(logical_xor_p, x, y)


def isnan(x):
    return bind(isnan_p, (x,))


def isinf(x):
    return bind(isinf_p, (x,))


def isfinite(x):
    return bind(isfinite_p, (x,))


def equal(x, y) -> bool:
    """True when ``x`` and ``y`` have the same shape and elements."""
    return tuple(x.shape) == tuple(y.shape) and bool(eq(x, y).all())


# ---------------------------------------------------------------------------------------
# where / clamp
# ---------------------------------------------------------------------------------------
def _where_impl(c, x, y):
    return np.where(c, x, y)


def _where_abstract(c, x, y):
    shape = broadcast_shapes(_shape_of(c), _shape_of(x), _shape_of(y), op="where")
    d = (
        x.dtype
        if isinstance(x, AbstractValue)
        else (y.dtype if isinstance(y, AbstractValue) else dt.get_default_dtype())
    )
    return AbstractValue(shape, d)


where_p = Primitive(
    "where", "elementwise", impl=_where_impl, abstract=_where_abstract, save=SAVE_INPUTS
)


@where_p.def_vjp
def _where_vjp(g, out, c, x, y):
    zero = zeros_like_scalar(g)
    gx = bind(where_p, (c, g, zero)) if _is_tensor(x) else None
    gy = bind(where_p, (c, zero, g)) if _is_tensor(y) else None
    return None, gx, gy


def zeros_like_scalar(g):
    return np.zeros((), g._data.dtype)


def where(condition, x=None, y=None):
    """Elements of ``x`` where ``condition`` holds, else of ``y`` (broadcast)."""
    if x is None and y is None:
        from .indexing import nonzero

        return nonzero(condition, as_tuple=True)
    if not _is_tensor(condition):
        from .._creation import tensor

        condition = tensor(condition, dtype=dt.bool_)
    if condition._data.dtype != np.bool_:
        condition = convert(condition, dt.bool_)
    if _is_tensor(x) or _is_tensor(y):
        r = result_type(x, y)
        x = _cast_operand(x, r)
        y = _cast_operand(y, r)
    else:
        r = result_type(x, y)
        x, y = np.asarray(x, r.np), np.asarray(y, r.np)
    return bind(where_p, (condition, x, y))


def _cast_operand(v, r):
    if _is_tensor(v):
        return convert(v, r)
    return np.asarray(v, r.np)


def clamp(x, min=None, max=None):
    """Clamp ``x`` into ``[min, max]`` (either may be None or a tensor)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if min is not None:
        x = _clamp_side(x, min, maximum_p, ge_p)
    if max is not None:
        x = _clamp_side(x, max, minimum_p, le_p)
    return x


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


@clamp_min_p.def_vjp
def _clamp_min_vjp(g, out, x, lo):
    # PyTorch passes the gradient to x where x >= min (ties go to x).
    m = x >= lo
    return (g * m.to(g.dtype), g * logical_not(m).to(g.dtype) if _is_tensor(lo) else None)


@clamp_max_p.def_vjp
def _clamp_max_vjp(g, out, x, hi):
    m = x <= hi
    return (g * m.to(g.dtype), g * logical_not(m).to(g.dtype) if _is_tensor(hi) else None)


def _clamp_side(x, bound, _unused_p, cmp_p):
    prim = clamp_min_p if cmp_p is ge_p else clamp_max_p
    a, b, _ = promote_args(x, bound)
    return bind(prim, (a, b))


def clamp_min(x, min):
    return clamp(x, min=min)


def clamp_max(x, max):
    return clamp(x, max=max)


# ---------------------------------------------------------------------------------------
# Unary math
# ---------------------------------------------------------------------------------------
def _float_unary(prim):
    """Unary float op: integer inputs are promoted to the default float dtype first."""

    def fn(x):
        try:
            kind = x._data.dtype.kind
        except AttributeError:
            raise not_a_tensor(prim.name, x) from None
        if kind in "iub":
            x = convert(x, dt.get_default_dtype())
        return bind(prim, (x,))

    fn.__name__ = prim.name
    return fn


neg_p = _unary_prim("neg", np.negative, lambda g, out, x: (-g,), save=SAVE_NONE)
exp_p = _unary_prim("exp", np.exp, lambda g, out, x: (g * out,), save=SAVE_OUTPUT)
expm1_p = _unary_prim("expm1", np.expm1, lambda g, out, x: (g * (out + 1.0),), save=SAVE_OUTPUT)
log_p = _unary_prim("log", np.log, lambda g, out, x: (g / x,))
log1p_p = _unary_prim("log1p", np.log1p, lambda g, out, x: (g / (x + 1.0),))
log2_p = _unary_prim("log2", np.log2, lambda g, out, x: (g / (x * math.log(2.0)),))
log10_p = _unary_prim("log10", np.log10, lambda g, out, x: (g / (x * math.log(10.0)),))
sqrt_p = _unary_prim("sqrt", np.sqrt, lambda g, out, x: (g / (out * 2.0),), save=SAVE_OUTPUT)


def _rsqrt_impl(x):
    return np.reciprocal(np.sqrt(x))


rsqrt_p = _unary_prim(
    "rsqrt", _rsqrt_impl, lambda g, out, x: (g * (out * out * out) * -0.5,), save=SAVE_OUTPUT
)
abs_p = _unary_prim("abs", np.abs, lambda g, out, x: (g * sign(x),))


def _sign_impl(x):
    r = np.sign(x)
    if x.dtype.kind in "fV":  # sign(nan) is 0 in PyTorch (NumPy: nan)
        r = np.where(np.isnan(r), r.dtype.type(0), r)
    return r


sign_p = _unary_prim("sign", _sign_impl, lambda g, out, x: (g * 0.0,), save=SAVE_NONE)
reciprocal_p = _unary_prim(
    "reciprocal", np.reciprocal, lambda g, out, x: (-g * out * out,), save=SAVE_OUTPUT
)
sin_p = _unary_prim("sin", np.sin, lambda g, out, x: (g * cos(x),))
cos_p = _unary_prim("cos", np.cos, lambda g, out, x: (-g * sin(x),))
tan_p = _unary_prim("tan", np.tan, lambda g, out, x: (g * (out * out + 1.0),), save=SAVE_OUTPUT)


def _fused_grad(prim, composite):
    """A VJP ``g, out -> cotangent`` that runs the one-kernel primitive ``prim`` when no
    backward graph is being recorded (same dtypes, float32/float64), else the ``composite``
    of ember ops (differentiable: higher-order gradients stay exact)."""

    def vjp(g, out, x):
        if (
            not _core._state.grad_enabled
            and g._data.dtype == out._data.dtype
            and g._data.dtype in cpu.FAST_FLOATS
        ):
            return (bind(prim, (g, out)),)
        return (composite(g, out),)

    return vjp


def _grad_prim(name, kernel):
    return Primitive(
        name,
        "elementwise",
        impl=kernel,
        nondiff=True,
        save=SAVE_NONE,
        abstract=lambda g, out: AbstractValue(g.shape, g.dtype),
    )


def _tanh_grad_impl(g, y):
    return g * (y.dtype.type(1) - y * y)


def _sigmoid_grad_impl(g, y):
    return g * (y * (y.dtype.type(1) - y))


tanh_grad_p = _grad_prim("tanh_grad", _tanh_grad_impl)
sigmoid_grad_p = _grad_prim("sigmoid_grad", _sigmoid_grad_impl)
tanh_p = _unary_prim(
    "tanh",
    np.tanh,
    _fused_grad(tanh_grad_p, lambda g, out: g * (1.0 - out * out)),
    save=SAVE_OUTPUT,
)
asin_p = _unary_prim("asin", np.arcsin, lambda g, out, x: (g * rsqrt(1.0 - x * x),))
acos_p = _unary_prim("acos", np.arccos, lambda g, out, x: (-g * rsqrt(1.0 - x * x),))
atan_p = _unary_prim("atan", np.arctan, lambda g, out, x: (g / (x * x + 1.0),))
sinh_p = _unary_prim("sinh", np.sinh, lambda g, out, x: (g * cosh(x),))
cosh_p = _unary_prim("cosh", np.cosh, lambda g, out, x: (g * sinh(x),))


def _zero_grad_vjp(g, out, x):
    return (g * 0.0,)


floor_p = _unary_prim("floor", np.floor, _zero_grad_vjp, save=SAVE_NONE)
ceil_p = _unary_prim("ceil", np.ceil, _zero_grad_vjp, save=SAVE_NONE)
trunc_p = _unary_prim("trunc", np.trunc, _zero_grad_vjp, save=SAVE_NONE)
frac_p = _unary_prim("frac", lambda x: x - np.trunc(x), lambda g, out, x: (g,), save=SAVE_NONE)


def _round_impl(x, decimals=0):
    return np.round(x, decimals)  # half to even, as PyTorch


round_p = Primitive(
    "round",
    "elementwise",
    impl=_round_impl,
    abstract=_ew_abstract("round"),
    save=SAVE_NONE,
    vjp=lambda g, out, x, decimals=0: (g * 0.0,),
)


def _sigmoid_impl(x):
    # NOTE: split by sign so exp never overflows (exp(-x) for x << 0 would be inf).
    xp = _xp(x)
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


sigmoid_p = _unary_prim(
    "sigmoid",
    _sigmoid_impl,
    _fused_grad(sigmoid_grad_p, lambda g, out: g * out * (1.0 - out)),
    save=SAVE_OUTPUT,
)


def _relu_impl(x):
    k = _jit_unary("relu", x)
    if k is not None:
        out = np.empty_like(x)
        return _run_flat(k, (x,), out)
    return np.maximum(x, x.dtype.type(0))


_FLAT_MIN = 4096  # below: NumPy's call is as cheap as the compiled one
_FLAT_BLOCK = 1 << 19


def _jit_unary(name, *arrays):
    """The compiled flat kernel ``name`` when all ``arrays`` are dense float32/float64
    arrays of one layout (NumPy arrays of at least _FLAT_MIN elements), else None."""
    a0 = arrays[0]
    if type(a0) is not np.ndarray or a0.size < _FLAT_MIN or a0.dtype not in cpu.FAST_FLOATS:
        return None
    for a in arrays[1:]:
        if (
            type(a) is not np.ndarray
            or a.dtype != a0.dtype
            or a.strides != a0.strides
            or a.shape != a0.shape
        ):
            return None
    from ..backends import jit

    k = jit.get(name)
    if k is None or cpu.dense_flat(a0) is None:
        return None
    return k


def _run_flat(kernel, ins, out):
    """``kernel(*flat_ins, flat_out)`` over dense same-layout arrays, in blocks on Ember's
    threads for large arrays (the kernels release the GIL)."""
    from ._parallel import parallel_for

    flats = [cpu.dense_flat(a) for a in ins]
    of = cpu.dense_flat(out)
    n = of.size

    def block(a, b, slot):
        kernel(*[f[a:b] for f in flats], of[a:b])

    parallel_for(n, _FLAT_BLOCK, block, 2 * n)
    return out


relu_p = _unary_prim("relu", _relu_impl, lambda g, out, x: (_relu_grad(g, out),), save=SAVE_OUTPUT)


def _relu_grad_impl(g, out):
    k = _jit_unary("relu_grad", g, out)
    if k is not None:
        return _run_flat(k, (g, out), np.empty_like(g))
    # NumPy multiplies by the boolean mask without a float copy of it; the mask is
    # "not out <= 0" so that a NaN output passes the gradient, as PyTorch
    return np.multiply(g, np.logical_not(out <= out.dtype.type(0)), dtype=g.dtype)


def _relu_grad_abstract(g, out):
    return _core.AbstractValue(g.shape, g.dtype)


# relu's backward g * (out > 0) as one primitive. It is linear in g with a zero derivative in
# out (almost everywhere), so its own VJP is itself: higher-order gradients stay exact.
relu_grad_p = Primitive(
    "relu_grad",
    "elementwise",
    impl=_relu_grad_impl,
    abstract=_relu_grad_abstract,
    save=SAVE_INPUTS,
    vjp=lambda gg, r, g, out: (_relu_grad(gg, out), None),
)


def _relu_grad(g, out):
    return _core.bind(relu_grad_p, (g, out))


def _erf_numpy(x):
    """erf without SciPy: a series near 0 and a Chebyshev-fitted erfc elsewhere
    (relative error < 1.2e-7), enough for float32 parity."""
    xp = _xp(x)
    z = xp.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    erfc = t * xp.exp(poly)
    big = 1.0 - erfc
    z2 = z * z
    small = (
        z
        * (
            1.0
            + z2
            * (
                -1 / 3
                + z2
                * (
                    1 / 10
                    + z2
                    * (-1 / 42 + z2 * (1 / 216 + z2 * (-1 / 1320 + z2 * (1 / 9360 - z2 / 75600))))
                )
            )
        )
        * (2.0 / math.sqrt(math.pi))
    )
    r = xp.where(z < 0.5, small, big)
    return (xp.sign(x) * r).astype(x.dtype)


def _erf_impl(x):
    try:
        from scipy.special import erf as _sp_erf
    except ImportError:
        return _erf_numpy(x)
    if x.dtype.kind == "V":
        return _sp_erf(x.astype(np.float32)).astype(x.dtype)
    return _sp_erf(x).astype(x.dtype, copy=False)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
erf_p = _unary_prim("erf", _erf_impl, lambda g, out, x: (g * exp(-(x * x)) * _TWO_OVER_SQRT_PI,))

exp = _float_unary(exp_p)
expm1 = _float_unary(expm1_p)
log = _float_unary(log_p)
log1p = _float_unary(log1p_p)
log2 = _float_unary(log2_p)
log10 = _float_unary(log10_p)
sqrt = _float_unary(sqrt_p)
rsqrt = _float_unary(rsqrt_p)
reciprocal = _float_unary(reciprocal_p)
sin = _float_unary(sin_p)
cos = _float_unary(cos_p)
tan = _float_unary(tan_p)
tanh = _float_unary(tanh_p)
asin = _float_unary(asin_p)
acos = _float_unary(acos_p)
atan = _float_unary(atan_p)
sinh = _float_unary(sinh_p)
cosh = _float_unary(cosh_p)
sigmoid = _float_unary(sigmoid_p)
erf = _float_unary(erf_p)


def neg(x):
    if x._data.dtype == np.bool_:
        raise TypeError(
            "neg: negation, the `-` operator, on a bool tensor is not supported; "
            "use `~` or logical_not() instead"
        )
    return bind(neg_p, (x,))


def abs(x):
    return bind(abs_p, (x,))


def sign(x):
    return bind(sign_p, (x,))


def _int_passthrough(prim):
    def fn(x):
        if x._data.dtype.kind in "iub":
            return x.clone() if hasattr(x, "clone") else x
        return bind(prim, (x,))

    fn.__name__ = prim.name
    return fn


floor = _int_passthrough(floor_p)
ceil = _int_passthrough(ceil_p)
trunc = _int_passthrough(trunc_p)
frac = _float_unary(frac_p)


def round(x, decimals=0):
    if x._data.dtype.kind in "iub":
        return x.clone()
    return bind(round_p, (x,), {"decimals": int(decimals)} if decimals else {})


def relu(x):
    return bind(relu_p, (x,))


def square(x):
    return mul(x, x)


def _nan_to_num_impl(x, nan=0.0, posinf=None, neginf=None):
    return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


nan_to_num_p = Primitive(
    "nan_to_num", "elementwise", impl=_nan_to_num_impl, abstract=_ew_abstract("nan_to_num")
)


@nan_to_num_p.def_vjp
def _nan_to_num_vjp(g, out, x, **params):
    return (where(isfinite(x), g, 0.0),)


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    return bind(nan_to_num_p, (x,), {"nan": nan, "posinf": posinf, "neginf": neginf})


def lerp(start, end, weight):
    return start + (end - start) * weight


_ = (_np_dtype, SAVE_BOTH)
