"""Small Keras utilities: ``to_categorical``, ``normalize``, ``set_random_seed``,
``clear_session`` and ``plot_model``.

Example:
    >>> from ember.keras.utils import to_categorical
    >>> to_categorical([0, 2], num_classes=3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import itertools
import os

import numpy as np

__all__ = ["clear_session", "normalize", "plot_model", "set_random_seed", "to_categorical"]


def to_categorical(x, num_classes: int | None = None):
    """One-hot encode integer labels (class axis last; a trailing axis of size 1 is dropped).
    NumPy input gives a float64 array and an ember tensor a float32 tensor, as Keras does
    with NumPy and backend tensors. Labels outside ``[0, num_classes)`` raise ``ValueError``.
    """
    import ember

    is_tensor = isinstance(x, ember.Tensor)
    y = np.asarray(x.detach().numpy() if is_tensor else x)
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError("to_categorical: labels must be integers")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    n = int(num_classes) if num_classes is not None else int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= n):
        bad = y[(y < 0) | (y >= n)].flat[0]
        raise ValueError(
            f"to_categorical: label {bad} is out of range for {n} classes "
            f"(labels must be in [0, {n}))"
        )
    out = np.eye(n, dtype=np.float64)[y]
    return ember.tensor(out.astype(np.float32)) if is_tensor else out


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """``x`` divided by its ``order``-norm along ``axis`` (zero vectors stay zero).

    Example:
        >>> import ember
        >>> from ember import keras
        >>> from ember.keras import utils
        >>> utils.normalize([[3.0, 4.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(n == 0, 1, n)


def clear_session() -> None:
    """Reset automatic layer names (``dense``, ``dense_1``, ...).

    Example:
        >>> from ember import keras
        >>> keras.utils.clear_session()
        >>> keras.layers.Dense(1).name
        'dense'

    """
    from .layers.base import _NAME_COUNTS

    _NAME_COUNTS.clear()


def set_random_seed(seed: int) -> None:
    """Seed ember (weights, dropout, shuffling, ``keras.random``), NumPy's global generator
    and Python's ``random``.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> from ember.keras import utils
        >>> utils.set_random_seed(1)
        >>> a = ember.rand(2)
        >>> utils.set_random_seed(1)
        >>> bool((a == ember.rand(2)).all())
        True
    """
    import random

    import ember

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"set_random_seed: seed must be an int, got {seed!r}")
    ember.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def plot_model(
    model,
    to_file="model.png",
    show_shapes=False,
    show_dtype=False,
    show_layer_names=False,
    rankdir="TB",
    expand_nested=False,
    dpi=200,
    show_layer_activations=False,
    show_trainable=False,
    splines="ortho",
    **kwargs,
):
    """Draw the layer graph with pydot and Graphviz (``to_file``: .png, .svg, .dot, ...).
    Raises ``ImportError`` naming what is missing when pydot or Graphviz is not installed.
    """
    if kwargs:
        raise TypeError(f"plot_model: unexpected arguments {sorted(kwargs)}")
    if expand_nested:
        raise NotImplementedError("plot_model: expand_nested=True is not supported")
    try:
        import pydot
    except ImportError:
        raise ImportError(
            "plot_model needs pydot (`pip install pydot`) and Graphviz "
            "(https://graphviz.org/download/) installed"
        ) from None
    graph = pydot.Dot(graph_type="digraph", rankdir=rankdir, dpi=dpi, splines=splines)
    layers = list(model.layers)
    ids = {id(lyr): str(i) for i, lyr in enumerate(layers)}
    for lyr in layers:
        graph.add_node(pydot.Node(ids[id(lyr)], label=_label(lyr, locals()), shape="record"))
    for a, b in _edges(model, layers):
        graph.add_edge(pydot.Edge(ids[id(a)], ids[id(b)]))
    ext = os.path.splitext(os.fspath(to_file))[1].lstrip(".") or "png"
    try:
        if ext == "dot":
            graph.write_raw(os.fspath(to_file))
        else:
            graph.write(os.fspath(to_file), format=ext)
    except (FileNotFoundError, OSError) as e:
        raise ImportError(
            f"plot_model: Graphviz's `dot` program is needed to write {to_file!r} "
            f"(https://graphviz.org/download/): {e}"
        ) from e
    return graph


def _label(layer, opts) -> str:
    kind = type(layer).__name__
    parts = [f"{layer.name} ({kind})" if opts["show_layer_names"] else kind]
    if opts["show_layer_activations"] and getattr(layer, "activation", None) is not None:
        act = layer.activation
        parts.append(f"activation: {getattr(act, '__name__', act)}")
    if opts["show_shapes"]:
        shape = getattr(layer, "_output_shape", None)
        if shape is None and hasattr(layer, "output"):
            shape = layer.output.shape
        parts.append(f"output: {shape}")
    if opts["show_dtype"]:
        parts.append("dtype: float32")
    if opts["show_trainable"]:
        parts.append(f"trainable: {getattr(layer, 'trainable', True)}")
    return "|".join(p.replace("{", "(").replace("}", ")") for p in parts)


def _edges(model, layers):
    nodes = getattr(model, "_nodes", None)
    if getattr(model, "_is_graph", False) and nodes is not None:
        for node, _ in nodes:
            for t in node.inputs:
                src = t._history[0] if t._history else None
                if src is not None:
                    yield src, node.layer
        return
    yield from itertools.pairwise(layers)
