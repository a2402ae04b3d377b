"""Small Keras layers: activation layers (ReLU, LeakyReLU, Softmax), Rescaling, ZeroPadding2D,
UpSampling2D and the TimeDistributed wrapper."""

from __future__ import annotations

import ember

from .base import Layer, register
from .conv import _check_format

__all__ = [
    "LeakyReLU",
    "ReLU",
    "Rescaling",
    "Softmax",
    "TimeDistributed",
    "UpSampling2D",
    "ZeroPadding2D",
]


@register
class ReLU(Layer):
    supports_masking = True

    def __init__(
        self, max_value=None, negative_slope: float = 0.0, threshold: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def call(self, inputs):
        from ..activations import relu

        return relu(inputs, self.negative_slope, self.max_value, self.threshold)


@register
class LeakyReLU(Layer):
    supports_masking = True

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return ember.leaky_relu(inputs, self.negative_slope)


@register
class Softmax(Layer):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return ember.softmax(inputs, dim=self.axis)


@register
class Rescaling(Layer):
    """``inputs * scale + offset`` (e.g. ``Rescaling(1/255)``)."""

    supports_masking = True

    def __init__(self, scale: float, offset: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, inputs):
        if not inputs.is_floating_point():
            inputs = inputs.float()
        return inputs * self.scale + self.offset


def _pairs(padding):
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    a, b = padding
    a = (a, a) if isinstance(a, int) else tuple(a)
    b = (b, b) if isinstance(b, int) else tuple(b)
    return (a, b)


@register
class ZeroPadding2D(Layer):
    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding, self.data_format = _pairs(padding), _check_format(data_format)

    def call(self, inputs):
        from ember.nn import functional as F

        (t, b), (lft, r) = self.padding
        if self.data_format == "channels_last":
            return F.pad(inputs, (0, 0, lft, r, t, b))
        return F.pad(inputs, (lft, r, t, b))


@register
class UpSampling2D(Layer):
    """Nearest-neighbour upsampling by ``size`` (rows, cols)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if interpolation != "nearest":
            raise ValueError("UpSampling2D: only interpolation='nearest' is supported")
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.data_format, self.interpolation = _check_format(data_format), interpolation

    def call(self, inputs):
        h_axis = 1 if self.data_format == "channels_last" else 2
        x = ember.repeat_interleave(inputs, self.size[0], dim=h_axis)
        return ember.repeat_interleave(x, self.size[1], dim=h_axis + 1)


@register
class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: (batch, time, ...) -> (batch, time, ...)."""

    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            from . import deserialize

            layer = deserialize(layer)
        self.layer = layer

    def call(self, inputs, training=None):
        n, t = inputs.shape[0], inputs.shape[1]
        y = self.layer(inputs.reshape((n * t,) + tuple(inputs.shape[2:])))
        return y.reshape((n, t) + tuple(y.shape[1:]))
