"""The argument handling and index arithmetic of the shape primitives in ``shape.py``: shape
and dims arguments (``_shape_arg``, ``infer_reshape`` with its one ``-1``, ``_dims_arg``),
the Tensor-sequence check of cat/stack, the diagonal length and pad's source indices and
output shape.

None of this registers a primitive or an op record (those stay in ``shape.py``, one op, one
record); it is plain Python/NumPy on shapes and params, kept apart so the records read as
records. ``shape`` imports every name back.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._core import ShapeError
from ._util import size_ints, wrap_dim


def _shape_arg(shape, op="reshape"):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return size_ints(shape, op, "shape")


def keyword_vararg(name):
    """Let an op declared ``f(input, *name)`` also take ``name=`` by keyword, as PyTorch's
    ``torch.flip(x, dims=[0])`` (the signature stays ``(input, *name)``)."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(input, *args, **kwargs):
            if kwargs:
                if set(kwargs) != {name}:
                    bad = sorted(set(kwargs) - {name})
                    raise TypeError(
                        f"{fn.__name__}() got an unexpected keyword argument {bad[0]!r}"
                    )
                if args:
                    raise TypeError(f"{fn.__name__}() got multiple values for argument {name!r}")
                args = (kwargs[name],)
            return fn(input, *args)

        return call

    return wrap


def infer_reshape(old, new, op="reshape"):
    """Resolve one ``-1`` in ``new``; a clear error when the sizes can't match."""
    # (math.prod over the ints: np.prod cost ~3 us a call, most of a view's overhead)
    size = math.prod(map(int, old))  # (int(): a symbolic size counts as its stand-in value)
    neg = [i for i, s in enumerate(new) if s == -1]
    if len(neg) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred, got shape {tuple(new)}")
    if any(s < -1 for s in new):
        raise ShapeError(f"{op}: invalid shape dimension in {tuple(new)}")
    known = math.prod(int(s) for s in new if s != -1)  # (int(): a symbolic size: its stand-in)
    if neg:
        if known == 0 or size % known:
            raise ShapeError(f"{op}: shape {tuple(new)} is invalid for input of size {size}")
        new = tuple(size // known if s == -1 else s for s in new)
    elif known != size:
        raise ShapeError(
            f"{op}: shape {tuple(new)} is invalid for input of size {size} "
            f"(input shape {tuple(old)})"
        )
    return tuple(new)


def _tensor_list(tensors, name):
    """``tensors`` as a list, checked to be a sequence of Tensors (a lone Tensor would
    otherwise be iterated row by row)."""
    from . import _core

    T = _core._Tensor
    if isinstance(tensors, T) or not hasattr(tensors, "__iter__") or isinstance(tensors, str):
        raise TypeError(
            f"{name}: expected a sequence (list or tuple) of Tensors, got {type(tensors).__name__}"
        )
    tensors = list(tensors)
    for k, x in enumerate(tensors):
        if not isinstance(x, T):
            raise TypeError(
                f"{name}: expected a sequence of Tensors, but element {k} is {type(x).__name__}"
            )
    return tensors


def _dims_arg(dims, nd, op):
    if isinstance(dims, (int, np.integer)):
        dims = (int(dims),)
    dims = tuple(wrap_dim(d, nd, op) for d in dims)
    if len(set(dims)) != len(dims):
        raise ShapeError(f"{op}: dims {dims} has duplicates")
    return dims


def _diag_len(n, m, offset):
    return max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))


def _pad_index(n, lo, hi, mode):
    j = np.arange(-lo, n + hi)
    if mode == "reflect":
        if n == 1:
            return np.zeros_like(j)
        period = 2 * (n - 1)
        j = np.abs(j) % period
        return np.where(j >= n, period - j, j)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    return j % n  # circular


def _pad_out_shape(shape, pads):
    return tuple(s + lo + hi for s, (lo, hi) in zip(shape, pads))
