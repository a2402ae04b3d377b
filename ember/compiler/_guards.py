"""Guards and cache keys of ``ember.compile``: what a call's signature is made of.

The input tree's key (shapes, dtypes, Python values), the globals/closure/module state the
function reads by name (``_free_refs``/``_free_key``) and why a guard failed (``_GUARD_WHY``,
for ``explain``), and the graph comparisons a dry-run retrace is checked with
(``_same_graph``, ``_ratios``). Separate from :mod:`ember.compiler.api` so the keying rules
read on their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ._grad_slots import GradOf
from .ir import Graph, Literal, Ratio, Var
from .trace import (
    FloatPoints,
    Trace,
    flatten,
)


def _slim(t: Trace) -> Trace:
    """``t`` without the snapshots of state tensors (only fresh ones are compared)."""
    t.captured = [(x, v, s if m else None, m) for x, v, s, m in t.captured]  # type: ignore[misc]
    return t


def _walk(v: Any, out: list) -> None:
    t = type(v)
    if t is Ratio or t is FloatPoints:
        out.append(v)
    elif t is tuple or t is list:
        for x in v:
            _walk(x, out)
    elif t is dict:
        for x in v.values():
            _walk(x, out)


def _ratios(g: Graph) -> list:
    """The Ratio params of ``g`` in the order :func:`unify` meets floats."""
    out: list = []
    for e in g.eqns:
        for v in e.inputs:
            if isinstance(v, Literal):
                _walk(v.value, out)
        _walk(e.params, out)
    for v in g.outputs:
        if isinstance(v, Literal):
            _walk(v.value, out)
    return out


def _same_value(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is FloatPoints or tb is FloatPoints:
        return True  # compared numerically by the caller
    if ta is not tb:
        return False
    if ta is tuple or ta is list:
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if ta is dict:
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if ta is np.ndarray:
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if ta is Literal:
        return _same_value(a.value, b.value)
    if ta is Var:
        return a.shape == b.shape and a.dtype is b.dtype
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  (uncomparable params: treat as different)
        return False


def _same_graph(g: Graph, h: Graph) -> bool:
    if len(g.eqns) != len(h.eqns) or len(g.inputs) != len(h.inputs):
        return False
    if not all(_same_value(a, b) for a, b in zip(g.inputs, h.inputs)):
        return False
    for e, f in zip(g.eqns, h.eqns):
        if e.prim is not f.prim or len(e.inputs) != len(f.inputs):
            return False
        if not _same_value(e.params, f.params):
            return False
        if not all(_same_value(a, b) for a, b in zip(e.inputs, f.inputs)):
            return False
        if not all(_same_value(a, b) for a, b in zip(e.outputs, f.outputs)):
            return False
    return True


def _name_captured(g: Graph, t: Trace) -> None:
    """Name captured parameters and buffers as the outermost module calls them."""
    names: dict[int, str] = {}
    for m in t.modules:  # called outermost first
        for n, p in m.named_parameters():
            names.setdefault(id(p), n)
        for n, b in m.named_buffers():
            names.setdefault(id(b), n)
    g.captured_names = [
        f"{names.get(id(x.leaf), f'c{i}')}.grad" if type(x) is GradOf else names.get(id(x), f"c{i}")
        for i, x in enumerate(g.captured_tensors)
    ]


_SCALARS = (int, float, bool, str, type(None))
_GUARD_WHY = {
    "parameters requiring grad": "a module parameter's requires_grad changed",
    "module buffers": "a module buffer was replaced by another tensor",
    "submodules": "a submodule was replaced",
    "module hooks": "forward hooks of a module were added or removed",
    "module attributes": "a Python attribute of a module changed",
    "module tensor attributes": "a tensor attribute of a module was replaced by another tensor",
    "memory layout of the arguments": "an argument's memory layout (contiguity) changed",
    "globals and closure variables": "a global or closure variable the function reads changed",
}


def _free_refs(fn: Any) -> list[tuple[Any, Any]]:
    """``(namespace, name)`` for the globals, and ``(cell, None)`` for the closure cells, that
    ``fn`` (or a module's ``forward``) reads by name: tensors, modules and optimizers there
    are read by reference, Python scalars baked into the graph."""
    from ..nn.modules.module import Module

    f = type(fn).forward if isinstance(fn, Module) else fn
    f = getattr(f, "__func__", f)
    code = getattr(f, "__code__", None)
    if code is None:
        return []
    glb = getattr(f, "__globals__", {})
    out: list[tuple[Any, Any]] = [(glb, n) for n in code.co_names if n in glb]
    out += [(c, None) for c in getattr(f, "__closure__", None) or ()]
    return out


def _free_key(free: list[tuple[Any, Any]]) -> tuple:
    from ..nn.modules.module import Module
    from ..optim.optimizer import Optimizer

    out: list[Any] = []
    for ns, n in free:
        try:
            v = ns[n] if n is not None else ns.cell_contents
        except (KeyError, ValueError):  # deleted, or an empty cell
            out.append(None)
            continue
        if type(v) in _SCALARS:
            out.append(v)
        elif isinstance(v, (Tensor, Module, Optimizer)):
            out.append(id(v))
        else:
            out.append(None)
    return tuple(out)


def _hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def _tree_of(args, kwargs):
    return flatten((args, kwargs))[1]


def _fmt(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], tuple):
        sh, dt, rg = v
        return f"shape {sh} {dt}{' requires_grad' if rg else ''}"
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "value":
        return repr(v[1])
    return repr(v)
