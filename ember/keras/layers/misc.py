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
    """Softmax along ``axis``; with a ``mask`` (broadcastable to the inputs, True or > 0.5
    where kept), the masked entries get Keras' large negative score before the softmax and
    0 after it.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> x = ember.tensor([[1.0, 2.0, 3.0]])
        >>> keras.layers.Softmax()(x, mask=ember.tensor([[True, True, False]])).tolist()[0][2]
        0.0
    """

    supports_masking = True

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs, mask=None):
        if mask is None:
            return ember.softmax(inputs, dim=self.axis)
        mask = ember.as_tensor(mask)
        shape, mshape = tuple(inputs.shape), tuple(mask.shape)
        if len(mshape) > len(shape) or any(
            m != 1 and m != i for m, i in zip(mshape[::-1], shape[::-1])
        ):
            raise ValueError(
                "Softmax: the `mask` must be broadcastable to `inputs` and must not have more "
                f"dimensions. Received: inputs.shape={shape}, mask.shape={mshape}"
            )
        keep = mask if mask.dtype == ember.bool else mask > 0.5
        big = -1e9 if inputs.dtype != ember.float16 else -3e4
        out = ember.softmax(ember.where(keep, inputs, ember.full_like(inputs, big)), dim=self.axis)
        # an axis masked throughout would be uniform: Keras zeroes it
        return ember.where(keep, out, ember.zeros_like(out))


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
