"""Turn a validated config into objects: the model (a layer list with shapes inferred,
or a named architecture), the data loaders, the optimizer, the schedule and the loss."""

from __future__ import annotations

import inspect

import numpy as np

import ember
from ember import nn

from .config import ConfigError

__all__ = [
    "ZOO",
    "CharLSTM",
    "FirstOutput",
    "build_datasets",
    "build_layers",
    "build_loss",
    "build_model",
    "build_optimizer",
    "build_schedule",
    "num_classes_of",
    "sample_shape",
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
        out = self.layer(x)
        return out[0] if isinstance(out, tuple) else out


def _layer_spec(item, i, path):
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        ((name, args),) = item.items()
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ConfigError(
                f"arguments of {name} must be a mapping, got {args!r}", path, f"model.layers[{i}]"
            )
        return name, dict(args)
    raise ConfigError(
        f"a layer is a name or a one-key mapping {{Name: {{args}}}}, got {item!r}",
        path,
        f"model.layers[{i}]",
    )


def build_layers(layers, input_shape, path=None):
    """Build an ``nn.Sequential`` from layer specs, inferring input sizes by running a dummy
    batch through each layer as it is built (so a shape mismatch names its layer)."""
    x = ember.zeros(2, *input_shape)
    mods = []
    for i, item in enumerate(layers):
        name, args = _layer_spec(item, i, path)
        cls = getattr(nn, name, None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            known = sorted(
                n
                for n in dir(nn)
                if isinstance(getattr(nn, n), type)
                and issubclass(getattr(nn, n), nn.Module)
                and not n.startswith("_")
            )
            raise ConfigError(
                f"unknown layer {name!r}; known layers: {', '.join(known)}",
                path,
                f"model.layers[{i}]",
            )
        params = inspect.signature(cls.__init__).parameters
        for arg, read in _INFERRED.items():
            if arg in params and arg not in args:
                args[arg] = read(tuple(x.shape))
        try:
            layer = cls(**args)
        except TypeError as e:
            raise ConfigError(
                f"bad arguments for {name}: {e}", path, f"model.layers[{i}]"
            ) from None
        if name in ("LSTM", "GRU", "RNN", "MultiheadAttention"):
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
def _mlp(input_shape, num_classes=10, hidden=(128,), dropout=0.0):
    n = int(np.prod(input_shape))
    layers, cin = [nn.Flatten()], n
    for h in hidden:
        layers += [nn.Linear(cin, h), nn.ReLU()]
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


def build_model(cfg, input_shape, num_classes=None, path=None):
    m = cfg["model"]
    if m["layers"] is not None:
        shape = m["input_shape"] or input_shape
        if shape is None:
            raise ConfigError(
                "cannot infer the input shape from the data; set model.input_shape",
                path,
                "model.input_shape",
            )
        return build_layers(m["layers"], tuple(shape), path)
    zoo = m["zoo"]
    if isinstance(zoo, str):
        zoo = {"name": zoo}
    zoo = dict(zoo)
    name = zoo.pop("name", None)
    if name not in ZOO:
        raise ConfigError(
            f"unknown model name {name!r}; available: {sorted(ZOO)}", path, "model.zoo.name"
        )
    try:
        if name == "char_lstm":
            zoo.setdefault("vocab_size", num_classes)
            return CharLSTM(**zoo)
        zoo.setdefault("num_classes", num_classes or 10)
        return _mlp(tuple(m["input_shape"] or input_shape), **zoo)
    except TypeError as e:
        raise ConfigError(f"bad arguments for {name}: {e}", path, "model.zoo") from None


# -- data ----------------------------------------------------------------------------------
def build_datasets(cfg, path=None):
    """(train, val, test) datasets; val is split off train with a seeded permutation."""
    from ember import data
    from ember.data import datasets

    d = cfg["data"]
    cls = getattr(datasets, d["dataset"], None)
    if cls is None:
        raise ConfigError(
            f"unknown dataset {d['dataset']!r}; available: {sorted(n for n in datasets.__all__)}",
            path,
            "data.dataset",
        )
    args = dict(d["args"])
    try:
        if "train" in inspect.signature(cls.__init__).parameters:
            full = cls(train=True, **args)
            test = cls(train=False, **args) if d["test"] else None
        else:
            full, test = cls(**args), None
    except TypeError as e:
        raise ConfigError(f"bad arguments for {d['dataset']}: {e}", path, "data.args") from None
    n_val = round(len(full) * d["val_split"])
    g = ember.Generator().manual_seed(cfg["solver"]["seed"])
    if n_val:
        train, val = data.random_split(full, [len(full) - n_val, n_val], generator=g)
    else:
        train, val = full, None
    return train, val, test, full


def sample_shape(ds):
    x = ds[0][0] if isinstance(ds[0], (tuple, list)) else ds[0]
    return tuple(np.asarray(x).shape)


def num_classes_of(ds):
    for attr in ("classes", "itos"):
        v = getattr(ds, attr, None)
        if v is not None:
            return len(v)
    inner = getattr(ds, "dataset", None)
    return num_classes_of(inner) if inner is not None else None


# -- solver --------------------------------------------------------------------------------
_OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}


def build_optimizer(cfg, params, path=None):
    o = dict(cfg["solver"]["optimizer"])
    name = str(o.pop("name")).lower()
    if name not in _OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {name!r}; available: {sorted(_OPTIMIZERS)}",
            path,
            "solver.optimizer.name",
        )
    cls = getattr(ember.optim, _OPTIMIZERS[name])
    try:
        return cls(params, **o)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad optimizer arguments: {e}", path, "solver.optimizer") from None


_SCHEDULES = {
    "step": "StepLR",
    "multistep": "MultiStepLR",
    "exponential": "ExponentialLR",
    "cosine": "CosineAnnealingLR",
    "linear": "LinearLR",
    "onecycle": "OneCycleLR",
    "plateau": "ReduceLROnPlateau",
}


def build_schedule(cfg, optimizer, steps_per_epoch, path=None):
    """An epoch-level LR schedule (``onecycle`` steps per batch)."""
    s = cfg["solver"]["schedule"]
    if s is None:
        return None
    s = dict(s)
    name = str(s.pop("name", "")).lower()
    if name not in _SCHEDULES:
        raise ConfigError(
            f"unknown schedule {name!r}; available: {sorted(_SCHEDULES)}",
            path,
            "solver.schedule.name",
        )
    from ember.optim import lr_scheduler

    cls = getattr(lr_scheduler, _SCHEDULES[name])
    if name == "cosine":
        s.setdefault("T_max", cfg["solver"]["epochs"])
    if name == "onecycle":
        s.setdefault("max_lr", cfg["solver"]["optimizer"].get("lr", 1e-3))
        s.setdefault("total_steps", cfg["solver"]["epochs"] * steps_per_epoch)
    try:
        return cls(optimizer, **s)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad schedule arguments: {e}", path, "solver.schedule") from None


def build_loss(cfg, path=None):
    name = cfg["solver"]["loss"]
    F = nn.functional
    fns = {
        "cross_entropy": F.cross_entropy,
        "mse": F.mse_loss,
        "l1": F.l1_loss,
        "nll": F.nll_loss,
        "bce_with_logits": F.binary_cross_entropy_with_logits,
    }
    if name not in fns:
        raise ConfigError(f"unknown loss {name!r}; available: {sorted(fns)}", path, "solver.loss")
    fn = fns[name]

    def loss(out, y):
        if out.ndim == 3 and name in ("cross_entropy", "nll"):  # sequence models
            return fn(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        return fn(out, y)

    return loss
