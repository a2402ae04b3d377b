"""The ONNX lowering table: primitive name -> a function that emits ONNX nodes.

This is the export subsystem's own table (primitives carry no ONNX slot). A lowering is
``fn(ctx, eqn) -> name or list of names`` (one per output of the equation; ``None`` for an
output nothing reads); it reads ``eqn.inputs`` through :meth:`Context.inp` and ``eqn.params``
and adds nodes with :meth:`Context.node`. It raises :class:`Unsupported` for a param value it
cannot express. Primitives ONNX has no single operator for are decomposed; each such
lowering says how in its docstring (``trunc``: ``sign(x) * floor(|x|)``, attention: two
MatMuls around a Softmax, ...).

The neural-network primitives (convolution, pooling, normalization, attention, recurrences)
are in :mod:`ember.onnx._lower_nn`, shapes and indexing in ``_lower_shape``, further math,
losses, sorting and scans in ``_lower_math``, special functions in ``_lower_special`` and
the unrolled linear algebra in ``_lower_linalg``; importing this module registers them too.
Each primitive with no lowering has its reason in :mod:`ember.onnx.unsupported`.

Example:
    >>> from ember.onnx.lowering import LOWERINGS
    >>> "linear" in LOWERINGS and "conv2d" in LOWERINGS
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..compiler.ir import Dim, Eqn, Literal
from ._context import Context, Unsupported

__all__ = ["LOWERINGS", "Unsupported", "lowers"]

Lowering = Callable[[Context, Eqn], Any]
LOWERINGS: dict[str, Lowering] = {}


def lowers(*names: str) -> Callable[[Lowering], Lowering]:
    """Register a lowering for the primitives ``names``."""

    def deco(fn: Lowering) -> Lowering:
        for n in names:
            LOWERINGS[n] = fn
        return fn

    return deco


def out_dtype(e: Eqn, i: int = 0) -> np.dtype:
    return e.outputs[i].dtype.np


def _common(e: Eqn) -> np.dtype:
    """The dtype binary comparisons and logical ops compute in (literals follow vars)."""
    dts = [v.dtype.np for v in e.inputs if not isinstance(v, Literal)]
    return np.result_type(*dts) if dts else np.dtype(np.float32)


# -- elementwise -----------------------------------------------------------------------------

_UNARY = {
    "abs": "Abs",
    "acos": "Acos",
    "asin": "Asin",
    "atan": "Atan",
    "ceil": "Ceil",
    "cos": "Cos",
    "cosh": "Cosh",
    "erf": "Erf",
    "exp": "Exp",
    "floor": "Floor",
    "log": "Log",
    "neg": "Neg",
    "reciprocal": "Reciprocal",
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "sign": "Sign",
    "sin": "Sin",
    "sinh": "Sinh",
    "sqrt": "Sqrt",
    "tan": "Tan",
    "tanh": "Tanh",
    "clone": "Identity",
}


def _unary(op: str) -> Lowering:
    def lower(ctx: Context, e: Eqn) -> str:
        return ctx.node(op, [ctx.inp(e.inputs[0], out_dtype(e))])

    return lower


for _n, _op in _UNARY.items():
    LOWERINGS[_n] = _unary(_op)

_BINARY = {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "pow": "Pow",
    "maximum": "Max",
    "minimum": "Min",
    "clamp_min": "Max",
    "clamp_max": "Min",
}


def _binary(op: str) -> Lowering:
    def lower(ctx: Context, e: Eqn) -> str:
        dt = out_dtype(e)
        return ctx.node(op, [ctx.inp(v, dt) for v in e.inputs])

    return lower


for _n, _op in _BINARY.items():
    LOWERINGS[_n] = _binary(_op)

_COMPARE = {
    "eq": "Equal",
    "lt": "Less",
    "le": "LessOrEqual",
    "gt": "Greater",
    "ge": "GreaterOrEqual",
}


def _compare(op: str) -> Lowering:
    def lower(ctx: Context, e: Eqn) -> str:
        dt = _common(e)
        return ctx.node(op, [ctx.inp(v, dt) for v in e.inputs])

    return lower


for _n, _op in _COMPARE.items():
    LOWERINGS[_n] = _compare(_op)


@lowers("ne")
def _ne(ctx: Context, e: Eqn) -> str:
    dt = _common(e)
    return ctx.node("Not", [ctx.node("Equal", [ctx.inp(v, dt) for v in e.inputs])])


@lowers("ne_const")
def _ne_const(ctx: Context, e: Eqn) -> str:
    x = e.inputs[0]
    dt = x.dtype.np if not isinstance(x, Literal) else None
    eq = ctx.node("Equal", [ctx.inp(x), ctx.const(e.params["value"], dt)])
    return ctx.node("Not", [eq])


def _logical(op: str) -> Lowering:
    def lower(ctx: Context, e: Eqn) -> str:
        return ctx.node(op, [ctx.inp(v, np.bool_) for v in e.inputs])

    return lower


for _n, _op in {
    "logical_and": "And",
    "logical_or": "Or",
    "logical_xor": "Xor",
    "logical_not": "Not",
}.items():
    LOWERINGS[_n] = _logical(_op)


def _bitwise(op: str, bool_op: str) -> Lowering:
    """Bitwise ops on integers; on booleans the logical op (BitwiseX takes no bool)."""

    def lower(ctx: Context, e: Eqn) -> str:
        dt = out_dtype(e)
        ins = [ctx.inp(v, dt) for v in e.inputs]
        if dt == np.bool_:
            return ctx.node(bool_op, ins)
        if ctx.opset < 18:
            raise Unsupported(f"{op} needs opset 18 or newer")
        return ctx.node(op, ins)

    return lower


for _n, _ops in {
    "bitwise_and": ("BitwiseAnd", "And"),
    "bitwise_or": ("BitwiseOr", "Or"),
    "bitwise_xor": ("BitwiseXor", "Xor"),
    "bitwise_not": ("BitwiseNot", "Not"),
}.items():
    LOWERINGS[_n] = _bitwise(*_ops)


@lowers("isnan")
def _isnan(ctx: Context, e: Eqn) -> str:
    if np.issubdtype(_common(e), np.floating):
        return ctx.node("IsNaN", [ctx.inp(e.inputs[0])])
    return _all_false(ctx, e)


def _all_false(ctx: Context, e: Eqn) -> str:
    # integers are never nan/inf: a comparison of x with itself negated
    x = ctx.inp(e.inputs[0])
    return ctx.node("Not", [ctx.node("Equal", [x, x])])


@lowers("isinf")
def _isinf(ctx: Context, e: Eqn) -> str:
    if np.issubdtype(_common(e), np.floating):
        return ctx.node("IsInf", [ctx.inp(e.inputs[0])])
    return _all_false(ctx, e)


@lowers("isfinite")
def _isfinite(ctx: Context, e: Eqn) -> str:
    """``not (isnan(x) or isinf(x))``."""
    x = ctx.inp(e.inputs[0])
    if not np.issubdtype(_common(e), np.floating):
        return ctx.node("Equal", [x, x])
    bad = ctx.node("Or", [ctx.node("IsNaN", [x]), ctx.node("IsInf", [x])])
    return ctx.node("Not", [bad])


@lowers("convert")
def _convert(ctx: Context, e: Eqn) -> str:
    x = e.inputs[0]
    dt = out_dtype(e)
    src = ctx.inp(x)
    if not isinstance(x, Literal) and x.dtype.np == dt:
        return ctx.node("Identity", [src])
    return ctx.cast(src, dt)


@lowers("rsqrt")
def _rsqrt(ctx: Context, e: Eqn) -> str:
    """``1 / sqrt(x)``."""
    return ctx.node("Reciprocal", [ctx.node("Sqrt", [ctx.inp(e.inputs[0], out_dtype(e))])])


@lowers("trunc")
def _trunc(ctx: Context, e: Eqn) -> str:
    """``sign(x) * floor(|x|)``."""
    x = ctx.inp(e.inputs[0], out_dtype(e))
    return _trunc_of(ctx, x)


def _trunc_of(ctx: Context, x: str) -> str:
    return ctx.node("Mul", [ctx.node("Sign", [x]), ctx.node("Floor", [ctx.node("Abs", [x])])])


@lowers("frac")
def _frac(ctx: Context, e: Eqn) -> str:
    """``x - trunc(x)``."""
    x = ctx.inp(e.inputs[0], out_dtype(e))
    return ctx.node("Sub", [x, _trunc_of(ctx, x)])


@lowers("round")
def _round(ctx: Context, e: Eqn) -> str:
    """Round half to even; with ``decimals``: ``round(x * 10**d) / 10**d``."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    d = int(e.params.get("decimals", 0))
    if not np.issubdtype(dt, np.floating):
        return ctx.node("Identity", [x])
    if d == 0:
        return ctx.node("Round", [x])
    s = ctx.const(10.0**d, dt)
    return ctx.node("Div", [ctx.node("Round", [ctx.node("Mul", [x, s])]), s])


def _scaled_log(base: float) -> Lowering:
    def lower(ctx: Context, e: Eqn) -> str:
        dt = out_dtype(e)
        lx = ctx.node("Log", [ctx.inp(e.inputs[0], dt)])
        return ctx.node("Div", [lx, ctx.const(math.log(base), dt)])

    lower.__doc__ = f"``log(x) / log({base:g})``."
    return lower


LOWERINGS["log2"] = _scaled_log(2.0)
LOWERINGS["log10"] = _scaled_log(10.0)


@lowers("log1p")
def _log1p(ctx: Context, e: Eqn) -> str:
    """``log(1 + x)`` (loses the digits of tiny ``x`` that ``log1p`` keeps)."""
    dt = out_dtype(e)
    return ctx.node("Log", [ctx.node("Add", [ctx.inp(e.inputs[0], dt), ctx.const(1, dt)])])


@lowers("expm1")
def _expm1(ctx: Context, e: Eqn) -> str:
    """``exp(x) - 1``."""
    dt = out_dtype(e)
    return ctx.node("Sub", [ctx.node("Exp", [ctx.inp(e.inputs[0], dt)]), ctx.const(1, dt)])


@lowers("exp2")
def _exp2(ctx: Context, e: Eqn) -> str:
    """``2 ** x``."""
    dt = out_dtype(e)
    return ctx.node("Pow", [ctx.const(2, dt), ctx.inp(e.inputs[0], dt)])


@lowers("silu")
def _silu(ctx: Context, e: Eqn) -> str:
    """``x * sigmoid(x)``."""
    x = ctx.inp(e.inputs[0], out_dtype(e))
    return ctx.node("Mul", [x, ctx.node("Sigmoid", [x])])


@lowers("gelu")
def _gelu(ctx: Context, e: Eqn) -> str:
    """Gelu (opset 20); before it ``x/2 * (1 + erf(x/sqrt 2))``, or the tanh form."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    approx = e.params.get("approximate", "none")
    if ctx.opset >= 20:
        return ctx.node("Gelu", [x], approximate=approx)
    half = ctx.node("Mul", [x, ctx.const(0.5, dt)])
    if approx == "tanh":
        x3 = ctx.node("Mul", [ctx.node("Mul", [x, x]), x])
        inner = ctx.node("Add", [x, ctx.node("Mul", [x3, ctx.const(0.044715, dt)])])
        t = ctx.node("Tanh", [ctx.node("Mul", [inner, ctx.const(math.sqrt(2 / math.pi), dt)])])
    else:
        t = ctx.node("Erf", [ctx.node("Mul", [x, ctx.const(1 / math.sqrt(2), dt)])])
    return ctx.node("Mul", [half, ctx.node("Add", [t, ctx.const(1, dt)])])


@lowers("elu")
def _elu(ctx: Context, e: Eqn) -> str:
    return ctx.node(
        "Elu", [ctx.inp(e.inputs[0], out_dtype(e))], alpha=float(e.params.get("alpha", 1.0))
    )


@lowers("leaky_relu")
def _leaky_relu(ctx: Context, e: Eqn) -> str:
    slope = float(e.params.get("negative_slope", 0.01))
    return ctx.node("LeakyRelu", [ctx.inp(e.inputs[0], out_dtype(e))], alpha=slope)


@lowers("softplus")
def _softplus(ctx: Context, e: Eqn) -> str:
    """``softplus(beta x) / beta``, and ``x`` where ``beta x > threshold`` (PyTorch's)."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    beta = float(e.params.get("beta", 1.0))
    bx = ctx.node("Mul", [x, ctx.const(beta, dt)])
    sp = ctx.node("Div", [ctx.node("Softplus", [bx]), ctx.const(beta, dt)])
    big = ctx.node("Greater", [bx, ctx.const(float(e.params.get("threshold", 20.0)), dt)])
    return ctx.node("Where", [big, x, sp])


@lowers("nan_to_num")
def _nan_to_num(ctx: Context, e: Eqn) -> str:
    """Three Wheres: nan, +inf and -inf replaced (defaults: 0 and the dtype's extremes)."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    if not np.issubdtype(dt, np.floating):
        return ctx.node("Identity", [x])
    fi = np.finfo(dt)
    p = e.params
    nan = p.get("nan", 0.0)
    pos = fi.max if p.get("posinf") is None else p["posinf"]
    neg = fi.min if p.get("neginf") is None else p["neginf"]
    x = ctx.node("Where", [ctx.node("IsNaN", [x]), ctx.const(nan, dt), x])
    x = ctx.node("Where", [ctx.node("IsInf", [x], detect_negative=0), ctx.const(pos, dt), x])
    return ctx.node("Where", [ctx.node("IsInf", [x], detect_positive=0), ctx.const(neg, dt), x])


@lowers("floor_divide")
def _floor_divide(ctx: Context, e: Eqn) -> str:
    """``floor(x / y)``; integers go through float64 (exact below 2**53)."""
    dt = out_dtype(e)
    if np.issubdtype(dt, np.floating):
        return ctx.node("Floor", [ctx.node("Div", [ctx.inp(v, dt) for v in e.inputs])])
    q = ctx.node("Floor", [ctx.node("Div", [ctx.inp(v, np.float64) for v in e.inputs])])
    return ctx.cast(q, dt)


@lowers("remainder")
def _remainder(ctx: Context, e: Eqn) -> str:
    """Python's modulo (the sign of the divisor): Mod for integers, ``x - floor(x/y)*y``
    for floats."""
    dt = out_dtype(e)
    x, y = (ctx.inp(v, dt) for v in e.inputs)
    if not np.issubdtype(dt, np.floating):
        return ctx.node("Mod", [x, y], fmod=0)
    q = ctx.node("Floor", [ctx.node("Div", [x, y])])
    return ctx.node("Sub", [x, ctx.node("Mul", [q, y])])


@lowers("fmod")
def _fmod(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    return ctx.node("Mod", [ctx.inp(v, dt) for v in e.inputs], fmod=1)


@lowers("where")
def _where(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    c, x, y = e.inputs
    return ctx.node("Where", [ctx.inp(c, np.bool_), ctx.inp(x, dt), ctx.inp(y, dt)])


@lowers("masked_fill")
def _masked_fill(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    x, mask, value = e.inputs
    return ctx.node("Where", [ctx.inp(mask, np.bool_), ctx.inp(value, dt), ctx.inp(x, dt)])


@lowers("tril", "triu")
def _trilu(ctx: Context, e: Eqn) -> str:
    k = ctx.const(np.int64(e.params.get("diagonal", 0)))
    upper = int(e.prim.name == "triu")
    return ctx.node("Trilu", [ctx.inp(e.inputs[0], out_dtype(e)), k], upper=upper)


@lowers("one_hot")
def _one_hot(ctx: Context, e: Eqn) -> str:
    depth = ctx.const(np.int64(e.params["num_classes"]))
    values = ctx.const(np.array([0, 1], out_dtype(e)))
    return ctx.node("OneHot", [ctx.inp(e.inputs[0]), depth, values], axis=-1)


@lowers("wrap_index")
def _wrap_index(ctx: Context, e: Eqn) -> str:
    """``where(i < 0, i + n, i)`` (the range check of eager mode is not exported)."""
    i = ctx.inp(e.inputs[0], np.int64)
    n = ctx.inp(Literal(e.params["n"]), np.int64)
    neg = ctx.node("Less", [i, ctx.const(np.int64(0))])
    return ctx.node("Where", [neg, ctx.node("Add", [i, n]), i])


@lowers("dropout")
def _dropout(ctx: Context, e: Eqn) -> str:
    """Identity when ``p == 0``; a dropout that draws random masks is training-only."""
    if float(e.params.get("p", 0.0)) != 0.0:
        raise Unsupported(
            "dropout in training mode (export runs the model in eval mode, where nn.Dropout "
            "is the identity; F.dropout(training=True) draws random masks)"
        )
    return ctx.node("Identity", [ctx.inp(e.inputs[0])])


# -- creation --------------------------------------------------------------------------------


@lowers("full")
def _full(ctx: Context, e: Eqn) -> str:
    p = e.params
    dt = np.dtype(p["dtype"])
    shape = tuple(p["shape"])
    if not any(isinstance(d, Dim) for d in shape):
        return ctx.node("Identity", [ctx.const(np.full(shape, p["value"], dt))])
    value = ctx.onnx.numpy_helper.from_array(np.array([p["value"]], dt))
    return ctx.node("ConstantOfShape", [ctx.shape(shape)], value=value)


@lowers("arange")
def _arange(ctx: Context, e: Eqn) -> str:
    # ember.arange(x.shape[1]) inside a graph: Range over the symbolic length (float64 for
    # floating dtypes, as ember computes it, then cast)
    p = e.params
    dt = np.dtype(p["dtype"])
    wt = np.float64 if dt.kind == "f" else np.int64
    n = ctx.cast(ctx.dim(p["n"], scalar=True), wt)
    start, step = ctx.const(np.asarray(p["start"], wt)), ctx.const(np.asarray(p["step"], wt))
    limit = ctx.node("Add", [start, ctx.node("Mul", [n, step])])
    out = ctx.node("Range", [start, limit, step])
    return out if np.dtype(wt) == dt else ctx.cast(out, dt)


@lowers("constant")
def _constant(ctx: Context, e: Eqn) -> str:
    return ctx.node("Identity", [ctx.const(e.params["value"])])


# -- reductions ------------------------------------------------------------------------------


def _axes(e: Eqn, key: str = "dims") -> list[int] | None:
    d = e.params.get(key)
    if d is None:
        return None
    return [int(a) for a in (d if isinstance(d, (tuple, list)) else (d,))]


def _reducer(op: str) -> Lowering:
    def lower(ctx: Context, e: Eqn) -> str:
        x = ctx.inp(e.inputs[0], out_dtype(e))
        return ctx.reduce(op, x, _axes(e), e.params.get("keepdim", False))

    return lower


for _n, _op in {
    "sum": "ReduceSum",
    "mean": "ReduceMean",
    "amax": "ReduceMax",
    "amin": "ReduceMin",
    "prod": "ReduceProd",
    "logsumexp": "ReduceLogSumExp",
}.items():
    LOWERINGS[_n] = _reducer(_op)


@lowers("var")
def _var(ctx: Context, e: Eqn) -> str:
    """Two-pass variance: ReduceMean, the squared deviations' ReduceSum, divided by
    ``n - correction`` where ``n`` (the reduced elements) is read from the input's Shape at
    run time, so a reduction over the symbolic batch axis stays right at any batch size."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    axes = _axes(e)
    mu = ctx.reduce("ReduceMean", x, axes, True)
    dev = ctx.node("Sub", [x, mu])
    s = ctx.reduce("ReduceSum", ctx.node("Mul", [dev, dev]), axes, e.params.get("keepdim", False))
    sizes = ctx.node("Gather", [ctx.node("Shape", [x]), ctx.ints(axes)], axis=0)
    n = ctx.cast(ctx.reduce("ReduceProd", sizes, None, False), dt)
    denom = ctx.node("Sub", [n, ctx.const(np.asarray(e.params["correction"], dt))])
    return ctx.node("Div", [s, denom])


@lowers("all", "any")
def _all_any(ctx: Context, e: Eqn) -> str:
    """ReduceMin / ReduceMax over the input as int32 (ONNX reductions take no bool)."""
    x = ctx.cast(ctx.inp(e.inputs[0], np.bool_), np.int32)
    op = "ReduceMin" if e.prim.name == "all" else "ReduceMax"
    r = ctx.reduce(op, x, _axes(e), e.params.get("keepdim", False))
    return ctx.cast(r, np.bool_)


@lowers("argmax", "argmin")
def _argmax(ctx: Context, e: Eqn) -> str:
    op = "ArgMax" if e.prim.name == "argmax" else "ArgMin"
    x = ctx.inp(e.inputs[0])
    dim = e.params.get("dim")
    keep = int(bool(e.params.get("keepdim", False)))
    if dim is None:  # over the flattened input
        flat = ctx.node("Reshape", [x, ctx.ints([-1])])
        r = ctx.node(op, [flat], axis=0, keepdims=0, select_last_index=0)
        if keep:
            r = ctx.node("Reshape", [r, ctx.ints([1] * e.inputs[0].ndim)])
        return r
    return ctx.node(op, [x], axis=int(dim), keepdims=keep, select_last_index=0)


@lowers("softmax", "log_softmax")
def _softmax(ctx: Context, e: Eqn) -> str:
    op = "Softmax" if e.prim.name == "softmax" else "LogSoftmax"
    return ctx.node(op, [ctx.inp(e.inputs[0], out_dtype(e))], axis=int(e.params["dim"]))


@lowers("cumsum")
def _cumsum(ctx: Context, e: Eqn) -> str:
    axis = ctx.const(np.int64(e.params["dim"]))
    return ctx.node("CumSum", [ctx.inp(e.inputs[0], out_dtype(e)), axis])


# -- contractions ----------------------------------------------------------------------------


@lowers("matmul")
def _matmul(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    return ctx.node("MatMul", [ctx.inp(v, dt) for v in e.inputs])


@lowers("linear")
def _linear(ctx: Context, e: Eqn) -> str:
    """Gemm (transB) for 2-D inputs; otherwise ``MatMul(x, W^T) + b``."""
    dt = out_dtype(e)
    x, w = (ctx.inp(v, dt) for v in e.inputs[:2])
    b = e.inputs[2] if len(e.inputs) > 2 else None
    has_b = b is not None and not (isinstance(b, Literal) and b.value is None)
    if e.inputs[0].ndim == 2 and e.inputs[1].ndim == 2:
        ins = [x, w] + ([ctx.inp(b, dt)] if has_b else [])
        return ctx.node("Gemm", ins, transB=1)
    y = ctx.node("MatMul", [x, ctx.node("Transpose", [w], perm=[1, 0])])
    return ctx.node("Add", [y, ctx.inp(b, dt)]) if has_b else y


@lowers("einsum")
def _einsum(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    return ctx.node("Einsum", [ctx.inp(v, dt) for v in e.inputs], equation=e.params["eq"])


# import for its registrations (the neural-network primitives and the shape ops)
from . import (  # noqa: E402, F401
    _lower_linalg,
    _lower_math,
    _lower_nn,
    _lower_quant,
    _lower_shape,
    _lower_special,
)
