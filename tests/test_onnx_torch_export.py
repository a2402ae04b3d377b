"""Files written by PyTorch's own exporter (``torch.onnx.export``) import into Ember.

Each model (an MLP, a CNN with batch norm, an LSTM, a transformer encoder block) is exported
by PyTorch with a dynamic batch; ``ember.onnx.load`` gives outputs equal to PyTorch's
(rel 1e-4) at two batch sizes, a fine-tuning step sends gradients to every weight and
lowers the loss, and the module runs compiled (``ember.compile``) with the eager results.
The TorchScript exporter (``dynamo=False``) is used: the dynamo exporter needs
``onnxscript``, which the ``[onnx]`` extra does not install.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import ember

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'ember[onnx]')")

import ember.onnx  # noqa: E402

tnn = torch.nn


class _CNN(tnn.Module):
    def __init__(self):
        super().__init__()
        self.body = tnn.Sequential(
            tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(4, 8, 3, stride=2, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(),
            tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(8, 3),
        )  # fmt: skip

    def forward(self, x):
        return self.body(x)


class _LSTM(tnn.Module):
    def __init__(self):
        super().__init__()
        self.emb = tnn.Embedding(20, 8)
        self.rnn = tnn.LSTM(8, 12, num_layers=2, batch_first=True)
        self.head = tnn.Linear(12, 20)

    def forward(self, ids):
        y, _ = self.rnn(self.emb(ids))
        return self.head(y)


class _Block(tnn.Module):
    """A pre-norm transformer block: causal self-attention and a GELU MLP."""

    def __init__(self, d=16, heads=2, seq=6):
        super().__init__()
        self.ln1, self.ln2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
        self.attn = tnn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = tnn.Sequential(tnn.Linear(d, 4 * d), tnn.GELU(), tnn.Linear(4 * d, d))
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), 1))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=self.mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


def _randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, tnn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _model(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "mlp":
        m = tnn.Sequential(tnn.Linear(6, 16), tnn.Tanh(), tnn.Linear(16, 16), tnn.ReLU(),
                           tnn.Linear(16, 3))  # fmt: skip
        make = lambda b: rng.standard_normal((b, 6)).astype(np.float32)
    elif name == "cnn":
        m = _CNN()
        _randomize_bn(m)
        make = lambda b: rng.standard_normal((b, 1, 8, 8)).astype(np.float32)
    elif name == "lstm":
        m = _LSTM()
        make = lambda b: rng.integers(0, 20, (b, 5)).astype(np.int64)
    else:
        m = _Block()
        make = lambda b: rng.standard_normal((b, 6, 16)).astype(np.float32)
    return m.eval(), make


def _export(model, x, opset=17):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.from_numpy(x),), f, dynamo=False, opset_version=opset,
            input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        )  # fmt: skip
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    return proto


NAMES = ["mlp", "cnn", "lstm", "transformer"]


@pytest.mark.parametrize("name", NAMES)
def test_torch_exported_file_imports_and_matches(name):
    model, make = _model(name)
    proto = _export(model, make(2))
    m = ember.onnx.load(proto)
    for b in (2, 5):
        x = make(b)
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        with ember.no_grad():
            got = m(ember.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_torch_exported_file_fine_tunes(name):
    model, make = _model(name)
    m = ember.onnx.load(_export(model, make(2)))
    params = list(m.parameters())
    assert params, "float initializers should become parameters"
    x = ember.tensor(make(4))
    target = ember.tensor(np.random.default_rng(1).standard_normal(m(x).shape).astype(np.float32))
    opt = ember.optim.SGD(params, lr=0.05)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = ((m(x) - target) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    # every weight the output depends on receives a finite gradient
    for p in params:
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all()
    assert any(np.abs(p.grad.numpy()).max() > 0 for p in params)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_torch_exported_file_runs_compiled(name):
    model, make = _model(name)
    m = ember.onnx.load(_export(model, make(2)))
    fast = ember.compile(m, fullgraph=True)  # a graph break is an error
    for b in (2, 3, 5):
        x = ember.tensor(make(b))
        with ember.no_grad():
            want = m(x).numpy()
            got = fast(x).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "opset"),
    # opset 11-12 files carry Squeeze/Unsqueeze axes and Split sizes as attributes; PyTorch
    # exports the attention block from opset 14 on
    [("cnn", 11), ("lstm", 11), ("lstm", 13), ("transformer", 14), ("transformer", 20)],
)
def test_other_opsets_import(name, opset):
    model, make = _model(name)
    m = ember.onnx.load(_export(model, make(2), opset))
    x = make(3)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    with ember.no_grad():
        np.testing.assert_allclose(m(ember.tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)
