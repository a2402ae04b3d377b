"""``embedding_bag``: sums, means or maxima of bags of embedding rows, without materialising
the per-index rows as a user-visible tensor.

Bags come from ``offsets`` (1-D input: bag ``b`` holds ``input[offsets[b]:offsets[b+1]]``)
or are the rows of a 2-D input. Everything is array ops on Ember's differentiable primitives
(no Python loop over bags, no read of the indices' values in the forward, so the op traces
into one graph under ``ember.compile``): the bag of each index is a cumulative sum of ones
scattered at the offsets; ``padding_idx`` is a 0/1 mask; ``sum``/``mean`` are an
``index_add`` of the looked-up rows into ``(bags, dim)`` (``mean`` divided by the bag's count
of non-padding indices); ``max`` finds, per bag and column, the first maximal entry (PyTorch's
choice on ties: the gradient goes to that one entry) as a running maximum of the key
``bag * (n + 1) + rank``, where ``rank`` orders the column's values (a stable descending
``argsort``; earlier entries win ties). Empty bags and all-padding bags give zeros, as in
PyTorch. Value checks (offsets sorted and starting at 0, indices in range) run in eager mode
only, not while ``ember.compile`` traces.

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
from ... import _dtype as dt
from ... import ops
from ...autograd import no_grad
from ...ops._core import ShapeError, _state, bind
from ...ops.statistics import cum_arg_p

__all__ = ["embedding_bag"]


def _check_input(input, offsets, include_last_offset: bool, op: str) -> None:
    """The checks on types and shapes (static: they run while tracing too)."""
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
        return
    if input.ndim != 1:
        raise ShapeError(f"{op}: input has to be 1D or 2D Tensor, but got shape {input.shape}")
    if offsets is None:
        raise ValueError(f"{op}: offsets has to be a 1D Tensor but got None")
    if not isinstance(offsets, Tensor) or offsets.ndim != 1:
        raise ShapeError(f"{op}: offsets has to be a 1D Tensor, got {offsets!r}")
    if offsets.dtype.is_floating_point or offsets.dtype.name == "bool":
        raise TypeError(f"{op}: expected offsets of integer dtype, got {offsets.dtype}")
    if include_last_offset and offsets.shape[0] == 0:
        raise ValueError(f"{op}: include_last_offset needs at least one offset")


def _check_values(input, offsets, num: int, op: str) -> None:
    """The checks that read the indices' and offsets' values (eager mode only: skipped while
    ``ember.compile`` or ``ember.symbol`` traces, where the lookup still rejects indices out
    of range)."""
    raw = input.detach().numpy()
    if raw.size and (raw.min() < 0 or raw.max() >= num):
        raise IndexError(
            f"{op}: index out of range in self (indices must be in [0, {num}), got min "
            f"{int(raw.min())}, max {int(raw.max())})"
        )
    if offsets is None or offsets.shape[0] == 0:
        return
    off = offsets.detach().numpy().astype(np.int64)
    total = input.shape[0]
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


def _bag_ids(input, offsets, include_last_offset: bool):
    """The flat indices, the bag of each (int64, ``(n,)``) and the number of bags ``nb``.
    Bag ``nb`` collects the indices past the last offset (``include_last_offset``): the
    callers reduce into ``nb + 1`` rows and drop the last."""
    if input.ndim == 2:
        b, length = input.shape
        bags = C.arange(b).reshape(b, 1).expand(b, length).reshape(-1)
        return input.reshape(-1), bags, b
    n, m = input.shape[0], offsets.shape[0]
    nb = m - 1 if include_last_offset else m
    # a 1 where each bag after the first starts (offsets[0] == 0 is checked in eager mode),
    # summed up: the bag of each index; offsets equal to n land in the extra slot
    starts = offsets[1:].to(dt.int64)
    marks = C.zeros(n + 1, dtype=dt.int64).index_add(
        0, starts, C.ones(m - 1 if m else 0, dtype=dt.int64)
    )
    return input, ops.cumsum(marks[:n], 0), nb


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

    With ``include_last_offset`` and a last offset short of ``input``'s length, the last bag
    runs to the end of ``input``, as PyTorch 2.13's CPU kernels do, except where PyTorch takes
    its fast path (``sum``/``mean`` of float32/float16/bfloat16 weights, no ``padding_idx``):
    ``sum`` ends the bag at the last offset there (the indices past it get no gradient:
    PyTorch's is uninitialised memory) and ``mean`` divides that sum by the count of indices
    to the end (its gradient is that of the mean to the end), as PyTorch does. In
    ``max`` mode ties go to the first maximal entry of the bag (its row gets the whole
    gradient of that column), as in PyTorch; NaN entries are not ordered as PyTorch does.

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
    _check_input(input, offsets, include_last_offset, op)
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
    if _state.tracer is None:
        _check_values(input, offsets, num, op)
    words, bags, nb = _bag_ids(input, offsets, include_last_offset)
    n = words.shape[0]
    if max_norm is not None:
        _renorm_rows(weight, words, float(max_norm), float(norm_type))
    # the indices that count (not padding)
    keep = None if padding_idx is None else words != padding_idx
    if nb == 0 or n == 0:  # no bags, or only empty ones: zeros joined to weight's graph
        return C.zeros(nb, dim, dtype=weight.dtype) + weight.sum() * 0.0
    # ``include_last_offset``: ``bags`` ends the last bag at the last offset (the indices past
    # it are in bag ``nb``); PyTorch 2.13's CPU kernels run it to the end of ``input``
    # (``to_end``) except the sums of its fast half/float path (no padding_idx): ``sum`` stops
    # at the last offset there, and ``mean`` divides that sum by the count to the end (its
    # gradient is the mean's to the end)
    to_end = bags.clamp(max=nb - 1) if include_last_offset and input.ndim == 1 else bags
    fast = (
        include_last_offset
        and input.ndim == 1
        and padding_idx is None
        and weight.dtype in (dt.float32, dt.float16, dt.bfloat16)
    )
    if mode == "max":
        if _state.tracer is None:  # eager: the bags laid out from the index values
            return _bag_max_eager(weight, words, to_end, keep, nb)
        return _bag_max(weight, words, to_end, keep, nb)
    rows = _lookup(weight, words)  # (n, dim)
    if scale_grad_by_freq:
        # each row's gradient divided by its word's count among the bagged indices (as
        # F.embedding); the value is kept exactly (r + (r*f - r*f) == r for finite r)
        counts = C.zeros(num, dtype=weight.dtype).index_add(
            0, words.to(dt.int64), C.ones(n, dtype=weight.dtype)
        )
        f = (1.0 / ops.index_select(counts, 0, words.to(dt.int64)).clamp(min=1.0)).unsqueeze(1)
        scaled = rows * f.detach()
        rows = rows.detach() + (scaled - scaled.detach())
    if keep is not None:
        rows = ops.where(keep.unsqueeze(1), rows, 0.0)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(-1).unsqueeze(1)
    out = C.zeros(nb + 1, dim, dtype=weight.dtype).index_add(0, bags if fast else to_end, rows)
    out = out[:nb]
    if mode == "mean":
        count = _counts(keep, to_end, nb, n, weight.dtype).clamp(min=1.0).unsqueeze(1)
        if fast:  # the value from the sum to the last offset, the gradient to the end
            full = C.zeros(nb + 1, dim, dtype=weight.dtype).index_add(0, to_end, rows)[:nb]
            full = full / count
            return full + (out / count - full).detach()
        out = out / count
    return out


def _counts(keep, bags, nb: int, n: int, dtype):
    """The number of counted (non-padding) indices of each bag, ``(nb,)`` of ``dtype``."""
    ones = C.ones(n, dtype=dtype) if keep is None else keep.to(dtype)
    return C.zeros(nb + 1, dtype=dtype).index_add(0, bags, ones)[:nb]


def _renorm_rows(weight, words, max_norm: float, norm_type: float) -> None:
    """Rescale in place (no grad) the looked-up rows whose norm exceeds ``max_norm``, as
    PyTorch does (an index met twice writes the same row twice)."""
    with no_grad():
        w = _lookup(weight, words)
        norms = ops.norm(w, norm_type, 1, keepdim=True)
        scale = ops.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[words] = w * scale


def _lookup(weight, words):
    from .sampling import embedding

    return embedding(words, weight)


def _bag_max_eager(weight, words, bags, keep, nb: int):
    """:func:`_bag_max` for eager calls, from the index values: each bag's rows in a
    ``(bags, longest, dim)`` block and a first-maximum ``argmax`` over it (the same values
    and gradient; ~5x faster than the traceable form: 512 bags of ~20 rows of 64, forward and
    backward, 5 against 27 ms on one core)."""
    b = bags.numpy()
    w = words.numpy().astype(np.int64, copy=False)
    sel = b < nb  # (the extra bag of include_last_offset is dropped)
    if keep is not None:
        sel &= keep.numpy()
    w, b = w[sel], b[sel]
    dim = weight.shape[1]
    counts = np.bincount(b, minlength=nb)[:nb]
    longest = int(counts.max()) if counts.size else 0
    if longest == 0:
        return C.zeros(nb, dim, dtype=weight.dtype) + weight.sum() * 0.0
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))  # a bag's entries are consecutive
    slot = np.arange(b.size) - first[b]
    src = np.full((nb, longest), -1, np.int64)
    src[b, slot] = w
    valid = src >= 0
    block = _lookup(weight, C.from_numpy(np.where(valid, src, 0)))  # (nb, longest, dim)
    masked = ops.where(C.from_numpy(valid[:, :, None]), block.detach(), -np.inf)
    win = ops.argmax(masked, 1, keepdim=True)
    out = ops.take_along_dim(block, win, 1).squeeze(1)
    return ops.where(C.from_numpy(counts[:, None] > 0), out, 0.0)


def _bag_max(weight, words, bags, keep, nb: int):
    """Per bag and column the first maximal entry (PyTorch's choice on ties, and where the
    gradient goes); bags with no counted index give 0.

    The bags' maxima come from a segmented running maximum by doubling (``ceil(log2(n))``
    steps of shifted ``maximum``, each kept only where the shifted entry is in the same bag),
    read at each bag's last entry; the first entry equal to its bag's maximum is then found
    as the running maximum of the integer key ``bag * (n + 1) + (n - position)`` over the
    entries that equal it (``cummax``'s index)."""
    n, dim = words.shape[0], weight.shape[1]
    w64 = words.to(dt.int64)
    vals = _lookup(weight, words).detach()  # (n, dim)
    if keep is not None:
        vals = ops.where(keep.unsqueeze(1), vals, -np.inf)
    run = vals
    step = 1
    while step < n:
        same = (bags[step:] == bags[:-step]).unsqueeze(1)
        tail = ops.where(same, ops.maximum(run[step:], run[:-step]), run[step:])
        run = ops.cat([run[:step], tail], 0)
        step *= 2
    counts = C.zeros(nb + 1, dtype=dt.int64).index_add(0, bags, C.ones(n, dtype=dt.int64))
    last = (ops.cumsum(counts[:nb], 0) - 1).clamp(min=0)  # each bag's last entry
    peak = ops.index_select(run, 0, last)  # (nb, dim): the bags' maxima
    hit = vals == ops.index_select(ops.cat([peak, peak[:1]], 0), 0, bags)
    if keep is not None:
        hit = hit & keep.unsqueeze(1)
    first = ops.where(hit, n - C.arange(n).unsqueeze(1), 0)  # larger for earlier hits
    key = bags.unsqueeze(1) * (n + 1) + first
    at = bind(cum_arg_p, (key,), {"dim": 0, "largest": True})  # where each running max is
    win = ops.gather(at, 0, last.unsqueeze(1).expand(nb, dim))  # (nb, dim) entries
    word = ops.gather(w64.unsqueeze(1).expand(n, dim), 0, win)
    out = ops.gather(weight, 0, word)  # the gradient goes to the winning row only
    filled = _counts(keep, bags, nb, n, weight.dtype) > 0
    return ops.where(filled.unsqueeze(1), out, 0.0)
