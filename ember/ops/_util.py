"""Small helpers shared by op modules: dim normalisation and argument checks."""

from __future__ import annotations

from ._core import ShapeError


def wrap_dim(dim, ndim, op):
    """Normalise a possibly negative ``dim`` for a tensor of ``ndim`` dims."""
    n = max(ndim, 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        try:
            dim = int(dim.__index__())
        except AttributeError:
            raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of "
            f"[{-n}, {n - 1}], but got {dim})"
        )
    return dim % n


def size_ints(sizes, op, what="size"):
    """``sizes`` as a tuple of Python ints: a clear error for a string, None or a
    fractional float (which ``int()`` would reject unclearly or truncate silently)."""
    out = []
    for s in sizes:
        if isinstance(s, int) and type(s) is not bool:
            out.append(s)  # int subclasses as they are (ember.symbol's symbolic sizes)
            continue
        try:
            out.append(s.__index__())
            continue
        except (AttributeError, TypeError):
            pass
        if isinstance(s, float) and s.is_integer():
            out.append(int(s))
            continue
        raise TypeError(
            f"{op}: {what} must be a sequence of ints, but got {type(s).__name__} {s!r} "
            f"in {tuple(sizes)!r}"
        )
    return tuple(out)


def wrap_dims(dim, ndim, op):
    """Normalise ``dim`` (None, int, or a sequence) to a sorted tuple of dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        dims = tuple(wrap_dim(d, ndim, op) for d in dim)
        if len(set(dims)) != len(dims):
            raise ShapeError(f"{op}: dim {tuple(dim)} appears multiple times in the list of dims")
        return tuple(sorted(dims))
    return (wrap_dim(dim, ndim, op),)


def reduced_shape(shape, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


__all__ = ["reduced_shape", "wrap_dim", "wrap_dims"]
