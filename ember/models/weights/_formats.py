"""Readers for weight files written by other frameworks: Keras ``.weights.h5`` (h5py) and ONNX
initializers (onnx). Both read arrays only; nothing in the file is executed."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

__all__ = [
    "keras_h5_layer_names",
    "keras_layer_order",
    "load_keras_weights",
    "load_onnx_initializers",
]


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"reading this weight file needs {module}: pip install 'ember[{extra}]'"
        ) from None


def _snake(name: str) -> str:
    # Keras' to_snake_case: "BatchNormalization" -> "batch_normalization", "Conv2D" -> "conv2d"
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def keras_h5_layer_names(layers) -> list[str]:
    """The group names Keras 3 gives ``layers`` in a ``.weights.h5`` file: the snake-case class
    name, with ``_1``, ``_2``... for repeats in layer order (not the layers' own names).

    Example:
        >>> from ember import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
        >>> keras_h5_layer_names(m.layers)
        ['dense', 'dense_1']
    """
    used: dict[str, int] = {}
    out = []
    for layer in layers:
        name = _snake(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        out.append(name)
    return out


def keras_layer_order(model) -> list:
    """The model's layers in the order Keras 3 lists them, which is the order of a
    ``.weights.h5`` file. A functional model's layers are sorted by depth from the outputs
    (inputs first), ties broken by the order a depth-first walk from the outputs meets them
    (Keras' ``map_graph``); this differs from the plain topological order of branching
    graphs (a ResNet's shortcut convolution comes after its residual branch). Other models
    keep ``model.layers``.

    Example:
        >>> from ember import keras
        >>> i = keras.Input((4,))
        >>> a = keras.layers.Dense(3, name="long1")(i)
        >>> a = keras.layers.Dense(3, name="long2")(a)
        >>> b = keras.layers.Dense(3, name="short")(i)
        >>> m = keras.Model(i, keras.layers.Add(name="add")([b, a]))
        >>> [lyr.name for lyr in keras_layer_order(m)]  # doctest: +ELLIPSIS
        ['input_layer...', 'long1', 'short', 'long2', 'add']
    """
    if not getattr(model, "_is_graph", False):
        return list(model.layers)
    from ember.keras.layers import InputLayer

    flat = _flat_tensors
    op_index: dict[int, int] = {}
    ops: dict[int, Any] = {}
    finished: set = set()
    order: list = []  # node keys, inputs last-visited first (Keras' nodes_in_decreasing_depth)
    parents: dict = {}

    def walk(kt) -> None:
        layer, ni, _ = kt._history
        key = (id(layer), ni)
        if key in finished:
            return
        if id(layer) not in op_index:
            op_index[id(layer)] = len(op_index)
            ops[id(layer)] = layer
        if isinstance(layer, InputLayer):
            parents[key] = []
        else:
            node = layer._inbound_nodes[ni]
            parents[key] = [(id(t._history[0]), t._history[1]) for t in node.inputs]
            for t in node.inputs:
                walk(t)
        finished.add(key)
        order.append(key)

    for out in flat(model._outputs):
        walk(out)
    node_depth: dict = {}
    op_depth: dict[int, int] = {}
    for key in reversed(order):
        depth = max(node_depth.setdefault(key, 0), op_depth.get(key[0], 0))
        op_depth[key[0]] = node_depth[key] = depth
        for dep in parents[key]:
            node_depth[dep] = max(depth + 1, node_depth.get(dep, 0))
    return sorted(ops.values(), key=lambda lyr: (-op_depth[id(lyr)], op_index[id(lyr)]))


def _flat_tensors(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _flat_tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flat_tensors(v)
    else:
        yield x


def load_keras_weights(model, path: str | os.PathLike) -> None:
    """Load a Keras 3 ``.weights.h5`` file (``keras_model.save_weights(path)``) into an
    ``ember.keras`` model with the same layers, in Keras' order and layout.

    Example:
        >>> import os, tempfile
        >>> from ember import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> p = os.path.join(tempfile.mkdtemp(), "m.weights.h5")
        >>> import h5py, numpy as np
        >>> with h5py.File(p, "w") as f:
        ...     g = f.create_group("layers/dense/vars")
        ...     g["0"] = np.ones((3, 2), "float32"); g["1"] = np.zeros(2, "float32")
        >>> load_keras_weights(m, p)
        >>> float(m.layers[0].get_weights()[0].sum())
        6.0
    """
    h5py = _need("h5py", "zoo")
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"load_keras_weights: no such file {name!r}")
    layers = keras_layer_order(model) if getattr(model, "layers", None) else []
    if not layers:
        raise TypeError("load_keras_weights: the model has no layers (build it first)")
    with h5py.File(name, "r") as f:
        if "layers" not in f:
            raise ValueError(f"{name}: not a Keras 3 .weights.h5 file (no 'layers' group)")
        group = f["layers"]
        # InputLayer is not in ember's model.layers; Keras stores it with no variables
        stored = [k for k in group if not k.startswith("input_layer")]
        names = keras_h5_layer_names(layers)
        extra = sorted(set(stored) - set(names))
        if extra:
            raise ValueError(
                f"{name}: layers {extra} in the file have no counterpart in the model "
                f"(model layers, in Keras' naming: {names})"
            )
        for layer, key in zip(layers, names):
            want = len(layer.get_weights())
            vars_ = group[key]["vars"] if key in group and "vars" in group[key] else {}
            arrays = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
            if len(arrays) != want:
                raise ValueError(
                    f"{name}: layer '{key}' ({layer.name}) has {want} weights in the model and "
                    f"{len(arrays)} in the file"
                )
            if want:
                layer.set_weights(arrays)


def load_onnx_initializers(path: str | os.PathLike) -> dict:
    """An ONNX model's initializers as ``{name: ember tensor}``; a model exported from a
    PyTorch-named module keeps the state-dict names, so the result loads with
    ``load_state_dict`` (extra constants are reported as unexpected keys, or pass
    ``strict=False``).

    Example:
        >>> import os, tempfile, numpy as np, onnx
        >>> from onnx import helper, numpy_helper
        >>> w = numpy_helper.from_array(np.ones((2, 3), np.float32), "fc.weight")
        >>> g = helper.make_graph([], "g", [], [], initializer=[w])
        >>> p = os.path.join(tempfile.mkdtemp(), "m.onnx")
        >>> onnx.save(helper.make_model(g), p)
        >>> {k: tuple(v.shape) for k, v in load_onnx_initializers(p).items()}
        {'fc.weight': (2, 3)}
    """
    onnx = _need("onnx", "onnx")
    from onnx import numpy_helper

    import ember

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"load_onnx_initializers: no such file {name!r}")
    try:
        proto = onnx.load(name, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and onnx's own errors
        raise ValueError(f"{name}: not a readable ONNX model ({e})") from None
    out = {}
    for init in proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError(f"{name}: initializer {init.name!r} is stored outside the file")
        out[init.name] = ember.from_numpy(np.array(numpy_helper.to_array(init)))
    return out
