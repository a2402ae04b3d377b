"""Graph files: a :class:`~ember.compiler.ir.Graph` as JSON plus a raw array file (no pickle).

``save(graph, "g.json")`` writes two files, each atomically (temporary file, fsync, rename):

- ``g.json.bin``: the arrays (captured state, constant operands and array params), raw and
  little-endian, each at a 64-byte aligned offset;
- ``g.json``: the graph. Values are numbered; each equation names its primitive by its
  registered name, and params are JSON with a small tagged encoding for what JSON lacks
  (``{"$t": "tuple", "v": [...]}``, dtypes, slices, symbolic sizes, NaN, arrays by reference
  into the ``.bin`` file; optimizer hyperparameters read at run time are saved with their
  current values). The JSON records the size and SHA-256 of the ``.bin`` file, so
  a pair from two different saves is detected.

A value that has no encoding (a Python object, a callable) is refused with an error naming
the equation and the param. :func:`load` needs only ember: the Python code that built the
graph is not involved.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import ember
    >>> from ember.compiler import trace_graph, interpret, load
    >>> g = trace_graph(lambda x: (x * 2).sum(0), ember.ones(2, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "g.json")
    >>> g.save(path)
    >>> interpret(load(path), [np.ones((2, 3), np.float32)])[0].tolist()
    [4.0, 4.0, 4.0]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, cast

import numpy as np

from .. import _dtype as dt
from .._tensor import _new
from ..ops._core import Primitive
from .ir import Dim, Eqn, Graph, HyperParam, Literal, Ratio, Seed, Var, lookup_primitive
from .prims import InputRef, LiftedPrimitive, lifted

__all__ = ["FORMAT", "GraphFormatError", "load", "save"]

FORMAT = "ember-graph"
VERSION = 1
_ALIGN = 64


class GraphFormatError(ValueError):
    """A graph cannot be written (a value with no encoding) or read (a bad or foreign file)."""


# -- encoding of params and literals ---------------------------------------------------------


class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def array(self, a: np.ndarray, where: str) -> int:
        try:
            dt.from_numpy_dtype(a.dtype)
        except TypeError as exc:
            raise GraphFormatError(f"{where}: an array of dtype {a.dtype} cannot be saved") from exc
        self.arrays.append(a if a.flags.c_contiguous else a.copy(order="C"))  # keeps 0-d
        return len(self.arrays) - 1

    def enc(self, v: Any, where: str) -> Any:
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            return v
        if t is float:
            if math.isfinite(v):
                return v
            return {"$t": "float", "v": repr(v)}
        if t is list:
            return [self.enc(x, where) for x in v]
        if t is tuple:
            return {"$t": "tuple", "v": [self.enc(x, where) for x in v]}
        if t is dict:
            if not all(isinstance(k, str) for k in v):
                raise GraphFormatError(f"{where}: a dict with non-string keys cannot be saved")
            return {"$t": "dict", "v": {k: self.enc(x, where) for k, x in v.items()}}
        if t is Dim:
            if v.name is not None and isinstance(v.coef, int) and isinstance(v.offset, int):
                return {"$t": "dim", "name": v.name, "coef": v.coef, "offset": v.offset}
            # a polynomial in several sizes (rational coefficients as [numerator, denominator])
            return {
                "$t": "dimpoly",
                "terms": [[list(m), _frac(c)] for m, c in v.terms],
                "offset": _frac(v.offset),
            }
        if t is Ratio:
            out = {
                "$t": "ratio",
                "name": v.name if not isinstance(v.name, Dim) else self.enc(v.name, where),
                "v": [self.enc(float(x), where) for x in (v.a, v.b, v.c, v.d)],
                "known": [[int(k), self.enc(float(x), where)] for k, x in v.known.items()],
            }
            if v.fn is not None:  # (absent: graphs saved before it load the same)
                out["fn"] = v.fn
            return out
        if t is InputRef:
            return {"$t": "inref", "v": v.index}
        if t is HyperParam:  # an optimizer setting read at run time: saved as it is now
            return self.enc(v.value(), where)
        if t is Seed:
            return {"$t": "seed", "v": v.index}
        if t is dt.DType:
            return {"$t": "dtype", "v": v.name}
        if isinstance(v, np.dtype):
            return {"$t": "npdtype", "v": _dtype_name(v, where)}
        if isinstance(v, np.ndarray):
            return {"$t": "array", "v": self.array(v, where)}
        if isinstance(v, np.generic):
            return {
                "$t": "scalar",
                "dtype": _dtype_name(v.dtype, where),
                "v": self.enc(v.item(), where),
            }
        if t is complex:
            return {"$t": "complex", "v": [self.enc(v.real, where), self.enc(v.imag, where)]}
        if t is slice:
            return {"$t": "slice", "v": [self.enc(x, where) for x in (v.start, v.stop, v.step)]}
        if v is Ellipsis:
            return {"$t": "ellipsis"}
        if isinstance(v, int):  # int subclasses (symbolic sizes already are Dims)
            return int(v)
        raise GraphFormatError(
            f"{where}: a value of type {t.__name__} ({_short_repr(v)}) has no encoding in a "
            "graph file (params must be numbers, strings, None, tuples, lists, dicts, dtypes, "
            "slices, symbolic sizes or arrays)"
        )


def _short_repr(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _dtype_name(d: np.dtype, where: str) -> str:
    try:
        return dt.from_numpy_dtype(d).name
    except TypeError as exc:
        raise GraphFormatError(f"{where}: dtype {d} cannot be saved") from exc


def _frac(c: Any) -> list[int]:
    f = Fraction(c)
    return [f.numerator, f.denominator]


def _dec(v: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(v, list):
        return [_dec(x, arrays) for x in v]
    if not isinstance(v, dict):
        return v
    t = v.get("$t")
    if t == "tuple":
        return tuple(_dec(x, arrays) for x in v["v"])
    if t == "dict":
        return {k: _dec(x, arrays) for k, x in v["v"].items()}
    if t == "float":
        return float(v["v"])
    if t == "dim":
        return Dim(v["name"], v["coef"], v["offset"])
    if t == "dimpoly":
        terms = {tuple(m): Fraction(*c) for m, c in v["terms"]}
        return Dim.poly(terms, Fraction(*v["offset"]))
    if t == "ratio":
        a, b, c, d = (_dec(x, arrays) for x in v["v"])
        name = v["name"] if isinstance(v["name"], str) else _dec(v["name"], arrays)
        return Ratio(name, a, b, c, d, {k: _dec(x, arrays) for k, x in v["known"]}, fn=v.get("fn"))
    if t == "inref":
        return InputRef(v["v"])
    if t == "seed":
        return Seed(v["v"])
    if t == "dtype":
        return dt.as_dtype(v["v"])
    if t == "npdtype":
        return np.dtype(dt.as_dtype(v["v"]).np)
    if t == "array":
        return arrays[v["v"]]
    if t == "scalar":
        return dt.as_dtype(v["dtype"]).np.type(_dec(v["v"], arrays))
    if t == "complex":
        return complex(_dec(v["v"][0], arrays), _dec(v["v"][1], arrays))
    if t == "slice":
        return slice(*(_dec(x, arrays) for x in v["v"]))
    if t == "ellipsis":
        return Ellipsis
    raise GraphFormatError(f"unknown encoded value {v!r}")


def _enc_tree(tree: Any) -> Any:
    if tree is None:
        return None
    kind, items = tree
    if kind is dict:
        return {"kind": "dict", "items": [[k, _enc_tree(i)] for k, i in items]}
    if kind in (tuple, list):
        return {"kind": kind.__name__, "items": [_enc_tree(i) for i in items]}
    raise GraphFormatError(f"the result structure ({kind.__name__}) cannot be saved")


def _dec_tree(tree: Any) -> Any:
    if tree is None:
        return None
    kind = {"dict": dict, "tuple": tuple, "list": list}[tree["kind"]]
    if kind is dict:
        return (dict, tuple((k, _dec_tree(i)) for k, i in tree["items"]))
    return (kind, tuple(_dec_tree(i) for i in tree["items"]))


# -- save ------------------------------------------------------------------------------------


def save(graph: Graph, path: Any, *, external_weights: bool = False) -> None:
    """Write ``graph`` to ``path`` (JSON) and ``path + ".bin"`` (its arrays); see the module
    docstring. Captured state is saved with its current values, or, with
    ``external_weights=True``, not at all: each captured entry then has ``"value": null`` and
    :func:`load` takes the arrays by captured name (``weights=``), as a saved model keeps
    them in one shared weights file (:mod:`ember.export`)."""
    path = os.fspath(path)
    enc = _Encoder()
    ids: dict[int, int] = {}
    vars_: list[dict[str, Any]] = []

    def var(v: Var, where: str) -> int:
        k = ids.get(id(v))
        if k is None:
            k = ids[id(v)] = len(vars_)
            vars_.append({"shape": [enc.enc(d, where) for d in v.shape], "dtype": v.dtype.name})
        return k

    def operand(v: Var | Literal, where: str) -> Any:
        if isinstance(v, Literal):
            return {"lit": enc.enc(v.value, where)}
        return var(v, where)

    inputs = [var(v, f"input {i}") for i, v in enumerate(graph.inputs)]
    captured = []
    for i, (v, t) in enumerate(zip(graph.captured, graph.captured_tensors)):
        where = f"captured {graph.captured_names[i]!r}"
        captured.append(
            {
                "var": var(v, where),
                "name": graph.captured_names[i],
                "value": None if external_weights else enc.array(np.asarray(t._data), where),
            }
        )
    eqns = []
    for k, e in enumerate(graph.eqns):
        where = f"equation {k} ({e.prim.name})"
        _check_prim(e.prim, where)
        ins = [operand(v, where) for v in e.inputs]
        params = {p: enc.enc(x, f"{where}, param {p!r}") for p, x in e.params.items()}
        outs = [var(v, where) for v in e.outputs]
        eqns.append(
            {
                "prim": e.prim.name,
                "lifted": isinstance(e.prim, LiftedPrimitive),
                "in": ins,
                "params": params,
                "out": outs,
                "mutates": list(e.mutates),
            }
        )
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "vars": vars_,
        "inputs": inputs,
        "captured": captured,
        "eqns": eqns,
        "outputs": [operand(v, "outputs") for v in graph.outputs],
        "symbols": {k: list(v) for k, v in graph.symbols.items()},
        "grad_effects": [[i, None if v is None else var(v, "grad")] for i, v in graph.grad_effects],
        "input_grad_effects": [
            [i, None if v is None else var(v, "grad")] for i, v in graph.input_grad_effects
        ],
        "n_seeds": len(graph.seed_sources),
        "out_tree": _enc_tree(graph.out_tree),
        "meta": _meta(graph),
    }
    blob, table = _pack(enc.arrays)
    doc["arrays"] = table
    doc["data_file"] = os.path.basename(path) + ".bin"
    doc["data_bytes"] = len(blob)
    doc["data_sha256"] = hashlib.sha256(blob).hexdigest()
    text = json.dumps(doc, indent=1, allow_nan=False).encode()
    _atomic_write(path + ".bin", blob)
    _atomic_write(path, text)


def _meta(graph: Graph) -> Any:
    meta = getattr(graph, "meta", None)
    if meta is None:
        return None
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GraphFormatError(f"graph.meta is not JSON: {exc}") from exc
    return meta


def _check_prim(prim: Primitive, where: str) -> None:
    if isinstance(prim, LiftedPrimitive):  # saved by name, lifted again when loaded
        prim = cast(Any, prim).base
    try:
        found = lookup_primitive(prim.name)
    except KeyError:
        found = None
    if found is not prim:
        raise GraphFormatError(
            f"{where}: primitive {prim.name!r} is not registered (a custom Function or a "
            "local primitive), so a loaded graph could not find it by name"
        )


def _pack(arrays: list[np.ndarray]) -> tuple[bytes, list[dict[str, Any]]]:
    parts: list[bytes] = []
    table = []
    off = 0
    for a in arrays:
        d = dt.from_numpy_dtype(a.dtype)
        le = a.astype(a.dtype.newbyteorder("<"), copy=False) if a.dtype.byteorder == ">" else a
        raw = le.tobytes(order="C")
        pad = (-off) % _ALIGN
        parts.append(b"\0" * pad)
        off += pad
        table.append({"dtype": d.name, "shape": list(a.shape), "offset": off, "nbytes": len(raw)})
        parts.append(raw)
        off += len(raw)
    return b"".join(parts), table


def _atomic_write(path: str, data: bytes) -> None:
    from ..serialization import _create_temp, _fsync_dir

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(path, directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


# -- load ------------------------------------------------------------------------------------


def load(path: Any, *, weights: Mapping[str, np.ndarray] | None = None) -> Graph:
    """Read a graph written by :func:`save` (``Graph.save``); its primitives are found by
    name in this ember, its captured state is fresh tensors holding the saved values.
    ``graph.meta`` holds what the writer attached (input names for ``ember.symbol``).
    A graph saved with ``external_weights=True`` needs ``weights``: captured name -> array,
    each checked against the dtype and shape the graph expects."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise GraphFormatError(f"{path}: not a graph file (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise GraphFormatError(f"{path}: not an ember graph file (no format {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise GraphFormatError(
            f"{path}: graph format version {doc.get('version')}, this ember reads {VERSION}"
        )
    where = ["its header"]
    try:
        return _read(path, doc, weights, where)
    except GraphFormatError as exc:
        if str(exc).startswith(path):
            raise
        raise GraphFormatError(f"{path}: in {where[0]}, {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        what = f"the field {exc.args[0]!r} is missing" if isinstance(exc, KeyError) else exc
        raise GraphFormatError(
            f"{path}: a damaged graph file: in {where[0]}, {what} (a file edited or cut short?)"
        ) from None


def _pick(items: list, i: Any) -> Any:
    """``items[i]`` for an index read from a graph file (a negative one is an error too)."""
    if type(i) is not int or not 0 <= i < len(items):
        raise IndexError(f"index {i!r} is not one of the {len(items)} entries")
    return items[i]


def _read(path: str, doc: dict, weights: Mapping[str, np.ndarray] | None, where: list) -> Graph:
    name = doc.get("data_file")
    if not isinstance(name, str) or not name or os.path.basename(name) != name or name == "..":
        raise GraphFormatError(f"{path}: data_file must name a file beside it, got {name!r}")
    data_path = os.path.join(os.path.dirname(os.path.abspath(path)), name)
    try:
        with open(data_path, "rb") as fh:
            blob = fh.read()
    except OSError as exc:
        raise GraphFormatError(
            f"{path}: its array file {data_path} cannot be read: {exc}"
        ) from None
    if len(blob) != doc["data_bytes"] or hashlib.sha256(blob).hexdigest() != doc["data_sha256"]:
        raise GraphFormatError(
            f"{path}: the array file {data_path} does not belong to this graph file (size or "
            "checksum differ: written by another save?)"
        )
    arrays = []
    where[0] = "its array table"
    for a in doc["arrays"]:
        npd = np.dtype(dt.as_dtype(a["dtype"]).np).newbyteorder("<")
        buf = blob[a["offset"] : a["offset"] + a["nbytes"]]
        arr = np.frombuffer(buf, dtype=npd).reshape(a["shape"])
        arrays.append(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    vars_ = []
    for k, v in enumerate(doc["vars"]):
        where[0] = f"value {k}"
        if not isinstance(v["shape"], list):
            raise TypeError(f"its shape is {v['shape']!r}, not a list of sizes")
        vars_.append(Var(tuple(_dec(d, arrays) for d in v["shape"]), dt.as_dtype(v["dtype"])))

    def operand(x: Any) -> Var | Literal:
        if isinstance(x, dict) and "lit" in x:
            return Literal(_dec(x["lit"], arrays))
        return _pick(vars_, x)

    eqns = []
    for k, e in enumerate(doc["eqns"]):
        where[0] = f"equation {k}"
        try:
            prim = lookup_primitive(e["prim"])
        except KeyError:
            raise GraphFormatError(
                f"{path}: equation {k} uses primitive {e['prim']!r}, which this ember does not "
                "have (a newer or extended ember wrote the file?)"
            ) from None
        if e.get("lifted"):
            prim = lifted(prim)
        params = {p: _dec(x, arrays) for p, x in e["params"].items()}
        eqns.append(
            Eqn(
                prim,
                [operand(x) for x in e["in"]],
                params,
                [_pick(vars_, i) for i in e["out"]],
                e["mutates"],
            )
        )
    where[0] = "its inputs, outputs and captured state"
    from ..random import default_generator

    g = Graph(
        inputs=[_pick(vars_, i) for i in doc["inputs"]],
        eqns=eqns,
        outputs=[operand(x) for x in doc["outputs"]],
        captured=[_pick(vars_, c["var"]) for c in doc["captured"]],
        captured_tensors=[_captured(path, c, vars_, arrays, weights) for c in doc["captured"]],
        captured_names=[c["name"] for c in doc["captured"]],
        grad_effects=[(i, None if v is None else vars_[v]) for i, v in doc["grad_effects"]],
        symbols={k: (v[0], v[1]) for k, v in doc["symbols"].items()},
        # random ops draw from the default generator of the loading process
        seed_sources=[default_generator] * doc["n_seeds"],
        input_grad_effects=[
            (i, None if v is None else vars_[v]) for i, v in doc["input_grad_effects"]
        ],
        out_tree=_dec_tree(doc["out_tree"]),
    )
    g.meta = doc.get("meta")
    _check_loaded(path, g, vars_)
    return g


def _check_loaded(path: str, g: Graph, vars_: list[Var]) -> None:
    """Refuse a graph whose equations read a value before it is computed (a damaged or
    reordered file) or whose symbolic sizes point at no input axis."""
    known = {id(v) for v in g.inputs} | {id(v) for v in g.captured}

    def check(x: Any, what: str) -> None:
        if isinstance(x, Var) and id(x) not in known:
            k = next(j for j, v in enumerate(vars_) if v is x)
            raise GraphFormatError(
                f"{path}: a damaged graph file: {what} reads value {k} before any equation "
                "computes it (equations reordered or removed?)"
            )

    for k, e in enumerate(g.eqns):
        for x in e.inputs:
            check(x, f"equation {k} ({e.prim.name})")
        known.update(id(o) for o in e.outputs)
    for x in g.outputs:
        check(x, "an output")
    for name, (i, ax) in g.symbols.items():
        if not (0 <= i < len(g.inputs) and 0 <= ax < len(g.inputs[i].shape)):
            raise GraphFormatError(
                f"{path}: a damaged graph file: the size {name!r} is read from input {i} "
                f"axis {ax}, which the graph's {len(g.inputs)} inputs do not have"
            )


def _captured(
    path: str,
    c: dict[str, Any],
    vars_: list[Var],
    arrays: list[np.ndarray],
    weights: Mapping[str, np.ndarray] | None,
) -> Any:
    if c["value"] is not None:
        arr, v = _pick(arrays, c["value"]), _pick(vars_, c["var"])
        if all(type(d) is int for d in v.shape) and (
            arr.dtype != v.dtype.np or arr.shape != tuple(v.shape)
        ):
            raise GraphFormatError(
                f"{path}: a damaged graph file: captured {c['name']!r} holds "
                f"{arr.dtype}{list(arr.shape)}, the graph expects {v.dtype.name}{list(v.shape)}"
            )
        return _new(arr)
    name, v = c["name"], vars_[c["var"]]
    if weights is None:
        raise GraphFormatError(
            f"{path}: the graph keeps its weights outside (captured {name!r} has no value); "
            "pass them with load(path, weights={name: array})"
        )
    if name not in weights:
        raise GraphFormatError(f"{path}: no weight named {name!r} among the weights given")
    a = np.asarray(weights[name])
    if a.dtype != v.dtype.np or tuple(a.shape) != tuple(v.shape):
        raise GraphFormatError(
            f"{path}: weight {name!r} is {a.dtype}{list(a.shape)}, the graph expects "
            f"{v.dtype.name}{list(v.shape)}"
        )
    return _new(a)
