"""Symbolic sizes beyond the batch: fitting traced integers and floats to expressions.

A graph with several symbolic sizes (the batch ``B`` and, say, a sequence length ``s1``) is
built from concrete traces taken at the corners of a unit cube of sizes around the call's
own: ``B`` in ``{b, b+1}``, ``s1`` in ``{t, t-1}`` (or ``t+1`` when ``t`` is small), ... plus
one check point two steps out on every axis. Every integer that the traces record (a shape
entry, a reshape target, a slice bound: whatever Python code computed from ``x.shape``) is
then a function of the sizes known at ``2**k`` points; the unique *multilinear* polynomial
through them (``B*s1``, ``B*s1*C - B``, ...) is taken and must also hold at the check point.
Python floats computed from sizes (``1 / (B*s1)``) are fitted the same way to ``a + b*x``,
``a + b/x`` or ``(a*x + b) / (c*x + 1)`` for ``x`` a product of symbols.

A size whose influence is not polynomial (a Python ``list[x.shape[1]]``, a branch on it,
a strided convolution's floor division at step 1) fails the fit or the check, and that
dimension stays specialized. An axis traced with step ``m > 1`` (image sizes under strided
convolutions) fits rational coefficients (``s1/2``) that hold on the lattice
``s1 = t (mod m)``; the shape guard rejects sizes off it. Every new size met later is also
checked by a dry-run trace (see :mod:`ember.compiler.api`), so a fit that merely happened to
match never runs at sizes where the Python code would do something else.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np

from .._dtype import from_numpy_dtype
from .._tensor import Tensor, _new
from ..ops._core import SAVE_NONE, AbstractValue, Primitive
from ._unify import like_layout
from .ir import EXTRA_PRIMITIVES, RATIO_FNS, Dim, Ratio

__all__ = [
    "Design",
    "SizeMismatch",
    "arange_p",
    "as_arange",
    "eye_p",
    "is_eye",
    "mark_dynamic",
    "resized_axes",
    "shifted_arange",
]


class SizeMismatch(Exception):
    """Traces at different sizes cannot be fitted to one symbolic graph."""


class Design:
    """The trace points for symbols ``names`` (base sizes ``base``, steps ``step``).

    ``points()`` lists one ``{symbol: size}`` per trace: the ``2**k`` cube corners (bit ``i``
    of the index set: symbol ``i`` moved by its step), then the check point; later points
    (sizes met at run time) may be appended with :meth:`add`.

    Example:
        >>> d = Design(["B", "s1"], [2, 8], [1, -1])
        >>> [tuple(p.values()) for p in d.points()]
        [(2, 8), (3, 8), (2, 7), (3, 7), (4, 6)]
        >>> str(d.fit_int([16, 24, 14, 21, 24], "x"))
        'B*s1'
    """

    def __init__(self, names: list[str], base: list[int], step: list[int]):
        self.names, self.base, self.step = list(names), list(base), list(step)
        k = len(names)
        self.n_cube = 1 << k
        self.pts: list[dict[str, int]] = [
            {n: b + (s if m >> i & 1 else 0) for i, (n, b, s) in enumerate(zip(names, base, step))}
            for m in range(self.n_cube)
        ]
        self.pts.append({n: b + 2 * s for n, b, s in zip(names, base, step)})
        # corner values -> their polynomial: checking a graph at a new size (a dry run per new
        # size, as in a decoding loop) refits the same corners for every int of the graph
        self._polys: dict[tuple[int, ...], Any] = {}

    def points(self) -> list[dict[str, int]]:
        return [dict(p) for p in self.pts]

    def add(self, point: dict[str, int]) -> Design:
        """A copy with one more check point."""
        d = Design(self.names, self.base, self.step)
        d.pts = [*self.pts, dict(point)]
        d._polys = self._polys
        return d

    # -- integers
    def fit_int(self, values: list[Any], what: str) -> Any:
        """The multilinear polynomial through the cube corners, checked at the other points
        (an int when the value does not change)."""
        vals = [int(v) for v in values]
        if all(v == vals[0] for v in vals):
            return vals[0]
        n = self.n_cube
        d = self._polys.get(tuple(vals[:n]))
        if d is None:
            d = self._polys[tuple(vals[:n])] = self._corner_poly(vals[:n])
        for p, v in zip(self.pts[n:], vals[n:]):
            got = d.eval(p) if isinstance(d, Dim) else d
            if got != v:
                seq = " -> ".join(str(x) for x in vals)
                raise SizeMismatch(
                    f"{what}: {seq} at sizes {_fmt_points(self.pts[: len(vals)])} is not a "
                    "polynomial in the sizes (Python code uses a size in another way)"
                )
        return d

    def _corner_poly(self, vals: list[int]) -> Any:
        """The multilinear polynomial (a Dim, or an int) through the cube corners' values."""
        k, n = len(self.names), self.n_cube
        # coefficients of prod(x_i for i in S), x_i = (size_i - base_i) / step_i in {0, 1}
        g = list(vals[:n])
        for i in range(k):
            for m in range(n):
                if m >> i & 1:
                    g[m] -= g[m ^ (1 << i)]
        terms: dict[tuple[str, ...], Any] = {}
        const: Any = 0
        for m in range(n):
            if not g[m]:
                continue
            idx = [i for i in range(k) if m >> i & 1]
            scale = Fraction(g[m])
            for i in idx:
                scale /= self.step[i]
            for r in range(len(idx) + 1):
                for sub in itertools.combinations(idx, r):
                    c = scale
                    for i in idx:
                        if i not in sub:
                            c *= -self.base[i]
                    if sub:
                        mono = tuple(self.names[i] for i in sub)
                        terms[mono] = terms.get(mono, 0) + c
                    else:
                        const += c
        return Dim.poly(terms, const)

    # -- floats
    def fit_float(self, values: list[float], what: str) -> Any:
        """A :class:`~ember.compiler.ir.Ratio` of a product of symbols through the values."""
        ys = [float(v) for v in values]
        if all(y == ys[0] or (np.isnan(y) and np.isnan(ys[0])) for y in ys):
            return values[0]
        pts = self.pts[: len(ys)]
        k = len(self.names)
        # x: a monomial of the symbols (each to the power 0..2), lowest degree first
        exps = sorted(
            (e for e in itertools.product(range(3), repeat=k) if any(e)),
            key=lambda e: (sum(e), [-x for x in e]),
        )
        # then the same of its square root or logarithm (``1 / math.sqrt(t)``, ``log(t)``)
        for fn in RATIO_FNS:
            for e in exps:
                names = [n for n, p in zip(self.names, e) for _ in range(p)]
                xs = [int(np.prod([p[n] for n in names])) for p in pts]
                rat = _fit_ratio(xs, ys, fn)
                if rat is not None:
                    x = names[0] if len(names) == 1 else Dim.poly({tuple(names): 1})
                    a, b, c, d = rat
                    return Ratio(x, a, b, c, d, known=dict(zip(xs, ys)), fn=fn)
        raise SizeMismatch(
            f"{what}: a Python float that changes with the sizes in no simple way "
            f"({', '.join(repr(y) for y in ys)})"
        )


def _fit_ratio(
    xs: list[int], ys: list[float], fn: str | None = None
) -> tuple[float, float, float, float] | None:
    seen: dict[int, float] = {}
    for x, y in zip(xs, ys):
        if x in seen and seen[x] != y:
            return None  # not a function of this x
        seen[x] = y
    ux = list(seen)
    if len(ux) < 2 or (fn == "log" and min(ux) <= 0):
        return None
    f = RATIO_FNS[fn]
    fx = np.array([f(x) for x in ux], np.float64)
    fy = np.array([seen[x] for x in ux], np.float64)
    cands = []
    # a + b*x, a + b/x (exact through two points), (a*x + b) / (c*x + 1) (three)
    for form in ("lin", "inv", "ratio"):
        need = 3 if form == "ratio" else 2
        if len(ux) < need:
            continue
        xv, yv = fx[:need], fy[:need]
        try:
            if form == "lin":
                m = np.stack([xv, np.ones(2)], 1)
                a, b = np.linalg.solve(m, yv)
                cands.append((a, b, 0.0, 1.0))
            elif form == "inv":
                if (xv == 0).any():
                    continue
                m = np.stack([np.ones(2), 1 / xv], 1)
                a, b = np.linalg.solve(m, yv)
                cands.append((a, b, 1.0, 0.0))
            else:
                m = np.stack([xv, np.ones(3), -xv * yv], 1)
                a, b, c = np.linalg.solve(m, yv)
                cands.append((a, b, c, 1.0))
        except np.linalg.LinAlgError:
            continue
    for a, b, c, d in cands:
        with np.errstate(divide="ignore", invalid="ignore"):  # (a pole: not this form)
            got = (a * fx + b) / (c * fx + d)
        if not np.all(np.abs(got - fy) <= 1e-12 * np.maximum(1.0, np.abs(fy))):
            continue
        if len(ux) == (3 if d == 1.0 and c else 2):
            # no point left to check the fit: trust only small integer coefficients
            # (n / (n - 1)) of the size itself; a float looked up by size (a table) must not pass
            if fn is not None:
                continue
            scale = max(abs(a), abs(b), abs(c), 1e-300)
            if not all(abs(v / scale * 4 - round(v / scale * 4)) < 1e-9 for v in (a, b, c)):
                continue
        return float(a), float(b), float(c), float(d)
    return None


def _fmt_points(pts: list[dict[str, int]]) -> str:
    return "; ".join(",".join(f"{k}={v}" for k, v in p.items()) for p in pts)


# -- arange made inside a graph -----------------------------------------------------------


def _arange_impl(*, start, step, n, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "f":  # as ember.arange computes it (float64, then cast)
        return (start + np.arange(n, dtype=np.float64) * step).astype(dt)
    return (start + np.arange(n, dtype=np.int64) * step).astype(dt)


arange_p = Primitive(
    "arange",
    "creation",
    impl=_arange_impl,
    abstract=lambda *, start, step, n, dtype: AbstractValue((n,), from_numpy_dtype(dtype)),
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)
EXTRA_PRIMITIVES[arange_p.name] = arange_p


def _eye_impl(*, n, m, dtype):
    return np.eye(n, m, dtype=dtype)


eye_p = Primitive(
    "eye",
    "creation",
    impl=_eye_impl,
    abstract=lambda *, n, m, dtype: AbstractValue((n, m), from_numpy_dtype(dtype)),
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)
EXTRA_PRIMITIVES[eye_p.name] = eye_p


def is_eye(arrays: list[np.ndarray]) -> bool:
    """Whether every array is the identity matrix of its own shape (``ember.eye(2 * n)``)."""
    a0 = arrays[0]
    return all(
        a.ndim == 2 and a.dtype == a0.dtype and np.array_equal(a, np.eye(*a.shape, dtype=a.dtype))
        for a in arrays
    ) and any(min(a.shape) > 1 for a in arrays)


def as_arange(arrays: list[np.ndarray]) -> tuple[Any, Any] | None:
    """``(start, step)`` when every array is the same arithmetic progression (cut to its
    own length: ``ember.arange(x.shape[1])``), else None."""
    a0 = arrays[0]
    if a0.ndim != 1 or a0.dtype.kind not in "iuf":
        return None
    if any(a.dtype != a0.dtype or a.ndim != 1 for a in arrays):
        return None
    longest = max(arrays, key=len)
    if len(longest) < 2:
        return None
    start, step = longest[0].item(), (longest[1] - longest[0]).item()
    if step == 0:
        return None
    for a in arrays:
        want = _arange_impl(start=start, step=step, n=len(a), dtype=a.dtype)
        if not np.array_equal(a, want):
            return None
    return start, step


def shifted_arange(arrays: list[np.ndarray]) -> tuple[list[int], int] | None:
    """``(starts, step)`` when every array is an integer progression of one step from a
    start of its own (``ember.arange(n, 2 * n)``: the starts are fitted as sizes), else
    None."""
    a0 = arrays[0]
    if any(a.ndim != 1 or a.dtype != a0.dtype or len(a) == 0 for a in arrays):
        return None
    if a0.dtype.kind not in "iu":
        return None
    longest = max(arrays, key=len)
    if len(longest) < 2:
        return None
    step = int(longest[1] - longest[0])
    if step == 0:
        return None
    starts = [int(a[0]) for a in arrays]
    for a, start in zip(arrays, starts):
        if not np.array_equal(a, _arange_impl(start=start, step=step, n=len(a), dtype=a.dtype)):
            return None
    return starts, step


# -- inputs at other sizes ----------------------------------------------------------------


def resized_axes(t: Tensor, sizes: dict[int, int], shift: int = 0) -> Tensor:
    """A copy of ``t`` resized along each axis of ``sizes`` (entries taken cyclically from
    ``shift``, so that values differ from the original's), same requires_grad."""
    a = t._data
    if a.ndim == 0:
        arr = a.copy()
    else:
        arr = a
        for ax in range(a.ndim):
            n = sizes[ax] if ax in sizes else a.shape[ax]
            if n != a.shape[ax] or (ax == 0 and shift):
                arr = np.take(arr, (np.arange(n) + shift) % max(a.shape[ax], 1), axis=ax)
        arr = like_layout(arr, a)
        if arr is a:
            arr = a.copy()
    r = _new(arr)
    if t.requires_grad:
        r.requires_grad = True
    return r


# -- the explicit API ----------------------------------------------------------------------


def mark_dynamic(t: Tensor, dim: int | list[int] | tuple[int, ...]) -> None:
    """Make axis ``dim`` of ``t`` symbolic when ``t`` is passed to a compiled function
    (``torch._dynamo.mark_dynamic``): its graph then serves every size of that axis from the
    first trace on, instead of after the size first changes.

    Example:
        >>> import ember
        >>> f = ember.compile(lambda x: x.reshape(-1) * 2)
        >>> x = ember.ones(2, 5)
        >>> ember.compile.mark_dynamic(x, 1)
        >>> _ = f(x); _ = f(ember.ones(2, 9))
        >>> f.explain().traces, f.explain().symbolic_dims
        (1, ['argument 0 dim 0: B', 'argument 0 dim 1: s1'])
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"mark_dynamic expects a Tensor, got {type(t).__name__}")
    dims = [dim] if isinstance(dim, int) else list(dim)
    marked = set(t.__dict__.get("_dynamic_dims", ()))
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            raise TypeError(f"mark_dynamic: dim must be an int, got {d!r}")
        if not -t.ndim <= d < t.ndim:
            raise IndexError(
                f"mark_dynamic: dim {d} is out of range for a tensor with {t.ndim} dimensions"
            )
        marked.add(d % t.ndim)
    t.__dict__["_dynamic_dims"] = frozenset(marked)


def marked_dims(t: Tensor) -> frozenset[int]:
    return t.__dict__.get("_dynamic_dims", frozenset())
