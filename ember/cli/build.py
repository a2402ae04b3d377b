"""The model a config describes: a layer list with input sizes inferred, or a named
architecture from a small zoo. (Data: :mod:`ember.cli.datasets`; optimizer, schedule, loss
and metrics: :mod:`ember.cli.solver`.)"""

from __future__ import annotations

import functools
import inspect

import numpy as np

import ember
from ember import nn

from .config import ConfigError
from .names import check_arguments, parse_item, unknown_name

__all__ = [
    "ZOO",
    "CharLSTM",
    "FirstOutput",
    "activation_names",
    "build_activation",
    "build_layers",
    "build_model",
    "layer_names",
]

# constructor argument -> how to read it off the incoming activation (N, C, ...)
_INFERRED = {
    "in_features": lambda s: s[-1],
    "in_channels": lambda s: s[1],
    "num_features": lambda s: s[1],
    "num_channels": lambda s: s[1],
    "normalized_shape": lambda s: s[-1],
    "input_size": lambda s: s[-1],
    "embed_dim": lambda s: s[-1],
    "d_model": lambda s: s[-1],
}


class FirstOutput(nn.Module):
    """Keep the first output of a layer that returns a tuple (``LSTM`` -> sequence)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        out = (
            self.layer(x, x, x) if isinstance(self.layer, nn.MultiheadAttention) else self.layer(x)
        )
        return out[0] if isinstance(out, tuple) else out


# layers whose output is a tuple: the stack keeps the first item (the sequence); attention
# in a stack is self-attention (query = key = value = the incoming activation)
_TUPLE_OUT = ("LSTM", "GRU", "RNN", "MultiheadAttention")


def _single_input(cls) -> bool:
    if cls.__name__ == "MultiheadAttention":
        return True
    params = list(inspect.signature(cls.forward).parameters.values())[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in params if p.default is p.empty and p.kind in positional]
    return len(required) == 1


@functools.lru_cache(maxsize=1)
def _layer_names() -> tuple[str, ...]:
    out = []
    for n in dir(nn):
        cls = getattr(nn, n)
        if (
            isinstance(cls, type)
            and issubclass(cls, nn.Module)
            and not n.startswith("_")
            and not n.endswith("Base")
            # losses, containers and the Module base class are not layers of a stack
            and cls.__module__.rsplit(".", 1)[-1] not in ("loss", "container", "module")
            and _single_input(cls)
        ):
            out.append(n)
    return tuple(sorted(out))


def layer_names() -> list[str]:
    """The ``ember.nn`` classes a config can stack as layers: one input, no losses or
    containers.

    Example:
        >>> names = layer_names()
        >>> "Conv2d" in names, "CrossEntropyLoss" in names, "Sequential" in names
        (True, False, False)
    """
    return list(_layer_names())


def build_layers(layers, input_shape, path=None, dtype=None):
    """Build an ``nn.Sequential`` from layer specs, inferring input sizes by running a dummy
    batch (of ``dtype``: int64 for token ids) through each layer as it is built (so a shape
    mismatch names its layer).

    Example:
        >>> build_layers(["Flatten", {"Linear": {"out_features": 3}}], (2, 4))[1]
        Linear(in_features=8, out_features=3, bias=True)
    """
    x = ember.zeros(2, *input_shape, dtype=dtype)
    mods = []
    for i, item in enumerate(layers):
        name, args = parse_item(item, path, f"model.layers[{i}]")
        known = layer_names()
        if name not in known:
            raise unknown_name("layer", name, known, path, f"model.layers[{i}]")
        cls = getattr(nn, name)
        params = inspect.signature(cls.__init__).parameters
        for arg, read in _INFERRED.items():
            if arg in params and arg not in args:
                args[arg] = read(tuple(x.shape))
        check_arguments(cls.__init__, args, name, path, f"model.layers[{i}]")
        try:
            layer = cls(**args)
        except TypeError as e:
            raise ConfigError(
                f"bad arguments for {name}: {e}", path, f"model.layers[{i}]"
            ) from None
        if name in _TUPLE_OUT:
            layer = FirstOutput(layer)
        layer.eval()
        try:
            with ember.no_grad():
                x = layer(x)
        except Exception as e:  # noqa: BLE001 - report any failure with the layer's position
            raise ConfigError(
                f"{name} cannot take input of shape {tuple(x.shape)}: {e}",
                path,
                f"model.layers[{i}]",
            ) from None
        layer.train()
        mods.append(layer)
    return nn.Sequential(*mods)


# -- a small zoo of named architectures ----------------------------------------------------
def activation_names() -> list[str]:
    """Activation names for ``activation:`` arguments (``relu``, ``gelu``, ...).

    Example:
        >>> "relu" in activation_names() and "leakyrelu" in activation_names()
        True
    """
    from ember.nn.modules import activation

    return sorted(
        n.lower()
        for n in layer_names()
        if getattr(nn, n).__module__ == activation.__name__
        and n not in ("Softmax", "Softmin", "LogSoftmax", "GLU", "Threshold")
    )


def build_activation(name, path=None, key=None):
    """A fresh activation layer for a name such as ``relu`` or ``GELU`` (any case)."""
    names = activation_names()
    if not isinstance(name, str) or name.lower() not in names:
        raise unknown_name("activation", name, names, path, key)
    by_lower = {n.lower(): n for n in layer_names()}
    return getattr(nn, by_lower[name.lower()])()


def _mlp(input_shape, num_classes=10, hidden=(128,), dropout=0.0, activation="relu", path=None):
    n = int(np.prod(input_shape))
    layers, cin = [nn.Flatten()], n
    for h in hidden:
        layers += [nn.Linear(cin, h), build_activation(activation, path, "model.zoo.activation")]
        if dropout:
            layers.append(nn.Dropout(dropout))
        cin = h
    layers.append(nn.Linear(cin, num_classes))
    return nn.Sequential(*layers)


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> Linear over the vocabulary (character language model)."""

    def __init__(self, vocab_size, embed=64, hidden=256, num_layers=1):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx):
        h, _ = self.lstm(self.emb(idx))
        return self.head(h)


ZOO = {"mlp": _mlp, "char_lstm": CharLSTM}


def _from_models(name, args, input_shape, num_classes, path):
    """An ``ember.models`` architecture; a classifier's ``num_classes`` and ``in_channels``
    default to what the data says."""
    from ember import models

    fn = models._registry._MODELS[name]
    if "num_classes" in inspect.signature(fn).parameters:
        if num_classes:
            args.setdefault("num_classes", num_classes)
        if input_shape is not None and len(input_shape) == 3:
            args.setdefault("in_channels", int(input_shape[0]))
    try:
        return models.get(name, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad arguments for {name}: {e}", path, "model.zoo") from None


def build_model(cfg, input_shape, num_classes=None, path=None, dtype=None):
    """The model a config describes, for samples of ``input_shape`` and ``dtype``."""
    m = cfg["model"]
    if m["layers"] is not None:
        shape = m["input_shape"] or input_shape
        if shape is None:
            raise ConfigError(
                "cannot infer the input shape from the data; set model.input_shape",
                path,
                "model.input_shape",
            )
        return build_layers(m["layers"], tuple(shape), path, dtype)
    zoo = m["zoo"]
    if isinstance(zoo, str):
        zoo = {"name": zoo}
    zoo = dict(zoo)
    name = zoo.pop("name", None)
    if name not in ZOO:
        from ember import models  # the full model zoo loads only when a config names it

        if name not in models.list_models():
            raise unknown_name("model", name, [*ZOO, *models.list_models()], path, "model.zoo.name")
        return _from_models(name, zoo, m["input_shape"] or input_shape, num_classes, path)
    try:
        fn = CharLSTM.__init__ if name == "char_lstm" else _mlp
        check_arguments(fn, zoo, name, path, "model.zoo", skip=("input_shape", "path"))
        if name == "char_lstm":
            zoo.setdefault("vocab_size", num_classes)
            return CharLSTM(**zoo)
        zoo.setdefault("num_classes", num_classes or 10)
        return _mlp(tuple(m["input_shape"] or input_shape), **zoo, path=path)
    except TypeError as e:
        raise ConfigError(f"bad arguments for {name}: {e}", path, "model.zoo") from None
