"""One cache entry of a compiled function and the autograd op that runs its graph.

``_Entry`` holds what one input signature compiled to (the unified graph, its programs, the
guards it was checked with, the batch fit); ``_GraphFunction`` runs an entry's forward program
as one autograd op whose backward runs the backward program, and ``split_backward`` cuts a
graph with ``aot`` into those two graphs. Separate from :mod:`ember.compiler.api` (the
dispatch in ``CompiledFunction``), which only reads and fills entries.
"""

from __future__ import annotations

from typing import Any

from .._tensor import Tensor, _new
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad
from ._shapes import Design
from .executor import Program
from .ir import Graph, Literal, Var
from .trace import (
    Trace,
    unflatten,
)


class _Entry:
    __slots__ = (
        "aot",
        "b1",
        "bad_sizes",
        "bwd_program",
        "cap_leaves",
        "design",
        "graph",
        "mutated",
        "mutated_inputs",
        "n_out",
        "out_alias",
        "program",
        "reference",
        "sizes",
        "spec",
        "static",
        "t1",
        "traces",
        "unified",
        "wrt_args",
    )

    def __init__(self, graph: Graph, reference: Graph, static: bool):
        from .passes import optimize

        self.reference = reference
        self.static = static
        self.unified = graph
        self.t1: Trace | None = None  # the first trace, to validate new batch sizes against
        self.b1 = 0
        self.sizes: set[int] = set()  # batch sizes the graph is known to hold at
        self.bad_sizes: set[int] = set()  # ... and known not to (specialized graphs serve)
        # several symbolic sizes: the traces and their points, the symbolic axes beyond the
        # batch ((tensor index, axis) -> symbol); sizes are then tuples of (symbol, size)
        self.traces: list[Trace] = []
        self.design: Design | None = None
        self.spec: dict[tuple[int, int], str] = {}
        self.aot = graph.aot
        self.out_alias = graph.out_alias
        if graph.aot is None:
            self.graph = optimize(graph)
            self.program = Program(self.graph, reference=reference)
        else:  # forward and backward graphs, run through an autograd Function
            fwd, bwd = split_backward(graph)
            self.graph = optimize(fwd)
            self.program = Program(self.graph, reference=fwd)
            bwd_opt = optimize(bwd)
            self.bwd_program = Program(bwd_opt, reference=bwd)
            self.n_out = len(graph.outputs)
            n_in = len(fwd.inputs)
            self.cap_leaves: list[Tensor] = []
            self.wrt_args: list[int] = []
            for kind, i in graph.aot[2]:
                if kind == "in":
                    self.wrt_args.append(3 + i)
                else:
                    self.wrt_args.append(3 + n_in + len(self.cap_leaves))
                    self.cap_leaves.append(graph.captured_tensors[i])
        mut = set()
        cap = {id(v): i for i, v in enumerate(self.graph.captured)}
        for e in self.graph.eqns:
            for p in e.mutates:
                i = cap.get(id(e.inputs[p]))
                if i is not None:
                    mut.add(i)
        self.mutated = [self.graph.captured_tensors[i] for i in sorted(mut)]
        # arguments updated in place (``x.add_(1)``): their version counters move as in
        # eager code, once per in-place op, so autograd sees a saved tensor was modified
        ins = {id(v): i for i, v in enumerate(self.graph.inputs)}
        self.mutated_inputs = [
            ins[id(e.inputs[p])]
            for e in self.graph.eqns
            for p in e.mutates
            if id(e.inputs[p]) in ins
        ]

    def run(self, tensors: list[Tensor], env: dict | None = None) -> Any:
        g = self.graph
        if self.aot is not None:
            # (its outputs require grad, also when the function turned grad mode on itself)
            with enable_grad():
                res = _GraphFunction.apply(self, env, len(tensors), *tensors, *self.cap_leaves)
            res = list(res) if isinstance(res, tuple) else [res]
            res = res[: self.n_out]
            return unflatten(
                g.out_tree, self._aliased(res, [getattr(r, "_data", r) for r in res], tensors)
            )
        outs = self.program([t._data for t in tensors], env)
        prog = self.program
        for t in self.mutated:
            t._version[0] += 1
        for i in self.mutated_inputs:
            tensors[i]._version[0] += 1
        for ci, v in g.grad_effects:
            g.captured_tensors[ci].grad = None if v is None else _new(prog.value(v))
        for ii, v in g.input_grad_effects:
            tensors[ii].grad = None if v is None else _new(prog.value(v))
        res = [_new(o) if hasattr(o, "shape") and hasattr(o, "dtype") else o for o in outs]
        return unflatten(g.out_tree, self._aliased(res, outs, tensors))

    def _aliased(self, res: list, arrays: list, tensors: list[Tensor]) -> list:
        """An argument returned (``x.add_(1); return x``) is that same object, and a tensor
        returned twice is one object, as in eager code."""
        if self.out_alias is not None:
            for j, a in enumerate(self.out_alias):
                if a is None:
                    continue
                if a[0] == "out":
                    res[j] = res[a[1]]
                elif tensors[a[1]]._data is arrays[j]:
                    res[j] = tensors[a[1]]
        return res


class _GraphFunction(Function):
    """A compiled forward graph as one autograd op whose backward runs the backward graph."""

    @staticmethod
    def forward(ctx, entry, env, n_in, *tensors):
        prog = entry.program
        res = prog([t._data for t in tensors[:n_in]], env)
        for t in entry.mutated:
            t._version[0] += 1
        for i in entry.mutated_inputs:
            tensors[i]._version[0] += 1
        ctx.entry, ctx.env, ctx.seeds = entry, env, prog.last_seeds
        ctx.saved = res[entry.n_out :]
        ctx.n_args = 3 + len(tensors)
        outs = res[: entry.n_out]
        res_t = tuple(_new(o) if hasattr(o, "shape") and hasattr(o, "dtype") else o for o in outs)
        # outputs computed under no_grad (or otherwise off the tape) do not require grad
        diff = set(entry.aot[1])
        ctx.mark_non_differentiable(
            *(o for k, o in enumerate(res_t) if k not in diff and isinstance(o, Tensor))
        )
        return res_t

    @staticmethod
    def backward(ctx, *grads):
        entry = ctx.entry
        cts = []
        for k in entry.aot[1]:
            g = grads[k]
            cts.append(g._data)
        res = entry.bwd_program([*cts, *ctx.saved], ctx.env, seeds=ctx.seeds)
        out: list[Any] = [None] * ctx.n_args
        for pos, r in zip(entry.wrt_args, res):
            out[pos] = None if r is None else _new(r)
        return tuple(out)


def split_backward(graph: Graph) -> tuple[Graph, Graph]:
    """The forward graph (outputs + the values the backward reads) and the backward graph
    (cotangents + those values in, one gradient per ``wrt`` out) of a graph with ``aot``."""
    assert graph.aot is not None
    k, diff, _wrt, gvars = graph.aot
    n_in = len(graph.inputs) - len(diff)
    fwd_eqns, bwd_eqns = graph.eqns[:k], graph.eqns[k:]
    defined = {id(v) for v in graph.inputs[:n_in]}
    for e in fwd_eqns:
        defined.update(id(o) for o in e.outputs)
    saved, seen = [], set()
    for v in [*(x for e in bwd_eqns for x in e.inputs), *gvars]:
        if isinstance(v, Var) and id(v) in defined and id(v) not in seen:
            seen.add(id(v))
            saved.append(v)
    fwd = Graph(
        inputs=graph.inputs[:n_in],
        eqns=fwd_eqns,
        outputs=[*graph.outputs, *saved],
        captured=graph.captured,
        captured_tensors=graph.captured_tensors,
        captured_names=graph.captured_names,
        symbols=graph.symbols,
        seed_sources=graph.seed_sources,
        out_tree=graph.out_tree,
    )
    bwd = Graph(
        inputs=[*graph.inputs[n_in:], *saved],
        eqns=bwd_eqns,
        outputs=[v if v is not None else Literal(None) for v in gvars],
        captured=graph.captured,
        captured_tensors=graph.captured_tensors,
        captured_names=graph.captured_names,
    )
    return fwd, bwd


def entry_static(entry: Any) -> bool:
    return isinstance(entry, _Entry) and entry.static
