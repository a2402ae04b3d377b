"""``ember.export.load``: a saved-model directory verified, then rebuilt as runnable
signatures that need no Python code of the original model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _dtype as dt
from .._tensor import Tensor
from ..compiler.ir import Dim, Graph
from . import _format as F
from ._format import SavedModelError, TensorSpec
from ._run import run_graph

__all__ = ["SavedModel", "Signature", "load"]


class Signature:
    """One entry point of a saved model: ``inputs``/``outputs`` (lists of
    :class:`TensorSpec`), :meth:`run` (NumPy in and out, by name) and ``sig(*tensors)``
    (ember tensors, the original result structure, differentiable)."""

    def __init__(
        self, name: str, graph: Graph, inputs: list[TensorSpec], outputs: list[TensorSpec]
    ):
        self.name, self.graph = name, graph
        self.inputs, self.outputs = inputs, outputs

    def __repr__(self) -> str:
        def fmt(specs: list[TensorSpec]) -> str:
            return ", ".join(
                f"{s.name}: {s.dtype}[{', '.join('?' if d is None else str(d) for d in s.shape)}]"
                for s in specs
            )

        return f"Signature({self.name!r}, ({fmt(self.inputs)}) -> ({fmt(self.outputs)}))"

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run on NumPy arrays given by input name; returns output name -> array.

        A missing or unknown name, a wrong dtype or a wrong shape raises ``ValueError``
        naming the input, what was expected and what was given. Lists and scalars are
        converted to the input's dtype; arrays must have it already.

        Example:
            >>> import os, tempfile, numpy as np, ember, ember.export
            >>> d = os.path.join(tempfile.mkdtemp(), "m")
            >>> _ = ember.export.save(ember.nn.Linear(3, 2), d, ember.randn(4, 3))
            >>> sig = ember.export.load(d).signatures["serving_default"]
            >>> sig.run({"input": np.ones((5, 3), np.float32)})["output_0"].shape
            (5, 2)
        """
        from ..autograd import no_grad

        if not isinstance(feeds, Mapping):
            raise TypeError(
                f"signature {self.name!r}: run takes a dict {{input name: array}}, got "
                f"{type(feeds).__name__}"
            )
        names = [s.name for s in self.inputs]
        unknown = [k for k in feeds if k not in names]
        if unknown:
            raise ValueError(
                f"signature {self.name!r}: unknown input {unknown[0]!r}; its inputs are "
                f"{', '.join(names)}"
            )
        missing = [n for n in names if n not in feeds]
        if missing:
            raise ValueError(
                f"signature {self.name!r}: missing input {missing[0]!r}; its inputs are "
                f"{', '.join(names)}"
            )
        arrays = [self._array(feeds[s.name], s) for s in self.inputs]
        with no_grad():
            outs = run_graph(self.graph, self._checked(arrays))
        return {s.name: np.asarray(o._data) for s, o in zip(self.outputs, outs)}

    def __call__(self, *args: Any) -> Any:
        """Run on ember tensors (or NumPy arrays) in input order; returns ember tensors
        nested as the original model returned them."""
        from ..compiler.trace import unflatten

        if len(args) != len(self.inputs):
            raise TypeError(
                f"signature {self.name!r} takes {len(self.inputs)} input(s) "
                f"({', '.join(s.name for s in self.inputs)}), got {len(args)}"
            )
        from .._creation import from_numpy

        arrays = [self._array(a, s) for a, s in zip(args, self.inputs)]
        # tensors are used as given (their autograd history carries through)
        tensors = [
            a if isinstance(a, Tensor) else from_numpy(np.ascontiguousarray(x))
            for a, x in zip(args, arrays)
        ]
        outs = run_graph(self.graph, self._checked([t._data for t in tensors], tensors))
        return unflatten(self.graph.out_tree, outs)

    # -- input checks
    def _array(self, a: Any, spec: TensorSpec) -> np.ndarray:
        want = np.dtype(dt.as_dtype(spec.dtype).np)
        if isinstance(a, Tensor):
            a = a._data
        if isinstance(a, (np.ndarray, np.generic)):
            a = np.asarray(a)
            if a.dtype != want:
                raise ValueError(
                    f"signature {self.name!r}: input {spec.name!r} has dtype {a.dtype}, "
                    f"expected {spec.dtype}"
                )
            return a
        try:
            return np.asarray(a, dtype=want)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"signature {self.name!r}: input {spec.name!r} is not an array of "
                f"{spec.dtype} ({exc})"
            ) from None

    def _checked(
        self, arrays: list[np.ndarray], tensors: list[Tensor] | None = None
    ) -> list[Tensor]:
        """Shapes against the graph (fixed sizes equal, dynamic sizes consistent between
        inputs); returns the tensors to run on."""
        from .._creation import from_numpy

        sizes: dict[str, tuple[int, str, int]] = {}
        for a, s, v in zip(arrays, self.inputs, self.graph.inputs):
            want = "(" + ", ".join("None" if d is None else str(d) for d in s.shape) + ")"
            if a.ndim != len(v.shape):
                raise ValueError(
                    f"signature {self.name!r}: input {s.name!r} has shape {tuple(a.shape)}, "
                    f"expected {want} ({len(v.shape)} dimensions)"
                )
            for ax, (n, d) in enumerate(zip(a.shape, v.shape)):
                if not isinstance(d, Dim):
                    if n != d:
                        raise ValueError(
                            f"signature {self.name!r}: input {s.name!r} has shape "
                            f"{tuple(a.shape)}, expected {want} (axis {ax} must be {d})"
                        )
                    continue
                q, r = divmod(n - d.offset, d.coef)
                if r or q < 0:
                    raise ValueError(
                        f"signature {self.name!r}: input {s.name!r} axis {ax} has size {n}, "
                        f"expected a size of the form {d}"
                    )
                seen = sizes.setdefault(d.name, (q, s.name, ax))
                if seen[0] != q:
                    raise ValueError(
                        f"signature {self.name!r}: input {s.name!r} axis {ax} has size {n}, "
                        f"but input {seen[1]!r} axis {seen[2]} sets the shared dynamic size "
                        f"{d.name} to {seen[0]}"
                    )
        if tensors is not None:
            return tensors
        return [from_numpy(np.ascontiguousarray(a)) for a in arrays]


class SavedModel:
    """A loaded saved model (see :func:`load`): ``signatures`` by name, ``weights`` (name ->
    tensor, shared by the signatures), ``preprocessing`` (the manifest's dict or None),
    ``manifest`` and ``path``. Calling it runs ``serving_default``."""

    def __init__(
        self,
        path: str,
        manifest: dict[str, Any],
        signatures: dict[str, Signature],
        weights: dict[str, Tensor],
    ):
        self.path, self.manifest = path, manifest
        self.signatures = signatures
        self.weights = weights
        self.preprocessing: dict[str, Any] | None = manifest.get("preprocessing")

    def __repr__(self) -> str:
        return f"SavedModel({self.path!r}, signatures={list(self.signatures)})"

    def __call__(self, *args: Any) -> Any:
        sig = self.signatures.get("serving_default")
        if sig is None:
            raise KeyError(
                f"{self.path}: no 'serving_default' signature; call one of "
                f"{list(self.signatures)} through m.signatures[name]"
            )
        return sig(*args)

    def parameters(self) -> list[Tensor]:
        """The weight tensors (set ``requires_grad`` on them to fine-tune)."""
        return list(self.weights.values())

    def preprocess(self, x: Any) -> np.ndarray:
        """Raw inputs to the model's input form, as the manifest's ``preprocessing`` says.

        A model exported by ``ember export`` from a run config records what its training data
        went through (the dataset's scaling of raw values, the config's deterministic
        ``data.transforms``): that is applied here. Without ``preprocessing`` the input is
        returned as an array; another dict is metadata this method cannot apply (an error).
        """
        from ._preprocess import apply

        return apply(self.preprocessing, x, self.path)


def load(dir: str | os.PathLike) -> SavedModel:
    """Load a directory written by :func:`ember.export.save`.

    Every file is verified first (the manifest's format and version, the SHA-256 and size of
    each listed file, no unlisted files, every captured weight present with its dtype and
    shape); any problem raises :class:`SavedModelError` naming the file, and no model is
    returned. The model runs eagerly on ember ops, with no need for the code that defined
    it.

    Example:
        >>> import os, tempfile, ember, ember.export
        >>> d = os.path.join(tempfile.mkdtemp(), "m")
        >>> _ = ember.export.save(ember.nn.Linear(3, 2), d, ember.randn(4, 3))
        >>> m = ember.export.load(d)
        >>> m.signatures["serving_default"].inputs
        [TensorSpec(name='input', dtype='float32', shape=(None, 3))]
        >>> tuple(m(ember.ones(7, 3)).shape)
        (7, 2)
    """
    root = os.fspath(dir)
    manifest = F.read_manifest(root)
    F.verify_files(root, manifest.get("files"))
    listed = manifest["files"]
    wrel = manifest["weights"]
    for name, s in manifest["signatures"].items():
        if s["graph"] not in listed or s["graph"] + ".bin" not in listed:
            raise SavedModelError(
                f"{root}/{F.MANIFEST}: signature {name!r}: its graph files are not in the file list"
            )
    if wrel not in listed:
        raise SavedModelError(
            f"{root}/{F.MANIFEST}: the weights file {wrel} is not in the file list"
        )
    arrays = F.read_weights(root, wrel)
    from .._creation import from_numpy

    weights = {k: from_numpy(a) for k, a in arrays.items()}
    sigs = {}
    for name, s in manifest["signatures"].items():
        g = _load_graph(root, s["graph"], arrays)
        g.captured_tensors = [weights[n] for n in g.captured_names]
        where = f"{root}/{F.MANIFEST}: signature {name!r}"
        ins = [TensorSpec.from_json(x, where) for x in s["inputs"]]
        outs = [TensorSpec.from_json(x, where) for x in s["outputs"]]
        _match(g, ins, outs, where, s["graph"])
        sigs[name] = Signature(name, g, ins, outs)
    return SavedModel(root, manifest, sigs, weights)


def _load_graph(root: str, rel: str, arrays: dict[str, np.ndarray]) -> Graph:
    from ..compiler.serialize import load as load_graph

    try:
        return load_graph(os.path.join(root, *rel.split("/")), weights=arrays)
    except SavedModelError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise SavedModelError(f"{root}: graph file {rel}: {exc}") from None


def _match(g: Graph, ins: list[TensorSpec], outs: list[TensorSpec], where: str, rel: str) -> None:
    """The manifest's specs agree with the graph (names aside)."""
    from ._trace import graph_specs

    gin, gout = graph_specs(g, [s.name for s in ins], [s.name for s in outs])
    if len(ins) != len(g.inputs) or len(outs) != len(g.outputs) or gin != ins or gout != outs:
        raise SavedModelError(
            f"{where}: the inputs/outputs in the manifest do not match the graph file {rel}"
        )
