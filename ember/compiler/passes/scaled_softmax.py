"""Attention's softmax written out, fused: ``softmax(x * scale + mask)`` becomes one
``softmax_scale_mask`` and the ``* scale`` of its gradient moves into ``softmax_backward``.

nanoGPT-style code computes ``att = q @ k.transpose(-2, -1) * scale``, adds a mask and takes
the softmax; the backward multiplies the softmax gradient by the scale. Eagerly that is three
passes over the (B, H, L, S) scores forward and two backward; fused, the scaled and masked
scores are formed row by row inside the softmax kernel (the intermediate arrays are never
written) and the gradient kernel applies the scale as it writes.

The forward rewrite applies when the softmax is over the last axis, ``scale`` is a Python
number, the mask (optional) is a tensor of the scores' dtype that broadcasts to them, and the
scaled and masked intermediates are read by nothing else; ``x / c`` counts as
``x * (1 / c)`` only where that is exact (``c`` a power of two; else the division stays and
only the mask is fused). The rounding differs from the
three separate ops by at most an ulp per element (one fused multiply-add).

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes import optimize
    >>> s, m = ember.ones(2, 3, 4), ember.zeros(3, 4)
    >>> optimize(trace_graph(lambda s, m: (s * 0.5 + m).softmax(-1), s, m)).primitives()
    ['softmax_scale_mask']
"""

from __future__ import annotations

import math
from typing import Any

from ...ops.attention import softmax_scale_mask_p
from ..ir import Eqn, Graph, Literal, Var
from ._util import escaping, mutable_vars, reader_counts

__all__ = ["fuse_scaled_softmax"]


def _number(v: Any) -> float | None:
    if isinstance(v, Literal) and type(v.value) in (int, float) and math.isfinite(v.value):
        return float(v.value)
    return None


def _exact_reciprocal(c: float) -> float | None:
    """1 / c where x / c == x * (1 / c) exactly for every x (c a power of two)."""
    if c == 0:
        return None
    m, _ = math.frexp(c)
    return 1.0 / c if abs(m) == 0.5 else None


def fuse_scaled_softmax(graph: Graph) -> Graph:
    """A copy of ``graph`` with ``softmax(x * scale + mask)`` as one ``softmax_scale_mask``
    and ``softmax_backward(g, y) * scale`` as one ``softmax_backward``."""
    g = graph.copy()
    mutable = mutable_vars(g)
    frozen = mutable | escaping(g)
    uses = reader_counts(g)
    producer: dict[int, Eqn] = {}
    dropped: set[int] = set()

    def private(v: Any) -> Eqn | None:
        """The producer of ``v`` when only one equation reads ``v`` and nothing else sees it."""
        if not isinstance(v, Var) or uses.get(id(v)) != 1 or id(v) in frozen:
            return None
        p = producer.get(id(v))
        if p is None or p.mutates or len(p.outputs) != 1:
            return None
        # its operands are read later once fused: nothing may write them in between
        if any(isinstance(x, Var) and id(x) in mutable for x in p.inputs):
            return None
        return p

    def scaled(v: Any, like: Var) -> tuple[Var, float, Eqn | None] | None:
        """``(x, scale, eqn)`` when ``v`` is ``x * scale`` (or ``x / c``) of ``like``'s type,
        read only here; else ``(v, 1.0, None)`` for a plain ``v`` of that type."""
        if not isinstance(v, Var) or v.shape != like.shape or v.dtype is not like.dtype:
            return None
        p = private(v)
        factor = _times_constant(p, v) if p is not None else None
        return (factor[0], factor[1], p) if factor is not None else (v, 1.0, None)

    keep = []
    for e in g.eqns:
        name = e.prim.name
        o = e.outputs[0] if e.outputs else None
        if name == "softmax" and o is not None and e.params.get("dim") == len(o.shape) - 1:
            fwd = _forward(e, o, private, scaled, mutable)
            if fwd is not None:
                e, gone = fwd
                dropped.update(id(x) for x in gone)
        elif name in ("mul", "div") and o is not None and len(e.inputs) == 2:
            bwd = _backward(e, o, private)
            if bwd is not None:
                e, folded = bwd
                dropped.add(id(folded))
        for v in e.outputs:
            producer[id(v)] = e
        keep.append(e)
    g.eqns = [e for e in keep if id(e) not in dropped]
    return g


def _forward(e: Eqn, o: Var, private, scaled, mutable) -> tuple[Eqn, list] | None:
    z = e.inputs[0]
    if not isinstance(z, Var) or z.shape != o.shape or z.dtype is not o.dtype:
        return None
    add = private(z)
    mask = None
    gone: list = []
    if add is not None and add.prim.name == "add" and len(add.inputs) == 2:
        for s_pos in (0, 1):
            cand, m = add.inputs[s_pos], add.inputs[1 - s_pos]
            if not (isinstance(m, Var) and m.dtype is o.dtype and isinstance(cand, Var)):
                continue
            if id(m) in mutable:
                continue
            if not _broadcasts(m.shape, o.shape) or cand.shape != o.shape:
                continue
            found = scaled(cand, o)
            if found is not None:
                x, c, mul = found
                mask, gone = m, [add] + ([mul] if mul is not None else [])
                break
    if mask is None:
        found = scaled(z, o)
        if found is None or found[2] is None:
            return None
        x, c, mul = found
        gone = [mul]
    inputs = [x] if mask is None else [x, mask]
    params = {"scale": c, "masked": mask is not None}
    return Eqn(softmax_scale_mask_p, inputs, params, e.outputs), gone


def _times_constant(e: Eqn, o: Var) -> tuple[Var, float] | None:
    """``(x, c)`` when equation ``e`` computes ``o = x * c`` (``c * x``, or ``x / d`` with
    ``c = 1 / d`` exact) for a Python number ``c`` and ``x`` of ``o``'s shape and dtype."""
    if e.prim.name not in ("mul", "div") or len(e.inputs) != 2:
        return None
    a, b = e.inputs
    if e.prim.name == "mul" and _number(a) is not None:
        a, b = b, a
    c = _number(b)
    if c is not None and e.prim.name == "div":
        c = _exact_reciprocal(c)
    if c is None or not isinstance(a, Var) or a.shape != o.shape or a.dtype is not o.dtype:
        return None
    return a, c


def _backward(e: Eqn, o: Var, private) -> tuple[Eqn, Eqn] | None:
    factor = _times_constant(e, o)
    if factor is None:
        return None
    a, c = factor
    p = private(a)
    if p is None or p.prim.name != "softmax_backward" or p.params.get("log"):
        return None
    if p.params.get("scale", 1.0) != 1.0:
        return None
    params = {**p.params, "scale": c}
    return Eqn(p.prim, list(p.inputs), params, e.outputs), p


def _broadcasts(small: tuple, big: tuple) -> bool:
    pairs = zip(reversed(small), reversed(big))
    return len(small) <= len(big) and all(s == b or s == 1 for s, b in pairs)
