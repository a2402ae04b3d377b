"""``ember.export.save``: trace each signature, write the directory as a whole."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..compiler.ir import Graph
from . import _format as F
from ._format import SavedModelError
from ._trace import (
    check_names,
    default_input_names,
    graph_specs,
    parse_signatures,
    trace_entry,
)

__all__ = ["save"]


def save(
    model_or_fn: Any,
    dir: str | os.PathLike,
    example_inputs: Any = None,
    *,
    signatures: Mapping[str, Any] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    preprocessing: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Save a model (or function) as a self-contained directory that :func:`load` runs
    without the Python code that defined it.

    Each signature is traced in eval mode without autograd into ember's graph IR (the
    tracer of :func:`ember.compile`); its graph goes to ``graph.<name>.json`` and every
    captured array (parameters, buffers) to the shared ``weights.safetensors``.
    ``saved_model.json`` records names, dtypes and shapes of inputs and outputs (``None``
    for the dynamic batch axis), ``preprocessing`` and the SHA-256 of every file.

    Args:
        model_or_fn: a Module (``ember.nn`` or ``ember.keras``) or a function of tensors;
            it becomes the ``serving_default`` signature. May be None if ``signatures``
            gives every entry point.
        dir: the directory to create.
        example_inputs: a tensor (or NumPy array) or a tuple of them, as the model is called.
        signatures: more named entry points: ``{name: fn}``, ``{name: "method_name"}``,
            ``{name: (fn, example_inputs)}`` or ``{name: {"fn": ..., "example_inputs": ...,
            "input_names": ..., "output_names": ...}}``.
        input_names, output_names: names of the flat inputs/outputs (default: the
            parameter names of ``forward``, and ``output_0``, ``output_1``, ...).
        dynamic_batch: make axis 0 of the inputs symbolic (any batch size).
        preprocessing: a JSON-able dict stored in the manifest (see
            :meth:`SavedModel.preprocess`), e.g. what a run config declares.
        overwrite: replace an existing saved model (or empty folder) at ``dir``.

    Returns:
        The directory path. The directory appears complete or not at all: it is written
        beside ``dir`` under a temporary name and renamed into place.

    Example:
        >>> import os, tempfile, ember, ember.export
        >>> net = ember.nn.Sequential(ember.nn.Linear(4, 2), ember.nn.ReLU())
        >>> d = ember.export.save(net, os.path.join(tempfile.mkdtemp(), "m"), ember.randn(3, 4))
        >>> sorted(os.listdir(d))
        ['graph.serving_default.json', 'graph.serving_default.json.bin', 'saved_model.json', 'weights.safetensors']
    """  # noqa: E501 (the listing is one doctest line)
    target = os.fspath(dir)
    entries = parse_signatures(model_or_fn, example_inputs, signatures, input_names, output_names)
    pre = _check_preprocessing(preprocessing)
    F.check_target(target, overwrite)
    traced = []
    for e in entries:
        g = trace_entry(e, dynamic_batch)
        ins = check_names(e.input_names, len(g.inputs), "input_names", e.name)
        outs = check_names(e.output_names, len(g.outputs), "output_names", e.name)
        if ins is None:
            ins = default_input_names(e.fn, len(g.inputs))
        if outs is None:
            outs = [f"output_{i}" for i in range(len(g.outputs))]
        traced.append((e.name, g, ins, outs))
    weights = _share_weights([g for _, g, _, _ in traced])

    tmp = F.new_temp_dir(target)
    try:
        sigs = {}
        for name, g, ins, outs in traced:
            rel = f"graph.{name}.json"
            _save_graph(g, os.path.join(tmp, rel))
            in_specs, out_specs = graph_specs(g, ins, outs)
            sigs[name] = {
                "graph": rel,
                "inputs": [s.to_json() for s in in_specs],
                "outputs": [s.to_json() for s in out_specs],
            }
        F.write_weights(os.path.join(tmp, F.WEIGHTS), weights)
        files = {}
        for rel in F.list_files(tmp):
            digest, size = F.file_digest(os.path.join(tmp, *rel.split("/")))
            files[rel] = {"sha256": digest, "bytes": size}
        from .. import __version__

        manifest = {
            "format": F.FORMAT,
            "version": F.VERSION,
            "ember_version": __version__,
            "signatures": sigs,
            "weights": F.WEIGHTS,
            "preprocessing": pre,
            "files": files,
        }
        with open(os.path.join(tmp, F.MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, allow_nan=False)
            fh.write("\n")
        F.commit_dir(tmp, target)
    except BaseException:
        F.remove_dir(tmp)
        raise
    return target


def _save_graph(g: Graph, path: str) -> None:
    from ..compiler.serialize import GraphFormatError
    from ..compiler.serialize import save as save_graph

    try:
        save_graph(g, path, external_weights=True)
    except GraphFormatError as exc:
        raise SavedModelError(f"ember.export.save: {os.path.basename(path)}: {exc}") from exc


def _share_weights(graphs: list[Graph]) -> dict[str, np.ndarray]:
    """One entry per captured tensor across all graphs, by captured name; two different
    tensors with the same name get distinct names (the graphs are renamed to match)."""
    by_id: dict[int, str] = {}
    out: dict[str, np.ndarray] = {}
    for g in graphs:
        names = []
        for t, n in zip(g.captured_tensors, g.captured_names):
            name = by_id.get(id(t))
            if name is None:
                name, k = n, 1
                while name in out:
                    name, k = f"{n}_{k}", k + 1
                by_id[id(t)] = name
                out[name] = np.ascontiguousarray(t._data)
            names.append(name)
        g.captured_names = names
    return out


def _check_preprocessing(pre: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if pre is None:
        return None
    if not isinstance(pre, Mapping):
        raise TypeError(
            f"ember.export.save: preprocessing must be a dict or None, got {type(pre).__name__}"
        )
    try:
        return json.loads(json.dumps(dict(pre), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"ember.export.save: preprocessing must be plain JSON: {exc}") from None
