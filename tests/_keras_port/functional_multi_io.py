"""keras.io "The Functional API": a multi-input, multi-output model (ticket ranking),
shrunk. Written for Keras 3, run with ``run(keras)``."""

import numpy as np


def run(keras):
    layers = keras.layers
    num_tags = 5
    num_words = 30
    num_departments = 3

    title_input = keras.Input(shape=(6,), name="title")
    body_input = keras.Input(shape=(10,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")

    title_features = layers.Embedding(num_words, 4)(title_input)
    body_features = layers.Embedding(num_words, 4)(body_input)
    title_features = layers.LSTM(8)(title_features)
    body_features = layers.GlobalAveragePooling1D()(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    x = layers.Dense(8, activation="relu")(x)
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, activation="softmax", name="department")(x)

    model = keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )
    rng = np.random.RandomState(3)
    model.set_weights(
        [rng.uniform(-0.4, 0.4, w.shape).astype("float32") for w in model.get_weights()]
    )

    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-2),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.SparseCategoricalCrossentropy(),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
        metrics={"priority": ["mae"], "department": ["accuracy"]},
    )

    n = 24
    title_data = rng.randint(num_words, size=(n, 6))
    body_data = rng.randint(num_words, size=(n, 10))
    tags_data = rng.randint(2, size=(n, num_tags)).astype("float32")
    priority_targets = rng.randint(2, size=(n, 1)).astype("float32")
    dept_targets = rng.randint(num_departments, size=(n,))

    history = model.fit(
        {"title": title_data, "body": body_data, "tags": tags_data},
        {"priority": priority_targets, "department": dept_targets},
        epochs=2,
        batch_size=8,
        shuffle=False,
        verbose=0,
    )
    results = model.evaluate(
        {"title": title_data, "body": body_data, "tags": tags_data},
        {"priority": priority_targets, "department": dept_targets},
        return_dict=True,
        verbose=0,
    )
    results_list = model.evaluate(
        {"title": title_data, "body": body_data, "tags": tags_data},
        {"priority": priority_targets, "department": dept_targets},
        verbose=0,
    )
    pred = model.predict(
        {"title": title_data[:4], "body": body_data[:4], "tags": tags_data[:4]}, verbose=0
    )
    return {
        "layer_names": [
            layer.name
            for layer in model.layers
            if layer.name in ("title", "body", "tags", "priority", "department")
        ],
        "input_names": [t.name for t in model.inputs],
        "history": {k: list(map(float, v)) for k, v in history.history.items()},
        "evaluate": {k: float(v) for k, v in results.items()},
        "evaluate_list": [float(v) for v in results_list],
        "pred": {k: np.asarray(v) for k, v in pred.items()},
        "weights": [np.asarray(w) for w in model.get_weights()],
    }
