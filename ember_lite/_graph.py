"""Reading a graph file of ember's compiler (``ember/compiler/serialize.py`` format) and running
it equation by equation through the primitive table of :mod:`ember_lite._prims`.

Params use a tagged JSON encoding for what JSON lacks (tuples, dtypes, slices, NaN, arrays by
reference into the ``.bin`` file) and symbolic sizes: a :class:`Dim` ``coef * B + offset`` or a
polynomial in several sizes (``B*S``), or a :class:`Ratio` ``(a*B + b) / (c*B + d)``, whose
symbols are bound, on every run, from the inputs' shapes (the graph's ``"symbols"``: name ->
(input index, axis)).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ._errors import LiteFormatError, UnsupportedPrimitiveError
from ._prims import PRIMS

__all__ = ["Dim", "Graph", "Ratio", "np_dtype", "unflatten"]

_GRAPH_FORMAT = "ember-graph"
_GRAPH_VERSION = 1
_NP_DTYPES = {
    "float64": "float64",
    "float32": "float32",
    "float16": "float16",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
    "complex64": "complex64",
    "complex128": "complex128",
}


def np_dtype(name: str, where: str = "graph") -> np.dtype:
    """The NumPy dtype of an ember dtype name (bfloat16 has none in NumPy: refused)."""
    try:
        return np.dtype(_NP_DTYPES[name])
    except KeyError:
        raise LiteFormatError(
            f"{where}: dtype {name!r} is not supported by ember_lite (NumPy has no such type)"
        ) from None


class Dim:
    """A symbolic size: ``coef * name + offset``, or (``Dim.poly``) a polynomial in several
    sizes with rational coefficients, such as ``B*S`` (a model exported with a dynamic batch
    and sequence length flattens them into one axis).

    Example:
        >>> Dim("B", 2, 1).eval({"B": 3})
        7
        >>> Dim.poly([(("B", "S"), Fraction(1)), (("S",), Fraction(1, 2))], 0).eval(
        ...     {"B": 3, "S": 4})
        14
    """

    __slots__ = ("coef", "name", "offset", "terms")

    def __init__(self, name: str, coef: int = 1, offset: int = 0) -> None:
        self.name, self.coef, self.offset = name, coef, offset
        self.terms: tuple[tuple[tuple[str, ...], Fraction], ...] | None = None

    @staticmethod
    def poly(terms: Sequence[tuple[Sequence[str], Fraction]], offset: Fraction | int) -> Dim:
        """``sum(coef * prod(monomial)) + offset`` over the named sizes."""
        d = Dim("", 0, offset)
        d.terms = tuple((tuple(m), Fraction(c)) for m, c in terms)
        return d

    def eval(self, env: Mapping[str, int]) -> int:
        if self.terms is None:
            return int(self.coef * env[self.name] + self.offset)
        v = Fraction(self.offset)
        for mono, c in self.terms:
            p = c
            for sym in mono:
                p *= env[sym]
            v += p
        if v.denominator != 1:
            raise ValueError(f"the size {self!r} is not a whole number for the sizes {dict(env)}")
        return int(v)

    def __repr__(self) -> str:
        if self.terms is None:
            return f"Dim({self.coef}*{self.name}+{self.offset})"
        parts = [f"{c}*{'*'.join(m)}" for m, c in self.terms]
        return f"Dim({'+'.join(parts)}+{self.offset})"


class Ratio:
    """A symbolic float ``(a*name + b) / (c*name + d)``; ``known``: exact values seen when the
    graph was traced.

    Example:
        >>> Ratio("B", 1.0, 0.0, 1.0, -1.0, {}).eval({"B": 5})
        1.25
    """

    __slots__ = ("a", "b", "c", "d", "known", "name")

    def __init__(
        self, name: str | Dim, a: float, b: float, c: float, d: float, known: dict[int, float]
    ) -> None:
        self.name, self.a, self.b, self.c, self.d, self.known = name, a, b, c, d, known

    def eval(self, env: Mapping[str, int]) -> float:
        x = self.name.eval(env) if isinstance(self.name, Dim) else env[self.name]
        if x in self.known:
            return self.known[x]
        return float((self.a * x + self.b) / (self.c * x + self.d))


class _InputRef:
    """A param that is data: the equation's input ``index`` (ember's lifted primitives)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _Seed:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _decode(v: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(v, list):
        return [_decode(x, arrays) for x in v]
    if not isinstance(v, dict):
        return v
    t = v.get("$t")
    if t == "tuple":
        return tuple(_decode(x, arrays) for x in v["v"])
    if t == "dict":
        return {k: _decode(x, arrays) for k, x in v["v"].items()}
    if t == "float":
        return float(v["v"])
    if t == "dim":
        return Dim(v["name"], v["coef"], v["offset"])
    if t == "dimpoly":
        terms = [(tuple(m), Fraction(*c)) for m, c in v["terms"]]
        return Dim.poly(terms, Fraction(*v["offset"]))
    if t == "ratio":
        a, b, c, d = (_decode(x, arrays) for x in v["v"])
        name = v["name"] if isinstance(v["name"], str) else _decode(v["name"], arrays)
        return Ratio(name, a, b, c, d, {int(k): _decode(x, arrays) for k, x in v["known"]})
    if t == "inref":
        return _InputRef(v["v"])
    if t == "seed":
        return _Seed(v["v"])
    if t in ("dtype", "npdtype"):
        return np_dtype(v["v"])
    if t == "array":
        return arrays[v["v"]]
    if t == "scalar":
        return np_dtype(v["dtype"]).type(_decode(v["v"], arrays))
    if t == "complex":
        return complex(_decode(v["v"][0], arrays), _decode(v["v"][1], arrays))
    if t == "slice":
        return slice(*(_decode(x, arrays) for x in v["v"]))
    if t == "ellipsis":
        return Ellipsis
    raise LiteFormatError(f"unknown encoded value {v!r} (a newer ember wrote the graph?)")


def _symbolic(v: Any) -> bool:
    t = type(v)
    if t is Dim or t is Ratio or t is _InputRef:
        return True
    if t is tuple or t is list:
        return any(_symbolic(x) for x in v)
    if t is dict:
        return any(_symbolic(x) for x in v.values())
    if t is slice:
        return any(_symbolic(x) for x in (v.start, v.stop, v.step))
    return False


def _resolve(v: Any, env: Mapping[str, int], args: Sequence[Any]) -> Any:
    t = type(v)
    if t is Dim or t is Ratio:
        return v.eval(env)
    if t is _InputRef:
        return args[v.index]
    if t is tuple or t is list:
        return t(_resolve(x, env, args) for x in v)
    if t is dict:
        return {k: _resolve(x, env, args) for k, x in v.items()}
    if t is slice:
        return slice(*(_resolve(x, env, args) for x in (v.start, v.stop, v.step)))
    return v


def _first_ref(v: Any) -> int | None:
    t = type(v)
    if t is _InputRef:
        return v.index
    if t is tuple or t is list or t is dict:
        refs = [_first_ref(x) for x in (v.values() if t is dict else v)]
        found = [r for r in refs if r is not None]
        return min(found) if found else None
    return None


def _has_seed(v: Any) -> bool:
    t = type(v)
    if t is _Seed:
        return True
    if t is tuple or t is list:
        return any(_has_seed(x) for x in v)
    if t is dict:
        return any(_has_seed(x) for x in v.values())
    return False


class _Step:
    """One equation, ready to run: its function, operands (var slots or constants), params."""

    __slots__ = ("fn", "n_args", "operands", "outs", "params", "symbolic")

    def __init__(self, fn: Callable, operands: list, params: dict, outs: list[int]) -> None:
        self.fn, self.operands, self.params, self.outs = fn, operands, params, outs
        self.symbolic = _symbolic(params) or any(
            kind == "lit" and _symbolic(v) for kind, v in operands
        )
        n = _first_ref(params)
        self.n_args = len(operands) if n is None else n  # lifted: index arrays are params


class Graph:
    """A graph file read into a list of steps. ``captured``: the names of its captured arrays
    (parameters, buffers), read from the weights file of the saved model."""

    def __init__(
        self,
        path: str,
        weights: Mapping[str, np.ndarray] | None = None,
        raw: bytes | None = None,
        blob: bytes | None = None,
    ) -> None:
        self.path = path
        if raw is None:
            with open(path, "rb") as fh:
                raw = fh.read()
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise LiteFormatError(f"{path}: not a graph file (not JSON: {exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _GRAPH_FORMAT:
            raise LiteFormatError(f"{path}: not an ember graph file (no format 'ember-graph')")
        if doc.get("version") != _GRAPH_VERSION:
            raise LiteFormatError(
                f"{path}: graph format version {doc.get('version')}, ember_lite reads "
                f"{_GRAPH_VERSION}"
            )
        try:
            self._build(doc, path, weights, blob)
        except (KeyError, TypeError, IndexError) as exc:
            raise LiteFormatError(
                f"{path}: malformed graph file ({type(exc).__name__}: {exc})"
            ) from None

    def _build(
        self, doc: dict, path: str, weights: Mapping[str, np.ndarray] | None, blob: bytes | None
    ) -> None:
        arrays = _read_arrays(doc, path, blob)
        self.var_types = [
            (tuple(_decode(d, arrays) for d in v["shape"]), v["dtype"]) for v in doc["vars"]
        ]
        self.n_vars = len(self.var_types)
        self.inputs: list[int] = list(doc["inputs"])
        self.symbols = {k: (int(v[0]), int(v[1])) for k, v in doc["symbols"].items()}
        self.captured: list[tuple[int, np.ndarray]] = []
        for c in doc["captured"]:
            name = c["name"]
            if c.get("value") is not None:
                value = arrays[c["value"]]
            elif weights is not None and name in weights:
                value = weights[name]
            else:
                raise LiteFormatError(f"{path}: captured array {name!r} is not in the weights file")
            shape, dtype = self.var_types[c["var"]]
            if tuple(value.shape) != tuple(shape) or value.dtype != np_dtype(dtype, path):
                raise LiteFormatError(
                    f"{path}: captured array {name!r} is {value.dtype}{list(value.shape)} in the "
                    f"weights, the graph expects {dtype}{list(shape)}"
                )
            value.setflags(write=False)  # shared by every run: no primitive may write into it
            self.captured.append((c["var"], value))
        missing = [(k, e["prim"]) for k, e in enumerate(doc["eqns"]) if e["prim"] not in PRIMS]
        if missing:
            k, name = missing[0]
            others = sorted({n for _, n in missing} - {name})
            more = f"; also {', '.join(repr(n) for n in others)}" if others else ""
            raise UnsupportedPrimitiveError(
                f"{path}: ember_lite does not implement primitive {name!r} (used by equation "
                f"{k}){more}"
            )
        self.steps: list[_Step] = []
        for k, e in enumerate(doc["eqns"]):
            params = {p: _decode(x, arrays) for p, x in e["params"].items()}
            if _has_seed(params):
                raise UnsupportedPrimitiveError(
                    f"{path}: equation {k} ({e['prim']}) draws random numbers (a training-mode "
                    "graph?); ember_lite runs inference graphs only"
                )
            if e.get("mutates"):
                raise UnsupportedPrimitiveError(
                    f"{path}: equation {k} ({e['prim']}) writes into its inputs in place; "
                    "ember_lite runs inference graphs only"
                )
            operands = [
                ("lit", _decode(x["lit"], arrays)) if isinstance(x, dict) else ("var", int(x))
                for x in e["in"]
            ]
            self.steps.append(_Step(PRIMS[e["prim"]], operands, params, list(e["out"])))
        self.outputs = [
            ("lit", _decode(x["lit"], arrays)) if isinstance(x, dict) else ("var", int(x))
            for x in doc["outputs"]
        ]
        self.out_tree = doc.get("out_tree")  # how the flat outputs nest (None: one output)

    def bind(self, inputs: Sequence[np.ndarray], names: Sequence[str]) -> dict[str, int]:
        """The symbols' values from the input shapes, every input checked against its
        declared shape (fixed sizes equal, symbolic sizes consistent between inputs)."""
        sym = {s: int(inputs[i].shape[ax]) for s, (i, ax) in self.symbols.items()}
        for k, (slot, a) in enumerate(zip(self.inputs, inputs)):
            shape = self.var_types[slot][0]
            want = [d.eval(sym) if isinstance(d, Dim) else d for d in shape]
            if list(a.shape) != want:
                raise ValueError(
                    f"input {names[k]!r} has shape {list(a.shape)}, the graph expects {want} "
                    f"for these inputs (sizes shared between inputs must agree)"
                )
        return sym

    def run(
        self, inputs: Sequence[np.ndarray], sym: Mapping[str, int] | None = None
    ) -> list[np.ndarray]:
        """The graph's outputs for ``inputs`` (NumPy arrays in the graph's input order)."""
        env: list[Any] = [None] * self.n_vars
        for slot, a in zip(self.inputs, inputs):
            env[slot] = a
        for slot, a in self.captured:
            env[slot] = a
        if sym is None:
            sym = {s: inputs[i].shape[ax] for s, (i, ax) in self.symbols.items()}
        with np.errstate(all="ignore"):  # inf/nan results as in ember (and PyTorch)
            for st in self.steps:
                args = [env[v] if kind == "var" else v for kind, v in st.operands]
                if st.symbolic:
                    args = [_resolve(a, sym, ()) for a in args]
                    params = _resolve(st.params, sym, args)
                    args = args[: st.n_args]
                else:
                    params = st.params
                out = st.fn(*args, **params)
                if len(st.outs) == 1:
                    env[st.outs[0]] = out if type(out) is np.ndarray else np.asarray(out)
                else:
                    for slot, o in zip(st.outs, out):
                        env[slot] = o
        return [
            np.asarray(env[v] if kind == "var" else _resolve(v, sym, ()))
            for kind, v in self.outputs
        ]


def unflatten(tree: Any, leaves: Sequence[Any]) -> Any:
    """The flat ``leaves`` nested as the graph file's ``out_tree`` says (tuples, lists,
    dicts; any other container the model returned comes back as a tuple).

    Example:
        >>> unflatten({"kind": "tuple", "items": [None, {"kind": "dict", "items": [["h", None]]}]},
        ...           [1, 2])
        (1, {'h': 2})
    """
    it = iter(leaves)

    def go(t: Any) -> Any:
        if t is None:
            return next(it)
        if t["kind"] == "dict":
            return {k: go(i) for k, i in t["items"]}
        vals = [go(i) for i in t["items"]]
        return vals if t["kind"] == "list" else tuple(vals)

    return go(tree)


def _read_arrays(doc: dict, path: str, blob: bytes | None) -> list[np.ndarray]:
    name = doc["data_file"]
    if not isinstance(name, str) or name in ("", ".", "..") or os.path.basename(name) != name:
        raise LiteFormatError(f"{path}: its array file must lie beside it, not {name!r}")
    data_path = os.path.join(os.path.dirname(os.path.abspath(path)), name)
    if blob is None:
        try:
            with open(data_path, "rb") as fh:
                blob = fh.read()
        except OSError as exc:
            raise LiteFormatError(
                f"{path}: its array file {data_path} cannot be read: {exc}"
            ) from None
    if len(blob) != doc["data_bytes"] or hashlib.sha256(blob).hexdigest() != doc["data_sha256"]:
        raise LiteFormatError(
            f"{path}: the array file {data_path} does not belong to this graph file (size or "
            "checksum differ)"
        )
    arrays = []
    for a in doc["arrays"]:
        dt = np_dtype(a["dtype"], path).newbyteorder("<")
        buf = blob[a["offset"] : a["offset"] + a["nbytes"]]
        arr = np.frombuffer(buf, dtype=dt).reshape(a["shape"])
        arrays.append(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    return arrays
