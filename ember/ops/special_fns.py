"""Special functions (``ember.special`` and the top-level ``erfc``, ``erfinv``, ``lgamma``,
``digamma``, ``polygamma``, ``mvlgamma``, ``i0``, ``igamma``/``igammac``).

The kernels come from SciPy's ``scipy.special`` (the ``[special]`` extra, imported on first
use with a message naming the extra when missing); the orthogonal polynomials are evaluated
by their three-term recurrences in NumPy. Gradients are the textbook derivatives written in
ember ops, so they differentiate again; functions PyTorch gives no derivative for (Bessel
functions, zeta, the polynomials) are non-differentiable here too.

Example:
    >>> import ember
    >>> ember.special.ndtr(ember.tensor([0.0])).tolist()
    [0.5]
    >>> ember.lgamma(ember.tensor([5.0])).exp().tolist()  # doctest: +ELLIPSIS
    [24.0...]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _dtype as dt
from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, bind
from ._ew_kernels import quiet
from ._promote import promote_args
from ._records import module_ops, op
from .complex_refuse import refuse_complex
from .elementwise import (
    _ew_abstract,
    _is_tensor,
    convert,
    eq,
    exp,
    float_input,
    isnan,
    log,
    log1p,
    logical_and,
    sign,
    unary_primitive,
    where,
)

if TYPE_CHECKING:
    from .._tensor import Tensor

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)


def scipy_special() -> Any:
    """``scipy.special``, or an ImportError naming the extra that installs it."""
    try:
        import scipy.special as sc
    except ImportError:  # pragma: no cover - scipy ships with the [special] and [test] extras
        raise ImportError(
            "this special function needs SciPy: pip install 'ember[special]' (or scipy)"
        ) from None
    return sc


def _sc_kernel(name: str, nargs: int = 1):
    """A NumPy kernel calling ``scipy.special.<name>``, keeping the input's float dtype."""

    def kernel(*args):
        out = quiet(getattr(scipy_special(), name), nargs)(*args)
        return np.asarray(out, dtype=np.result_type(*[np.asarray(a).dtype for a in args]))

    kernel.__name__ = name
    return kernel


def _unary(name, kernel, vjp=None, save=SAVE_BOTH):
    p = unary_primitive(name, kernel, save=save, nondiff=vjp is None)
    if vjp is not None:
        defvjp(p, vjp)
    return p


# -- error functions and the normal distribution -------------------------------------------
erfc_p = _unary("erfc", _sc_kernel("erfc"), lambda g, out, x: (g * exp(-x * x) * (-2 / _SQRT_PI),))
erfinv_p = _unary(
    "erfinv", _sc_kernel("erfinv"), lambda g, out, x: (g * exp(out * out) * (_SQRT_PI / 2),)
)
erfcx_p = _unary(
    "erfcx", _sc_kernel("erfcx"), lambda g, out, x: (g * (2 * x * out - 2 / _SQRT_PI),)
)
ndtr_p = _unary("ndtr", _sc_kernel("ndtr"), lambda g, out, x: (g * exp(-0.5 * x * x) / _SQRT_2PI,))
ndtri_p = _unary(
    "ndtri", _sc_kernel("ndtri"), lambda g, out, x: (g * exp(0.5 * out * out) * _SQRT_2PI,)
)
log_ndtr_p = _unary(
    "log_ndtr",
    _sc_kernel("log_ndtr"),
    lambda g, out, x: (g * exp(-0.5 * x * x - out) / _SQRT_2PI,),
)


@op(method="erfc", inplace="erfc_", ref="erfc")
def erfc(input: Tensor) -> Tensor:
    """The complementary error function ``1 - erf(x)``, accurate where it is tiny."""
    refuse_complex("erfc", input)
    return bind(erfc_p, (float_input(input, "erfc"),))


@op(method="erfinv", inplace="erfinv_", ref="erfinv", domain=(-0.9, 0.9))
def erfinv(input: Tensor) -> Tensor:
    """The inverse error function (±inf at ±1, nan outside)."""
    return bind(erfinv_p, (float_input(input, "erfinv"),))


@op(ref="special.erfcx", toplevel=False)
def erfcx(input: Tensor) -> Tensor:
    """The scaled complementary error function ``exp(x**2) * erfc(x)``."""
    return bind(erfcx_p, (float_input(input, "erfcx"),))


@op(ref="special.ndtr", toplevel=False)
def ndtr(input: Tensor) -> Tensor:
    """The standard normal cumulative distribution function."""
    return bind(ndtr_p, (float_input(input, "ndtr"),))


@op(ref="special.ndtri", toplevel=False, domain=(0.05, 0.95))
def ndtri(input: Tensor) -> Tensor:
    """The inverse of :func:`ndtr` (the standard normal quantile function)."""
    return bind(ndtri_p, (float_input(input, "ndtri"),))


@op(ref="special.log_ndtr", toplevel=False)
def log_ndtr(input: Tensor) -> Tensor:
    """``log(ndtr(x))``, accurate far into the left tail."""
    return bind(log_ndtr_p, (float_input(input, "log_ndtr"),))


# -- gamma family --------------------------------------------------------------------------
def _polygamma_kernel(x, *, n):
    return np.asarray(quiet(scipy_special().polygamma, 2)(n, x), x.dtype)


polygamma_p = Primitive(
    "polygamma",
    "elementwise",
    impl=_polygamma_kernel,
    abstract=lambda x, *, n: AbstractValue(x.shape, x.dtype),
    save=SAVE_BOTH,
)
defvjp(polygamma_p, lambda g, out, x, *, n: (g * bind(polygamma_p, (x,), {"n": n + 1}),))
digamma_p = _unary(
    "digamma", _sc_kernel("psi"), lambda g, out, x: (g * bind(polygamma_p, (x,), {"n": 1}),)
)
lgamma_p = _unary("lgamma", _sc_kernel("gammaln"), lambda g, out, x: (g * bind(digamma_p, (x,)),))


@op(method="lgamma", inplace="lgamma_", ref="lgamma", domain=(0.3, 4))
def lgamma(input: Tensor) -> Tensor:
    """``log|Gamma(x)|``."""
    return bind(lgamma_p, (float_input(input, "lgamma"),))


@op(method="digamma", inplace="digamma_", ref="digamma", domain=(0.3, 4))
def digamma(input: Tensor) -> Tensor:
    """The logarithmic derivative of Gamma, ``psi(x)`` (-inf at 0, as PyTorch)."""
    refuse_complex("digamma", input)
    x = float_input(input, "digamma")
    out = bind(digamma_p, (x,))
    return out


def _polygamma_ref(x, n):
    import torch

    return torch.polygamma(n, x)


@op(
    method="polygamma",
    inplace="polygamma_",
    ref=_polygamma_ref,
    domain=(0.3, 4),
    cases=({"n": 0}, {"n": 1}, {"n": 3}),
    export=False,
    name="polygamma_of",
)
def polygamma_of(input: Tensor, n: int) -> Tensor:
    """``x.polygamma(n)``: the ``n``-th derivative of :func:`digamma` (see :func:`polygamma`)."""
    if int(n) != n or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n}")
    x = float_input(input, "polygamma")
    if n == 0:
        return bind(digamma_p, (x,))
    return bind(polygamma_p, (x,), {"n": int(n)})


def polygamma(n: int, input: Tensor) -> Tensor:
    """The ``n``-th derivative of :func:`digamma` (PyTorch's argument order: ``n`` first).

    Example:
        >>> import ember
        >>> round(ember.polygamma(1, ember.tensor([1.0])).item(), 4)  # pi**2 / 6
        1.6449
    """
    return polygamma_of(input, n)


@op(
    method="mvlgamma",
    inplace="mvlgamma_",
    ref="mvlgamma",
    domain=(1.6, 4),
    cases=({"p": 1}, {"p": 3}),
)
def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The multivariate log-gamma function of dimension ``p`` (every element must exceed
    ``(p - 1) / 2``)."""
    if p < 1:
        raise ValueError(f"mvlgamma: p must be at least 1, got {p}")
    x = float_input(input, "mvlgamma")
    if x.numel() and bool((x <= (p - 1) / 2).any()):
        raise ValueError(f"mvlgamma: all elements must be greater than (p-1)/2 = {(p - 1) / 2}")
    out = lgamma(x)
    for i in range(1, p):
        out = out + lgamma(x - i / 2)
    return out + p * (p - 1) / 4 * math.log(math.pi)


def _igamma_kernel(name):
    def k(a, x):
        return np.asarray(quiet(getattr(scipy_special(), name), 2)(a, x), np.result_type(a, x))

    return k


def _igamma_prim(name, scipy_name, sign_):
    p = Primitive(
        name,
        "elementwise",
        impl=_igamma_kernel(scipy_name),
        abstract=_ew_abstract(name),
        save=SAVE_BOTH,
    )

    @defvjp(p)
    def vjp(g, out, a, x):
        # PyTorch differentiates only in x: d/dx P(a, x) = x**(a-1) e**-x / Gamma(a)
        dx = exp((a - 1) * log(x) - x - lgamma(a)) * sign_
        return None, (g * dx if _is_tensor(x) else None)

    return p


igamma_p = _igamma_prim("igamma", "gammainc", 1.0)
igammac_p = _igamma_prim("igammac", "gammaincc", -1.0)


def _float_args(a, b, name):
    a, b, _ = promote_args(a, b)
    if a._data.dtype.kind in "iub":
        a, b = convert(a, dt.get_default_dtype()), convert(b, dt.get_default_dtype())
    return a, b


@op(method="igamma", inplace="igamma_", ref="igamma", arity=2, domain=(0.5, 3), grad=False)
def igamma(input: Tensor, other: Tensor) -> Tensor:
    """The regularized lower incomplete gamma function ``P(input, other)`` (differentiable
    in ``other``, as in PyTorch)."""
    return bind(igamma_p, _float_args(input, other, "igamma"))


@op(method="igammac", inplace="igammac_", ref="igammac", arity=2, domain=(0.5, 3), grad=False)
def igammac(input: Tensor, other: Tensor) -> Tensor:
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P``."""
    return bind(igammac_p, _float_args(input, other, "igammac"))


# -- Bessel functions ----------------------------------------------------------------------
i1_p = unary_primitive("i1", _sc_kernel("i1"), save=SAVE_BOTH)  # VJPs below (they use i0)
i1e_p = unary_primitive("i1e", _sc_kernel("i1e"), save=SAVE_BOTH)
i0_p = _unary("i0", _sc_kernel("i0"), lambda g, out, x: (g * bind(i1_p, (x,)),))
i0e_p = _unary(
    "i0e", _sc_kernel("i0e"), lambda g, out, x: (g * (bind(i1e_p, (x,)) - sign(x) * out),)
)


def _i1_vjp(g, out, x):
    # I1'(x) = I0(x) - I1(x) / x, 1/2 at 0
    zero = eq(x, 0.0)
    safe = where(zero, 1.0, x)
    return (g * where(zero, 0.5, bind(i0_p, (x,)) - out / safe),)


def _i1e_vjp(g, out, x):
    # d/dx e^-|x| I1(x) = I0e(x) - I1e(x) (sign(x) + 1/x), 1/2 at 0
    zero = eq(x, 0.0)
    safe = where(zero, 1.0, x)
    return (g * where(zero, 0.5, bind(i0e_p, (x,)) - out * (sign(x) + 1.0 / safe)),)


defvjp(i1_p, _i1_vjp)
defvjp(i1e_p, _i1e_vjp)


@op(method="i0", inplace="i0_", ref="i0")
def i0(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 0."""
    return bind(i0_p, (float_input(input, "i0"),))


@op(ref="special.i0e", toplevel=False)
def i0e(input: Tensor) -> Tensor:
    """The exponentially scaled :func:`i0`: ``exp(-|x|) * i0(x)``."""
    return bind(i0e_p, (float_input(input, "i0e"),))


@op(ref="special.i1", toplevel=False)
def i1(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 1."""
    return bind(i1_p, (float_input(input, "i1"),))


@op(ref="special.i1e", toplevel=False)
def i1e(input: Tensor) -> Tensor:
    """The exponentially scaled :func:`i1`: ``exp(-|x|) * i1(x)``."""
    return bind(i1e_p, (float_input(input, "i1e"),))


def _nondiff_unary(name: str, kernel, ref: str, domain=(-3.0, 3.0), doc: str = ""):
    prim = _unary(name, kernel, None, save=SAVE_BOTH)

    def fn(input: Tensor) -> Tensor:
        return bind(prim, (float_input(input, name),))

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = doc
    return op(ref=ref, toplevel=False, grad=False, fd=False, domain=domain)(fn)


def _spherical_j0(x):
    with np.errstate(all="ignore"):
        return np.where(x == 0, 1.0, np.sin(x) / np.where(x == 0, 1.0, x)).astype(x.dtype)


def _airy_ai(x):
    return np.asarray(scipy_special().airy(x)[0], x.dtype)


bessel_j0 = _nondiff_unary(
    "bessel_j0",
    _sc_kernel("j0"),
    "special.bessel_j0",
    doc="The Bessel function of the first kind, order 0.",
)
bessel_j1 = _nondiff_unary(
    "bessel_j1",
    _sc_kernel("j1"),
    "special.bessel_j1",
    doc="The Bessel function of the first kind, order 1.",
)
bessel_y0 = _nondiff_unary(
    "bessel_y0",
    _sc_kernel("y0"),
    "special.bessel_y0",
    (0.2, 5),
    doc="The Bessel function of the second kind, order 0.",
)
bessel_y1 = _nondiff_unary(
    "bessel_y1",
    _sc_kernel("y1"),
    "special.bessel_y1",
    (0.2, 5),
    doc="The Bessel function of the second kind, order 1.",
)
modified_bessel_i0 = _nondiff_unary(
    "modified_bessel_i0",
    _sc_kernel("i0"),
    "special.modified_bessel_i0",
    doc="The modified Bessel function of the first kind, order 0.",
)
modified_bessel_i1 = _nondiff_unary(
    "modified_bessel_i1",
    _sc_kernel("i1"),
    "special.modified_bessel_i1",
    doc="The modified Bessel function of the first kind, order 1.",
)
modified_bessel_k0 = _nondiff_unary(
    "modified_bessel_k0",
    _sc_kernel("k0"),
    "special.modified_bessel_k0",
    (0.2, 5),
    doc="The modified Bessel function of the second kind, order 0.",
)
modified_bessel_k1 = _nondiff_unary(
    "modified_bessel_k1",
    _sc_kernel("k1"),
    "special.modified_bessel_k1",
    (0.2, 5),
    doc="The modified Bessel function of the second kind, order 1.",
)
scaled_modified_bessel_k0 = _nondiff_unary(
    "scaled_modified_bessel_k0",
    _sc_kernel("k0e"),
    "special.scaled_modified_bessel_k0",
    (0.2, 5),
    doc="``exp(x) * modified_bessel_k0(x)``.",
)
scaled_modified_bessel_k1 = _nondiff_unary(
    "scaled_modified_bessel_k1",
    _sc_kernel("k1e"),
    "special.scaled_modified_bessel_k1",
    (0.2, 5),
    doc="``exp(x) * modified_bessel_k1(x)``.",
)
spherical_bessel_j0 = _nondiff_unary(
    "spherical_bessel_j0",
    _spherical_j0,
    "special.spherical_bessel_j0",
    doc="The spherical Bessel function of the first kind, order 0: ``sin(x) / x``.",
)
airy_ai = _nondiff_unary("airy_ai", _airy_ai, "special.airy_ai", doc="The Airy function Ai.")


# -- entropy-style functions ---------------------------------------------------------------
@op(ref="special.entr", toplevel=False, domain=(0.1, 3))
def entr(input: Tensor) -> Tensor:
    """``-x * log(x)`` for ``x > 0``, 0 at 0, -inf below."""
    x = float_input(input, "entr")
    pos = x > 0
    safe = where(pos, x, 1.0)
    return where(pos, -x * log(safe), where(eq(x, 0.0), 0.0, -math.inf))


@op(ref="special.xlog1py", toplevel=False, arity=2, domain=(0.2, 3))
def xlog1py(input: Tensor | float, other: Tensor | float) -> Tensor:
    """``input * log1p(other)``, 0 where ``input`` is 0 (unless ``other`` is nan)."""
    from .math_extra import _float_pair

    x, y = _float_pair(input, other, "xlog1py")
    if not _is_tensor(y):
        y = x * 0.0 + y
    if not _is_tensor(x):
        x = y * 0.0 + x
    zero = logical_and(eq(x, 0.0), ~isnan(y))
    return where(zero, 0.0, x * log1p(where(zero, 0.0, y)))


zeta_p = Primitive(
    "zeta",
    "elementwise",
    impl=_sc_kernel("zeta", 2),
    abstract=_ew_abstract("zeta"),
    nondiff=True,
)


@op(ref="special.zeta", toplevel=False, arity=2, domain=(1.5, 3), grad=False, fd=False)
def zeta(input: Tensor | float, other: Tensor | float) -> Tensor:
    """The Hurwitz zeta function ``sum_k (k + other) ** -input``."""
    from .math_extra import _float_pair

    return bind(zeta_p, _float_pair(input, other, "zeta"))


# -- orthogonal polynomials ----------------------------------------------------------------
def _recurrence(kind: str, x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """P_n(x) elementwise by the three-term recurrence of ``kind`` (0 where n < 0)."""
    x, n = np.broadcast_arrays(x, n)
    n = n.astype(np.int64)
    if kind.startswith("shifted_"):
        x = 2 * x - 1
        kind = kind[len("shifted_") :]
    one = np.ones_like(x)
    first = {
        "t": x,
        "u": 2 * x,
        "v": 2 * x - 1,
        "w": 2 * x + 1,
        "h": 2 * x,
        "he": x,
        "l": 1 - x,
        "p": x,
    }[kind]
    out = np.where(n == 0, one, np.where(n == 1, first, 0 * x))
    top = int(n.max()) if n.size else 0
    prev, cur = one, first
    for k in range(1, top):
        if kind in ("t", "u", "v", "w"):
            nxt = 2 * x * cur - prev
        elif kind == "h":
            nxt = 2 * x * cur - 2 * k * prev
        elif kind == "he":
            nxt = x * cur - k * prev
        elif kind == "l":
            nxt = ((2 * k + 1 - x) * cur - k * prev) / (k + 1)
        else:  # legendre
            nxt = ((2 * k + 1) * x * cur - k * prev) / (k + 1)
        prev, cur = cur, nxt
        out = np.where(n == k + 1, cur, out)
    return out.astype(x.dtype)


def _poly_prim(kind: str) -> Primitive:
    def impl(x, n):
        with np.errstate(all="ignore"):
            return _recurrence(kind, x, np.asarray(n))

    def abstract(x, n):
        return _ew_abstract(kind)(x, n)

    return Primitive(
        f"{kind}_polynomial", "elementwise", impl=impl, abstract=abstract, nondiff=True
    )


def _poly(name: str, kind: str, domain, doc: str):
    prim = _poly_prim(kind)

    def fn(input: Tensor | float, n: Tensor | int) -> Tensor:
        from .._creation import tensor

        x = input if _is_tensor(input) else tensor(input)
        x = float_input(x, name)
        nn: Any = n if _is_tensor(n) else np.asarray(int(n), np.int64)
        if _is_tensor(nn) and nn.dtype.is_floating_point:
            nn = nn.to(dt.int64)
        return bind(prim, (x, nn))

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = doc + " ``n`` is an integer or an integer tensor (0 where negative)."
    return op(
        ref=f"special.{name}",
        toplevel=False,
        grad=False,
        fd=False,
        domain=domain,
        cases=({"n": 0}, {"n": 1}, {"n": 4}),
    )(fn)


chebyshev_polynomial_t = _poly("chebyshev_polynomial_t", "t", (-1, 1), "Chebyshev T_n(x).")
chebyshev_polynomial_u = _poly("chebyshev_polynomial_u", "u", (-1, 1), "Chebyshev U_n(x).")
chebyshev_polynomial_v = _poly("chebyshev_polynomial_v", "v", (-1, 1), "Chebyshev V_n(x).")
chebyshev_polynomial_w = _poly("chebyshev_polynomial_w", "w", (-1, 1), "Chebyshev W_n(x).")
shifted_chebyshev_polynomial_t = _poly(
    "shifted_chebyshev_polynomial_t", "shifted_t", (0, 1), "Shifted Chebyshev T*_n(x)."
)
shifted_chebyshev_polynomial_u = _poly(
    "shifted_chebyshev_polynomial_u", "shifted_u", (0, 1), "Shifted Chebyshev U*_n(x)."
)
shifted_chebyshev_polynomial_v = _poly(
    "shifted_chebyshev_polynomial_v", "shifted_v", (0, 1), "Shifted Chebyshev V*_n(x)."
)
shifted_chebyshev_polynomial_w = _poly(
    "shifted_chebyshev_polynomial_w", "shifted_w", (0, 1), "Shifted Chebyshev W*_n(x)."
)
hermite_polynomial_h = _poly("hermite_polynomial_h", "h", (-2, 2), "Physicists' Hermite H_n(x).")
hermite_polynomial_he = _poly(
    "hermite_polynomial_he", "he", (-2, 2), "Probabilists' Hermite He_n(x)."
)
laguerre_polynomial_l = _poly("laguerre_polynomial_l", "l", (0, 3), "Laguerre L_n(x).")
legendre_polynomial_p = _poly("legendre_polynomial_p", "p", (-1, 1), "Legendre P_n(x).")


__all__ = ["polygamma", "scipy_special", *module_ops(__name__)]
