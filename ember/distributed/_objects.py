"""Python objects as byte buffers for the object collectives, without pickle.

PyTorch pickles the objects of ``all_gather_object`` and friends, which runs arbitrary code
when a buffer is read. Here only plain data travels: ``None``, bools, ints, floats, strings,
bytes, lists, tuples, dicts (keys of those kinds), NumPy arrays and scalars, and Tensors.
The layout is an 8-byte header length, a JSON header describing the structure, then the
raw bytes of every array in order.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._tensor import Tensor, _new

__all__ = ["decode", "encode"]


def _dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes  # bfloat16 and the float8 types are not NumPy's own

        return np.dtype(getattr(ml_dtypes, name))


def encode(obj: Any) -> np.ndarray:
    """``obj`` as one uint8 array (see the module docstring for what may be in it).

    Example:
        >>> from ember.distributed._objects import decode, encode
        >>> decode(encode({"a": (1, 2.5, None)}))
        {'a': (1, 2.5, None)}
    """
    arrays: list[np.ndarray] = []

    def array(a: np.ndarray, tag: str, extra: dict | None = None) -> dict:
        a = a if a.flags.c_contiguous else a.copy(order="C")  # keeps 0-d arrays 0-d
        arrays.append(a)
        node = {tag: len(arrays) - 1, "dtype": a.dtype.name, "shape": list(a.shape)}
        return {**node, **(extra or {})}

    def enc(o: Any, where: str) -> Any:
        if o is None or isinstance(o, (bool, str)):
            return {"v": o}
        if isinstance(o, int):
            return {"i": str(o)}  # JSON numbers lose precision past 2**53
        if isinstance(o, float):
            return {"f": repr(o)}  # keeps nan/inf and every bit
        if isinstance(o, bytes):
            return array(np.frombuffer(o, np.uint8), "b")
        if isinstance(o, Tensor):
            return array(o._data, "t", {"rg": bool(o.requires_grad)})
        if isinstance(o, np.ndarray):
            if o.dtype.hasobject:
                raise TypeError(f"cannot send an object array ({where})")
            return array(o, "a")
        if isinstance(o, np.generic):
            return array(np.asarray(o), "s")
        if isinstance(o, list):
            return {"l": [enc(v, f"{where}[{i}]") for i, v in enumerate(o)]}
        if isinstance(o, tuple):
            return {"tu": [enc(v, f"{where}[{i}]") for i, v in enumerate(o)]}
        if isinstance(o, dict):
            items = o.items()
            return {"d": [[enc(k, f"{where} key"), enc(v, f"{where}[{k!r}]")] for k, v in items]}
        raise TypeError(
            f"cannot send an object of type {type(o).__name__} ({where}): ember's object "
            "collectives carry None, bool, int, float, str, bytes, lists, tuples, dicts, NumPy "
            "arrays and Tensors (no pickle)"
        )

    header = json.dumps(enc(obj, "the object")).encode()
    total = 8 + len(header) + sum(a.nbytes for a in arrays)
    out = np.empty(total, np.uint8)
    out[:8] = np.frombuffer(np.array([len(header)], "<u8").tobytes(), np.uint8)
    out[8 : 8 + len(header)] = np.frombuffer(header, np.uint8)
    pos = 8 + len(header)
    for a in arrays:
        out[pos : pos + a.nbytes] = a.reshape(-1).view(np.uint8)
        pos += a.nbytes
    return out


def decode(buf: np.ndarray) -> Any:
    """The object :func:`encode` turned into ``buf`` (arrays are fresh copies)."""
    buf = np.ascontiguousarray(buf, np.uint8).reshape(-1)
    if buf.size < 8:
        raise ValueError("object buffer is truncated")
    n = int(buf[:8].view("<u8")[0])
    spec = json.loads(bytes(buf[8 : 8 + n]).decode())
    nodes: list[dict] = []

    def collect(node: Any) -> None:
        # arrays were written in the order encode met them: depth first, as here
        if not isinstance(node, dict):
            return
        for tag in ("b", "t", "a", "s"):
            if tag in node:
                nodes.append(node)
                return
        for key in ("l", "tu"):
            if key in node:
                for v in node[key]:
                    collect(v)
                return
        if "d" in node:
            for k, v in node["d"]:
                collect(k)
                collect(v)

    collect(spec)
    data: dict[int, np.ndarray] = {}
    pos = 8 + n
    for node in nodes:
        dt = _dtype(node["dtype"])
        count = int(np.prod(node["shape"], dtype=np.int64))
        nbytes = count * dt.itemsize
        if pos + nbytes > buf.size:
            raise ValueError("object buffer is truncated")
        idx = next(node[t] for t in ("b", "t", "a", "s") if t in node)
        data[idx] = buf[pos : pos + nbytes].copy().view(dt).reshape(node["shape"])
        pos += nbytes

    def dec(node: dict) -> Any:
        if "v" in node:
            return node["v"]
        if "i" in node:
            return int(node["i"])
        if "f" in node:
            return float(node["f"])
        if "b" in node:
            return data[node["b"]].tobytes()
        if "t" in node:
            t = _new(data[node["t"]])
            if node.get("rg"):
                t.requires_grad_(True)
            return t
        if "a" in node:
            return data[node["a"]]
        if "s" in node:
            return data[node["s"]][()]
        if "l" in node:
            return [dec(v) for v in node["l"]]
        if "tu" in node:
            return tuple(dec(v) for v in node["tu"])
        if "d" in node:
            return {dec(k): dec(v) for k, v in node["d"]}
        raise ValueError(f"object buffer is damaged: unknown node {sorted(node)}")

    return dec(spec)
