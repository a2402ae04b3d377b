"""Algebraic simplification: identities that need no computation.

``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0``, ``x ** 1`` and ``-(-x)``
become ``x``; two permutes compose into one (none when they cancel, e.g. a double transpose);
two reshapes become one, and a reshape to the same shape disappears. A rewrite applies only
when shape and dtype are unchanged, and arithmetic ones only when neither value is written in
place nor seen by the caller (eager code would have returned a fresh array).

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes.dce import dce
    >>> from ember.compiler.passes.simplify import simplify
    >>> g = trace_graph(lambda x: (x.t().t() * 1 + 0).exp(), ember.ones(2, 3))
    >>> dce(simplify(g)).primitives()
    ['exp']
"""

from __future__ import annotations

from typing import Any

from ..ir import Eqn, Graph, Literal, Var
from ._util import escaping, mutable_vars, replace_uses

__all__ = ["simplify"]

_IDENTITY = {
    # prim -> (positions where a literal makes the op the identity, the literal's value)
    "add": ((0, 1), 0),
    "sub": ((1,), 0),
    "mul": ((0, 1), 1),
    "div": ((1,), 1),
    "pow": ((1,), 1),
}


def _is_scalar(v: Any, value: int) -> bool:
    if not isinstance(v, Literal):
        return False
    x = v.value
    return type(x) in (int, float) and x == value


def simplify(graph: Graph) -> Graph:
    """A copy of ``graph`` with algebraic identities removed."""
    g = graph.copy()
    mutable = mutable_vars(g)
    out = escaping(g)
    producer: dict[int, Eqn] = {}
    mapping: dict[int, Any] = {}
    keep = []

    def same_type(a: Any, b: Var) -> bool:
        return isinstance(a, Var) and a.shape == b.shape and a.dtype is b.dtype

    def frozen(*vs: Any) -> bool:
        return any(isinstance(v, Var) and (id(v) in mutable or id(v) in out) for v in vs)

    for e in g.eqns:
        e.inputs = [mapping.get(id(v), v) if isinstance(v, Var) else v for v in e.inputs]
        name = e.prim.name
        o = e.outputs[0] if len(e.outputs) == 1 else None
        repl: Any = None
        if o is not None and not e.mutates:
            if name in _IDENTITY and len(e.inputs) == 2:
                pos, val = _IDENTITY[name]
                for p in pos:
                    x = e.inputs[1 - p]
                    if _is_scalar(e.inputs[p], val) and same_type(x, o) and not frozen(x, o):
                        repl = x
                        break
            elif name == "neg" and isinstance(e.inputs[0], Var):
                src = producer.get(id(e.inputs[0]))
                y = src.inputs[0] if src is not None and src.prim.name == "neg" else None
                if y is not None and same_type(y, o) and not frozen(y, o, e.inputs[0]):
                    repl = y
            elif name in ("permute", "reshape") and isinstance(e.inputs[0], Var):
                repl = _view_chain(e, producer, same_type)
        if repl is not None:
            if isinstance(repl, Eqn):  # a rewritten equation replaces this one
                producer[id(o)] = repl
                keep.append(repl)
            else:
                mapping[id(o)] = repl
            continue
        for v in e.outputs:
            producer[id(v)] = e
        keep.append(e)
    g.eqns = keep
    replace_uses(g, mapping)
    return g


def _view_chain(e: Eqn, producer: dict[int, Eqn], same_type) -> Any:
    """A permute of a permute (or reshape of a reshape): the composition, or the source
    when it is the identity. Views share memory, so aliasing is unchanged."""
    x = e.inputs[0]
    o = e.outputs[0]
    name = e.prim.name
    if name == "reshape" and same_type(x, o):
        return x
    src = producer.get(id(x))
    if src is None or src.prim.name != name or not isinstance(src.inputs[0], Var):
        if name == "permute" and tuple(e.params["dims"]) == tuple(range(len(o.shape))):
            return x if same_type(x, o) else None
        return None
    base = src.inputs[0]
    if name == "permute":
        p1, p2 = src.params["dims"], e.params["dims"]
        dims = tuple(p1[i] for i in p2)
        if dims == tuple(range(len(dims))):
            return base if same_type(base, o) else None
        return Eqn(e.prim, [base], {**e.params, "dims": dims}, e.outputs)
    if same_type(base, o):
        return base
    params = dict(e.params)
    if "in_shape" in params:
        params["in_shape"] = base.shape
    return Eqn(e.prim, [base], params, e.outputs)
