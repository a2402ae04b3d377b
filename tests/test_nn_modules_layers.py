"""Every layer against PyTorch: state-dict names/shapes, outputs, input and parameter
gradients (train and eval mode where they differ)."""

import numpy as np
import pytest
import torch
from _nn_parity import compare

import ember
from ember import nn

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _pair(name, *args, **kwargs):
    torch.manual_seed(0)
    return getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)


LAYERS = [
    ("Linear", (4, 3), {}, [(2, 4)]),
    ("Linear", (4, 3), {"bias": False}, [(2, 5, 4)]),
    ("Bilinear", (3, 4, 2), {}, [(5, 3), (5, 4)]),
    ("Conv1d", (3, 4, 3), {"padding": 1}, [(2, 3, 7)]),
    ("Conv2d", (3, 4, 3), {"stride": 2, "padding": 1}, [(2, 3, 7, 7)]),
    ("Conv2d", (4, 4, 3), {"groups": 2, "bias": False, "dilation": 2}, [(1, 4, 8, 8)]),
    ("Conv2d", (2, 3, 3), {"padding": "same"}, [(1, 2, 5, 5)]),
    (
        "ConvTranspose2d",
        (3, 2, 3),
        {"stride": 2, "padding": 1, "output_padding": 1},
        [(2, 3, 4, 4)],
    ),
    ("MaxPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1}, [(1, 2, 7, 7)]),
    ("AvgPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, [(2, 3, 6, 7)]),
    ("LayerNorm", (6,), {}, [(3, 4, 6)]),
    ("GroupNorm", (2, 4), {}, [(3, 4, 5)]),
    ("RMSNorm", (6,), {"eps": 1e-6}, [(3, 6)]),
    ("Flatten", (), {}, [(2, 3, 4)]),
    ("Unflatten", (1, (2, 3)), {}, [(4, 6)]),
    ("Identity", (), {}, [(2, 3)]),
    ("ReLU", (), {}, [(3, 4)]),
    ("GELU", (), {}, [(3, 4)]),
    ("GELU", (), {"approximate": "tanh"}, [(3, 4)]),
    ("SiLU", (), {}, [(3, 4)]),
    ("Tanh", (), {}, [(3, 4)]),
    ("Sigmoid", (), {}, [(3, 4)]),
    ("Softmax", (), {"dim": 1}, [(3, 4)]),
    ("LogSoftmax", (), {"dim": -1}, [(3, 4)]),
    ("LeakyReLU", (0.2,), {}, [(3, 4)]),
    ("ELU", (), {}, [(3, 4)]),
    ("ReLU6", (), {}, [(3, 4)]),
    ("Hardtanh", (), {}, [(3, 4)]),
    ("Mish", (), {}, [(3, 4)]),
    ("Softplus", (), {}, [(3, 4)]),
    ("PReLU", (), {}, [(3, 4)]),
]


@pytest.mark.parametrize(
    "name,args,kwargs,shapes", LAYERS, ids=[f"{n}-{i}" for i, (n, *_) in enumerate(LAYERS)]
)
def test_layer_matches_torch(name, args, kwargs, shapes):
    t, e = _pair(name, *args, **kwargs)
    compare(t, e, [_x(*s) for s in shapes])
    assert repr(e) == repr(t)


@pytest.mark.parametrize(
    "name,shape",
    [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)), ("BatchNorm2d", (4, 3, 5, 5))],
)
@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}]
)
def test_batchnorm_train_eval_and_running_stats(name, shape, kwargs):
    t, e = _pair(name, 3, **kwargs)
    for _ in range(2):
        compare(t, e, [_x(*shape)], train=True)
        for k, v in t.state_dict().items():
            np.testing.assert_allclose(e.state_dict()[k].numpy(), v.numpy(), atol=1e-5, err_msg=k)
    compare(t, e, [_x(*shape)], train=False)


def test_dropout_train_and_eval():
    e = nn.Dropout(0.5)
    x = ember.ones(2000)
    y = e(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    e.eval()
    np.testing.assert_array_equal(e(x).numpy(), x.numpy())
    assert repr(e) == repr(torch.nn.Dropout(0.5))


def test_embedding_padding_idx_and_from_pretrained():
    t, e = _pair("Embedding", 10, 4, padding_idx=1)
    assert float(e.weight[1].abs().sum()) == 0
    idx = np.array([[1, 2, 3], [4, 1, 9]])
    compare(t, e, [idx])
    w = ember.randn(5, 3)
    pre = nn.Embedding.from_pretrained(w)
    assert not pre.weight.requires_grad
    np.testing.assert_array_equal(pre(ember.tensor([2])).numpy(), w.numpy()[[2]])
    assert repr(e) == repr(t)


@pytest.mark.parametrize(
    "name,args,make_target",
    [
        ("MSELoss", (), lambda: _x(3, 4)),
        ("L1Loss", (), lambda: _x(3, 4)),
        ("SmoothL1Loss", (), lambda: _x(3, 4)),
        ("HuberLoss", (), lambda: _x(3, 4)),
        ("CrossEntropyLoss", (), lambda: np.array([0, 3, 1])),
        ("NLLLoss", (), lambda: np.array([0, 3, 1])),
        ("BCEWithLogitsLoss", (), lambda: (RNG.random((3, 4)) > 0.5).astype(np.float32)),
        ("KLDivLoss", (), lambda: np.abs(_x(3, 4))),
    ],
)
def test_losses_match_torch(name, args, make_target):
    t, e = _pair(name, *args)
    x = _x(3, 4)
    if name == "NLLLoss":
        x = np.log(np.exp(x) / np.exp(x).sum(1, keepdims=True)).astype(np.float32)
    compare(t, e, [x, make_target()], grad_inputs=[True, False])


def test_bce_loss_matches_torch():
    t, e = _pair("BCELoss")
    p = (1 / (1 + np.exp(-_x(3, 4)))).astype(np.float32)
    compare(t, e, [p, (RNG.random((3, 4)) > 0.5).astype(np.float32)], grad_inputs=[True, False])


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_matches_torch(batch_first):
    t, e = _pair("MultiheadAttention", 8, 2, batch_first=batch_first)
    assert list(e.state_dict()) == [
        "in_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    ]
    q, kv = _x(3, 4, 8), _x(5, 4, 8)
    if batch_first:
        q, kv = q.transpose(1, 0, 2).copy(), kv.transpose(1, 0, 2).copy()
    kpm = np.zeros((4, 5), bool)
    kpm[:, -1] = True
    mask = np.triu(np.ones((3, 5), bool), 3)
    fwd = (lambda m, q, k, p, a: m(q, k, k, key_padding_mask=p, attn_mask=a),) * 2
    compare(t, e, [q, kv, kpm, mask], grad_inputs=[True, True, False, False], forward=fwd)
    fwd2 = (lambda m, q: m(q, q, q, average_attn_weights=False),) * 2
    compare(t, e, [q], forward=fwd2)


def test_multihead_attention_kdim_vdim():
    t, e = _pair("MultiheadAttention", 6, 3, kdim=4, vdim=5)
    fwd = (lambda m, q, k, v: m(q, k, v),) * 2
    compare(t, e, [_x(2, 3, 6), _x(4, 3, 4), _x(4, 3, 5)], forward=fwd)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    kw = {
        "dim_feedforward": 16,
        "dropout": 0.0,
        "activation": activation,
        "batch_first": True,
        "norm_first": norm_first,
    }
    t = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, **kw), 2, enable_nested_tensor=False
    )
    e = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, **kw), 2)
    mask = np.triu(np.full((5, 5), -np.inf, np.float32), 1)
    fwd = (lambda m, x, a: m(x, mask=a),) * 2
    compare(t, e, [_x(2, 5, 8), mask], grad_inputs=[True, False], forward=fwd, atol=1e-5)
    compare(
        t, e, [_x(2, 5, 8), mask], grad_inputs=[True, False], forward=fwd, atol=1e-5, train=False
    )


def test_transformer_decoder_matches_torch():
    torch.manual_seed(0)
    kw = {"dim_feedforward": 16, "dropout": 0.0}
    t = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(8, 2, **kw), 2, norm=torch.nn.LayerNorm(8)
    )
    e = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, **kw), 2, norm=nn.LayerNorm(8))
    fwd = (lambda m, x, mem: m(x, mem),) * 2
    compare(t, e, [_x(4, 2, 8), _x(6, 2, 8)], forward=fwd, atol=1e-5)


def test_transformer_dropout_is_active_in_training():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5)
    x = ember.randn(5, 2, 8)
    a, b = layer(x).detach().numpy(), layer(x).detach().numpy()
    assert not np.allclose(a, b)
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
