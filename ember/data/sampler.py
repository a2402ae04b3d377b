"""Samplers: which indices a loader visits, in which order, and how they are batched."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ._rng import as_generator, resolve_rng

__all__ = [
    "BatchSampler",
    "DistributedSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
]


class Sampler:
    """Base class: ``__iter__`` yields dataset indices (``__len__`` if known)."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``.

    Example:
        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random order, without replacement (a permutation) or with it.

    A new seed is drawn from ``generator`` (ember's global generator by default) at each
    ``__iter__``, so every epoch differs while the run stays repeatable.

    Example:
        >>> sorted(RandomSampler(range(4), generator=0))
        [0, 1, 2, 3]
        >>> len(list(RandomSampler(range(4), replacement=True, num_samples=10)))
        10
    """

    def __init__(
        self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None
    ):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = as_generator(generator)
        if not isinstance(replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        # NOTE: like PyTorch, the effective count is checked, so an empty data source raises
        # here (a shuffling DataLoader over an empty dataset) rather than giving empty epochs
        n = self.num_samples
        if not isinstance(n, int) or n <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={n}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = resolve_rng(self.generator)
        if n == 0 and self.num_samples > 0:
            # NOTE: like PyTorch, an explicit num_samples over an empty source is accepted at
            # construction and refused when iterated (RuntimeError drawing with replacement,
            # ZeroDivisionError chaining permutations)
            if self.replacement:
                raise RuntimeError(
                    "random_ expects 'from' to be less than 'to', but got from=0 >= to=0: "
                    f"RandomSampler cannot draw {self.num_samples} samples from an empty data "
                    "source"
                )
            raise ZeroDivisionError(
                f"RandomSampler cannot draw {self.num_samples} samples without replacement "
                "from an empty data source (integer division or modulo by zero)"
            )
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        # NOTE: like PyTorch, num_samples > n chains several full permutations
        reps = -(-self.num_samples // n) if n else 0
        if reps == 0:
            return iter([])
        idx = np.concatenate([rng.permutation(n) for _ in range(reps)])
        return iter(idx[: self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in random order.

    Example:
        >>> sorted(SubsetRandomSampler([5, 7], generator=1))
        [5, 7]
    """

    def __init__(self, indices: Sequence[int], generator=None):
        self.indices = list(indices)
        self.generator = as_generator(generator)

    def __iter__(self):
        perm = resolve_rng(self.generator).permutation(len(self.indices))
        return iter([self.indices[i] for i in perm])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """Indices ``0..len(weights)-1`` drawn with probability proportional to ``weights``.

    Example:
        >>> s = WeightedRandomSampler([0.0, 1.0], num_samples=5, generator=0)
        >>> list(s)
        [1, 1, 1, 1, 1]
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        w = np.asarray(weights.numpy() if hasattr(weights, "numpy") else weights, dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(
                "weights must be a 1-d sequence of non-negative finite numbers with a positive sum"
            )
        if not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer, got {num_samples!r}")
        if not replacement and num_samples > int((w > 0).sum()):
            raise ValueError("cannot draw more samples than non-zero weights without replacement")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = bool(replacement)
        self.generator = as_generator(generator)

    def __iter__(self):
        rng = resolve_rng(self.generator)
        p = self.weights / self.weights.sum()
        idx = rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(5)), 2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)

    def __iter__(self):
        batch, size = [], self.batch_size
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# NOTE: defined in .distributed (PyTorch's exact shuffle); imported last (it needs Sampler).
from .distributed import DistributedSampler  # noqa: E402
