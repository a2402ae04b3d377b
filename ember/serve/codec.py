"""JSON bodies of the two protocols to NumPy feeds and back.

TF Serving REST: ``instances`` (row format, one entry per example) or ``inputs`` (columnar),
answered by ``predictions`` / ``outputs``; binary values are ``{"b64": "..."}``.
KServe V2 (Open Inference Protocol): typed tensors ``{"name", "shape", "datatype", "data"}``
with ``data`` flat or nested in row-major order.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import BadRequest

__all__ = [
    "TF_DTYPES",
    "V2_DTYPES",
    "decode_tf",
    "decode_v2",
    "encode_tf",
    "encode_v2",
    "tf_datatype",
    "v2_datatype",
]

# numpy dtype name -> protocol type name
V2_DTYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bytes": "BYTES",
}
_V2_TO_NP = {v: k for k, v in V2_DTYPES.items()}
TF_DTYPES = {
    "bool": "DT_BOOL",
    "uint8": "DT_UINT8",
    "uint16": "DT_UINT16",
    "uint32": "DT_UINT32",
    "uint64": "DT_UINT64",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "float16": "DT_HALF",
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "bytes": "DT_STRING",
}


def _is_bytes_dtype(name: str) -> bool:
    return name in ("bytes", "string", "object", "str")


def v2_datatype(dtype: str) -> str:
    """The V2 type name of a spec's dtype.

    Example:
        >>> v2_datatype("float32"), v2_datatype("bytes")
        ('FP32', 'BYTES')
    """
    return "BYTES" if _is_bytes_dtype(dtype) else V2_DTYPES.get(dtype, dtype.upper())


def tf_datatype(dtype: str) -> str:
    """The TensorFlow type name of a spec's dtype.

    Example:
        >>> tf_datatype("float32"), tf_datatype("int64")
        ('DT_FLOAT', 'DT_INT64')
    """
    return "DT_STRING" if _is_bytes_dtype(dtype) else TF_DTYPES.get(dtype, "DT_INVALID")


def _unb64(v: Any, where: str) -> Any:
    """Replace every ``{"b64": s}`` in a nested list by its decoded bytes."""
    if isinstance(v, dict):
        if set(v) != {"b64"} or not isinstance(v["b64"], str):
            raise BadRequest(f"{where}: an object value must be {{'b64': <base64 string>}}")
        try:
            return base64.b64decode(v["b64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise BadRequest(f"{where}: invalid base64 value: {e}") from None
    if isinstance(v, list):
        return [_unb64(x, where) for x in v]
    return v


def _as_array(value: Any, dtype: str, where: str) -> np.ndarray:
    """A JSON value as an array of the model's ``dtype``, refusing lossy conversions."""
    value = _unb64(value, where)
    if _is_bytes_dtype(dtype):
        try:
            arr = np.array(value, dtype=object)
        except ValueError as e:
            raise BadRequest(f"{where}: ragged nested lists ({e})") from None
        flat = arr.reshape(-1)
        for i, x in enumerate(flat):
            if isinstance(x, str):
                flat[i] = x.encode()
            elif not isinstance(x, bytes):
                raise BadRequest(f"{where}: expected strings or b64 values, got {type(x).__name__}")
        return arr
    try:
        arr = np.array(value)
    except ValueError:
        arr = np.empty(0, dtype=object)
    if arr.dtype == object:
        raise BadRequest(f"{where}: {_why_not_numeric(value)}")
    want = np.dtype(dtype)
    k = arr.dtype.kind
    got = {"U": "strings", "S": "strings", "b": "booleans", "f": "numbers", "i": "numbers"}
    if k in "US" or (want.kind == "b") != (k == "b"):
        what = "booleans" if want.kind == "b" else f"{dtype} numbers"
        raise BadRequest(f"{where}: expected {what}, got {got.get(k, arr.dtype.name)}")
    if (want.kind in "iu" and k == "f") and (
        not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))
    ):
        raise BadRequest(f"{where}: expected integers (model dtype {dtype}), got fractions")
    if want.kind in "iu" and arr.size:
        info = np.iinfo(want)
        if arr.min() < info.min or arr.max() > info.max:
            raise BadRequest(f"{where}: values out of range for {dtype}")
    return arr.astype(want, copy=False)


def _why_not_numeric(value: Any) -> str:
    """What stops a nested JSON list from being one numeric array: a null, a value of
    another kind, an integer beyond 64 bits, or rows of different lengths."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif v is None:
            return "null values are not allowed"
        elif isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
            return f"the integer {v} does not fit in 64 bits"
        elif not isinstance(v, int | float | bool | str):
            return f"unexpected {type(v).__name__} value"
    return "ragged nested lists (rows of different lengths) or mixed value types"


def _check_rank(arr: np.ndarray, spec: Any, where: str) -> None:
    shape = tuple(spec.shape)
    if arr.ndim != len(shape) or any(
        d is not None and d != g for d, g in zip(shape, arr.shape, strict=False)
    ):
        want = "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
        raise BadRequest(f"{where}: expected shape {want}, got {list(arr.shape)}")


def decode_tf(body: Any, sig: Any) -> tuple[dict[str, np.ndarray], bool]:
    """A TF Serving predict body to ``(feeds, row_format)``.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> sig = NS(inputs=[NS(name="x", dtype="float32", shape=(None, 2))])
        >>> feeds, rows = decode_tf({"instances": [[1, 2], [3, 4]]}, sig)
        >>> feeds["x"].dtype, feeds["x"].shape, rows
        (dtype('float32'), (2, 2), True)
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    has_i, has_c = "instances" in body, "inputs" in body
    if has_i == has_c:
        raise BadRequest(
            "the request must have exactly one of 'instances' (row format) "
            "or 'inputs' (columnar format)"
        )
    specs = {s.name: s for s in sig.inputs}
    names = list(specs)
    feeds: dict[str, np.ndarray] = {}
    if has_i:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("'instances' must be a non-empty list")
        if all(isinstance(r, dict) and "b64" not in r for r in rows):
            for r in rows:
                if set(r) != set(names):
                    raise BadRequest(f"each instance must name the inputs {names}, got {sorted(r)}")
            cols = {n: [r[n] for r in rows] for n in names}
        elif len(names) == 1:
            cols = {names[0]: rows}
        else:
            raise BadRequest(
                f"the model has several inputs {names}; each instance must be an object naming them"
            )
        for n, col in cols.items():
            feeds[n] = _as_array(col, specs[n].dtype, f"input '{n}'")
    else:
        value = body["inputs"]
        if isinstance(value, dict) and "b64" not in value:
            if set(value) != set(names):
                raise BadRequest(f"'inputs' must name the inputs {names}, got {sorted(value)}")
            cols = value
        elif len(names) == 1:
            cols = {names[0]: value}
        else:
            raise BadRequest(f"the model has several inputs {names}; 'inputs' must be an object")
        for n, col in cols.items():
            feeds[n] = _as_array(col, specs[n].dtype, f"input '{n}'")
    for n, arr in feeds.items():
        _check_rank(arr, specs[n], f"input '{n}'")
    return feeds, has_i


def _b64(b: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(b).decode()}


def _text_or_b64(b: bytes) -> Any:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:  # raw bytes are not JSON: TF Serving would write invalid JSON
        return _b64(b)


def _jsonable(arr: np.ndarray, name: str) -> Any:
    """JSON of one output; string outputs follow TF Serving: base64 objects when the
    output's name ends in ``_bytes``, plain strings otherwise (base64 if not UTF-8)."""
    if arr.dtype == object or arr.dtype.kind == "S":
        return _map_nested(arr.tolist(), _b64 if name.endswith("_bytes") else _text_or_b64)
    return arr.tolist()


def _map_nested(v: Any, f: Any) -> Any:
    if isinstance(v, list):
        return [_map_nested(x, f) for x in v]
    return f(v) if isinstance(v, bytes | bytearray) else v


def encode_tf(outputs: dict[str, np.ndarray], row_format: bool) -> dict[str, Any]:
    """Model outputs as a TF Serving predict answer (string outputs named ``*_bytes`` as
    ``{"b64": ...}``, other strings as text).

    Example:
        >>> encode_tf({"y": np.array([[1.0], [2.0]])}, row_format=True)
        {'predictions': [[1.0], [2.0]]}
    """
    names = list(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _jsonable(outputs[names[0]], names[0])}
        return {"outputs": {n: _jsonable(a, n) for n, a in outputs.items()}}
    if len(names) == 1:
        return {"predictions": _jsonable(outputs[names[0]], names[0])}
    cols = {n: _jsonable(a, n) for n, a in outputs.items()}
    sizes = {len(c) if isinstance(c, list) else -1 for c in cols.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise BadRequest(
            "the outputs do not share a batch size, so they cannot be returned as rows; "
            "use the columnar format ('inputs')"
        )
    return {"predictions": [{n: cols[n][i] for n in names} for i in range(sizes.pop())]}


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            out.append(x)
        else:
            stack.pop()
    return out


def decode_v2(
    body: Any, sig: Any
) -> tuple[dict[str, np.ndarray], list[str] | None, dict[str, Any]]:
    """A V2 infer body to ``(feeds, requested output names or None, request parameters)``.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> sig = NS(inputs=[NS(name="x", dtype="int64", shape=(None, 2))], outputs=[])
        >>> t = {"name": "x", "shape": [1, 2], "datatype": "INT64", "data": [5, 6]}
        >>> feeds, wanted, params = decode_v2({"inputs": [t]}, sig)
        >>> feeds["x"].tolist(), wanted, params
        ([[5, 6]], None, {})
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    specs = {s.name: s for s in sig.inputs}
    feeds: dict[str, np.ndarray] = {}
    for t in inputs:
        if not isinstance(t, dict):
            raise BadRequest("each input must be an object with name, shape, datatype, data")
        missing = [k for k in ("name", "shape", "datatype", "data") if k not in t]
        if missing:
            raise BadRequest(f"input {t.get('name', '?')!r}: missing {', '.join(missing)}")
        name, shape, dt = t["name"], t["shape"], t["datatype"]
        where = f"input '{name}'"
        if name not in specs:
            raise BadRequest(f"{where}: the model has no such input; its inputs are {list(specs)}")
        if name in feeds:
            raise BadRequest(f"{where}: given twice")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise BadRequest(f"{where}: 'shape' must be a list of non-negative integers")
        want = v2_datatype(specs[name].dtype)
        if dt != want:
            if dt not in _V2_TO_NP:
                raise BadRequest(f"{where}: unknown datatype {dt!r}")
            raise BadRequest(f"{where}: datatype {dt} does not match the model's {want}")
        flat = _flat(t["data"])
        n = int(np.prod(shape)) if shape else 1
        if len(flat) != n:
            raise BadRequest(f"{where}: shape {shape} needs {n} values, 'data' has {len(flat)}")
        arr = _as_array(flat, specs[name].dtype, where).reshape(shape)
        _check_rank(arr, specs[name], where)
        feeds[name] = arr
    lacking = [n for n in specs if n not in feeds]
    if lacking:
        raise BadRequest(f"missing inputs {lacking}")
    wanted = None
    if body.get("outputs") is not None:
        outs = body["outputs"]
        if not isinstance(outs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outs
        ):
            raise BadRequest("'outputs' must be a list of objects with a 'name'")
        known = [s.name for s in sig.outputs]
        wanted = [o["name"] for o in outs]
        for w in wanted:
            if w not in known:
                raise BadRequest(f"output '{w}': the model has no such output; it has {known}")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest("'parameters' must be an object")
    return feeds, wanted, params


def encode_v2(
    outputs: dict[str, np.ndarray],
    wanted: Sequence[str] | None,
    model: str,
    version: int,
    request_id: Any,
    specs: Sequence[Any],
) -> dict[str, Any]:
    """Model outputs as a V2 infer answer (flat row-major ``data``).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> out = encode_v2({"y": np.ones((1, 2), np.float32)}, None, "m", 3, "a1",
        ...                 [NS(name="y", dtype="float32")])
        >>> out["model_version"], out["id"], out["outputs"][0]["data"]
        ('3', 'a1', [1.0, 1.0])
    """
    dtypes = {s.name: s.dtype for s in specs}
    res: dict[str, Any] = {"model_name": model, "model_version": str(version)}
    if request_id is not None:
        res["id"] = request_id
    res["outputs"] = []
    for n in wanted if wanted is not None else outputs:
        a = np.asarray(outputs[n])
        dt = v2_datatype(dtypes.get(n, a.dtype.name if a.dtype != object else "bytes"))
        if dt == "BYTES":
            data = [
                x.decode("utf-8", "replace") if isinstance(x, bytes | bytearray) else str(x)
                for x in a.reshape(-1).tolist()
            ]
        else:
            data = a.reshape(-1).tolist()
        res["outputs"].append({"name": n, "datatype": dt, "shape": list(a.shape), "data": data})
    return res
