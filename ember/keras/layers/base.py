"""The Keras ``Layer``: an ``ember.nn.Module`` that builds itself on first call.

A layer creates its ``ember.nn`` sublayers (or parameters) in ``build(input_shape)``, which
runs on the first call when no ``input_shape`` was given; ``call(inputs, training=None)``
computes. Called on a symbolic :class:`KerasTensor` (from ``keras.Input``), a layer records
a node of the functional graph instead; the output shape comes from running the layer once
on a small batch of zeros (which also builds it).

Weights are stored in the PyTorch layout of the ``nn`` module underneath;
``get_weights``/``set_weights`` convert to and from Keras' layout (a Dense kernel is
``(in, out)``).
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
from typing import Any, ClassVar

import numpy as np

import ember
from ember import nn

__all__ = [
    "KerasTensor",
    "Layer",
    "Node",
    "WeightSpec",
    "check_supported",
    "init_params",
    "register",
    "serialize_layer",
]

_NAME_COUNTS: dict[str, int] = {}
_CALL_CONTEXT = threading.local()
_ACCEPTS: dict = {}


@contextlib.contextmanager
def dummy_run():
    """Context: the calls inside run on placeholder zeros (shape inference, building), so
    layers that keep state across calls (stateful RNNs) leave it alone."""
    outer = getattr(_CALL_CONTEXT, "dummy", False)
    _CALL_CONTEXT.dummy = True
    try:
        yield
    finally:
        _CALL_CONTEXT.dummy = outer


def in_dummy_run() -> bool:
    """Whether the current call runs on placeholder zeros (see ``dummy_run``)."""
    return bool(getattr(_CALL_CONTEXT, "dummy", False))


def _call_takes_mask(cls) -> bool:
    """Whether ``cls.call`` names a ``mask`` argument (Keras passes masks only then)."""
    key = (cls, "mask!")
    if key not in _ACCEPTS:
        _ACCEPTS[key] = "mask" in inspect.signature(cls.call).parameters
    return _ACCEPTS[key]


def get_mask(x):
    """The Keras mask attached to ``x`` (a tensor, or a list of them: a list), else None."""
    if isinstance(x, (list, tuple)):
        masks = [get_mask(v) for v in x]
        return masks if any(m is not None for m in masks) else None
    return x.__dict__.get("_keras_mask") if isinstance(x, ember.Tensor) else None


def _set_masks(outputs, masks) -> None:
    flat_out = list(_flatten(outputs))
    flat_masks = list(_flatten(masks)) if isinstance(masks, (list, tuple)) else [masks]
    for t, m in zip(flat_out, flat_masks):
        if isinstance(t, ember.Tensor) and m is not None:
            t.__dict__["_keras_mask"] = ember.as_tensor(m).detach().to(ember.bool)


def _call_accepts(cls, name: str) -> bool:
    """Whether ``cls.call`` takes the keyword ``name`` (or ``**kwargs``)."""
    key = (cls, name)
    if key not in _ACCEPTS:
        params = inspect.signature(cls.call).parameters
        _ACCEPTS[key] = name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    return _ACCEPTS[key]


# The layer classes that deserialize knows by name, filled by @register.
LAYERS: dict[str, type] = {}


def register(cls):
    """Class decorator: make a layer class known to ``deserialize`` by its name."""
    LAYERS[cls.__name__] = cls
    return cls


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(base: str) -> str:
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


class KerasTensor:
    """A symbolic tensor of the functional API: a shape (``None`` for the batch) and dtype,
    plus where it comes from (``layer``, node index, output index)."""

    def __init__(self, shape, dtype="float32", history=None, name=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self._history = history  # (layer, node_index, tensor_index)
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape} dtype={self.dtype} name={self.name}>"

    def _dummy(self, batch: int = 2, free: int = 3):
        shape = tuple(
            batch if i == 0 and d is None else (d if d is not None else free)
            for i, d in enumerate(self.shape)
        )
        dt = getattr(ember, str(self.dtype), ember.float32)
        return ember.zeros(*shape, dtype=dt)


class Node:
    """One call of a layer in a functional graph."""

    def __init__(self, layer, args, kwargs, outputs):
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs
        self.inputs = [t for t in _flatten((args, kwargs)) if isinstance(t, KerasTensor)]


def _flatten(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _flatten(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flatten(v)
    else:
        yield x


def _map(fn, x):
    if isinstance(x, list):
        return [_map(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(_map(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return fn(x)


class WeightSpec:
    """One Keras weight: the stored tensor and the layout conversions."""

    def __init__(self, tensor, to_keras=None, from_keras=None, trainable=True):
        self.tensor, self.trainable = tensor, trainable
        self.to_keras = to_keras or (lambda a: a)
        self.from_keras = from_keras or (lambda a: a)


class Layer(nn.Module):
    """Base class of Keras layers (override ``build`` and ``call``).

    Args:
        name: a unique name (``dense``, ``dense_1``, ... by default).
        trainable: False freezes the layer's weights.
        input_shape: the shape of one sample; builds the layer at once (Sequential's first
            layer takes the model's input from it).
    """

    # Keras' masking: a layer that supports masking passes a mask on to its outputs through
    # ``compute_mask`` (the input mask unless overridden); the others drop it. A mask travels
    # on the tensors (as Keras' ``_keras_mask``) and reaches ``call(mask=...)`` of the next
    # layer whose ``call`` names a ``mask`` argument.
    supports_masking: bool = False

    # Constructor arguments that are not part of the config (initial weights), and
    # constructor arguments stored under another attribute name.
    _config_skip: ClassVar[tuple] = ("weights",)
    _config_attrs: ClassVar[dict] = {}

    def __init__(
        self,
        *,
        activity_regularizer=None,
        trainable: bool = True,
        dtype=None,
        autocast: bool = True,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__()
        # Keras 3 still accepts these legacy shape arguments through **kwargs
        input_shape = kwargs.pop("input_shape", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        input_dim = kwargs.pop("input_dim", None)
        kwargs.pop("batch_size", None)
        if kwargs:
            raise ValueError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        from .. import regularizers

        self.name = name or unique_name(_snake(type(self).__name__))
        self.built = False
        self._trainable = bool(trainable)
        self._compute_dtype = _layer_dtype(type(self).__name__, dtype)
        self._dtype_arg = None if dtype is None else self._compute_dtype.name
        self.autocast = bool(autocast)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_shape is None and input_dim is not None:
            input_shape = (int(input_dim),)
        self._input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self._build_shape = None
        self._output_shape = None
        self._inbound_nodes: list[Node] = []
        self._initial_weights = None
        self.stop_training = False

    # -- building -------------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch dim included)."""

    def _maybe_build(self, args) -> None:
        if self.built:
            return
        first = args[0] if args else None
        shape = _shape_of(first)
        self.build(shape)
        self._build_shape = _jsonable_shape(shape)
        self._finish_build()

    def build_from_shape(self, shape) -> None:
        """Build for inputs of ``shape`` (batch included) without calling the layer."""
        if not self.built:
            self.build(shape)
            self._build_shape = _jsonable_shape(shape)
            self._finish_build()

    def _finish_build(self) -> None:
        if self._compute_dtype != ember.float32:
            self.to(self._compute_dtype)
        self.built = True
        if not self._trainable:
            self._apply_trainable()
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.call")

    def forward(self, *args, **kwargs):
        if self._compute_dtype != ember.float32 and self.autocast:
            # as Keras' autocast: floating inputs are computed in the layer's dtype
            dt = self._compute_dtype
            args = _map(
                lambda t: t.to(dt) if isinstance(t, ember.Tensor) and t.is_floating_point() else t,
                args,
            )
        self._maybe_build(args)
        # Keras' call context: an explicit training= wins, else the enclosing layer's mode,
        # else inference (a layer called directly does not drop out or update statistics)
        outer = getattr(_CALL_CONTEXT, "training", None)
        given = kwargs.pop("training", None)
        training = bool(given) if given is not None else bool(outer)
        if _call_accepts(type(self), "training"):
            kwargs["training"] = training
        prev_mask = kwargs.get("mask")
        if prev_mask is None and args:
            prev_mask = get_mask(args[0])
            if prev_mask is not None and _call_takes_mask(type(self)):
                kwargs["mask"] = prev_mask
        _CALL_CONTEXT.training = training
        try:
            out = self.call(*args, **kwargs)
        finally:
            _CALL_CONTEXT.training = outer
        if self.supports_masking and args:
            _set_masks(out, self.compute_mask(args[0], prev_mask))
        if self._output_shape is None:
            self._output_shape = _out_shape(out)
        if self.activity_regularizer is not None:
            # as Keras 3: the penalty of each output, divided by its batch size
            self.__dict__["_activity_losses"] = [
                self.activity_regularizer(o) / float(o.shape[0] if o.ndim else 1)
                for o in _flatten(out)
                if isinstance(o, ember.Tensor)
            ]
        return out

    def __call__(self, *args, **kwargs):
        if any(isinstance(t, KerasTensor) for t in _flatten((args, kwargs))):
            return self._symbolic_call(args, kwargs)
        return super().__call__(*args, **kwargs)

    def _run_dummy(self, args, kwargs, free):
        concrete = _map(
            lambda t: t._dummy(free=free) if isinstance(t, KerasTensor) else t, (args, kwargs)
        )
        was = self.training
        self.eval()
        try:
            with ember.no_grad(), dummy_run():
                return nn.Module.__call__(self, *concrete[0], **concrete[1])
        finally:
            self.train(was)

    def _symbolic_call(self, args, kwargs):
        out = self._run_dummy(args, kwargs, 3)
        # NOTE: dims that follow an unknown (None) input dim are found by running twice
        varying = any(
            None in t.shape[1:] for t in _flatten((args, kwargs)) if isinstance(t, KerasTensor)
        )
        other = list(_flatten(self._run_dummy(args, kwargs, 5))) if varying else None
        node_index = len(self._inbound_nodes)
        count = [0]

        def to_kt(v):
            if not isinstance(v, ember.Tensor):
                return v
            shape = (None,) + tuple(v.shape[1:])
            if other is not None:
                ref = other[count[0]] if count[0] < len(other) else v
                shape = (None,) + tuple(
                    d if d == r else None for d, r in zip(v.shape[1:], ref.shape[1:])
                )
            kt = KerasTensor(
                shape, v.dtype.name, (self, node_index, count[0]), name=f"{self.name}/{count[0]}"
            )
            count[0] += 1
            return kt

        outs = _map(to_kt, out)
        self._inbound_nodes.append(Node(self, args, kwargs, outs))
        return outs

    def add_weight(
        self,
        *args,
        shape=None,
        initializer=None,
        dtype=None,
        trainable: bool = True,
        autocast: bool = True,
        regularizer=None,
        constraint=None,
        aggregation="none",
        overwrite_with_gradient: bool = False,
        name: str | None = None,
    ):
        """Create a weight in Keras layout (for custom layers' ``build``): a registered
        ``nn.Parameter`` (``requires_grad=trainable``) filled by ``initializer``
        (``glorot_uniform`` for floats, ``zeros`` otherwise), with an optional
        ``regularizer`` added to ``losses``. Positional arguments are
        ``(shape, initializer, dtype)`` as in Keras 3, or ``(name, shape, initializer)``
        as in Keras 2.

        Example:
            >>> import ember
            >>> from ember import keras
            >>> layer = keras.layers.Layer()
            >>> w = layer.add_weight(shape=(2, 3), initializer="ones", name="w")
            >>> tuple(w.shape), float(w.sum())
            ((2, 3), 6.0)
        """
        from .. import initializers

        if len(args) > 3:
            raise TypeError(f"add_weight takes at most 3 positional arguments, got {len(args)}")
        if args and isinstance(args[0], str):  # Keras 2 order: (name, shape, initializer)
            keys = ("name", "shape", "initializer")
        else:
            keys = ("shape", "initializer", "dtype")
        given = {"name": name, "shape": shape, "initializer": initializer, "dtype": dtype}
        for key, value in zip(keys, args):
            if given[key] is not None:
                raise TypeError(f"add_weight: {key} given both positionally and by keyword")
            given[key] = value
        name, shape, initializer, dtype = (
            given[k] for k in ("name", "shape", "initializer", "dtype")
        )
        check_supported(
            f"{type(self).__name__}.add_weight",
            aggregation=(aggregation, "none"),
            overwrite_with_gradient=(bool(overwrite_with_gradient), False),
        )
        if name is None:
            name = f"weight_{len(self._parameters)}"
        dt = self._compute_dtype
        if dtype is not None:
            dt = getattr(ember, str(getattr(dtype, "name", dtype)).replace("torch.", ""), None)
            if not hasattr(dt, "is_floating_point"):
                raise TypeError(f"add_weight: unknown dtype {dtype!r}")
        if initializer is None:
            initializer = "glorot_uniform" if dt.is_floating_point else "zeros"
        shape = () if shape is None else shape
        grad = bool(trainable) and dt.is_floating_point  # integer weights never train
        p = nn.Parameter(ember.empty(*[int(d) for d in shape], dtype=dt), requires_grad=grad)
        p._keras_layout = True
        init = initializers.get(initializer)
        if init is not None:
            init(p)
        self.register_parameter(name, p)
        self._regularize(regularizer, lambda: p)
        self._constrain(constraint, p)
        return p

    @property
    def losses(self) -> list:
        """Regularization penalties of this layer and the layers inside it (tensors)."""
        out = []
        for m in self.modules():
            regs = m.__dict__.get("_regularized")
            if regs:
                for reg, get_w in regs:
                    out.append(reg(get_w()))
            out.extend(m.__dict__.get("_activity_losses", ()))
        return out

    def _constrain(self, constraint, param, to_keras=None, from_keras=None) -> None:
        """Have the optimizer project ``param`` with ``constraint`` after every step; the
        constraint sees the weight in Keras' layout (``to_keras``/``from_keras`` convert)."""
        from .. import constraints

        c = constraints.get(constraint)
        if c is not None:
            ident = lambda w: w
            param._keras_constraint = (c, to_keras or ident, from_keras or ident)

    def _store_weight_args(self, args: dict) -> None:
        """Store the ``*_initializer``, ``*_regularizer`` and ``*_constraint`` arguments in
        ``args`` (the constructor's ``locals()``) as the objects Keras' ``get`` functions
        make of them (``activity_regularizer`` is the base ``Layer``'s)."""
        from .. import constraints, initializers, regularizers

        getters = {
            "initializer": initializers.get,
            "regularizer": regularizers.get,
            "constraint": constraints.get,
        }
        for pname, value in args.items():
            kind = pname.rpartition("_")[2]
            if kind in getters and pname != "activity_regularizer":
                setattr(self, pname, getters[kind](value))

    def _regularize(self, regularizer, get_weight) -> None:
        from .. import regularizers

        reg = regularizers.get(regularizer)
        if reg is not None:
            self.__dict__.setdefault("_regularized", []).append((reg, get_weight))

    # -- trainable ------------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self._apply_trainable()

    def _apply_trainable(self):
        # hidden weights (a disabled scale, an RNN's second bias) stay frozen constants
        hidden = {id(t) for m in self.modules() for t in getattr(m, "_hidden_weights", list)()}
        for p in self.parameters():
            if id(p) not in hidden:
                p.requires_grad_(self._trainable)
        for m in self.modules():
            if isinstance(m, Layer) and m is not self:
                m._trainable = self._trainable

    # -- weights (Keras order and layout) -------------------------------------------------------
    def _weight_specs(self) -> list[WeightSpec]:
        """Override for layers whose Keras layout differs from the stored one."""
        specs = []
        for _name, child in self.named_children():
            if isinstance(child, Layer):
                specs += weight_specs(child)
            else:
                specs += _module_specs(child)
        for p in self._parameters.values():
            if p is not None:
                specs.append(WeightSpec(p, trainable=p.requires_grad))
        return specs

    def get_weights(self) -> list[np.ndarray]:
        return [s.to_keras(s.tensor.detach().numpy().copy()) for s in weight_specs(self)]

    def set_weights(self, weights) -> None:
        specs = weight_specs(self)
        if len(weights) != len(specs):
            raise ValueError(
                f"{self.name}: set_weights got {len(weights)} arrays, the layer "
                f"has {len(specs)} weights"
            )
        with ember.no_grad():
            for s, w in zip(specs, weights):
                arr = np.asarray(s.from_keras(np.asarray(w)))
                if tuple(arr.shape) != tuple(s.tensor.shape):
                    raise ValueError(
                        f"{self.name}: weight of shape {np.asarray(w).shape} "
                        f"does not fit (expected the Keras shape of "
                        f"{tuple(s.tensor.shape)})"
                    )
                s.tensor.copy_(ember.tensor(arr.astype(s.tensor.dtype.np)))

    @property
    def weights(self):
        return [s.tensor for s in weight_specs(self)]

    @property
    def trainable_weights(self):
        return [s.tensor for s in weight_specs(self) if s.trainable and s.tensor.requires_grad]

    @property
    def non_trainable_weights(self):
        return [
            s.tensor for s in weight_specs(self) if not (s.trainable and s.tensor.requires_grad)
        ]

    def count_params(self) -> int:
        """The number of stored weights (parameters and moving statistics).

        A recurrent layer's second (frozen, zero) bias vector is not counted: Keras keeps
        one bias where PyTorch's cells keep two."""
        if not self.built:
            raise ValueError(f"{self.name} is not built yet: call it on data or give input_shape")
        return sum(weight_counts(self))

    # -- config ---------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments, read back from the attributes ``__init__`` stored
        them in (``self.units`` for ``units``), plus ``name`` and ``trainable``."""
        cfg: dict = {"name": self.name, "trainable": self._trainable}
        if self._dtype_arg is not None:
            cfg["dtype"] = self._dtype_arg
        if not self.autocast:
            cfg["autocast"] = False
        cfg["activity_regularizer"] = self.activity_regularizer
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        for pname in init_params(type(self)):
            if pname in self._config_skip:
                continue
            attr = self._config_attrs.get(pname, pname)
            if not hasattr(self, attr):
                raise NotImplementedError(
                    f"{type(self).__name__}.get_config: the constructor argument {pname!r} is "
                    f"not stored as self.{attr}; store it in __init__ or override get_config"
                )
            cfg[pname] = getattr(self, attr)
        return {k: _serialize_value(v) for k, v in cfg.items()}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from . import deserialize_value

        return cls(**{k: deserialize_value(v, custom_objects) for k, v in config.items()})

    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs given the inputs and their ``mask``: the input mask for
        layers that support masking (Keras' default), else None.

        Example:
            >>> import ember
            >>> from ember import keras
            >>> m = ember.tensor([[True, False]])
            >>> keras.layers.Dropout(0.5).compute_mask(ember.ones(1, 2, 3), m).tolist()
            [[True, False]]
        """
        return mask if self.supports_masking else None

    def compute_output_shape(self, input_shape):
        kt = KerasTensor(input_shape)
        out = self._symbolic_call((kt,), {})
        self._inbound_nodes.pop()
        return out.shape

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def _layer_dtype(layer: str, dtype):
    """The floating dtype a layer computes in (float32 unless ``dtype`` names another)."""
    if dtype is None:
        return ember.float32
    name = str(getattr(dtype, "name", dtype)).replace("torch.", "")
    dt = getattr(ember, name, None)
    if dt is None or not getattr(dt, "is_floating_point", False):
        raise NotImplementedError(
            f"{layer}: dtype={dtype!r} is not supported (a floating dtype such as 'float32' or "
            "'float64'; mixed-precision policies are not)"
        )
    return dt


_BASE_PARAMS = frozenset(("activity_regularizer", "trainable", "dtype", "autocast", "name"))


def init_params(cls) -> list[str]:
    """The named constructor arguments of a layer class: those of its ``__init__`` and of
    the public layer classes it extends (a subclass passing ``**kwargs`` on), in order."""
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is Layer or not (isinstance(klass, type) and issubclass(klass, Layer)):
            break
        if klass is not cls and klass.__name__[0] == "_":
            continue  # private bases: their arguments reach the public class's __init__
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name not in names and p.name not in _BASE_PARAMS:
                names.append(p.name)
    return names


def with_defaults(*names: str, **defaults):
    """Class decorator: the base class' constructor under the base's signature with some
    defaults replaced (Keras' ``Conv2D`` has ``strides=(1, 1)`` where ``Conv1D`` has ``1``),
    so a public class states its Keras signature without restating the argument list.
    With ``names``, the signature keeps only those arguments of the base's, in that order
    (Keras' ``SimpleRNN`` has no ``recurrent_activation``); the others keep the base's
    defaults, and passing one of them raises ``ValueError`` as Keras does
    ("Unrecognized keyword arguments passed to SimpleRNN").

    Example:
        >>> from ember.keras.layers import Conv2D
        >>> import inspect
        >>> inspect.signature(Conv2D).parameters["strides"].default
        (1, 1)
    """

    def decorate(cls):
        base_init = cls.__mro__[1].__init__
        sig = inspect.signature(base_init)
        params = dict(sig.parameters)
        unknown = (set(defaults) | set(names)) - set(params)
        if unknown:
            raise TypeError(f"{cls.__name__}: no constructor arguments {sorted(unknown)}")
        first, *rest = params.values()
        var_kw = [p for p in rest if p.kind is p.VAR_KEYWORD]
        kept = [params[n] for n in names] + var_kw if names else rest
        sig = sig.replace(
            parameters=[first]
            + [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in kept]
        )

        def __init__(self, *args, **kwargs):
            given = sig.bind(self, *args, **kwargs)
            given.apply_defaults()
            values = dict(given.arguments)
            del values[first.name]
            extra = values.pop(var_kw[0].name, {}) if var_kw else {}
            dropped = sorted(k for k in extra if names and k in params and k not in names)
            if dropped:
                raise ValueError(
                    f"Unrecognized keyword arguments passed to {cls.__name__}: "
                    f"{ {k: extra[k] for k in dropped} }"
                )
            base_init(self, **values, **extra)

        __init__.__signature__ = sig  # type: ignore[attr-defined]
        __init__.__qualname__ = f"{cls.__name__}.__init__"
        __init__.__doc__ = base_init.__doc__
        cls.__init__ = __init__
        return cls

    return decorate


def check_supported(layer: str, **values) -> None:
    """Raise for Keras arguments given values this implementation does not support:
    ``name=(value, supported)`` pairs."""
    for pname, (value, ok) in values.items():
        if value is not ok and value != ok:
            raise NotImplementedError(f"{layer}: {pname}={value!r} is not supported (only {ok!r})")


def weight_counts(module) -> tuple[int, int]:
    """(trainable, non-trainable) numbers of stored weights: parameters that require grad;
    frozen parameters and floating-point buffers (moving mean/variance)."""
    tr = ntr = 0
    # a disabled scale or center is stored as a frozen constant, not a Keras weight
    hidden = {id(t) for m in module.modules() for t in getattr(m, "_hidden_weights", list)()}
    for p in module.parameters():
        if id(p) in hidden:
            continue
        if p.requires_grad:
            tr += p.numel()
        else:
            ntr += p.numel()
    for name, b in module.named_buffers():
        if b is not None and b.is_floating_point() and not name.endswith("num_batches_tracked"):
            ntr += b.numel()
    return int(tr), int(ntr)


def _module_specs(mod) -> list[WeightSpec]:
    specs = [WeightSpec(p, trainable=p.requires_grad) for p in mod.parameters()]
    for name, b in mod.named_buffers():
        if b is not None and b.is_floating_point() and not name.endswith("num_batches_tracked"):
            specs.append(WeightSpec(b, trainable=False))
    return specs


def _out_shape(x):
    if isinstance(x, ember.Tensor):
        return (None,) + tuple(x.shape[1:])
    if isinstance(x, (list, tuple)):
        return [_out_shape(v) for v in x]
    return None


def _shape_of(x):
    if isinstance(x, (ember.Tensor, KerasTensor)):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    if isinstance(x, np.ndarray):
        return tuple(x.shape)
    return None


def _jsonable_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_jsonable_shape(s) for s in shape]
    return [None] + [int(d) if d is not None else None for d in tuple(shape)[1:]]


def _serialize_value(v):
    from ember.keras import activations, constraints, initializers, regularizers

    if isinstance(v, regularizers.Regularizer):
        return regularizers.serialize(v)
    if isinstance(v, constraints.Constraint):
        return constraints.serialize(v)
    if isinstance(v, Layer):
        return serialize_layer(v)
    if isinstance(v, initializers.Initializer):
        return initializers.serialize(v)
    if isinstance(v, tuple):
        return [_serialize_value(x) for x in v]
    if isinstance(v, list):
        return [_serialize_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _serialize_value(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if callable(v):
        name = activations.serialize(v)
        if name is None or activations._ALL.get(name) is not v:
            raise TypeError(f"cannot serialize the callable {v!r} in a layer config")
        return name
    return v


def serialize_layer(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def weight_specs(layer: Any) -> list:
    """``layer._weight_specs()``; none for a layer not built yet that holds no weights (a
    subclassed model's ``Dense`` before its first call: Keras' ``get_weights()`` is ``[]``)."""
    if not getattr(layer, "built", True) and next(iter(layer.parameters()), None) is None:
        return []
    return layer._weight_specs()
