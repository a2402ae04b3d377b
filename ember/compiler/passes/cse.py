"""Common-subexpression elimination: one equation for each repeated pure computation.

Two equations merge when they apply the same primitive to the same operands with equal params.
Writes in place end the validity of what was computed before them (the table is cleared), and
values that are ever written in place (through any alias) are never shared.

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes.cse import cse
    >>> g = trace_graph(lambda x: x.exp() + x.exp(), ember.ones(2))
    >>> cse(g).primitives()
    ['exp', 'add']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import Graph, Literal, Var
from ._util import escaping, mutable_vars, replace_uses

__all__ = ["cse"]


def _key(v: Any) -> Any:
    """A hashable form of a param or literal (None when it has none)."""
    if isinstance(v, Var):
        return ("var", id(v))
    if isinstance(v, Literal):
        return ("lit", _key(v.value))
    if isinstance(v, np.ndarray):
        if v.size > 64:
            raise TypeError("large array")
        return ("arr", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_key(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((k, _key(x)) for k, x in v.items())))
    if isinstance(v, float) and math.isnan(v):
        return ("nan",)
    hash(v)
    return (type(v).__name__, v)


def cse(graph: Graph) -> Graph:
    """A copy of ``graph`` with repeated pure equations merged."""
    g = graph.copy()
    mutable = mutable_vars(g)
    out = escaping(g)
    table: dict[Any, list[Var]] = {}
    mapping: dict[int, Var] = {}
    keep = []
    for e in g.eqns:
        e.inputs = [mapping.get(id(v), v) if isinstance(v, Var) else v for v in e.inputs]
        if e.mutates:
            table.clear()
            keep.append(e)
            continue
        if e.prim.kind == "creation" or any(id(o) in mutable for o in e.outputs):
            keep.append(e)
            continue
        try:
            k = (e.prim.name, _key(e.inputs), _key(e.params))
        except TypeError:
            keep.append(e)
            continue
        prev = table.get(k)
        if prev is not None and not any(id(o) in out for o in e.outputs):
            for o, p in zip(e.outputs, prev):
                mapping[id(o)] = p
            continue
        table[k] = e.outputs
        keep.append(e)
    g.eqns = keep
    replace_uses(g, mapping)
    return g
