"""ember.keras: Keras names and semantics on top of ``ember.nn`` and ``ember.train``.

A Keras user runs the usual examples by changing the import::

    from ember import keras          # or: import ember as tf; tf.keras...
    model = keras.models.Sequential([keras.layers.Dense(128, activation="relu"),
                                     keras.layers.Dropout(0.2),
                                     keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5)

Layers are ``ember.nn.Module`` subclasses that build their ``nn`` sublayers on first call;
``fit`` runs on :class:`ember.train.Engine`, the loop behind ``ember.train.Trainer`` too.
Constructors follow Keras 3's signatures (``docs/api-differences.md`` lists the deliberate
differences); ``keras.ops`` and ``keras.random`` give Keras 3's backend-neutral operations
for custom layers.
"""

from __future__ import annotations

from . import (
    activations,
    applications,
    callbacks,
    constraints,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    random,
    regularizers,
    utils,
)
from .layers import Input, Layer
from .models import Model, Sequential

__all__ = [
    "Input",
    "Layer",
    "Model",
    "Sequential",
    "activations",
    "applications",
    "callbacks",
    "constraints",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "random",
    "regularizers",
    "utils",
]
