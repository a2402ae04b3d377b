"""``DepthwiseConv2D`` (MobileNetV2 needs it): a grouped ``nn.Conv2d`` with one group per input
channel, its kernel stored in Keras' layout ``(rows, cols, in_channels, depth_multiplier)``."""

from __future__ import annotations

from .. import initializers, regularizers
from .base import WeightSpec, register
from .conv import _Conv

__all__ = ["DepthwiseConv2D"]


@register
class DepthwiseConv2D(_Conv):
    """Per-channel 2-D convolution over (batch, rows, cols, channels); output channel
    ``c * depth_multiplier + m`` comes from input channel ``c``, as in Keras.

    Example:
        >>> import ember
        >>> from ember.keras.layers import DepthwiseConv2D
        >>> layer = DepthwiseConv2D(3, depth_multiplier=2, padding="same")
        >>> layer(ember.zeros(1, 5, 5, 4)).shape, layer.get_weights()[0].shape
        (ember.Size([1, 5, 5, 8]), (3, 3, 4, 2))
    """

    rank = 2

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier: int = 1,
        data_format=None,
        dilation_rate=(1, 1),
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(
                "DepthwiseConv2D: depth_multiplier must be a positive int, got "
                f"{depth_multiplier!r}"
            )
        super().__init__(
            1,  # filters and groups follow from the input channels in build
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            1,
            activation,
            use_bias,
            depthwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            bias_regularizer,
            activity_regularizer,
            depthwise_constraint,
            bias_constraint,
            **kwargs,
        )
        self.depth_multiplier = depth_multiplier
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = self.kernel_constraint

    def build(self, input_shape):
        cin = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        if cin is None:
            raise ValueError("DepthwiseConv2D: the number of input channels must be known")
        self.filters, self.groups = int(cin) * self.depth_multiplier, int(cin)
        super().build(input_shape)

    def _weight_specs(self):
        # torch weight (in * m, 1, kh, kw) <-> Keras kernel (kh, kw, in, m)
        kh, kw = self.kernel_size
        m, cin = self.depth_multiplier, self.groups

        def to_keras(a):
            return a.reshape(cin, m, kh, kw).transpose(2, 3, 0, 1)

        def from_keras(a):
            return a.transpose(2, 3, 0, 1).reshape(cin * m, 1, kh, kw)

        specs = [WeightSpec(self.conv.weight, to_keras, from_keras)]
        if self.use_bias:
            specs.append(WeightSpec(self.conv.bias))
        return specs
