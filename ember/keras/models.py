"""Keras models: ``Sequential``, the functional ``Model(inputs, outputs)`` and subclassed
``Model``s. A model is a :class:`~ember.keras.layers.Layer` (so an ``ember.nn.Module``) with
the training API of :class:`~ember.keras.training.TrainingMixin` (``compile``/``fit``/...).

Example:
    >>> from ember import keras
    >>> inp = keras.Input(shape=(4,))
    >>> out = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(inp))
    >>> model = keras.Model(inp, out)
    >>> model.output_shape
    (None, 2)
"""

from __future__ import annotations

import inspect

import ember
from ember import nn

from .layers import deserialize, serialize_layer
from .layers.base import (
    KerasTensor,
    Layer,
    _flatten,
    _jsonable_shape,
    _map,
    _shape_of,
    dummy_run,
    weight_specs,
)
from .layers.core import InputLayer
from .saving import load_model
from .training import TrainingMixin

__all__ = ["Model", "Sequential", "load_model", "model_from_config", "model_from_json"]


def _accepts(layer, name: str) -> bool:
    cache = type(layer).__dict__.get("_accepts_cache")
    if cache is None:
        cache = {}
        type.__setattr__(type(layer), "_accepts_cache", cache)
    if name not in cache:
        params = inspect.signature(layer.call).parameters
        cache[name] = name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    return cache[name]


def _call_layer(layer, args, kwargs, training):
    if training is not None and "training" not in kwargs and _accepts(layer, "training"):
        kwargs = {**kwargs, "training": training}
    return layer(*args, **kwargs)


class Model(TrainingMixin, Layer):
    """``Model(inputs, outputs)`` builds a functional graph; subclass and define ``call``
    for a subclassed model."""

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", None)
        outputs = kwargs.pop("outputs", None)
        if args:
            inputs = args[0]
            if len(args) > 1:
                outputs = args[1]
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        super().__init__(name=name, trainable=trainable)
        self._is_graph = inputs is not None
        self._init_training()
        if self._is_graph:
            if outputs is None:
                raise ValueError("Model(inputs, outputs): outputs missing")
            self._init_graph(inputs, outputs)
        elif kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to Model: {kwargs}")

    # -- functional graph --------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        if isinstance(outputs, dict):  # Keras flattens a dict of outputs in sorted key order
            outputs = {k: outputs[k] for k in sorted(outputs)}
        self._inputs, self._outputs = inputs, outputs
        in_list = list(_flatten(inputs))
        for t in in_list:
            if not isinstance(t, KerasTensor) or not isinstance(t._history[0], InputLayer):
                raise TypeError("Model inputs must come from keras.Input(...)")
        nodes, seen = [], set()
        first_seen: dict[int, int] = {}  # layer -> its place in the depth-first walk

        def visit(kt):
            if not isinstance(kt, KerasTensor) or kt._history is None:
                raise TypeError(f"Model outputs must be symbolic tensors, got {kt!r}")
            layer, ni, _ = kt._history
            if isinstance(layer, InputLayer):
                if not any(kt is t for t in in_list):
                    raise ValueError(
                        f"Graph disconnected: input {layer.name!r} is needed but "
                        "not among the model's inputs"
                    )
                return
            node = layer._inbound_nodes[ni]
            if id(node) in seen:
                return
            first_seen.setdefault(id(layer), len(first_seen))
            for t in node.inputs:
                visit(t)
            seen.add(id(node))
            nodes.append((node, ni))

        for o in _flatten(outputs):
            visit(o)
        self._nodes = nodes
        # the layers are registered in the order the graph first runs them (their state-dict
        # keys ``_layers.N...``, as before Keras' order was adopted, so checkpoints keep
        # loading); ``layers`` and ``get_weights()`` list them in Keras' order
        run_order: list = []
        for node, _ in nodes:
            if not any(node.layer is lyr for lyr in run_order):
                run_order.append(node.layer)
        keras_order = _keras_layer_order(nodes, first_seen)
        self._input_layers = [t._history[0] for t in in_list]
        self._layers = nn.ModuleList(run_order)
        self._keras_order = [
            next(i for i, x in enumerate(run_order) if x is lyr) for lyr in keras_order
        ]
        self.built = True
        self._build_shape = [list(t.shape) for t in in_list]
        if len(self._build_shape) == 1:
            self._build_shape = self._build_shape[0]

    def _run_graph(self, inputs, training=None):
        in_list = list(_flatten(self._inputs))
        given = list(_flatten(inputs)) if isinstance(inputs, (list, tuple)) else [inputs]
        if isinstance(inputs, dict):
            given = [inputs[lyr.name] for lyr in self._input_layers]
        if len(given) != len(in_list):
            raise ValueError(f"{self.name} expects {len(in_list)} inputs, got {len(given)}")
        values = {id(t): _as_tensor(v) for t, v in zip(in_list, given)}
        for node, _ in self._nodes:
            args, kwargs = _map(
                lambda t: values[id(t)] if isinstance(t, KerasTensor) else t,
                (node.args, node.kwargs),
            )
            out = _call_layer(node.layer, args, kwargs, training)
            for kt, v in zip(_flatten(node.outputs), _flatten(out)):
                if isinstance(kt, KerasTensor):
                    values[id(kt)] = v
        return _map(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, self._outputs)

    def call(self, inputs, training=None, **kwargs):
        if self._is_graph:
            return self._run_graph(inputs, training)
        raise NotImplementedError(f"{type(self).__name__}: a subclassed Model must define call")

    def _maybe_build(self, args):
        if not self.built:
            self.built = True

            self._build_shape = _jsonable_shape(_shape_of(args[0])) if args else None

    def build(self, input_shape) -> None:
        """Build the weights by running a batch of zeros of ``input_shape``."""
        _build_with_dummy(self, input_shape)

    @property
    def layers(self) -> list:
        if self._is_graph:
            return list(self._input_layers) + self._ordered_layers()
        return [m for m in self.children() if isinstance(m, Layer)]

    def _ordered_layers(self) -> list:
        """The graph's layers in Keras' order (``keras.Model.layers``, without the inputs)."""
        return [self._layers[i] for i in self._keras_order]

    def _weight_specs(self):
        if not self._is_graph:
            return super()._weight_specs()
        # Keras' order (the registration order keeps the state-dict keys stable)
        return [spec for lyr in self._ordered_layers() for spec in weight_specs(lyr)]

    @property
    def inputs(self):
        return list(_flatten(self._inputs)) if self._is_graph else None

    @property
    def outputs(self):
        return list(_flatten(self._outputs)) if self._is_graph else None

    @property
    def output_shape(self):
        outs = self.outputs
        if outs is None:
            raise AttributeError("output_shape is defined for functional models")
        return outs[0].shape if len(outs) == 1 else [o.shape for o in outs]

    @property
    def input_shape(self):
        ins = self.inputs
        return ins[0].shape if len(ins) == 1 else [i.shape for i in ins]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for lyr in self.layers:
            if lyr.name == name:
                return lyr
        raise ValueError(f"no layer named {name!r}; layers: {[x.name for x in self.layers]}")

    # -- config ---------------------------------------------------------------------------------
    def get_config(self) -> dict:
        if not self._is_graph:
            raise NotImplementedError(
                f"{type(self).__name__} is a subclassed model: define "
                "get_config/from_config to serialize it"
            )
        node_ids = {}
        for lyr in self.layers:
            node_ids[id(lyr)] = [ni for (node, ni) in self._nodes if node.layer is lyr]

        def enc(v):
            if isinstance(v, KerasTensor):
                layer, ni, ti = v._history
                return {"__keras_tensor__": [layer.name, ni, ti]}
            if isinstance(v, ember.Tensor):
                raise TypeError("cannot serialize a tensor argument in a functional graph")
            return v

        layers = []
        for lyr in self.layers:
            entry = serialize_layer(lyr)
            entry["name"] = lyr.name
            entry["inbound_nodes"] = [
                {
                    "node_index": ni,
                    "args": _map(enc, list(lyr._inbound_nodes[ni].args)),
                    "kwargs": _map(enc, dict(lyr._inbound_nodes[ni].kwargs)),
                }
                for ni in node_ids[id(lyr)]
            ]
            layers.append(entry)

        def ref(t):
            layer, ni, ti = t._history
            return [layer.name, ni, ti]

        return {
            "name": self.name,
            "trainable": self._trainable,
            "layers": layers,
            "input_layers": _map(ref, self._inputs),
            "output_layers": _map(ref, self._outputs),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if "layers" not in config or "input_layers" not in config:
            return cls(**config)
        created, outputs = {}, {}
        for entry in config["layers"]:
            lyr = deserialize(entry, custom_objects)
            created[entry["name"]] = lyr
            if isinstance(lyr, InputLayer):
                outputs[(lyr.name, 0)] = [lyr.output]
        pending = [(e["name"], n) for e in config["layers"] for n in e["inbound_nodes"]]

        def dec(v):
            if isinstance(v, dict) and "__keras_tensor__" in v:
                name, ni, ti = v["__keras_tensor__"]
                return outputs[(name, ni)][ti]
            if isinstance(v, dict):
                return {k: dec(x) for k, x in v.items()}
            if isinstance(v, list):
                return [dec(x) for x in v]
            return v

        def ready(v):
            return all(
                not (isinstance(x, dict) and "__keras_tensor__" in x)
                or (x["__keras_tensor__"][0], x["__keras_tensor__"][1]) in outputs
                for x in _flatten_cfg(v)
            )

        while pending:
            progressed = False
            for item in list(pending):
                name, node = item
                if ready(node["args"]) and ready(node["kwargs"]):
                    args, kwargs = dec(node["args"]), dec(node["kwargs"])
                    out = created[name](*args, **kwargs)
                    outputs[(name, node["node_index"])] = list(_flatten(out))
                    pending.remove(item)
                    progressed = True
            if not progressed:
                raise ValueError(
                    "Model.from_config: the graph cannot be rebuilt (unresolved inputs)"
                )

        def out_ref(r):
            if isinstance(r, list) and len(r) == 3 and isinstance(r[0], str):
                return outputs[(r[0], r[1])][r[2]]
            return [out_ref(x) for x in r]

        model = cls(
            out_ref(config["input_layers"]),
            out_ref(config["output_layers"]),
            name=config.get("name"),
        )
        return model


def _keras_layer_order(nodes, first_seen: dict) -> list:
    """The layers of a functional graph in Keras' order (``keras.src.ops.function.map_graph``),
    which is the order of ``model.layers`` and ``model.get_weights()``: by depth (the longest
    path to an output), deepest first, ties by first visit in the depth-first walk from the
    outputs. ``nodes`` are the graph's ``(node, index)`` pairs, inputs to outputs."""
    in_graph = {id(node) for node, _ in nodes}
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node, _ in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for t in node.inputs:
            layer, ni, _ = t._history
            if isinstance(layer, InputLayer):
                continue
            parent = layer._inbound_nodes[ni]
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    layers: list = []
    for node, _ in nodes:
        if not any(node.layer is lyr for lyr in layers):
            layers.append(node.layer)
    layers.sort(key=lambda lyr: (-layer_depth[id(lyr)], first_seen[id(lyr)]))
    return layers


def _flatten_cfg(v):
    if isinstance(v, dict) and "__keras_tensor__" in v:
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from _flatten_cfg(x)
    elif isinstance(v, list):
        for x in v:
            yield from _flatten_cfg(x)


def _as_tensor(v):
    if isinstance(v, ember.Tensor):
        return v
    import numpy as np

    a = np.asarray(v)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return ember.tensor(a)


def _build_with_dummy(model, input_shape):
    shapes = input_shape
    multi = isinstance(shapes, list) and shapes and isinstance(shapes[0], (list, tuple))
    if not multi:
        shapes = [shapes]
    dummies = [KerasTensor([None] + list(s)[1:])._dummy() for s in shapes]
    was = model.training
    model.eval()
    try:
        with ember.no_grad(), dummy_run():
            model(dummies if multi else dummies[0])
    finally:
        model.train(was)


class Sequential(Model):
    """A linear stack of layers. Give the first layer ``input_shape=`` (or start with
    ``keras.Input``) to build at once; otherwise the model builds on its first batch.

    Example:
        >>> import numpy as np
        >>> from ember import keras
        >>> model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(4,)),
        ...                           keras.layers.Dense(3, activation="softmax")])
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.randint(0, 3, 32)
        >>> history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss']
        >>> model.predict(x[:5], verbose=0).shape
        (5, 3)
    """

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name, trainable=trainable)
        self._layers = nn.ModuleList()
        self._input_spec = None
        for lyr in layers or ():
            self.add(lyr, _rebuild=False)
        self._maybe_build_from_spec()

    def add(self, layer, _rebuild: bool = True) -> None:
        if isinstance(layer, KerasTensor):
            self._input_spec = list(layer.shape)
            return
        if isinstance(layer, InputLayer):
            self._input_spec = [None] + list(layer.shape)
            return
        if not isinstance(layer, nn.Module):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        if (
            not len(self._layers)
            and isinstance(layer, Layer)
            and layer._input_shape_arg is not None
            and self._input_spec is None
        ):
            self._input_spec = [None] + list(layer._input_shape_arg)
        self._layers.append(layer)
        self.built = False
        if _rebuild:
            self._maybe_build_from_spec()

    def pop(self) -> Layer:
        if not len(self._layers):
            raise TypeError("Sequential.pop: no layers to remove")
        last = self._layers[len(self._layers) - 1]
        self._layers = nn.ModuleList(list(self._layers)[:-1])
        return last

    def _maybe_build_from_spec(self):
        if self._input_spec is not None and len(self._layers):
            self.build(self._input_spec)

    @property
    def layers(self) -> list:
        return list(self._layers)

    @property
    def inputs(self):
        return None

    @property
    def outputs(self):
        return None

    @property
    def output_shape(self):
        if not self.built or not len(self._layers):
            raise AttributeError("the model is not built yet")
        return self._layers[len(self._layers) - 1]._output_shape

    @property
    def input_shape(self):
        return tuple(self._build_shape) if self._build_shape else None

    def call(self, inputs, training=None, mask=None):
        x = inputs if isinstance(inputs, ember.Tensor) else _as_tensor(inputs)
        for lyr in self._layers:
            x = _call_layer(lyr, (x,), {}, training) if isinstance(lyr, Layer) else lyr(x)
        return x

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self._trainable,
            "layers": [serialize_layer(lyr) for lyr in self._layers],
            "build_input_shape": self._build_shape,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = cls(
            [deserialize(c, custom_objects) for c in config["layers"]],
            name=config.get("name"),
            trainable=config.get("trainable", True),
        )
        if config.get("build_input_shape") and not model.built:
            model.build(config["build_input_shape"])
        return model


def model_from_config(config, custom_objects=None):
    return deserialize(config, custom_objects)


def model_from_json(text, custom_objects=None):
    import json

    return deserialize(json.loads(text), custom_objects)
