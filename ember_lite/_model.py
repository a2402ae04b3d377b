"""A saved-model directory (``saved_model.json`` + graphs + ``weights.safetensors``) loaded
for inference: the manifest is read, every listed file is checked (size and SHA-256) before
anything is built, and each signature's graph becomes a runnable :class:`Signature`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ._errors import LiteFormatError
from ._graph import Graph, np_dtype, unflatten
from ._safetensors import read_safetensors

__all__ = ["Model", "Signature", "TensorSpec", "load"]

MANIFEST = "saved_model.json"
_FORMAT = "ember-saved-model"
_VERSION = 1


class TensorSpec(NamedTuple):
    """An input or output of a signature: name, dtype name and shape (None: dynamic)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


def _spec(d: Any, where: str) -> TensorSpec:
    try:
        return TensorSpec(str(d["name"]), str(d["dtype"]), tuple(d["shape"]))
    except (KeyError, TypeError) as exc:
        raise LiteFormatError(f"{where}: malformed tensor spec {d!r} ({exc})") from None


class Signature:
    """One entry point of a saved model: ``run(feeds) -> outputs``, both dicts of arrays."""

    def __init__(
        self, name: str, graph: Graph, inputs: list[TensorSpec], outputs: list[TensorSpec]
    ) -> None:
        self.name, self.graph, self.inputs, self.outputs = name, graph, inputs, outputs
        if len(inputs) != len(graph.inputs) or len(outputs) != len(graph.outputs):
            raise LiteFormatError(
                f"signature {name!r}: the manifest lists {len(inputs)} inputs and {len(outputs)} "
                f"outputs, its graph has {len(graph.inputs)} and {len(graph.outputs)}"
            )

    def _check(self, spec: TensorSpec, value: Any) -> np.ndarray:
        a = np.asarray(value)
        want = np_dtype(spec.dtype)
        if a.dtype != want:
            # Python lists/scalars come in as float64/int64: accept them losslessly
            if not isinstance(value, np.ndarray) and np.can_cast(a.dtype, want, "same_kind"):
                a = a.astype(want)
            else:
                raise ValueError(
                    f"signature {self.name!r}: input {spec.name!r} expects dtype {spec.dtype}, "
                    f"got {a.dtype}"
                )
        ok = a.ndim == len(spec.shape) and all(
            s is None or s == n for s, n in zip(spec.shape, a.shape)
        )
        if not ok:
            shown = "[" + ", ".join("None" if s is None else str(s) for s in spec.shape) + "]"
            raise ValueError(
                f"signature {self.name!r}: input {spec.name!r} expects shape {shown}, got "
                f"{list(a.shape)}"
            )
        return a

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The outputs, by name, for ``feeds`` (input name -> array).

        Example (the directory written by ember, which ember_lite does not need):
            >>> import os, tempfile, ember, ember.export
            >>> d = os.path.join(tempfile.mkdtemp(), "m")
            >>> _ = ember.export.save(ember.nn.Linear(64, 10), d, ember.randn(1, 64))
            >>> sig = load(d).signatures["serving_default"]
            >>> sig.run({"input": np.zeros((2, 64), np.float32)})["output_0"].shape
            (2, 10)
        """
        if not isinstance(feeds, Mapping):
            raise ValueError(  # noqa: TRY004  (ValueError: the contract's error for bad feeds)
                f"signature {self.name!r}: feeds must be a dict of input name -> array, got "
                f"{type(feeds).__name__}"
            )
        names = [s.name for s in self.inputs]
        unknown = [k for k in feeds if k not in names]
        if unknown:
            raise ValueError(
                f"signature {self.name!r}: unknown input {unknown[0]!r}; expected {names}"
            )
        missing = [k for k in names if k not in feeds]
        if missing:
            raise ValueError(f"signature {self.name!r}: missing input {missing[0]!r}")
        arrays = [self._check(s, feeds[s.name]) for s in self.inputs]
        try:
            sym = self.graph.bind(arrays, names)
        except ValueError as exc:
            raise ValueError(f"signature {self.name!r}: {exc}") from None
        outs = self.graph.run(arrays, sym)
        return {s.name: o for s, o in zip(self.outputs, outs)}

    def __call__(self, *arrays: Any) -> Any:
        """Run on arrays in input order; the outputs nest as the original model's did."""
        if len(arrays) != len(self.inputs):
            raise TypeError(
                f"signature {self.name!r} takes {len(self.inputs)} input(s) "
                f"({', '.join(s.name for s in self.inputs)}), got {len(arrays)}"
            )
        res = self.run({s.name: a for s, a in zip(self.inputs, arrays)})
        outs = [res[s.name] for s in self.outputs]
        if self.graph.out_tree is None:
            return outs[0] if len(outs) == 1 else tuple(outs)
        return unflatten(self.graph.out_tree, outs)

    def __repr__(self) -> str:
        return f"<Signature {self.name}: {len(self.inputs)} inputs, {len(self.outputs)} outputs>"


class Model:
    """A loaded saved model: ``signatures`` (name -> :class:`Signature`), ``preprocessing``
    (the manifest's dict or None); calling it runs ``serving_default`` on positional arrays
    and returns NumPy arrays nested as the original model returned them."""

    def __init__(
        self, path: str, signatures: dict[str, Signature], manifest: dict[str, Any]
    ) -> None:
        self.path, self.signatures, self.manifest = path, signatures, manifest
        self.preprocessing = manifest.get("preprocessing")

    def __call__(self, *arrays: Any) -> Any:
        sig = self.signatures.get("serving_default")
        if sig is None:
            raise KeyError(
                f"{self.path}: no 'serving_default' signature (has {sorted(self.signatures)}); "
                "use model.signatures[name]"
            )
        return sig(*arrays)

    def __repr__(self) -> str:
        return f"<ember_lite.Model {self.path}: signatures {sorted(self.signatures)}>"


def _safe_rel(root: str, name: Any) -> str:
    if (
        not isinstance(name, str)
        or not name
        or name.startswith("/")
        or "\\" in name
        or any(p in ("", ".", "..") for p in name.split("/"))
    ):
        raise LiteFormatError(f"{root}/{MANIFEST}: the file list names {name!r}, not a plain path")
    return os.path.join(root, *name.split("/"))


def _present(root: str) -> set[str]:
    out = set()
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(d, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if os.path.islink(full):
                raise LiteFormatError(
                    f"{root}: {rel} is a symbolic link; a saved model holds files"
                )
            if name in files:
                out.add(rel)
    return out - {MANIFEST}


def _verify(root: str, files: Any) -> dict[str, bytes]:
    """The directory holds exactly the listed files, each of its listed size and SHA-256;
    returns their bytes (read once: what is checked is what is used)."""
    where = f"{root}/{MANIFEST}"
    if not isinstance(files, dict):
        raise LiteFormatError(f"{where}: 'files' must map file names to their size and sha256")
    for name, info in files.items():
        _safe_rel(root, name)
        if name == MANIFEST or not (
            isinstance(info, dict)
            and isinstance(info.get("sha256"), str)
            and type(info.get("bytes")) is int
        ):
            raise LiteFormatError(f"{where}: bad entry for {name!r} in 'files'")
    present = _present(root)
    extra = sorted(present - set(files))
    if extra:
        raise LiteFormatError(
            f"{root}: unexpected file {extra[0]} (not listed in {MANIFEST}): the directory was "
            "modified after it was saved"
        )
    data: dict[str, bytes] = {}
    for name, info in sorted(files.items()):
        if name not in present:
            raise LiteFormatError(f"{root}: file {name} is missing (listed in {MANIFEST})")
        with open(_safe_rel(root, name), "rb") as fh:
            blob = fh.read()
        if len(blob) != info["bytes"]:
            what = "truncated" if len(blob) < info["bytes"] else "longer than saved"
            raise LiteFormatError(
                f"{root}: file {name} is {what}: {len(blob)} bytes, the manifest says "
                f"{info['bytes']}"
            )
        if hashlib.sha256(blob).hexdigest() != info["sha256"]:
            raise LiteFormatError(
                f"{root}: file {name} is damaged or was modified: its SHA-256 differs from the "
                "manifest's"
            )
        data[name] = blob
    return data


def load(path: Any) -> Model:
    """Load a saved-model directory written by ``ember.export.save``.

    Example (the directory written by ember, which ember_lite does not need):
        >>> import os, tempfile, ember, ember.export
        >>> d = os.path.join(tempfile.mkdtemp(), "m")
        >>> _ = ember.export.save(ember.nn.Linear(3, 2), d, ember.randn(4, 3))
        >>> m = load(d)
        >>> m.signatures["serving_default"].inputs
        [TensorSpec(name='input', dtype='float32', shape=(None, 3))]
        >>> m(np.ones((5, 3), np.float32)).shape
        (5, 2)
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise LiteFormatError(f"{root}: not a saved-model directory (no such directory)")
    mpath = os.path.join(root, MANIFEST)
    try:
        with open(mpath, "rb") as fh:
            manifest = json.loads(fh.read())
    except FileNotFoundError:
        raise LiteFormatError(f"{root}: not a saved model ({MANIFEST} is missing)") from None
    except ValueError as exc:
        raise LiteFormatError(f"{mpath}: not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise LiteFormatError(f"{mpath}: not an ember saved model (no format {_FORMAT!r})")
    if manifest.get("version") != _VERSION:
        raise LiteFormatError(
            f"{mpath}: saved-model version {manifest.get('version')}, ember_lite reads {_VERSION}"
        )
    blobs = _verify(root, manifest.get("files"))
    wname = manifest.get("weights")
    weights: dict[str, np.ndarray] = {}
    if wname:
        if wname not in blobs:
            raise LiteFormatError(f"{mpath}: the weights file {wname!r} is not listed in 'files'")
        weights = read_safetensors(blobs[wname], wname)
    sigs: dict[str, Signature] = {}
    table = manifest.get("signatures")
    if not isinstance(table, dict) or not table:
        raise LiteFormatError(f"{mpath}: no signatures")
    for name, s in table.items():
        where = f"{mpath}: signature {name!r}"
        try:
            gname = s["graph"]
            ins = [_spec(d, where) for d in s["inputs"]]
            outs = [_spec(d, where) for d in s["outputs"]]
        except (KeyError, TypeError) as exc:
            raise LiteFormatError(f"{where}: malformed entry ({exc})") from None
        for listed in (gname, gname + ".bin"):
            if listed not in blobs:
                raise LiteFormatError(f"{where}: its file {listed!r} is not listed in 'files'")
        graph = Graph(_safe_rel(root, gname), weights, blobs[gname], blobs[gname + ".bin"])
        sigs[name] = Signature(name, graph, ins, outs)
    return Model(root, sigs, manifest)
