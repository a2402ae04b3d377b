"""Slice gradients merged: a sum of ``index_put_zeros`` results becomes one ``put_slices``.

The gradient of ``qkv.split(...)`` / ``chunk`` / any basic slicing is, per piece, a zero array
of the source's shape with the piece's gradient put into its slice; the autograd engine then
adds the pieces up. Written out that is one zero fill and one full-size add per piece.
``put_slices`` does it in one array: the pieces are added into their slices of a zero array,
or simply copied into an uninitialized one when the slices provably tile it (the pieces of a
split along one axis). A sum ``x + index_put_zeros(g)`` likewise becomes a copy of ``x`` with
``g`` added into the slice.

A result is merged only where its sole reader is the add (it is not an output, not written in
place), so nothing else can see that the zero arrays are gone. Basic indexing selects each
element at most once, so adding into the slice gives the same values as adding the full
arrays, whatever the slices.

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> from ember.compiler.passes import optimize
    >>> x = ember.ones(4, 6, requires_grad=True)
    >>> def f(x):
    ...     a, b = x.split(3, dim=1)
    ...     (a * b).sum().backward()
    ...     return x.grad
    >>> 'put_slices' in optimize(trace_graph(f, x)).primitives()
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ops._core import SAVE_NONE, AbstractValue, Primitive
from ..ir import EXTRA_PRIMITIVES, Eqn, Graph, Var
from ._util import escaping, mutable_vars, reader_counts

__all__ = ["merge_slice_grads", "put_slices_p"]


def _put_slices_impl(*arrays, idxs, shape, base, cover):
    """``base``: input 0 is the array the pieces are added to (copied); otherwise the pieces go
    into zeros, or into an uninitialized array when ``cover`` (the slices tile it)."""
    pieces = arrays[1:] if base else arrays
    if base:
        out = np.array(arrays[0], copy=True, order="K")
    elif cover:
        out = np.empty(shape, pieces[0].dtype)
    else:
        out = np.zeros(shape, pieces[0].dtype)
    for g, idx in zip(pieces, idxs):
        if cover:
            out[idx] = g
        else:
            out[idx] += g
    return out


def _put_slices_abstract(*avals, idxs, shape, base, cover):
    return AbstractValue(tuple(shape), avals[0].dtype)


put_slices_p = Primitive(
    "put_slices",
    "layout",
    impl=_put_slices_impl,
    abstract=_put_slices_abstract,
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)
EXTRA_PRIMITIVES[put_slices_p.name] = put_slices_p


def _axis_interval(s: Any, size: Any) -> tuple[int, int] | None:
    """``(start, stop)`` of a step-1 slice on an axis of concrete ``size``; None otherwise."""
    if not isinstance(s, slice) or s.step not in (None, 1):
        return None
    if not isinstance(size, (int, np.integer)):
        return (0, -1) if s == slice(None) else None  # full on a symbolic axis
    if not all(b is None or isinstance(b, (int, np.integer)) for b in (s.start, s.stop)):
        return None
    start, stop, _ = s.indices(int(size))
    return (start, max(start, stop))


def _tiles(idxs: list, shape: tuple) -> bool:
    """Whether the basic indices ``idxs`` are slices that differ along one axis only and
    there tile it exactly (each element of the array is in exactly one slice)."""
    spans: list[list[tuple[int, int]]] = []
    for idx in idxs:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) > len(shape):
            return False
        idx = idx + (slice(None),) * (len(shape) - len(idx))
        iv = [_axis_interval(s, n) for s, n in zip(idx, shape)]
        known = [v for v in iv if v is not None]
        if len(known) != len(iv):
            return False
        spans.append(known)
    axes = [d for d in range(len(shape)) if len({sp[d] for sp in spans}) > 1]
    full = [(0, -1) if not isinstance(n, (int, np.integer)) else (0, int(n)) for n in shape]
    if len(axes) > 1:
        return False
    for d in range(len(shape)):
        if d not in axes and any(sp[d] != full[d] for sp in spans):
            return False
    if not axes:
        return len(spans) == 1
    d = axes[0]
    pos = 0
    for start, stop in sorted(sp[d] for sp in spans):
        if start != pos:
            return False
        pos = stop
    return pos == full[d][1]


def merge_slice_grads(graph: Graph) -> Graph:
    """A copy of ``graph`` where adds of slice gradients are one ``put_slices`` each."""
    g = graph.copy()
    mutable = mutable_vars(g)
    frozen = mutable | escaping(g)
    uses = reader_counts(g)
    producer: dict[int, Eqn] = {}
    merged: set[int] = set()  # ids of equations folded into a later put_slices

    def pieces(v: Any, shape: tuple, dtype: Any) -> tuple[list, list] | None:
        """(inputs, idxs) of a slice gradient that only the add reads, or None."""
        if not isinstance(v, Var) or uses.get(id(v)) != 1 or id(v) in frozen:
            return None
        p = producer.get(id(v))
        if p is None or v.shape != shape or v.dtype is not dtype or p.mutates:
            return None
        if any(isinstance(x, Var) and id(x) in mutable for x in p.inputs):
            return None  # read later than before: a write in between would show
        if p.prim.name == "index_put_zeros" and p.params.get("basic"):
            return [p.inputs[0]], [p.params["idx"]]
        if p.prim is put_slices_p and not p.params["base"]:
            return list(p.inputs), list(p.params["idxs"])
        return None

    keep = []
    for e in g.eqns:
        if e.prim.name == "add" and not e.mutates and len(e.inputs) == 2:
            o = e.outputs[0]
            a, b = e.inputs
            pa, pb = pieces(a, o.shape, o.dtype), pieces(b, o.shape, o.dtype)
            if pa is None and pb is not None and isinstance(a, Var):
                a, b, pa, pb = b, a, pb, pa
            rest_ok = isinstance(b, Var) and b.shape == o.shape and b.dtype is o.dtype
            if pa is not None and (pb is not None or rest_ok):
                for v in (a, b):
                    if (pa if v is a else pb) is not None:
                        merged.add(id(producer[id(v)]))
                if pb is not None:
                    ins, idxs = pa[0] + pb[0], pa[1] + pb[1]
                    params = {"idxs": tuple(idxs), "shape": o.shape, "base": False}
                    params["cover"] = _tiles(idxs, o.shape)
                else:
                    ins = [b] + pa[0]
                    params = {"idxs": tuple(pa[1]), "shape": o.shape, "base": True}
                    params["cover"] = False
                e = Eqn(put_slices_p, ins, params, [o])
        for v in e.outputs:
            producer[id(v)] = e
        keep.append(e)
    g.eqns = [e for e in keep if id(e) not in merged]
    return g
