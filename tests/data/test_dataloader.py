"""DataLoader behaviour that does not depend on worker processes (num_workers=0 and 2)."""

import collections

import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
    default_collate,
)


def arr(t):
    return np.asarray(t.numpy())


Point = collections.namedtuple("Point", "x y")


class Mixed:
    """Samples of every kind default_collate must handle."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {
            "img": np.full((2, 3), i, np.uint8),
            "t": ember.from_numpy(np.array([i, -i], np.float32)),
            "label": i,
            "w": float(i) / 2,
            "flag": i % 2 == 0,
            "np_scalar": np.float32(i),
            "name": f"s{i}",
            "pair": (i, [i, i + 1]),
            "pt": Point(i, 2 * i),
        }


def test_default_collate_types():
    b = default_collate([Mixed()[i] for i in range(4)])
    assert isinstance(b["img"], ember.Tensor) and tuple(b["img"].shape) == (4, 2, 3)
    assert arr(b["img"]).dtype == np.uint8
    np.testing.assert_array_equal(arr(b["t"])[:, 1], [0, -1, -2, -3])
    assert arr(b["label"]).dtype == np.int64
    assert arr(b["w"]).dtype == np.float64  # python floats -> float64, like PyTorch
    assert arr(b["flag"]).tolist() == [True, False, True, False]
    assert arr(b["np_scalar"]).dtype == np.float32
    assert b["name"] == ["s0", "s1", "s2", "s3"]
    assert isinstance(b["pair"], list)  # tuples come back as lists (PyTorch behaviour)
    np.testing.assert_array_equal(arr(b["pair"][1][1]), [1, 2, 3, 4])
    assert isinstance(b["pt"], Point) and arr(b["pt"].y).tolist() == [0, 2, 4, 6]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="object"):
        default_collate([object(), object()])


def test_default_collate_matches_torch():
    pytest.importorskip("torch")
    from torch.utils.data import default_collate as tcollate

    batch = [(np.arange(6, dtype=np.float32).reshape(2, 3) * i, i, float(i)) for i in range(3)]
    ours, theirs = default_collate(batch), tcollate(batch)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(arr(o), t.numpy())
        assert arr(o).dtype == t.numpy().dtype


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batches_mixed_structures(num_workers):
    loader = DataLoader(Mixed(), batch_size=4, num_workers=num_workers)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    assert tuple(batches[-1]["img"].shape) == (2, 2, 3)
    assert isinstance(batches[0]["t"], ember.Tensor)
    assert batches[2]["name"] == ["s8", "s9"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_shuffle_drop_last_and_same_order_any_workers(num_workers):
    ds = TensorDataset(np.arange(23, dtype=np.int64))
    ember.manual_seed(3)
    got = [
        arr(b[0]).tolist()
        for b in DataLoader(ds, batch_size=5, shuffle=True, drop_last=True, num_workers=num_workers)
    ]
    ember.manual_seed(3)
    ref = [arr(b[0]).tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, drop_last=True)]
    assert got == ref and len(got) == 4
    flat = [v for b in got for v in b]
    assert len(set(flat)) == 20 and flat != sorted(flat)


def test_identical_batches_for_0_and_2_workers_with_slow_items():
    class Uneven:
        # worker 0's items are slow so results arrive out of order and must be reordered
        def __len__(self):
            return 40

        def __getitem__(self, i):
            if (i // 4) % 2 == 0:
                import time

                time.sleep(0.005)
            return np.array([i, i * i]), i

    kw = {"batch_size": 4, "shuffle": True, "generator": 11}
    b0 = [(arr(x), arr(y)) for x, y in DataLoader(Uneven(), num_workers=0, **kw)]
    b2 = [(arr(x), arr(y)) for x, y in DataLoader(Uneven(), num_workers=2, prefetch_factor=3, **kw)]
    assert len(b0) == len(b2) == 10
    for (x0, y0), (x2, y2) in zip(b0, b2):
        np.testing.assert_array_equal(x0, x2)
        np.testing.assert_array_equal(y0, y2)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_sampler_batch_sampler_and_no_batching(num_workers):
    ds = TensorDataset(np.arange(6, dtype=np.float32))
    bs = BatchSampler(SequentialSampler(range(6)), 4, drop_last=False)
    out = [arr(b[0]).tolist() for b in DataLoader(ds, batch_sampler=bs, num_workers=num_workers)]
    assert out == [[0, 1, 2, 3], [4, 5]]
    out = [
        arr(b[0]).tolist()
        for b in DataLoader(ds, sampler=[5, 1, 3], batch_size=2, num_workers=num_workers)
    ]
    assert out == [[5, 1], [3]]
    single = list(DataLoader(ds, batch_size=None, num_workers=num_workers))
    assert len(single) == 6 and float(arr(single[2][0])) == 2.0
    with pytest.raises(ValueError):
        DataLoader(ds, batch_sampler=bs, batch_size=3)
    with pytest.raises(ValueError):
        DataLoader(ds, sampler=[0], shuffle=True)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_custom_collate_fn_tensors_cross_processes(num_workers):
    def collate(batch):
        xs = np.stack([b[0] for b in batch])
        return {"x": ember.from_numpy(xs * 2), "raw": xs, "n": len(batch)}

    ds = TensorDataset(np.arange(8, dtype=np.float32).reshape(4, 2))
    out = list(
        DataLoader(ds, batch_size=2, collate_fn=collate, num_workers=num_workers, pin_memory=True)
    )
    assert isinstance(out[0]["x"], ember.Tensor)
    assert isinstance(out[0]["raw"], np.ndarray)  # a custom collate's arrays stay arrays
    np.testing.assert_array_equal(arr(out[1]["x"]), [[8, 10], [12, 14]])
    assert out[1]["n"] == 2


class Stream(IterableDataset):
    def __init__(self, n, shard=True):
        self.n, self.shard = n, shard

    def __iter__(self):
        from ember.data import get_worker_info

        info = get_worker_info()
        if info is None or not self.shard:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_iterable_dataset(num_workers):
    got = [arr(b).tolist() for b in DataLoader(Stream(11), batch_size=3, num_workers=num_workers)]
    flat = sorted(v for b in got for v in b)
    assert flat == list(range(11))
    if num_workers == 0:
        assert got == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]
    # without sharding every worker iterates its own copy (as in PyTorch)
    dup = [
        v
        for b in DataLoader(Stream(5, shard=False), batch_size=2, num_workers=num_workers)
        for v in arr(b).tolist()
    ]
    assert sorted(dup) == sorted(list(range(5)) * max(num_workers, 1))
    unbatched = list(DataLoader(Stream(4), batch_size=None, num_workers=num_workers))
    assert sorted(unbatched) == [0, 1, 2, 3]  # python ints stay ints unbatched (PyTorch)
    drop = list(DataLoader(Stream(7, shard=False), batch_size=3, drop_last=True))
    assert len(drop) == 2 and len(DataLoader(Stream(7), batch_size=3, drop_last=True)) == 2
    with pytest.raises(ValueError):
        DataLoader(Stream(3), shuffle=True)


def test_argument_validation():
    ds = TensorDataset(np.zeros(3))
    with pytest.raises(ValueError):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError):
        DataLoader(ds, batch_size=None, drop_last=True)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_explicit_generator_is_independent_of_global_seed(num_workers):
    ds = TensorDataset(np.arange(30))

    def order(seed):
        ember.manual_seed(seed)  # must not matter when a generator is given
        g = ember.Generator().manual_seed(42)
        loader = DataLoader(ds, batch_size=7, shuffle=True, generator=g, num_workers=num_workers)
        return [v for b in loader for v in arr(b[0]).tolist()]

    a, b = order(0), order(1)
    assert a == b and sorted(a) == list(range(30)) and a != list(range(30))


class _ItemwiseTensorDataset(TensorDataset):
    """A subclass: the loader fetches it item by item (no batched fast path)."""


@pytest.mark.parametrize("num_workers", [0, 2])
def test_tensor_dataset_batches_equal_the_item_by_item_collate(num_workers):
    rng = np.random.default_rng(3)
    arrays = (
        rng.standard_normal((23, 3, 2)).astype(np.float32),
        rng.integers(0, 9, 23).astype(np.int32),
        rng.standard_normal(23) > 0,
        rng.standard_normal((23, 4)).astype(np.float16),
        ember.arange(23),
    )

    def batches(cls):
        g = ember.Generator().manual_seed(5)
        loader = DataLoader(
            cls(*arrays), batch_size=5, shuffle=True, generator=g, num_workers=num_workers
        )
        return list(loader)

    fast, slow = batches(TensorDataset), batches(_ItemwiseTensorDataset)
    assert len(fast) == len(slow) == 5
    for fb, sb in zip(fast, slow):
        assert type(fb) is type(sb) is list and len(fb) == len(sb) == 5
        for f, s in zip(fb, sb):
            assert isinstance(f, ember.Tensor) and f.dtype == s.dtype and f.shape == s.shape
            np.testing.assert_array_equal(f.numpy(), s.numpy())
