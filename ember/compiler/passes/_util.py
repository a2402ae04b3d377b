"""Helpers shared by the passes: use counts, aliasing, rewriting uses."""

from __future__ import annotations

from typing import Any

from ..ir import Graph, Var

__all__ = ["escaping", "mutable_vars", "reader_counts", "replace_uses"]


def escaping(graph: Graph) -> set[int]:
    """Ids of the vars the caller sees (outputs, ``.grad`` effects), which must stay fresh."""
    out = {id(v) for v in graph.outputs if isinstance(v, Var)}
    out |= {id(v) for _, v in graph.grad_effects if v is not None}
    out |= {id(v) for _, v in graph.input_grad_effects if v is not None}
    return out


def reader_counts(graph: Graph) -> dict[int, int]:
    """id(var) -> how many equation inputs read it (outputs and effects not counted)."""
    uses: dict[int, int] = {}
    for e in graph.eqns:
        for v in e.inputs:
            if isinstance(v, Var):
                uses[id(v)] = uses.get(id(v), 0) + 1
    return uses


def _may_alias(e) -> bool:
    # outputs that may share memory with input 0: views, and casts that return the input
    return e.prim.kind == "view" or e.prim.name in ("convert", "contiguous") or bool(e.mutates)


def mutable_vars(graph: Graph) -> set[int]:
    """Ids of the vars whose memory some equation writes in place (through any alias)."""
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        while parent.get(a, a) != a:
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    written = []
    for e in graph.eqns:
        if _may_alias(e) and e.inputs and isinstance(e.inputs[0], Var):
            for o in e.outputs:
                union(id(o), id(e.inputs[0]))
        for p in e.mutates:
            v = e.inputs[p]
            if isinstance(v, Var):
                written.append(id(v))
    roots = {find(w) for w in written}
    ids = set()
    for e in graph.eqns:
        for v in (*e.inputs, *e.outputs):
            if isinstance(v, Var) and find(id(v)) in roots:
                ids.add(id(v))
    for v in (*graph.inputs, *graph.captured):
        if find(id(v)) in roots:
            ids.add(id(v))
    return ids


def replace_uses(graph: Graph, mapping: dict[int, Any]) -> None:
    """Rewrite every use of a var in ``mapping`` (id -> Var or Literal), in place."""
    if not mapping:
        return

    def sub(v):
        while isinstance(v, Var) and id(v) in mapping:
            v = mapping[id(v)]
        return v

    for e in graph.eqns:
        e.inputs = [sub(v) for v in e.inputs]
    graph.outputs = [sub(v) for v in graph.outputs]
    graph.grad_effects = [(i, sub(v) if v is not None else None) for i, v in graph.grad_effects]
    graph.input_grad_effects = [
        (i, sub(v) if v is not None else None) for i, v in graph.input_grad_effects
    ]
