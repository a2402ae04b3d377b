"""The data of a run: the dataset a config names, its validation split and the
``data.transforms`` pipeline (augmentations for training samples only)."""

from __future__ import annotations

import inspect

import numpy as np

import ember

from .config import ConfigError
from .names import check_arguments, parse_item, unknown_name

__all__ = [
    "Transformed",
    "build_datasets",
    "build_transforms",
    "dataset_names",
    "num_classes_of",
    "raw_dataset",
    "sample_of",
    "sample_shape",
    "transform_names",
]


def dataset_names() -> list[str]:
    """The dataset classes of ``ember.data.datasets`` (no helper functions or constants).

    Example:
        >>> "Digits" in dataset_names(), "read_idx" in dataset_names()
        (True, False)
    """
    from ember.data import Dataset, datasets

    return sorted(
        n
        for n in datasets.__all__
        if isinstance(getattr(datasets, n), type) and issubclass(getattr(datasets, n), Dataset)
    )


def transform_names() -> list[str]:
    """The ``ember.data.transforms`` a config can list under ``data.transforms``.

    Example:
        >>> "ToTensor" in transform_names(), "Compose" in transform_names()
        (True, False)
    """
    from ember.data import transforms as T

    return sorted(
        n for n in T.__all__ if isinstance(getattr(T, n), type) and n not in ("Compose", "Lambda")
    )


def _is_random(name: str) -> bool:
    # augmentations run on training samples only; evaluation and prediction see the
    # deterministic part of the pipeline (as torchvision's separate eval transforms do)
    return name.startswith("Random") or name == "ColorJitter"


def build_transforms(specs, path=None, train: bool = True):
    """A callable applying ``data.transforms`` to one sample (None when there are none).

    Example:
        >>> import numpy as np
        >>> t = build_transforms(["ToTensor", {"RandomHorizontalFlip": {"p": 0.5}}], train=False)
        >>> tuple(t(np.zeros((4, 4), np.uint8)).shape)
        (1, 4, 4)
    """
    from ember.data import transforms as T

    names, out = transform_names(), []
    for i, item in enumerate(specs or ()):
        key = f"data.transforms[{i}]"
        name, args = parse_item(item, path, key)
        if name not in names:
            raise unknown_name("transform", name, names, path, key)
        if _is_random(name) and not train:
            continue
        check_arguments(getattr(T, name).__init__, args, name, path, key)
        try:
            out.append(getattr(T, name)(**args))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"bad arguments for {name}: {e}", path, key) from None
    return T.Compose(out) if out else None


class Transformed:
    """A dataset view whose samples go through ``fn`` (targets unchanged)."""

    def __init__(self, dataset, fn):
        self.dataset, self.fn = dataset, fn

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        item = self.dataset[index]
        if isinstance(item, (tuple, list)):
            return (self.fn(item[0]), *item[1:])
        return self.fn(item)


def build_datasets(cfg, path=None):
    """``(train, val, test, full)``: val is split off train with a seeded permutation;
    train samples get all of ``data.transforms``, the others only the deterministic ones
    (``full`` is the whole training set as evaluation sees it)."""
    from ember import data
    from ember.data import datasets

    d = cfg["data"]
    names = dataset_names()
    if d["dataset"] not in names:
        raise unknown_name("dataset", d["dataset"], names, path, "data.dataset")
    cls = getattr(datasets, d["dataset"])
    args = dict(d["args"])
    skip = ("train", "transform", "target_transform")  # set by the run (data.transforms)
    check_arguments(cls.__init__, args, d["dataset"], path, "data.args", skip=skip)
    try:
        if "train" in inspect.signature(cls.__init__).parameters:
            full = cls(train=True, **args)
            test = cls(train=False, **args) if d["test"] else None
        else:
            full, test = cls(**args), None
    except TypeError as e:
        raise ConfigError(f"bad arguments for {d['dataset']}: {e}", path, "data.args") from None
    except (OSError, ValueError) as e:  # missing or malformed data files
        raise ConfigError(f"cannot read {d['dataset']}: {e}", path, "data.args") from None
    n_val = round(len(full) * d["val_split"])
    g = ember.Generator().manual_seed(cfg["solver"]["seed"])
    if n_val:
        train, val = data.random_split(full, [len(full) - n_val, n_val], generator=g)
    else:
        train, val = full, None
    fit_t = build_transforms(d["transforms"], path, train=True)
    eval_t = build_transforms(d["transforms"], path, train=False)
    if fit_t is not None:
        train = Transformed(train, fit_t)
    if eval_t is not None:
        val = Transformed(val, eval_t) if val is not None else None
        test = Transformed(test, eval_t) if test is not None else None
        full = Transformed(full, eval_t)
    return train, val, test, full


def raw_dataset(ds):
    """The dataset under split and transform views.

    Example:
        >>> from ember.data import TensorDataset, random_split
        >>> base = TensorDataset(ember.zeros(4, 2))
        >>> raw_dataset(Transformed(random_split(base, [3, 1])[0], abs)) is base
        True
    """
    while hasattr(ds, "dataset"):
        ds = ds.dataset
    return ds


def sample_of(ds) -> np.ndarray:
    """The first sample of ``ds`` as a NumPy array.

    Example:
        >>> from ember.data import TensorDataset
        >>> sample_of(TensorDataset(ember.zeros(4, 2), ember.zeros(4))).shape
        (2,)
    """
    item = ds[0]
    x = item[0] if isinstance(item, (tuple, list)) else item
    return x.numpy() if isinstance(x, ember.Tensor) else np.asarray(x)


def sample_shape(ds):
    return tuple(sample_of(ds).shape)


def num_classes_of(ds):
    for attr in ("classes", "itos"):
        v = getattr(ds, attr, None)
        if v is not None:
            return len(v)
    inner = getattr(ds, "dataset", None)
    return num_classes_of(inner) if inner is not None else None
