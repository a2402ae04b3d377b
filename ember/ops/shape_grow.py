"""Shape ops that build a larger tensor from a smaller one: ``pad`` (constant, reflect,
replicate, circular), ``repeat_interleave`` and ``meshgrid`` (moved out of ``shape.py``, which
re-exports every name here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._records import module_ops, op
from ._shape_util import _pad_index, _pad_out_shape
from ._util import wrap_dim
from .shape import expand, reshape, transpose

if TYPE_CHECKING:
    from .._tensor import Tensor


# -- pad -----------------------------------------------------------------------------------


def _pad_const_impl(x, pads, value):
    crop = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for s, (lo, hi) in zip(x.shape, pads))
    x = x[crop]
    widths = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
    if not any(a or b for a, b in widths):
        return x.copy()
    return np.pad(x, widths, mode="constant", constant_values=np.asarray(value, x.dtype))


def _pad_abstract(x, pads, *rest, **kw):
    out = _pad_out_shape(x.shape, pads)
    if any(s < 0 for s in out):
        raise ShapeError(
            f"pad: the input size {tuple(x.shape)} with padding {pads} gives a "
            f"negative output size {out}"
        )
    return AbstractValue(out, x.dtype)


pad_constant_p = Primitive(
    "pad_constant",
    "layout",
    impl=_pad_const_impl,
    save=SAVE_NONE,
    abstract=lambda x, pads, value: _pad_abstract(x, pads),
)
defvjp(
    pad_constant_p,
    lambda g, out, x, pads, value: (
        bind(pad_constant_p, (g,), {"pads": tuple((-lo, -hi) for lo, hi in pads), "value": 0}),
    ),
)


def _pad_gather_impl(x, pads, mode):
    for d, (lo, hi) in enumerate(pads):
        if lo or hi:
            x = np.take(x, _pad_index(x.shape[d], lo, hi, mode), axis=d)
    return x if x.base is None else x.copy()


def _pad_scatter_impl(g, pads, mode, shape):
    for d in reversed(range(len(pads))):
        lo, hi = pads[d]
        if lo or hi:
            idx = _pad_index(shape[d], lo, hi, mode)
            z = np.zeros(g.shape[:d] + (shape[d],) + g.shape[d + 1 :], g.dtype)
            np.add.at(np.moveaxis(z, d, 0), idx, np.moveaxis(g, d, 0))
            g = z
    return g


pad_gather_p = Primitive(
    "pad_gather",
    "layout",
    save=SAVE_NONE,
    impl=lambda x, pads, mode, shape: _pad_gather_impl(x, pads, mode),
    abstract=lambda x, pads, mode, shape: _pad_abstract(x, pads),
)
pad_scatter_p = Primitive(
    "pad_scatter",
    "layout",
    save=SAVE_NONE,
    impl=_pad_scatter_impl,
    abstract=lambda g, pads, mode, shape: AbstractValue(shape, g.dtype),
)
defvjp(
    pad_gather_p,
    lambda g, out, x, pads, mode, shape: (
        bind(pad_scatter_p, (g,), {"pads": pads, "mode": mode, "shape": shape}),
    ),
)
defvjp(
    pad_scatter_p,
    lambda gg, out, g, pads, mode, shape: (
        bind(pad_gather_p, (gg,), {"pads": pads, "mode": mode, "shape": shape}),
    ),
)


@op(export=False)
def pad(input: Tensor, pad, mode="constant", value=None) -> Tensor:
    """``torch.nn.functional.pad``: ``pad`` lists (left, right) pairs starting from the last
    dim; ``mode`` is 'constant', 'reflect', 'replicate' or 'circular'."""
    x = input
    pad = tuple(int(p) for p in pad)
    nd = x._data.ndim
    shp = x._data.shape
    if len(pad) % 2:
        raise ShapeError(f"pad: padding length must be divisible by 2, got {len(pad)} ({pad})")
    k = len(pad) // 2
    if k > nd:
        raise ShapeError(
            f"pad: padding length {len(pad)} is too large for a {nd}-d input "
            f"(shape {tuple(shp)}); at most {2 * nd} values"
        )
    per_dim = [(0, 0)] * nd
    for i in range(k):
        per_dim[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    pads = tuple(per_dim)
    if mode == "constant":
        for d, (lo, hi) in enumerate(pads):
            if shp[d] - max(-lo, 0) - max(-hi, 0) < 0:
                raise ShapeError(
                    f"pad: negative padding ({lo}, {hi}) removes more than the "
                    f"size {shp[d]} of dimension {d} (input shape {tuple(shp)})"
                )
        _pad_abstract(AbstractValue(shp, None), pads)
        return bind(pad_constant_p, (x,), {"pads": pads, "value": 0 if value is None else value})
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: unsupported padding mode {mode!r}; expected 'constant', "
            "'reflect', 'replicate' or 'circular'"
        )
    if value not in (None, 0):
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in a value argument")
    for d in range(nd - k, nd):
        lo, hi = pads[d]
        n = shp[d]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ShapeError(
                f"pad: padding size should be less than the corresponding input "
                f"dimension, but got: padding ({lo}, {hi}) at dimension {d} of "
                f"input shape {tuple(shp)} (mode 'reflect')"
            )
        if mode == "circular" and (lo > n or hi > n):
            raise ShapeError(
                f"pad: padding value causes wrapping around more than once: "
                f"padding ({lo}, {hi}) at dimension {d} of input shape "
                f"{tuple(shp)} (mode 'circular')"
            )
        if n == 0 and (lo or hi):
            raise ShapeError(
                f"pad: cannot {mode}-pad dimension {d} of size 0 (input shape {tuple(shp)})"
            )
    _pad_abstract(AbstractValue(shp, None), pads)
    return bind(pad_gather_p, (x,), {"pads": pads, "mode": mode, "shape": shp})


# -- repeat_interleave / meshgrid ------------------------------------------------------------
@op(method="repeat_interleave")
def repeat_interleave(
    input: Tensor, repeats=None, dim: int | None = None, *, output_size=None
) -> Tensor:
    """Repeat each element ``repeats`` times along ``dim`` (flattened when ``dim`` is None).
    ``repeat_interleave(repeats_tensor)`` gives the index pattern."""
    from .._tensor import Tensor
    from .indexing import index_select, repeat_index

    if repeats is None:  # torch.repeat_interleave(repeats)
        return repeat_index(input)
    x = input
    if dim is None:
        x = reshape(x, -1)
        dim = 0
    d = wrap_dim(dim, x._data.ndim, "repeat_interleave")
    n = x._data.shape[d] if x._data.ndim else 1
    if x._data.ndim == 0:
        x = reshape(x, 1)
    if isinstance(repeats, Tensor) and repeats._data.ndim == 0:
        repeats = int(repeats.item())
    if isinstance(repeats, (int, np.integer)):
        if repeats < 0:
            raise ShapeError(f"repeat_interleave: repeats can not be negative, got {repeats}")
        # each slice broadcast ``repeats`` times along a new axis after ``d``, then merged:
        # shape arithmetic only (no index array of the sizes), so a compiled graph keeps
        # ``n`` symbolic (``ember.arange(n).repeat_interleave(k)``)
        r = int(repeats)
        shape = tuple(x._data.shape)
        y = expand(
            reshape(x, (*shape[: d + 1], 1, *shape[d + 1 :])), (*shape[: d + 1], r, *shape[d + 1 :])
        )
        out = reshape(y, (*shape[:d], n * r, *shape[d + 1 :]))
        return out.clone() if r == 1 else out  # (a new tensor, never a view of ``input``)
    else:
        if not isinstance(repeats, Tensor):
            from .._creation import tensor

            repeats = tensor(repeats)
        if repeats._data.ndim != 1 or repeats._data.shape[0] != n:
            raise ShapeError(
                f"repeat_interleave: repeats must have the same size as input "
                f"along dim {d} ({n}), got repeats of shape "
                f"{tuple(repeats._data.shape)}"
            )
        idx = repeat_index(repeats)
    return index_select(x, d, idx)


@op()
def meshgrid(*tensors, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors (``indexing`` 'ij' (the default) or 'xy')."""
    indexing = "ij" if indexing is None else indexing
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ShapeError("meshgrid: expects a non-empty list of tensors")
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for k, t_ in enumerate(tensors):
        if t_._data.ndim > 1:
            raise ShapeError(
                f"meshgrid: expects 0D or 1D tensors, tensor {k} has shape {tuple(t_._data.shape)}"
            )
    ts = [reshape(t_, -1) for t_ in tensors]
    shape = tuple(t_._data.shape[0] for t_ in ts)
    n = len(ts)
    out = [
        expand(reshape(t_, (1,) * i + (-1,) + (1,) * (n - i - 1)), shape) for i, t_ in enumerate(ts)
    ]
    if indexing == "xy" and n >= 2:  # Cartesian indexing: the first two dims swap
        out = [transpose(o, 0, 1) for o in out]
    return tuple(out)


__all__ = module_ops(__name__)
