"""Whole-model files: ``model.save(path)`` and ``keras.models.load_model(path)``.

One file written atomically by ``ember.save``: the architecture and compile configuration as
JSON text, and the weights (safetensors). Loading rebuilds the model from the config (no
code is executed from the file) and loads the weights.
"""

from __future__ import annotations

import json
import os
import warnings

import ember

__all__ = [
    "architecture_json",
    "compile_kwargs",
    "load_model",
    "save_model",
    "warn_lost_compile_config",
]

FORMAT = "ember.keras.model/1"


def architecture_json(model) -> str:
    from .layers import serialize_layer

    arch = serialize_layer(model)
    arch["build_input_shape"] = model._build_shape
    return json.dumps(arch)


def compile_kwargs(config: dict) -> dict:
    """``compile``'s keyword arguments from a saved compile config (``get_compile_config``):
    the optimizer and losses deserialized ('rmsprop' where no optimizer could be saved);
    ``run_eagerly``/``jit_compile``/``steps_per_execution`` when the config has them.

    Example:
        >>> kw = compile_kwargs({"optimizer": None, "loss": "mse", "jit_compile": True})
        >>> type(kw["optimizer"]).__name__, kw["loss"], kw["jit_compile"]
        ('RMSprop', 'mse', True)
    """
    from . import losses, optimizers

    opt = config.get("optimizer") or "rmsprop"
    loss = config.get("loss")
    if isinstance(loss, dict) and "class_name" in loss:
        loss = losses.get(loss)
    elif isinstance(loss, list):
        loss = [losses.get(v) if isinstance(v, dict) else v for v in loss]
    kw = {
        "optimizer": optimizers.get(opt),
        "loss": loss,
        "metrics": config.get("metrics"),
        "loss_weights": config.get("loss_weights"),
        "weighted_metrics": config.get("weighted_metrics"),
    }
    for k in ("run_eagerly", "steps_per_execution", "jit_compile"):
        if k in config:
            kw[k] = config[k]
    return kw


def warn_lost_compile_config(model, where: str) -> None:
    """Warn when parts of ``compile(...)`` cannot be written to ``where``."""
    lost = getattr(model, "_compile_config_lost", None)
    if lost:
        warnings.warn(
            f"{model.name}: {where} does not hold the compile arguments "
            f"{'; '.join(lost)}; load_model will restore the model without them "
            "(compile it again after loading)",
            stacklevel=3,
        )


def save_model(model, filepath) -> None:
    try:
        arch = architecture_json(model)
    except NotImplementedError as e:
        raise NotImplementedError(f"{e}; or use save_weights()") from None
    warn_lost_compile_config(model, f"the file {os.fspath(filepath)!r}")
    payload = {
        "format": FORMAT,
        "config": arch,
        "compile_config": json.dumps(getattr(model, "_compile_config", None)),
        "weights": model.state_dict(),
    }
    opt = getattr(model, "optimizer", None)
    if opt is not None and getattr(opt, "built", False):
        payload["optimizer"] = opt.state_dict()
    ember.save(payload, os.fspath(filepath))


def load_model(filepath, custom_objects=None, compile: bool = True):
    """Rebuild a model saved by ``model.save``; raises ``ValueError`` naming the file when it
    is missing pieces, corrupted or not an ember Keras model.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from ember import keras
        >>> model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> path = os.path.join(tempfile.mkdtemp(), "model.ember")
        >>> model.save(path)
        >>> restored = keras.models.load_model(path)
        >>> x = np.ones((1, 3), dtype="float32")
        >>> np.allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
        True
    """
    from .layers import deserialize

    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file {path!r}")
    try:
        payload = ember.load(path)
    except Exception as e:
        raise ValueError(
            f"load_model: {path!r} is corrupted or not an ember model file "
            f"({type(e).__name__}: {e})"
        ) from e
    from ember.train.checkpoint import CHECKPOINT_FORMAT

    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        # a full training checkpoint of a Keras model (ModelCheckpoint)
        extra = payload.get("extra") or {}
        if "keras_config" not in extra:
            raise ValueError(
                f"load_model: {path!r} is a training checkpoint without a Keras "
                "architecture; build the model and use load_weights"
            )
        opt = payload.get("optimizers") or [None]
        payload = {
            "format": FORMAT,
            "config": extra["keras_config"],
            "compile_config": extra.get("compile_config"),
            "weights": payload["model"],
        }
        if opt[0] is not None:
            payload["optimizer"] = opt[0]
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"load_model: {path!r} is not an ember Keras model file (expected format {FORMAT!r})"
        )
    try:
        arch = json.loads(payload["config"])
        compile_config = json.loads(payload.get("compile_config") or "null")
        weights = payload["weights"]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"load_model: {path!r} has a damaged model description ({e})") from e
    model = deserialize(arch, custom_objects)
    shape = arch.get("build_input_shape")
    if not model.built and shape is not None:
        model.build(shape)
    try:
        model.load_state_dict(weights)
    except (KeyError, RuntimeError, ValueError) as e:
        raise ValueError(
            f"load_model: the weights in {path!r} do not fit the saved architecture ({e})"
        ) from e
    if compile and compile_config:
        if compile_config.get("optimizer") is None:
            warnings.warn(
                f"load_model: {path!r} holds no optimizer configuration (it could not be "
                "saved); the model is compiled with the default 'rmsprop' and a fresh state",
                stacklevel=2,
            )
            payload.pop("optimizer", None)
        model.compile(**compile_kwargs(compile_config))
        if "optimizer" in payload:
            model.optimizer.build(model.parameters())
            model.optimizer.load_state_dict(payload["optimizer"])
    return model
