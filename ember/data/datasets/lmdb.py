"""LMDB datasets: one record per sample (raw array bytes + shape, dtype and label)."""

from __future__ import annotations

import contextlib
import json
import os
import struct

import numpy as np

from .._errors import DataFormatError, require
from ._base import LabelledDataset, as_index

__all__ = ["LMDBDataset", "write_lmdb"]

# record layout: magic, header length, JSON header {dtype, shape, label}, raw array bytes
_MAGIC = b"EMBR"
_HEAD = struct.Struct("<4sI")
_META_KEY = b"__ember_meta__"


def _lmdb():
    return require("lmdb", "LMDBDataset")


def _key(i: int) -> bytes:
    return b"%010d" % i


def encode_record(x: np.ndarray, label=None) -> bytes:
    x = np.ascontiguousarray(x)
    if x.dtype.hasobject:  # NOTE: tobytes() of an object array is its pointers
        raise TypeError("write_lmdb: cannot store an object array (its bytes are pointers)")
    header = json.dumps(
        {
            "dtype": x.dtype.str,
            "shape": list(x.shape),
            "label": None if label is None else np.asarray(label).tolist(),
        }
    ).encode()
    return _HEAD.pack(_MAGIC, len(header)) + header + x.tobytes()


def decode_record(buf: bytes, where: str):
    """``(array, label)`` from a record; ``where`` names the file and key in errors."""
    if len(buf) < _HEAD.size:
        raise DataFormatError(f"{where}: record of {len(buf)} bytes is too short")
    magic, hlen = _HEAD.unpack_from(buf)
    if magic != _MAGIC:
        raise DataFormatError(f"{where}: bad record magic {magic!r}")
    try:
        head = json.loads(bytes(buf[_HEAD.size : _HEAD.size + hlen]))
        dtype, shape = np.dtype(head["dtype"]), tuple(head["shape"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataFormatError(f"{where}: corrupt record header ({e})") from e
    if dtype.hasobject:
        raise DataFormatError(f"{where}: object dtype is not allowed")
    start = _HEAD.size + hlen
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(buf) - start != expected:
        raise DataFormatError(
            f"{where}: record holds {len(buf) - start} data bytes, expected "
            f"{expected} for {dtype} {shape}"
        )
    x = np.frombuffer(buf, dtype, offset=start).reshape(shape).copy()
    return x, head["label"]


def write_lmdb(path: str, x, y=None, map_size: int | None = None) -> str:
    """Write samples (and labels) to an LMDB environment readable by :class:`LMDBDataset`.

    Example:
        >>> import numpy as np, os, tempfile
        >>> p = write_lmdb(os.path.join(tempfile.mkdtemp(), "db"), np.zeros((3, 2)), [1, 2, 3])
        >>> LMDBDataset(p)[2][1]
        3
    """
    lmdb = _lmdb()
    n = len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"write_lmdb: {len(y)} labels for {n} samples")
    arrays = [np.asarray(x[i].numpy() if hasattr(x[i], "numpy") else x[i]) for i in range(n)]
    _close(os.path.realpath(path))  # a reader open in this process would block the writer
    need = sum(a.nbytes + 256 for a in arrays) * 2 + (1 << 20)
    env = lmdb.open(path, map_size=map_size or need, subdir=True, meminit=False)
    try:
        with env.begin(write=True) as txn:
            for i, a in enumerate(arrays):
                txn.put(_key(i), encode_record(a, None if y is None else y[i]))
            txn.put(_META_KEY, json.dumps({"length": n, "format": 1}).encode())
    finally:
        env.close()
    return path


# One environment and one read transaction per (file, process), shared by all datasets on
# that file: py-lmdb refuses to open an environment twice in a process, and an
# environment inherited through fork must be replaced, never used.
_SHARED: dict[str, tuple[int, object, object]] = {}


def _shared_txn(path: str):
    key = os.path.realpath(path)
    entry = _SHARED.get(key)
    if entry is not None and entry[0] == os.getpid():
        return entry[2]
    lmdb = _lmdb()
    if entry is not None:  # inherited from the parent process
        _close(key)
    try:
        env = lmdb.open(
            path,
            readonly=True,
            lock=False,
            readahead=False,
            subdir=os.path.isdir(path),
            max_readers=512,
        )
    except lmdb.Error as e:
        raise DataFormatError(f"{path}: cannot open as LMDB ({e})") from e
    txn = env.begin(buffers=True)
    _SHARED[key] = (os.getpid(), env, txn)
    return txn


def _close(key: str) -> None:
    entry = _SHARED.pop(key, None)
    if entry is not None:
        # Closing a stale inherited handle may fail; the entry is gone either way.
        with contextlib.suppress(Exception):
            entry[1].close()  # also ends the read transaction


class LMDBDataset(LabelledDataset):
    """Samples from an LMDB environment written by :func:`write_lmdb`.

    The environment and one read-only transaction are opened lazily in each process
    (LMDB handles must not cross a fork) and reused for every read: beginning a
    transaction per sample costs more than the read itself. Call :meth:`close` before
    writing to the same environment from this process.

    Example:
        >>> ds = LMDBDataset("train.lmdb", transform=ToTensor())  # doctest: +SKIP
    """

    def __init__(self, path: str, transform=None, target_transform=None):
        self.path = path
        self.transform, self.target_transform = transform, target_transform
        if not os.path.exists(path):
            raise FileNotFoundError(f"LMDBDataset: {path!r} does not exist")
        meta = _shared_txn(path).get(_META_KEY)
        if meta is None:
            raise DataFormatError(
                f"{path}: no {_META_KEY.decode()} record; not written by write_lmdb"
            )
        try:
            self._len = int(json.loads(bytes(meta))["length"])
        except (ValueError, KeyError, TypeError) as e:
            raise DataFormatError(f"{path}: corrupt {_META_KEY.decode()} record") from e

    def close(self) -> None:
        """Release this process's handle on the environment (reopened on next access)."""
        _close(os.path.realpath(self.path))

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int):
        index = as_index(index, f"LMDBDataset {self.path}")
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self.path} ({self._len} records)")
        buf = _shared_txn(self.path).get(_key(index))
        where = f"{self.path}: record {index}"
        if buf is None:
            raise DataFormatError(f"{where} is missing")
        x, label = decode_record(buf, where)
        if label is None:
            return self.transform(x) if self.transform is not None else x
        return self._pair(x, label)
