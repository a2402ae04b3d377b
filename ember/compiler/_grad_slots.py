"""A leaf's existing ``.grad`` as graph state read at run time (gradient accumulation).

``loss.backward()`` on a parameter that already holds a ``.grad`` writes ``old + new``; the
compiled graph's grad effect replaces ``.grad`` by a new tensor on every call, so the old
gradient cannot be captured by reference (the graph would keep reading the first call's).
It is captured as a :class:`GradOf` slot instead: the executor reads ``leaf.grad``'s array
when the graph runs, and the guard (:func:`grad_key`) records for each such leaf whether its
``.grad`` is None or a tensor (and its shape and dtype), so None and a tensor are different
signatures.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["GradOf", "grad_key", "grad_of"]


class GradOf:
    """The ``.grad`` of ``leaf``, as a captured tensor of a graph: ``_data`` (and
    ``_version``) are those of whatever tensor ``leaf.grad`` holds when read."""

    __slots__ = ("__weakref__", "leaf")
    requires_grad = False
    _node = None

    def __init__(self, leaf: Any):
        self.leaf = leaf

    def _grad(self) -> Any:
        g = self.leaf.__dict__.get("grad")
        if g is None:
            raise RuntimeError(
                "ember.compile: a compiled graph reads a parameter's .grad, which is None "
                "(the guard on .grad should have retraced this call)"
            )
        return g

    @property
    def _data(self) -> Any:
        return self._grad()._data

    @property
    def _version(self) -> list[int]:
        return self._grad()._version

    def __repr__(self) -> str:
        return f"GradOf(leaf of shape {tuple(self.leaf._data.shape)})"


# one slot per leaf while a graph (or a trace) holds it, so that two traces of one call see
# the same object (unification keeps a captured tensor that is the same object as state)
_SLOTS: weakref.WeakValueDictionary[int, GradOf] = weakref.WeakValueDictionary()


def grad_of(leaf: Any) -> GradOf:
    """The :class:`GradOf` slot of ``leaf`` (the same object while one is alive).

    Example:
        >>> import ember
        >>> w = ember.ones(2, requires_grad=True)
        >>> (w * 3).sum().backward()
        >>> s = grad_of(w)
        >>> s is grad_of(w), s._data.tolist()
        (True, [3.0, 3.0])
    """
    s = _SLOTS.get(id(leaf))
    if s is None or s.leaf is not leaf:
        s = GradOf(leaf)
        _SLOTS[id(leaf)] = s
    return s


def grad_key(leaves: list[Any]) -> tuple:
    """The guard on the ``.grad`` of ``leaves``: None, or ``(shape, dtype name)``, for each.

    Example:
        >>> import ember
        >>> w = ember.ones(2, requires_grad=True)
        >>> grad_key([w])
        (None,)
        >>> (w * 3).sum().backward()
        >>> grad_key([w])
        (((2,), 'float32'),)
    """
    out: list[Any] = []
    for t in leaves:
        g = t.__dict__.get("grad")
        out.append(None if g is None else (tuple(g._data.shape), g._data.dtype.name))
    return tuple(out)
