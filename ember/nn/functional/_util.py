"""Argument normalisation shared by the functional ops."""

from __future__ import annotations

__all__ = ["check_tensor", "pair"]


def pair(v, name, op, n=2, positive=False):
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
        out = tuple(int(a) for a in v)
    else:
        out = (int(v),) * n
    if positive and any(a < 1 for a in out):
        raise ValueError(f"{op}: {name} must be positive, got {v!r}")
    return out


def check_tensor(x, op, name="input"):
    from ..._tensor import Tensor

    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x
