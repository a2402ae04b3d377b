"""The 3-D / adaptive pooling modules (``nn.MaxPool3d``, ``AvgPool3d``, ``AdaptiveMaxPool1d``,
``AdaptiveMaxPool3d``, ``AdaptiveAvgPool3d``, ``LPPool3d``) against PyTorch: repr, empty
state_dict, values, indices and gradients; and the Keras layers ``Conv1DTranspose``,
``MaxPooling3D``, ``AveragePooling3D``, ``GlobalMaxPooling3D``, ``GlobalAveragePooling3D``
against Keras 3 (torch backend) with copied weights."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

import ember
from ember import keras

K = pytest.importorskip("keras")


def _pair(shape, dtype=np.float32, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return (
        ember.tensor(a, requires_grad=True),
        torch.tensor(a, requires_grad=True),
    )


def _check(name, args, kwargs, shape, dtype=np.float32, positive=False, rtol=None):
    e_m = getattr(ember.nn, name)(*args, **kwargs)
    t_m = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(e_m) == repr(t_m)
    assert len(e_m.state_dict()) == 0 and len(t_m.state_dict()) == 0
    ex, tx = _pair(shape, dtype)
    if positive:  # LP pooling of odd powers needs positive inputs to stay real
        with torch.no_grad():
            tx.abs_().add_(0.1)
        ex = ember.tensor(tx.detach().numpy(), requires_grad=True)
    e_out, t_out = e_m(ex), t_m(tx)
    tol = rtol or (1e-5 if dtype == np.float32 else 1e-10)
    if isinstance(t_out, tuple):
        np.testing.assert_array_equal(e_out[1].numpy(), t_out[1].numpy())
        assert e_out[1].dtype == ember.int64
        e_out, t_out = e_out[0], t_out[0]
    assert tuple(e_out.shape) == tuple(t_out.shape)
    assert e_out.dtype == (ember.float32 if dtype == np.float32 else ember.float64)
    np.testing.assert_allclose(e_out.detach().numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(tuple(t_out.shape)).astype(dtype)
    e_out.backward(ember.tensor(g))
    t_out.backward(torch.tensor(g))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "args,kwargs,shape",
    [
        ((2,), {}, (2, 3, 4, 5, 6)),
        ((3,), {"stride": 2, "padding": 1}, (1, 2, 5, 6, 7)),
        (((2, 3, 2),), {"stride": (1, 2, 2), "ceil_mode": True}, (2, 1, 5, 7, 6)),
        ((2,), {"dilation": 2, "padding": 1}, (1, 2, 5, 5, 6)),
        ((2,), {"stride": 1}, (2, 4, 3, 5)),  # unbatched (C, D, H, W)
        ((2,), {"return_indices": True}, (1, 2, 4, 5, 4)),
        ((3,), {"stride": 2, "padding": 1, "return_indices": True, "ceil_mode": True},
         (1, 1, 6, 5, 7)),
    ],
)  # fmt: skip
def test_max_pool3d(args, kwargs, shape, dtype):
    _check("MaxPool3d", args, kwargs, shape, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "args,kwargs,shape",
    [
        ((2,), {}, (2, 3, 4, 5, 6)),
        ((3,), {"stride": 2, "padding": 1}, (1, 2, 5, 6, 7)),
        ((3,), {"stride": 2, "padding": 1, "count_include_pad": False}, (1, 2, 5, 6, 7)),
        (((2, 3, 2),), {"stride": (1, 2, 2), "ceil_mode": True}, (2, 1, 5, 7, 6)),
        ((3,), {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
         (1, 1, 6, 5, 7)),
        ((2,), {"divisor_override": 3}, (1, 2, 4, 4, 5)),
        ((2,), {"stride": 1}, (2, 4, 3, 5)),
    ],
)  # fmt: skip
def test_avg_pool3d(args, kwargs, shape, dtype):
    _check("AvgPool3d", args, kwargs, shape, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name,args,kwargs,shape",
    [
        ("AdaptiveMaxPool1d", (3,), {}, (2, 3, 7)),
        ("AdaptiveMaxPool1d", (4,), {"return_indices": True}, (2, 3, 9)),
        ("AdaptiveMaxPool1d", (5,), {"return_indices": True}, (3, 5)),  # unbatched
        ("AdaptiveMaxPool3d", (2,), {}, (2, 3, 5, 6, 7)),
        ("AdaptiveMaxPool3d", ((3, None, 2),), {"return_indices": True}, (1, 2, 5, 4, 7)),
        ("AdaptiveMaxPool3d", ((1, 2, 3),), {"return_indices": True}, (2, 3, 4, 5)),
        ("AdaptiveAvgPool3d", (2,), {}, (2, 3, 5, 6, 7)),
        ("AdaptiveAvgPool3d", ((3, None, 4),), {}, (1, 2, 5, 4, 7)),
        ("AdaptiveAvgPool3d", ((1, 2, 3),), {}, (2, 3, 4, 5)),
    ],
)
def test_adaptive_pools(name, args, kwargs, shape, dtype):
    _check(name, args, kwargs, shape, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "args,kwargs,shape",
    [
        ((2, 2), {}, (2, 3, 4, 5, 6)),
        ((3, (2, 3, 2)), {"stride": 1}, (1, 2, 4, 5, 5)),
        ((1.5, 2), {"stride": 2, "ceil_mode": True}, (1, 2, 5, 5, 7)),
    ],
)
def test_lp_pool3d(args, kwargs, shape, dtype):
    _check("LPPool3d", args, kwargs, shape, dtype, positive=True, rtol=1e-4)


def test_max_pool3d_indices_round_trip_through_max_unpool3d():
    ex, tx = _pair((1, 2, 4, 4, 6))
    e_out, e_idx = ember.nn.MaxPool3d(2, return_indices=True)(ex)
    t_out, t_idx = torch.nn.MaxPool3d(2, return_indices=True)(tx)
    e_up = ember.nn.MaxUnpool3d(2)(e_out, e_idx)
    t_up = torch.nn.MaxUnpool3d(2)(t_out, t_idx)
    np.testing.assert_allclose(e_up.detach().numpy(), t_up.detach().numpy())


def test_module_argument_errors():
    with pytest.raises(TypeError, match="kernel_size"):
        ember.nn.MaxPool3d(2.5)
    with pytest.raises(ValueError, match="kernel_size"):
        ember.nn.AvgPool3d((2, 2))
    with pytest.raises(ValueError, match="padding"):
        ember.nn.MaxPool3d(2, padding=2)
    with pytest.raises(ValueError, match="divisor_override"):
        ember.nn.AvgPool3d(2, divisor_override=0)
    with pytest.raises(ValueError, match="output_size"):
        ember.nn.AdaptiveMaxPool3d((2, 2))
    with pytest.raises(ValueError, match="output_size"):
        ember.nn.AdaptiveMaxPool1d((2, 2))
    with pytest.raises(TypeError, match="norm_type"):
        ember.nn.LPPool3d("2", 2)
    with pytest.raises(ValueError, match="4-D or 5-D"):
        ember.nn.MaxPool3d(2)(ember.ones(2, 3, 4))


# -- Keras -------------------------------------------------------------------------------------
def _keras_pair(name, kwargs, shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    e_layer = getattr(keras.layers, name)(**kwargs)
    k_layer = getattr(K.layers, name)(**kwargs)
    e_out = e_layer(ember.tensor(x))
    k_layer.build(shape)
    if k_layer.weights:
        rng = np.random.default_rng(seed + 1)
        weights = [rng.standard_normal(tuple(w.shape)).astype(np.float32) for w in k_layer.weights]
        k_layer.set_weights(weights)
        e_layer.set_weights(weights)
        e_out = e_layer(ember.tensor(x))
    k_out = K.ops.convert_to_numpy(k_layer(x))
    return e_layer, k_layer, e_out.detach().numpy(), k_out


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({"filters": 4, "kernel_size": 3}, (2, 5, 3)),
        ({"filters": 2, "kernel_size": 3, "strides": 2}, (2, 5, 3)),
        ({"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"}, (1, 5, 3)),
        ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 6, 2)),
        ({"filters": 3, "kernel_size": 2, "strides": 3, "padding": "valid"}, (2, 4, 2)),
        ({"filters": 3, "kernel_size": 2, "strides": 3, "padding": "same"}, (2, 4, 2)),
        ({"filters": 3, "kernel_size": 5, "padding": "same", "use_bias": False}, (1, 7, 2)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "data_format": "channels_first",
          "activation": "relu"}, (2, 3, 5)),
    ],
)  # fmt: skip
def test_conv1d_transpose_matches_keras(kwargs, shape):
    e_layer, k_layer, e_out, k_out = _keras_pair("Conv1DTranspose", kwargs, shape)
    assert e_out.shape == k_out.shape
    np.testing.assert_allclose(e_out, k_out, rtol=1e-5, atol=1e-5)
    assert [w.shape for w in e_layer.get_weights()] == [tuple(w.shape) for w in k_layer.weights]
    cfg = e_layer.get_config()
    for key in ("filters", "kernel_size", "strides", "padding", "dilation_rate", "use_bias"):
        assert tuple(np.atleast_1d(cfg[key])) == tuple(np.atleast_1d(k_layer.get_config()[key])), (
            key
        )


def test_conv1d_transpose_gradient_and_errors():
    layer = keras.layers.Conv1DTranspose(2, 3, strides=2, padding="same")
    x = ember.randn(2, 4, 3, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.shape == x.shape and layer.conv.weight.grad is not None
    # the gradient of the sum is each input step's kernel sum (all of its output taps kept)
    tw = torch.tensor(layer.conv.weight.detach().numpy())
    tb = torch.tensor(layer.conv.bias.detach().numpy())
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    y = torch.nn.functional.conv_transpose1d(
        tx.permute(0, 2, 1), tw, tb, stride=2, output_padding=0
    )
    y[:, :, 0:8].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    # (dilation is supported; Keras refuses it together with strides > 1)
    with pytest.raises(ValueError, match="dilation"):
        keras.layers.Conv1DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="kernel_size"):
        keras.layers.Conv1DTranspose(2, (3, 3))
    with pytest.raises(ValueError, match="padding"):
        keras.layers.Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="rank 3"):
        keras.layers.Conv1DTranspose(2, 3)(ember.ones(1, 2, 3, 4))


@pytest.mark.parametrize(
    "name,kwargs,shape",
    [
        ("MaxPooling3D", {}, (2, 4, 5, 6, 3)),
        ("MaxPooling3D", {"pool_size": 3, "strides": 2, "padding": "same"}, (1, 5, 6, 7, 2)),
        ("MaxPooling3D", {"pool_size": (2, 3, 2), "data_format": "channels_first"},
         (1, 2, 5, 6, 7)),
        ("AveragePooling3D", {"pool_size": 2}, (2, 4, 5, 6, 3)),
        ("AveragePooling3D", {"pool_size": 3, "strides": 1, "padding": "same"}, (1, 3, 4, 5, 2)),
        ("AveragePooling3D", {"pool_size": (3, 1, 3), "strides": 2, "padding": "same",
          "data_format": "channels_first"}, (1, 2, 5, 4, 7)),
        ("GlobalMaxPooling3D", {}, (2, 3, 4, 5, 6)),
        ("GlobalMaxPooling3D", {"keepdims": True, "data_format": "channels_first"},
         (2, 3, 4, 5, 6)),
        ("GlobalAveragePooling3D", {}, (2, 3, 4, 5, 6)),
        ("GlobalAveragePooling3D", {"keepdims": True}, (2, 3, 4, 5, 6)),
    ],
)  # fmt: skip
def test_3d_pooling_layers_match_keras(name, kwargs, shape):
    e_layer, k_layer, e_out, k_out = _keras_pair(name, kwargs, shape)
    assert e_out.shape == k_out.shape
    np.testing.assert_allclose(e_out, k_out, rtol=1e-6, atol=1e-6)
    assert e_layer.get_weights() == []
    x = ember.randn(*shape, requires_grad=True)
    e_layer(x).sum().backward()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    k_layer(tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_keras_aliases_and_round_trip():
    assert keras.layers.MaxPool3D is keras.layers.MaxPooling3D
    assert keras.layers.AvgPool3D is keras.layers.AveragePooling3D
    assert keras.layers.GlobalAvgPool3D is keras.layers.GlobalAveragePooling3D
    assert keras.layers.GlobalMaxPool3D is keras.layers.GlobalMaxPooling3D
    assert keras.layers.Convolution1DTranspose is keras.layers.Conv1DTranspose
    for layer in (
        keras.layers.Conv1DTranspose(3, 2, strides=2, padding="same"),
        keras.layers.MaxPooling3D(pool_size=(1, 2, 2), padding="same"),
        keras.layers.AveragePooling3D(2, strides=1),
        keras.layers.GlobalMaxPooling3D(keepdims=True),
    ):
        again = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(again) is type(layer)
        assert again.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="pool_size"):
        keras.layers.MaxPooling3D(pool_size=(2, 2))
    with pytest.raises(ValueError, match="data_format"):
        keras.layers.GlobalAveragePooling3D(data_format="nhwc")


def _tf_same_avg_pool3d(x, k, s):
    """TensorFlow's 'same' average pooling (channels-last): the odd padded cell on the right,
    padded cells never counted."""
    sizes = x.shape[1:4]
    outs = [-(-n // si) for n, si in zip(sizes, s)]
    lo = [max((o - 1) * si + ki - n, 0) // 2 for o, si, ki, n in zip(outs, s, k, sizes)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]), x.dtype)
    for i in range(outs[0]):
        for j in range(outs[1]):
            for m in range(outs[2]):
                a, b, c = (o * si - p for o, si, p in zip((i, j, m), s, lo))
                win = x[:, max(a, 0) : a + k[0], max(b, 0) : b + k[1], max(c, 0) : c + k[2]]
                y[:, i, j, m] = win.mean((1, 2, 3))
    return y


@pytest.mark.parametrize(
    "k,s,shape", [((3, 3, 3), (2, 2, 2), (1, 5, 6, 7, 2)), ((2, 2, 3), (1, 1, 1), (2, 3, 4, 5, 2))]
)
def test_average_pooling3d_uneven_same_padding_follows_tensorflow(k, s, shape):
    # Keras' torch backend replicates edge cells here (docs/api-differences.md); Ember, like
    # TensorFlow, averages only the cells inside the input
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    layer = keras.layers.AveragePooling3D(k, strides=s, padding="same")
    out = layer(ember.tensor(x)).numpy()
    np.testing.assert_allclose(out, _tf_same_avg_pool3d(x, k, s), rtol=1e-5, atol=1e-6)
