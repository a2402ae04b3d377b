"""Datasets read from real files: MNIST/Fashion-MNIST (IDX), CIFAR-10 (binary batches),
image folders, CSV, NPZ, HDF5, LMDB, text, and scikit-learn's bundled digits.

Every reader checks what it reads and raises :class:`ember.data.DataFormatError`
naming the file and record, rather than returning a silently wrong sample.
"""

from .cifar import CIFAR10, read_cifar_bin
from .digits import Digits
from .folder import IMG_EXTENSIONS, ImageFolder, pil_loader
from .hdf5 import HDF5Dataset, write_hdf5
from .idx import MNIST, FashionMNIST, read_idx
from .lmdb import LMDBDataset, write_lmdb
from .tabular import CSVDataset, NPZDataset
from .text import TextDataset

__all__ = [
    "CIFAR10",
    "IMG_EXTENSIONS",
    "MNIST",
    "CSVDataset",
    "Digits",
    "FashionMNIST",
    "HDF5Dataset",
    "ImageFolder",
    "LMDBDataset",
    "NPZDataset",
    "TextDataset",
    "pil_loader",
    "read_cifar_bin",
    "read_idx",
    "write_hdf5",
    "write_lmdb",
]
