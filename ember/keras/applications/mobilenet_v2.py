"""MobileNetV2 (Sandler et al., 2018) with ``keras.applications``' layer names and layout:
explicit asymmetric padding before strided depthwise convolutions, batch norm with epsilon 1e-3
and momentum 0.999, ReLU6."""

from __future__ import annotations

from functools import partial

import numpy as np

from ember.keras import layers

from ..layers.depthwise import DepthwiseConv2D
from ._common import Spec, build

__all__ = ["MobileNetV2", "preprocess_input"]

# (filters, stride, expansion) of blocks 0..16
_BLOCKS = [(16, 1, 1)]
_BLOCKS += [(24, 2, 6), (24, 1, 6)]
_BLOCKS += [(32, 2, 6)] + [(32, 1, 6)] * 2
_BLOCKS += [(64, 2, 6)] + [(64, 1, 6)] * 3
_BLOCKS += [(96, 1, 6)] * 3
_BLOCKS += [(160, 2, 6)] + [(160, 1, 6)] * 2
_BLOCKS += [(320, 1, 6)]


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10%
        new_v += divisor
    return new_v


def _bn(name: str):
    return layers.BatchNormalization(axis=3, epsilon=1e-3, momentum=0.999, name=name)


def _correct_pad(x) -> tuple:
    # TensorFlow-style 'same' for a 3x3 stride-2 conv: the odd pixel goes at the end
    rows, cols = x.shape[1:3]
    adjust = (1, 1) if rows is None else (1 - rows % 2, 1 - cols % 2)
    return ((1 - adjust[0], 1), (1 - adjust[1], 1))


def _inverted_res_block(inputs, expansion: int, stride: int, alpha: float, filters: int, bid):
    cin = inputs.shape[-1]
    pointwise = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{bid}_"
    if bid:
        x = layers.Conv2D(
            expansion * cin, 1, padding="same", use_bias=False, name=prefix + "expand"
        )(x)
        x = _bn(prefix + "expand_BN")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(_correct_pad(x), name=prefix + "pad")(x)
    x = DepthwiseConv2D(
        3,
        strides=stride,
        use_bias=False,
        padding="same" if stride == 1 else "valid",
        name=prefix + "depthwise",
    )(x)
    x = _bn(prefix + "depthwise_BN")(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = layers.Conv2D(pointwise, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = _bn(prefix + "project_BN")(x)
    if cin == pointwise and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


def MobileNetV2(
    input_shape=None,
    alpha: float = 1.0,
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name=None,
):
    """MobileNetV2 as ``keras.applications.MobileNetV2`` (3,538,984 weights with the top and
    ``alpha=1``); ``alpha`` scales every layer's width.

    Example:
        >>> from ember.keras.applications import MobileNetV2
        >>> m = MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False)
        >>> m.output_shape, m.name
        ((None, 1, 1, 1280), 'mobilenetv2_0.35_32')
    """
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or alpha <= 0:
        raise ValueError(f"MobileNetV2: alpha must be a positive number, got {alpha!r}")
    return build(
        Spec("MobileNetV2", partial(_features, alpha=alpha)),
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
        name if name is not None else lambda shape: f"mobilenetv2_{alpha:0.2f}_{shape[0]}",
    )


def _features(inputs, alpha: float):
    x = layers.Conv2D(
        _make_divisible(32 * alpha, 8),
        3,
        strides=2,
        padding="same",
        use_bias=False,
        name="Conv1",
    )(inputs)
    x = _bn("bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for bid, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, expansion, stride, alpha, filters, bid)
    last = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = _bn("Conv_1_bn")(x)
    return layers.ReLU(6.0, name="out_relu")(x)


def preprocess_input(x, data_format=None):
    """Keras' "tf" preprocessing for MobileNetV2: pixels in [0, 255] to [-1, 1].

        Example:
            >>> from functools import partial

    import numpy as np
            >>> preprocess_input(np.array([0.0, 127.5, 255.0])).tolist()
            [-1.0, 0.0, 1.0]
    """
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"preprocess_input: unknown data_format {data_format!r}")
    return np.asarray(x, dtype=np.float32) / 127.5 - 1.0
