"""``ember.save`` / ``ember.load``: tensors and nested containers in one safetensors file.

Format: a standard safetensors file (8-byte little-endian header length, a JSON header,
then the raw little-endian tensor bytes). Tensors are stored under flattened unique keys
(``"fc.weight"``, ``"state.0.exp_avg"``); the structure around them (dicts, OrderedDicts,
lists, tuples and plain values: int, float, str, bool, None) is JSON in the header's
``__metadata__["ember.structure"]``, with tensors as references to their keys.

No pickle, ever: loading a file from a stranger runs no code. Any safetensors file (e.g. one
written by ``safetensors.torch.save_file``) loads as a dict of tensors. Writes are atomic
(temporary file in the same directory, fsync, ``os.replace``, fsync of the directory), so a
crash never leaves a torn file. Damaged files (truncated, bad header, offsets out of range,
missing tensors, and — for files ember wrote, which carry a crc32 of the tensor bytes in
``__metadata__["ember.crc32"]`` — flipped data bytes) raise :class:`ValueError` naming the
file and the problem.

The format is simple enough to implement here, which keeps the core free of dependencies;
tests check compatibility with the ``safetensors`` package both ways.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
import zlib
from collections import OrderedDict

import numpy as np

from . import _dtype as _dt
from ._tensor import Tensor, _new

__all__ = ["load", "save"]

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "U16": np.dtype("<u2"),
    "U32": np.dtype("<u4"),
    "U64": np.dtype("<u8"),
    "BOOL": np.dtype("?"),
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


def _register_bf16() -> None:
    """Add BF16 to the tables on first need (its NumPy type comes from ``ml_dtypes``, which
    ``import ember`` does not load)."""
    if "BF16" not in _DTYPES:
        _DTYPES["BF16"] = _dt.bfloat16.np
        _DTYPE_NAMES[_dt.bfloat16.np] = "BF16"


_DTYPE_BY_NAME = {d.name: d for d in _dt.ALL}
_MAX_HEADER = 100_000_000
_CRC_KEY = "ember.crc32"
_STRUCT_KEY = "ember.structure"
_FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# save
class _Writer:
    def __init__(self):
        self.tensors = OrderedDict()  # key -> ndarray
        self.by_id = {}  # id(Tensor) -> key (shared tensors are stored once)
        self.keep = []  # keep ids alive while encoding

    def add(self, t, path):
        k = self.by_id.get(id(t))
        if k is not None:
            return k
        key = path or "tensor"
        if key in self.tensors:
            n = 1
            while f"{key}#{n}" in self.tensors:
                n += 1
            key = f"{key}#{n}"
        arr = t._data
        if arr.dtype.name == "bfloat16":
            _register_bf16()
        if arr.dtype not in _DTYPE_NAMES and (
            arr.dtype.kind == "V" or arr.dtype.newbyteorder("<") not in _DTYPE_NAMES
        ):
            raise TypeError(f"ember.save: tensor {path!r} has unsupported dtype {arr.dtype}")
        self.tensors[key] = arr
        self.by_id[id(t)] = key
        self.keep.append(t)
        return key

    def encode(self, obj, path):
        if isinstance(obj, Tensor):
            node = {"T": self.add(obj, path)}
            if obj.requires_grad:
                node["rg"] = True
            return node
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, _dt.DType):
            return {"dtype": obj.name}
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"F": repr(float(obj))}
        if isinstance(obj, (np.integer, np.floating, np.bool_)):
            return self.encode(obj.item(), path)
        if isinstance(obj, dict):
            tag = "O" if isinstance(obj, OrderedDict) else "D"
            if all(isinstance(k, str) for k in obj):
                items = {k: self.encode(v, _join(path, k)) for k, v in obj.items()}
                return {tag: items}
            pairs = []
            for k, v in obj.items():
                if isinstance(k, Tensor) or not _is_key(k):
                    raise TypeError(
                        f"ember.save: unsupported dict key {k!r} at {path or '/'} "
                        "(keys must be str, int, float, bool, None or tuples)"
                    )
                pairs.append([self.encode(k, path), self.encode(v, _join(path, str(k)))])
            return {tag + "k": pairs}
        if isinstance(obj, (list, tuple)):
            tag = "L" if isinstance(obj, list) else "U"
            return {tag: [self.encode(v, _join(path, str(i))) for i, v in enumerate(obj)]}
        raise TypeError(
            f"ember.save: cannot save an object of type {type(obj).__name__} at "
            f"{path or '/'}; supported: Tensor, dict, OrderedDict, list, tuple, int, "
            "float, str, bool, None (no pickle)"
        )


def _is_key(k):
    if k is None or isinstance(k, (str, int, float, bool)):
        return True
    return isinstance(k, tuple) and all(_is_key(x) for x in k)


def _join(path, k):
    return f"{path}.{k}" if path else str(k)


def _serialize(obj):
    """Return (header bytes, list of arrays in data order)."""
    w = _Writer()
    structure = w.encode(obj, "")
    header = {}
    meta = {
        "format": "ember",
        _STRUCT_KEY: json.dumps(
            {"v": _FORMAT_VERSION, "root": structure}, separators=(",", ":"), allow_nan=False
        ),
    }
    header["__metadata__"] = meta
    # like safetensors: larger alignment first, then by name, so offsets stay aligned
    keys = sorted(w.tensors, key=lambda k: (-w.tensors[k].dtype.itemsize, k))
    offset = 0
    arrays = []
    for k in keys:
        arr = w.tensors[k]
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        name = _DTYPE_NAMES[arr.dtype]
        header[k] = {
            "dtype": name,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
        arrays.append(arr)
    crc = 0
    for arr in arrays:
        if arr.nbytes:
            crc = zlib.crc32(memoryview(arr.reshape(-1).view(np.uint8)), crc)
    meta[_CRC_KEY] = f"{crc:08x}"
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb, arrays


def save(obj, f):
    """Save ``obj`` (a Tensor, a state dict, an optimizer state dict, or nested dicts / lists /
    tuples of tensors and plain values) to ``f`` (a path or a writable binary file) as one
    safetensors file, atomically when ``f`` is a path.

    Example:
        >>> import ember, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> ember.save({"w": ember.ones(2)}, p)
        >>> ember.load(p)["w"].tolist()
        [1.0, 1.0]
    """
    head, arrays = _serialize(obj)
    if hasattr(f, "write"):
        f.write(head)
        for a in arrays:
            f.write(memoryview(a.reshape(-1).view(np.uint8)))
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, head, arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _write_all(fh, head, arrays):
    fh.write(head)
    for a in arrays:
        if a.nbytes:
            fh.write(memoryview(a.reshape(-1).view(np.uint8)))


def _fsync_dir(directory):
    if os.name != "posix":
        return
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------------------------
# load
def load(f, map_location=None, weights_only=True):
    """Load what :func:`save` wrote (or any safetensors file, as a dict of tensors).

    ``f`` is a path or a readable binary file. ``map_location`` and ``weights_only`` are
    accepted for PyTorch compatibility (everything loads to the CPU; nothing is unpickled).
    Raises :class:`ValueError` naming the file for a truncated or damaged file.

    Example:
        >>> import ember, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
        >>> ember.save(ember.nn.Linear(2, 1).state_dict(), p)
        >>> state = ember.load(p)
        >>> sorted(state)
        ['bias', 'weight']
        >>> ember.nn.Linear(2, 1).load_state_dict(state)
        <All keys matched successfully>
    """
    if hasattr(f, "read"):
        name = getattr(f, "name", "<file object>")
        data = f.read()
        buf = np.frombuffer(bytearray(data), dtype=np.uint8)
        size = buf.size
        reader = None
    else:
        name = os.fspath(f)
        try:
            size = os.path.getsize(name)
        except OSError as e:
            raise FileNotFoundError(f"ember.load: cannot open {name!r}: {e.strerror}") from None
        buf = None
        reader = name
    return _load(name, size, buf, reader)


def _bad(name, msg):
    return ValueError(f"ember.load: {name!r} is not a valid safetensors file: {msg}")


def _load(name, size, buf, reader):
    if size < 8:
        raise _bad(name, f"file is {size} bytes, shorter than the 8-byte header length")
    if reader is not None:
        with open(reader, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            _check_header_len(name, n, size)
            hb = fh.read(n)
            data = np.empty(size - 8 - n, dtype=np.uint8)
            got = fh.readinto(memoryview(data)) if data.size else 0
            if len(hb) != n or got != data.size:
                raise _bad(name, "file changed size while being read")
    else:
        (n,) = struct.unpack("<Q", bytes(buf[:8]))
        _check_header_len(name, n, size)
        hb = bytes(buf[8 : 8 + n])
        data = buf[8 + n :]
    try:
        header = json.loads(hb.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(name, f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise _bad(name, "header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and (
        not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())
    ):
        raise _bad(name, "__metadata__ must map strings to strings")
    tensors = _read_tensors(name, header, data)
    if meta and _CRC_KEY in meta:
        crc = zlib.crc32(memoryview(data)) if data.size else 0
        if f"{crc:08x}" != meta[_CRC_KEY]:
            raise _bad(
                name,
                "checksum mismatch: the tensor data is damaged (crc32 "
                f"{crc:08x}, expected {meta[_CRC_KEY]})",
            )
    if meta and _STRUCT_KEY in meta:
        try:
            st = json.loads(meta[_STRUCT_KEY])
        except json.JSONDecodeError as e:
            raise _bad(name, f"ember structure metadata is not valid JSON ({e})") from None
        if not isinstance(st, dict) or "root" not in st:
            raise _bad(name, "ember structure metadata has no 'root'")
        if st.get("v", 0) > _FORMAT_VERSION:
            raise _bad(name, f"written by a newer ember (format version {st.get('v')})")
        used = set()
        out = _decode(name, st["root"], tensors, used)
        unused = set(tensors) - used
        if unused:
            raise _bad(name, f"tensors {sorted(unused)[:5]} are not referenced by the structure")
        return out
    return {k: _new(v) for k, v in tensors.items()}


def _check_header_len(name, n, size):
    if n > _MAX_HEADER:
        raise _bad(name, f"header length {n} is implausibly large (limit {_MAX_HEADER})")
    if 8 + n > size:
        raise _bad(
            name,
            f"header length {n} runs past the end of the file ({size} bytes); "
            "the file is truncated or damaged",
        )
    if n < 2:
        raise _bad(name, f"header length {n} is too small")


def _read_tensors(name, header, data):
    spans = []
    out = {}
    nbytes = data.size
    for k, info in header.items():
        if not isinstance(info, dict):
            raise _bad(name, f"entry {k!r} is not an object")
        dtype_name, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype_name == "BF16":
            _register_bf16()
        if dtype_name not in _DTYPES:
            raise _bad(name, f"tensor {k!r} has unknown dtype {dtype_name!r}")
        if not (
            isinstance(shape, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise _bad(name, f"tensor {k!r} has an invalid shape {shape!r}")
        if not (
            isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
        ):
            raise _bad(name, f"tensor {k!r} has invalid data_offsets {offs!r}")
        begin, end = offs
        if not 0 <= begin <= end:
            raise _bad(name, f"tensor {k!r} has invalid data_offsets {offs!r}")
        if end > nbytes:
            raise _bad(
                name,
                f"tensor {k!r} needs bytes {begin}..{end} but the data section has "
                f"only {nbytes} bytes; the file is truncated",
            )
        dt = _DTYPES[dtype_name]
        expect = math.prod(shape) * dt.itemsize
        if end - begin != expect:
            raise _bad(
                name,
                f"tensor {k!r} of dtype {dtype_name} and shape {shape} needs "
                f"{expect} bytes but its data_offsets cover {end - begin}",
            )
        spans.append((begin, end, k))
        chunk = data[begin:end]
        if begin % dt.itemsize:
            chunk = chunk.copy()
        out[k] = chunk.view(dt).reshape(shape)
    spans.sort()
    pos = 0
    for begin, end, k in spans:
        if begin != pos:
            what = "overlaps the previous tensor" if begin < pos else "leaves a gap before it"
            raise _bad(name, f"tensor {k!r} at byte {begin} {what} (expected {pos})")
        pos = end
    if pos != nbytes:
        raise _bad(
            name, f"the data section has {nbytes - pos} trailing bytes not covered by any tensor"
        )
    return out


def _decode(name, node, tensors, used):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) >= 1:
        tag = next(iter(node))
        val = node[tag]
        if tag == "T":
            if not isinstance(val, str) or val not in tensors:
                raise _bad(
                    name, f"the structure refers to tensor {val!r}, which is not in the file"
                )
            used.add(val)
            t = _new(tensors[val])
            if node.get("rg"):
                t.requires_grad = True
            return t
        if tag == "dtype" and isinstance(val, str) and val in _DTYPE_BY_NAME:
            return _DTYPE_BY_NAME[val]
        if tag == "F" and isinstance(val, str) and val in ("nan", "inf", "-inf"):
            return float(val)
        if tag in ("L", "U") and isinstance(val, list):
            items = [_decode(name, v, tensors, used) for v in val]
            return items if tag == "L" else tuple(items)
        if tag in ("D", "O") and isinstance(val, dict):
            cls = dict if tag == "D" else OrderedDict
            return cls((k, _decode(name, v, tensors, used)) for k, v in val.items())
        if tag in ("Dk", "Ok") and isinstance(val, list):
            cls = dict if tag == "Dk" else OrderedDict
            out = cls()
            for pair in val:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise _bad(name, "malformed dict entry in the ember structure")
                k = _decode(name, pair[0], tensors, used)
                if isinstance(k, list):
                    raise _bad(name, "malformed dict key in the ember structure")
                out[k] = _decode(name, pair[1], tensors, used)
            return out
    raise _bad(name, f"malformed node in the ember structure: {str(node)[:80]}")
