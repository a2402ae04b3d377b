"""``plot_model`` (Keras' names and arguments) and the layer table behind it, for Keras
``Sequential``/functional models and any ``nn.Module``.

An ``nn.Module`` is run once on an example input (``input_shape=`` or ``example_input=``) with
forward hooks on its leaf modules: each leaf's output shape gives a node; the edges come from
walking the autograd graph of each leaf's inputs back to earlier leaves' outputs, so inputs
that went through plain functions (``x + y``, ``relu``, ``flatten``) still find their
producers.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

__all__ = ["LayerRow", "layer_rows", "plot_model", "summary_table"]


@dataclass
class LayerRow:
    """One node of the diagram / one line of the table."""

    name: str
    kind: str
    shape: str
    params: int
    trainable: bool = True
    activation: str | None = None
    parents: list[int] = field(default_factory=list)  # indices of earlier rows


def _is_keras(model) -> bool:
    return hasattr(model, "layers") and hasattr(model, "compile")


def _keras_rows(model) -> list[LayerRow]:
    from ember.keras.layers.base import weight_counts
    from ember.keras.utils import _edges

    if not getattr(model, "built", True):
        raise ValueError(
            f"plot_model: the model {model.name!r} is not built yet; call it on data, call "
            "model.build(input_shape) or give the first layer an input_shape"
        )
    layers = list(model.layers)
    index = {id(lyr): i for i, lyr in enumerate(layers)}
    rows = []
    for lyr in layers:
        shape = getattr(lyr, "_output_shape", None)
        if shape is None and hasattr(lyr, "output"):
            shape = lyr.output.shape
        act = getattr(lyr, "activation", None)
        rows.append(
            LayerRow(
                name=lyr.name,
                kind=type(lyr).__name__,
                shape=str(tuple(shape)) if shape is not None else "?",
                params=sum(weight_counts(lyr)),
                trainable=bool(getattr(lyr, "trainable", True)),
                activation=getattr(act, "__name__", None) if act is not None else None,
            )
        )
    for a, b in _edges(model, layers):
        if id(a) in index and id(b) in index:
            rows[index[id(b)]].parents.append(index[id(a)])
    return rows


def _example(model, input_shape, example_input):
    import ember

    if example_input is not None:
        x = example_input
        return x if isinstance(x, (tuple, list)) else (x,)
    if input_shape is None:
        raise ValueError(
            f"plot_model: an nn.Module ({type(model).__name__}) has no fixed input shape; "
            "pass input_shape=(C, H, W) (one sample, without the batch) or example_input="
        )
    shapes = input_shape if isinstance(input_shape[0], (tuple, list)) else [input_shape]
    return tuple(ember.zeros((1, *map(int, s))) for s in shapes)


def _sources(t, tensor_row: dict, node_row: dict, limit: int = 20000) -> set[int]:
    """Rows whose outputs ``t`` was computed from, found by walking the autograd graph back
    through plain-function ops (``x + y``, ``relu``) until module outputs are met."""
    if id(t) in tensor_row:
        return {tensor_row[id(t)]}
    found: set[int] = set()
    stack, seen = [getattr(t, "grad_fn", None)], set[int]()
    while stack and len(seen) < limit:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        if id(n) in node_row:
            found.add(node_row[id(n)])
            continue
        for e in getattr(n, "edges", ()):
            if e is None:
                continue
            if hasattr(e, "edges"):
                stack.append(e)
            elif id(e) in tensor_row:
                found.add(tensor_row[id(e)])
    return found


def _module_rows(model, input_shape=None, example_input=None) -> list[LayerRow]:
    import ember

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    if not leaves:
        leaves = [(type(model).__name__.lower(), model)]
    inputs = tuple(
        x.detach().requires_grad_(x.is_floating_point()) if isinstance(x, ember.Tensor) else x
        for x in _example(model, input_shape, example_input)
    )
    shapes = " ".join(str(tuple(x.shape)) for x in inputs if isinstance(x, ember.Tensor))
    rows: list[LayerRow] = [LayerRow("input", "Input", shapes, 0)]
    tensor_row: dict[int, int] = {id(x): 0 for x in inputs}  # id(tensor) -> row
    node_row: dict[int, int] = {}  # id(autograd node) -> row
    keep = list(inputs)  # keeps tensors alive so that their ids are not reused

    def hook_for(name):
        def hook(mod, args, out):
            parents: set[int] = set()
            for a in args:
                if isinstance(a, ember.Tensor):
                    parents |= _sources(a, tensor_row, node_row)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            tensors = [o for o in outs if isinstance(o, ember.Tensor)]
            own = list(mod.parameters(recurse=False))
            rows.append(
                LayerRow(
                    name,
                    type(mod).__name__,
                    " ".join(str(tuple(o.shape)) for o in tensors) or "?",
                    int(sum(p.numel() for p in own)),
                    all(p.requires_grad for p in own),
                    parents=sorted(parents) or [len(rows) - 1],
                )
            )
            for o in tensors:
                tensor_row[id(o)] = len(rows) - 1
                if getattr(o, "grad_fn", None) is not None:
                    node_row[id(o.grad_fn)] = len(rows) - 1
                keep.append(o)

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in leaves]
    was = model.training
    model.eval()
    try:
        model(*inputs)  # with autograd on: its graph links leaves through plain functions
    finally:
        for h in handles:
            h.remove()
        if was:
            model.train()
    return rows


def layer_rows(model, input_shape=None, example_input=None) -> list[LayerRow]:
    """The model's layers in call order with output shapes, parameter counts and parents.

    Example:
        >>> import ember.nn as nn
        >>> from ember.utils.plot_model_graph import layer_rows
        >>> rows = layer_rows(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), input_shape=(4,))
        >>> [(r.kind, r.shape, r.params) for r in rows]
        [('Input', '(1, 4)', 0), ('Linear', '(1, 3)', 15), ('ReLU', '(1, 3)', 0)]
    """
    if _is_keras(model):
        return _keras_rows(model)
    return _module_rows(model, input_shape, example_input)


def summary_table(model, input_shape=None, example_input=None, width: int = 88) -> str:
    """The layer table as text: name (type), output shape, parameters, and the totals.

    Example:
        >>> import ember.nn as nn
        >>> from ember.utils.plot_model_graph import summary_table
        >>> print(summary_table(nn.Linear(4, 3), input_shape=(4,)).splitlines()[-1])
        Total params: 15 (trainable 15)
    """
    rows = layer_rows(model, input_shape, example_input)
    w0 = max(30, *(len(f"{r.name} ({r.kind})") + 2 for r in rows))
    w1 = max(22, *(len(r.shape) + 2 for r in rows))
    lines = [f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>12}", "-" * (w0 + w1 + 12)]
    for r in rows:
        lines.append(f"{r.name + ' (' + r.kind + ')':<{w0}}{r.shape:<{w1}}{r.params:>12,}")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines += ["-" * (w0 + w1 + 12), f"Total params: {total:,} (trainable {trainable:,})"]
    return "\n".join(lines)


def _esc(s: str) -> str:
    for c in '\\{}|<>"':
        s = s.replace(c, "\\" + c)
    return s


def plot_model(
    model,
    to_file: str = "model.png",
    show_shapes: bool = True,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 96,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    input_shape=None,
    example_input=None,
):
    """Draw the model's layer graph with Graphviz: one box per layer with its type, output
    shape and parameter count. ``to_file``'s extension picks the format (``.png``, ``.svg``,
    ``.pdf``, ``.dot``). Needs the ``pydot`` package and Graphviz's ``dot`` program (Debian:
    ``apt-get install graphviz``); an ``ImportError`` names whichever is missing.

    ``nn.Module`` models need ``input_shape`` (one sample) or ``example_input``.

    Example:
        >>> import os, tempfile, ember.nn as nn
        >>> from ember.utils import plot_model
        >>> path = os.path.join(tempfile.mkdtemp(), "m.dot")
        >>> g = plot_model(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), path, input_shape=(4,))
        >>> "Linear" in open(path).read()
        True
    """
    if expand_nested:
        raise NotImplementedError("plot_model: expand_nested=True is not supported")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"plot_model: rankdir must be TB, LR, BT or RL, got {rankdir!r}")
    to_file = os.fspath(to_file)
    ext = os.path.splitext(to_file)[1].lstrip(".").lower() or "png"
    try:
        import pydot
    except ImportError:
        raise ImportError(
            "plot_model needs the pydot package (pip install pydot) and Graphviz's `dot` "
            "program (Debian: apt-get install graphviz)"
        ) from None
    if ext != "dot" and shutil.which("dot") is None:
        raise ImportError(
            f"plot_model: Graphviz's `dot` program is not on PATH, needed to write a .{ext} "
            "file (Debian: apt-get install graphviz; https://graphviz.org/download/); a .dot "
            "file needs no Graphviz"
        )
    rows = layer_rows(model, input_shape, example_input)
    g = pydot.Dot(graph_type="digraph", rankdir=rankdir, dpi=dpi, bgcolor="white")
    g.set_node_defaults(shape="record", fontname="Helvetica", fontsize="11", style="rounded")
    for i, r in enumerate(rows):
        head = f"{r.name} ({r.kind})" if show_layer_names else r.kind
        parts = [_esc(head)]
        if show_shapes:
            parts.append(_esc(f"output: {r.shape}"))
        if r.kind not in ("Input", "InputLayer"):
            parts.append(f"params: {r.params:,}")
        if show_layer_activations and r.activation:
            parts.append(_esc(f"activation: {r.activation}"))
        if show_dtype:
            parts.append("dtype: float32")
        if show_trainable:
            parts.append(f"trainable: {r.trainable}")
        label = "{" + "|".join(parts) + "}" if rankdir in ("TB", "BT") else "|".join(parts)
        g.add_node(pydot.Node(str(i), label=label))
    for i, r in enumerate(rows):
        for p in r.parents:
            g.add_edge(pydot.Edge(str(p), str(i)))
    if ext == "dot":
        g.write(to_file, format="raw")
    else:
        try:
            g.write(to_file, format=ext)
        except (OSError, AssertionError) as e:
            raise RuntimeError(f"plot_model: Graphviz could not write {to_file}: {e}") from e
    return g
