"""Constant folding: equations whose operands are all constants run once, at compile time.

Their results become literals of the graph. Values written in place, random ops (seeded per
call), symbolic params and the graph's outputs (which must be fresh arrays) are not folded.

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes.fold import fold_constants
    >>> g = trace_graph(lambda x: x + ember.ones(3).exp(), ember.ones(3))
    >>> g.primitives(), fold_constants(g).primitives()
    (['full', 'exp', 'add'], ['add'])
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal, Var, is_symbolic
from ._util import escaping, mutable_vars, replace_uses

__all__ = ["fold_constants"]

MAX_FOLDED_SIZE = 1 << 20  # elements; larger constants stay computed at run time


def fold_constants(graph: Graph) -> Graph:
    """A copy of ``graph`` with constant subcomputations evaluated."""
    g = graph.copy()
    mutable = mutable_vars(g)
    out = escaping(g)
    mapping: dict[int, Literal] = {}
    keep = []
    for e in g.eqns:
        e.inputs = [mapping.get(id(v), v) if isinstance(v, Var) else v for v in e.inputs]
        foldable = (
            not e.mutates
            and all(isinstance(v, Literal) for v in e.inputs)
            and not is_symbolic(e.params)
            and not any(id(o) in mutable or id(o) in out for o in e.outputs)
            and e.prim.impl is not None
        )
        if foldable:
            try:
                res = e.prim.impl(
                    *[v.value for v in e.inputs if isinstance(v, Literal)], **e.params
                )
            except Exception:  # noqa: BLE001  (leave it to run time, where errors are reported)
                foldable = False
        if foldable:
            res = list(res) if e.prim.n_out != 1 else [res]
            arrs = [np.asarray(r) for r in res]
            if all(a.size <= MAX_FOLDED_SIZE for a in arrs):
                for o, a in zip(e.outputs, arrs):
                    a.flags.writeable = False  # shared by every run
                    mapping[id(o)] = Literal(a)
                continue
        keep.append(e)
    g.eqns = keep
    replace_uses(g, mapping)
    return g
