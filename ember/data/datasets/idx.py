"""MNIST and Fashion-MNIST from the standard IDX files (gzipped or not)."""

from __future__ import annotations

import gzip
import os

import numpy as np

from .._errors import DataFormatError
from ._base import LabelledDataset, download_file

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

# IDX type codes -> big-endian NumPy dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed), checking magic, dims and length.

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
        >>> _ = open(p, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]))
        >>> read_idx(p).tolist()
        [7, 9]
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these for truncated/corrupt archives
        raise DataFormatError(f"{path}: cannot read IDX file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataFormatError(
            f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataFormatError(f"{path}: IDX header truncated ({ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    have = len(raw) - header
    if have != expected:
        rec = int(np.prod(dims[1:])) * dtype.itemsize
        where = (
            f"; record {have // rec} of {dims[0]} is incomplete" if rec and have < expected else ""
        )
        raise DataFormatError(
            f"{path}: IDX data has {have} bytes, expected {expected} for shape {dims}{where}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


class MNIST(LabelledDataset):
    """MNIST digits from IDX files in ``root`` (or ``root/<ClassName>/raw``).

    Samples are ``(28, 28)`` uint8 NumPy arrays (use ``transforms.ToTensor()`` for a
    ``(1, 28, 28)`` float tensor) and int labels.

    Args:
        root: folder with ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``.
        train: the 60k training or the 10k test split.
        download: fetch missing files from the official mirror.

    Example:
        >>> ds = MNIST("~/data/mnist", train=True)  # doctest: +SKIP
        >>> img, label = ds[0]                      # doctest: +SKIP
    """

    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)
    classes = tuple(str(i) for i in range(10))

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
        split = "train" if train else "t10k"
        img_path = self._find(f"{split}-images-idx3-ubyte", download)
        lbl_path = self._find(f"{split}-labels-idx1-ubyte", download)
        self.data = read_idx(img_path)
        self.targets = read_idx(lbl_path).astype(np.int64)
        if self.data.ndim != 3:
            raise DataFormatError(
                f"{img_path}: expected 3-d image data, got shape {self.data.shape}"
            )
        if self.targets.ndim != 1 or len(self.targets) != len(self.data):
            raise DataFormatError(
                f"{lbl_path}: {len(self.targets)} labels for {len(self.data)} images in {img_path}"
            )
        bad = np.nonzero((self.targets < 0) | (self.targets >= len(self.classes)))[0]
        if len(bad):
            raise DataFormatError(
                f"{lbl_path}: record {int(bad[0])} has label "
                f"{int(self.targets[bad[0]])}, outside "
                f"0..{len(self.classes) - 1}"
            )

    def _folders(self):
        return [self.root, os.path.join(self.root, type(self).__name__, "raw")]

    def _find(self, name: str, download: bool) -> str:
        for folder in self._folders():
            for candidate in (name, name + ".gz"):
                p = os.path.join(folder, candidate)
                if os.path.exists(p):
                    return p
        where = f"{self.root!r} as {name} or {name}.gz"
        if not download:
            raise FileNotFoundError(
                f"{type(self).__name__}: {name}[.gz] not found; put the "
                f"file in {where}, or pass download=True"
            )
        errors = []
        for mirror in self.mirrors:
            try:
                return download_file(
                    mirror + name + ".gz",
                    os.path.join(self.root, name + ".gz"),
                    f"Expected files: {where}.",
                )
            except RuntimeError as e:
                errors.append(str(e))
        raise RuntimeError("\n".join(errors))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return self._pair(self.data[index], int(self.targets[index]))


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): same file names and format as :class:`MNIST`."""

    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
