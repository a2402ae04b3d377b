"""Elementwise and reduction fusion: chains of elementwise equations, and such a chain with the
last-axis sum or mean that reads it, become one ``fused`` equation.

A group is a set of elementwise equations of one float dtype whose results have one shape
(the output's), connected so that every intermediate value is read only inside the group and
never seen outside (not an output, a ``.grad`` effect or written in place). The group's
external operands (graph values, broadcast to the output shape, and Python scalars, symbolic
ones included) become the inputs of a single equation whose kernel
(:mod:`ember.compiler.codegen`) computes every member per element in one pass over memory.
``x * 0.5 * (1 + tanh(0.79788456 * (x + 0.044715 * x**3)))`` is eight NumPy passes eagerly
and one loop fused.

A group whose result only a ``sum`` or ``mean`` over the last axis reads (at least 16 per
row: shorter rows are summed by NumPy's pairwise sum eagerly) joins that reduction: the kernel
computes each row into a buffer and adds it with the eager row-sum kernel's own summation, so
``(x * x).mean(-1)`` never writes ``x * x`` and equals the eager result bitwise.

Each member's expression is written the way its eager kernel computes (float32 exp, erf,
sigmoid and the GELU/SiLU forms are the kernel layer's own per-element functions) and rounded
to the member's dtype, so fused results agree with eager ones to rounding. Float64 groups
hold arithmetic, comparisons and selections only (their transcendental kernels are NumPy's and
SciPy's, which a numba loop would not match). Groups whose output is small (fewer than
:data:`MIN_ELEMENTS` at the traced sizes) are left alone: the call costs more than it saves.

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes.fuse import fuse_elementwise
    >>> g = trace_graph(lambda x: (x * 2.0 + 1.0).relu(), ember.ones(256, 256))
    >>> fuse_elementwise(g, min_elements=0).primitives()
    ['fused']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...ops._core import AbstractValue, Primitive
from ..codegen import FusedKernel
from ..ir import Dim, Eqn, Graph, Literal, Var
from ._util import escaping, mutable_vars

__all__ = ["MIN_ELEMENTS", "RULES", "FusedPrimitive", "fuse_elementwise"]

MIN_ELEMENTS = 32768


def _c(dt: str, v: float) -> str:
    return f"np.{dt}({v!r})"


# prim name -> (expression from operand expressions and the group dtype, float32 only?)
Rule = Callable[[list[str], str], str]
RULES: dict[str, tuple[Rule, bool]] = {
    "add": (lambda a, dt: f"({a[0]} + {a[1]})", False),
    "sub": (lambda a, dt: f"({a[0]} - {a[1]})", False),
    "mul": (lambda a, dt: f"({a[0]} * {a[1]})", False),
    "div": (lambda a, dt: f"({a[0]} / {a[1]})", False),
    "neg": (lambda a, dt: f"(-{a[0]})", False),
    "abs": (lambda a, dt: f"abs({a[0]})", False),
    "maximum": (lambda a, dt: f"_maximum({a[0]}, {a[1]})", False),
    "minimum": (lambda a, dt: f"_minimum({a[0]}, {a[1]})", False),
    "sqrt": (lambda a, dt: f"np.sqrt({a[0]})", False),
    "relu": (lambda a, dt: f"({a[0]} if not ({a[0]} <= {_c(dt, 0.0)}) else {_c(dt, 0.0)})", False),
    # (the kernel layer's form: 0 where the output is <= 0, else g, so NaN g is masked too)
    "relu_grad": (lambda a, dt: f"({_c(dt, 0.0)} if {a[1]} <= {_c(dt, 0.0)} else {a[0]})", False),
    # (float32: the kernel layer's form, whose 1 - y*y is one fused multiply-add)
    "tanh_grad": (
        lambda a, dt: (
            f"_tanh_grad({a[0]}, {a[1]})"
            if dt == "float32"
            else f"({a[0]} * ({_c(dt, 1.0)} - {a[1]} * {a[1]}))"
        ),
        False,
    ),
    "sigmoid_grad": (lambda a, dt: f"({a[0]} * ({a[1]} * ({_c(dt, 1.0)} - {a[1]})))", False),
    "gt": (lambda a, dt: f"({a[0]} > {a[1]})", False),
    "lt": (lambda a, dt: f"({a[0]} < {a[1]})", False),
    "ge": (lambda a, dt: f"({a[0]} >= {a[1]})", False),
    "le": (lambda a, dt: f"({a[0]} <= {a[1]})", False),
    "eq": (lambda a, dt: f"({a[0]} == {a[1]})", False),
    "ne": (lambda a, dt: f"({a[0]} != {a[1]})", False),
    "where": (lambda a, dt: f"({a[1]} if {a[0]} else {a[2]})", False),
    "exp": (lambda a, dt: f"_exp({a[0]})", True),
    "tanh": (lambda a, dt: f"_tanh({a[0]})", True),
    "sigmoid": (lambda a, dt: f"_sigmoid({a[0]})", True),
    "erf": (lambda a, dt: f"_erf({a[0]})", True),
    "silu": (lambda a, dt: f"({a[0]} / (_ONE + _exp(-{a[0]})))", True),
    "silu_grad": (lambda a, dt: f"_silu_grad({a[0]}, {a[1]})", True),
}
# primitives with params: the params must be these exactly
_GELU = {
    ("gelu", "none"): ("_gelu({0})", 1),
    ("gelu", "tanh"): ("_gelu_tanh({0})", 1),
    ("gelu_grad", "none"): ("_gelu_grad({0}, {1})", 2),
    ("gelu_grad", "tanh"): ("_gelu_tanh_grad({0}, {1})", 2),
}
_BOOL_OUT = ("gt", "lt", "ge", "le", "eq", "ne")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _expr(e: Eqn, args: list[str], dt: str) -> str | None:
    name = e.prim.name
    if name in ("gelu", "gelu_grad"):
        approx = e.params.get("approximate", "none") if e.params else "none"
        form = _GELU.get((name, approx)) if set(e.params or {}) <= {"approximate"} else None
        return None if form is None or dt != "float32" else form[0].format(*args)
    if e.params:
        return None
    if name == "pow":  # small integer powers only: x*x, x*x*x (eager: np.power)
        k = e.inputs[1].value if isinstance(e.inputs[1], Literal) else None
        if type(k) in (int, float) and k in (2, 3):
            return "*".join([f"{args[0]}"] * int(k)).join("()")
        return None
    rule = RULES.get(name)
    if rule is None or (rule[1] and dt != "float32"):
        return None
    return rule[0](args, dt)


def _elements(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= 32 if isinstance(d, Dim) else int(d)
    return n


class _Group:
    def __init__(self, e: Eqn, dtype: np.dtype):
        self.eqns = [e]
        self.dtype = dtype
        self.shape = e.outputs[0].shape

    def member_ids(self) -> set[int]:
        return {id(m.outputs[0]) for m in self.eqns}


def _fusable(e: Eqn, mutable: set[int]) -> np.dtype | None:
    """The group dtype ``e`` can join with (its float dtype), or None."""
    if e.prim.kind != "elementwise" or len(e.outputs) != 1 or e.mutates:
        return None
    out = e.outputs[0]
    if id(out) in mutable:
        return None
    floats = [v.dtype.np for v in (*e.inputs, out) if isinstance(v, Var)]
    floats = [d for d in floats if d != np.dtype(bool)]
    if not floats or any(d not in _FLOATS for d in floats) or len(set(floats)) != 1:
        return None
    dt = floats[0]
    if out.dtype.np != dt and not (e.prim.name in _BOOL_OUT and out.dtype.np == np.dtype(bool)):
        return None
    for v in e.inputs:
        if isinstance(v, Var) and id(v) in mutable:
            return None
        if isinstance(v, Literal) and isinstance(v.value, np.ndarray):
            return None
    if _expr(e, ["x"] * len(e.inputs), dt.name) is None:
        return None
    return dt


def fuse_elementwise(graph: Graph, min_elements: int = MIN_ELEMENTS) -> Graph:
    """A new graph with each fusable elementwise group replaced by one ``fused`` equation."""
    esc = escaping(graph)
    mutable = mutable_vars(graph)
    uses: dict[int, int] = {}
    for e in graph.eqns:
        for v in e.inputs:
            if isinstance(v, Var):
                uses[id(v)] = uses.get(id(v), 0) + 1
    group_of: dict[int, _Group] = {}  # id(output var) -> its group
    for e in graph.eqns:
        dt = _fusable(e, mutable)
        if dt is None:
            continue
        g = _Group(e, dt)
        for v in e.inputs:
            prev = group_of.get(id(v)) if isinstance(v, Var) else None
            if (
                prev is not None
                and prev is not g
                and uses.get(id(v)) == 1
                and id(v) not in esc
                and prev.dtype == dt
                and prev.shape == g.shape
                and prev.eqns[-1].outputs[0] is v
            ):
                g.eqns = prev.eqns + g.eqns
        for m in g.eqns:
            group_of[id(m.outputs[0])] = g
    # a group whose result only a last-axis sum/mean reads is computed row by row into the
    # reduction (keyed by the reduction's equation)
    reductions: dict[int, _Group] = {}
    for e in graph.eqns:
        src = e.inputs[0] if e.inputs else None
        if not isinstance(src, Var):
            continue
        grp = group_of.get(id(src))
        if (
            grp is not None
            and grp.eqns[-1].outputs[0] is src
            and uses.get(id(src)) == 1
            and id(src) not in esc
            and _row_reduction(e, src, mutable)
            and _elements(grp.shape) >= min_elements
        ):
            reductions[id(e)] = grp
    reduced = {id(g) for g in reductions.values()}
    roots: dict[int, _Group] = {}
    for g in {id(g): g for g in group_of.values()}.values():
        if len(g.eqns) >= 2 and _elements(g.shape) >= min_elements and id(g) not in reduced:
            roots[id(g.eqns[-1])] = g
    if not roots and not reductions:
        return graph
    dropped = {id(m) for g in roots.values() for m in g.eqns[:-1]}
    dropped |= {id(m) for g in reductions.values() for m in g.eqns}
    eqns = []
    for e in graph.eqns:
        if id(e) in dropped:
            continue
        root = roots.get(id(e))
        red = reductions.get(id(e))
        if red is not None:
            eqns.append(_fused_eqn(red, e))
        else:
            eqns.append(_fused_eqn(root) if root is not None else e)
    new = graph.copy()
    new.eqns = eqns
    return new


# (below this row length eager sums use NumPy's pairwise sum, not the row kernel)
_MIN_ROW = 16


def _row_reduction(e: Eqn, v: Var, mutable: set[int]) -> bool:
    """Whether ``e`` is a sum or mean of ``v`` over its last axis only, computed eagerly by
    the row-sum kernel (float32/float64, a static row length of at least ``_MIN_ROW``)."""
    if e.prim.name not in ("sum", "mean") or len(e.inputs) != 1 or e.mutates:
        return False
    if id(e.outputs[0]) in mutable or v.dtype.np not in _FLOATS:
        return False
    if e.outputs[0].dtype.np != v.dtype.np or not v.shape:
        return False
    p = e.params or {}
    n = v.shape[-1]
    return (
        set(p) <= {"dims", "keepdim", "shape"}
        and tuple(p.get("dims", ())) == (len(v.shape) - 1,)
        and not isinstance(n, Dim)
        and int(n) >= _MIN_ROW
    )


def _fused_eqn(g: _Group, reduction: Eqn | None = None) -> Eqn:
    members = g.eqns
    inside = {id(m.outputs[0]): f"t{k}" for k, m in enumerate(members)}
    operands: list[Var | Literal] = []
    names: dict[Any, str] = {}
    params: list[str] = []
    body: list[tuple[str, str, str]] = []
    sources: list[list[tuple[bool, int]]] = []
    for k, m in enumerate(members):
        args = []
        src: list[tuple[bool, int]] = []
        sources.append(src)
        for v in m.inputs:
            if isinstance(v, Var) and id(v) in inside:
                args.append(inside[id(v)])
                src.append((True, int(inside[id(v)][1:])))
                continue
            key = id(v) if isinstance(v, Var) else ("lit", len(operands))
            name = names.get(key)
            if name is None:
                name = f"a{len(params)}" if isinstance(v, Var) else f"s{len(params)}"
                names[key] = name
                params.append(name)
                operands.append(v)
            args.append(name)
            src.append((False, params.index(name)))
        expr = _expr(m, args, g.dtype.name)
        assert expr is not None  # (the group admitted only members with a rule)
        body.append((f"t{k}", expr, m.outputs[0].dtype.np.name))
    if reduction is None:
        out = members[-1].outputs[0]
        kernel = FusedKernel(params, body, f"t{len(members) - 1}")
        prim = _fused_primitive(kernel, members, out, sources)
        return Eqn(prim, operands, {}, [out])
    out = reduction.outputs[0]
    n = int(members[-1].outputs[0].shape[-1])
    scale = 1.0 if reduction.prim.name == "sum" else 1.0 / n
    kernel = FusedKernel(params, body, f"t{len(members) - 1}", reduce=scale)
    prim = _fused_primitive(kernel, members, out, sources, reduction)
    return Eqn(prim, operands, {}, [out])


def _fused_primitive(
    kernel: FusedKernel,
    members: list[Eqn],
    out: Var,
    sources: list[list[tuple[bool, int]]],
    reduction: Eqn | None = None,
) -> Primitive:
    dtype = out.dtype.np
    # each member's operands: an earlier member's result (True, k) or group operand (False, i)
    plan = [(m.prim.impl, src, m.params) for m, src in zip(members, sources)]
    keepdim = bool((reduction.params or {}).get("keepdim", False)) if reduction else False

    def unfused(operands: tuple) -> np.ndarray:
        vals: list[Any] = []
        for fn, src, params in plan:
            args = [vals[i] if inner else operands[i] for inner, i in src]
            vals.append(fn(*args, **params) if params else fn(*args))
        if reduction is not None:  # (its params hold the traced shape: pass the real one)
            x = vals[-1]
            params = dict(reduction.params or {}, shape=x.shape)
            return reduction.prim.impl(x, **params)
        return vals[-1]

    def impl(*operands: Any, out: np.ndarray | None = None) -> np.ndarray:
        shape = np.broadcast_shapes(*[np.shape(a) for a in operands if isinstance(a, np.ndarray)])
        return kernel(
            *operands,
            shape=shape,
            dtype=dtype,
            fallback=lambda: unfused(operands),
            keepdim=keepdim,
            out=out,
        )

    def abstract(*avals: Any) -> AbstractValue:
        shapes = [a.shape for a in avals if isinstance(a, AbstractValue)]
        full = tuple(np.broadcast_shapes(*shapes))
        return AbstractValue(kernel.out_shape(full, keepdim), out.dtype)

    kind = "elementwise" if reduction is None else "reduction"
    prim = FusedPrimitive("fused", kind, impl=impl, abstract=abstract, register=False)
    prim.members = [m.prim.name for m in members] + ([reduction.prim.name] if reduction else [])
    prim.eqns = members + ([reduction] if reduction else [])
    prim.kernel = kernel
    return prim


class FusedPrimitive(Primitive):
    """A fused group's primitive (not registered: it exists only in executors' graphs);
    ``members`` names the primitives it computes, ``kernel`` is its generated kernel."""

    members: list[str]
    eqns: list[Eqn]
    kernel: FusedKernel
