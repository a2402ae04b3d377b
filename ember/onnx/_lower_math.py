"""Lowerings of the math, loss, sorting and set primitives the core table leaves out.

ONNX has a single operator for some (Acosh, Det, TopK, the two losses,
RMSNormalization from opset 23); the rest are decompositions, each documented in its
docstring. Importing :mod:`ember.onnx.lowering` registers them.
"""

from __future__ import annotations

import math

import numpy as np

from ..compiler.ir import Dim, Eqn, Literal
from ._context import Context, Unsupported
from .lowering import LOWERINGS, _axes, _unary, lowers, out_dtype

for _n, _op in {"acosh": "Acosh", "asinh": "Asinh", "atanh": "Atanh"}.items():
    LOWERINGS[_n] = _unary(_op)


def _in_dtype(e: Eqn) -> np.dtype:
    dts = [v.dtype.np for v in e.inputs if not isinstance(v, Literal)]
    return np.result_type(*dts) if dts else np.dtype(np.float32)


def _float_pair(ctx: Context, e: Eqn) -> tuple[str, str, np.dtype]:
    dt = out_dtype(e)
    a, b = (ctx.inp(v, dt) for v in e.inputs[:2])
    return a, b, dt


@lowers("atan2")
def _atan2(ctx: Context, e: Eqn) -> str:
    """``atan(y/x)`` moved to the right quadrant: ``+-pi`` where ``x < 0``, ``+-pi/2`` (or
    0) where ``x == 0`` (signed zeros are not told apart)."""
    y, x, dt = _float_pair(ctx, e)
    zero = ctx.const(0, dt)
    a = ctx.node("Atan", [ctx.node("Div", [y, x])])
    pi, half = ctx.const(math.pi, dt), ctx.const(math.pi / 2, dt)
    y_nonneg = ctx.node("GreaterOrEqual", [y, zero])
    left = ctx.node(
        "Where", [y_nonneg, ctx.node("Add", [a, pi]), ctx.node("Sub", [a, pi])]
    )  # x < 0
    on_axis = ctx.node("Mul", [ctx.node("Sign", [y]), half])  # x == 0
    res = ctx.node("Where", [ctx.node("Less", [x, zero]), left, on_axis])
    return ctx.node("Where", [ctx.node("Greater", [x, zero]), a, res])


@lowers("hypot")
def _hypot(ctx: Context, e: Eqn) -> str:
    """``sqrt(x*x + y*y)`` (overflows where the squares do, unlike a scaled hypot)."""
    x, y, _ = _float_pair(ctx, e)
    sq = ctx.node("Add", [ctx.node("Mul", [x, x]), ctx.node("Mul", [y, y])])
    return ctx.node("Sqrt", [sq])


def _signbit_of(ctx: Context, x: str, dt: np.dtype) -> str:
    """``x < 0 or 1/x < 0`` (the second catches -0.0; a negative NaN reads as positive)."""
    zero = ctx.const(0, dt)
    neg = ctx.node("Less", [x, zero])
    if not np.issubdtype(dt, np.floating):
        return neg
    return ctx.node("Or", [neg, ctx.node("Less", [ctx.node("Reciprocal", [x]), zero])])


@lowers("signbit")
def _signbit(ctx: Context, e: Eqn) -> str:
    """See :func:`_signbit_of`; booleans are never negative."""
    dt = _in_dtype(e)
    x = ctx.inp(e.inputs[0])
    if dt == np.bool_:
        return ctx.node("Not", [ctx.node("Equal", [x, x])])
    return _signbit_of(ctx, x, dt)


@lowers("copysign")
def _copysign(ctx: Context, e: Eqn) -> str:
    """``where(signbit(y), -|x|, |x|)``."""
    x, y, dt = _float_pair(ctx, e)
    ax = ctx.node("Abs", [x])
    return ctx.node("Where", [_signbit_of(ctx, y, dt), ctx.node("Neg", [ax]), ax])


def _logaddexp(base2: bool):
    def lower(ctx: Context, e: Eqn) -> str:
        a, b, dt = _float_pair(ctx, e)
        m = ctx.node("Max", [a, b])
        m = ctx.node("Where", [ctx.node("IsInf", [m]), ctx.const(0, dt), m])
        if base2:
            two = ctx.const(2, dt)
            s = ctx.node(
                "Add",
                [
                    ctx.node("Pow", [two, ctx.node("Sub", [a, m])]),
                    ctx.node("Pow", [two, ctx.node("Sub", [b, m])]),
                ],
            )
            lg = ctx.node("Div", [ctx.node("Log", [s]), ctx.const(math.log(2.0), dt)])
        else:
            s = ctx.node(
                "Add",
                [
                    ctx.node("Exp", [ctx.node("Sub", [a, m])]),
                    ctx.node("Exp", [ctx.node("Sub", [b, m])]),
                ],
            )
            lg = ctx.node("Log", [s])
        return ctx.node("Add", [m, lg])

    base = "2" if base2 else "e"
    lower.__doc__ = (
        f"``m + log_{base}({base}**(a-m) + {base}**(b-m))`` with ``m = max(a, b)`` (0 where "
        "that is infinite, so two -inf give -inf)."
    )
    return lower


LOWERINGS["logaddexp"] = _logaddexp(False)
LOWERINGS["logaddexp2"] = _logaddexp(True)


def _fmaxmin(op: str):
    def lower(ctx: Context, e: Eqn) -> str:
        a, b, dt = _float_pair(ctx, e)
        r = ctx.node(op, [a, b])
        if not np.issubdtype(dt, np.floating):
            return r
        r = ctx.node("Where", [ctx.node("IsNaN", [b]), a, r])
        return ctx.node("Where", [ctx.node("IsNaN", [a]), b, r])

    lower.__doc__ = f"NaN-ignoring {op}: ``where(isnan(a), b, where(isnan(b), a, {op}(a, b)))``."
    return lower


LOWERINGS["fmax"] = _fmaxmin("Max")
LOWERINGS["fmin"] = _fmaxmin("Min")


@lowers("isin")
def _isin(ctx: Context, e: Eqn) -> str:
    """Every element against every test value: ``Equal(x[..., None], t.ravel())``, any over
    the last axis (``Not`` of it for ``invert``)."""
    dt = _in_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    t = ctx.node("Reshape", [ctx.inp(e.inputs[1], dt), ctx.ints([-1])])
    eq = ctx.node("Equal", [ctx.node("Unsqueeze", [x, ctx.ints([-1])]), t])
    hit = ctx.reduce("ReduceMax", ctx.cast(eq, np.int32), [-1], False)
    hit = ctx.cast(hit, np.bool_)
    return ctx.node("Not", [hit]) if e.params.get("invert", False) else hit


# -- normalization, attention ----------------------------------------------------------------


@lowers("rms_norm")
def _rms_norm(ctx: Context, e: Eqn) -> str:
    """RMSNormalization (opset 23); before it ``x / sqrt(mean(x*x) + eps) * w`` over the last
    ``k`` axes."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    k, eps = int(e.params["k"]), float(e.params["eps"])
    has_w = len(e.inputs) > 1 and not (
        isinstance(e.inputs[1], Literal) and e.inputs[1].value is None
    )
    nd = e.inputs[0].ndim
    if ctx.opset >= 23:
        if has_w:
            w = ctx.inp(e.inputs[1], dt)
        else:
            tail = e.inputs[0].shape[nd - k :]
            if any(isinstance(d, Dim) for d in tail):
                raise Unsupported("rms_norm without a weight over a symbolic axis")
            w = ctx.const(np.ones(tuple(int(d) for d in tail), dt))
        return ctx.node("RMSNormalization", [x, w], axis=-k, epsilon=eps, stash_type=1)
    ms = ctx.reduce("ReduceMean", ctx.node("Mul", [x, x]), list(range(nd - k, nd)), True)
    r = ctx.node("Reciprocal", [ctx.node("Sqrt", [ctx.node("Add", [ms, ctx.const(eps, dt)])])])
    y = ctx.node("Mul", [x, r])
    return ctx.node("Mul", [y, ctx.inp(e.inputs[1], dt)]) if has_w else y


@lowers("softmax_scale_mask")
def _softmax_scale_mask(ctx: Context, e: Eqn) -> str:
    """``Softmax(x * scale + mask)`` over the last axis."""
    dt = out_dtype(e)
    z = ctx.node("Mul", [ctx.inp(e.inputs[0], dt), ctx.const(float(e.params["scale"]), dt)])
    if e.params.get("masked", False):
        z = ctx.node("Add", [z, ctx.inp(e.inputs[1], dt)])
    return ctx.node("Softmax", [z], axis=-1)


# -- losses ----------------------------------------------------------------------------------


def _loss(op: str):
    def lower(ctx: Context, e: Eqn) -> str:
        dt = out_dtype(e)
        ins = [ctx.inp(e.inputs[0], dt), ctx.inp(e.inputs[1], np.int64)]
        if len(e.inputs) > 2:
            ins.append(ctx.inp(e.inputs[2], dt))
        p = e.params
        if p.get("label_smoothing", 0.0):
            raise Unsupported(
                f"{e.prim.name} with label_smoothing={p['label_smoothing']} "
                f"({op} has no label smoothing; export the loss with label_smoothing=0)"
            )
        out = ctx.node(op, ins, reduction=p["reduction"], ignore_index=int(p["ignore_index"]))
        return out

    lower.__doc__ = (
        f"{op} (class weights, ignore_index and the reduction as attributes; targets out of "
        "range are undefined in ONNX, an error in eager mode)."
    )
    return lower


LOWERINGS["nll_loss"] = _loss("NegativeLogLikelihoodLoss")
LOWERINGS["cross_entropy"] = _loss("SoftmaxCrossEntropyLoss")


# -- sorting, scans --------------------------------------------------------------------------


def _dim_of(e: Eqn) -> int:
    d = int(e.params["dim"])
    return d + e.inputs[0].ndim if d < 0 else d


@lowers("argsort")
def _argsort(ctx: Context, e: Eqn) -> str:
    """TopK's indices with ``k`` = the axis length (ties: ONNX orders equal values by index,
    like a stable sort)."""
    x = ctx.inp(e.inputs[0])
    d = _dim_of(e)
    if e.inputs[0].ndim == 0:
        return ctx.node("Identity", [ctx.const(np.int64(0))])
    k = ctx.node("Shape", [x], start=d, end=d + 1)
    largest = int(bool(e.params.get("descending", False)))
    _, idx = ctx.node("TopK", [x, k], n_out=2, axis=d, largest=largest, sorted=1)
    return idx


def _static_len(e: Eqn, d: int) -> int:
    n = e.inputs[0].shape[d]
    if isinstance(n, Dim):
        raise Unsupported(f"{e.prim.name} along a symbolic axis (the triangle needs its length)")
    return int(n)


def _triangle(ctx: Context, x: str, d: int, nd: int, n: int, reducer: str, fill: str) -> str:
    """``out[i] = reduce_{j <= i} x[j]`` along axis ``d`` (length ``n``): ``x`` broadcast to
    an ``n x n`` lower triangle (``fill`` above it) and reduced over ``j``."""
    tri = np.tril(np.ones((n, n), np.bool_)).reshape((n, n) + (1,) * (nd - d - 1))
    xu = ctx.node("Unsqueeze", [x, ctx.ints([d])])
    m = ctx.node("Where", [ctx.const(tri), xu, fill])
    return ctx.reduce(reducer, m, [d + 1], False)


def _triangle_scan(ctx: Context, e: Eqn, reducer: str, fill: float) -> str:
    dt = out_dtype(e)
    d = _dim_of(e)
    n = _static_len(e, d)
    x = ctx.inp(e.inputs[0], dt)
    return _triangle(ctx, x, d, e.inputs[0].ndim, n, reducer, ctx.const(fill, dt))


@lowers("cumprod")
def _cumprod(ctx: Context, e: Eqn) -> str:
    """ReduceProd over a lower-triangular broadcast (ones above the diagonal): exact for
    zeros, negatives and NaN, ``O(n^2)`` in the axis length."""
    return _triangle_scan(ctx, e, "ReduceProd", 1.0)


@lowers("logcumsumexp")
def _logcumsumexp(ctx: Context, e: Eqn) -> str:
    """ReduceLogSumExp over a lower-triangular broadcast (-inf above the diagonal)."""
    return _triangle_scan(ctx, e, "ReduceLogSumExp", -math.inf)


@lowers("cum_arg")
def _cum_arg(ctx: Context, e: Eqn) -> str:
    """The index of the running max (min): the last ``j <= i`` where ``x[j]`` equals the
    running extreme at ``j`` (or, once a NaN was seen, is NaN), each a triangle reduction
    (``O(n^2)`` in the axis length, which must be static)."""
    dt = e.inputs[0].dtype.np
    x = ctx.inp(e.inputs[0])
    d, nd = _dim_of(e), e.inputs[0].ndim
    n = _static_len(e, d)
    largest = bool(e.params["largest"])
    if np.issubdtype(dt, np.floating):
        lim = -np.inf if largest else np.inf
    elif dt == np.bool_:
        x, dt = ctx.cast(x, np.int64), np.dtype(np.int64)
        lim = np.iinfo(dt).min if largest else np.iinfo(dt).max
    else:
        lim = np.iinfo(dt).min if largest else np.iinfo(dt).max
    vals = _triangle(ctx, x, d, nd, n, "ReduceMax" if largest else "ReduceMin", ctx.const(lim, dt))
    hit = ctx.node("Equal", [x, vals])
    if np.issubdtype(dt, np.floating):
        nan = ctx.node("IsNaN", [x])
        nan_i = ctx.cast(nan, np.int64)  # (ORT's Where takes no int32)
        seen = _triangle(ctx, nan_i, d, nd, n, "ReduceMax", ctx.const(np.int64(0)))
        seen = ctx.cast(seen, np.bool_)  # (ORT's Where takes no bool values: And/Or)
        hit = ctx.node(
            "Or", [ctx.node("And", [seen, nan]), ctx.node("And", [ctx.node("Not", [seen]), hit])]
        )
    shape = [n if i == d else 1 for i in range(nd)]
    iota = ctx.const(np.arange(n, dtype=np.int64).reshape(shape))
    marks = ctx.node("Where", [hit, iota, ctx.const(np.int64(0))])
    return _triangle(ctx, marks, d, nd, n, "ReduceMax", ctx.const(np.int64(0)))


@lowers("histc")
def _histc(ctx: Context, e: Eqn) -> str:
    """Bin ``floor((x - lo) * bins / (hi - lo))`` (the top edge in the last bin) counted by a
    one-hot sum; with ``lo == hi`` the range is the data's min and max (widened by 1 when
    those are equal)."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    bins, lo, hi = int(e.params["bins"]), float(e.params["lo"]), float(e.params["hi"])
    if lo == hi:
        one = ctx.const(1, dt)
        lo_t = ctx.reduce("ReduceMin", x, None, False)
        hi_t = ctx.reduce("ReduceMax", x, None, False)
        same = ctx.node("Equal", [lo_t, hi_t])
        lo_t = ctx.node("Where", [same, ctx.node("Sub", [lo_t, one]), lo_t])
        hi_t = ctx.node("Where", [same, ctx.node("Add", [hi_t, one]), hi_t])
    else:
        lo_t, hi_t = ctx.const(lo, dt), ctx.const(hi, dt)
    width = ctx.node("Sub", [hi_t, lo_t])
    pos = ctx.node(
        "Div", [ctx.node("Mul", [ctx.node("Sub", [x, lo_t]), ctx.const(bins, dt)]), width]
    )
    idx = ctx.node("Min", [ctx.node("Floor", [pos]), ctx.const(bins - 1, dt)])
    inside = ctx.node(
        "And", [ctx.node("GreaterOrEqual", [x, lo_t]), ctx.node("LessOrEqual", [x, hi_t])]
    )
    flat_idx = ctx.node(
        "Reshape", [ctx.node("Where", [inside, idx, ctx.const(-1, dt)]), ctx.ints([-1])]
    )
    onehot = ctx.node(
        "Equal",
        [ctx.node("Unsqueeze", [flat_idx, ctx.ints([-1])]), ctx.const(np.arange(bins, dtype=dt))],
    )
    return ctx.reduce("ReduceSum", ctx.cast(onehot, dt), [0], False)


@lowers("searchsorted")
def _searchsorted(ctx: Context, e: Eqn) -> str:
    """For a 1-D sorted sequence: the count of its entries ``< v`` (``<=`` for ``side='right'``)."""
    s, v = e.inputs[:2]
    if s.ndim != 1:
        raise Unsupported("searchsorted with an N-D sorted sequence (1-D only)")
    dt = _in_dtype(e)
    op = "LessOrEqual" if e.params.get("side", "left") == "right" else "Less"
    below = ctx.node(op, [ctx.inp(s, dt), ctx.node("Unsqueeze", [ctx.inp(v, dt), ctx.ints([-1])])])
    n = ctx.reduce("ReduceSum", ctx.cast(below, np.int64), [-1], False)
    return ctx.cast(n, out_dtype(e)) if out_dtype(e) != np.int64 else n


# -- norms, linear algebra -------------------------------------------------------------------


@lowers("linalg_vector_norm")
def _vector_norm(ctx: Context, e: Eqn) -> str:
    """ReduceL1 / ReduceL2 for ord 1 / 2, max / min of ``|x|`` for +-inf, the count of
    nonzeros for 0, else ``sum(|x|**p) ** (1/p)``."""
    dt = out_dtype(e)
    x = ctx.inp(e.inputs[0], dt)
    p = float(e.params.get("ord", 2.0))
    axes, keep = _axes(e), e.params.get("keepdim", False)
    if p == 2.0:
        return ctx.reduce("ReduceL2", x, axes, keep)
    if p == 1.0:
        return ctx.reduce("ReduceL1", x, axes, keep)
    ax = ctx.node("Abs", [x])
    if math.isinf(p):
        return ctx.reduce("ReduceMax" if p > 0 else "ReduceMin", ax, axes, keep)
    if p == 0.0:
        nz = ctx.cast(ctx.node("Not", [ctx.node("Equal", [x, ctx.const(0, dt)])]), dt)
        return ctx.reduce("ReduceSum", nz, axes, keep)
    s = ctx.reduce("ReduceSum", ctx.node("Pow", [ax, ctx.const(p, dt)]), axes, keep)
    return ctx.node("Pow", [s, ctx.const(1.0 / p, dt)])


@lowers("linalg_det")
def _det(ctx: Context, e: Eqn) -> str:
    return ctx.node("Det", [ctx.inp(e.inputs[0], out_dtype(e))])


@lowers("linalg_slogdet")
def _slogdet(ctx: Context, e: Eqn) -> list[str]:
    """``sign(det)`` and ``log|det|`` from Det (under/overflows where the determinant does,
    which slogdet's LU avoids)."""
    d = ctx.node("Det", [ctx.inp(e.inputs[0], out_dtype(e))])
    return [ctx.node("Sign", [d]), ctx.node("Log", [ctx.node("Abs", [d])])]


# -- bit shifts ------------------------------------------------------------------------------

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _shift(direction: str):
    def lower(ctx: Context, e: Eqn) -> str:
        dt = out_dtype(e)
        if dt == np.bool_ or not np.issubdtype(dt, np.integer):
            raise Unsupported(f"bit shifts of {dt} (integers only)")
        x, s = (ctx.inp(v, dt) for v in e.inputs[:2])

        def ushift(v: str, u: type) -> str:
            """``v`` reinterpreted as the unsigned type ``u`` and shifted."""
            return ctx.node("BitShift", [ctx.cast(v, u), ctx.cast(s, u)], direction=direction)

        u = _UNSIGNED[dt.itemsize]
        if dt == u:
            return ushift(x, u)
        if direction == "LEFT":  # two's complement: the same bits as the unsigned shift
            return ctx.cast(ushift(x, u), dt)
        # arithmetic right shift: x >> s == ~(~x >> s) for negative x, and ~v == -v - 1;
        # in int64 (onnxruntime's Where has no int8/int16 kernels), then back to dt
        w = np.dtype(np.int64)
        x = ctx.cast(x, w) if dt != w else x
        one = ctx.const(1, w)
        inv = ctx.node("Sub", [ctx.node("Neg", [x]), one])
        neg = ctx.node("Sub", [ctx.node("Neg", [ctx.cast(ushift(inv, np.uint64), w)]), one])
        pos = ctx.cast(ushift(x, np.uint64), w)
        r = ctx.node("Where", [ctx.node("Less", [x, ctx.const(0, w)]), neg, pos])
        return ctx.cast(r, dt) if dt != w else r

    lower.__doc__ = (
        f"BitShift {direction} (ONNX's takes unsigned integers only): signed values shift "
        "their unsigned reinterpretation"
        + (", negatives right-shifted as ``~(~x >> s)``" if direction == "RIGHT" else "")
        + " (shift counts in ``[0, bits)``)."
    )
    return lower


LOWERINGS["bitwise_left_shift"] = _shift("LEFT")
LOWERINGS["bitwise_right_shift"] = _shift("RIGHT")


# -- gcd / lcm -------------------------------------------------------------------------------

# Euclid's algorithm takes the most steps on consecutive Fibonacci numbers: F(93) is the
# largest below 2**63, so 92 steps finish every int64 pair (46 every int32 pair)
_EUCLID_STEPS = {1: 12, 2: 23, 4: 46, 8: 92}


def _gcd_of(ctx: Context, a: str, b: str, steps: int) -> str:
    """Euclid unrolled ``steps`` times on ``|a|, |b|`` in int64 (pairs already done pass
    through: ``b == 0`` is kept, and Mod never sees a zero divisor)."""
    zero, one = ctx.const(np.int64(0)), ctx.const(np.int64(1))
    a, b = ctx.node("Abs", [a]), ctx.node("Abs", [b])
    for _ in range(steps):
        done = ctx.node("Equal", [b, zero])
        r = ctx.node("Mod", [a, ctx.node("Where", [done, one, b])], fmod=0)
        a, b = ctx.node("Where", [done, a, b]), ctx.node("Where", [done, zero, r])
    return a


@lowers("gcd")
def _gcd(ctx: Context, e: Eqn) -> str:
    """Euclid's algorithm unrolled to its worst case for the dtype (Fibonacci bound: 92
    steps for int64), in int64."""
    dt = out_dtype(e)
    a, b = (ctx.inp(v, np.int64) for v in e.inputs[:2])
    g = _gcd_of(ctx, a, b, _EUCLID_STEPS[dt.itemsize])
    return ctx.cast(g, dt) if dt != np.int64 else g


@lowers("lcm")
def _lcm(ctx: Context, e: Eqn) -> str:
    """``|a / gcd(a, b) * b|`` (0 where either is 0), with gcd as in ``gcd``."""
    dt = out_dtype(e)
    a, b = (ctx.inp(v, np.int64) for v in e.inputs[:2])
    g = _gcd_of(ctx, a, b, _EUCLID_STEPS[dt.itemsize])
    zero = ctx.const(np.int64(0))
    is0 = ctx.node("Equal", [g, zero])
    q = ctx.node("Div", [a, ctx.node("Where", [is0, ctx.const(np.int64(1)), g])])
    r = ctx.node("Abs", [ctx.node("Mul", [q, b])])
    r = ctx.node("Where", [is0, zero, r])
    return ctx.cast(r, dt) if dt != np.int64 else r


@lowers("mode")
def _mode(ctx: Context, e: Eqn) -> list[str]:
    """Counts by an all-pairs Equal along ``dim`` (NaNs equal each other, as in eager mode),
    the smallest value among the most frequent (NaN sorting last), and its last index
    (``O(n^2)`` in the axis length, which must be static)."""
    d, nd = _dim_of(e), e.inputs[0].ndim
    n = _static_len(e, d)
    src = e.inputs[0].dtype.np
    # (onnxruntime's Where takes no bool, int8 or int16: those run as int64)
    dt = src if (np.issubdtype(src, np.floating) or src.itemsize >= 4) else np.dtype(np.int64)
    x = ctx.inp(e.inputs[0], dt)
    is_float = np.issubdtype(dt, np.floating)
    eq = ctx.node("Equal", [ctx.node("Unsqueeze", [x, ctx.ints([d + 1])]),
                            ctx.node("Unsqueeze", [x, ctx.ints([d])])])  # fmt: skip
    if is_float:
        nan = ctx.node("IsNaN", [x])
        both = ctx.node("And", [ctx.node("Unsqueeze", [nan, ctx.ints([d + 1])]),
                                ctx.node("Unsqueeze", [nan, ctx.ints([d])])])  # fmt: skip
        eq = ctx.node("Or", [eq, both])
    counts = ctx.reduce("ReduceSum", ctx.cast(eq, np.int64), [d + 1], False)
    best = ctx.reduce("ReduceMax", counts, [d], True)
    cand = ctx.node("Equal", [counts, best])
    top = np.inf if is_float else np.iinfo(dt).max
    if is_float:
        num = ctx.node("And", [cand, ctx.node("Not", [nan])])
        v = ctx.reduce("ReduceMin", ctx.node("Where", [num, x, ctx.const(top, dt)]), [d], True)
        any_num = ctx.cast(ctx.reduce("ReduceMax", ctx.cast(num, np.int64), [d], True), np.bool_)
        v = ctx.node("Where", [any_num, v, ctx.const(np.nan, dt)])
        hit = ctx.node("Or", [ctx.node("Equal", [x, v]),
                              ctx.node("And", [nan, ctx.node("IsNaN", [v])])])  # fmt: skip
    else:
        v = ctx.reduce("ReduceMin", ctx.node("Where", [cand, x, ctx.const(top, dt)]), [d], True)
        hit = ctx.node("Equal", [x, v])
    iota = ctx.const(np.arange(n, dtype=np.int64).reshape([n if i == d else 1 for i in range(nd)]))
    idx = ctx.reduce(
        "ReduceMax", ctx.node("Where", [hit, iota, ctx.const(np.int64(-1))]), [d], False
    )
    v = ctx.node("Squeeze", [v, ctx.ints([d])])
    return [ctx.cast(v, src) if dt != src else v, idx]


@lowers("median_all")
def _median_all(ctx: Context, e: Eqn) -> str:
    """The lower median of all elements: the flattened input sorted ascending by TopK
    (``k`` = its length, NaN replaced by +inf so it sorts last) and the element at
    ``(n - 1) // 2`` gathered; a NaN anywhere makes the result NaN (``torch.median``). With
    ``ignore_nan`` (``nanmedian``) the index is ``(valid - 1) // 2`` over the ``valid``
    non-NaN elements, and the result is NaN only when every element is NaN."""
    src = e.inputs[0].dtype.np
    # TopK runs on float32/float64/int32/int64; the other types round-trip exactly
    if src.kind == "f":
        work = np.dtype(np.float32) if src.itemsize < 4 else src
    elif src.kind in "iub":
        work = np.dtype(np.int32) if src.kind == "b" or src.itemsize < 4 else src
        if src.kind == "u" and src.itemsize >= 4:
            work = np.dtype(np.int64)
    else:
        raise Unsupported(f"median of {src} elements")
    x = ctx.node("Reshape", [ctx.inp(e.inputs[0], work), ctx.ints([-1])])
    n = ctx.node("Shape", [x])
    if work.kind == "f":
        nan = ctx.node("IsNaN", [x])
        x = ctx.node("Where", [nan, ctx.const(np.inf, work), x])
    srt, _ = ctx.node("TopK", [x, n], n_out=2, axis=0, largest=0, sorted=1)
    one = ctx.const(np.int64(1))
    two = ctx.const(np.int64(2))
    count = ctx.node("Squeeze", [n, ctx.ints([0])])
    if work.kind == "f" and e.params.get("ignore_nan", False):
        n_nan = ctx.reduce("ReduceSum", ctx.cast(nan, np.int64), None, False)
        valid = ctx.node("Sub", [count, n_nan])
        k = ctx.node("Max", [ctx.node("Sub", [valid, one]), ctx.const(np.int64(0))])
        k = ctx.node("Div", [k, two])
        bad = ctx.node("Equal", [valid, ctx.const(np.int64(0))])
    else:
        k = ctx.node("Div", [ctx.node("Sub", [count, one]), two])
        bad = None
        if work.kind == "f":
            bad = ctx.cast(ctx.reduce("ReduceMax", ctx.cast(nan, np.int64), None, False), np.bool_)
    out = ctx.node("Gather", [srt, k], axis=0)
    if bad is not None:
        out = ctx.node("Where", [bad, ctx.const(np.nan, work), out])
    return out if work == src else ctx.cast(out, src)
