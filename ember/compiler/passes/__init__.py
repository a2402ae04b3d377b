"""Graph passes; :func:`optimize` runs the default pipeline.

Each pass takes a :class:`~ember.compiler.ir.Graph` and returns a new one (the input is left
as it is): :func:`~.simplify.simplify` (algebraic identities), :func:`~.fold.fold_constants`,
:func:`~.cse.cse` (common subexpressions), :func:`~.scaled_softmax.fuse_scaled_softmax`
(attention's ``softmax(x * scale + mask)`` as one kernel), :func:`~.slices.merge_slice_grads`
(sums of slice gradients as one array), :func:`~.dce.dce` (dead code). Memory planning
(buffer reuse across equations and across calls) is :mod:`~.memory`, applied by the executor.
"""

from __future__ import annotations

from ..ir import Graph
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .scaled_softmax import fuse_scaled_softmax
from .simplify import simplify
from .slices import merge_slice_grads

__all__ = [
    "PIPELINE",
    "cse",
    "dce",
    "fold_constants",
    "fuse_scaled_softmax",
    "merge_slice_grads",
    "optimize",
    "simplify",
]

PIPELINE = (
    simplify,
    fold_constants,
    cse,
    dce,  # the fusions below count readers: dead ones would block them
    fuse_scaled_softmax,
    merge_slice_grads,
    simplify,
    dce,
)


def optimize(graph: Graph) -> Graph:
    """The default pipeline (returns a new graph; the input is left as it is).

    Example:
        >>> import ember
        >>> from ember.compiler import trace_graph
        >>> g = trace_graph(lambda x: (x * 1).exp() + (x + 0).exp(), ember.ones(2))
        >>> optimize(g).primitives()
        ['exp', 'add']
    """
    for p in PIPELINE:
        graph = p(graph)
    return graph
