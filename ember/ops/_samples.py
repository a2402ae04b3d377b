"""Sample inputs for primitives no public function reaches, keyed by the primitive.

The registry tests (``tests/test_registry.py``) bind each sample directly to check the
shape rule and the VJP; declare one beside such a primitive with :func:`defsample`.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import Primitive

__all__ = ["SAMPLES", "defsample"]

# fn() -> list of (args, params) bound as bind(prim, args, params)
SAMPLES: dict[Primitive, Callable[[], list]] = {}


def defsample(prim: Primitive, fn: Callable[[], list]) -> Callable[[], list]:
    """Register ``fn`` as the sample generator of ``prim``.

    Example:
        >>> import ember
        >>> all(callable(fn) for fn in SAMPLES.values())
        True
    """
    SAMPLES[prim] = fn
    return fn
