"""ResNet50/101/152 (He et al., 2015) with ``keras.applications``' layer names and layout
(ResNet v1: the stride sits on the first 1x1 convolution of a stage; convolutions have biases)."""

from __future__ import annotations

from ember.keras import layers

from ._common import Spec, build

__all__ = ["ResNet50", "ResNet101", "ResNet152", "preprocess_input"]

_EPS = 1.001e-5


def _block(x, filters: int, stride: int = 1, conv_shortcut: bool = True, name: str = ""):
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=3, epsilon=_EPS, name=name + "_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=name + "_1_bn")(x)
    x = layers.Activation("relu", name=name + "_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", name=name + "_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=name + "_2_bn")(x)
    x = layers.Activation("relu", name=name + "_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=name + "_3_bn")(x)
    x = layers.Add(name=name + "_add")([shortcut, x])
    return layers.Activation("relu", name=name + "_out")(x)


def _stack(x, filters: int, blocks: int, stride1: int = 2, name: str = ""):
    x = _block(x, filters, stride=stride1, name=name + "_block1")
    for i in range(2, blocks + 1):
        x = _block(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def _features(blocks: tuple):
    def features(inputs):
        x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(inputs)
        x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
        x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
        x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
        x = _stack(x, 64, blocks[0], stride1=1, name="conv2")
        x = _stack(x, 128, blocks[1], name="conv3")
        x = _stack(x, 256, blocks[2], name="conv4")
        return _stack(x, 512, blocks[3], name="conv5")

    return features


def _spec(label: str, blocks: tuple) -> Spec:
    return Spec(label, _features(blocks), pool_names=("avg_pool", "max_pool"))


_SPECS = {
    "ResNet50": _spec("ResNet50", (3, 4, 6, 3)),
    "ResNet101": _spec("ResNet101", (3, 4, 23, 3)),
    "ResNet152": _spec("ResNet152", (3, 8, 36, 3)),
}


def ResNet50(
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "resnet50",
):
    """ResNet-50 as ``keras.applications.ResNet50`` (25,636,712 weights with the top).

    ``weights``: None (random) or the path of a local ``.weights.h5`` file; ``'imagenet'``
    is refused because Ember never downloads.

    Example:
        >>> from ember.keras.applications import ResNet50
        >>> m = ResNet50(include_top=False, input_shape=(32, 32, 3), pooling="avg")
        >>> m.output_shape
        (None, 2048)
    """
    return build(_SPECS["ResNet50"], **locals())


def ResNet101(
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "resnet101",
):
    """ResNet-101 as ``keras.applications.ResNet101``.

    Example:
        >>> from ember.keras.applications import ResNet101
        >>> m = ResNet101(include_top=False, input_shape=(32, 32, 3))  # doctest: +SKIP
        >>> m.output_shape  # doctest: +SKIP
        (None, 1, 1, 2048)
    """
    return build(_SPECS["ResNet101"], **locals())


def ResNet152(
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "resnet152",
):
    """ResNet-152 as ``keras.applications.ResNet152``.

    Example:
        >>> from ember.keras.applications import ResNet152
        >>> ResNet152(include_top=False, input_shape=(32, 32, 3)).name  # doctest: +SKIP
        'resnet152'
    """
    return build(_SPECS["ResNet152"], **locals())


def preprocess_input(x, data_format=None):
    """Keras' "caffe" preprocessing for ResNet and VGG: RGB -> BGR, minus the ImageNet
    channel means (no scaling); channels-last NumPy arrays.

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.zeros((1, 1, 1, 3), np.float32)).ravel().tolist()
        [-103.93900299072266, -116.77899932861328, -123.68000030517578]
    """
    import numpy as np

    if data_format not in (None, "channels_last"):
        raise ValueError("preprocess_input: only channels_last arrays are supported")
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] != 3:
        raise ValueError(f"preprocess_input: expected 3 channels last, got shape {x.shape}")
    return x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
