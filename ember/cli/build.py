"""Turn a validated config into objects: the model (a layer list with shapes inferred,
or a named architecture), the data loaders, the optimizer, the schedule and the loss."""

from __future__ import annotations

import functools
import inspect

import numpy as np

import ember
from ember import nn

from .config import ConfigError
from .names import check_arguments, unknown_name

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


def _layer_spec(item, i, path, key=None):
    key = key or f"model.layers[{i}]"
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        ((name, args),) = item.items()
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ConfigError(f"arguments of {name} must be a mapping, got {args!r}", path, key)
        return name, dict(args)
    raise ConfigError(
        f"expected a name or a one-key mapping {{Name: {{args}}}}, got {item!r}", path, key
    )


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
        name, args = _layer_spec(item, i, path)
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
        raise unknown_name("model", name, ZOO, path, "model.zoo.name")
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


# -- data ----------------------------------------------------------------------------------
def dataset_names() -> list[str]:
    """The dataset classes of ``ember.data.datasets`` (no helper functions or constants).

    Example:
        >>> "Digits" in dataset_names(), "read_idx" in dataset_names()
        (True, False)
    """
    from ember.data import Dataset, datasets

    return sorted(
        n
        for n in datasets.__all__
        if isinstance(getattr(datasets, n), type) and issubclass(getattr(datasets, n), Dataset)
    )


def transform_names() -> list[str]:
    """The ``ember.data.transforms`` a config can list under ``data.transforms``.

    Example:
        >>> "ToTensor" in transform_names(), "Compose" in transform_names()
        (True, False)
    """
    from ember.data import transforms as T

    return sorted(
        n for n in T.__all__ if isinstance(getattr(T, n), type) and n not in ("Compose", "Lambda")
    )


def _is_random(name: str) -> bool:
    # augmentations run on training samples only; evaluation and prediction see the
    # deterministic part of the pipeline (as torchvision's separate eval transforms do)
    return name.startswith("Random") or name == "ColorJitter"


def build_transforms(specs, path=None, train: bool = True):
    """A callable applying ``data.transforms`` to one sample (None when there are none).

    Example:
        >>> import numpy as np
        >>> t = build_transforms(["ToTensor", {"RandomHorizontalFlip": {"p": 0.5}}], train=False)
        >>> tuple(t(np.zeros((4, 4), np.uint8)).shape)
        (1, 4, 4)
    """
    from ember.data import transforms as T

    names, out = transform_names(), []
    for i, item in enumerate(specs or ()):
        key = f"data.transforms[{i}]"
        name, args = _layer_spec(item, i, path, key)
        if name not in names:
            raise unknown_name("transform", name, names, path, key)
        if _is_random(name) and not train:
            continue
        check_arguments(getattr(T, name).__init__, args, name, path, key)
        try:
            out.append(getattr(T, name)(**args))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"bad arguments for {name}: {e}", path, key) from None
    return T.Compose(out) if out else None


class Transformed:
    """A dataset view whose samples go through ``fn`` (targets unchanged)."""

    def __init__(self, dataset, fn):
        self.dataset, self.fn = dataset, fn

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        item = self.dataset[index]
        if isinstance(item, (tuple, list)):
            return (self.fn(item[0]), *item[1:])
        return self.fn(item)


def build_datasets(cfg, path=None):
    """``(train, val, test, full)``: val is split off train with a seeded permutation;
    train samples get all of ``data.transforms``, the others only the deterministic ones
    (``full`` is the whole training set as evaluation sees it)."""
    from ember import data
    from ember.data import datasets

    d = cfg["data"]
    names = dataset_names()
    if d["dataset"] not in names:
        raise unknown_name("dataset", d["dataset"], names, path, "data.dataset")
    cls = getattr(datasets, d["dataset"])
    args = dict(d["args"])
    skip = ("train", "transform", "target_transform")  # set by the run (data.transforms)
    check_arguments(cls.__init__, args, d["dataset"], path, "data.args", skip=skip)
    try:
        if "train" in inspect.signature(cls.__init__).parameters:
            full = cls(train=True, **args)
            test = cls(train=False, **args) if d["test"] else None
        else:
            full, test = cls(**args), None
    except TypeError as e:
        raise ConfigError(f"bad arguments for {d['dataset']}: {e}", path, "data.args") from None
    except (OSError, ValueError) as e:  # missing or malformed data files
        raise ConfigError(f"cannot read {d['dataset']}: {e}", path, "data.args") from None
    n_val = round(len(full) * d["val_split"])
    g = ember.Generator().manual_seed(cfg["solver"]["seed"])
    if n_val:
        train, val = data.random_split(full, [len(full) - n_val, n_val], generator=g)
    else:
        train, val = full, None
    fit_t = build_transforms(d["transforms"], path, train=True)
    eval_t = build_transforms(d["transforms"], path, train=False)
    if fit_t is not None:
        train = Transformed(train, fit_t)
    if eval_t is not None:
        val = Transformed(val, eval_t) if val is not None else None
        test = Transformed(test, eval_t) if test is not None else None
        full = Transformed(full, eval_t)
    return train, val, test, full


def raw_dataset(ds):
    """The dataset under split and transform views."""
    while hasattr(ds, "dataset"):
        ds = ds.dataset
    return ds


def sample_of(ds) -> np.ndarray:
    """The first sample of ``ds`` as a NumPy array."""
    item = ds[0]
    x = item[0] if isinstance(item, (tuple, list)) else item
    return x.numpy() if isinstance(x, ember.Tensor) else np.asarray(x)


def sample_shape(ds):
    return tuple(sample_of(ds).shape)


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
        raise unknown_name("optimizer", name, _OPTIMIZERS, path, "solver.optimizer.name")
    cls = getattr(ember.optim, _OPTIMIZERS[name])
    check_arguments(cls.__init__, o, cls.__name__, path, "solver.optimizer", skip=("params",))
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
        raise unknown_name("schedule", name, _SCHEDULES, path, "solver.schedule.name")
    from ember.optim import lr_scheduler

    cls = getattr(lr_scheduler, _SCHEDULES[name])
    check_arguments(cls.__init__, s, cls.__name__, path, "solver.schedule", skip=("optimizer",))
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
    """``loss(output, target)`` for ``solver.loss``: sequence outputs are flattened for
    classification losses; one-output regression and binary heads ``(N, 1)`` are matched
    with targets ``(N,)`` (rather than broadcast to ``(N, N)``) and binary targets are cast
    to the output's float type.

    Example:
        >>> import ember
        >>> cfg = {"solver": {"loss": "mse"}}
        >>> float(build_loss(cfg)(ember.ones(4, 1), ember.zeros(4)))
        1.0
    """
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
        raise unknown_name("loss", name, fns, path, "solver.loss")
    fn = fns[name]

    def loss(out, y):
        if name in ("cross_entropy", "nll"):
            if out.ndim == 3:  # sequence models
                return fn(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            return fn(out, y)
        if out.ndim == y.ndim + 1 and out.shape[-1] == 1:
            out = out.reshape(tuple(out.shape[:-1]))
        if name == "bce_with_logits" or y.dtype != out.dtype:
            y = y.to(out.dtype)
        return fn(out, y)

    return loss


def build_metrics(cfg, path=None) -> list:
    """Fresh ``ember.metrics`` objects for the names in ``solver.metrics``.

    Example:
        >>> [m.name for m in build_metrics({"solver": {"metrics": ["f1", "mae"]}})]
        ['f1', 'mae']
    """
    from ember import metrics

    names = metrics.available()
    out = []
    for i, name in enumerate(cfg["solver"].get("metrics") or ()):
        if str(name).strip().lower() not in names:
            raise unknown_name("metric", name, names, path, f"solver.metrics[{i}]")
        out.append(metrics.get(name))
    return out
