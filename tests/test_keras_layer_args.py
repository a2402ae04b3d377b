"""Every constructor argument of every registered Keras layer works positionally and by
keyword, is stored (get_config reads it back), and survives from_config and model.save.

The test is driven by the layer registry (``ember.keras.layers.base.LAYERS``): a new layer is
covered automatically and fails here until it has an input in ``INPUTS`` and a sample value
for each of its arguments in ``SAMPLES`` (or ``BY_LAYER``).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ember
from ember import keras
from ember.keras.layers.base import _BASE_PARAMS, LAYERS, init_params

L = keras.layers


class Fresh:
    """A sample value that must be a new object for every construction (a wrapped layer)."""

    def __init__(self, make):
        self.make = make


# sample (non-default where supported) values by argument name
SAMPLES = {
    "units": 3,
    "activation": "relu",
    "use_bias": False,
    "kernel_initializer": "he_normal",
    "bias_initializer": "ones",
    "recurrent_initializer": "glorot_uniform",
    "kernel_regularizer": Fresh(lambda: keras.regularizers.L2(0.01)),
    "bias_regularizer": Fresh(lambda: keras.regularizers.L1(0.01)),
    "recurrent_regularizer": Fresh(lambda: keras.regularizers.L2(0.02)),
    "activity_regularizer": Fresh(lambda: keras.regularizers.L2(0.03)),
    "beta_regularizer": Fresh(lambda: keras.regularizers.L1(0.02)),
    "gamma_regularizer": Fresh(lambda: keras.regularizers.L2(0.04)),
    "embeddings_regularizer": Fresh(lambda: keras.regularizers.L2(0.05)),
    "kernel_constraint": Fresh(lambda: keras.constraints.NonNeg()),
    "bias_constraint": Fresh(lambda: keras.constraints.MaxNorm(1.5)),
    "recurrent_constraint": Fresh(lambda: keras.constraints.UnitNorm()),
    "embeddings_constraint": Fresh(lambda: keras.constraints.MaxNorm(1.0, axis=1)),
    "beta_constraint": Fresh(lambda: keras.constraints.NonNeg()),
    "gamma_constraint": Fresh(lambda: keras.constraints.MinMaxNorm(0.5, 2.0)),
    "filters": 4,
    "kernel_size": 3,
    "strides": 2,
    "padding": "same",
    "data_format": "channels_first",
    "dilation_rate": 2,
    "groups": 2,
    "pool_size": 3,
    "keepdims": True,
    "rate": 0.3,
    "noise_shape": (None, 1),
    "seed": 7,
    "dropout": 0.1,
    "axis": 1,
    "momentum": 0.9,
    "epsilon": 0.01,
    "center": False,
    "scale": False,
    "beta_initializer": "ones",
    "gamma_initializer": "zeros",
    "moving_mean_initializer": "ones",
    "moving_variance_initializer": Fresh(lambda: keras.initializers.Constant(2.0)),
    "renorm_momentum": 0.9,
    "target_shape": (2, 6),
    "dims": (2, 1),
    "n": 3,
    "input_dim": 10,
    "output_dim": 4,
    "embeddings_initializer": "glorot_uniform",
    "max_value": 2.0,
    "negative_slope": 0.1,
    "threshold": 0.5,
    "offset": 1.0,
    "size": 3,
    "interpolation": "nearest",
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "unroll": True,
    "use_cudnn": False,
    "unit_forget_bias": False,
    "recurrent_activation": "hard_sigmoid",
    # (stateful=True carries states between the calls the round trips compare)
    "stateful": False,
    "recurrent_dropout": 0.5,
    "reset_after": False,
    "merge_mode": "sum",
    "num_heads": 2,
    "key_dim": 3,
    "value_dim": 5,
    "output_shape": 6,
    "flash_attention": False,
    "function": ember.abs,
    "arguments": None,
    "weights": None,
}

# per-layer sample values that differ from SAMPLES
BY_LAYER = {
    "Rescaling": {"scale": 0.5},
    "MaxPooling1D": {"strides": 1},
    "MaxPooling2D": {"strides": 1},
    "AveragePooling1D": {"strides": 1},
    "AveragePooling2D": {"strides": 1},
    "MaxPooling3D": {"strides": 1},
    "AveragePooling3D": {"strides": 1},
    "ZeroPadding2D": {"padding": ((1, 2), (0, 1))},
    # (Keras refuses strides > 1 together with dilation_rate > 1)
    "Conv2DTranspose": {"output_padding": 1, "dilation_rate": (1, 1)},
    "Conv1DTranspose": {"output_padding": 1, "dilation_rate": 1},
    "TimeDistributed": {"layer": Fresh(lambda: L.Dense(2))},
    "Bidirectional": {
        "layer": Fresh(lambda: L.LSTM(2, return_sequences=True)),
        "backward_layer": Fresh(lambda: L.GRU(2, return_sequences=True, go_backwards=True)),
        # LSTM(2) then GRU(2) weights in Keras layout, inputs of 3 features
        "weights": Fresh(
            lambda: [
                np.full(s, 0.1 * (i + 1), np.float32)
                for i, s in enumerate([(3, 8), (2, 8), (8,), (3, 6), (2, 6), (2, 6)])
            ]
        ),
    },
    "Embedding": {
        "weights": Fresh(lambda: [np.arange(40, dtype=np.float32).reshape(10, 4)]),
        "mask_zero": True,
    },
    "Lambda": {"output_shape": (5,), "arguments": {}, "mask": None},
    "Masking": {"mask_value": -1.0},
}

# Keras arguments this implementation rejects with NotImplementedError: a value to try
UNSUPPORTED = {
    "lora_rank": 4,
    "lora_alpha": 8,
    "quantization_config": {"mode": "int8"},
    "renorm": True,
    "renorm_clipping": {"rmax": 2.0},
    "synchronized": True,
    "attention_axes": (1,),
    "sliding_window": 2,
    "use_gate": True,
}
BY_LAYER.setdefault("DepthwiseConv2D", {}).update(
    {
        "depth_multiplier": 2,
        "depthwise_initializer": "he_normal",
        "depthwise_regularizer": Fresh(lambda: keras.regularizers.L2(0.01)),
        "depthwise_constraint": Fresh(lambda: keras.constraints.NonNeg()),
    }
)
UNSUPPORTED_BY_LAYER: dict[str, dict] = {}

# input sample shapes (without the batch) and how the layer is called on them
_SEQ, _IMG = [(4, 3)], [(6, 6, 4)]
INPUTS = {
    "Dense": [(5,)],
    "Activation": [(5,)],
    "Dropout": [(5,)],
    "Flatten": [(3, 4, 2)],
    "Reshape": [(3, 4)],
    "Permute": [(3, 4)],
    "RepeatVector": [(5,)],
    "Embedding": [("int", 6)],
    "Masking": [(4, 3)],
    "Lambda": [(5,)],
    "Conv1D": [(8, 4)],
    "Conv2D": _IMG,
    "DepthwiseConv2D": _IMG,
    "Conv2DTranspose": [(5, 5, 4)],
    "Conv1DTranspose": [(5, 4)],
    "MaxPooling3D": [(4, 4, 4, 4)],
    "AveragePooling3D": [(4, 4, 4, 4)],
    "GlobalMaxPooling3D": [(3, 4, 4, 4)],
    "GlobalAveragePooling3D": [(3, 4, 4, 4)],
    "MaxPooling1D": [(8, 4)],
    "AveragePooling1D": [(8, 4)],
    "MaxPooling2D": _IMG,
    "AveragePooling2D": _IMG,
    "GlobalMaxPooling1D": [(8, 4)],
    "GlobalAveragePooling1D": [(8, 4)],
    "GlobalMaxPooling2D": _IMG,
    "GlobalAveragePooling2D": _IMG,
    "ReLU": [(5,)],
    "LeakyReLU": [(5,)],
    "Softmax": [(5, 3)],
    "Rescaling": [(5,)],
    "ZeroPadding2D": [(4, 4, 2)],
    "UpSampling2D": [(4, 4, 2)],
    "TimeDistributed": [(3, 5)],
    "BatchNormalization": [(5, 4)],
    "LayerNormalization": [(5, 4)],
    "SimpleRNN": _SEQ,
    "LSTM": _SEQ,
    "GRU": _SEQ,
    "Bidirectional": _SEQ,
    "MultiHeadAttention": [(4, 6), (5, 6)],
}
for _merge in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"):
    INPUTS[_merge] = [(3, 4), (3, 4)]
LIST_INPUT = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
NOT_SERIALIZABLE = {"Lambda"}  # holds a Python function (as in Keras)
SKIP = {"InputLayer"}  # built by keras.Input; covered by the model round trips

LAYER_NAMES = sorted(n for n in LAYERS if n not in SKIP)


def _value(v):
    return v.make() if isinstance(v, Fresh) else v


def _params(cls):
    sig = inspect.signature(cls.__init__)
    return [
        p
        for p in sig.parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)
    ]


def _samples(name, cls):
    """(positional params in order, {param: sample}) for the supported arguments; unsupported
    ones keep their defaults."""
    bad = {**UNSUPPORTED, **UNSUPPORTED_BY_LAYER.get(name, {})}
    own = {**SAMPLES, **BY_LAYER.get(name, {})}
    pos, values = [], {}
    for p in _params(cls):
        if p.name == "name":
            continue
        if p.name in bad and p.name not in BY_LAYER.get(name, {}):
            if p.default is inspect.Parameter.empty:
                raise AssertionError(f"{name}: required argument {p.name!r} is unsupported")
            v = p.default
        elif p.name in own:
            v = own[p.name]
        else:
            raise AssertionError(
                f"{name}: no sample value for argument {p.name!r}; add one to SAMPLES or BY_LAYER"
            )
        pos.append(p.name)
        values[p.name] = v
    return pos, values


def _inputs(name, batch=2, seed=0):
    if name not in INPUTS:
        raise AssertionError(f"{name}: add its input shapes to INPUTS")
    rng = np.random.default_rng(seed)
    out = []
    for shape in INPUTS[name]:
        if shape[0] == "int":
            out.append(rng.integers(0, 10, (batch, *shape[1:])).astype(np.int64))
        else:
            out.append(rng.standard_normal((batch, *shape)).astype(np.float32))
    return out


def _call(name, layer, xs):
    if name in LIST_INPUT:
        return layer(list(xs))
    return layer(*xs)


def _numpy(out):
    if isinstance(out, (list, tuple)):
        return [o.detach().numpy() for o in out]
    return [out.detach().numpy()]


def _build(name, cls, how):
    pos, values = _samples(name, cls)
    if how == "positional":
        return cls(*[_value(values[p]) for p in pos])
    if how == "keyword":
        return cls(**{p: _value(values[p]) for p in pos})
    required = [p.name for p in _params(cls) if p.default is inspect.Parameter.empty]
    return cls(**{p: _value(values[p]) for p in required})


def _strip(cfg):
    """A config without the (automatic) layer names, nested ones included."""
    if isinstance(cfg, dict):
        return {k: _strip(v) for k, v in cfg.items() if k != "name"}
    if isinstance(cfg, list):
        return [_strip(v) for v in cfg]
    return cfg


def test_every_layer_has_inputs_and_samples():
    assert len(LAYER_NAMES) >= 40, LAYER_NAMES
    for name in LAYER_NAMES:
        _samples(name, LAYERS[name])
        assert name in INPUTS, f"{name}: add its input shapes to INPUTS"


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_positional_and_keyword_arguments_are_stored(name):
    cls = LAYERS[name]
    ember.manual_seed(0)
    by_pos, by_kw, plain = (_build(name, cls, h) for h in ("positional", "keyword", "default"))
    pos, values = _samples(name, cls)
    assert init_params(cls) == [p.name for p in _params(cls) if p.name not in _BASE_PARAMS]
    if name in NOT_SERIALIZABLE:
        for p in pos:
            assert getattr(by_pos, p) == getattr(by_kw, p), p
        return
    if values.get("weights") is not None:  # initial weights land in the built layer
        _call(name, by_pos, [ember.tensor(x) for x in _inputs(name)])
        for got, want in zip(by_pos.get_weights(), _value(values["weights"]), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    cfg_pos, cfg_kw, cfg_plain = by_pos.get_config(), by_kw.get_config(), plain.get_config()
    assert _strip(cfg_pos) == _strip(cfg_kw)
    for p in pos:
        if p == "weights":  # initial weights are not part of a config (as in Keras)
            continue
        assert p in cfg_pos, f"{name}.get_config() lacks {p!r}"
        default = inspect.signature(cls.__init__).parameters[p].default
        sample = _value(values[p])
        if default is not inspect.Parameter.empty and sample is not default and sample != default:
            assert cfg_pos[p] != cfg_plain[p], f"{name}: {p}={sample!r} was not stored"


def test_lambda_has_no_config():
    with pytest.raises(TypeError, match="Lambda"):
        L.Lambda(ember.abs).get_config()


@pytest.mark.parametrize("name", [n for n in LAYER_NAMES if n not in NOT_SERIALIZABLE])
def test_from_config_and_model_save_round_trip(name, tmp_path):
    cls = LAYERS[name]
    ember.manual_seed(0)
    layer = _build(name, cls, "positional")
    xs = _inputs(name)
    layer.eval()
    with ember.no_grad():
        ref = _numpy(_call(name, layer, [ember.tensor(x) for x in xs]))
    cfg = layer.get_config()
    again = cls.from_config(cfg)
    assert again.get_config() == cfg
    again.eval()
    with ember.no_grad():
        _call(name, again, [ember.tensor(x) for x in xs])
    again.set_weights(layer.get_weights())
    with ember.no_grad():
        got = _numpy(_call(name, again, [ember.tensor(x) for x in xs]))
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)

    # the model file: architecture + weights
    ember.manual_seed(0)
    fresh = _build(name, cls, "positional")
    ins = [
        keras.Input(shape=s[1:], dtype="int64") if s[0] == "int" else keras.Input(shape=s)
        for s in INPUTS[name]
    ]
    outs = _call(name, fresh, ins)
    model = keras.Model(ins, outs)
    model.compile("sgd", "mse")
    pred = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    path = tmp_path / "m.ember"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer(fresh.name).get_config() == fresh.get_config()
    pred2 = loaded.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    for a, b in zip(
        pred if isinstance(pred, list) else [pred], pred2 if isinstance(pred2, list) else [pred2]
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _regularizer_cases():
    for name in LAYER_NAMES:
        for p in _params(LAYERS[name]):
            if p.name.endswith("_regularizer"):
                yield name, p.name


@pytest.mark.parametrize(("name", "param"), list(_regularizer_cases()))
def test_each_regularizer_adds_a_penalty(name, param):
    cls = LAYERS[name]
    pos = [p.name for p in _params(cls)]
    required = [p.name for p in _params(cls) if p.default is inspect.Parameter.empty]
    _, values = _samples(name, cls)
    args = []
    for p in pos[: pos.index(param) + 1]:
        if p == param:
            args.append(keras.regularizers.L2(0.5))
        elif p in required:
            args.append(_value(values[p]))
        else:
            args.append(inspect.signature(cls.__init__).parameters[p].default)
    layer = cls(*args)  # the regularizer passed positionally
    assert layer.losses == [] or param != "activity_regularizer"
    _call(name, layer, [ember.tensor(x) for x in _inputs(name)])
    assert len(layer.losses) >= 1, f"{name}: {param} given positionally adds no penalty"
    assert all(np.isfinite(float(t.item())) for t in layer.losses)
    assert layer.get_config()[param]["class_name"] == "L2"


def _unsupported_cases():
    for name in LAYER_NAMES:
        bad = {**UNSUPPORTED, **UNSUPPORTED_BY_LAYER.get(name, {})}
        for p in _params(LAYERS[name]):
            if p.name in bad:
                yield name, p.name, bad[p.name]


@pytest.mark.parametrize(("name", "param", "bad"), list(_unsupported_cases()))
def test_unsupported_arguments_fail_loudly(name, param, bad):
    cls = LAYERS[name]
    _, values = _samples(name, cls)
    kwargs = {p.name: _value(values[p.name]) for p in _params(cls) if p.default is p.empty}
    kwargs[param] = bad
    with pytest.raises(NotImplementedError, match=param):
        cls(**kwargs)


def test_registry_holds_only_layers():
    from ember.keras.layers import _registry

    reg = _registry()
    for name, cls in reg.items():
        assert issubclass(cls, keras.layers.Layer), name
    assert "KerasTensor" not in reg and "Input" not in reg
    assert reg["MaxPooling2D"] is L.MaxPool2D


def test_custom_layer_config_reads_its_attributes(tmp_path):
    class Scale(keras.layers.Layer):
        def __init__(self, factor, bias=0.0, **kwargs):
            super().__init__(**kwargs)
            self.factor, self.bias = factor, bias

        def call(self, x):
            return x * self.factor + self.bias

    class Forgetful(keras.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)

    layer = Scale(2.0, 1.0, name="scale")
    assert layer.get_config()["factor"] == 2.0 and layer.get_config()["bias"] == 1.0
    model = keras.Sequential([keras.Input(shape=(3,)), layer])
    model.save(tmp_path / "m.ember")
    loaded = keras.models.load_model(tmp_path / "m.ember", custom_objects={"Scale": Scale})
    assert loaded.layers[0].factor == 2.0 and loaded.layers[0].bias == 1.0
    with pytest.raises(NotImplementedError, match=r"'factor' is not stored as self.factor"):
        Forgetful(3).get_config()
    with pytest.raises(ValueError, match="unknown layer class 'Scale'"):
        keras.models.load_model(tmp_path / "m.ember")


def test_add_weight_keras3_and_keras2_call_styles():
    layer = keras.layers.Layer()
    w = layer.add_weight((2, 3), "ones")  # Keras 3: (shape, initializer, dtype)
    assert tuple(w.shape) == (2, 3) and float(w.sum()) == 6.0 and w.dtype == ember.float32
    v = layer.add_weight("v", (4,), "zeros", trainable=False)  # Keras 2: (name, shape, ...)
    assert layer.v is v and not v.requires_grad
    r = layer.add_weight(shape=(3,), initializer="ones", regularizer=keras.regularizers.L2(0.5))
    assert r.dtype == ember.float32 and len(layer.losses) == 1
    np.testing.assert_allclose(layer.losses[0].item(), 1.5)
    c = layer.add_weight(shape=(), dtype="int32", name="count")
    assert c.dtype == ember.int32 and not c.requires_grad and int(c.item()) == 0
    nn_w = layer.add_weight(shape=(2,), constraint="non_neg")
    assert isinstance(nn_w._keras_constraint[0], keras.constraints.NonNeg)
    with pytest.raises(NotImplementedError, match="aggregation"):
        layer.add_weight(shape=(2,), aggregation="sum")
    with pytest.raises(TypeError, match="both positionally and by keyword"):
        layer.add_weight((2,), shape=(3,))
