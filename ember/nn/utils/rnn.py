"""Variable-length sequences (``torch.nn.utils.rnn`` names): padding and packing.

A :class:`PackedSequence` holds the valid time steps of a batch of sequences, time-major:
step ``t`` holds ``batch_sizes[t]`` rows, one per sequence still running, longest sequences
first (``sorted_indices`` maps those positions to the batch; None when the batch came
sorted). Ember's ``RNN``, ``LSTM`` and ``GRU`` accept one as input, as PyTorch's do.

Example:
    >>> import ember
    >>> from ember.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
    >>> seqs = [ember.ones(3, 2), ember.ones(1, 2)]
    >>> padded = pad_sequence(seqs, batch_first=True)
    >>> tuple(padded.shape)
    (2, 3, 2)
    >>> packed = pack_padded_sequence(padded, [3, 1], batch_first=True)
    >>> packed.batch_sizes.tolist()
    [2, 1, 1]
    >>> out, lengths = pad_packed_sequence(packed, batch_first=True)
    >>> lengths.tolist()
    [3, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ... import _creation as C
from ..._tensor import Tensor
from ...ops import shape as S
from ...ops.indexing import index_select

__all__ = [
    "PackedSequence",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]


class PackedSequence(NamedTuple):
    """The valid steps of a batch of sequences (see the module docstring for the layout).

    Example:
        >>> import ember
        >>> from ember.nn.utils.rnn import pack_sequence
        >>> p = pack_sequence([ember.tensor([1.0, 2.0]), ember.tensor([3.0])])
        >>> p.data.tolist(), p.batch_sizes.tolist()
        ([1.0, 3.0, 2.0], [2, 1])
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same sequences with ``data`` converted (dtype/device), as ``Tensor.to``."""
        return self._replace(data=self.data.to(*args, **kwargs))

    @property
    def is_cuda(self) -> bool:
        return False

    def is_pinned(self) -> bool:
        return False


def _lengths_array(lengths, batch: int, steps: int) -> np.ndarray:
    if isinstance(lengths, Tensor):
        lengths = lengths.tolist()
    arr = np.asarray(lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(
            f"pack_padded_sequence: lengths must be a 1-D list or tensor of ints, "
            f"got {arr.dtype} with shape {arr.shape}"
        )
    arr = arr.astype(np.int64)
    if arr.size != batch:
        raise ValueError(
            f"pack_padded_sequence: expected {batch} lengths (the batch size), got {arr.size}"
        )
    if batch and arr.min() <= 0:
        raise RuntimeError(
            "pack_padded_sequence: every length must be greater than 0 "
            "(an empty sequence cannot be packed)"
        )
    if batch and arr.max() > steps:
        raise RuntimeError(
            f"pack_padded_sequence: a length of {int(arr.max())} exceeds the "
            f"{steps} time steps of the input"
        )
    return arr


def _index(values) -> Tensor:
    return C.tensor(np.asarray(values, np.int64))


def pack_padded_sequence(
    input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` if ``batch_first``) whose sequence
    ``b`` has ``lengths[b]`` valid steps. Unless ``enforce_sorted``, any order is accepted.

    Example:
        >>> import ember
        >>> x = ember.arange(6.0).reshape(3, 2)  # T=3, B=2
        >>> pack_padded_sequence(x, [1, 3], enforce_sorted=False).data.tolist()
        [1.0, 0.0, 3.0, 5.0]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pack_padded_sequence: input must be a Tensor, got {type(input)}")
    if input.dim() < 2:
        raise ValueError(
            f"pack_padded_sequence: input must have a time and a batch dimension, "
            f"got shape {tuple(input.shape)}"
        )
    t_axis, b_axis = (1, 0) if batch_first else (0, 1)
    lengths = _lengths_array(lengths, input.shape[b_axis], input.shape[t_axis])
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError(
                f"pack_padded_sequence: lengths {lengths.tolist()} must be sorted in "
                "decreasing order when enforce_sorted=True; pass enforce_sorted=False to "
                "pack unsorted sequences"
            )
        order = np.arange(lengths.size)
        sorted_indices = unsorted_indices = None
    else:
        order = np.argsort(-lengths, kind="stable")
        sorted_indices = _index(order)
        unsorted_indices = _index(np.argsort(order, kind="stable"))
    sorted_len = lengths[order]
    steps = int(sorted_len[0]) if sorted_len.size else 0
    batch_sizes = np.array([(sorted_len > t).sum() for t in range(steps)], np.int64)
    t_idx = np.repeat(np.arange(steps), batch_sizes)
    b_idx = np.concatenate([order[:n] for n in batch_sizes]) if steps else np.zeros(0, int)
    idx = (_index(b_idx), _index(t_idx)) if batch_first else (_index(t_idx), _index(b_idx))
    return PackedSequence(input[idx], _index(batch_sizes), sorted_indices, unsorted_indices)


def _sorted_lengths(batch_sizes: np.ndarray) -> np.ndarray:
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    return np.array([(batch_sizes > i).sum() for i in range(batch)], np.int64)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: the padded batch (in the original batch order) and
    the lengths as an int64 tensor. ``total_length`` pads the time axis further.

    Example:
        >>> import ember
        >>> p = pack_padded_sequence(ember.ones(3, 2), [3, 1])
        >>> x, n = pad_packed_sequence(p, padding_value=-1.0)
        >>> x.tolist(), n.tolist()
        ([[1.0, 1.0], [1.0, -1.0], [1.0, -1.0]], [3, 1])
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(
            f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}"
        )
    data = sequence.data
    batch_sizes = np.asarray(sequence.batch_sizes.tolist(), np.int64)
    steps = batch_sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                f"pad_packed_sequence: total_length={total_length} is shorter than the "
                f"longest sequence ({steps} steps)"
            )
        steps = int(total_length)
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    # gather from the packed rows plus one padding row (index n): differentiable, no scatter
    n = data.shape[0]
    where = np.full((steps, batch), n, np.int64)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    for t, bs in enumerate(batch_sizes):
        where[t, :bs] = np.arange(offsets[t], offsets[t] + bs)
    lengths = _sorted_lengths(batch_sizes)
    if sequence.unsorted_indices is not None:
        back = np.asarray(sequence.unsorted_indices.tolist(), np.int64)
        where, lengths = where[:, back], lengths[back]
    pad = C.full((1, *data.shape[1:]), padding_value, dtype=data.dtype)
    out = S.cat([data, pad], 0)[_index(where)]
    if batch_first:
        out = S.transpose(out, 0, 1)
    return out, _index(lengths)


def pad_sequence(
    sequences: Sequence[Tensor] | Tensor,
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences ``(L_i, *)`` into ``(max L, B, *)`` (``(B, max L, *)`` if
    ``batch_first``), filling with ``padding_value`` on ``padding_side``.

    Example:
        >>> import ember
        >>> pad_sequence([ember.tensor([1.0, 2.0]), ember.tensor([3.0])], True).tolist()
        [[1.0, 2.0], [3.0, 0.0]]
    """
    if padding_side not in ("right", "left"):
        raise ValueError(
            f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}"
        )
    seqs = list(sequences.unbind(0) if isinstance(sequences, Tensor) else sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    for k, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise TypeError(f"pad_sequence: sequence {k} is a {type(s).__name__}, not a Tensor")
        if s.dim() < 1 or tuple(s.shape[1:]) != tuple(seqs[0].shape[1:]):
            raise ValueError(
                f"pad_sequence: sequences must share their trailing dimensions; sequence 0 "
                f"has shape {tuple(seqs[0].shape)}, sequence {k} has {tuple(s.shape)}"
            )
    longest = max(s.shape[0] for s in seqs)
    rows = []
    for s in seqs:
        missing = longest - s.shape[0]
        if missing:
            fill = C.full((missing, *s.shape[1:]), padding_value, dtype=s.dtype)
            s = S.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        rows.append(s)
    return S.stack(rows, 0 if batch_first else 1)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences ``(L_i, *)`` (longest first unless not ``enforce_sorted``).

    Example:
        >>> import ember
        >>> pack_sequence([ember.ones(2), ember.ones(3)], enforce_sorted=False).batch_sizes.tolist()
        [2, 2, 1]
    """
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """Split a padded batch back into its sequences (the inverse of :func:`pad_sequence`).

    Example:
        >>> import ember
        >>> [s.tolist() for s in unpad_sequence(ember.ones(2, 2), [2, 1], batch_first=True)]
        [[1.0, 1.0], [1.0]]
    """
    t_axis, b_axis = (1, 0) if batch_first else (0, 1)
    shape = padded_sequences.shape
    lengths = _lengths_array(lengths, shape[b_axis], shape[t_axis])
    rows = padded_sequences.unbind(b_axis)
    return [r[: int(n)] for r, n in zip(rows, lengths)]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The sequences of a :class:`PackedSequence`, in the original batch order.

    Example:
        >>> import ember
        >>> p = pack_sequence([ember.ones(1), ember.ones(2)], enforce_sorted=False)
        >>> [s.tolist() for s in unpack_sequence(p)]
        [[1.0], [1.0, 1.0]]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def run_packed(module, packed: PackedSequence, hx=None):
    """Run a recurrent module (``RNN``/``LSTM``/``GRU``) on a :class:`PackedSequence`, as
    PyTorch does: each sequence stops at its own length, so the final state is the state at
    its last valid step (the first, for the reverse direction), and the output is packed.

    Sequences of equal length run together as one batch. ``hx`` and the returned final
    states are in the original batch order.

    Example:
        >>> import ember
        >>> rnn = ember.nn.GRU(2, 3)
        >>> out, h = rnn(pack_sequence([ember.ones(3, 2), ember.ones(1, 2)]))
        >>> tuple(out.data.shape), tuple(h.shape)
        ((4, 3), (1, 2, 3))
    """
    padded, length_t = pad_packed_sequence(packed)  # (T, B, F), original order
    lengths = np.asarray(length_t.tolist(), np.int64)
    from ..modules.rnn import LSTM  # nn.utils loads before nn.modules

    is_lstm = isinstance(module, LSTM)
    states = hx if isinstance(hx, tuple) else ((hx,) if hx is not None else None)
    if states is not None:
        for s in states:
            if s.dim() != 3 or s.shape[1] != lengths.size:
                raise RuntimeError(
                    f"{type(module).__name__}: with a PackedSequence of {lengths.size} "
                    f"sequences the initial state must be (layers * directions, "
                    f"{lengths.size}, hidden), got {tuple(s.shape)}"
                )
    flats, finals, offsets, members = [], [], {}, []
    offset = 0
    for length in sorted(set(lengths.tolist()), reverse=True):
        idx = np.flatnonzero(lengths == length)
        sel = _index(idx)
        x = index_select(padded[:length], 1, sel)
        if module.batch_first:
            x = S.transpose(x, 0, 1)
        h0 = None
        if states is not None:
            h0 = tuple(index_select(s, 1, sel) for s in states)
            h0 = h0 if is_lstm else h0[0]
        out, final = module(x, h0)
        if module.batch_first:
            out = S.transpose(out, 0, 1)
        flats.append(out.reshape(length * idx.size, out.shape[-1]))
        finals.append(final if is_lstm else (final,))
        for j, b in enumerate(idx):
            offsets[int(b)] = (offset, idx.size, j)
        members.extend(idx.tolist())
        offset += length * idx.size
    # packed output rows: step t of sequence b sits at offset + t * group size + position
    batch_sizes = np.asarray(packed.batch_sizes.tolist(), np.int64)
    order = (
        np.arange(lengths.size)
        if packed.sorted_indices is None
        else np.asarray(packed.sorted_indices.tolist(), np.int64)
    )
    rows = []
    for t, bs in enumerate(batch_sizes):
        for b in order[:bs]:
            start, size, pos = offsets[int(b)]
            rows.append(start + t * size + pos)
    data = S.cat(flats, 0)[_index(rows)]
    back = _index(np.argsort(np.asarray(members), kind="stable"))
    final = tuple(
        index_select(S.cat([f[k] for f in finals], 1), 1, back) for k in range(len(finals[0]))
    )
    out = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
    return out, (final if is_lstm else final[0])
