"""``embedding_bag``: sums, means or maxima of bags of embedding rows, without materialising
the per-index rows as a user-visible tensor.

Bags come from ``offsets`` (1-D input: bag ``b`` holds ``input[offsets[b]:offsets[b+1]]``)
or are the rows of a 2-D input. The composition: one ``embedding`` lookup of every index, then
``index_add`` into the bags (``sum``/``mean``) or a first-maximum ``argmax`` over the bag's
padded ``(bags, longest, dim)`` block (``max``). Entries equal to ``padding_idx`` are left out
(not counted in the mean); empty bags give zeros, as in PyTorch.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> w = ember.arange(8.0).reshape(4, 2)
    >>> F.embedding_bag(ember.tensor([0, 1, 3]), w, ember.tensor([0, 2]), mode="sum").tolist()
    [[2.0, 4.0], [6.0, 7.0]]
"""

from __future__ import annotations

import numpy as np

from ... import _creation as C
from ... import ops
from ...ops._core import ShapeError

__all__ = ["embedding_bag"]


def _bags(input, offsets, include_last_offset: bool, op: str):
    """Flat indices, the bag of each entry and the number of bags."""
    from ..._tensor import Tensor

    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor of indices, got {type(input).__name__}")
    if input.dtype.is_floating_point or input.dtype.name == "bool":
        raise TypeError(f"{op}: expected indices of integer dtype, got {input.dtype}")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(
                f"{op}: if input is 2D, then offsets has to be None, as input is treated as a "
                "mini-batch of fixed length sequences"
            )
        b, length = input.shape
        return input.reshape(-1), np.repeat(np.arange(b), length), b
    if input.ndim != 1:
        raise ShapeError(f"{op}: input has to be 1D or 2D Tensor, but got shape {input.shape}")
    if offsets is None:
        raise ValueError(f"{op}: offsets has to be a 1D Tensor but got None")
    if not isinstance(offsets, Tensor) or offsets.ndim != 1:
        raise ShapeError(f"{op}: offsets has to be a 1D Tensor, got {offsets!r}")
    if offsets.dtype.is_floating_point or offsets.dtype.name == "bool":
        raise TypeError(f"{op}: expected offsets of integer dtype, got {offsets.dtype}")
    off = offsets.detach().numpy().astype(np.int64)
    total = input.shape[0]
    if off.size == 0:
        if include_last_offset:
            raise ValueError(f"{op}: include_last_offset needs at least one offset")
        return input, np.zeros(0, np.int64), 0
    if off[0] != 0:
        raise ValueError(
            f"{op}: offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to "
            f"start from position 0. However, got {int(off[0])}"
        )
    if off[-1] > total:
        raise ValueError(
            f"{op}: offsets[-1] can not be greater than input's length ({total}), but got "
            f"offsets[-1] of {int(off[-1])}"
        )
    if np.any(np.diff(off) < 0):
        raise ValueError(f"{op}: offsets must be non-decreasing, got {off.tolist()}")
    ends = off[1:] if include_last_offset else np.append(off[1:], total)
    starts = off[:-1] if include_last_offset else off
    nb = starts.size
    lengths = ends - starts
    bag_of = np.repeat(np.arange(nb), lengths)
    used = int(lengths.sum())  # with include_last_offset, indices past the last offset
    return input[:used], bag_of, nb


def embedding_bag(
    input,
    weight,
    offsets=None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights=None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
):
    """Reduce bags of rows of ``weight`` ``(num_embeddings, dim)``: ``mode`` ``sum``, ``mean``
    or ``max``; ``per_sample_weights`` (``sum`` only) scales each row first.

    With ``include_last_offset`` the last offset ends the last bag (CSR form; PyTorch's
    ``max`` mode runs the last bag to the end of ``input`` instead when they differ).

    ``sparse`` is accepted for compatibility (gradients are dense). ``scale_grad_by_freq``
    divides each row's gradient by its word's count in ``input``, as ``F.embedding`` does
    (PyTorch 2.13's CPU ``embedding_bag`` divides the ``r``-th distinct word by the count of
    the ``r``-th smallest index instead, which is a bug).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> w = ember.tensor([[1.0, 5.0], [3.0, 2.0], [0.0, 0.0]])
        >>> F.embedding_bag(ember.tensor([[0, 1], [1, 2]]), w, mode="max").tolist()
        [[3.0, 5.0], [3.0, 2.0]]
    """
    op = "embedding_bag"
    from ..._tensor import Tensor

    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ShapeError(
            f"{op}: weight has to be a 2D Tensor, got {getattr(weight, 'shape', weight)}"
        )
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{op}: mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                f"{op}: per_sample_weights was not None. per_sample_weights is only supported "
                f"for mode='sum' (got mode='{mode}')"
            )
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(
                f"{op}: per_sample_weights {tuple(per_sample_weights.shape)} must have the "
                f"input's shape {tuple(input.shape)}"
            )
        if per_sample_weights.dtype != weight.dtype:
            raise TypeError(
                f"{op}: per_sample_weights ({per_sample_weights.dtype}) and weight "
                f"({weight.dtype}) must have one dtype"
            )
    if scale_grad_by_freq and mode == "max":
        raise ValueError(f"{op}: max mode does not support scaling the gradient by the frequency")
    num, dim = weight.shape
    if padding_idx is not None:
        if not -num <= int(padding_idx) < num:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings")
        padding_idx = int(padding_idx) % num
    idx, bag_of, nb = _bags(input, offsets, include_last_offset, op)
    if (
        input.ndim == 2
        and input.shape[1] > 0
        and mode != "max"
        and padding_idx is None
        and max_norm is None
        and not scale_grad_by_freq
        and per_sample_weights is None
    ):
        # bags of one length, every entry counted: no bookkeeping on the indices' values,
        # so the op traces into one graph (ember.export, ember.compile); embedding checks
        # the range
        rows = _lookup(weight, input)
        return rows.sum(1) if mode == "sum" else rows.mean(1)
    raw = idx.detach().numpy().astype(np.int64)
    if raw.size and (raw.min() < 0 or raw.max() >= num):
        raise IndexError(
            f"{op}: index out of range in self (indices must be in [0, {num}), got min "
            f"{int(raw.min())}, max {int(raw.max())})"
        )
    if max_norm is not None:
        from .sampling import _renorm_rows

        _renorm_rows(weight, raw, float(max_norm), float(norm_type))
    keep = np.ones(raw.shape, bool) if padding_idx is None else raw != padding_idx
    pos = np.flatnonzero(keep)
    words, bags = raw[pos], bag_of[pos]
    rows = _lookup(weight, words)
    if scale_grad_by_freq and words.size:
        # each row's gradient divided by its word's count in the batch; the value is kept
        # exactly (r + (r*f - r*f) == r for finite r)
        counts = np.bincount(raw, minlength=num)[words].astype(weight._data.dtype)
        f = C.from_numpy((1.0 / counts)[:, None])
        scaled = rows * f
        rows = rows.detach() + (scaled - scaled.detach())
    if mode == "max":
        return _bag_max(rows, bags, nb, dim, weight)
    if per_sample_weights is not None:
        psw = per_sample_weights.reshape(-1)
        if psw.shape[0] != raw.size:
            psw = psw[: raw.size]
        rows = rows * ops.index_select(psw, 0, C.from_numpy(pos)).unsqueeze(1)
    out = C.zeros(nb, dim, dtype=weight.dtype).index_add(0, C.from_numpy(bags), rows)
    if mode == "mean":
        cnt = np.maximum(np.bincount(bags, minlength=nb), 1).astype(weight._data.dtype)
        out = out / C.from_numpy(cnt[:, None])
    return out


def _lookup(weight, words):
    from ..._tensor import Tensor
    from .sampling import embedding

    return embedding(words if isinstance(words, Tensor) else C.from_numpy(words), weight)


def _bag_max(rows, bags: np.ndarray, nb: int, dim: int, weight):
    """Per bag and column the first maximal row entry (PyTorch's order); empty bags are 0."""
    counts = np.bincount(bags, minlength=nb)
    longest = int(counts.max()) if counts.size else 0
    if longest == 0:
        return C.zeros(nb, dim, dtype=weight.dtype) + rows.sum() * 0.0
    # slot of each entry inside its bag (entries of a bag are consecutive, in order)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(bags.size) - first[bags]
    src = np.full((nb, longest), -1, np.int64)
    src[bags, slot] = np.arange(bags.size)
    valid = src >= 0
    block = _lookup(rows, np.where(valid, src, 0))  # (nb, longest, dim)
    mask = C.from_numpy(valid[:, :, None])
    masked = ops.where(mask, block.detach(), -np.inf)
    win = ops.argmax(masked, 1, keepdim=True)
    out = ops.take_along_dim(block, win, 1).squeeze(1)
    return ops.where(C.from_numpy(counts[:, None] > 0), out, 0.0)
