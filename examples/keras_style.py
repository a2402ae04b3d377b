"""Keras style: ``Sequential`` and functional models with compile / fit / evaluate on Digits.

Run:  python examples/keras_style.py [--epochs 10]

A Keras user reads this as a Keras script: only the import differs. Keras layers are
channels-last, so the 8x8 images are given as (8, 8, 1).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import ember
from ember import keras
from ember.data.datasets import Digits


def load_digits():
    """Digits as NumPy arrays: images (N, 8, 8, 1) in [0, 1] and integer labels."""
    train, test = Digits(train=True), Digits(train=False)
    x_train = train.data.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    x_test = test.data.transpose(0, 2, 3, 1)
    return (x_train, train.targets), (x_test, test.targets)


def sequential_cnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def functional_mlp() -> keras.Model:
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    ember.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits()

    model = sequential_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.1, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f}")

    # Save the whole model (architecture + weights + compile config) and load it back.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits_cnn.ember")
        model.save(path)
        restored = keras.models.load_model(path)
    same = np.allclose(
        restored.predict(x_test, verbose=0), model.predict(x_test, verbose=0), atol=1e-6
    )
    print(f"reloaded model gives the same predictions: {same}")

    # The functional API: the same compile / fit / evaluate.
    mlp = functional_mlp()
    mlp.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    mlp.fit(x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0)
    _, mlp_accuracy = mlp.evaluate(x_test, y_test, verbose=0)
    print(f"functional MLP test accuracy: {mlp_accuracy:.4f}")


if __name__ == "__main__":
    main()
