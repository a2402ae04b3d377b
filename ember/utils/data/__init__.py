"""``torch.utils.data`` names: re-exports of :mod:`ember.data` (one implementation), with
the submodules ``dataloader``, ``dataset`` and ``sampler`` that ported code imports from.

Example:
    >>> import numpy as np
    >>> from ember.utils.data import DataLoader, TensorDataset, random_split
    >>> train, val = random_split(TensorDataset(np.arange(10.0)), [8, 2])
    >>> [len(b[0]) for b in DataLoader(train, batch_size=3)]
    [3, 3, 2]
"""

from ...data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    WorkerInfo,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)
from ...data.dataloader import DataLoader
from . import dataloader, dataset, sampler

__all__ = [
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
    "WorkerInfo",
    "dataloader",
    "dataset",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
    "sampler",
]
