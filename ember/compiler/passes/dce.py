"""Dead-code elimination: drop equations whose results nothing uses.

Equations that write in place are effects and always stay (with what they read).

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes.dce import dce
    >>> def f(x):
    ...     _unused = x.exp()
    ...     return x + 1
    >>> dce(trace_graph(f, ember.ones(2))).primitives()
    ['add']
"""

from __future__ import annotations

from ..ir import Graph, Var
from ._util import escaping

__all__ = ["dce"]


def dce(graph: Graph) -> Graph:
    """A copy of ``graph`` without dead equations."""
    g = graph.copy()
    live = escaping(g)
    keep = []
    for e in reversed(g.eqns):
        if e.mutates or any(id(o) in live for o in e.outputs):
            keep.append(e)
            live.update(id(v) for v in e.inputs if isinstance(v, Var))
    keep.reverse()
    g.eqns = keep
    return g
