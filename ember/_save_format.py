"""The safetensors container behind ``ember.save``/``ember.load``: packing arrays and string
metadata into bytes, and reading them back with every check a damaged file needs.

Layout (standard safetensors): 8-byte little-endian header length, a JSON header (padded
with spaces to a multiple of 8), then the raw little-endian tensor bytes. Ember puts two
checksums in the header's ``__metadata__`` so that any damaged byte of a file it wrote is an
error, while the safetensors package still reads the file:

- ``ember.header_crc32`` is the first entry of ``__metadata__`` (so it sits at a fixed offset):
  the crc32 of the length prefix and the whole header with its own 8 hex digits read as
  ``00000000``; it covers the structure, plain values, key names, dtypes, shapes and offsets.
- ``ember.crc32`` is the crc32 of the tensor bytes.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections import OrderedDict

import numpy as np

from . import _dtype as _dt

__all__ = [
    "C128_KEY",
    "CRC_KEY",
    "DTYPES",
    "DTYPE_NAMES",
    "HEADER_CRC_KEY",
    "MAX_HEADER",
    "bad",
    "dtype_name",
    "lookup",
    "pack",
    "register_bf16",
    "unpack",
]

DTYPES: dict[str, np.dtype] = {
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
    "C64": np.dtype("<c8"),
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

# safetensors has no complex128: such a tensor is stored as float64 with a trailing axis of 2
# (real, imaginary), its key listed under this metadata entry, so that other readers still
# load the file (as the float pairs) and ember.load gives the complex tensor back.
C128_KEY = "ember.complex128"
C128 = "C128"  # the name dtype_name gives complex128 (NumPy scalars in the structure)
_C128_NP = np.dtype("<c16")


def register_bf16() -> None:
    """Add BF16 to the tables on first need (its NumPy type comes from ``ml_dtypes``, which
    ``import ember`` does not load)."""
    if "BF16" not in DTYPES:
        DTYPES["BF16"] = _dt.bfloat16.np
        DTYPE_NAMES[_dt.bfloat16.np] = "BF16"


def lookup(name: str) -> np.dtype | None:
    """The NumPy dtype of safetensors dtype ``name`` (None if unknown)."""
    if name == "BF16":
        register_bf16()
    if name == C128:
        return _C128_NP
    return DTYPES.get(name)


MAX_HEADER = 100_000_000
CRC_KEY = "ember.crc32"
HEADER_CRC_KEY = "ember.header_crc32"
_HCRC_PREFIX = b'{"__metadata__":{"' + HEADER_CRC_KEY.encode() + b'":"'
_HCRC_AT = 8 + len(_HCRC_PREFIX)  # where the 8 hex digits start in the file


def dtype_name(arr: np.ndarray) -> str | None:
    """The safetensors dtype name of ``arr`` (any byte order), or None if it has none."""
    dt = arr.dtype
    if dt.name == "bfloat16":
        register_bf16()
    if dt.kind == "V" and dt not in DTYPE_NAMES:
        return None
    if dt == _C128_NP or dt == _C128_NP.newbyteorder(">"):
        return C128
    return DTYPE_NAMES.get(dt) or DTYPE_NAMES.get(dt.newbyteorder("<"))


def pack(tensors: dict, meta: dict) -> tuple[bytes, list]:
    """Return (length prefix + header bytes, arrays in data order) for ``tensors`` (key ->
    ndarray) and string ``meta``; the checksums are added here."""
    header: dict = {"__metadata__": {HEADER_CRC_KEY: "00000000", **meta}}
    c128 = sorted(k for k, a in tensors.items() if a.dtype.kind == "c" and a.dtype.itemsize == 16)
    if c128:
        tensors = dict(tensors)
        for k in c128:
            a = np.asarray(tensors[k], dtype=_C128_NP)
            if not a.flags.c_contiguous:  # (ascontiguousarray would make a 0-d array 1-d)
                a = a.copy(order="C")
            tensors[k] = a.reshape(-1).view("<f8").reshape(*a.shape, 2)
        header["__metadata__"][C128_KEY] = json.dumps(c128)
    # like safetensors: larger alignment first, then by name, so offsets stay aligned
    keys = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    offset, arrays, crc = 0, [], 0
    for k in keys:
        arr = tensors[k]
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        header[k] = {
            "dtype": DTYPE_NAMES[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
        arrays.append(arr)
        if arr.nbytes:
            crc = zlib.crc32(memoryview(arr.reshape(-1).view(np.uint8)), crc)
    header["__metadata__"][CRC_KEY] = f"{crc:08x}"
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    head = bytearray(struct.pack("<Q", len(hb)) + hb)
    assert head[8:_HCRC_AT] == _HCRC_PREFIX
    head[_HCRC_AT : _HCRC_AT + 8] = f"{zlib.crc32(head):08x}".encode()
    return bytes(head), arrays


def bad(name, msg) -> ValueError:
    return ValueError(f"ember.load: {name!r} is not a valid safetensors file: {msg}")


# the opening bytes of files people pass to ember.load by mistake
_FOREIGN = (
    (
        b"PK\x03\x04",
        "a zip archive: a PyTorch checkpoint written by torch.save (pickle inside)",
    ),
    (b"\x93NUMPY", "a NumPy .npy file: read it with numpy.load"),
)
_CONVERT = (
    "; ember never unpickles files. Convert it once where torch is installed, e.g. "
    "`sd = torch.load(path, weights_only=True)` then "
    "`safetensors.torch.save_file(sd, 'model.safetensors')` (or "
    "`ember.save({k: ember.tensor(v.numpy()) for k, v in sd.items()}, 'model.ember')`), "
    "and load that file"
)


def _foreign(name, first: bytes) -> None:
    if len(first) > 8 and first[8:9] == b"{":
        return  # a plausible safetensors header whatever its length bytes look like
    for magic, what in _FOREIGN:
        if first.startswith(magic):
            hint = _CONVERT if magic == b"PK\x03\x04" else ""
            raise ValueError(f"ember.load: {name!r} is {what}, not a safetensors file{hint}")
    if len(first) >= 2 and first[0] == 0x80 and 2 <= first[1] <= 5:
        raise ValueError(
            f"ember.load: {name!r} is a Python pickle (a legacy torch.save file), not a "
            f"safetensors file{_CONVERT}"
        )


def unpack(name, size: int, buf, reader) -> tuple[dict | None, dict, bool]:
    """Read a file (``reader``: a path) or bytes (``buf``: a uint8 array) of ``size`` bytes;
    return (``__metadata__`` or None, key -> ndarray, whether the header checksum was
    there and verified), raising ValueError on any damage."""
    if reader is not None:
        with open(reader, "rb") as fh:
            first = fh.read(16)
    else:
        first = bytes(buf[:16])
    _foreign(name, first)
    if size < 8:
        raise bad(name, f"file is {size} bytes, shorter than the 8-byte header length")
    if reader is not None:
        with open(reader, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            _check_header_len(name, n, size)
            hb = fh.read(n)
            data = np.empty(size - 8 - n, dtype=np.uint8)
            got = fh.readinto(data.data) if data.size else 0
            if len(hb) != n or got != data.size:
                raise bad(name, "file changed size while being read")
    else:
        (n,) = struct.unpack("<Q", bytes(buf[:8]))
        _check_header_len(name, n, size)
        hb = bytes(buf[8 : 8 + n])
        data = buf[8 + n :]
    checked = _check_header_crc(name, n, hb)
    try:
        header = json.loads(hb.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(name, f"header is not valid JSON ({e})") from None
    except _Duplicate as e:
        raise bad(name, f"header repeats the key {e.args[0]!r}") from None
    if not isinstance(header, dict):
        raise bad(name, "header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and (
        not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())
    ):
        raise bad(name, "__metadata__ must map strings to strings")
    if not checked and meta and HEADER_CRC_KEY in meta:
        raise bad(name, f"{HEADER_CRC_KEY} is not where ember writes it; the header is damaged")
    tensors = _read_tensors(name, header, data)
    if meta and C128_KEY in meta:
        _complex128_back(name, meta[C128_KEY], tensors)
    if meta and CRC_KEY in meta:
        crc = zlib.crc32(data.data) if data.size else 0
        if f"{crc:08x}" != meta[CRC_KEY]:
            raise bad(
                name,
                "checksum mismatch: the tensor data is damaged (crc32 "
                f"{crc:08x}, expected {meta[CRC_KEY]})",
            )
    return meta, tensors, checked


def _complex128_back(name, listed: str, tensors: dict) -> None:
    """View the float64 pairs of the keys ``listed`` (JSON) as the complex128 tensors they
    store."""
    try:
        keys = json.loads(listed)
    except json.JSONDecodeError:
        keys = None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise bad(name, f"{C128_KEY} must be a JSON list of tensor names")
    for k in keys:
        a = tensors.get(k)
        if a is None or a.dtype != np.dtype("<f8") or a.ndim == 0 or a.shape[-1] != 2:
            raise bad(name, f"{C128_KEY} lists {k!r}, which is not a float64 tensor of pairs")
        tensors[k] = np.ascontiguousarray(a).view(_C128_NP).reshape(a.shape[:-1])


def _check_header_crc(name, n, hb: bytes) -> bool:
    """Verify ``ember.header_crc32`` when the header opens with it; False if it does not."""
    if not hb.startswith(_HCRC_PREFIX) or len(hb) < len(_HCRC_PREFIX) + 8:
        return False
    at = len(_HCRC_PREFIX)
    stored = hb[at : at + 8]
    head = bytearray(struct.pack("<Q", n) + hb)
    head[_HCRC_AT : _HCRC_AT + 8] = b"00000000"
    crc = f"{zlib.crc32(head):08x}".encode()
    if crc != stored:
        raise bad(
            name,
            "header checksum mismatch: the header (structure, names, plain values, dtypes, "
            f"shapes or offsets) is damaged (crc32 {crc.decode()}, expected "
            f"{stored.decode('ascii', 'replace')})",
        )
    return True


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs):
    out = OrderedDict()
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return dict(out)


def _check_header_len(name, n, size):
    if n > MAX_HEADER:
        raise bad(name, f"header length {n} is implausibly large (limit {MAX_HEADER})")
    if 8 + n > size:
        raise bad(
            name,
            f"header length {n} runs past the end of the file ({size} bytes); "
            "the file is truncated or damaged",
        )
    if n < 2:
        raise bad(name, f"header length {n} is too small")


def _read_tensors(name, header, data):
    spans = []
    out = {}
    nbytes = data.size
    for k, info in header.items():
        if not isinstance(info, dict):
            raise bad(name, f"entry {k!r} is not an object")
        dtype_name_, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if lookup(dtype_name_) is None:
            raise bad(name, f"tensor {k!r} has unknown dtype {dtype_name_!r}")
        if not (
            isinstance(shape, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise bad(name, f"tensor {k!r} has an invalid shape {shape!r}")
        if not (
            isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
        ):
            raise bad(name, f"tensor {k!r} has invalid data_offsets {offs!r}")
        begin, end = offs
        if not 0 <= begin <= end:
            raise bad(name, f"tensor {k!r} has invalid data_offsets {offs!r}")
        if end > nbytes:
            raise bad(
                name,
                f"tensor {k!r} needs bytes {begin}..{end} but the data section has "
                f"only {nbytes} bytes; the file is truncated",
            )
        dt = DTYPES[dtype_name_]
        expect = math.prod(shape) * dt.itemsize
        if end - begin != expect:
            raise bad(
                name,
                f"tensor {k!r} of dtype {dtype_name_} and shape {shape} needs "
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
            raise bad(name, f"tensor {k!r} at byte {begin} {what} (expected {pos})")
        pos = end
    if pos != nbytes:
        raise bad(
            name, f"the data section has {nbytes - pos} trailing bytes not covered by any tensor"
        )
    return out
