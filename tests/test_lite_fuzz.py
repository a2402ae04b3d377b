"""ember_lite against Ember eager on small models of the kinds users deploy.

Each model is saved with ``ember.export.save`` (eval mode, symbolic batch) and run by
``ember_lite`` at batch sizes 1, 2 and 5; the outputs must equal Ember's (rtol 1e-5, atol
1e-5 of the output's scale). ``tests/test_lite.py`` covers the model zoo and the primitives
one by one; this file covers the layers around them: transposed convolutions (1-D, 2-D,
3-D, strided, grouped, dilated, with output padding), activations, pooling, batch norm in
eval mode, depthwise convolutions, GRU/LSTM classifiers, transformer encoder layers,
attention, embeddings, interpolation, PixelShuffle, the normalization layers, softmax heads,
int8-quantized models and Keras models. ``conv2d_grad_input`` (the transposed convolution)
is also checked directly against PyTorch and Ember's kernel, padding cases included.
"""

from __future__ import annotations

import itertools

import ember_lite
import numpy as np
import pytest
import torch
from ember_lite._nn import NN_PRIMS

import ember
import ember.export
from ember import quantization as Q

nn = ember.nn
F = ember.nn.functional
BATCHES = (1, 2, 5)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(*shape: int):
    return lambda b: (_rng(b).standard_normal((b, *shape)).astype(np.float32),)


def _ids(vocab: int, t: int):
    return lambda b: (_rng(b).integers(0, vocab, (b, t)),)


# -- the models ----------------------------------------------------------------------------
class _Activations(nn.Module):
    """An MLP whose hidden layer goes through every activation module, summed."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(6, 16), nn.Linear(16, 16), nn.Linear(16, 4)
        self.acts = nn.ModuleList(
            [
                nn.ReLU(), nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Tanh(),
                nn.Sigmoid(), nn.LeakyReLU(0.2), nn.ELU(), nn.Softplus(), nn.Mish(),
                nn.Hardswish(), nn.Hardsigmoid(), nn.SELU(), nn.CELU(0.5), nn.Softsign(),
                nn.PReLU(), nn.ReLU6(), nn.LogSigmoid(), nn.Tanhshrink(), nn.Hardtanh(-0.5, 0.5),
                nn.Softmin(-1), nn.Hardshrink(), nn.Softshrink(), nn.Threshold(0.1, -1.0),
            ]
        )  # fmt: skip

    def forward(self, x):
        h = self.l1(x)
        return self.l3(self.l2(sum(a(h) for a in self.acts)))


class _Decoder(nn.Module):
    """ConvTranspose2d: stride 2 with groups 2 and output_padding 1, dilation 2, no bias."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.b = nn.ConvTranspose2d(6, 4, 3, padding=2, dilation=2)
        self.c = nn.ConvTranspose2d(4, 2, (4, 3), stride=(2, 3), padding=(1, 0), bias=False)
        self.d = nn.ConvTranspose2d(2, 2, 3, stride=2, dilation=2, output_padding=1)

    def forward(self, x):
        return self.d(self.c(F.relu(self.b(F.relu(self.a(x))))))


class _Autoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 6),
        )  # fmt: skip
        self.dec = nn.Sequential(
            nn.Linear(6, 32), nn.Unflatten(1, (8, 2, 2)),
            nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, x):
        return self.dec(self.enc(x))


class _UNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.e1 = nn.Conv2d(3, 8, 3, padding=1)
        self.e2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.out = nn.Conv2d(16, 2, 3, padding=1)

    def forward(self, x):
        a = F.relu(self.e1(x))
        b = F.relu(self.e2(a))
        return self.out(ember.cat([a, self.up(b)], 1))


class _Audio(nn.Module):
    """Conv1d (grouped, strided), 1-D pooling and ConvTranspose1d."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv1d(2, 8, 5, stride=2, padding=2, groups=2)
        self.t = nn.ConvTranspose1d(8, 3, 4, stride=2, padding=1, output_padding=1)
        self.t2 = nn.ConvTranspose1d(3, 2, 3, dilation=2, groups=1)

    def forward(self, x):
        y = F.avg_pool1d(F.max_pool1d(F.relu(self.c(x)), 2), 2, ceil_mode=True)
        return self.t2(self.t(y))


class _Volume(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(2, 4, 3, padding=1, stride=2)
        self.t = nn.ConvTranspose3d(4, 2, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        y = self.t(F.relu(self.c(x)))
        return y, F.adaptive_avg_pool3d(F.max_pool3d(y, 2), 1)


def _cnn():
    m = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8, 5), nn.LogSoftmax(-1),
    )  # fmt: skip
    for mod in m.modules():  # running statistics as after training
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(ember.randn(mod.num_features) * 0.1)
            mod.running_var.copy_(ember.rand(mod.num_features) + 0.5)
    return m


def _depthwise():
    return nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.BatchNorm2d(4), nn.ReLU6(),
        nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.Hardswish(),
        nn.Conv2d(8, 16, 3, groups=4, dilation=2, padding=2), nn.AdaptiveAvgPool2d((2, 1)),
        nn.Flatten(), nn.Softmax(-1),
    )  # fmt: skip


class _RNNClassifier(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.emb = nn.Embedding(30, 8, padding_idx=0)
        rnn = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = rnn(8, 6, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)
        self.head = nn.Linear(12, 3)

    def forward(self, ids):
        y, _ = self.rnn(self.emb(ids))
        return F.softmax(self.head(y[:, -1]), -1)


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.TransformerEncoderLayer(
            16, 4, 32, batch_first=True, activation="gelu", norm_first=True
        )
        self.b = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)

    def forward(self, x, pad):
        return self.b(self.a(x, src_key_padding_mask=pad))


def _encoder_inputs(b: int):
    pad = np.zeros((b, 5), bool)
    pad[0, 3:] = True
    return _rng(b).standard_normal((b, 5, 16)).astype(np.float32), pad


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.m = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, q, kv):
        return self.m(q, kv, kv)


class _EmbeddingMean(nn.Module):
    """Mean pooling of embeddings, and EmbeddingBag (its fixed-length bags trace)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(40, 8)
        self.bag = nn.EmbeddingBag(40, 8, mode="mean")
        self.bag_sum = nn.EmbeddingBag(40, 8, mode="sum")
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        pooled = self.emb(ids).mean(1) + self.bag(ids) - self.bag_sum(ids) * 0.5
        return F.log_softmax(self.head(pooled), -1)


class _Upsampling(nn.Module):
    def forward(self, x):
        return (
            F.interpolate(x, scale_factor=2, mode="nearest"),
            F.interpolate(x, size=(7, 5), mode="bilinear", align_corners=False),
            F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
            nn.Upsample(scale_factor=3)(x),
            F.interpolate(x, size=(9, 9), mode="bicubic", align_corners=False),
            F.interpolate(x, scale_factor=0.5, mode="area"),
        )


class _PixelShuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(2, 8, 3, padding=1)
        self.shuffle, self.unshuffle = nn.PixelShuffle(2), nn.PixelUnshuffle(2)

    def forward(self, x):
        y = self.shuffle(self.c(x))
        return y, self.unshuffle(y)


class _Norms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm([4, 6])
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.bn = nn.BatchNorm1d(4)
        self.rms = nn.RMSNorm(6)

    def forward(self, x):
        return (
            self.ln(x), self.gn(x), self.inorm(x), self.bn(x.flatten(2)), self.rms(x),
            F.normalize(x, dim=1), F.local_response_norm(x, 2),
        )  # fmt: skip


def _quantized_dynamic():
    m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    return Q.quantize_dynamic(m)


def _quantized_static():
    m = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 36, 5),
    ).eval()  # fmt: skip
    return Q.quantize_static(m, [_normal(3, 6, 6)(4 + i)[0] for i in range(3)])


def _quantized_lstm():
    return Q.quantize_dynamic(_RNNClassifier("lstm").eval(), {nn.Linear, nn.LSTM})


def _keras(kind: str):
    from ember import keras

    L = keras.layers
    if kind == "decoder":
        layers = [
            keras.Input((4, 4, 3)),
            L.Conv2DTranspose(6, 3, strides=2, padding="same", activation="relu"),
            L.Conv2DTranspose(4, 3, strides=2, padding="valid"),
            L.UpSampling2D(2), L.BatchNormalization(), L.Conv2D(2, 3, padding="same"),
            L.LayerNormalization(),
        ]  # fmt: skip
        example = ember.zeros(1, 4, 4, 3)
    elif kind == "rnn":
        layers = [
            keras.Input((6,), dtype="int64"), L.Embedding(30, 8), L.GRU(8, return_sequences=True),
            L.LSTM(6), L.Dense(3, activation="softmax"),
        ]  # fmt: skip
        example = ember.zeros(1, 6, dtype=ember.int64)
    else:
        layers = [
            keras.Input((6,), dtype="int64"), L.Embedding(30, 8), L.GlobalAveragePooling1D(),
            L.Dense(4, activation="gelu"), L.Dense(3, activation="softmax"),
        ]  # fmt: skip
        example = ember.zeros(1, 6, dtype=ember.int64)
    m = keras.Sequential(layers)
    m(example)
    return m


MODELS = {
    "activations_mlp": (_Activations, _normal(6)),
    "conv_transpose2d_decoder": (_Decoder, _normal(4, 5, 5)),
    "autoencoder": (_Autoencoder, _normal(1, 8, 8)),
    "unet": (_UNet, _normal(3, 8, 8)),
    "conv1d_transpose1d": (_Audio, _normal(2, 20)),
    "conv3d_transpose3d": (_Volume, _normal(2, 4, 5, 6)),
    "cnn_batchnorm": (_cnn, _normal(3, 10, 10)),
    "depthwise": (_depthwise, _normal(4, 9, 9)),
    "gru_classifier": (lambda: _RNNClassifier("gru"), _ids(30, 7)),
    "lstm_classifier": (lambda: _RNNClassifier("lstm"), _ids(30, 7)),
    "transformer_encoder": (_Encoder, _encoder_inputs),
    "attention": (_Attention, lambda b: (_normal(3, 8)(b)[0], _normal(4, 8)(b)[0][:, ::-1] + 1)),
    "embedding_mean": (_EmbeddingMean, _ids(40, 6)),
    "upsampling": (_Upsampling, _normal(2, 4, 4)),
    "pixel_shuffle": (_PixelShuffle, _normal(2, 4, 4)),
    "norms": (_Norms, _normal(4, 4, 6)),
    "int8_dynamic_linear": (_quantized_dynamic, _normal(6)),
    "int8_static_conv": (_quantized_static, _normal(3, 6, 6)),
    "int8_dynamic_lstm": (_quantized_lstm, _ids(30, 7)),
    "keras_decoder": (lambda: _keras("decoder"), lambda b: _normal(4, 4, 3)(b)),
    "keras_rnn": (lambda: _keras("rnn"), _ids(30, 6)),
    "keras_embedding": (lambda: _keras("embedding"), _ids(30, 6)),
}


def _flat(out) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flat(o)]
    return [out.numpy() if isinstance(out, ember.Tensor) else np.asarray(out)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_model_equals_ember(tmp_path, name):
    build, make = MODELS[name]
    ember.manual_seed(0)
    model = build()
    model.eval()
    d = ember.export.save(model, str(tmp_path / name), tuple(ember.from_numpy(a) for a in make(3)))
    lite = ember_lite.load(d)
    for b in BATCHES:
        arrays = make(b)
        with ember.no_grad():
            want = _flat(model(*(ember.from_numpy(a) for a in arrays)))
        got = _flat(lite(*arrays))
        assert len(got) == len(want), name
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype, (name, b, g.shape, w.shape)
            scale = float(np.max(np.abs(w))) if w.size else 1.0
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{name} {b}")


# -- conv2d_grad_input on its own ----------------------------------------------------------
_CASES = [  # stride, padding, output_padding, dilation, groups, kernel
    (s, p, op, dl, g, k)
    for (s, dl), p, g, k in itertools.product(
        [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((2, 3), (2, 1)), ((1, 2), (2, 2)), ((3, 1), (1, 3))],
        [(0, 0), (1, 2)],
        [1, 2],
        [(3, 3), (2, 1)],
    )
    for op in {(0, 0), (max(s[0], dl[0]) - 1, max(s[1], dl[1]) - 1)}
]


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups", "kernel"), _CASES
)
def test_conv_transpose2d_equals_torch(stride, padding, output_padding, dilation, groups, kernel):
    g = _rng(1).standard_normal((2, 4, 4, 5)).astype(np.float32)
    w = _rng(2).standard_normal((4, 6 // groups, *kernel)).astype(np.float32)
    want = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(g), torch.from_numpy(w), None, stride, padding, output_padding,
        groups, dilation,
    ).numpy()  # fmt: skip
    in_hw = want.shape[2:]
    ph, pw = padding
    got = NN_PRIMS["conv2d_grad_input"](
        g, w, stride=stride, dilation=dilation, groups=groups, in_hw=in_hw,
        padding=(ph, ph - output_padding[0], pw, pw - output_padding[1]),
    )  # fmt: skip
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def _scatter_reference(g, w, stride, padding, dilation, groups, in_hw):
    """conv2d_grad_input by its definition: every output pixel of the convolution adds
    ``g * w`` into the input pixels its window covers (loops, float64)."""
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    out = np.zeros((n, cg * groups, *in_hw))
    for oc, y, x, i, j in itertools.product(range(o), range(ho), range(wo), range(kh), range(kw)):
        r = y * stride[0] - padding[0] + i * dilation[0]
        c = x * stride[1] - padding[2] + j * dilation[1]
        if 0 <= r < in_hw[0] and 0 <= c < in_hw[1]:
            gi = oc // og
            out[:, gi * cg : (gi + 1) * cg, r, c] += g[:, oc, y, x, None] * w[oc, :, i, j]
    return out


@pytest.mark.parametrize(
    ("padding", "in_hw", "dtype"),
    [
        ((0, 0, 0, 0), (6, 7), np.float32),
        ((-1, 2, 0, -2), (6, 7), np.float32),  # negative leading padding: a margin
        ((2, -1, 3, 1), (4, 3), np.float64),  # rows past the scatter stay zero
        ((1, 1, 1, 1), (5, 6), np.float64),
    ],
)
def test_conv2d_grad_input_paddings(padding, in_hw, dtype):
    """The paddings no public function makes, against the definition and (where its kernel
    takes them: not a negative leading padding) Ember's kernel."""
    from ember.ops._core import REGISTRY

    g = _rng(3).standard_normal((3, 4, 3, 3)).astype(dtype)
    w = _rng(4).standard_normal((4, 3, 2, 3)).astype(dtype)
    p = {"stride": (2, 1), "padding": padding, "dilation": (1, 2), "groups": 2, "in_hw": in_hw}
    got = NN_PRIMS["conv2d_grad_input"](g, w, **p)
    assert got.shape == (3, 6, *in_hw) and got.dtype == dtype
    np.testing.assert_allclose(got, _scatter_reference(g, w, **p), rtol=1e-5, atol=1e-6)
    if min(padding[0], padding[2]) >= 0:
        want = REGISTRY["conv2d_grad_input"].impl(g, w, **p)
        assert want.shape == got.shape and want.dtype == got.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fold_saved_model(tmp_path):
    """``F.fold`` (col2im) is conv2d_grad_input with one-hot kernels, groups = channels."""

    def fn(cols):
        return F.fold(cols, (5, 6), (2, 3), dilation=(1, 2), padding=1, stride=(2, 1))

    cols = _rng(5).standard_normal((2, 3 * 6, 3 * 4)).astype(np.float32)
    d = ember.export.save(fn, str(tmp_path / "fold"), ember.from_numpy(cols))
    want = torch.nn.functional.fold(
        torch.from_numpy(cols), (5, 6), (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)
    ).numpy()
    np.testing.assert_allclose(ember_lite.load(d)(cols), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", [F.conv_transpose1d, F.conv_transpose2d])
def test_conv_transpose_negative_padding_refused(fn):
    """PyTorch refuses negative (output) padding; Ember gave a wrong-sized output."""
    nd = 1 if fn is F.conv_transpose1d else 2
    x, w = ember.ones(1, 2, *(4,) * nd), ember.ones(2, 3, *(3,) * nd)
    with pytest.raises(ValueError, match="negative padding is not supported"):
        fn(x, w, padding=-1)
    with pytest.raises(ValueError, match="negative output_padding is not supported"):
        fn(x, w, stride=2, output_padding=-1)
