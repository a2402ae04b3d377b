"""Symbolic sizes: integers that remember which symbolic dimension they stand for.

A symbolic value has no data, but the library's Python code (shape checks, ``reshape``
targets, the divisor of ``mean``) computes with its sizes. Each symbolic dimension gets a
*probe* value (a large prime, unlikely to clash with real sizes) and its sizes are
:class:`SymInt` s: ints with that value that also carry the expression
(:class:`~ember.compiler.ir.Dim`) they stand for. Sums and products of sizes and ints that
stay multilinear (``2*B+1``, ``(3*B)//3``, ``T*B``, ``T*B*H + 1``) keep the expression, a
polynomial in which no symbol appears squared; anything else (``B//2``, ``B*B``) gives an
*opaque* SymInt, which is fine in comparisons but an error when it reaches the graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compiler.ir import Dim, Ratio

__all__ = ["SymInt", "leaks", "probe_of", "symbol_of_probe"]

_PROBES: dict[str, int] = {}
_BY_PROBE: dict[int, str] = {}
# Python conversions of symbolic sizes to floats since the last recorded op: the op being
# built may have baked a probe value into a constant.
leaks: list[str] = []
floats: list[tuple[float, Dim | None]] = []  # the values of float(size) since then
# the values of opaque sizes (``B // 2``) made while symbols are alive, with what they are:
# one that reaches an op as a plain int (``int()``, a slice bound) would be a fixed size
opaque: dict[int, str] = {}


def _next_prime(n: int) -> int:
    while True:
        n += 1
        if all(n % k for k in range(2, int(n**0.5) + 1)):
            return n


def probe_of(name: str) -> int:
    """The probe value of symbol ``name`` (assigned on first use)."""
    p = _PROBES.get(name)
    if p is None:
        # primes from 1009 on, spaced so that the +1/+2 shifts of one never hit another
        p = _next_prime(max(_BY_PROBE, default=1000) + 3)
        _PROBES[name] = p
        _BY_PROBE[p] = name
    return p


def symbol_of_probe(value: int) -> str | None:
    """The symbol whose probe value is ``value`` (None when none is)."""
    return _BY_PROBE.get(value)


def by_probe() -> dict[int, str]:
    return dict(_BY_PROBE)


def probes() -> dict[str, int]:
    return dict(_PROBES)


def _lift(v: Any) -> Dim | bool | None:
    """The expression of ``v``: a Dim, None (opaque SymInt), or False (a plain int)."""
    if isinstance(v, SymInt):
        return v.expr
    return False


class SymInt(int):
    """An int (the probe value) standing for ``expr`` (a Dim; None when it is not a
    multilinear polynomial in the symbolic sizes).

    Example:
        >>> from ember.compiler.ir import Dim
        >>> b, t = SymInt(1009, Dim("B")), SymInt(1013, Dim("T"))
        >>> b * 2 + 1, (3 * b) // 3, t * b, b // 2
        (2*B+1, B, B*T, <size B // 2>)
    """

    expr: Dim | None
    why: str

    def __new__(cls, value: int, expr: Dim | None, why: str = "") -> SymInt:
        obj = int.__new__(cls, value)
        obj.expr = expr
        obj.why = why
        if expr is None and abs(value) > 100:  # from a probe size: unlikely a real size
            opaque[int(value)] = why
        return obj

    def __repr__(self) -> str:
        return str(self.expr) if self.expr is not None else f"<size {self.why}>"

    __str__ = __repr__

    def _combine(self, other: Any, sign: int, op: str, value: int) -> Any:
        b = _lift(other)
        a = self.expr
        if a is None or b is None:
            return SymInt(value, None, f"{self!r} {op} {other!r}")
        if b is False:
            return _make(value, a + sign * int(other))
        return _make(value, a + b * sign)

    def __add__(self, other: Any) -> Any:
        if not isinstance(other, (int, np.integer)):
            return _leak(self, other, "+", int(self) + other)
        return self._combine(other, 1, "+", int(self) + int(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if not isinstance(other, (int, np.integer)):
            return _leak(self, other, "-", int(self) - other)
        return self._combine(other, -1, "-", int(self) - int(other))

    def __rsub__(self, other: Any) -> Any:
        if not isinstance(other, (int, np.integer)):
            return _leak(self, other, "-", other - int(self))
        return (-self) + other

    def __neg__(self) -> Any:
        a = self.expr
        if a is None:
            return SymInt(-int(self), None, f"-{self!r}")
        return _make(-int(self), a * -1)

    def __pos__(self) -> SymInt:
        return self

    def __mul__(self, other: Any) -> Any:
        if not isinstance(other, (int, np.integer)):
            return _leak(self, other, "*", int(self) * other)
        v = int(self) * int(other)
        a = self.expr
        if a is None:
            return SymInt(v, None, f"{self!r} * {other!r}")
        if isinstance(other, SymInt):
            b = other.expr
            if b is None:
                return SymInt(v, None, f"{self!r} * {other!r}")
            p = a * b
            if isinstance(p, Dim) and any(len(set(m)) < len(m) for m, _c in p.terms):
                return SymInt(v, None, f"{self!r} * {other!r} (a size squared)")
            return _make(v, p)
        return _make(v, a * int(other))

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> Any:
        if not isinstance(other, (int, np.integer)):
            return _leak(self, other, "//", int(self) // other)
        v = int(self) // int(other)
        a = self.expr
        if a is None or isinstance(other, SymInt) or int(other) == 0:
            return SymInt(v, None, f"{self!r} // {other!r}")
        k = int(other)
        if all(c % k == 0 for c in _coefs(a)) and a.offset % k == 0:
            return _make(v, Dim.poly({m: c // k for m, c in a.terms}, a.offset // k))
        return SymInt(v, None, f"{self!r} // {k}")

    def __rfloordiv__(self, other: Any) -> Any:
        return SymInt(int(other) // int(self), None, f"{other!r} // {self!r}")

    def __mod__(self, other: Any) -> Any:
        if not isinstance(other, (int, np.integer)):
            return _leak(self, other, "%", int(self) % other)
        v = int(self) % int(other)
        a = self.expr
        if (
            a is not None
            and not isinstance(other, SymInt)
            and int(other)
            and all(c % int(other) == 0 for c in _coefs(a))
        ):
            return v  # the same remainder for every size
        return SymInt(v, None, f"{self!r} % {other!r}")

    def __truediv__(self, other: Any) -> Any:
        return _leak(self, other, "/", int(self) / other)

    def __rtruediv__(self, other: Any) -> Any:
        return _leak(self, other, "/", other / int(self))

    def __float__(self) -> float:
        # float(n - 1) as a divisor (var/std): found again among the operands by its value
        leaks.append(f"float({self!r})")
        floats.append((float(int(self)), self.expr))
        return float(int(self))

    def __pow__(self, other: Any, mod: Any = None) -> Any:
        return SymInt(pow(int(self), other, mod), None, f"{self!r} ** {other!r}")

    def __reduce__(self) -> Any:  # never travels: a symbolic size is not data
        raise TypeError(f"a symbolic size ({self!r}) cannot be pickled")


def float_size(d: Dim) -> Ratio:
    """``float(d)`` as a graph value: the IR's symbolic float (``(coef*N+offset)/1``, or
    ``(d)/1`` for a polynomial in several sizes)."""
    if d.name is None:
        return Ratio(d, 1.0, 0.0, 0.0, 1.0)  # type: ignore[arg-type]
    return Ratio(d.name, float(d.coef), float(d.offset), 0.0, 1.0)


def _coefs(d: Dim) -> list[Any]:
    return [c for _m, c in d.terms]


def _make(value: int, expr: Any) -> Any:
    if not isinstance(expr, Dim):
        return int(expr)  # Dim arithmetic cancelled every symbol
    if not expr.terms:
        return int(expr.offset)
    return SymInt(value, expr)


def _leak(a: Any, b: Any, op: str, value: Any) -> Any:
    leaks.append(f"{a!r} {op} {b!r}")
    return value


def to_ir(v: Any, where: str, literal: bool = False) -> Any:
    """``v`` (a param or size) with SymInts replaced by their Dims; opaque ones are errors."""
    t = type(v)
    if t is SymInt:
        if v.expr is None:
            raise ValueError(
                f"{where}: the size {v.why} is not kept symbolic (sums and products of "
                "symbolic sizes and ints are, with no size squared; floor division, "
                "remainders and powers are not); give that dimension a fixed size"
            )
        return v.expr
    if t is tuple or t is list:
        return t(to_ir(x, where, literal) for x in v)
    if t is dict:
        return {k: to_ir(x, where, literal) for k, x in v.items()}
    return v


def opaque_in(v: Any) -> str | None:
    """What the first plain int in ``v`` that is the value of a recent opaque size stands
    for (None when there is none)."""
    if not opaque:
        return None
    t = type(v)
    if t is int or t is np.int64:
        return opaque.get(int(v))
    if t is slice:
        return opaque_in((v.start, v.stop, v.step))
    if t is tuple or t is list:
        for x in v:
            w = opaque_in(x)
            if w is not None:
                return w
    elif t is dict:
        return opaque_in(list(v.values()))
    return None


def at(v: Any, env: dict[str, int]) -> Any:
    """``v`` with SymInts and Dims evaluated at ``env`` (plain ints)."""
    t = type(v)
    if t is SymInt:
        return v.expr.eval(env) if v.expr is not None else int(v)
    if t is Ratio:
        return v.eval(env)
    if t is Dim:
        return v.eval(env)
    if t is tuple or t is list:
        return t(at(x, env) for x in v)
    if t is dict:
        return {k: at(x, env) for k, x in v.items()}
    return v


def names_in(v: Any, out: set[str]) -> None:
    """Collect the symbol names of the SymInts and Dims in ``v``."""
    t = type(v)
    if t is SymInt:
        if v.expr is not None:
            out.update(v.expr.symbols())
    elif t is Dim:
        out.update(v.symbols())
    elif t is tuple or t is list:
        for x in v:
            names_in(x, out)
    elif t is dict:
        for x in v.values():
            names_in(x, out)


def has_symint(v: Any) -> bool:
    t = type(v)
    if t is SymInt:
        return True
    if t is tuple or t is list:
        return any(has_symint(x) for x in v)
    if t is dict:
        return any(has_symint(x) for x in v.values())
    return False


def sym_size(d: Any) -> Any:
    """A Var dim (int or Dim) as a size for the library code (int or SymInt)."""
    if isinstance(d, Dim):
        for n in d.symbols():
            probe_of(n)
        return _make(d.eval(_PROBES), d)
    return d
