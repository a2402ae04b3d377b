"""The autodiff subsystem's rule table: one VJP per primitive, keyed by the primitive.

A rule is declared beside its primitive with :func:`defvjp`; the backward engine looks it
up with :func:`vjp_rule`. A later subsystem (JVPs, export, lowering) adds its own table the
same way instead of a slot on :class:`~ember.ops._core.Primitive`.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import Primitive

__all__ = [
    "ARRAY_VJPS",
    "UNREAD_OUTPUTS",
    "VJPS",
    "ZERO_FILL_OFF",
    "defvjp",
    "defvjp_array",
    "vjp_rule",
]

# vjp(g, out, *inputs, **params) -> tuple of cotangents (ember Tensors or None), in ember ops
VJPS: dict[Primitive, Callable] = {}

# Eager fast paths of the VJPs for the common primitives: the same cotangents computed on the
# arrays with the primitives' own kernels, no Tensors or binds in between (the backward of a
# small op is mostly that bookkeeping). The engine uses one only where nothing records
# (no create_graph, no tracer, no anomaly mode) and the gradient is a NumPy array:
# rule(edges, g, out, *inputs, **params) with arrays for g, out (the saved output or None)
# and tensor inputs (constants as they are), ``edges`` the node's (None: no gradient wanted);
# it returns a tuple of arrays (or None per input), or NotImplemented to take VJPS's rule.
ARRAY_VJPS: dict[Primitive, Callable] = {}

# Multi-output primitives whose VJP takes None for an unused output's cotangent (the engine
# fills in zeros for all others): custom Functions that call ctx.set_materialize_grads(False).
ZERO_FILL_OFF: set[Primitive] = set()

# Multi-output primitives saving their outputs whose VJP never reads some of them: the
# indices of those outputs. Modifying one in place before the backward is no error (PyTorch's
# batch norm saves its statistics, not its result: ``bn(x).add_(...)``, ``ReLU(inplace=True)``).
UNREAD_OUTPUTS: dict[Primitive, frozenset[int]] = {}


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


def defvjp_array(prim: Primitive, rule: Callable | None = None):
    """Register ``rule`` as the array fast path of ``prim``'s VJP (see :data:`ARRAY_VJPS`);
    it must give the cotangents the VJP rule gives, bit for bit. Usable as a decorator.

    Example:
        >>> import numpy as np
        >>> from ember.ops._core import AbstractValue, Primitive, SAVE_OUTPUT
        >>> p = Primitive("doc_exp2", "elementwise", impl=np.exp, register=False,
        ...               abstract=lambda x: AbstractValue(x.shape, x.dtype))
        >>> _ = defvjp(p, lambda g, out, x: (g * out,), save=SAVE_OUTPUT)
        >>> _ = defvjp_array(p, lambda edges, g, out, x: (g * out,))
        >>> ARRAY_VJPS[p](None, np.ones(2), np.exp(np.zeros(2)), np.zeros(2))[0].tolist()
        [1.0, 1.0]
    """
    if not isinstance(prim, Primitive):
        raise TypeError(f"defvjp_array: expected a Primitive, got {type(prim).__name__}")

    def register(fn: Callable) -> Callable:
        if prim not in VJPS:
            raise ValueError(f"defvjp_array: {prim.name} has no VJP rule (defvjp it first)")
        ARRAY_VJPS[prim] = fn
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
