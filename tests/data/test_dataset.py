import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i


def test_tensor_dataset_from_ember_and_numpy():
    x = ember.from_numpy(np.arange(12, dtype=np.float32).reshape(6, 2))
    y = np.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(np.asarray(xi), [8, 9])
    assert int(yi) == 4
    with pytest.raises(ValueError, match="first dimension"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_subset_concat_chain():
    sub = Subset(Squares(10), [9, 2, 2])
    assert [sub[i] for i in range(len(sub))] == [81, 4, 4]
    cat = ConcatDataset([Squares(3), Squares(2)])
    assert len(cat) == 5
    assert [cat[i] for i in range(5)] == [0, 1, 4, 0, 1]
    assert cat[-1] == 1
    with pytest.raises(IndexError):
        cat[5]
    assert len(Squares(2) + Squares(4)) == 6

    class Stream(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

    assert list(ChainDataset([Stream(2), Stream(3)])) == [0, 1, 0, 1, 2]
    with pytest.raises(TypeError):
        ConcatDataset([Stream(2)])


def test_random_split_lengths_fractions_and_seed():
    a, b, c = random_split(range(10), [5, 3, 2], generator=1)
    assert (len(a), len(b), len(c)) == (5, 3, 2)
    assert sorted(list(a) + list(b) + list(c)) == list(range(10))
    # fractions: 10 * [0.33, 0.33, 0.34] floors to 3,3,3 and the remainder goes round robin
    sizes = [len(s) for s in random_split(range(10), [0.33, 0.33, 0.34], generator=1)]
    assert sizes == [4, 3, 3]
    # same seed -> same split; ember.manual_seed drives the default
    assert list(random_split(range(10), [5, 5], generator=3)[0]) == list(
        random_split(range(10), [5, 5], generator=3)[0]
    )
    ember.manual_seed(7)
    s1 = list(random_split(range(20), [10, 10])[0])
    ember.manual_seed(7)
    s2 = list(random_split(range(20), [10, 10])[0])
    assert s1 == s2 and s1 != list(range(10))
    g = ember.Generator().manual_seed(5) if hasattr(ember, "Generator") else 5
    assert len(random_split(range(4), [0.5, 0.5], generator=g)[0]) == 2
    with pytest.raises(ValueError, match="sum"):
        random_split(range(10), [3, 3])


def test_sequential_and_random_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    ember.manual_seed(0)
    rs = RandomSampler(range(50))
    e1, e2 = list(rs), list(rs)
    assert sorted(e1) == list(range(50)) and e1 != e2  # new order each epoch
    ember.manual_seed(0)
    assert list(rs) == e1  # ...but repeatable from the global seed
    seeded = RandomSampler(range(50), generator=3)
    assert list(seeded) != list(seeded)
    assert list(RandomSampler(range(50), generator=3)) == list(
        RandomSampler(range(50), generator=3)
    )
    with_repl = list(RandomSampler(range(5), replacement=True, num_samples=200, generator=0))
    assert len(with_repl) == 200 and set(with_repl) == set(range(5))
    more = list(RandomSampler(range(5), num_samples=12, generator=0))
    assert len(more) == 12 and sorted(more[:5]) == list(range(5))
    assert len(RandomSampler(range(5), num_samples=3)) == 3
    with pytest.raises(ValueError):
        RandomSampler(range(5), num_samples=0)


def test_subset_random_and_weighted_sampler():
    assert sorted(SubsetRandomSampler([3, 9, 4], generator=0)) == [3, 4, 9]
    w = WeightedRandomSampler([0.0, 0.1, 0.9], num_samples=2000, generator=0)
    counts = np.bincount(list(w), minlength=3)
    assert counts[0] == 0 and 0.85 < counts[2] / 2000 < 0.95
    no_repl = list(WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False, generator=1))
    assert sorted(no_repl) == [0, 1, 2]
    with pytest.raises(ValueError):
        WeightedRandomSampler([1, -1], 2)
    with pytest.raises(ValueError):
        WeightedRandomSampler([1, 0], 2, replacement=False)


def test_batch_sampler():
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    bs = BatchSampler(SequentialSampler(range(7)), 3, drop_last=True)
    assert list(bs) == [[0, 1, 2], [3, 4, 5]] and len(bs) == 2
    assert len(BatchSampler(SequentialSampler(range(7)), 3, drop_last=False)) == 3
    with pytest.raises(ValueError):
        BatchSampler(range(3), 0, False)


@pytest.mark.parametrize(
    "n,world,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (2, 4, False)]
)
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_partitions(n, world, drop_last, shuffle):
    parts = [
        list(DistributedSampler(range(n), world, r, shuffle=shuffle, seed=4, drop_last=drop_last))
        for r in range(world)
    ]
    sizes = {len(p) for p in parts}
    assert len(sizes) == 1  # every rank does the same number of steps
    flat = [i for p in parts for i in p]
    if drop_last:
        assert len(flat) == (n // world) * world and len(set(flat)) == len(flat)
    else:
        assert set(flat) == set(range(n))  # every sample seen once (plus padding repeats)
        assert len(flat) == -(-n // world) * world
    # same result as PyTorch's algorithm for the unshuffled case
    if not shuffle and not drop_last:
        pytest.importorskip("torch")
        from torch.utils.data import DistributedSampler as TDS

        tparts = [list(TDS(range(n), world, r, shuffle=False)) for r in range(world)]
        assert parts == tparts


def test_distributed_sampler_set_epoch_and_seed():
    s = DistributedSampler(range(100), num_replicas=2, rank=1, seed=0)
    e0 = list(s)
    assert list(s) == e0  # same epoch -> same order
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != e0
    other = DistributedSampler(range(100), num_replicas=2, rank=0, seed=0)
    other.set_epoch(1)
    assert set(e1).isdisjoint(other) and len(set(e1) | set(other)) == 100
    with pytest.raises(ValueError):
        DistributedSampler(range(10), num_replicas=2, rank=2)
