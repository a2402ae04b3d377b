"""DistributedSampler gives each rank exactly PyTorch's indices (torch is the oracle)."""

from __future__ import annotations

import pytest

from ember.data import DistributedSampler
from ember.data.distributed import torch_randperm

torch = pytest.importorskip("torch")
from torch.utils.data import DistributedSampler as TorchDS  # noqa: E402


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 1000, 4099])
@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 + 5, 2**40 + 123, -7])
def test_randperm_matches_torch(n, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    assert torch_randperm(n, seed) == torch.randperm(n, generator=g).tolist()


@pytest.mark.parametrize("n", [1, 5, 10, 97, 128])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [False, True])
def test_indices_match_torch_every_rank(n, world, shuffle, drop_last):
    for epoch in (0, 3):
        for rank in range(world):
            ours = DistributedSampler(range(n), world, rank, shuffle, seed=11, drop_last=drop_last)
            theirs = TorchDS(range(n), world, rank, shuffle, seed=11, drop_last=drop_last)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


def test_fewer_samples_than_ranks_with_drop_last():
    for rank in range(4):
        ours = DistributedSampler(range(3), 4, rank, drop_last=True)
        assert list(ours) == list(TorchDS(range(3), 4, rank, drop_last=True)) == []


def test_padding_when_world_exceeds_length():
    for rank in range(5):
        ours = DistributedSampler(range(2), 5, rank, seed=3)
        assert list(ours) == list(TorchDS(range(2), 5, rank, seed=3))


def test_bad_arguments():
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(range(10), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="positive"):
        DistributedSampler(range(10), num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="process group"):
        DistributedSampler(range(10))
    assert list(DistributedSampler([], num_replicas=2, rank=0)) == []
