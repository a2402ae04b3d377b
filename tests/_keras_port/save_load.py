"""Saving and loading a model (keras.io "Save, serialize, and export models"), with
keras.utils.to_categorical and set_random_seed. Written for Keras 3, run with ``run(keras)``."""

import numpy as np


def run(keras):
    keras.utils.set_random_seed(1337)
    rng = np.random.RandomState(11)
    x = rng.random((16, 5)).astype("float32")
    y = keras.utils.to_categorical(rng.randint(0, 3, size=(16,)), num_classes=3)

    def get_model():
        model = keras.Sequential(
            [
                keras.Input(shape=(5,)),
                keras.layers.Dense(8, activation="tanh"),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(
            optimizer="sgd", loss="categorical_crossentropy", metrics=["categorical_accuracy"]
        )
        return model

    model = get_model()
    model.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    model.save("my_model.keras")
    reconstructed = keras.models.load_model("my_model.keras")
    model.save_weights("my.weights.h5")
    fresh = get_model()
    fresh.load_weights("my.weights.h5")
    return {
        "y": y,
        "pred": model.predict(x, verbose=0),
        "reconstructed": reconstructed.predict(x, verbose=0),
        "fresh": fresh.predict(x, verbose=0),
        "reconstructed_eval": [float(v) for v in reconstructed.evaluate(x, y, verbose=0)],
    }
