"""``DistributedSampler``: each rank's share of a dataset, index for index PyTorch's.

The shuffle is PyTorch's own: ``torch.randperm(n, generator=torch.Generator().manual_seed(
seed + epoch))`` draws 32-bit outputs of the standard Mersenne Twister seeded with the low
32 bits of the seed and runs a Fisher-Yates pass (swap ``i`` with ``i + r % (n - i)``). The
same generator and pass are reproduced here, so mixed Ember/PyTorch jobs and checkpoints that
record an epoch see the same samples on the same rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler", "torch_randperm"]


def torch_randperm(n: int, seed: int) -> list[int]:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()``.

    Example:
        >>> torch_randperm(5, 0)
        [4, 0, 1, 3, 2]
    """
    if n < 0:
        raise ValueError(f"torch_randperm: n must be >= 0, got {n}")
    mt = np.random.MT19937()
    # NOTE: PyTorch seeds its mt19937 with the seed's low 32 bits (init_genrand, as NumPy's
    # legacy seeding does); negative seeds wrap modulo 2**64 first, which keeps those bits.
    mt._legacy_seeding(int(seed) & 0xFFFFFFFF)
    perm = list(range(n))
    if n > 1:
        draws = mt.random_raw(n - 1)
        js = (draws % np.arange(n, 1, -1, dtype=np.uint64)).astype(np.int64) + np.arange(n - 1)
        for i, j in enumerate(js.tolist()):
            perm[i], perm[j] = perm[j], perm[i]
    return perm


class DistributedSampler(Sampler):
    """The share of a dataset that replica ``rank`` of ``num_replicas`` sees in one epoch,
    identical to ``torch.utils.data.DistributedSampler`` for the same arguments.

    Every index is seen once per epoch across all ranks; when the length does not divide,
    indices are repeated to pad (or the tail is dropped with ``drop_last=True``). Call
    :meth:`set_epoch` before each epoch so the shuffle changes; all ranks must use the same
    ``seed``. ``num_replicas``/``rank`` default to the initialized process group's.

    Example:
        >>> a = list(DistributedSampler(range(5), num_replicas=2, rank=0, shuffle=False))
        >>> b = list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
        >>> a, b
        ([0, 2, 4], [1, 3, 0])
        >>> list(DistributedSampler(range(6), num_replicas=2, rank=0, seed=0))
        [2, 3, 1]
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        if num_replicas is None or rank is None:
            num_replicas, rank = _world(num_replicas, rank)
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, (int, np.integer)):
            raise TypeError(
                f"DistributedSampler: num_replicas must be an int, got {num_replicas!r}"
            )
        if num_replicas <= 0:
            raise ValueError(
                f"DistributedSampler: num_replicas must be positive, got {num_replicas}"
            )
        if not 0 <= rank < num_replicas:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = torch_randperm(n, self.seed + self.epoch)
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad > 0:
                if not indices:
                    raise ValueError("DistributedSampler: cannot pad an empty dataset")
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use a different shuffle for epoch ``epoch`` (the same on every rank)."""
        self.epoch = int(epoch)


def _world(num_replicas, rank):
    """World size and rank from ember.distributed when it is initialized."""
    import ember.distributed as dist

    if dist.is_initialized():
        return (
            dist.get_world_size() if num_replicas is None else num_replicas,
            dist.get_rank() if rank is None else rank,
        )
    raise ValueError(
        "DistributedSampler needs num_replicas and rank (or an initialized "
        "ember.distributed process group)"
    )
