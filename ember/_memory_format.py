"""Memory formats (``torch.memory_format``): the layouts ``clone``, ``contiguous``, ``to``
and the ``*_like`` functions can give a copy, and the stride rules behind them (PyTorch's
``preserve_format``: a dense tensor keeps its strides; ``suggest_memory_format``).

Kept apart from :mod:`ember._tensor_methods` (which installs the Tensor methods that use them)
because they are pure functions of shapes and strides.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "channels_last",
    "channels_last_3d",
    "contiguous_format",
    "laid_out_like",
    "memory_format",
    "preserve_format",
]


class memory_format:
    """A memory layout a copy can take (``torch.memory_format``): ``ember.preserve_format``
    (the default of ``clone``: a dense tensor keeps its strides, another gets dense strides in
    its dimensions' order), ``ember.contiguous_format``, ``ember.channels_last`` (4-D) and
    ``ember.channels_last_3d`` (5-D).

    Example:
        >>> import ember
        >>> x = ember.zeros(2, 3).t()
        >>> x.clone().stride(), x.clone(memory_format=ember.contiguous_format).stride()
        ((1, 3), (2, 1))
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ember.{self.name}"


preserve_format = memory_format("preserve_format")
contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
_MEMORY_FORMATS = {
    f.name: f for f in (preserve_format, contiguous_format, channels_last, channels_last_3d)
}


def _memory_format_name(memory_format, what):
    if memory_format is None:
        return "preserve_format"
    if isinstance(memory_format, memory_format_type):
        return memory_format.name
    raise TypeError(
        f"{what}(): argument 'memory_format' must be ember.memory_format, "
        f"not {type(memory_format).__name__}"
    )


memory_format_type = memory_format


def _dense_like_strides(shape, strides):
    """PyTorch's ``infer_dense_strides``: dense strides (in elements) that order the
    dimensions as ``strides`` does; 0 strides keep their place."""
    ndim = len(shape)
    if ndim == 1:
        return (1,)
    perm = list(range(ndim - 1, -1, -1))

    def should_swap(d0, d1):
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0

    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    out = [0] * ndim
    cur = 1
    for d in perm:
        out[d] = cur
        if shape[d] > 1:
            cur *= shape[d]
    return tuple(out)


def _non_overlapping_and_dense(shape, strides):
    if len(shape) == 1:
        return shape[0] < 2 or strides[0] == 1
    order = sorted(
        range(len(shape)), key=lambda d: (shape[d] < 2, strides[d] if shape[d] >= 2 else 0)
    )
    need = 1
    for d in order:
        if shape[d] < 2:
            return True
        if strides[d] != need:
            return False
        need *= shape[d]
    return True


def _clone_strides(x, memory_format):
    """The strides (in elements) of ``x``'s copy in ``memory_format``, or None for C order."""
    shape = x.shape
    if memory_format == "contiguous_format" or x.ndim == 0:
        return None
    if memory_format in ("channels_last", "channels_last_3d"):
        # channels innermost, then the spatial dimensions last to first, then the batch
        perm = [1, *range(x.ndim - 1, 1, -1), 0]
        out = [0] * x.ndim
        cur = 1
        for d in perm:
            out[d] = cur
            cur *= max(shape[d], 1)
        return tuple(out)
    strides = tuple(s // x.itemsize for s in x.strides)
    if any(s < 0 for s in strides):  # reversed views (PyTorch has none): a dense copy in order
        return _dense_like_strides(shape, tuple(abs(s) for s in strides))
    if _non_overlapping_and_dense(shape, strides):
        return strides
    return _dense_like_strides(shape, strides)


_CHANNELS_LAST = ("channels_last", "channels_last_3d")


def _suggested_format(x):
    """PyTorch's ``suggest_memory_format``: ``channels_last`` (4-D) or ``channels_last_3d``
    (5-D) when the strides order the dimensions channels innermost, then the spatial ones
    last to first, then the batch; else ``contiguous_format``."""
    if x.ndim not in (4, 5):
        return "contiguous_format"
    least = 0
    for d in (1, *range(x.ndim - 1, 1, -1), 0):
        n, st = x.shape[d], x.strides[d] // x.itemsize
        if n == 0 or st < least or (d == 0 and least == x.strides[1] // x.itemsize):
            return "contiguous_format"
        least = st * n if n > 1 else st
    return "channels_last" if x.ndim == 4 else "channels_last_3d"


def laid_out_like(arr, like, memory_format=None, what="empty_like"):
    """``arr`` (a new C-order array of ``like``'s shape) in the layout ``memory_format``
    gives a copy of ``like`` (PyTorch's ``*_like`` functions: ``preserve_format`` keeps a
    dense input's strides). Returns ``arr`` itself when that layout is C order.

    Example:
        >>> import numpy as np
        >>> from ember._memory_format import laid_out_like
        >>> laid_out_like(np.zeros((2, 3)), np.zeros((3, 2)).T).strides
        (8, 16)
    """
    fmt = _memory_format_name(memory_format, what)
    c_order = like.flags.c_contiguous and like.size and 1 not in like.shape
    if fmt not in _CHANNELS_LAST and (fmt == "contiguous_format" or c_order):
        return arr
    rank = {"channels_last": 4, "channels_last_3d": 5}.get(fmt)
    if rank is not None and like.ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt} format")
    strides = _clone_strides(like, fmt)
    if strides is None or strides == _dense_like_strides(like.shape, (0,) * like.ndim):
        return arr
    return copy_with_strides(arr, strides)


def copy_with_strides(arr, strides):
    """A copy of ``arr`` in a new buffer laid out with ``strides`` (in elements, dense and
    non-negative, as :func:`_clone_strides` gives them)."""
    span = 1 + sum((n - 1) * s for n, s in zip(arr.shape, strides, strict=True)) if arr.size else 0
    out = np.lib.stride_tricks.as_strided(
        np.empty(span, arr.dtype), arr.shape, tuple(s * arr.itemsize for s in strides)
    )
    np.copyto(out, arr)
    return out
