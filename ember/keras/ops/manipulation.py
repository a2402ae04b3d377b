"""Reshaping, joining, splitting, indexing and padding (NumPy names)."""

from __future__ import annotations

import builtins
import itertools

import ember

from ._core import _shape_arg, _t

__all__ = [
    "broadcast_to",
    "concatenate",
    "expand_dims",
    "flip",
    "moveaxis",
    "pad",
    "repeat",
    "reshape",
    "split",
    "squeeze",
    "stack",
    "swapaxes",
    "take",
    "take_along_axis",
    "tile",
    "transpose",
    "tril",
    "triu",
]


def reshape(x, newshape) -> ember.Tensor:
    """``x`` with shape ``newshape`` (one entry may be -1).

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.reshape(ops.zeros((2, 3)), (3, -1)))
        (3, 2)
    """
    newshape = (newshape,) if isinstance(newshape, int) else tuple(int(d) for d in newshape)
    return _t(x).reshape(newshape)


def transpose(x, axes=None) -> ember.Tensor:
    """Permute axes (reversed when ``axes`` is None, as NumPy).

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.transpose(ops.zeros((2, 3, 4))))
        (4, 3, 2)
    """
    x = _t(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) for a in axes)
    return x.permute(*axes)


def expand_dims(x, axis) -> ember.Tensor:
    """Insert size-1 axes at ``axis`` (an int or a tuple), positions in the output.

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.expand_dims(ops.zeros((2, 3)), (0, -1)))
        (1, 2, 3, 1)
    """
    x = _t(x)
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    n = x.ndim + len(axes)
    for a in sorted(int(a) % n for a in axes):
        x = x.unsqueeze(a)
    return x


def squeeze(x, axis=None) -> ember.Tensor:
    """Remove size-1 axes (all of them, or those in ``axis``; another size raises).

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.squeeze(ops.zeros((1, 3, 1)), axis=0))
        (3, 1)
    """
    x = _t(x)
    if axis is None:
        return x.squeeze()
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    axes = sorted((int(a) % x.ndim for a in axes), reverse=True)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(
                f"keras.ops.squeeze: axis {a} of shape {tuple(x.shape)} has size {x.shape[a]}"
            )
        x = x.squeeze(a)
    return x


def stack(x, axis=0) -> ember.Tensor:
    """Stack tensors along a new ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.stack([ops.zeros((2,)), ops.ones((2,))], axis=1))
        (2, 2)
    """
    return ember.stack([_t(v) for v in x], dim=int(axis))


def concatenate(xs, axis=0) -> ember.Tensor:
    """Join tensors along an existing ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> ops.concatenate([[1, 2], [3]]).tolist()
        [1, 2, 3]
    """
    return ember.cat([_t(v) for v in xs], dim=int(axis))


def split(x, indices_or_sections, axis=0) -> list:
    """NumPy's ``split``: an int gives that many equal parts (it must divide the axis); a
    list gives the indices where the parts start.

    Example:
        >>> from ember.keras import ops
        >>> [t.tolist() for t in ops.split([1, 2, 3, 4, 5], [2, 3])]
        [[1, 2], [3], [4, 5]]
    """
    x = _t(x)
    n = x.shape[int(axis)]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k < 1 or n % k:
            raise ValueError(
                f"keras.ops.split: {k} equal sections do not divide an axis of size {n}"
            )
        return list(ember.split(x, n // k, dim=int(axis)))
    bounds = [0] + [builtins.min(builtins.max(int(i), 0), n) for i in indices_or_sections] + [n]
    sizes = [builtins.max(b - a, 0) for a, b in itertools.pairwise(bounds)]
    return list(ember.split(x, sizes, dim=int(axis)))


def take(x, indices, axis=None) -> ember.Tensor:
    """Entries at ``indices`` along ``axis`` (of the flattened input when None).

    Example:
        >>> from ember.keras import ops
        >>> ops.take([[1, 2], [3, 4]], [3, 0]).tolist()
        [4, 1]
    """
    x, idx = _t(x), _t(indices).long()
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = int(axis) % x.ndim
    n = x.shape[axis]
    idx = ember.where(idx < 0, idx + n, idx)
    out = ember.index_select(x, axis, idx.reshape(-1))
    return out.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1 :]))


def take_along_axis(x, indices, axis=None) -> ember.Tensor:
    """Entries of ``x`` at ``indices`` along ``axis`` (``numpy.take_along_axis``).

    Example:
        >>> from ember.keras import ops
        >>> ops.take_along_axis([[1.0, 2.0], [3.0, 4.0]], [[1], [0]], axis=1).tolist()
        [[2.0], [3.0]]
    """
    x, idx = _t(x), _t(indices).long()
    if axis is None:
        return ember.take_along_dim(x.reshape(-1), idx.reshape(-1), dim=0)
    return ember.take_along_dim(x, idx, dim=int(axis))


def tile(x, repeats) -> ember.Tensor:
    """``x`` repeated ``repeats`` times along each axis.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.tile([1, 2], 2).tolist()
        [1, 2, 1, 2]
    """
    repeats = (int(repeats),) if isinstance(repeats, int) else tuple(int(r) for r in repeats)
    return ember.tile(_t(x), repeats)


def repeat(x, repeats, axis=None) -> ember.Tensor:
    """Repeat each entry ``repeats`` times along ``axis`` (of the flattened input when
    None), as ``numpy.repeat``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.repeat([1, 2], 2).tolist()
        [1, 1, 2, 2]
    """
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    if not isinstance(repeats, int):
        repeats = _t(repeats).long()
    return ember.repeat_interleave(x, repeats, dim=int(axis))


def flip(x, axis=None) -> ember.Tensor:
    """Reverse the order along ``axis`` (every axis when None).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.flip([[1, 2], [3, 4]], axis=1).tolist()
        [[2, 1], [4, 3]]
    """
    x = _t(x)
    axes = range(x.ndim) if axis is None else (axis if isinstance(axis, (list, tuple)) else (axis,))
    return ember.flip(x, *[int(a) for a in axes])


def tril(x, k=0) -> ember.Tensor:
    """The lower triangle (on and below diagonal ``k``), zeros above.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.tril([[1, 2], [3, 4]]).tolist()
        [[1, 0], [3, 4]]
    """
    return ember.tril(_t(x), int(k))


def triu(x, k=0) -> ember.Tensor:
    """The upper triangle (on and above diagonal ``k``), zeros below.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.triu([[1, 2], [3, 4]]).tolist()
        [[1, 2], [0, 4]]
    """
    return ember.triu(_t(x), int(k))


def broadcast_to(x, shape) -> ember.Tensor:
    """``x`` broadcast to ``shape``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.broadcast_to([1, 2], (2, 2)).tolist()
        [[1, 2], [1, 2]]
    """
    return ember.broadcast_to(_t(x), _shape_arg(shape))


def moveaxis(x, source, destination) -> ember.Tensor:
    """Move axis ``source`` to position ``destination``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.shape(ops.moveaxis(ops.zeros((2, 3, 4)), 0, -1))
        (3, 4, 2)
    """
    return ember.movedim(_t(x), source, destination)


def swapaxes(x, axis1, axis2) -> ember.Tensor:
    """Exchange two axes.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.shape(ops.swapaxes(ops.zeros((2, 3, 4)), 0, 2))
        (4, 3, 2)
    """
    return ember.swapaxes(_t(x), int(axis1), int(axis2))


def pad(x, pad_width, mode="constant", constant_values=None) -> ember.Tensor:
    """Pad with ``pad_width`` ((before, after) per axis, or one pair for all), as
    ``numpy.pad``; ``mode`` is 'constant', 'reflect', 'edge' or 'wrap'.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.pad([[1, 2]], ((1, 0), (0, 1))).tolist()
        [[0, 0, 0], [1, 2, 0]]
    """
    x = _t(x)
    pw = pad_width
    if isinstance(pw, int):
        pw = [(pw, pw)] * x.ndim
    pw = [tuple(int(v) for v in p) for p in pw]
    if len(pw) == 1:
        pw = pw * x.ndim
    if len(pw) != x.ndim:
        raise ValueError(
            f"keras.ops.pad: pad_width has {len(pw)} pairs for an input of rank {x.ndim}"
        )
    if mode != "constant" and constant_values is not None:
        raise ValueError("keras.ops.pad: constant_values needs mode='constant'")
    flat = []
    for before, after in reversed(pw):
        flat += [before, after]
    from ember.nn import functional as F

    if mode == "constant":
        return F.pad(x, tuple(flat), value=constant_values or 0)
    modes = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    if mode not in modes:
        raise NotImplementedError(
            f"keras.ops.pad: mode={mode!r} is not supported (constant, reflect, edge, wrap)"
        )
    return F.pad(x, tuple(flat), mode=modes[mode])
