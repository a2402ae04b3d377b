"""Symbolic gradients: reverse mode over the recorded equations with the VJP table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..compiler.ir import Eqn, Var
from ..compiler.prims import InputRef, _first_ref, full_p
from ..ops._ad import VJPS, ZERO_FILL_OFF
from ..ops._core import SAVE_INPUTS, SAVE_OUTPUT
from ..ops.reduction import sum_to
from ._core import SVar, Symbol, SymbolicError, wrap
from ._sizes import sym_size
from ._trace import _SizeFloat, record, state_symbol

__all__ = ["ancestors", "grad"]


def ancestors(roots: Sequence[Var]) -> list[Eqn]:
    """The equations that ``roots`` depend on, in a valid execution order."""
    seen: set[int] = set()
    eqns: dict[int, Eqn] = {}
    stack = [v for v in roots if isinstance(v, SVar)]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        e = v.producer
        if e is None or id(e) in eqns:
            continue
        eqns[id(e)] = e
        stack.extend(x for x in e.inputs if isinstance(x, SVar))
    # var ids grow with creation, so an equation's outputs are newer than its inputs
    return sorted(eqns.values(), key=lambda e: e.outputs[0].id)


def _zeros(v: Var) -> Symbol:
    shape = tuple(sym_size(d) for d in v.shape)
    return record(full_p, (), {"shape": shape, "value": 0, "dtype": v.dtype.np})


def _same_shape(a: Var, b: Var) -> bool:
    return len(a.shape) == len(b.shape) and all(x == y for x, y in zip(a.shape, b.shape))


def grad(cost: Symbol, wrt: Any, allow_unused: bool = False) -> Any:
    """The symbolic gradient of the scalar ``cost`` with respect to ``wrt``.

    ``wrt`` is a symbol (an input, a shared variable or an intermediate value) or a
    module's parameter used in the graph, or a list of them; the result has the same
    structure. A ``wrt`` that ``cost`` does not depend on is an
    error unless ``allow_unused=True`` (then its gradient is zeros).

    Example:
        >>> import ember
        >>> from ember import symbol as S
        >>> x = S.var("x", (3,))
        >>> g = S.grad((x * x).sum(), x)
        >>> S.function([x], g)(ember.tensor([1.0, 2.0, 3.0])).tolist()
        [2.0, 4.0, 6.0]
    """
    if not isinstance(cost, Symbol):
        raise TypeError(f"grad: cost must be a Symbol, got {type(cost).__name__}")
    cv = cost._svar
    if cv.shape != ():
        raise SymbolicError(
            f"grad: cost must be a scalar (0-d), got shape {cv.type_str()}; reduce it first "
            "(e.g. cost.sum() or cost.mean())"
        )
    if not cv.dtype.is_floating_point:
        raise SymbolicError(f"grad: cost must be floating point, got {cv.dtype}")
    single = not isinstance(wrt, (list, tuple))
    targets = [state_symbol(t, f"grad: wrt[{k}]") for k, t in enumerate([wrt] if single else wrt)]
    for k, t in enumerate(targets):
        if not t._svar.dtype.is_floating_point:
            raise SymbolicError(
                f"grad: wrt[{k}] ({t._svar.label()}) has dtype {t._svar.dtype.name}; gradients "
                "are taken with respect to floating-point values"
            )
    cts: dict[int, Symbol] = {
        id(cv): record(full_p, (), {"shape": (), "value": 1, "dtype": cv.dtype.np})
    }
    keep = [cost]  # the symbols must outlive the walk (they keep the tracer installed)
    for e in reversed(ancestors([cv])):
        slot = [cts.get(id(v)) for v in e.outputs]
        if all(s is None for s in slot) or e.prim.nondiff:
            continue
        base = getattr(e.prim, "base", e.prim)  # a lifted primitive: the original's rule
        rule = VJPS.get(base)
        if rule is None:
            raise SymbolicError(
                f"grad: {e.prim.name} has no gradient rule (register one with ember.ops._ad.defvjp)"
            )
        if len(slot) == 1:
            g: Any = slot[0]
        else:
            if e.prim not in ZERO_FILL_OFF:
                slot = [s if s is not None else _zeros(v) for s, v in zip(slot, e.outputs)]
            g = tuple(slot)
        outs = [wrap(v) for v in e.outputs]
        out = None
        if e.prim.save & SAVE_OUTPUT:
            out = outs[0] if len(outs) == 1 else tuple(outs)
        if e.prim.save & SAVE_INPUTS:
            ins = [
                wrap(v) if isinstance(v, Var) else _sizes_params({"v": v.value})["v"]
                for v in e.inputs
            ]
        else:
            ins = [None] * len(e.inputs)
        keep.extend(outs)
        params = _sizes_params(e.params)
        if base is not e.prim:
            n = _first_ref(e.params)
            params = _refs_to_symbols(params, e.inputs)
            ins = ins[:n]
        res = rule(g, out, *ins, **params)
        if not isinstance(res, tuple):
            res = (res,)
        for v, ct in zip(e.inputs, res):
            if ct is None or not isinstance(v, SVar) or not v.dtype.is_floating_point:
                continue
            if not isinstance(ct, Symbol):
                raise SymbolicError(f"grad: the rule of {e.prim.name} returned {ct!r}")
            if not _same_shape(ct._svar, v):
                ct = sum_to(ct, tuple(sym_size(d) for d in v.shape))
            if ct._svar.dtype is not v.dtype:
                ct = ct.to(v.dtype)
            prev = cts.get(id(v))
            cts[id(v)] = ct if prev is None else prev + ct
    res_list = []
    for k, t in enumerate(targets):
        ct = cts.get(id(t._svar))
        if ct is None:
            if not allow_unused:
                raise SymbolicError(
                    f"grad: the cost does not depend on wrt[{k}] ({t._svar.label()}); pass "
                    "allow_unused=True for a zero gradient"
                )
            ct = _zeros(t._svar)
        res_list.append(ct)
    return res_list[0] if single else type(wrt)(res_list)


def _refs_to_symbols(params: Any, inputs: list) -> Any:
    t = type(params)
    if t is InputRef:
        return wrap(inputs[params.index])._data  # the placeholder: lifted again when used
    if t is tuple or t is list:
        return t(_refs_to_symbols(x, inputs) for x in params)
    if t is dict:
        return {k: _refs_to_symbols(x, inputs) for k, x in params.items()}
    return params


def _sizes_params(params: dict[str, Any]) -> dict[str, Any]:
    """Equation params with Dims back as sizes the library code computes with."""
    from ..compiler.ir import Dim, Ratio
    from ._sizes import probes

    def go(v: Any) -> Any:
        t = type(v)
        if t is Ratio:  # float(size): found again by record() when used as an operand
            return _SizeFloat(v.eval(probes()), v)
        if t is Dim:
            return sym_size(v)
        if t is tuple or t is list:
            return t(go(x) for x in v)
        if t is dict:
            return {k: go(x) for k, x in v.items()}
        return v

    return {k: go(v) for k, v in params.items()}
