"""Keras optimizers built from one shared argument list (signatures, configs with Keras 3's
keys, round trips, updates unchanged), the conv layers' shared constructors, and
Conv1DTranspose/Conv2DTranspose with ``output_padding`` and ``dilation_rate`` against Keras
3 (torch backend) on values and gradients."""

from __future__ import annotations

import inspect
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

import ember
from ember import keras as ek

K = pytest.importorskip("keras")

OPTIMIZERS = (
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Nadam",
    "Adamax",
    "Lion",
    "Ftrl",
    "Adafactor",
)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_signature_and_config_keys_match_keras(name):
    kcls, ecls = getattr(K.optimizers, name), getattr(ek.optimizers, name)
    assert str(inspect.signature(ecls)) == str(inspect.signature(kcls))
    assert str(inspect.signature(ecls.__init__)) == str(inspect.signature(kcls.__init__))
    assert set(ecls().get_config()) == set(kcls().get_config())


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_config_values_and_round_trip(name):
    kw = {"learning_rate": 0.05, "clipnorm": 1.5, "global_clipnorm": None, "name": "opt"}
    if name not in ("AdamW",):
        kw["weight_decay"] = 0.01
    kcfg = getattr(K.optimizers, name)(**kw).get_config()
    opt = getattr(ek.optimizers, name)(**kw)
    cfg = opt.get_config()
    for key, want in kcfg.items():
        got = cfg[key]
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-6), key
        else:
            assert got == want, key
    again = type(opt).from_config(cfg)
    assert again.get_config() == cfg
    assert ek.optimizers.get(ek.optimizers.serialize(opt)).get_config() == cfg


def test_optimizer_positional_arguments_and_errors_unchanged():
    opt = ek.optimizers.AdamW(0.1, 0.01, 0.8)
    assert (opt.learning_rate, opt.weight_decay, opt.beta_1) == (0.1, 0.01, 0.8)
    sgd = ek.optimizers.SGD(0.1, 1, 1)
    assert (sgd.momentum, sgd.nesterov) == (1.0, True)
    assert isinstance(sgd.momentum, float) and isinstance(sgd.nesterov, bool)
    assert ek.optimizers.get("adam").name == "adam"
    with pytest.raises(ValueError, match=r"Argument\(s\) not recognized: \{'foo': 1\}"):
        ek.optimizers.Adam(foo=1)
    with pytest.raises(TypeError):
        ek.optimizers.SGD(
            0.1, 0.0, False, None, None, None, None, False, 0.99, None, None, None, "n", 1
        )
    with pytest.raises(ValueError, match="degenerates to SignSGD"):
        ek.optimizers.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="l1_regularization_strength"):
        ek.optimizers.Ftrl(l1_regularization_strength=-1.0)
    with pytest.raises(ValueError, match="learning_rate_power"):
        ek.optimizers.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="ema_momentum"):
        ek.optimizers.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(TypeError):
        ek.optimizers.Optimizer()


@pytest.mark.parametrize(
    ("name", "kw", "ref"),
    [
        ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, "sgd"),
        ("Adam", {"learning_rate": 0.01, "amsgrad": True}, "adam"),
        ("RMSprop", {"learning_rate": 0.01, "centered": True}, "rmsprop"),
    ],
)
def test_optimizer_updates_unchanged(name, kw, ref):
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(4), rng.standard_normal((3, 4))
    w = ember.nn.Parameter(ember.tensor(w0))
    opt = getattr(ek.optimizers, name)(**kw).build([w])
    tw = torch.nn.Parameter(torch.tensor(w0))
    if ref == "sgd":
        topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9, nesterov=True)
    elif ref == "adam":
        topt = torch.optim.Adam([tw], lr=0.01, eps=1e-7, amsgrad=True)
    else:
        topt = torch.optim.RMSprop([tw], lr=0.01, alpha=0.9, eps=1e-7, centered=True)
    for g in grads:
        w.grad = ember.tensor(g)
        opt.step()
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6, atol=1e-9)
    assert opt.iterations == 3


def _params(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


def test_conv_constructors_keep_keras_signatures_and_configs():
    for name in ("Conv1D", "Conv2D", "Conv1DTranspose", "Conv2DTranspose"):
        kcls, ecls = getattr(K.layers, name), getattr(ek.layers, name)
        assert _params(ecls) == _params(kcls), name
    layer = ek.layers.Conv2D(4, 3, 2, "same", None, 1)
    assert (layer.strides, layer.padding, layer.dilation_rate) == ((2, 2), "same", (1, 1))
    y = layer(ember.ones(1, 5, 5, 2))
    assert tuple(y.shape) == (1, 3, 3, 4)
    cfg = layer.get_config()
    assert list(cfg["strides"]) == [2, 2] and cfg["filters"] == 4
    assert ek.layers.Conv2D.from_config(cfg).get_config() == cfg
    t = ek.layers.Conv2DTranspose(3, 2, strides=2, output_padding=1)
    assert ek.layers.Conv2DTranspose.from_config(t.get_config()).get_config() == t.get_config()
    with pytest.raises(ValueError, match="filters must be a positive int"):
        ek.layers.Conv1D(0, 3)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to Conv2D"):
        ek.layers.Conv2D(4, 3, bogus=1)


CASES = [
    # rank, kernel, strides, dilation, output_padding, padding, data_format
    (1, 3, 2, 1, 1, "valid", "channels_last"),
    (1, 3, 2, 1, 1, "same", "channels_last"),
    (1, 4, 3, 1, 2, "same", "channels_last"),
    (1, 3, 1, 2, None, "valid", "channels_last"),
    (1, 3, 1, 2, None, "same", "channels_first"),
    (1, 2, 3, 1, 0, "valid", "channels_last"),
    (2, 3, 2, 1, 1, "same", "channels_last"),
    (2, (2, 3), (2, 3), 1, (1, 2), "valid", "channels_last"),
    (2, (3, 2), (3, 2), 1, (0, 1), "same", "channels_first"),
    (2, 3, 1, (2, 1), None, "same", "channels_last"),
    (2, (2, 3), 1, 2, 0, "valid", "channels_last"),
    (2, 1, 2, 1, 1, "same", "channels_last"),
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv_transpose_output_padding_dilation_vs_keras(case):
    rank, k, s, d, op, padding, fmt = case
    rng = np.random.default_rng(0)
    sp = (5,) if rank == 1 else (5, 4)
    shape = (2, *sp, 3) if fmt == "channels_last" else (2, 3, *sp)
    x = rng.standard_normal(shape).astype(np.float32)
    name = "Conv1DTranspose" if rank == 1 else "Conv2DTranspose"
    kw = {
        "strides": s,
        "padding": padding,
        "output_padding": op,
        "dilation_rate": d,
        "data_format": fmt,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kl = getattr(K.layers, name)(4, k, bias_initializer="random_normal", **kw)
        xt = torch.tensor(x, requires_grad=True)
        ky = kl(xt)
    el = getattr(ek.layers, name)(4, k, **kw)
    el(ember.tensor(x))
    kernel, bias = (w.numpy() for w in kl.weights)
    el.set_weights([kernel, bias])
    ex = ember.tensor(x, requires_grad=True)
    ey = el(ex)
    assert tuple(ey.shape) == tuple(ky.shape)
    assert tuple(ey.shape) == tuple(kl.compute_output_shape(shape))
    np.testing.assert_allclose(ey.detach().numpy(), ky.detach().numpy(), rtol=1e-5, atol=1e-5)
    r = rng.standard_normal(tuple(ky.shape)).astype(np.float32)
    (ky * torch.tensor(r)).sum().backward()
    (ey * ember.tensor(r)).sum().backward()
    np.testing.assert_allclose(ex.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    kgrad, bgrad = kl.kernel.value.grad.numpy(), kl.bias.value.grad.numpy()
    to_k, _ = el._perms()
    np.testing.assert_allclose(
        el.conv.weight.grad.numpy().transpose(to_k), kgrad, rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(el.conv.bias.grad.numpy(), bgrad, rtol=1e-5, atol=1e-5)


def test_conv_transpose_bad_output_padding_and_dilation_raise():
    with pytest.raises(ValueError, match="strictly less than `strides`"):
        ek.layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="strictly less than `strides`"):
        ek.layers.Conv1DTranspose(2, 3, output_padding=1)
    with pytest.raises(ValueError, match="dilation_rate > 1"):
        ek.layers.Conv2DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="output_padding must be an int or a tuple of 2"):
        ek.layers.Conv2DTranspose(2, 3, strides=2, output_padding=(1, 1, 1))


def test_conv_transpose_defaults_unchanged():
    x = ember.ones(2, 5, 5, 3)
    assert tuple(ek.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(x).shape) == (
        2,
        10,
        10,
        4,
    )
    assert tuple(ek.layers.Conv2DTranspose(4, 3, strides=2)(x).shape) == (2, 11, 11, 4)
    assert tuple(ek.layers.Conv1DTranspose(4, 2, strides=3)(ember.ones(2, 5, 3)).shape) == (
        2,
        15,
        4,
    )
