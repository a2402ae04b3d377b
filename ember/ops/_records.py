"""One record per public op: its function and everything generated from it.

An op is declared where its primitive is, with the :func:`op` decorator::

    exp_p = unary_primitive("exp", np.exp)
    defvjp(exp_p, lambda g, out, x: (g * out,), save=SAVE_OUTPUT)

    @op(method="exp", inplace="exp_", ref="exp", domain=(-3, 3))
    def exp(x: Tensor) -> Tensor:
        return bind(exp_p, (float_input(x, "exp"),))

From :data:`OPS`, ``tools/gen_tensor_methods.py`` writes the ``Tensor`` methods
(``ember/_tensor_ops.py``), each module's ``__all__`` lists its records, and
``tests/test_ops.py`` runs per-op checks against PyTorch (value, gradient, shape rule,
float64 finite differences), one test id per op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "OPS",
    "OpRecord",
    "away_from_jumps",
    "distinct_values",
    "module_ops",
    "op",
    "small_integers",
    "with_specials",
]


@dataclass(frozen=True, eq=False)
class OpRecord:
    """What is known about one public op (see :func:`op` for the fields)."""

    name: str
    fn: Callable
    module: str
    methods: tuple[str, ...] = ()
    inplace: tuple[str, ...] = ()
    ref: str | Callable | None = None
    domain: tuple[float, float] = (-3.0, 3.0)
    arity: int = 1
    cases: tuple[dict[str, Any], ...] = ({},)
    shapes: tuple[tuple[tuple[int, ...], ...], ...] | None = None
    sample: Callable | None = None
    grad: bool = True
    fd: bool = True
    second_order: bool = True
    export: bool = True
    toplevel: bool = True
    dtypes: tuple[str, ...] = ("float32",)
    rtol: float = 1e-5
    extra: dict[str, Any] = field(default_factory=dict)

    def torch_ref(self, torch: Any) -> Callable | None:
        """The PyTorch function the tests compare with (``ref`` resolved on ``torch``)."""
        if self.ref is None or callable(self.ref):
            return self.ref
        obj = torch
        for part in self.ref.split("."):
            obj = getattr(obj, part)
        return obj


OPS: dict[str, OpRecord] = {}


def _names(v: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def op(
    *,
    method: str | tuple[str, ...] | None = None,
    inplace: str | tuple[str, ...] | None = None,
    ref: str | Callable | None = None,
    domain: tuple[float, float] = (-3.0, 3.0),
    arity: int = 1,
    cases: tuple[dict[str, Any], ...] = ({},),
    shapes: tuple[tuple[tuple[int, ...], ...], ...] | None = None,
    sample: Callable | None = None,
    grad: bool = True,
    fd: bool = True,
    second_order: bool = True,
    export: bool = True,
    toplevel: bool = True,
    dtypes: tuple[str, ...] = ("float32",),
    rtol: float = 1e-5,
    name: str | None = None,
) -> Callable[[Callable], Callable]:
    """Declare a public op: records ``fn`` in :data:`OPS` and returns it unchanged.

    Args:
        method: the ``Tensor`` method name(s) that call it with the tensor as first argument.
        inplace: the in-place method name(s) (``exp_``), written through ``assign``.
        ref: the PyTorch reference for the tests: a dotted name on ``torch`` (``"exp"``,
            ``"nn.functional.gelu"``) or a callable taking the same arguments.
        domain: the range the tests draw inputs from (keep away from poles and kinks).
        arity: how many tensor inputs the tests generate.
        cases: keyword-argument variants to test, e.g. ``({}, {"approximate": "tanh"})``.
        shapes: input shapes per test call (one tuple of ``arity`` shapes each).
        sample: ``sample(rng, shapes) -> list of arrays`` when uniform draws won't do.
        grad: compare gradients with the reference (False for piecewise-constant ops).
        fd: check the float64 gradient against central finite differences.
        second_order: compare float64 second derivatives with PyTorch (False at kinks).
        export: list it in ``ember.ops`` (False for method-only ops such as ``repeat``).
        toplevel: also ``ember.<name>`` (False for helpers that other modules reach through
            ``ember.ops`` but users do not call, such as ``convert``).
        dtypes: the dtypes of the generated inputs (``"int64"`` for integer ops).
        rtol: relative tolerance against the reference.
        name: the record name (defaults to ``fn.__name__``).

    Example:
        >>> import ember
        >>> rec = OPS["exp"]
        >>> rec.methods, rec.inplace, rec.ref
        (('exp',), ('exp_',), 'exp')
    """

    def record(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in OPS:
            raise ValueError(f"op {key!r} is already recorded (in {OPS[key].module})")
        OPS[key] = OpRecord(
            name=key,
            fn=fn,
            module=fn.__module__,
            methods=_names(method),
            inplace=_names(inplace),
            ref=ref,
            domain=(domain[0], domain[1]),
            arity=arity,
            cases=tuple(cases),
            shapes=shapes,
            sample=sample,
            grad=grad,
            fd=fd,
            second_order=second_order,
            export=export,
            toplevel=toplevel,
            dtypes=tuple(dtypes),
            rtol=rtol,
        )
        return fn

    return record


def module_ops(module: str) -> list[str]:
    """The names of the ops recorded by ``module`` (for its ``__all__``).

    Example:
        >>> import ember
        >>> "exp" in module_ops("ember.ops.unary")
        True
    """
    return [r.name for r in OPS.values() if r.module == module]


# -- input generators for ops that uniform draws in ``domain`` don't suit -------------------
def small_integers(rng: Any, shapes: tuple) -> list:
    """Integer-valued floats in [-2, 2], so comparisons and logic ops meet ties and zeros."""
    return [np.asarray(rng.integers(-2, 3, s), np.float32) for s in shapes]


def away_from_jumps(rng: Any, shapes: tuple) -> list:
    """``(x, y)`` for fmod/remainder: quarter-offset ``x`` and half-integer ``y`` of both signs,
    so no quotient lands on a jump of the result."""
    x = rng.integers(-12, 12, shapes[0]) + 0.25
    y = (rng.integers(1, 5, shapes[1]) + 0.5) * rng.choice([-1, 1], shapes[1])
    return [np.asarray(x, np.float32), np.asarray(y, np.float32)]


def with_specials(rng: Any, shapes: tuple) -> list:
    """Draws from {0, 1.5, -2, inf, -inf, nan} for the predicates."""
    vals = [0.0, 1.5, -2.0, float("inf"), float("-inf"), float("nan")]
    return [np.asarray(rng.choice(vals, s), np.float32) for s in shapes]


def distinct_values(rng: Any, shapes: tuple) -> list:
    """Distinct values (a shuffled ramp), so max/min have no ties to split."""
    out = []
    for s in shapes:
        n = 1
        for d in s:
            n *= d
        out.append(np.asarray(rng.permutation(n).reshape(s) / 3, np.float32))
    return out
