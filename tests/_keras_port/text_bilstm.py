"""keras.io "Bidirectional LSTM on IMDB", shrunk, with class weights and keras.ops.
Written for Keras 3, run with ``run(keras)``."""

import numpy as np


def run(keras):
    rng = np.random.RandomState(7)
    max_features, maxlen = 20, 7
    x = rng.randint(1, max_features, size=(24, maxlen))
    for i, n in enumerate(rng.randint(0, 4, size=24)):
        x[i, maxlen - n :] = 0  # post-padding
    y = rng.randint(0, 2, size=(24,)).astype("float32")

    inputs = keras.Input(shape=(None,), dtype="int32")
    h = keras.layers.Embedding(max_features, 6, mask_zero=True)(inputs)
    h = keras.layers.Bidirectional(keras.layers.LSTM(5))(h)
    outputs = keras.layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(inputs, outputs)
    model.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(
        x, y, batch_size=8, epochs=2, class_weight={0: 1.0, 1: 3.0}, shuffle=False, verbose=0
    )
    probs = model.predict(x, verbose=0)
    labels = keras.ops.where(probs > 0.5, 1.0, 0.0)
    mean_prob = keras.ops.mean(probs)
    return {
        "history": {k: list(map(float, v)) for k, v in history.history.items()},
        "probs": np.asarray(probs),
        "labels": keras.ops.convert_to_numpy(labels),
        "mean_prob": float(keras.ops.convert_to_numpy(mean_prob)),
        "weights": [np.asarray(w) for w in model.get_weights()],
    }
