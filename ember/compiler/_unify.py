"""Unification of traces: several traces of one function become one graph.

Two traces at different batch sizes (or, for sizes beyond the batch, the traces at the corners
of a cube of nearby sizes, :mod:`ember.compiler._shapes`) are merged equation by equation into
one graph whose sizes are symbols: ints and floats that differ between the traces are fitted
as affine (or ratio) expressions of the sizes, captured tensors are classified (the same
object in every trace is state; a fresh one each time becomes a ``full``/``constant``
equation), and any other disagreement is a mismatch (the caller then specializes).
Separate from :mod:`ember.compiler.trace`, which records one trace; ``trace.unify`` and the
other names stay importable there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._tensor import Tensor, _new
from .ir import RATIO_FNS, Dim, Eqn, Graph, Literal, Ratio, Var
from .prims import constant_p, full_p

if TYPE_CHECKING:
    from .trace import Trace

# -- unification of traces ------------------------------------------------------------------


class _Mismatch(Exception):
    pass


def _affine(a1, a2, b1, b2, what):
    if a1 == a2:
        return a1
    if b1 == b2:
        raise _Mismatch(f"{what}: {a1} vs {a2} at the same batch size")
    k, r = divmod(a2 - a1, b2 - b1)
    if r:
        raise _Mismatch(f"{what}: {a1} -> {a2} is not affine in the batch size")
    c = a1 - k * b1
    return Dim("B", k, c) if k else c


class _BatchFit:
    """How two traces at batch sizes ``b1``, ``b2`` unify ints (affine in ``B``) and floats
    (:class:`FloatPoints`, fitted later by :func:`fit_floats`)."""

    def __init__(self, b1: int, b2: int):
        self.b1, self.b2 = b1, b2

    def fit_int(self, vals: list[int], what: str) -> Any:
        return _affine(vals[0], vals[1], self.b1, self.b2, what)

    def fit_float(self, vals: list[float], what: str) -> Any:
        v1, v2 = vals
        if self.b1 != self.b2 and _FLOATS is not None:  # fitted as a function of the batch later
            fp = FloatPoints([(self.b1, v1), (self.b2, v2)], what)
            _FLOATS.append(fp)
            return fp
        raise _Mismatch(f"{what}: {v1!r} vs {v2!r} (a Python float that changes)")


def _all_same(vs: list[Any]) -> bool:
    return all(v == vs[0] for v in vs[1:])


def _unify_value(vs: list[Any], fit: Any, what: str) -> Any:
    t = type(vs[0])
    if any(type(v) is not t for v in vs[1:]):
        raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")
    if t is int or t is np.int64:
        return fit.fit_int([int(v) for v in vs], what)
    if t is tuple or t is list:
        if any(len(v) != len(vs[0]) for v in vs):
            raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")
        return t([_unify_value(list(items), fit, what) for items in zip(*vs)])
    if t is dict:
        if any(v.keys() != vs[0].keys() for v in vs):
            raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")
        return {k: _unify_value([v[k] for v in vs], fit, f"{what}[{k}]") for k in vs[0]}
    if t is slice:
        parts = [
            _unify_value([getattr(v, f) for v in vs], fit, what) for f in ("start", "stop", "step")
        ]
        return slice(*parts)
    if t is np.ndarray:
        v1 = vs[0]
        if all(
            v.shape == v1.shape and v.dtype == v1.dtype and np.array_equal(v, v1) for v in vs[1:]
        ):
            return v1
        raise _Mismatch(f"{what}: a constant array differs between calls")
    if t is float:
        if all(v == vs[0] or (np.isnan(v) and np.isnan(vs[0])) for v in vs[1:]):
            return vs[0]
        return fit.fit_float(vs, what)
    if _all_same(vs):
        return vs[0]
    raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")


def _same_scalar(a, b) -> bool:
    if a == b:
        return True
    try:
        return bool(np.isnan(a) and np.isnan(b))
    except TypeError:
        return False


def _uniform(a: np.ndarray):
    if a.size == 0:
        return True, 0
    f = a.reshape(-1)[0]
    if (a == f).all():
        return True, f.item()
    return False, None


class FloatPoints:
    """A Python float param that changed with the batch size: its values so far."""

    __slots__ = ("points", "what")

    def __init__(self, points: list[tuple[int, float]], what: str):
        self.points, self.what = points, what


_FLOATS: list[FloatPoints] | None = None


def unify_floats(t1: Trace, t2: Trace, b1: int, b2: int) -> tuple[Graph | None, str, list]:
    """:func:`unify`, letting Python floats vary with the batch size: they come back as
    :class:`FloatPoints` (in the graph and in the returned list) for :func:`fit_floats`."""
    global _FLOATS
    _FLOATS = []
    try:
        g, why = unify(t1, t2, b1, b2)
        return g, why, _FLOATS
    finally:
        _FLOATS = None


def fit_floats(graph: Graph, floats: list, more: list[list]) -> str:
    """Replace each :class:`FloatPoints` of ``graph`` by a :class:`~.ir.Ratio` of the batch
    size fitted through three points and checked on a fourth; ``more``: the float lists of
    unifications with traces at other batch sizes. Returns "" or why it does not fit."""
    for extra in more:
        if len(extra) != len(floats):
            return "floats that change with the batch size differ between calls"
        for fp, ex in zip(floats, extra):
            fp.points.append(ex.points[1])
    fitted: dict[int, Ratio] = {}
    for fp in floats:
        r = _fit_ratio(fp.points)
        if r is None:
            return f"{fp.what}: a Python float that changes with the batch size in no simple way"
        fitted[id(fp)] = r

    def sub(v):
        t = type(v)
        if t is FloatPoints:
            return fitted[id(v)]
        if t is tuple or t is list:
            return t(sub(x) for x in v)
        if t is dict:
            return {k: sub(x) for k, x in v.items()}
        return v

    for e in graph.eqns:
        e.params = sub(e.params)
        e.inputs = [Literal(sub(v.value)) if isinstance(v, Literal) else v for v in e.inputs]
    graph.outputs = [Literal(sub(v.value)) if isinstance(v, Literal) else v for v in graph.outputs]
    return ""


def _snap(coefs: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The coefficients scaled to integers when some scale makes them all integers (to
    rounding): ``1 / B`` fits as ``(~0 B + 1) / (B + ~0)``, and as ``1 / B`` exactly it gives
    the very float Python computes at every batch size."""
    nonzero = [abs(v) for v in coefs if abs(v) > 1e-9]
    for scale in [1.0, *(1.0 / v for v in nonzero), *range(2, 65)]:
        scaled = [v * scale for v in coefs]
        ints = [round(v) for v in scaled]
        if all(abs(v - i) <= 1e-9 * max(1.0, abs(v)) for v, i in zip(scaled, ints)):
            return (float(ints[0]), float(ints[1]), float(ints[2]), float(ints[3]))
    return coefs


def _fit_ratio(points: list[tuple[int, float]]) -> Ratio | None:
    # (a x + b) / (c x + d) through the first three points, checked on the rest: normalized
    # with d = 1, or with c = 1 when the denominator has no constant term (1 / B, n / B)
    # x may also be sqrt(B) or log(B): ``B ** 0.5``, ``1 / math.sqrt(B)``, ``math.log(B)``
    if len(points) < 4:
        return None
    ys = np.array([p[1] for p in points[:3]], np.float64)
    for fn, f in RATIO_FNS.items():
        if fn == "log" and any(p[0] <= 0 for p in points):
            continue
        xs = np.array([f(p[0]) for p in points[:3]], np.float64)
        for const_denominator in (True, False):
            if const_denominator:  # y (c x + 1) = a x + b
                m, rhs = np.stack([xs, np.ones(3), -xs * ys], axis=1), ys
            else:  # y (x + d) = a x + b
                m, rhs = np.stack([xs, np.ones(3), -ys], axis=1), xs * ys
            try:
                a, b, k = np.linalg.solve(m, rhs)
            except np.linalg.LinAlgError:
                continue
            c, d = (float(k), 1.0) if const_denominator else (1.0, float(k))
            a, b, c, d = _snap((float(a), float(b), c, d))
            r = Ratio("B", a, b, c, d, fn=fn)
            if all(abs(r.eval({"B": x}) - y) <= 1e-12 * max(1.0, abs(y)) for x, y in points):
                r.known = {int(x): float(y) for x, y in points}
                return r
    return None


def unify(t1: Trace, t2: Trace, b1: int, b2: int) -> tuple[Graph | None, str]:
    """One graph for both traces (batch sizes ``b1``, ``b2``; equal sizes: no symbol).

    Returns ``(graph, "")`` or ``(None, reason)`` when the traces differ in structure.
    """
    try:
        g = _unify([t1, t2], _BatchFit(b1, b2))
    except _Mismatch as e:
        return None, str(e)
    if b1 != b2:
        for i, v in enumerate(g.inputs):
            if v.shape and v.shape[0] == Dim("B"):
                g.symbols["B"] = (i, 0)
                break
    return g, ""


def unify_points(
    traces: list[Trace], design: Any, symbols: dict[str, tuple[int, int]]
) -> tuple[Graph | None, str]:
    """One graph for traces taken at the points of ``design`` (a
    :class:`ember.compiler._shapes.Design`): every int and float that changes between them is
    fitted to an expression of the sizes. ``symbols``: which input axis gives each size.
    Returns ``(graph, "")`` or ``(None, reason)``."""
    from ._shapes import SizeMismatch

    try:
        g = _unify(traces, design)
    except (_Mismatch, SizeMismatch) as e:
        return None, str(e)
    g.symbols = dict(symbols)
    return g, ""


def _unify(ts: list[Trace], fit: Any) -> Graph:
    from ._shapes import arange_p, as_arange, eye_p, is_eye, shifted_arange

    vmaps: list[dict[int, Var]] = [{} for _ in ts]  # per trace: id(var) -> the new var

    def nv(vs: list[Var], what: str) -> Var:
        v1 = vs[0]
        if any(len(v.shape) != len(v1.shape) or v.dtype is not v1.dtype for v in vs[1:]):
            raise _Mismatch(f"{what}: {' vs '.join(v.type_str() for v in vs)}")
        shape = tuple(fit.fit_int(list(d), what) for d in zip(*(v.shape for v in vs)))
        v = Var(shape, v1.dtype)
        for m, x in zip(vmaps, vs):
            m[id(x)] = v
        return v

    def get(vs: list[Any], what: str) -> Any:
        lits = [isinstance(v, Literal) for v in vs]
        if any(lits):
            if not all(lits):
                raise _Mismatch(f"{what}: a tensor in one call, a constant in the other")
            return Literal(_unify_value([v.value for v in vs], fit, what))
        got = [m.get(id(v)) for m, v in zip(vmaps, vs)]
        if got[0] is None or any(g is not got[0] for g in got[1:]):
            raise _Mismatch(f"{what}: the data flow differs between calls")
        return got[0]

    t1 = ts[0]
    if any(len(t.inputs) != len(t1.inputs) for t in ts):
        raise _Mismatch("the number of tensor arguments differs")
    inputs = [nv(list(vs), f"input {i}") for i, vs in enumerate(zip(*(t.inputs for t in ts)))]
    if any(len(t.captured) != len(t1.captured) for t in ts):
        raise _Mismatch("different tensors are read from outside the function between calls")
    if any(len(t.eqns) != len(t1.eqns) for t in ts):
        raise _Mismatch(f"{' vs '.join(str(len(t.eqns)) for t in ts)} operations between calls")
    captured: list[Var] = []
    cap_tensors: list[Any] = []
    pre: list[Eqn] = []
    cap_index: dict[int, int] = {}
    for i, caps in enumerate(zip(*(t.captured for t in ts))):
        what = f"captured tensor {i}"
        v = nv([c[1] for c in caps], what)
        ta = caps[0][0]
        if all(c[0] is ta for c in caps[1:]):
            cap_index[i] = len(captured)
            captured.append(v)
            cap_tensors.append(ta)
            continue
        # fresh on every call: re-created inside the graph
        snaps = [c[2] for c in caps]
        sa = snaps[0]
        if not all(c[3] for c in caps):
            raise _Mismatch(
                f"{what} (shape {sa.shape}) is computed outside ember's ops (raw NumPy), "
                "so the graph cannot recompute it"
            )
        unif = [_uniform(x) for x in snaps]
        if all(u for u, _f in unif) and all(_same_scalar(unif[0][1], f) for _u, f in unif[1:]):
            shape = tuple(fit.fit_int(list(d), what) for d in zip(*(x.shape for x in snaps)))
            pre.append(
                Eqn(full_p, [], {"shape": shape, "value": unif[0][1], "dtype": sa.dtype}, [v])
            )
        elif all(x.shape == sa.shape and np.array_equal(x, sa, equal_nan=True) for x in snaps):
            pre.append(Eqn(constant_p, [], {"value": sa}, [v]))
        elif (ar := as_arange(snaps)) is not None:  # ember.arange(x.shape[1])
            p = {"start": ar[0], "step": ar[1], "n": v.shape[0], "dtype": sa.dtype}
            pre.append(Eqn(arange_p, [], p, [v]))
        elif (sh := shifted_arange(snaps)) is not None:  # ember.arange(n, 2 * n)
            start = fit.fit_int(sh[0], what)
            p = {"start": start, "step": sh[1], "n": v.shape[0], "dtype": sa.dtype}
            pre.append(Eqn(arange_p, [], p, [v]))
        elif is_eye(snaps):  # ember.eye(2 * x.shape[0])
            p = {"n": v.shape[0], "m": v.shape[1], "dtype": sa.dtype}
            pre.append(Eqn(eye_p, [], p, [v]))
        else:
            raise _Mismatch(
                f"{what} (shape {sa.shape}) is made outside ember's ops with values that "
                "change between calls (random or data-dependent)"
            )
    eqns = list(pre)
    for k, es in enumerate(zip(*(t.eqns for t in ts))):
        e1 = es[0]
        what = f"equation {k} ({e1.prim.name})"
        for e in es[1:]:
            if e1.prim is not e.prim or len(e1.inputs) != len(e.inputs):
                raise _Mismatch(f"{what}: {e1.prim.name} vs {e.prim.name}")
        ins = [get(list(vs), what) for vs in zip(*(e.inputs for e in es))]
        params = _unify_value([e.params for e in es], fit, what)
        outs = [nv(list(vs), what) for vs in zip(*(e.outputs for e in es))]
        eqns.append(Eqn(e1.prim, ins, params, outs, e1.mutates))
    if any(t.out_tree != t1.out_tree or len(t.outputs) != len(t1.outputs) for t in ts):
        raise _Mismatch("the structure of the result differs")
    outputs = [get(list(vs), f"output {i}") for i, vs in enumerate(zip(*(t.outputs for t in ts)))]
    for t in ts[1:]:
        if len(t1.seeds) != len(t.seeds) or any(a is not b for a, b in zip(t1.seeds, t.seeds)):
            raise _Mismatch("random seeds are drawn differently between calls")
        if [k for k, _ in t1.grad_effects] != [k for k, _ in t.grad_effects]:
            raise _Mismatch("different .grad attributes are set between calls")
    grad_effects: list[tuple[int, Var | None]] = []
    input_grad_effects: list[tuple[int, Var | None]] = []
    for gs in zip(*(t.grad_effects for t in ts)):
        k = gs[0][0]
        vs = [g[1] for g in gs]
        gv = None if all(x is None for x in vs) else get(vs, f".grad of {k}")
        if k[0] == "in":
            input_grad_effects.append((k[1], gv))
        elif k[1] in cap_index:
            grad_effects.append((cap_index[k[1]], gv))
    aot = None
    if any((t.aot is None) != (t1.aot is None) for t in ts):
        raise _Mismatch("autograd through the graph in one call only")
    if t1.aot is not None:
        n1, d1, k1, _g1 = t1.aot
        for t in ts[1:]:
            assert t.aot is not None
            n2, d2, k2, _g2 = t.aot
            if n1 != n2 or d1 != d2 or k1 != k2:
                raise _Mismatch("the backward pass differs between calls")
        wrt, gvars = [], []
        for j, key in enumerate(k1):
            if key[0] == "cap" and key[1] not in cap_index:
                continue  # a fresh tensor: nobody sees its gradient
            wrt.append(key if key[0] == "in" else ("cap", cap_index[key[1]]))
            vs = [t.aot[3][j] for t in ts]  # type: ignore[index]
            gvars.append(None if all(x is None for x in vs) else get(vs, f"gradient {key}"))
        aot = (len(pre) + n1, d1, wrt, gvars)
    g = Graph(
        inputs=inputs,
        eqns=eqns,
        outputs=outputs,
        captured=captured,
        captured_tensors=cap_tensors,
        grad_effects=grad_effects,
        symbols={},
        seed_sources=t1.seeds,
        input_grad_effects=input_grad_effects,
        out_tree=t1.out_tree,
    )
    g.aot = aot
    if all(t.out_alias == t1.out_alias for t in ts):
        g.out_alias = t1.out_alias
    return g


def like_layout(arr: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``arr`` (a fresh copy) laid out in memory as ``a``: C-contiguous when ``a`` is, else with
    ``a``'s axis order (a transposed input stays transposed) and not C-contiguous, so that
    Python code that branches on ``x.is_contiguous()`` traces the same path at every size."""
    arr = np.ascontiguousarray(arr)
    if a.flags.c_contiguous or arr.ndim < 2:
        return arr
    order = sorted(range(a.ndim), key=lambda i: -a.strides[i])
    out = np.ascontiguousarray(arr.transpose(order)).transpose(np.argsort(order))
    if out.flags.c_contiguous and out.shape[-1] > 1:  # a sliced input (x[:, ::2])
        buf = np.empty(out.shape[:-1] + (2 * out.shape[-1],), out.dtype)
        buf[..., ::2] = out
        out = buf[..., ::2]
    return out


def resized(t: Tensor, b: int, shift: int = 0) -> Tensor:
    """A copy of ``t`` with ``b`` rows along dim 0 taken cyclically from row ``shift`` (so that
    values differ from the original's), with the same requires_grad and memory layout."""
    a = t._data
    if a.ndim == 0:
        arr = a.copy()
    else:
        arr = like_layout(np.take(a, (np.arange(b) + shift) % a.shape[0], axis=0), a)
    r = _new(arr)
    if t.requires_grad:
        r.requires_grad = True
    return r
