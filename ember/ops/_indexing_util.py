"""The argument handling of the indexing primitives in ``indexing.py``: index normalisation
(``x[idx]`` turned into a static NumPy index, slices with int bounds) and its bounds checks,
and the checks and small helpers of gather/scatter/index_*/masked_* (index and mask tensors,
src/value operands, ``(values, indices)`` results).

None of this registers a primitive or an op record: it only validates and converts
arguments, so it lives apart from the records (which stay in ``indexing.py``, one op, one
record); ``indexing`` imports every name back.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ._core import ShapeError, _state
from ._util import wrap_dim


def _slice_bound(v: Any, what: str) -> int | None:
    """A slice bound as a plain int (or None), so the slice is a static param."""
    if v is None:
        return None
    try:
        return operator.index(v)  # a one-element integer tensor is read here, once
    except TypeError:
        got = type(v).__name__
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            got = f"a {v.dtype} tensor of {int(np.prod(v.shape))} elements"
        raise IndexError(
            f"slice {what} must be an integer, a one-element integer tensor or None, got {got}"
        ) from None


def _static_slice(s: slice) -> slice:
    """``s`` with int bounds; any nonzero step, either sign (NumPy semantics: out-of-range
    bounds clamp, empty selections are fine)."""
    step = _slice_bound(s.step, "step")
    if step == 0:
        raise ValueError("slice step cannot be zero")
    return slice(_slice_bound(s.start, "start"), _slice_bound(s.stop, "stop"), step)


def _normalize_index(idx):
    """Turn a user index into a tuple NumPy accepts: Tensors become arrays; bool lists
    become masks. Returns (index, is_basic)."""
    from .._tensor import Tensor

    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    basic = True
    for i in idx:
        if isinstance(i, Tensor):
            a = i._data
            if a.dtype.kind not in "iub":
                raise IndexError(
                    f"tensors used as indices must be long, int, byte or bool "
                    f"tensors, got {i.dtype}"
                )
            if a.ndim == 0 and a.dtype.kind in "iu":
                # reading the index's value: under a tracer through Tensor.__index__, which the
                # tracer sees as a data-dependent read (a graph break) rather than a constant
                out.append(i.__index__() if _state.tracer is not None else int(a))
                continue
            out.append(a)
            basic = False
        elif isinstance(i, (list, np.ndarray)):
            a = np.asarray(i)
            if a.dtype.kind == "f":
                raise IndexError(
                    "tensors used as indices must be long, int, byte or bool "
                    "tensors, got a float list/array"
                )
            out.append(a)
            basic = False
        elif isinstance(i, slice):
            out.append(_static_slice(i))
        elif i is None or i is Ellipsis:
            out.append(i)
        elif isinstance(i, (bool, np.bool_)):
            out.append(np.asarray(i))
            basic = False
        elif isinstance(i, (int, np.integer)):
            out.append(int(i))
        else:
            raise IndexError(
                f"unsupported index type {type(i).__name__}: only integers, slices "
                "(`:`), ellipsis (`...`), None and long or bool tensors are valid "
                "indices"
            )
    return tuple(out), basic


def _check_bounds(x_shape, idx):
    """Out-of-range integer indices raise IndexError with the dim and size (NumPy's message
    does not say which tensor)."""
    dim = 0
    n_ell = sum(1 for i in idx if i is Ellipsis)
    consumed = sum(
        1
        for i in idx
        if i is not None
        and i is not Ellipsis
        and not (isinstance(i, np.ndarray) and i.dtype == np.bool_)
    ) + sum(i.ndim for i in idx if isinstance(i, np.ndarray) and i.dtype == np.bool_)
    if consumed > len(x_shape):
        raise IndexError(f"too many indices for tensor of dimension {len(x_shape)}")
    for i in idx:
        if i is None:
            continue
        if i is Ellipsis:
            dim += len(x_shape) - consumed
            continue
        if isinstance(i, int):
            n = x_shape[dim]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
        elif isinstance(i, np.ndarray) and i.dtype == np.bool_:
            if i.shape != tuple(x_shape[dim : dim + i.ndim]):
                raise IndexError(
                    f"The shape of the mask {i.shape} at index {dim} does not match "
                    f"the shape of the indexed tensor {tuple(x_shape)}"
                )
            dim += i.ndim
            continue
        elif isinstance(i, np.ndarray) and i.size:
            n = x_shape[dim]
            if i.max() >= n or i.min() < -n:
                bad = i.max() if i.max() >= n else i.min()
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {n}")
        dim += 1
    _ = n_ell


class _ValuesIndices(tuple):
    """``(values, indices)`` named-tuple-like result of ``sort`` / ``topk``."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _is_tensor(x):
    from .._tensor import Tensor

    return isinstance(x, Tensor)


def _as_index(index, op, name="index"):
    """Check that ``index`` is an integer tensor (lists/arrays are converted)."""
    from .._creation import tensor

    if not _is_tensor(index):
        index = tensor(np.asarray(index))
        if index._data.dtype.kind == "f" and index._data.size == 0:
            index = tensor(np.zeros(index.shape, np.int64))
    if index._data.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: expected {name} to be an integer (int64) tensor, got "
            f"{index.dtype} of shape {tuple(index.shape)}"
        )
    return index


def _check_range(index, n, op, dim, allow_negative=False):
    if index.size == 0:
        return
    lo, hi = int(index.min()), int(index.max())
    low = -n if allow_negative else 0
    if lo < low or hi >= n:
        bad = lo if lo < low else hi
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with size {n}")


def _full_index(index, dim):
    """Index tuple addressing ``out[..., index[...], ...]`` elementwise (gather/scatter)."""
    nd = index.ndim
    out = []
    for d in range(nd):
        if d == dim:
            out.append(index)
        else:
            shp = [1] * nd
            shp[d] = index.shape[d]
            out.append(np.arange(index.shape[d]).reshape(shp))
    return tuple(out)


def _sub(a, shape):
    """``a`` cut down to ``shape`` (leading corner)."""
    if tuple(a.shape) == tuple(shape):
        return a
    return a[tuple(slice(0, s) for s in shape)]


def _pad_to(t, shape):
    """Zero-pad tensor ``t`` at the end of each dim up to ``shape`` (in ember ops)."""
    if tuple(t.shape) == tuple(shape):
        return t
    from .shape import pad

    p = []
    for d in reversed(range(len(shape))):
        p += [0, shape[d] - t.shape[d]]
    return pad(t, p)


def _gs_checks(x, dim, index, op, src=None):
    nd = x._data.ndim
    d = wrap_dim(dim, nd, op)
    ishp = tuple(index._data.shape)
    xshp = tuple(x._data.shape)
    if len(ishp) != max(nd, 0) and not (nd <= 1 and len(ishp) <= 1):
        raise ShapeError(
            f"{op}: index tensor must have the same number of dimensions as input "
            f"tensor; got index shape {ishp} and input shape {xshp}"
        )
    if nd and len(ishp) == nd:
        for k in range(nd):
            if k != d and ishp[k] > xshp[k]:
                raise ShapeError(
                    f"{op}: size of index {ishp} must not exceed the input size "
                    f"{xshp} in dimension {k} (dim={d})"
                )
    if src is not None and _is_tensor(src):
        sshp = tuple(src._data.shape)
        if len(sshp) != len(ishp) or any(i > s for i, s in zip(ishp, sshp)):
            raise ShapeError(
                f"{op}: index shape {ishp} must not exceed the src shape {sshp} "
                f"(input shape {xshp}, dim={d})"
            )
    return d


def _src_value(x, src, op):
    from ._promote import _cast

    if _is_tensor(src):
        return _cast(src, x.dtype) if src._data.dtype != x._data.dtype else src
    if isinstance(src, (bool, int, float, np.number)):
        return np.asarray(src, x._data.dtype)
    raise TypeError(
        f"{op}: src/value must be a Tensor or a Python number, got {type(src).__name__}"
    )


def _check_1d_index(index, op):
    if index._data.ndim > 1:
        raise ShapeError(
            f"{op}: index is supposed to be a vector (0-d or 1-d), got shape "
            f"{tuple(index._data.shape)}"
        )


def _scalar_value(x, value, op):
    if _is_tensor(value) and value._data.ndim != 0:
        raise ShapeError(
            f"{op}: only supports a 0-dimensional value tensor, but got tensor "
            f"with {value._data.ndim} dimension(s) (shape "
            f"{tuple(value.shape)})"
        )
    return _src_value(x, value, op)


def _as_mask(mask, op):
    from .._creation import tensor

    if not _is_tensor(mask):
        mask = tensor(np.asarray(mask))
    if mask._data.dtype != np.bool_:
        raise TypeError(f"{op}: expected mask to be a bool tensor, got {mask.dtype}")
    return mask
