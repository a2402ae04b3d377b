"""CIFAR-10 from its standard binary batches (``cifar-10-batches-bin``)."""

from __future__ import annotations

import os
import tarfile

import numpy as np

from .._errors import DataFormatError
from ._base import LabelledDataset, download_file

__all__ = ["CIFAR10", "read_cifar_bin"]

_RECORD = 1 + 3 * 32 * 32


def read_cifar_bin(path: str, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch: ``(N, 32, 32, 3)`` uint8 images and int64 labels."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataFormatError(f"{path}: cannot read CIFAR batch ({e})") from e
    if raw.size == 0 or raw.size % _RECORD:
        raise DataFormatError(
            f"{path}: {raw.size} bytes is not a whole number of "
            f"{_RECORD}-byte records; record {raw.size // _RECORD} is "
            f"truncated"
        )
    rec = raw.reshape(-1, _RECORD)
    labels = rec[:, 0].astype(np.int64)
    bad = np.nonzero(labels >= num_classes)[0]
    if len(bad):
        raise DataFormatError(
            f"{path}: record {int(bad[0])} has label {int(labels[bad[0]])}, "
            f"outside 0..{num_classes - 1}"
        )
    # stored as 3 planes (R, G, B) of 32x32; return HWC like decoded images
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


class CIFAR10(LabelledDataset):
    """CIFAR-10: 50k training / 10k test 32x32 RGB images in 10 classes.

    Samples are ``(32, 32, 3)`` uint8 NumPy arrays and int labels.

    Args:
        root: folder containing ``cifar-10-batches-bin/`` (``data_batch_1.bin`` ...
            ``data_batch_5.bin``, ``test_batch.bin``).
        download: fetch and unpack ``cifar-10-binary.tar.gz`` when missing.

    Example:
        >>> ds = CIFAR10("~/data", train=False)  # doctest: +SKIP
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    folder = "cifar-10-batches-bin"
    train_files = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
    test_files = ("test_batch.bin",)
    classes = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )

    def __init__(
        self,
        root: str,
        train: bool = True,
        transform=None,
        target_transform=None,
        download: bool = False,
    ):
        self.root = os.path.expanduser(root)
        self.train = train
        self.transform, self.target_transform = transform, target_transform
        base = os.path.join(self.root, self.folder)
        names = self.train_files if train else self.test_files
        missing = [n for n in names if not os.path.exists(os.path.join(base, n))]
        if missing and download:
            self._download()
            missing = [n for n in names if not os.path.exists(os.path.join(base, n))]
        if missing:
            raise FileNotFoundError(
                f"CIFAR10: missing {', '.join(missing)} in {base!r}. Put the binary batches "
                f"there (from {self.url}, unpacked), or pass download=True"
            )
        parts = [read_cifar_bin(os.path.join(base, n), len(self.classes)) for n in names]
        self.data = np.concatenate([p[0] for p in parts])
        self.targets = np.concatenate([p[1] for p in parts])

    def _download(self):
        archive = os.path.join(self.root, os.path.basename(self.url))
        hint = f"Then unpack it so that {os.path.join(self.root, self.folder)!r} exists."
        if not os.path.exists(archive):
            download_file(self.url, archive, hint)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(self.root, filter="data")

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return self._pair(self.data[index], int(self.targets[index]))
