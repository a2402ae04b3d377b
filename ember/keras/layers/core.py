"""Core Keras layers: Input, Dense, Activation, Dropout, Flatten, Reshape, Embedding, Lambda,
and the merge layers (Add, Concatenate, ...)."""

from __future__ import annotations

import math

import ember
from ember import nn

from .. import activations, initializers
from .base import KerasTensor, Layer, WeightSpec

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
    "Maximum",
    "Minimum",
    "Multiply",
    "Permute",
    "RepeatVector",
    "Reshape",
    "Subtract",
]


def _T(a):
    return a.T


class InputLayer(Layer):
    """The source of a functional graph (created by :func:`Input`)."""

    def __init__(self, shape=None, batch_size=None, dtype="float32", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.shape, self.batch_size, self.dtype_name = tuple(shape or ()), batch_size, dtype
        self.built = True
        self.output = KerasTensor((batch_size,) + self.shape, dtype, (self, 0, 0), name=self.name)

    def call(self, x):
        return x


def Input(shape=None, batch_size=None, dtype="float32", name=None, batch_shape=None):
    """A symbolic input of one sample's ``shape`` (the batch dimension is implicit)."""
    if batch_shape is not None:
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    if shape is None:
        raise ValueError("Input: give shape= (the shape of one sample)")
    return InputLayer(shape=tuple(shape), batch_size=batch_size, dtype=dtype, name=name).output


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis (an ``nn.Linear`` underneath;
    its ``weight`` is the transpose of Keras' ``kernel``)."""

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units, self.use_bias = int(units), use_bias
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        self.linear = nn.Linear(int(input_shape[-1]), self.units, bias=self.use_bias)
        self.kernel_initializer(self.linear.weight)
        if self.use_bias:
            self.bias_initializer(self.linear.bias)
        args = self._init_args[1]
        self._regularize(args.get("kernel_regularizer"), lambda: self.linear.weight)
        if self.use_bias:
            self._regularize(args.get("bias_regularizer"), lambda: self.linear.bias)

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


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)


class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs in training (scaled by ``1/(1-rate)``)."""

    def __init__(self, rate: float, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.dropout = nn.Dropout(self.rate)

    def call(self, inputs, training=None):
        if training is None or bool(training) == self.dropout.training:
            return self.dropout(inputs)
        was = self.dropout.training
        self.dropout.train(bool(training))
        try:
            return self.dropout(inputs)
        finally:
            self.dropout.train(was)


class Flatten(Layer):
    """Flatten all but the batch axis (channels-last order, as Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ember.movedim(inputs, 1, -1)
        return inputs.reshape(inputs.shape[0], -1)


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


class Permute(Layer):
    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        return inputs.permute(0, *self.dims)


class RepeatVector(Layer):
    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return inputs.unsqueeze(1).expand(inputs.shape[0], self.n, inputs.shape[1])


class Embedding(Layer):
    """Integer indices to dense vectors (an ``nn.Embedding``; Keras init uniform ±0.05)."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="uniform",
        mask_zero: bool = False,
        input_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.mask_zero = mask_zero
        init = embeddings_initializer
        self.embeddings_initializer = (
            initializers.RandomUniform() if init == "uniform" else initializers.get(init)
        )
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        self.embeddings_initializer(self.embedding.weight)
        self.built = True

    def call(self, inputs):
        if inputs.is_floating_point():
            inputs = inputs.long()
        return self.embedding(inputs)


class Lambda(Layer):
    """Wrap a function of tensors (not serializable to a config)."""

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, inputs):
        return self.function(inputs)

    def get_config(self):
        raise TypeError("Lambda layers cannot be serialized; rebuild the model in code")


class _Merge(Layer):
    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} expects a list of at least 2 tensors")
        return self._merge(list(inputs))


class Add(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError("Subtract expects exactly 2 tensors")
        return xs[0] - xs[1]


class Multiply(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Merge):
    def _merge(self, xs):
        return Add._merge(self, xs) / float(len(xs))


class Maximum(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ember.maximum(out, x)
        return out


class Minimum(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ember.minimum(out, x)
        return out


class Concatenate(_Merge):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _merge(self, xs):
        return ember.cat(xs, dim=self.axis)
