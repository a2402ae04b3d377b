"""``ember.utils.data``: torch.utils.data's names and submodules, the same objects as
``ember.data``, and batches as PyTorch's DataLoader makes them."""

import numpy as np
import torch
import torch.utils.data as tud

import ember
import ember.data
import ember.utils.data as eud

NAMES = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "get_worker_info",
    "random_split",
]


def test_names_are_ember_data_objects_under_torch_paths():
    for name in NAMES:
        assert hasattr(tud, name), name  # the list is torch's
        assert getattr(eud, name) is getattr(ember.data, name), name
    assert ember.utils.data is eud
    from ember.utils.data.dataloader import DataLoader, default_collate
    from ember.utils.data.dataset import Subset
    from ember.utils.data.sampler import RandomSampler

    assert (DataLoader, default_collate, Subset, RandomSampler) == (
        eud.DataLoader,
        eud.default_collate,
        eud.Subset,
        eud.RandomSampler,
    )


def test_sequential_batches_match_torch():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10)

    def batches(lib, mod):
        ds = mod.ConcatDataset(
            [
                mod.TensorDataset(lib.tensor(x), lib.tensor(y)),
                mod.Subset(mod.TensorDataset(lib.tensor(x), lib.tensor(y)), [1, 3]),
            ]
        )
        return [
            (a.numpy(), b.numpy()) for a, b in mod.DataLoader(ds, batch_size=4, drop_last=False)
        ]

    got, want = batches(ember, eud), batches(torch, tud)
    assert len(got) == len(want) == 3
    for (a, b), (c, d) in zip(got, want):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
