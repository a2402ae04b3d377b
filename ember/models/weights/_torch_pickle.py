"""A restricted reader for PyTorch ``.pt`` / ``.pth`` checkpoints (``torch.save``'s zip format).

The file is a zip holding ``<name>/data.pkl`` (a pickle of the object tree) and
``<name>/data/<key>`` (the raw bytes of each storage). The pickle is read by an
:class:`pickle.Unpickler` whose ``find_class`` hands out only a fixed table of harmless
stand-ins: the tensor rebuild functions (re-implemented here over NumPy), the storage type
markers, ``OrderedDict`` and a few value types (``torch.Size``, dtypes, devices). Every other
global, and so every callable an attacker could name for ``REDUCE`` (``os.system``,
``builtins.eval``, ...), is refused before anything is called: like
``torch.load(weights_only=True)``, loading never runs code from the file. PyTorch itself is not
needed.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any

import numpy as np

__all__ = ["UnsafeCheckpointError", "load_torch_checkpoint"]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint names a global that the restricted reader does not allow."""


# storage class name -> NumPy dtype name ("bfloat16" resolves through ember.bfloat16)
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
_TORCH_DTYPES = {
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "float",
    "double",
    "half",
    "long",
    "int",
}


class _StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: it only carries the element type."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ember

        return np.dtype(ember.bfloat16.np)
    return np.dtype(name)


class _Storage:
    """A storage read from ``data/<key>``: a flat NumPy array of its element type."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _as_tensor(array: np.ndarray):
    import ember

    return ember.from_numpy(array)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> Any:
    # shared by _rebuild_tensor_v2 (requires_grad, backward_hooks, metadata follow) and the
    # older _rebuild_tensor; the view is checked against the storage bounds before it is made
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
    flat = storage.array
    try:
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError):
        raise pickle.UnpicklingError("a tensor's size, stride or offset is not integers") from None
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"bad tensor layout: size {size}, stride {stride}")
    n = int(np.prod(size)) if size else 1
    if n == 0:
        return _as_tensor(np.zeros(size, dtype=flat.dtype))
    last = offset + sum((d - 1) * st for d, st in zip(size, stride))
    if offset < 0 or last >= flat.size:
        raise pickle.UnpicklingError(
            f"a tensor of size {size} (stride {stride}, offset {offset}) reaches past its "
            f"storage of {flat.size} elements"
        )
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=tuple(st * item for st in stride), writeable=False
    )
    # a copy: tensors that shared a storage in torch become independent here
    return _as_tensor(np.array(view))


def _rebuild_parameter(data, requires_grad, *_ignored) -> Any:
    if requires_grad and getattr(data, "is_floating_point", lambda: False)():
        data.requires_grad_(True)
    return data


def _size(*args) -> tuple:
    return tuple(*args)


def _device(*args) -> str:
    return ":".join(str(a) for a in args)


def _codecs_encode(text, encoding="utf-8") -> bytes:
    # protocol 2 pickles bytes as _codecs.encode(str, "latin1"); only that use is allowed
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafeCheckpointError("_codecs.encode is allowed only for latin1 bytes")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _size,
    ("torch", "device"): _device,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, read_storage, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self._read_storage = read_storage
        self._source = source
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in _TORCH_DTYPES:
            return name  # a dtype value (e.g. a checkpoint that records torch.float16)
        raise UnsafeCheckpointError(
            f"{self._source}: refusing to load global '{module}.{name}': only tensors, "
            "storages and plain containers are read from PyTorch checkpoints (the file may "
            "try to run code; if you trust it, convert it with torch and save a safetensors "
            "file)"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self._source}: unknown persistent id {pid!r}")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"{self._source}: storage of unknown type {stype!r}")
        key = str(key)
        if key not in self._storages:
            dtype = _np_dtype(stype.dtype)
            raw = self._read_storage(key)
            if len(raw) < int(numel) * dtype.itemsize:
                raise pickle.UnpicklingError(
                    f"{self._source}: storage {key} holds {len(raw)} bytes, fewer than its "
                    f"{numel} elements of {dtype.name}"
                )
            arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=int(numel))
            self._storages[key] = _Storage(arr.astype(dtype, copy=False))
        return self._storages[key]


def load_torch_checkpoint(path: str | os.PathLike) -> Any:
    """Read a ``torch.save`` file without PyTorch and without running code from it.

    Tensors come back as ember tensors inside the same containers (dicts, ``OrderedDict``,
    lists, tuples) with plain values as they were; a global other than the tensor rebuild
    functions, storage types and plain containers raises :class:`UnsafeCheckpointError`.

    Example:
        >>> import os, tempfile, torch
        >>> p = os.path.join(tempfile.mkdtemp(), "lin.pt")
        >>> torch.save(torch.nn.Linear(3, 2).state_dict(), p)
        >>> sd = load_torch_checkpoint(p)
        >>> {k: tuple(v.shape) for k, v in sd.items()}
        {'weight': (2, 3), 'bias': (2,)}
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"load_torch_checkpoint: no such file {name!r}")
    if not zipfile.is_zipfile(name):
        raise ValueError(
            f"{name}: not a PyTorch zip checkpoint (files from torch >= 1.6 are zips; re-save "
            "an older one with a current torch.save)"
        )
    with zipfile.ZipFile(name) as zf:
        pkls = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
        if len(pkls) != 1:
            raise ValueError(f"{name}: a PyTorch checkpoint holds one data.pkl, found {len(pkls)}")
        prefix = pkls[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in zf.namelist() and zf.read(order).strip() != b"little":
            raise ValueError(f"{name}: big-endian checkpoints are not supported")

        def read_storage(key: str) -> bytes:
            try:
                return zf.read(f"{prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"{name}: storage data/{key} is missing") from None

        unpickler = _RestrictedUnpickler(zf.read(pkls[0]), read_storage, name)
        try:
            return unpickler.load()
        except UnsafeCheckpointError:
            raise
        except pickle.UnpicklingError as e:
            if str(e).startswith(name):
                raise
            raise pickle.UnpicklingError(f"{name}: {e}") from None
