"""VGG16 and VGG19 (Simonyan and Zisserman, 2014) with ``keras.applications``' layer names."""

from __future__ import annotations

from ember.keras import layers

from ._common import Spec, build
from .resnet import preprocess_input

__all__ = ["VGG16", "VGG19", "preprocess_input"]


def _features(convs: tuple):
    def features(inputs):
        x = inputs
        for block, (n, filters) in enumerate(zip(convs, (64, 128, 256, 512, 512)), start=1):
            for i in range(1, n + 1):
                x = layers.Conv2D(
                    filters, 3, activation="relu", padding="same", name=f"block{block}_conv{i}"
                )(x)
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
        return x

    return features


def _top(x):
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    return layers.Dense(4096, activation="relu", name="fc2")(x)


_SPECS = {
    "VGG16": Spec("VGG16", _features((2, 2, 3, 3, 3)), _top),
    "VGG19": Spec("VGG19", _features((2, 2, 4, 4, 4)), _top),
}


def VGG16(
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "vgg16",
):
    """VGG-16 as ``keras.applications.VGG16`` (138,357,544 weights with the top).

    Example:
        >>> from ember.keras.applications import VGG16
        >>> VGG16(include_top=False, input_shape=(32, 32, 3)).output_shape
        (None, 1, 1, 512)
    """
    return build(_SPECS["VGG16"], **locals())


def VGG19(
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "vgg19",
):
    """VGG-19 as ``keras.applications.VGG19`` (143,667,240 weights with the top).

    Example:
        >>> from ember.keras.applications import VGG19
        >>> VGG19(include_top=False, input_shape=(32, 32, 3), pooling="max").output_shape
        (None, 512)
    """
    return build(_SPECS["VGG19"], **locals())
