"""Special functions ONNX has no operator for, decomposed into elementwise ONNX ops.

Each one is computed in float64 (and cast back), so the series and rational approximations
below keep float32 results to rounding; the docstrings name the formula. Importing
:mod:`ember.onnx.lowering` registers them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..compiler.ir import Eqn, Literal
from ._context import Context, Unsupported
from .lowering import LOWERINGS, lowers, out_dtype

F64 = np.float64


class _Ops:
    """Small arithmetic helpers over one Context in float64."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def c(self, v: float) -> str:
        return self.ctx.const(v, F64)

    def __getattr__(self, op: str):  # add, sub, mul, div ... -> the ONNX op of that name
        onnx_op = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "where": "Where"}
        onnx_op.update({"log": "Log", "exp": "Exp", "sin": "Sin", "sqrt": "Sqrt"})
        onnx_op.update({"abs": "Abs", "floor": "Floor", "neg": "Neg", "lt": "Less", "eq": "Equal"})
        name = onnx_op[op]
        return lambda *ins: self.ctx.node(name, list(ins))

    def horner(self, w: str, coefs: Sequence[float]) -> str:
        p = self.c(coefs[0])
        for k in coefs[1:]:
            p = self.add(self.mul(p, w), self.c(k))
        return p


def _in64(ctx: Context, e: Eqn) -> tuple[str, np.dtype]:
    return ctx.inp(e.inputs[0], F64), out_dtype(e)


@lowers("spherical_bessel_j0")
def _sph_j0(ctx: Context, e: Eqn) -> str:
    """``sin(x) / x``, 1 at 0."""
    x, dt = _in64(ctx, e)
    o = _Ops(ctx)
    zero = o.eq(x, o.c(0.0))
    safe = o.where(zero, o.c(1.0), x)
    return ctx.cast(o.where(zero, o.c(1.0), o.div(o.sin(safe), safe)), dt)


# Giles' single-precision erfinv polynomials in w = -log(1 - x^2), good to a few float32
# ulps (no Newton step: onnxruntime's Erf has no float64 kernel to refine with).
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727,
                   1.50140941)  # fmt: skip
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)  # fmt: skip


def _erfinv_of(ctx: Context, x: str) -> str:
    o = _Ops(ctx)
    one = o.c(1.0)
    w = o.neg(o.log(o.mul(o.sub(one, x), o.add(one, x))))
    central = o.horner(o.sub(w, o.c(2.5)), _ERFINV_CENTRAL)
    tail = o.horner(o.sub(o.sqrt(w), o.c(3.0)), _ERFINV_TAIL)
    y = o.mul(o.where(o.lt(w, o.c(5.0)), central, tail), x)
    # the polynomial in w = inf has the wrong sign at +-1: erfinv(+-1) = +-inf
    inf = o.where(o.lt(x, o.c(0.0)), o.c(-math.inf), o.c(math.inf))
    return o.where(o.eq(o.abs(x), one), inf, y)


@lowers("erfinv")
def _erfinv(ctx: Context, e: Eqn) -> str:
    """Giles' polynomial approximation (+-inf at +-1, NaN outside)."""
    x, dt = _in64(ctx, e)
    return ctx.cast(_erfinv_of(ctx, x), dt)


@lowers("ndtri")
def _ndtri(ctx: Context, e: Eqn) -> str:
    """``sqrt 2 * erfinv(2p - 1)`` (see ``erfinv``; relative precision is lost for p near
    0, where ``2p - 1`` rounds)."""
    p, dt = _in64(ctx, e)
    o = _Ops(ctx)
    y = _erfinv_of(ctx, o.sub(o.mul(p, o.c(2.0)), o.c(1.0)))
    return ctx.cast(o.mul(y, o.c(math.sqrt(2))), dt)


_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012,
            9.9843695780195716e-6, 1.5056327351493116e-7)  # fmt: skip


def _lgamma_pos(o: _Ops, x: str) -> str:
    """Lanczos (g = 7) for ``x >= 0.5``."""
    z = o.sub(x, o.c(1.0))
    a = o.c(_LANCZOS[0])
    for i, c in enumerate(_LANCZOS[1:], start=1):
        a = o.add(a, o.div(o.c(c), o.add(z, o.c(float(i)))))
    t = o.add(z, o.c(_LANCZOS_G + 0.5))
    s = o.add(o.c(0.5 * math.log(2 * math.pi)), o.mul(o.add(z, o.c(0.5)), o.log(t)))
    return o.add(o.sub(s, t), o.log(a))


@lowers("lgamma")
def _lgamma(ctx: Context, e: Eqn) -> str:
    """Lanczos (g = 7, 9 terms) for ``x >= 0.5``; below, the reflection
    ``log(pi / |sin(pi x)|) - lgamma(1 - x)``; +inf at the poles (0, -1, -2, ...)."""
    x, dt = _in64(ctx, e)
    o = _Ops(ctx)
    small = o.lt(x, o.c(0.5))
    xr = o.where(small, o.sub(o.c(1.0), x), x)  # >= 0.5 on both branches
    g = _lgamma_pos(o, xr)
    refl = o.sub(o.log(o.div(o.c(math.pi), o.abs(o.sin(o.mul(x, o.c(math.pi)))))), g)
    pole = ctx.node("And", [o.eq(x, o.floor(x)), ctx.node("LessOrEqual", [x, o.c(0.0)])])
    y = o.where(small, refl, g)
    return ctx.cast(o.where(pole, o.c(math.inf), y), dt)


_DIGAMMA_SHIFT = 6


@lowers("digamma")
def _digamma(ctx: Context, e: Eqn) -> str:
    """``psi(x) = psi(x + 6) - sum 1/(x + k)`` with the asymptotic series at ``x + 6``; for
    ``x < 0.5`` the reflection ``psi(1 - x) - pi / tan(pi x)``; -inf at 0, NaN at the
    negative integers."""
    x, dt = _in64(ctx, e)
    o = _Ops(ctx)
    small = o.lt(x, o.c(0.5))
    xr = o.where(small, o.sub(o.c(1.0), x), x)
    acc = o.c(0.0)
    for k in range(_DIGAMMA_SHIFT):
        acc = o.add(acc, o.div(o.c(1.0), o.add(xr, o.c(float(k)))))
    y = o.add(xr, o.c(float(_DIGAMMA_SHIFT)))
    r2 = o.div(o.c(1.0), o.mul(y, y))
    # 1/(12 y^2) - 1/(120 y^4) + 1/(252 y^6) - 1/(240 y^8) + 1/(132 y^10), in r2
    series = o.mul(r2, o.horner(r2, (1 / 132, -1 / 240, 1 / 252, -1 / 120, 1 / 12)))
    psi = o.sub(o.sub(o.log(y), o.div(o.c(0.5), y)), series)
    psi = o.sub(psi, acc)
    px = o.mul(x, o.c(math.pi))  # (onnxruntime's Tan has no float64 kernel: cos / sin)
    cot = o.div(ctx.node("Cos", [px]), o.sin(px))
    refl = o.sub(psi, o.mul(o.c(math.pi), cot))
    res = o.where(small, refl, psi)
    neg_int = ctx.node("And", [o.eq(x, o.floor(x)), o.lt(x, o.c(0.0))])
    res = o.where(neg_int, o.c(math.nan), res)
    return ctx.cast(o.where(o.eq(x, o.c(0.0)), o.c(-math.inf), res), dt)


@lowers("frexp")
def _frexp(ctx: Context, e: Eqn) -> list[str]:
    """``e = floor(log2|x|) + 1``, ``m = x / 2**e``, each corrected by one step where the
    log rounded across a power of two; ``(x, 0)`` for zeros, infinities and NaN."""
    x, dt = _in64(ctx, e)
    o = _Ops(ctx)
    one = o.c(1.0)
    nonfinite = ctx.node("Or", [ctx.node("IsNaN", [x]), ctx.node("IsInf", [x])])
    special = ctx.node("Or", [nonfinite, o.eq(x, o.c(0.0))])
    ax = o.where(special, one, o.abs(x))
    ex = o.add(o.floor(o.div(o.log(ax), o.c(math.log(2.0)))), one)
    m = o.div(o.where(special, one, x), ctx.node("Pow", [o.c(2.0), ex]))
    big = ctx.node("GreaterOrEqual", [o.abs(m), one])
    m, ex = o.where(big, o.mul(m, o.c(0.5)), m), o.where(big, o.add(ex, one), ex)
    small = o.lt(o.abs(m), o.c(0.5))
    m, ex = o.where(small, o.mul(m, o.c(2.0)), m), o.where(small, o.sub(ex, one), ex)
    m = o.where(special, x, m)
    ex = o.where(special, o.c(0.0), ex)
    return [ctx.cast(m, dt), ctx.cast(ex, out_dtype(e, 1))]


_I_SPLIT = 30.0  # power series below, the large-argument expansion above
_I_SERIES_TERMS = 60
_I_ASYMPTOTIC_TERMS = 14


def _bessel_i(ctx: Context, x: str, nu: int, scaled: bool) -> str:
    """``I_nu(|x|)`` (times ``exp(-|x|)`` when ``scaled``) in float64."""
    o = _Ops(ctx)
    a = o.abs(x)
    # power series sum_k (a^2/4)^k / (k! (k+nu)!) (times a/2 for nu = 1): positive terms
    s_arg = ctx.node("Min", [a, o.c(_I_SPLIT)])
    q = o.mul(o.mul(s_arg, s_arg), o.c(0.25))
    # nested: 1 + q/(1(1+nu)) (1 + q/(2(2+nu)) (1 + ...)); the plain polynomial's
    # coefficients 1/(k!)^2 fall below float32's range, which onnxruntime's graph
    # optimizations then lose
    series = o.c(1.0)
    for k in range(_I_SERIES_TERMS, 0, -1):
        series = o.add(o.c(1.0), o.mul(series, o.mul(q, o.c(1.0 / (k * (k + nu))))))
    if nu == 1:
        series = o.mul(series, o.mul(s_arg, o.c(0.5)))
    series = o.mul(series, o.exp(o.neg(s_arg))) if scaled else series
    # e^a / sqrt(2 pi a) * sum_k (-1)^k prod_j (4 nu^2 - (2j-1)^2) / (k! (8a)^k)
    l_arg = ctx.node("Max", [a, o.c(_I_SPLIT)])
    mu, ck, coefs = 4.0 * nu * nu, 1.0, [1.0]
    for k in range(1, _I_ASYMPTOTIC_TERMS):
        ck *= -(mu - (2 * k - 1) ** 2) / (k * 8.0)
        coefs.append(ck)
    inv = o.div(o.c(1.0), l_arg)
    asym = o.div(o.horner(inv, coefs[::-1]), o.sqrt(o.mul(l_arg, o.c(2 * math.pi))))
    asym = asym if scaled else o.mul(asym, o.exp(l_arg))
    return o.where(o.lt(a, o.c(_I_SPLIT)), series, asym)


def _bessel_lowering(nu: int, scaled: bool):
    def lower(ctx: Context, e: Eqn) -> str:
        x, dt = _in64(ctx, e)
        y = _bessel_i(ctx, x, nu, scaled)
        if nu == 1:  # odd
            y = _odd(ctx, x, y)
        return ctx.cast(y, dt)

    lower.__doc__ = (
        f"Modified Bessel ``I_{nu}``{' times exp(-|x|)' if scaled else ''}: the power series "
        f"below |x| = {_I_SPLIT:g}, the large-argument expansion above (float64)."
    )
    return lower


def _odd(ctx: Context, x: str, y: str) -> str:
    return ctx.node("Mul", [ctx.node("Sign", [x]), y])


for _n, _nu, _scaled in [
    ("i0", 0, False),
    ("modified_bessel_i0", 0, False),
    ("i0e", 0, True),
    ("i1", 1, False),
    ("modified_bessel_i1", 1, False),
    ("i1e", 1, True),
]:
    LOWERINGS[_n] = _bessel_lowering(_nu, _scaled)


# -- orthogonal polynomials ------------------------------------------------------------------


def _poly_lowering(kind: str):
    def lower(ctx: Context, e: Eqn) -> str:
        x_v, n_v = e.inputs
        if not isinstance(n_v, Literal):
            raise Unsupported(
                f"{e.prim.name} with the degree as a tensor (the recurrence is unrolled, so the "
                "degree must be a constant at export time)"
            )
        dt = out_dtype(e)
        x = ctx.inp(x_v, dt)
        n = np.asarray(n_v.value).astype(np.int64)
        base = kind
        if kind.startswith("shifted_"):
            x = ctx.node("Sub", [ctx.node("Mul", [ctx.const(2, dt), x]), ctx.const(1, dt)])
            base = kind[len("shifted_") :]

        def c(v: float) -> str:
            return ctx.const(v, dt)

        def mul(a: str, b: str) -> str:
            return ctx.node("Mul", [a, b])

        def sub(a: str, b: str) -> str:
            return ctx.node("Sub", [a, b])

        one = ctx.node("Add", [mul(x, c(0)), c(1)])  # ones shaped like x
        two_x = mul(c(2), x)
        first = {
            "t": x,
            "u": two_x,
            "v": sub(two_x, c(1)),
            "w": ctx.node("Add", [two_x, c(1)]),
            "h": two_x,
            "he": x,
            "l": sub(c(1), x),
            "p": x,
        }[base]
        top = int(n.max()) if n.size else 0
        by_degree = [one, first]
        prev, cur = one, first
        for k in range(1, top):
            if base in ("t", "u", "v", "w"):
                nxt = sub(mul(two_x, cur), prev)
            elif base == "h":
                nxt = sub(mul(two_x, cur), mul(c(2 * k), prev))
            elif base == "he":
                nxt = sub(mul(x, cur), mul(c(k), prev))
            elif base == "l":
                nxt = sub(mul(sub(c(2 * k + 1), x), cur), mul(c(k), prev))
                nxt = ctx.node("Div", [nxt, c(k + 1)])
            else:  # legendre
                nxt = sub(mul(mul(c(2 * k + 1), x), cur), mul(c(k), prev))
                nxt = ctx.node("Div", [nxt, c(k + 1)])
            prev, cur = cur, nxt
            by_degree.append(cur)
        if n.ndim == 0:
            return by_degree[int(n)] if n >= 0 else mul(x, c(0))
        out = mul(x, c(0))  # degree < 0 gives 0
        n_name = ctx.const(n)
        for k, val in enumerate(by_degree[: top + 1]):
            out = ctx.node("Where", [ctx.node("Equal", [n_name, ctx.const(np.int64(k))]), val, out])
        return out

    lower.__doc__ = (
        f"The three-term recurrence of ``{kind}_polynomial`` unrolled to the (constant) degree."
    )
    return lower


for _kind in ("t", "u", "v", "w", "h", "he", "l", "p"):
    LOWERINGS[f"{_kind}_polynomial"] = _poly_lowering(_kind)
    if _kind in ("t", "u", "v", "w"):
        LOWERINGS[f"shifted_{_kind}_polynomial"] = _poly_lowering(f"shifted_{_kind}")


# -- Bessel J, Y and K of orders 0 and 1 -----------------------------------------------------

_EULER_GAMMA = 0.5772156649015329
_JY_SPLIT = 12.0  # power series below, Hankel's expansion above
_K_SPLIT = 9.0  # (the K series cancels like e^2x; the expansion errs like e^-2x)
_SERIES_TERMS = 40
_HANKEL_TERMS = 20


def _nested(o: _Ops, q: str, coefs: Sequence[float]) -> str:
    """``sum_k coefs[k] q^k`` as ``c0 (1 + (c1/c0) q (1 + (c2/c1) q (...)))`` (the plain
    coefficients get tiny enough for onnxruntime's graph optimizations to lose them)."""
    p = o.c(1.0)
    for k in range(len(coefs) - 1, 0, -1):
        p = o.add(o.c(1.0), o.mul(p, o.mul(q, o.c(coefs[k] / coefs[k - 1]))))
    return o.mul(p, o.c(coefs[0]))


def _harmonic(k: int) -> float:
    return sum(1.0 / j for j in range(1, k + 1))


def _psi_int(k: int) -> float:
    """digamma(k) for a positive integer k."""
    return _harmonic(k - 1) - _EULER_GAMMA


def _fact(k: int) -> float:
    return float(math.factorial(k))


def _asym_coefs(nu: int, n: int) -> list[float]:
    """``a_k = prod_{j<=k} (4 nu^2 - (2j-1)^2) / (k! 8^k)`` for k < n."""
    mu, c, out = 4.0 * nu * nu, 1.0, [1.0]
    for k in range(1, n):
        c *= (mu - (2 * k - 1) ** 2) / (k * 8.0)
        out.append(c)
    return out


def _jy_series(o: _Ops, x: str, nu: int, kind: str) -> str:
    """The power series of J_nu or Y_nu at ``0 < x < 12`` (J: any x)."""
    q = o.mul(o.mul(x, x), o.c(0.25))
    n = _SERIES_TERMS
    j = _nested(o, q, [(-1) ** k / (_fact(k) * _fact(k + nu)) for k in range(n)])
    if nu == 1:
        j = o.mul(j, o.mul(x, o.c(0.5)))
    if kind == "j":
        return j
    log_half = o.log(o.mul(x, o.c(0.5)))
    if nu == 0:
        s = _nested(o, q, [(-1) ** k * _harmonic(k + 1) / _fact(k + 1) ** 2 for k in range(n)])
        s = o.mul(s, q)  # the sum starts at k = 1
        lead = o.mul(o.add(log_half, o.c(_EULER_GAMMA)), j)
        return o.mul(o.add(lead, s), o.c(2 / math.pi))
    s = _nested(
        o,
        q,
        [
            (-1) ** k * (_psi_int(k + 1) + _psi_int(k + 2)) / (_fact(k) * _fact(k + 1))
            for k in range(n)
        ],
    )
    s = o.mul(s, o.mul(x, o.c(0.5 / math.pi)))
    y = o.sub(o.mul(o.mul(log_half, j), o.c(2 / math.pi)), s)
    return o.sub(y, o.div(o.c(2 / math.pi), x))


def _jy_hankel(o: _Ops, ctx: Context, x: str, nu: int, kind: str) -> str:
    """``sqrt(2/(pi x)) (P cos chi - Q sin chi)`` for J (``P sin chi + Q cos chi`` for Y),
    ``chi = x - (nu/2 + 1/4) pi``."""
    a = _asym_coefs(nu, 2 * _HANKEL_TERMS)
    w = o.div(o.c(1.0), o.mul(x, x))
    p = o.horner(w, [(-1) ** k * a[2 * k] for k in range(_HANKEL_TERMS)][::-1])
    qq = o.horner(w, [(-1) ** k * a[2 * k + 1] for k in range(_HANKEL_TERMS)][::-1])
    qq = o.div(qq, x)
    chi = o.sub(x, o.c((nu / 2 + 0.25) * math.pi))
    c, s = ctx.node("Cos", [chi]), o.sin(chi)
    if kind == "j":
        v = o.sub(o.mul(p, c), o.mul(qq, s))
    else:
        v = o.add(o.mul(p, s), o.mul(qq, c))
    return o.mul(v, o.sqrt(o.div(o.c(2 / math.pi), x)))


def _bessel_jy(nu: int, kind: str):
    def lower(ctx: Context, e: Eqn) -> str:
        x, dt = _in64(ctx, e)
        o = _Ops(ctx)
        ax = o.abs(x) if kind == "j" else x
        small = o.lt(ax, o.c(_JY_SPLIT))
        lo = ctx.node("Min", [ax, o.c(_JY_SPLIT)])
        if kind == "y":  # the series' logs: a positive stand-in where the result is fixed
            lo = o.where(ctx.node("Greater", [lo, o.c(0.0)]), lo, o.c(1.0))
        hi = ctx.node("Max", [ax, o.c(_JY_SPLIT)])
        r = o.where(small, _jy_series(o, lo, nu, kind), _jy_hankel(o, ctx, hi, nu, kind))
        if kind == "j" and nu == 1:
            r = _odd(ctx, x, r)
        if kind == "y":
            r = o.where(o.eq(x, o.c(0.0)), o.c(-math.inf), r)
            r = o.where(o.lt(x, o.c(0.0)), o.c(math.nan), r)
        return ctx.cast(r, dt)

    lower.__doc__ = (
        f"Bessel ``{kind.upper()}_{nu}``: the power series below |x| = {_JY_SPLIT:g}, Hankel's "
        "asymptotic expansion above (float64)."
    )
    return lower


def _bessel_k(nu: int, scaled: bool):
    def lower(ctx: Context, e: Eqn) -> str:
        x, dt = _in64(ctx, e)
        o = _Ops(ctx)
        pos = ctx.node("Greater", [x, o.c(0.0)])
        lo = o.where(pos, ctx.node("Min", [x, o.c(_K_SPLIT)]), o.c(1.0))
        q = o.mul(o.mul(lo, lo), o.c(0.25))
        n = _SERIES_TERMS
        log_half = o.log(o.mul(lo, o.c(0.5)))
        i_nu = _bessel_i(ctx, lo, nu, False)
        if nu == 0:
            s = _nested(o, q, [_harmonic(k + 1) / _fact(k + 1) ** 2 for k in range(n)])
            series = o.sub(o.mul(q, s), o.mul(o.add(log_half, o.c(_EULER_GAMMA)), i_nu))
        else:
            s = _nested(
                o,
                q,
                [(_psi_int(k + 1) + _psi_int(k + 2)) / (_fact(k) * _fact(k + 1)) for k in range(n)],
            )
            series = o.add(o.div(o.c(1.0), lo), o.mul(log_half, i_nu))
            series = o.sub(series, o.mul(s, o.mul(lo, o.c(0.25))))
        if scaled:
            series = o.mul(series, o.exp(lo))
        hi = ctx.node("Max", [x, o.c(_K_SPLIT)])
        asym = o.horner(o.div(o.c(1.0), hi), _asym_coefs(nu, _HANKEL_TERMS)[::-1])
        asym = o.mul(asym, o.sqrt(o.div(o.c(math.pi / 2), hi)))
        if not scaled:
            asym = o.mul(asym, o.exp(o.neg(hi)))
        r = o.where(o.lt(x, o.c(_K_SPLIT)), series, asym)
        r = o.where(o.eq(x, o.c(0.0)), o.c(math.inf), r)
        r = o.where(o.lt(x, o.c(0.0)), o.c(math.nan), r)
        return ctx.cast(r, dt)

    lower.__doc__ = (
        f"Modified Bessel ``K_{nu}``{' times exp(x)' if scaled else ''}: the series (through "
        f"``I_{nu}``) below x = {_K_SPLIT:g}, the large-argument expansion above (float64; "
        "about 1e-8 relative error near the split)."
    )
    return lower


for _n, _nu, _kind in [("bessel_j0", 0, "j"), ("bessel_j1", 1, "j"), ("bessel_y0", 0, "y"),
                       ("bessel_y1", 1, "y")]:  # fmt: skip
    LOWERINGS[_n] = _bessel_jy(_nu, _kind)
for _n, _nu, _scaled in [("modified_bessel_k0", 0, False), ("modified_bessel_k1", 1, False),
                         ("scaled_modified_bessel_k0", 0, True),
                         ("scaled_modified_bessel_k1", 1, True)]:  # fmt: skip
    LOWERINGS[_n] = _bessel_k(_nu, _scaled)


# -- Hurwitz zeta, polygamma -----------------------------------------------------------------

_ZETA_DIRECT = 30  # terms summed directly; Euler-Maclaurin from q + 30 on
_ZETA_MIN_Q = -20.0  # below, q + 30 is too small for the expansion: NaN (documented)
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
              43867 / 798, -174611 / 330, 854513 / 138, -236364091 / 2730)  # fmt: skip


def _zeta_of(ctx: Context, s: str, q: str) -> str:
    """``sum_{k<N} (q+k)^-s`` plus the Euler-Maclaurin tail at ``a = q + N``, with Cephes'
    domain: inf at s == 1 and at q a non-positive integer, NaN for s < 1 and for a
    non-integer q <= 0 with a non-integer s."""
    o = _Ops(ctx)

    def pow_(b: str, p: str) -> str:
        return ctx.node("Pow", [b, p])

    neg_s = o.neg(s)
    total = o.c(0.0)
    for k in range(_ZETA_DIRECT):
        total = o.add(total, pow_(o.add(q, o.c(float(k))), neg_s))
    a = o.add(q, o.c(float(_ZETA_DIRECT)))
    b = pow_(a, neg_s)  # a^-s
    total = o.add(total, o.div(o.mul(b, a), o.sub(s, o.c(1.0))))
    total = o.add(total, o.mul(b, o.c(0.5)))  # (the direct sum stops before a)
    # sum_j B_2j / (2j)! * s (s+1) ... (s+2j-2) * a^(-s-2j+1)
    rising, term_b = o.c(1.0), b
    for j, bern in enumerate(_BERNOULLI, start=1):
        shift = 2.0 * j - 2
        rising = o.mul(rising, o.add(s, o.c(shift)))  # times (s + 2j - 2)
        term_b = o.div(term_b, a)  # a^(-s-2j+1)
        total = o.add(total, o.mul(o.mul(rising, term_b), o.c(bern / _fact(2 * j))))
        rising = o.mul(rising, o.add(s, o.c(shift + 1)))  # (s + 2j - 1), for the next term
        term_b = o.div(term_b, a)
    q_int = o.eq(q, o.floor(q))
    nonpos = ctx.node("LessOrEqual", [q, o.c(0.0)])
    bad_q = ctx.node(
        "Or",
        [
            o.lt(q, o.c(_ZETA_MIN_Q)),
            ctx.node("And", [nonpos, ctx.node("Not", [o.eq(s, o.floor(s))])]),
        ],
    )
    total = o.where(bad_q, o.c(math.nan), total)
    total = o.where(ctx.node("And", [nonpos, q_int]), o.c(math.inf), total)
    total = o.where(o.lt(s, o.c(1.0)), o.c(math.nan), total)
    return o.where(o.eq(s, o.c(1.0)), o.c(math.inf), total)


@lowers("zeta")
def _zeta(ctx: Context, e: Eqn) -> str:
    """Hurwitz ``zeta(s, q)``: 30 terms summed, then Euler-Maclaurin with 12 Bernoulli
    terms (float64); NaN for ``q < -20``, where eager mode still sums."""
    dt = out_dtype(e)
    s, q = (ctx.inp(v, F64) for v in e.inputs[:2])
    return ctx.cast(_zeta_of(ctx, s, q), dt)


@lowers("polygamma")
def _polygamma(ctx: Context, e: Eqn) -> str:
    """``(-1)^(n+1) n! zeta(n + 1, x)`` for ``n >= 1`` (see ``zeta``), digamma's lowering for
    ``n = 0``."""
    n = int(e.params["n"])
    if n == 0:
        return LOWERINGS["digamma"](ctx, e)
    x, dt = _in64(ctx, e)
    z = _zeta_of(ctx, ctx.const(float(n + 1), F64), x)
    return ctx.cast(ctx.node("Mul", [z, ctx.const((-1) ** (n + 1) * _fact(n), F64)]), dt)


# -- erfc to relative precision: erfcx, log_ndtr ---------------------------------------------

_ERF_SERIES_TERMS = 40  # Taylor series of erf, used below x = 2
_ERFC_CF_DEPTH = 60  # continued fraction of erfcx, used from x = 2 on


def _erfcx_pos(ctx: Context, x: str) -> str:
    """``erfcx(x) = exp(x^2) erfc(x)`` for ``x >= 0`` in float64: ``exp(x^2) (1 - erf(x))``
    with erf's Taylor series below 2, the continued fraction
    ``1/sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))`` from 2 on."""
    o = _Ops(ctx)
    lo = ctx.node("Min", [x, o.c(2.0)])
    x2 = o.mul(lo, lo)
    # erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    coefs = [(-1) ** n / (_fact(n) * (2 * n + 1)) for n in range(_ERF_SERIES_TERMS)]
    erf = o.mul(_nested(o, x2, coefs), o.mul(lo, o.c(2 / math.sqrt(math.pi))))
    small = o.mul(o.exp(x2), o.sub(o.c(1.0), erf))
    hi = ctx.node("Max", [x, o.c(2.0)])
    f = hi
    for k in range(_ERFC_CF_DEPTH, 0, -1):
        f = o.add(hi, o.div(o.c(k / 2), f))
    big = o.div(o.c(1 / math.sqrt(math.pi)), f)
    return o.where(o.lt(x, o.c(2.0)), small, big)


def _erfcx_of(ctx: Context, x: str) -> str:
    """erfcx at any x: ``2 exp(x^2) - erfcx(-x)`` for negative x (overflows to inf as
    eager mode does)."""
    o = _Ops(ctx)
    pos = _erfcx_pos(ctx, o.abs(x))
    neg = o.sub(o.mul(o.c(2.0), o.exp(o.mul(x, x))), pos)
    return o.where(o.lt(x, o.c(0.0)), neg, pos)


@lowers("erfcx")
def _erfcx(ctx: Context, e: Eqn) -> str:
    """``exp(x^2) erfc(x)``: erf's Taylor series below |x| = 2, erfc's continued fraction
    above (float64; onnxruntime's Erf has no float64 kernel)."""
    x, dt = _in64(ctx, e)
    return ctx.cast(_erfcx_of(ctx, x), dt)


@lowers("log_ndtr")
def _log_ndtr(ctx: Context, e: Eqn) -> str:
    """``log(erfcx(-x/sqrt 2) / 2) - x^2/2`` for ``x < 0`` (no underflow in the left tail);
    ``log1p(-erfc(x/sqrt 2) / 2)`` otherwise (a short series for tiny arguments)."""
    x, dt = _in64(ctx, e)
    o = _Ops(ctx)
    t = o.mul(x, o.c(-1 / math.sqrt(2)))
    left = o.sub(o.log(o.mul(_erfcx_of(ctx, t), o.c(0.5))), o.mul(o.mul(x, x), o.c(0.5)))
    # right half: u = erfc(x/sqrt 2) / 2 = erfcx(-t) exp(-t^2) / 2 in (0, 1/2]
    xr = ctx.node("Max", [x, o.c(0.0)])
    tr = o.mul(xr, o.c(1 / math.sqrt(2)))
    u = o.mul(o.mul(_erfcx_pos(ctx, tr), o.exp(o.neg(o.mul(tr, tr)))), o.c(0.5))
    tiny = o.lt(u, o.c(1e-5))
    series = o.neg(o.add(u, o.mul(o.mul(u, u), o.add(o.c(0.5), o.mul(u, o.c(1 / 3))))))
    right = o.where(tiny, series, o.log(o.sub(o.c(1.0), u)))
    return ctx.cast(o.where(o.lt(x, o.c(0.0)), left, right), dt)


def _erfc_of(ctx: Context, x: str) -> str:
    """``erfcx(|x|) exp(-x^2)``, and ``2 -`` that for negative x (float64)."""
    o = _Ops(ctx)
    pos = o.mul(_erfcx_pos(ctx, o.abs(x)), o.exp(o.neg(o.mul(x, x))))
    return o.where(o.lt(x, o.c(0.0)), o.sub(o.c(2.0), pos), pos)


@lowers("erfc")
def _erfc(ctx: Context, e: Eqn) -> str:
    """``erfcx(|x|) exp(-x^2)`` (``2 -`` that below 0), see ``erfcx``: relative precision in
    the right tail, which ``1 - Erf`` would lose."""
    x, dt = _in64(ctx, e)
    return ctx.cast(_erfc_of(ctx, x), dt)


@lowers("ndtr")
def _ndtr(ctx: Context, e: Eqn) -> str:
    """``erfc(-x / sqrt 2) / 2`` with erfc as in ``erfc`` (relative precision in the left
    tail)."""
    x, dt = _in64(ctx, e)
    y = _erfc_of(ctx, ctx.node("Mul", [x, ctx.const(-1 / math.sqrt(2), F64)]))
    return ctx.cast(ctx.node("Mul", [y, ctx.const(0.5, F64)]), dt)


@lowers("nextafter")
def _nextafter(ctx: Context, e: Eqn) -> str:
    """``x +- ulp(x)`` towards ``y``, in float64 arithmetic (exact for float32 and float64):
    ``ulp = 2**(e - mantissa bits + 1)`` with ``2**e <= |x| < 2**(e+1)`` (``e`` clamped to the
    smallest normal exponent), halved when stepping down from a power of two; ``y`` where
    ``x == y``, the smallest subnormal from 0, the largest finite value from infinity."""
    dt = out_dtype(e)
    fi = np.finfo(dt)
    x, y = (ctx.inp(v, F64) for v in e.inputs[:2])
    o = _Ops(ctx)
    one, two = o.c(1.0), o.c(2.0)
    a = o.abs(x)
    safe = o.where(ctx.node("Or", [o.eq(a, o.c(0.0)), ctx.node("IsInf", [a])]), one, a)
    ex = o.floor(o.div(o.log(safe), o.c(math.log(2.0))))
    t = o.div(safe, ctx.node("Pow", [two, ex]))  # in [1, 2) after the corrections
    ex = o.where(ctx.node("GreaterOrEqual", [t, two]), o.add(ex, one), ex)
    ex = o.where(o.lt(t, one), o.sub(ex, one), ex)
    ex = ctx.node("Max", [ex, o.c(float(fi.minexp))])
    ulp = ctx.node("Pow", [two, o.sub(ex, o.c(float(fi.nmant)))])
    up_pos = ctx.node("And", [ctx.node("Greater", [y, x]), ctx.node("Greater", [x, o.c(0.0)])])
    down_neg = ctx.node("And", [o.lt(y, x), o.lt(x, o.c(0.0))])
    away = ctx.node("Or", [up_pos, down_neg])  # moving away from zero
    at_power = ctx.node("And", [o.eq(safe, ctx.node("Pow", [two, ex])),
                                ctx.node("Greater", [ex, o.c(float(fi.minexp))])])  # fmt: skip
    down = o.where(at_power, o.mul(ulp, o.c(0.5)), ulp)
    mag = o.where(away, o.add(safe, ulp), o.sub(safe, down))
    r = o.mul(ctx.node("Sign", [x]), mag)
    tiny = o.c(float(fi.smallest_subnormal))
    r = o.where(o.eq(x, o.c(0.0)), o.mul(ctx.node("Sign", [o.sub(y, x)]), tiny), r)
    r = o.where(ctx.node("IsInf", [x]), o.mul(ctx.node("Sign", [x]), o.c(float(fi.max))), r)
    r = o.where(o.eq(x, y), y, r)
    r = o.where(ctx.node("Or", [ctx.node("IsNaN", [x]), ctx.node("IsNaN", [y])]), o.c(math.nan), r)
    return ctx.cast(r, dt)
