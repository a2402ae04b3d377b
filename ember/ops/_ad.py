"""The autodiff subsystem's rule table: one VJP per primitive, keyed by the primitive.

A rule is declared beside its primitive with :func:`defvjp`; the backward engine looks it
up with :func:`vjp_rule`. A later subsystem (JVPs, export, lowering) adds its own table the
same way instead of a slot on :class:`~ember.ops._core.Primitive`.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import Primitive

__all__ = ["VJPS", "ZERO_FILL_OFF", "defvjp", "vjp_rule"]

# vjp(g, out, *inputs, **params) -> tuple of cotangents (ember Tensors or None), in ember ops
VJPS: dict[Primitive, Callable] = {}

# Multi-output primitives whose VJP takes None for an unused output's cotangent (the engine
# fills in zeros for all others): custom Functions that call ctx.set_materialize_grads(False).
ZERO_FILL_OFF: set[Primitive] = set()


def defvjp(prim: Primitive, rule: Callable | None = None, *, save: int | None = None):
    """Register ``rule`` as the VJP of ``prim`` (usable as a decorator: ``@defvjp(prim)``).

    ``save`` (SAVE_NONE/INPUTS/OUTPUT/BOTH) overrides what the forward keeps for the rule.

    Example:
        >>> import numpy as np
        >>> from ember.ops._core import AbstractValue, Primitive, SAVE_OUTPUT
        >>> p = Primitive("doc_exp", "elementwise", impl=np.exp, register=False,
        ...               abstract=lambda x: AbstractValue(x.shape, x.dtype))
        >>> _ = defvjp(p, lambda g, out, x: (g * out,), save=SAVE_OUTPUT)
        >>> vjp_rule(p) is not None
        True
    """
    if not isinstance(prim, Primitive):
        raise TypeError(f"defvjp: expected a Primitive, got {type(prim).__name__}")

    def register(fn: Callable) -> Callable:
        if prim.nondiff:
            raise ValueError(f"defvjp: {prim.name} is marked nondiff=True; it takes no VJP")
        VJPS[prim] = fn
        if save is not None:
            prim.save = save
        return fn

    return register if rule is None else register(rule)


def vjp_rule(prim: Primitive) -> Callable | None:
    """The VJP registered for ``prim``, or None.

    Example:
        >>> import ember
        >>> vjp_rule(ember.ops.elementwise.exp_p) is not None
        True
    """
    return VJPS.get(prim)
