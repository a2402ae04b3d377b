"""The 1,797 8x8 handwritten digits bundled with scikit-learn (no download needed)."""

from __future__ import annotations

import numpy as np

from .._errors import require
from ._base import LabelledDataset

__all__ = ["Digits"]


class Digits(LabelledDataset):
    """scikit-learn's 8x8 digits with a fixed, stratified 80/20 train/test split.

    Images are float32 in [0, 1] (pixel values / 16), shaped ``(1, 8, 8)`` or ``(64,)``
    with ``flatten=True``; labels are ints 0-9.

    Args:
        train: the 80% training part (1,438 images) or the 20% test part (359).
        flatten: return 64-vectors instead of 1x8x8 images.
        split_seed: seed of the split (fixed so every run sees the same split).

    Example:
        >>> ds = Digits(train=False)
        >>> x, y = ds[0]
        >>> x.shape, x.dtype.name, len(ds)
        ((1, 8, 8), 'float32', 359)
    """

    def __init__(
        self,
        train: bool = True,
        flatten: bool = False,
        transform=None,
        target_transform=None,
        split_seed: int = 0,
        test_fraction: float = 0.2,
    ):
        datasets = require("sklearn.datasets", "ember.data.datasets.Digits")
        bunch = datasets.load_digits()
        images = bunch.images.astype(np.float32) / 16.0
        targets = bunch.target.astype(np.int64)
        rng = np.random.default_rng(split_seed)
        chosen = []
        for c in np.unique(targets):  # stratified: every class split 80/20
            idx = rng.permutation(np.nonzero(targets == c)[0])
            n_test = round(len(idx) * test_fraction)
            chosen.append(idx[n_test:] if train else idx[:n_test])
        order = np.sort(np.concatenate(chosen))
        self.data = (
            images[order].reshape(len(order), 64)
            if flatten
            else images[order].reshape(len(order), 1, 8, 8)
        )
        self.targets = targets[order]
        self.train, self.flatten = train, flatten
        self.transform, self.target_transform = transform, target_transform
        self.classes = [str(i) for i in range(10)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self._pair(self.data[index], int(self.targets[index]))
