"""keras.io "Customizing what happens in fit() with PyTorch" (a subclassed Model with its own
train_step) plus a custom layer with add_weight/get_config. Written for Keras 3 on the torch
backend, run with ``run(keras)``."""

import numpy as np


def run(keras):
    class Linear(keras.layers.Layer):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units),
                initializer="random_normal",
                trainable=True,
                name="w",
            )
            self.b = self.add_weight(
                shape=(self.units,), initializer="zeros", trainable=True, name="b"
            )

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    class CustomModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.hidden = Linear(6)
            self.out = keras.layers.Dense(1)

        def call(self, inputs):
            return self.out(keras.ops.relu(self.hidden(inputs)))

        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = keras.losses.mean_squared_error(y, y_pred)
            loss = keras.ops.mean(loss)
            loss.backward()
            trainable_weights = list(self.trainable_weights)
            gradients = [v.value.grad for v in trainable_weights]
            self.optimizer.apply(gradients, trainable_weights)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    rng = np.random.RandomState(5)
    x = rng.random((32, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.1).astype("float32")

    inputs = keras.Input(shape=(3,))
    model = CustomModel()
    model(inputs)  # build
    model.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)

    layer = Linear(units=7, name="lin")
    config = layer.get_config()
    clone = Linear.from_config(config)
    return {
        "history": {k: list(map(float, v)) for k, v in history.history.items()},
        "weights": [np.asarray(w) for w in model.get_weights()],
        "n_trainable": len(model.trainable_weights),
        "pred": np.asarray(model.predict(x[:4], verbose=0)),
        "config": {k: config[k] for k in ("name", "units", "trainable")},
        "clone_units": clone.units,
    }
