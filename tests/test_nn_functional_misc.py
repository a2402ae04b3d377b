import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, randn, to_e, to_t

import ember
import ember.nn.functional as F

ACTS = [
    "relu",
    "relu6",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "softplus",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "hardtanh",
    "hardsigmoid",
    "hardswish",
    "mish",
    "logsigmoid",
    "softsign",
    "tanhshrink",
    "softshrink",
    "hardshrink",
]


@pytest.mark.parametrize("name", ACTS)
def test_activations(name):
    x = randn(4, 7) * 4
    x[0, :3] = [0.3, -0.2, 2.5]
    check(getattr(F, name), getattr(TF, name), [x], atol=1e-5)


def test_activation_params_and_inplace_flag():
    x = randn(3, 8) * 3
    check(lambda x: F.relu(x, inplace=True), lambda x: TF.relu(x), [x])
    check(lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), [x])
    check(lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5), [x])
    check(lambda x: F.celu(x, 2.0), lambda x: TF.celu(x, 2.0), [x])
    check(lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0), [x])
    check(lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), [x])
    check(lambda x: F.hardtanh(x, -2.0, 1.5), lambda x: TF.hardtanh(x, -2.0, 1.5), [x])
    check(lambda x: F.glu(x, -1), lambda x: TF.glu(x, -1), [x])
    check(lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1), [x])
    check(lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1), [x])
    check(lambda x, w: F.prelu(x, w), lambda x, w: TF.prelu(x, w), [x, randn(8, seed=1)])


def test_dropout_train_and_eval():
    ember.manual_seed(0)
    x = to_e(np.ones((200, 100), np.float32), True)
    y = F.dropout(x, 0.3, training=True)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)  # same mask in backward
    np.testing.assert_allclose(x.grad.numpy()[kept], 1 / 0.7, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    ember.manual_seed(1)
    a = F.dropout(to_e(np.ones(50, np.float32)), 0.5).numpy()
    ember.manual_seed(1)
    b = F.dropout(to_e(np.ones(50, np.float32)), 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert F.dropout(to_e(np.ones(10, np.float32)), 1.0).numpy().sum() == 0
    with pytest.raises(ValueError, match="dropout probability"):
        F.dropout(x, 1.5)


def test_dropout2d_drops_whole_channels():
    ember.manual_seed(0)
    y = F.dropout2d(to_e(np.ones((8, 50, 3, 3), np.float32)), 0.5).numpy()
    per_channel = y.reshape(8, 50, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel != 0).all(-1))
    assert abs((per_channel[..., 0] != 0).mean() - 0.5) < 0.1


def test_embedding():
    w = randn(10, 4)
    idx = np.array([[1, 2, 2], [0, 9, 1]])
    check(lambda w: F.embedding(to_e(idx), w), lambda w: TF.embedding(to_t(idx), w), [w])
    check(
        lambda w: F.embedding(to_e(idx), w, padding_idx=2),
        lambda w: TF.embedding(to_t(idx), w, padding_idx=2),
        [w],
    )
    ew, tw = to_e(w * 3), to_t(w * 3)
    with ember.no_grad():
        F.embedding(to_e(idx), ew, max_norm=1.0)
    TF.embedding(to_t(idx), tw, max_norm=1.0)
    np.testing.assert_allclose(ew.numpy(), tw.numpy(), rtol=1e-5)
    with pytest.raises(IndexError, match="embedding: index out of range"):
        F.embedding(to_e(np.array([10])), to_e(w))


def test_one_hot():
    t = np.array([0, 2, 1])
    np.testing.assert_array_equal(F.one_hot(to_e(t), 4).numpy(), TF.one_hot(to_t(t), 4).numpy())


@pytest.mark.parametrize(
    "kw", [{}, {"is_causal": True}, {"scale": 0.3}, {"mask": "bool"}, {"mask": "float"}]
)
def test_scaled_dot_product_attention(kw):
    q, k, v = randn(2, 3, 5, 4), randn(2, 3, 6, 4, seed=1), randn(2, 3, 6, 4, seed=2)
    if kw.get("is_causal"):
        k, v = k[:, :, :5], v[:, :, :5]
    mask = kw.pop("mask", None)
    extra = []
    if mask == "bool":
        m = randn(5, 6, seed=3) > -0.5
        m[:, 0] = True
        kw_e, kw_t = {"attn_mask": to_e(m)}, {"attn_mask": to_t(m)}
    elif mask == "float":
        m = randn(5, 6, seed=3)
        extra = [m]
        kw_e, kw_t = {}, {}
    else:
        kw_e, kw_t = kw, kw
    if extra:
        check(
            lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
            lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, m),
            [q, k, v, m],
        )
    else:
        check(
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw_e),
            lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **kw_t),
            [q, k, v],
        )


def test_sdpa_dropout_runs():
    ember.manual_seed(0)
    q = to_e(randn(2, 4, 3), True)
    y = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    y.sum().backward()
    assert y.shape == (2, 4, 3) and q.grad is not None


@pytest.mark.parametrize(
    "kw",
    [
        {"scale_factor": 2, "mode": "nearest"},
        {"size": (5, 7), "mode": "nearest"},
        {"scale_factor": 1.5, "mode": "nearest"},
        {"scale_factor": 2, "mode": "bilinear", "align_corners": False},
        {"size": (7, 3), "mode": "bilinear", "align_corners": True},
        {"size": (7, 5), "mode": "bilinear", "align_corners": False},
        {"scale_factor": 0.5, "mode": "bilinear", "align_corners": False},
        {"size": (6, 9), "mode": "nearest-exact"},
    ],
)
def test_interpolate(kw):
    check(lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [randn(2, 3, 4, 6)])


def test_interpolate_1d_linear():
    check(
        lambda x: F.interpolate(x, size=9, mode="linear", align_corners=False),
        lambda x: TF.interpolate(x, size=9, mode="linear", align_corners=False),
        [randn(2, 3, 5)],
    )


def test_pad_reexport():
    x = randn(1, 2, 3, 3)
    check(lambda x: F.pad(x, (1, 2, 0, 1)), lambda x: TF.pad(x, (1, 2, 0, 1)), [x])


def test_float32_preserved():
    x = to_e(randn(2, 3, 4, 4))
    for y in (
        F.max_pool2d(x, 2),
        F.avg_pool2d(x, 2),
        F.layer_norm(x, (4,)),
        F.batch_norm(x, None, None, training=True),
        F.gelu(x),
        F.dropout(x, 0.2),
        F.interpolate(x, scale_factor=2),
        F.cross_entropy(x, to_e(np.zeros((2, 4, 4), np.int64))),
    ):
        assert y.dtype == ember.float32
    _ = torch
