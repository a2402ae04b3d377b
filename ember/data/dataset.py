"""Map-style and iterable datasets, and ways to combine and split them."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ._rng import resolve_rng

__all__ = [
    "ChainDataset",
    "ConcatDataset",
    "Dataset",
    "IterableDataset",
    "Subset",
    "TensorDataset",
    "random_split",
]


class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and ``__len__``.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return i * i
        >>> Squares()[3]
        9
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: ``__iter__`` only.

    With ``num_workers > 0`` each worker iterates its own copy; shard the stream with
    :func:`ember.data.get_worker_info` to avoid duplicates (as in PyTorch).

    Example:
        >>> class Count(IterableDataset):
        ...     def __iter__(self):
        ...         return iter(range(3))
        >>> list(Count())
        [0, 1, 2]
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


def _as_array(t):
    """A NumPy view of an ember Tensor or array-like (zero copy where possible)."""
    if isinstance(t, np.ndarray):
        return t
    if hasattr(t, "numpy"):
        return t.numpy()
    return np.asarray(t)


class TensorDataset(Dataset):
    """Rows of equally long tensors (or NumPy arrays), indexed along the first dimension.

    Items are ember Tensors sharing memory with the stored rows (no copy), as PyTorch's:
    an element of a 1-D tensor is a 0-d tensor. The loader's collate stacks them.

    Example:
        >>> import ember
        >>> import numpy as np
        >>> ds = TensorDataset(np.arange(6).reshape(3, 2), np.array([0, 1, 0]))
        >>> x, y = ds[1]
        >>> x.tolist(), y.shape, int(y)
        ([2, 3], ember.Size([]), 1)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(_as_array(t) for t in tensors)
        n = len(self.tensors[0])
        for i, t in enumerate(self.tensors):
            if t.ndim == 0 or len(t) != n:
                raise ValueError(
                    f"TensorDataset: tensor {i} has first dimension {t.shape[:1]}, expected ({n},)"
                )

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(_row(t, index) for t in self.tensors)


def _row(t: np.ndarray, index):
    from .._creation import from_numpy

    row = t[index]
    try:
        return from_numpy(np.asarray(row))
    except (TypeError, ValueError, KeyError):  # a dtype ember has no tensor for (strings)
        return row


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, in that order.

    Example:
        >>> Subset(list("abcd"), [3, 0])[0]
        'd'
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]


class ConcatDataset(Dataset):
    """Map-style datasets one after another.

    Example:
        >>> ds = ConcatDataset([[1, 2], [3]])
        >>> len(ds), ds[2]
        (3, 3)
    """

    def __init__(self, datasets: Iterable):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset; use ChainDataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        n = len(self)
        if index < 0:
            if -index > n:
                raise IndexError(f"index {index} out of range for ConcatDataset of length {n}")
            index += n
        if index >= n:
            raise IndexError(f"index {index} out of range for ConcatDataset of length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][index - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another.

    Example:
        >>> list(ChainDataset([range(2), range(1)]))
        [0, 1, 0]
    """

    def __init__(self, datasets: Iterable):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            yield from d


def random_split(dataset, lengths: Sequence[float], generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets.

    Args:
        lengths: absolute lengths summing to ``len(dataset)``, or fractions summing to 1
            (remainders are handed out one by one, round robin, as PyTorch does).
        generator: an ``ember.Generator``, an int seed or a ``numpy.random.Generator``;
            by default a seed is drawn from ember's global generator, so the split
            follows ``ember.manual_seed``.

    Example:
        >>> a, b = random_split(range(10), [0.8, 0.2], generator=0)
        >>> len(a), len(b), sorted(list(a) + list(b)) == list(range(10))
        (8, 2, True)
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(s) for s in lengths]
    if any(s < 0 for s in sizes) or sum(sizes) != n:
        raise ValueError(
            f"random_split: lengths {lengths} do not sum to the dataset "
            f"length {n} (or fractions to 1)"
        )
    perm = resolve_rng(generator).permutation(n).tolist()
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start : start + s]))
        start += s
    return out
