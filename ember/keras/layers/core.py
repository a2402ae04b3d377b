"""Core Keras layers: Input, Dense, Activation, Dropout, Flatten, Reshape, Embedding, Lambda,
and the merge layers (Add, Concatenate, ...)."""

from __future__ import annotations

import functools
import inspect
import math
import operator

import ember
from ember import nn

from .. import activations, constraints, initializers, random, regularizers
from .base import KerasTensor, Layer, WeightSpec, check_supported, register

__all__ = [
    "Activation",
    "Add",
    "Average",
    "Concatenate",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "Lambda",
    "Masking",
    "Maximum",
    "Minimum",
    "Multiply",
    "Permute",
    "RepeatVector",
    "Reshape",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]


def _T(a):
    return a.T


@register
class InputLayer(Layer):
    """The source of a functional graph (created by :func:`Input`)."""

    def __init__(
        self,
        shape=None,
        batch_size=None,
        dtype=None,
        sparse=None,
        ragged=None,
        batch_shape=None,
        input_tensor=None,
        optional=False,
        name=None,
        **kwargs,
    ):
        check_supported(
            "InputLayer",
            sparse=(bool(sparse), False),
            ragged=(bool(ragged), False),
            input_tensor=(input_tensor, None),
            optional=(optional, False),
        )
        super().__init__(name=name, **kwargs)
        if batch_shape is not None:
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        self.shape, self.batch_size = tuple(shape or ()), batch_size
        self.dtype_name = str(dtype) if dtype is not None else "float32"
        self.built = True
        self.output = KerasTensor(
            (batch_size,) + self.shape, self.dtype_name, (self, 0, 0), name=self.name
        )

    def call(self, x):
        return x

    def get_config(self) -> dict:
        return {
            "shape": list(self.shape),
            "batch_size": self.batch_size,
            "dtype": self.dtype_name,
            "name": self.name,
        }


def Input(
    shape=None,
    batch_size=None,
    dtype=None,
    sparse=None,
    ragged=None,
    batch_shape=None,
    name=None,
    tensor=None,
    optional=False,
):
    """A symbolic input of one sample's ``shape`` (the batch dimension is implicit)."""
    if batch_shape is not None:
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    if shape is None:
        raise ValueError("Input: give shape= (the shape of one sample)")
    if (
        isinstance(shape, (str, bytes))
        or not hasattr(shape, "__iter__")
        or not all(d is None or (_is_int(d) and d >= 0) for d in shape)
    ):
        raise ValueError(
            f"Input: shape must be a tuple of non-negative ints or None, got {shape!r}"
        )
    layer = InputLayer(
        shape=tuple(shape),
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        ragged=ragged,
        input_tensor=tensor,
        optional=optional,
        name=name,
    )
    return layer.output


def _is_int(d) -> bool:
    try:
        d.__index__()
    except (AttributeError, TypeError):
        return False
    return not isinstance(d, bool)


@register
class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis (an ``nn.Linear`` underneath;
    its ``weight`` is the transpose of Keras' ``kernel``)."""

    supports_masking = True

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        check_supported(
            "Dense",
            lora_rank=(lora_rank, None),
            lora_alpha=(lora_alpha, None),
            quantization_config=(quantization_config, None),
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(units, (str, bytes)) or int(units) < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units, self.use_bias = int(units), bool(use_bias)
        self.activation = activations.get(activation)
        self._store_weight_args(locals())
        self.lora_rank, self.lora_alpha = lora_rank, lora_alpha
        self.quantization_config = quantization_config

    def build(self, input_shape):
        self.linear = nn.Linear(int(input_shape[-1]), self.units, bias=self.use_bias)
        self.kernel_initializer(self.linear.weight)
        if self.use_bias:
            self.bias_initializer(self.linear.bias)
        self._regularize(self.kernel_regularizer, lambda: self.linear.weight.T)
        self._constrain(self.kernel_constraint, self.linear.weight, _T, _T)
        if self.use_bias:
            self._regularize(self.bias_regularizer, lambda: self.linear.bias)
            self._constrain(self.bias_constraint, self.linear.bias)

    def call(self, inputs):
        return self.activation(self.linear(inputs))

    def _weight_specs(self):
        s = [WeightSpec(self.linear.weight, _T, _T)]
        if self.use_bias:
            s.append(WeightSpec(self.linear.bias))
        return s

    @property
    def kernel(self):
        return self.linear.weight.T

    @property
    def bias(self):
        return self.linear.bias if self.use_bias else None


@register
class Activation(Layer):
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)


@register
class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs in training (scaled by ``1/(1-rate)``).
    ``noise_shape`` shares one draw along its size-1 (or None: the input's) axes; ``seed``
    makes the masks a reproducible sequence of their own, as Keras' seeded dropout."""

    supports_masking = True

    def __init__(self, rate: float, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate, self.seed = float(rate), seed
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.dropout = nn.Dropout(self.rate)
        self._seed_gen = None
        if seed is not None:
            self._seed_gen = random.SeedGenerator(int(seed))

    def call(self, inputs, training=None):
        active = self.dropout.training if training is None else bool(training)
        if not active or self.rate == 0.0:
            return inputs
        if self.noise_shape is None and self._seed_gen is None:
            was = self.dropout.training
            self.dropout.train(True)
            try:
                return self.dropout(inputs)
            finally:
                self.dropout.train(was)

        return random.dropout(inputs, self.rate, self.noise_shape, seed=self._seed_gen)


@register
class Flatten(Layer):
    """Flatten all but the batch axis (channels-last order, as Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ember.movedim(inputs, 1, -1)
        return inputs.reshape(inputs.shape[0], -1)


@register
class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        n = inputs.shape[0]
        if (
            math.prod(inputs.shape[1:]) != abs(math.prod(self.target_shape))
            and -1 not in self.target_shape
        ):
            raise ValueError(
                f"Reshape: input of shape {tuple(inputs.shape)} cannot be "
                f"reshaped to (batch,) + {self.target_shape}"
            )
        return inputs.reshape((n,) + self.target_shape)


@register
class Permute(Layer):
    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        return inputs.permute(0, *self.dims)


@register
class RepeatVector(Layer):
    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return inputs.unsqueeze(1).expand(inputs.shape[0], self.n, inputs.shape[1])


@register
class Embedding(Layer):
    """Integer indices to dense vectors (an ``nn.Embedding``; Keras init uniform ±0.05)."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero: bool = False,
        weights=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        check_supported(
            "Embedding",
            lora_rank=(lora_rank, None),
            lora_alpha=(lora_alpha, None),
            quantization_config=(quantization_config, None),
        )
        kwargs.pop("input_length", None)  # Keras 2 argument, ignored by Keras 3 too
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.mask_zero = bool(mask_zero)
        init = embeddings_initializer
        self.embeddings_initializer = (
            initializers.RandomUniform() if init == "uniform" else initializers.get(init)
        )
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.lora_rank, self.lora_alpha = lora_rank, lora_alpha
        self.quantization_config = quantization_config
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        self.embeddings_initializer(self.embedding.weight)
        self._regularize(self.embeddings_regularizer, lambda: self.embedding.weight)
        self._constrain(self.embeddings_constraint, self.embedding.weight)
        self._initial_weights = weights
        self._finish_build()

    supports_masking = True

    def call(self, inputs):
        if inputs.is_floating_point():
            inputs = inputs.long()
        return self.embedding(inputs)

    def compute_mask(self, inputs, mask=None):
        """With ``mask_zero=True``, the mask ``inputs != 0`` (index 0 is padding), else None.

        Example:
            >>> import ember
            >>> from ember import keras
            >>> emb = keras.layers.Embedding(5, 2, mask_zero=True)
            >>> emb.compute_mask(ember.tensor([[3, 1, 0]])).tolist()
            [[True, True, False]]
        """
        if not self.mask_zero:
            return None
        return ember.as_tensor(inputs) != 0


@register
class Masking(Layer):
    """Mask the time steps whose features all equal ``mask_value``: the outputs are the
    inputs with those steps zeroed, and carry the mask (``True`` for the steps kept) on to
    the layers after (recurrent layers skip the masked steps).

    Example:
        >>> import ember
        >>> from ember import keras
        >>> x = ember.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]])
        >>> keras.layers.Masking(mask_value=0.0).compute_mask(x).tolist()
        [[True, False, True]]
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, (str, bytes)):
            raise TypeError(f"Masking: mask_value must be a number, got {mask_value!r}")
        self.mask_value = mask_value

    def compute_mask(self, inputs, mask=None):
        return (inputs != self.mask_value).any(dim=-1)

    def call(self, inputs):
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)
        return ember.where(keep, inputs, ember.zeros_like(inputs))


@register
class Lambda(Layer):
    """Wrap a function of tensors (not serializable to a config). As Keras, the input mask
    reaches ``function`` when it takes a ``mask`` argument, and the output's mask is
    ``mask(inputs, input_mask)`` for a callable ``mask``, ``mask`` itself for a tensor, else
    none.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> layer = keras.layers.Lambda(lambda x: x * 2, mask=lambda x, m: x[..., 0] > 0)
        >>> layer(ember.tensor([[[1.0], [-1.0]]]))._keras_mask.tolist()
        [[True, False]]
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        self.function, self.output_shape, self.mask = function, output_shape, mask
        self.supports_masking = mask is not None
        self.arguments = dict(arguments or {})
        try:
            self._fn_takes_mask = "mask" in inspect.signature(function).parameters
        except (TypeError, ValueError):
            self._fn_takes_mask = False

    def call(self, inputs, mask=None):
        kwargs = dict(self.arguments)
        if self._fn_takes_mask:
            kwargs["mask"] = mask
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def get_config(self):
        raise TypeError("Lambda layers cannot be serialized; rebuild the model in code")


def _fold(op):
    """A ``_merge`` combining the inputs left to right with ``op``."""

    def merge(self, xs):
        return functools.reduce(op, xs)

    return merge


class _Merge(Layer):
    supports_masking = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def compute_mask(self, inputs, mask=None):
        # Keras: the inputs' masks combined with AND (a missing mask keeps every step)
        masks = [m for m in (mask or ()) if m is not None]
        if not masks:
            return None
        out = ember.as_tensor(masks[0]).to(ember.bool)
        for m in masks[1:]:
            out = out & ember.as_tensor(m).to(ember.bool)
        return out

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} expects a list of at least 2 tensors")
        return self._merge(list(inputs))


@register
class Add(_Merge):
    _merge = _fold(operator.add)


@register
class Subtract(_Merge):
    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError("Subtract expects exactly 2 tensors")
        return xs[0] - xs[1]


@register
class Multiply(_Merge):
    _merge = _fold(operator.mul)


@register
class Average(_Merge):
    def _merge(self, xs):
        return Add._merge(self, xs) / float(len(xs))


@register
class Maximum(_Merge):
    _merge = _fold(ember.maximum)


@register
class Minimum(_Merge):
    _merge = _fold(ember.minimum)


@register
class Concatenate(_Merge):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _merge(self, xs):
        return ember.cat(xs, dim=self.axis)

    def compute_mask(self, inputs, mask=None):
        # Keras: each mask broadcast to its input (all True where missing), concatenated
        # along ``axis`` and reduced with any() over the last axis: the masks concatenated
        # along the time axis, ORed along the features
        if mask is None or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(inputs, mask):
            if m is None:
                full.append(ember.ones(*x.shape, dtype=ember.bool))
                continue
            m = ember.as_tensor(m).to(ember.bool)
            full.append(m.unsqueeze(-1).expand(*x.shape) if m.ndim < x.ndim else m)
        return ember.cat(full, dim=self.axis).any(dim=-1)


def _merge_fn(cls, doc_example: str):
    def fn(inputs, **kwargs):
        return cls(**kwargs)(inputs)

    name = cls.__name__.lower()
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (
        f"Functional interface to the ``{cls.__name__}`` layer: "
        f"``{cls.__name__}(**kwargs)(inputs)``.\n\n"
        f"    Example:\n        >>> import ember\n        >>> from ember.keras import layers\n"
        f"        >>> a, b = ember.tensor([[1.0, 4.0]]), ember.tensor([[3.0, 2.0]])\n"
        f"        >>> layers.{name}([a, b]).tolist()\n        {doc_example}\n"
    )
    return fn


add = _merge_fn(Add, "[[4.0, 6.0]]")
subtract = _merge_fn(Subtract, "[[-2.0, 2.0]]")
multiply = _merge_fn(Multiply, "[[3.0, 8.0]]")
average = _merge_fn(Average, "[[2.0, 3.0]]")
maximum = _merge_fn(Maximum, "[[3.0, 4.0]]")
minimum = _merge_fn(Minimum, "[[1.0, 2.0]]")


def concatenate(inputs, axis: int = -1, **kwargs):
    """Functional interface to the ``Concatenate`` layer: ``Concatenate(axis)(inputs)``.

    Example:
        >>> import ember
        >>> from ember.keras import layers
        >>> layers.concatenate([ember.tensor([[1.0]]), ember.tensor([[2.0, 3.0]])]).tolist()
        [[1.0, 2.0, 3.0]]
    """
    return Concatenate(axis=axis, **kwargs)(inputs)
