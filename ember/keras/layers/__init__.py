"""Keras layers (``ember.keras.layers.Dense`` ...), each an ``ember.nn.Module`` that builds
its ``ember.nn`` sublayers on first call.

Example:
    >>> import ember
    >>> from ember.keras import layers
    >>> d = layers.Dense(3, activation="relu")
    >>> tuple(d(ember.ones(2, 5)).shape), [w.shape for w in d.get_weights()]
    ((2, 3), [(5, 3), (3,)])
"""

from __future__ import annotations

from .attention import MultiHeadAttention
from .base import LAYERS, KerasTensor, Layer, register, serialize_layer
from .conv import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from .core import (
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    InputLayer,
    Lambda,
    Masking,
    Maximum,
    Minimum,
    Multiply,
    Permute,
    RepeatVector,
    Reshape,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .depthwise import DepthwiseConv2D
from .misc import LeakyReLU, ReLU, Rescaling, Softmax, TimeDistributed, UpSampling2D, ZeroPadding2D
from .normalization import BatchNormalization, LayerNormalization
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

# Keras aliases
MaxPool2D, MaxPool1D, AvgPool2D, AvgPool1D = (
    MaxPooling2D,
    MaxPooling1D,
    AveragePooling2D,
    AveragePooling1D,
)
Convolution2D, Convolution1D = Conv2D, Conv1D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
GlobalAvgPool3D, GlobalMaxPool3D = GlobalAveragePooling3D, GlobalMaxPooling3D
Convolution1DTranspose = Conv1DTranspose

__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Convolution1D",
    "Convolution1DTranspose",
    "Convolution2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Lambda",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Permute",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SimpleRNN",
    "Softmax",
    "Subtract",
    "TimeDistributed",
    "UpSampling2D",
    "ZeroPadding2D",
    "add",
    "average",
    "concatenate",
    "deserialize",
    "maximum",
    "minimum",
    "multiply",
    "register",
    "serialize",
    "subtract",
]

serialize = serialize_layer


def _registry(custom_objects=None) -> dict:
    reg = dict(LAYERS)
    from ember.keras import models

    reg.update({"Sequential": models.Sequential, "Model": models.Model, "Functional": models.Model})
    reg.update(custom_objects or {})
    return reg


def deserialize(config: dict, custom_objects=None) -> Layer:
    """A layer from ``{'class_name': ..., 'config': ...}``."""
    cls = _registry(custom_objects).get(config["class_name"])
    if cls is None:
        raise ValueError(f"unknown layer class {config['class_name']!r}; pass it in custom_objects")
    return (
        cls.from_config(config["config"], custom_objects)
        if _takes_custom(cls)
        else cls.from_config(config["config"])
    )


def _takes_custom(cls) -> bool:
    import inspect

    return "custom_objects" in inspect.signature(cls.from_config).parameters


def deserialize_value(v, custom_objects=None):
    """Turn nested layer (and initializer, regularizer, constraint) configs back into
    objects."""
    if isinstance(v, dict) and "class_name" in v and "config" in v:
        if v["class_name"] in _registry(custom_objects):
            return deserialize(v, custom_objects)
        from .. import constraints, initializers, regularizers

        if v.get("module") == "keras.initializers" or (
            v.get("module") is None and v["class_name"].lower() in initializers._BY_CLASS
        ):
            return initializers.get(v)
        if v["class_name"] in regularizers._ALL:
            return regularizers.get(v)
        if v["class_name"] in constraints._ALL:
            return constraints.get(v)
    return v
