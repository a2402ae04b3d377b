"""keras.io "Simple MNIST convnet", shrunk: written for Keras 3, run with ``run(keras)``."""

import numpy as np


def _set_weights(model, seed):
    rng = np.random.RandomState(seed)
    model.set_weights(
        [rng.uniform(-0.3, 0.3, w.shape).astype("float32") for w in model.get_weights()]
    )


def run(keras):
    from_layers = keras.layers
    num_classes = 4
    input_shape = (8, 8, 1)
    rng = np.random.RandomState(0)
    x = rng.rand(40, 8, 8).astype("float32")
    y = rng.randint(0, num_classes, size=(40,))
    x = np.expand_dims(x, -1)

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            from_layers.Conv2D(4, kernel_size=(3, 3), activation="relu"),
            from_layers.MaxPooling2D(pool_size=(2, 2)),
            from_layers.Conv2D(6, kernel_size=(2, 2), activation="relu", padding="same"),
            from_layers.MaxPooling2D(pool_size=(2, 2)),
            from_layers.Flatten(),
            from_layers.Dropout(0.0),
            from_layers.Dense(num_classes, activation="softmax"),
        ]
    )
    _set_weights(model, 1)
    n_params = model.count_params()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-4),
    ]
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        validation_split=0.2,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    score = model.evaluate(x, y, verbose=0)
    pred = model.predict(x[:5], verbose=0)
    return {
        "n_params": n_params,
        "output_shape": tuple(model.output_shape),
        "history": {k: list(map(float, v)) for k, v in history.history.items()},
        "epochs": list(history.epoch),
        "score": [float(s) for s in score],
        "pred": np.asarray(pred),
        "weights": [np.asarray(w) for w in model.get_weights()],
        "lr": float(np.asarray(model.optimizer.learning_rate)),
        "iterations": int(np.asarray(model.optimizer.iterations)),
    }
