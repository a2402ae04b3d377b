"""Guards and cache keys of ``ember.compile``: what a call's signature is made of.

The input tree's key (shapes, dtypes, Python values), the globals/closure/module state the
function reads by name (``_free_refs``/``_free_key``) and why a guard failed (``_GUARD_WHY``,
for ``explain``), and the graph comparisons a dry-run retrace is checked with
(``_same_graph``, ``_ratios``). Separate from :mod:`ember.compiler.api` so the keying rules
read on their own.
"""

from __future__ import annotations

import functools
import os
from types import FunctionType, ModuleType
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
_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SCALAR_TYPES = frozenset(_SCALARS)


def module_guards(mods: list[Any]) -> list[tuple[str, tuple]]:
    """The guards on the state of ``mods`` that a graph bakes in or reads by reference, as
    ``(name, value)`` parts of a cache key: training flags, which parameters (by identity) and
    whether each requires grad, buffers and submodules by identity, hook registrations, Python
    scalar attributes and plain tensor attributes. One pass over each module's ``__dict__``
    (checked on every call of a compiled function: ~25 us for the five modules of a small
    MLP step where seven passes took ~50).

    Example:
        >>> import ember
        >>> parts = dict(module_guards([ember.nn.Linear(2, 3)]))
        >>> parts["module training flags"], parts["module attributes"]
        ((True,), (('in_features', 2), ('out_features', 3)))
    """
    scalars = _SCALAR_TYPES
    training: list[bool] = []
    params: list[int] = []
    requires: list[bool] = []
    buffers: list[int] = []
    subs: list[int] = []
    hooks: list[tuple] = []
    attrs: list[tuple[str, Any]] = []
    tensor_attrs: list[tuple[str, int]] = []
    for m in mods:
        d = m.__dict__
        training.append(m.training)
        for p in m._parameters.values():
            params.append(id(p))
            requires.append(p is not None and p.requires_grad)
        for b in m._buffers.values():
            buffers.append(id(b))
        for c in m._modules.values():
            subs.append(id(c))
        hooks.append(
            (
                tuple(m._forward_pre_hooks),
                tuple(m._forward_hooks),
                tuple(d.get("_backward_pre_hooks") or ()),
                tuple(d.get("_backward_hooks") or ()),
            )
        )
        for k, v in d.items():
            if type(v) in scalars:
                if k != "training":
                    attrs.append((k, v))
            elif isinstance(v, Tensor):
                # a plain tensor attribute (``self.mask = ...``, neither parameter nor
                # buffer) is read by reference like a buffer: another tensor, a new graph
                tensor_attrs.append((k, id(v)))
    return [
        ("module training flags", tuple(training)),
        # parameters and buffers are read by reference: replacing one (a new object), or a
        # submodule, needs a new graph; so does a change of which parameters require grad
        # or of a Python scalar attribute (a temperature, a dropout rate) baked into it
        ("module parameters", tuple(params)),
        ("parameters requiring grad", tuple(requires)),
        ("module buffers", tuple(buffers)),
        ("submodules", tuple(subs)),
        ("module hooks", tuple(hooks)),
        ("module attributes", tuple(attrs)),
        ("module tensor attributes", tuple(tensor_attrs)),
    ]


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
    are read by reference, Python scalars baked into the graph. Also followed, as
    ``torch.compile`` guards them: the function under a ``functools.partial``, the attributes
    that a method reads from the object (or, for a classmethod, the class) it is bound to,
    and the globals and closures of the user's functions it calls by name (to depth 3)."""
    from ..nn.modules.module import Module

    while isinstance(fn, functools.partial):
        fn = fn.func
    f = type(fn).forward if isinstance(fn, Module) else fn
    owner = getattr(f, "__self__", None)
    f = getattr(f, "__func__", f)
    out: list[tuple[Any, Any]] = []
    _code_refs(f, out, set(), 3)
    code = getattr(f, "__code__", None)
    if code is not None and owner is not None and not isinstance(owner, (Module, ModuleType)):
        # ``self.scale`` / ``cls.scale`` in a bound method (a Module's are guarded as such)
        inst = getattr(owner, "__dict__", None)
        klass = owner if isinstance(owner, type) else type(owner)
        for n in code.co_names:
            if not isinstance(owner, type) and isinstance(inst, dict) and n in inst:
                out.append((inst, n))
                continue
            for k in klass.__mro__[:-1]:  # (not object)
                if n in vars(k):
                    out.append((vars(k), n))
                    break
    return out


def _code_refs(f: Any, out: list, seen: set, depth: int) -> None:
    code = getattr(f, "__code__", None)
    if code is None or id(f) in seen:
        return
    seen.add(id(f))
    glb = getattr(f, "__globals__", {})
    refs: list[tuple[Any, Any]] = [(glb, n) for n in code.co_names if n in glb]
    refs += [(c, None) for c in getattr(f, "__closure__", None) or ()]
    out.extend(refs)
    if depth <= 1:
        return
    for ns, n in refs:
        try:
            v = ns[n] if n is not None else ns.cell_contents
        except (KeyError, ValueError):
            continue
        # a helper function of the user's (not the library's) reads its own globals
        if isinstance(v, FunctionType) and not v.__code__.co_filename.startswith(_EMBER_DIR):
            _code_refs(v, out, seen, depth - 1)


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
        if type(v) in _SCALAR_TYPES:
            out.append(v)
        elif isinstance(v, (Tensor, Module, Optimizer, FunctionType)):
            # (a user's helper function rebound to another one: its code is in the graph)
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
