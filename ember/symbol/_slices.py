"""Slices with symbolic bounds: Theano's minibatch idiom ``data[i * n:(i + 1) * n]``.

A slice whose bounds are 0-d integer symbols becomes ``dynamic_slice``: its start is read
when the graph runs, its length ``stop - start`` is fixed when the graph is built. The length
must not depend on the values, which is decided by propagating *affine forms*: each bound is
written as ``const + sum(coef * atom)`` over integer atoms (graph inputs, shared variables,
and any sub-expression that is not affine, such as ``i // 2``, keyed by its structure so
that recomputing it gives the same atom), through ``add``, ``sub``, ``neg``, ``mul`` by a
constant and integer ``convert``. ``stop - start`` is a valid length exactly when every atom's
coefficient cancels; this is exact (no probing of values, which a non-linear expression could
pass by chance) and costs nothing at run time. It is conservative: a length that is constant
only through a non-affine identity (``x[i // 2:(i + 2) // 2]``) is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..compiler.ir import Literal
from ._core import SymbolicError

__all__ = ["dynamic_slices"]

_Form = tuple[int, dict[Any, int]]  # (constant, {atom key: coefficient})


def _const(v: Any) -> int | None:
    """``v`` as a Python int when it is an integer constant (a literal or a 0-d constant)."""
    if isinstance(v, Literal):
        v = v.value
        if isinstance(v, (bool, np.bool_)):
            return int(v)
        return int(v) if type(v) in (int, np.int64, np.int32) else None
    p = getattr(v, "producer", None)
    if p is not None and p.prim.name == "constant" and not v.shape:
        a = np.asarray(p.params["value"])
        return int(a) if a.dtype.kind in "iub" else None
    return None


def _key(v: Any) -> Any:
    """A structural key of a graph value (equal for equal recomputations)."""
    c = _const(v)
    if c is not None:
        return ("const", c)
    if isinstance(v, Literal):
        return ("const", repr(v.value))
    p = getattr(v, "producer", None)
    if p is None:
        return ("leaf", id(v), v.name or v.label())
    k = p.outputs.index(v)
    return ("op", p.prim.name, repr(p.params), k, tuple(_key(x) for x in p.inputs))


def _atom(key: Any) -> str:
    if key[0] == "const":
        return str(key[1])
    if key[0] == "leaf":
        return key[2]
    return f"{key[1]}({', '.join(_atom(k) for k in key[4])})"


def _text(form: _Form) -> str:
    """An affine form as an expression (``2*i + 2``)."""
    c, atoms = form
    out = ""
    for k, m in [*((k, m) for k, m in atoms.items() if m), *([(None, c)] if c else [])]:
        term = str(abs(m)) if k is None else _atom(k) if abs(m) == 1 else f"{abs(m)}*{_atom(k)}"
        out += (" - " if out else "-") + term if m < 0 else (" + " if out else "") + term
    return out or "0"


def _form(v: Any) -> _Form:
    """The affine form of the 0-d integer value ``v`` (see the module doc)."""
    c = _const(v)
    if c is not None:
        return c, {}
    p = getattr(v, "producer", None)
    if p is not None and (not p.params or p.prim.name == "convert"):
        name, ins = p.prim.name, p.inputs
        # integer to integer converts only (a float's is a truncation)
        if name == "convert" and all(
            getattr(u, "dtype", None) is not None and u.dtype.np.kind in "iu" for u in (v, ins[0])
        ):
            return _form(ins[0])
        if name in ("add", "sub") and len(ins) == 2:
            (c0, a0), (c1, a1) = _form(ins[0]), _form(ins[1])
            s = 1 if name == "add" else -1
            out = dict(a0)
            for k, m in a1.items():
                out[k] = out.get(k, 0) + s * m
            return c0 + s * c1, out
        if name == "neg" and len(ins) == 1:
            c0, a0 = _form(ins[0])
            return -c0, {k: -m for k, m in a0.items()}
        if name == "mul" and len(ins) == 2:
            (c0, a0), (c1, a1) = _form(ins[0]), _form(ins[1])
            if not a0 or not a1:
                k, (cc, aa) = (c0, (c1, a1)) if not a0 else (c1, (c0, a0))
                return k * cc, {key: k * m for key, m in aa.items()}
    return 0, {_key(v): 1}


def _show(b: Any) -> str:
    from ._core import Symbol

    return _text(_form(b._svar)) if isinstance(b, Symbol) else repr(b)


def _bound(b: Any, what: str, where: str) -> Any:
    """A slice bound: None, a Python int, or a 0-d integer Symbol (eager 0-d tensors are
    read now, as Python's slicing reads them)."""
    from ._core import Symbol

    if b is None or isinstance(b, Symbol):
        if isinstance(b, Symbol) and (b.ndim != 0 or b.dtype.np.kind not in "iu"):
            raise SymbolicError(
                f"{where}: the slice {what} {b._svar.label()} must be a 0-d integer symbol, "
                f"got {b._svar.type_str()}"
            )
        return b
    if isinstance(b, Tensor):
        return int(b)
    if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, np.integer)):
        raise TypeError(f"{where}: slice bounds must be integers, got {type(b).__name__}")
    return int(b)


def _consumed(i: Any) -> int:
    """How many axes of the indexed tensor the index item ``i`` takes."""
    if i is None:
        return 0
    kind = getattr(getattr(i, "dtype", None), "np", getattr(i, "dtype", None))
    if kind is not None and np.dtype(kind) == np.bool_:
        return len(getattr(i, "shape", ()))
    if isinstance(i, list) and np.asarray(i).dtype == np.bool_:
        return np.asarray(i).ndim
    return 1


def dynamic_slices(x: Any, items: tuple) -> tuple[Any, tuple]:
    """``x`` with the slices of ``items`` that have symbolic bounds taken (``dynamic_slice``
    along their axes), and ``items`` with those slices made full (``:``)."""
    from ..ops.indexing import dynamic_slice
    from ._core import Symbol

    where = f"indexing {x._svar.label()}"
    ndim = x.ndim
    n_ell = sum(1 for i in items if i is Ellipsis)
    if n_ell > 1:
        raise IndexError(f"{where}: an index can only have a single ellipsis ('...')")
    taken = sum(_consumed(i) for i in items if i is not Ellipsis)
    if taken > ndim:
        raise IndexError(f"{where}: too many indices: {taken} for {ndim} dimensions")
    axes, ax = [], 0
    for i in items:
        axes.append(ax)
        ax += (ndim - taken) if i is Ellipsis else _consumed(i)
    out_items = list(items)
    for k, i in enumerate(items):
        if not (isinstance(i, slice) and any(isinstance(b, Symbol) for b in (i.start, i.stop))):
            continue
        text = "[" + ":".join("" if b is None else _show(b) for b in (i.start, i.stop)) + "]"
        if i.step is not None and not (isinstance(i.step, (int, np.integer)) and i.step == 1):
            raise SymbolicError(
                f"{where}: the slice {text} with symbolic bounds has step {i.step!r}; only "
                "step 1 is supported"
            )
        start = _bound(i.start, "start", where)
        stop = _bound(i.stop, "stop", where)
        dim = axes[k]
        size = x._data.shape[dim]
        if stop is None:
            raise SymbolicError(
                f"{where}: the slice {text} runs to the end of dim {dim}, so its length "
                f"(size - {_show(start)}) depends on the values; give a stop such as "
                f"{_show(start)} + n"
            )
        c0, a0 = _form(start._svar) if isinstance(start, Symbol) else (start or 0, {})
        c1, a1 = _form(stop._svar) if isinstance(stop, Symbol) else (stop, {})
        left = {a: a1.get(a, 0) - a0.get(a, 0) for a in [*a1, *(a for a in a0 if a not in a1)]}
        if any(left.values()):
            raise SymbolicError(
                f"{where}: the length of the slice {text}, stop - start = "
                f"{_text((c1 - c0, left))}, depends on the values, so the shape of the "
                "result would change from call to call; a symbolic graph needs a length "
                "fixed when it is built, e.g. x[i * n:(i + 1) * n]"
            )
        length = c1 - c0
        if length <= 0:
            raise SymbolicError(
                f"{where}: the slice {text} has length {length} (stop - start); a slice "
                "with symbolic bounds must have a positive length"
            )
        if type(size) is int and length > size:
            raise SymbolicError(
                f"{where}: the slice {text} has length {length}, more than dim {dim} (size {size})"
            )
        # (a Python int start, with a symbolic stop whose symbols cancel, is a constant
        # start: checked at run time like any other, never counted from the end)
        x = dynamic_slice(x, 0 if start is None else start, dim, length)
        out_items[k] = slice(None)
    return x, tuple(out_items)
