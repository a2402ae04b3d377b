"""InceptionV3 (Szegedy et al., 2015) with ``keras.applications``' layout: every convolution is
bias-free and followed by batch norm without a scale (epsilon 1e-3) and ReLU; the 3x3 average
pools of the branches use TensorFlow's ``'same'`` padding (pads do not count in the mean).
Keras leaves the convolution, batch-norm and activation layers unnamed; only the
concatenations (``mixed0`` ... ``mixed10``, ``mixed9_0``/``mixed9_1``) and the top
(``avg_pool``, ``predictions``) carry names."""

from __future__ import annotations

import numpy as np

from ember.keras import layers

from ._common import Spec, build

__all__ = ["InceptionV3", "preprocess_input"]


def _cbr(x, filters: int, rows: int, cols: int, strides: int = 1, padding: str = "same"):
    x = layers.Conv2D(filters, (rows, cols), strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(axis=3, scale=False)(x)
    return layers.Activation("relu")(x)


def _cat(xs, name: str | None = None):
    return layers.Concatenate(axis=3, name=name)(xs)


def _pool_branch(x, filters: int):
    x = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return _cbr(x, filters, 1, 1)


def _block_35(x, pool_filters: int, name: str):
    # 35x35 grid: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | pool -> 1x1
    b1 = _cbr(x, 64, 1, 1)
    b5 = _cbr(_cbr(x, 48, 1, 1), 64, 5, 5)
    b3 = _cbr(_cbr(_cbr(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
    return _cat([b1, b5, b3, _pool_branch(x, pool_filters)], name)


def _block_17(x, width: int, name: str):
    # 17x17 grid: factorised 7x7 convolutions (1x7 then 7x1) of ``width`` inner channels
    b1 = _cbr(x, 192, 1, 1)
    b7 = _cbr(_cbr(_cbr(x, width, 1, 1), width, 1, 7), 192, 7, 1)
    d = _cbr(x, width, 1, 1)
    for filters, rows, cols in ((width, 7, 1), (width, 1, 7), (width, 7, 1), (192, 1, 7)):
        d = _cbr(d, filters, rows, cols)
    return _cat([b1, b7, d, _pool_branch(x, 192)], name)


def _block_8(x, i: int):
    # 8x8 grid: the 3x3 branches end in parallel 1x3 and 3x1 convolutions
    b1 = _cbr(x, 320, 1, 1)
    b3 = _cbr(x, 384, 1, 1)
    b3 = _cat([_cbr(b3, 384, 1, 3), _cbr(b3, 384, 3, 1)], f"mixed9_{i}")
    d = _cbr(_cbr(x, 448, 1, 1), 384, 3, 3)
    d = _cat([_cbr(d, 384, 1, 3), _cbr(d, 384, 3, 1)])
    return _cat([b1, b3, d, _pool_branch(x, 192)], f"mixed{9 + i}")


def _features(inputs):
    x = _cbr(inputs, 32, 3, 3, strides=2, padding="valid")
    x = _cbr(x, 32, 3, 3, padding="valid")
    x = _cbr(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = _cbr(x, 80, 1, 1, padding="valid")
    x = _cbr(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = _block_35(x, 32, "mixed0")
    x = _block_35(x, 64, "mixed1")
    x = _block_35(x, 64, "mixed2")
    # grid reduction 35 -> 17
    b3 = _cbr(x, 384, 3, 3, strides=2, padding="valid")
    d = _cbr(_cbr(x, 64, 1, 1), 96, 3, 3)
    d = _cbr(d, 96, 3, 3, strides=2, padding="valid")
    x = _cat([b3, d, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], "mixed3")
    for name, width in (("mixed4", 128), ("mixed5", 160), ("mixed6", 160), ("mixed7", 192)):
        x = _block_17(x, width, name)
    # grid reduction 17 -> 8
    b3 = _cbr(_cbr(x, 192, 1, 1), 320, 3, 3, strides=2, padding="valid")
    d = _cbr(_cbr(_cbr(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    d = _cbr(d, 192, 3, 3, strides=2, padding="valid")
    x = _cat([b3, d, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], "mixed8")
    return _block_8(_block_8(x, 0), 1)


def _top(x):
    return layers.GlobalAveragePooling2D(name="avg_pool")(x)


_SPEC = Spec("InceptionV3", _features, _top, default_size=299, min_size=75)


def InceptionV3(
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "inception_v3",
):
    """Inception v3 as ``keras.applications.InceptionV3`` (23,851,784 weights with the top;
    299x299 inputs by default, at least 75x75).

    ``weights``: None (random) or the path of a local ``.weights.h5`` file; ``'imagenet'``
    is refused because Ember never downloads.

    Example:
        >>> from ember.keras.applications import InceptionV3
        >>> m = InceptionV3(include_top=False, input_shape=(75, 75, 3), pooling="avg")
        >>> m.output_shape
        (None, 2048)
    """
    return build(_SPEC, **locals())


def preprocess_input(x, data_format=None):
    """Keras' "tf" preprocessing for InceptionV3: pixels in [0, 255] to [-1, 1].

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([0.0, 255.0])).tolist()
        [-1.0, 1.0]
    """
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"preprocess_input: unknown data_format {data_format!r}")
    return np.asarray(x, dtype=np.float32) / 127.5 - 1.0
