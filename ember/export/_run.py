"""Running a loaded graph eagerly: each equation is applied with ``bind`` on ember tensors,
so a loaded model is differentiable like the original (and fine-tunable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..compiler.ir import Graph, Var, resolve
from ..compiler.prims import LiftedPrimitive, _fill, _first_ref
from ..ops._core import bind

__all__ = ["run_graph"]


def run_graph(graph: Graph, args: Sequence[Tensor]) -> list[Tensor]:
    """The graph's outputs for input tensors ``args`` (shapes already checked)."""
    from .._creation import tensor

    env: dict[Var, Any] = dict(zip(graph.inputs, args))
    env.update(zip(graph.captured, graph.captured_tensors))
    sym = graph.bind_symbols([tuple(a.shape) for a in args])
    seeds = [g.next_seed() for g in graph.seed_sources]
    for e in graph.eqns:
        ins = [env[v] if isinstance(v, Var) else resolve(v.value, sym, seeds) for v in e.inputs]
        params = resolve(e.params, sym, seeds)
        prim = e.prim
        if isinstance(prim, LiftedPrimitive):
            # index arrays that were data: the base primitive takes them as params again
            n = _first_ref(params)
            arrays = [x._data if isinstance(x, Tensor) else x for x in ins]
            params, ins, prim = _fill(params, arrays), ins[:n], prim.base
        out = bind(prim, ins, params)
        outs = list(out) if prim.n_out != 1 else [out]
        for v, o in zip(e.outputs, outs):
            env[v] = o
    res = []
    for v in graph.outputs:
        if isinstance(v, Var):
            res.append(env[v])
        else:
            res.append(tensor(np.asarray(resolve(v.value, sym))))
    return res
