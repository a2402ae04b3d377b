"""ember.data: datasets, samplers, the DataLoader, transforms and file formats.

Example:
    >>> import numpy as np
    >>> import ember.data as data
    >>> ds = data.TensorDataset(np.zeros((6, 2), np.float32), np.arange(6))
    >>> x, y = next(iter(data.DataLoader(ds, batch_size=4, shuffle=True)))
    >>> tuple(x.shape), tuple(y.shape)
    ((4, 2), (4,))
"""

from ._errors import DataFormatError
from ._worker import WorkerInfo, get_worker_info
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataFormatError",
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
    "datasets",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
    "transforms",
]


def __getattr__(name):
    # NOTE: transforms and datasets load on first use; they pull in more code (and Pillow)
    if name in ("transforms", "datasets"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
