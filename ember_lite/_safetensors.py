"""A reader for ``.safetensors`` files written by hand: an 8-byte little-endian header
length, a JSON header (name -> dtype, shape, byte offsets into the data that follows) and
the raw little-endian arrays. No copy beyond one read of the file."""

from __future__ import annotations

import json
import struct

import numpy as np

from ._errors import LiteFormatError

__all__ = ["read_safetensors"]

_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
_MAX_HEADER = 100 * 1024 * 1024  # a larger header is a corrupt length, not a real file


def _bf16_to_f32(raw: bytes, count: int) -> np.ndarray:
    # bfloat16 is the top half of a float32: widen exactly (NumPy has no bfloat16 type)
    u = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
    return u.view(np.float32)


def read_safetensors(data: bytes, path: str = "weights.safetensors") -> dict[str, np.ndarray]:
    """The arrays of a safetensors file's bytes, by name (``BF16`` widened to float32).

    Example:
        >>> import json, struct, numpy as np
        >>> h = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
        >>> blob = struct.pack("<Q", len(h)) + h.encode() + np.ones(2, "<f4").tobytes()
        >>> read_safetensors(blob)["w"].tolist()
        [1.0, 1.0]
    """
    if len(data) < 8:
        raise LiteFormatError(f"{path}: not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise LiteFormatError(
            f"{path}: not a safetensors file (header length {n} exceeds the file size {len(data)})"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise LiteFormatError(f"{path}: the safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise LiteFormatError(f"{path}: the safetensors header is not a JSON object")
    body = memoryview(data)[8 + n :]
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise LiteFormatError(f"{path}: tensor {name!r} has a malformed header entry") from None
        count = 1
        for s in shape:
            count *= int(s)
        if not 0 <= start <= stop <= len(body):
            raise LiteFormatError(
                f"{path}: tensor {name!r} lies outside the file (bytes {start}..{stop} of "
                f"{len(body)}): truncated?"
            )
        raw = body[start:stop]
        if dtype == "BF16":
            if stop - start != 2 * count:
                raise LiteFormatError(f"{path}: tensor {name!r}: {stop - start} bytes for {shape}")
            arr = _bf16_to_f32(raw, count)
        else:
            np_dtype = _DTYPES.get(dtype)
            if np_dtype is None:
                raise LiteFormatError(
                    f"{path}: tensor {name!r} has dtype {dtype!r}, which ember_lite does not "
                    f"read (it reads {', '.join(sorted(_DTYPES))}, BF16)"
                )
            dt = np.dtype(np_dtype)
            if stop - start != dt.itemsize * count:
                raise LiteFormatError(
                    f"{path}: tensor {name!r}: {stop - start} bytes do not hold {shape} {dtype}"
                )
            arr = np.frombuffer(raw, dtype=dt, count=count)
        # a native-order copy: the arrays outlive the file's bytes and may be written into
        out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True).reshape(shape)
    return out
