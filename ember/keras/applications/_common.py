"""What every application constructor shares: Keras' argument checks, the input, the top
(classifier or global pooling) and loading weights from a local file. An architecture is a
:class:`Spec` (its feature extractor and its classifier top); :func:`build` turns a spec and
Keras' constructor arguments into a model."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ember import keras
from ember.keras import layers

_POOLINGS = (None, "avg", "max")


def check_args(
    name: str,
    include_top: bool,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes: int,
    default_size: int,
    min_size: int,
) -> tuple:
    """Validate the shared arguments; returns the input shape (rows, cols, channels)."""
    if weights == "imagenet":
        raise ValueError(
            f"{name}: weights='imagenet' would need a download, and Ember never downloads; "
            "pass weights=None or the path of a local .weights.h5 file (e.g. written by "
            "Keras' model.save_weights), or register it with ember.models.weights"
        )
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"{name}: weights must be None or a file path, got {weights!r}")
    if weights is not None and not os.path.isfile(weights):
        raise FileNotFoundError(f"{name}: weights file {os.fspath(weights)!r} does not exist")
    if pooling not in _POOLINGS:
        raise ValueError(f"{name}: pooling must be None, 'avg' or 'max', got {pooling!r}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"{name}: classes must be a positive int, got {classes!r}")
    if input_tensor is not None:
        if not isinstance(input_tensor, layers.KerasTensor):
            raise TypeError(f"{name}: input_tensor must be a keras.Input(...) tensor")
        return tuple(input_tensor.shape[1:])
    if input_shape is None:
        return (default_size, default_size, 3) if include_top else (None, None, 3)
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
        raise ValueError(
            f"{name}: input_shape must be (rows, cols, channels) of positive ints, got "
            f"{input_shape!r}"
        )
    if shape[2] is None:
        raise ValueError(f"{name}: input_shape needs a known number of channels, got {shape}")
    for d in shape[:2]:
        if d is not None and d < min_size:
            raise ValueError(
                f"{name}: input size must be at least {min_size}x{min_size}; got input_shape="
                f"{shape}"
            )
    if include_top and None in shape[:2]:
        raise ValueError(f"{name}: include_top=True needs a fixed input size, got {shape}")
    return shape


def make_input(input_tensor, shape, default_size: int = 224):
    """The model input. NOTE: an unknown spatial size (``None``, Keras' default without the
    top) is built at ``default_size``: Ember traces the graph with concrete shapes. The model
    still accepts any large enough size at run time; only ``output_shape`` shows the stand-in."""
    if input_tensor is not None:
        return input_tensor
    rows, cols, ch = shape
    return keras.Input((rows or default_size, cols or default_size, ch))


def finish(
    name: str,
    inputs,
    x,
    include_top: bool,
    pooling,
    classes: int,
    classifier_activation,
    weights,
    top=None,
    pool_names=(None, None),
):
    """Add the classifier (``top(x)`` then ``predictions``) or the pooling, build the model and
    load ``weights``. ``pool_names``: the (average, max) pooling layers' names where Keras
    names them (ResNet does; VGG and MobileNetV2 leave them to the automatic names)."""
    avg_name, max_name = pool_names
    if include_top:
        x = top(x) if top is not None else layers.GlobalAveragePooling2D(name=avg_name)(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name=avg_name)(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name=max_name)(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model, path) -> None:
    """A Keras 3 ``.weights.h5`` file through Ember's array-only reader; other files through
    ``model.load_weights``."""
    if os.fspath(path).endswith(".h5"):
        from ember.models.weights import load_keras_weights

        load_keras_weights(model, path)
    else:
        model.load_weights(path)


@dataclass(frozen=True)
class Spec:
    """One architecture: ``features(inputs) -> feature map``; ``top(x)`` is what comes before
    the ``predictions`` layer with ``include_top`` (default: global average pooling named
    ``pool_names[0]``); ``pool_names`` names the (average, max) pooling without the top."""

    label: str
    features: Callable
    top: Callable | None = None
    pool_names: tuple = (None, None)
    default_size: int = 224
    min_size: int = 32


def build(
    spec: Spec,
    include_top: bool,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes: int,
    classifier_activation,
    name: str | Callable[[tuple], str],
):
    """The model of ``spec`` for Keras' constructor arguments (an application passes its
    own, ``build(spec, **locals())``); ``name`` may be a function of the input shape
    (MobileNetV2 puts the size in its default name)."""
    shape = check_args(
        spec.label,
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        spec.default_size,
        spec.min_size,
    )
    inputs = make_input(input_tensor, shape, spec.default_size)
    x = spec.features(inputs)
    if callable(name):
        name = name(shape)
    return finish(
        name,
        inputs,
        x,
        include_top,
        pooling,
        classes,
        classifier_activation,
        weights,
        spec.top,
        spec.pool_names,
    )
