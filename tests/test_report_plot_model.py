"""``ember.utils.plot_model`` and the layer table: shapes and parameter counts against
PyTorch (``nn.Module``) and Keras 3 (functional models), the graph's edges, the files
Graphviz writes, and the messages naming a missing pydot or ``dot``."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.utils import plot_model
from ember.utils.plot_model_graph import layer_rows, summary_table

pydot = pytest.importorskip("pydot")
os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3, the oracle, on PyTorch


def residual(lib):
    """The same residual net in ember or torch (``lib``)."""

    class Residual(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.nn.Conv2d(3, 8, 3, padding=1)
            self.a = lib.nn.Conv2d(8, 8, 3, padding=1)
            self.bn = lib.nn.BatchNorm2d(8)
            self.b = lib.nn.Conv2d(8, 8, 1)
            self.head = lib.nn.Linear(8, 5)

        def forward(self, x):
            x = self.stem(x).relu()
            y = self.bn(self.a(x)) + self.b(x)
            return self.head(y.mean((2, 3)))

    return Residual()


def _torch_leaves(model, x):
    import torch

    out = []
    hooks = [
        m.register_forward_hook(
            lambda m, a, o, n=n: out.append(
                (n, tuple(o.shape), sum(p.numel() for p in m.parameters()))
            )
        )
        for n, m in model.named_modules()
        if n and not list(m.children())
    ]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return out


def test_module_rows_match_pytorch_shapes_and_counts():
    torch = pytest.importorskip("torch")

    rows = layer_rows(residual(ember), input_shape=(3, 6, 6))
    ref = _torch_leaves(residual(torch), torch.zeros(1, 3, 6, 6))
    assert [(r.name, r.shape, r.params) for r in rows[1:]] == [(n, str(s), p) for n, s, p in ref]
    parents = {r.name: [rows[p].name for p in r.parents] for r in rows}
    # a and b both read the stem's output (through relu, a plain function: joined to the stem)
    assert parents["stem"] == ["input"] and parents["a"] == ["stem"] and parents["b"] == ["stem"]
    assert parents["bn"] == ["a"]


def test_keras_functional_rows_match_keras3():
    keras3 = pytest.importorskip("keras")
    from ember import keras

    def build(k):
        inp = k.Input((6,))
        a = k.layers.Dense(4, activation="relu", name="a")(inp)
        b = k.layers.Dense(4, name="b")(inp)
        s = k.layers.Add(name="add")([a, b])
        return k.Model(inp, k.layers.Dense(3, name="out")(s))

    ours, ref = build(keras), build(keras3)
    rows = layer_rows(ours)
    ref_layers = {lyr.name: lyr for lyr in ref.layers}
    for r in rows[1:]:
        lyr = ref_layers[r.name]
        assert r.params == lyr.count_params()
        assert r.shape == str(tuple(lyr.output.shape))
    parents = {r.name: sorted(rows[p].name for p in r.parents) for r in rows}
    assert parents["add"] == ["a", "b"] and parents["out"] == ["add"]


def test_keras_sequential_rows_match_keras3(tmp_path):
    keras3 = pytest.importorskip("keras")
    from ember import keras

    def build(k):
        return k.Sequential(
            [
                k.Input((8, 8, 1)),
                k.layers.Conv2D(4, 3, activation="relu", name="conv"),
                k.layers.MaxPooling2D(2, name="pool"),
                k.layers.Flatten(name="flat"),
                k.layers.Dropout(0.1, name="drop"),
                k.layers.Dense(5, name="dense"),
            ]
        )

    ours, ref = build(keras), build(keras3)
    rows = layer_rows(ours)
    assert [(r.name, r.shape, r.params) for r in rows] == [
        (lyr.name, str(tuple(lyr.output.shape)), lyr.count_params()) for lyr in ref.layers
    ]
    assert [[rows[p].name for p in r.parents] for r in rows[1:]] == [
        ["conv"],
        ["pool"],
        ["flat"],
        ["drop"],
    ]
    dot = tmp_path / "seq.dot"
    plot_model(ours, str(dot), show_shapes=True)
    text = dot.read_text()
    assert "conv (Conv2D)" in text and "(None, 3, 3, 4)" in text and "params: 185" in text


def test_plot_model_writes_png_svg_and_dot(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (Debian: apt-get install graphviz)")
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    png = tmp_path / "m.png"
    plot_model(model, str(png), input_shape=(4,))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "m.svg"
    plot_model(model, str(svg), input_shape=(4,), rankdir="LR", show_trainable=True)
    text = svg.read_text()
    assert "0 (Linear)" in text and "output: (1, 8)" in text and "params: 40" in text
    assert "trainable: True" in text
    dot = tmp_path / "m.dot"
    g = plot_model(model, str(dot), input_shape=(4,), show_shapes=False, show_layer_names=False)
    assert "output:" not in dot.read_text() and len(g.get_edges()) == 3


def test_summary_table_totals():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model[0].weight.requires_grad_(False)
    text = summary_table(model, example_input=ember.randn(2, 4))
    total = sum(p.numel() for p in model.parameters())
    assert text.splitlines()[-1] == f"Total params: {total} (trainable {total - 32})"
    assert "(2, 8)" in text


def test_missing_pydot_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match=r"pydot package \(pip install pydot\)"):
        plot_model(nn.Linear(2, 2), str(tmp_path / "m.png"), input_shape=(2,))


def test_missing_dot_binary_is_named_and_dot_files_still_work(monkeypatch, tmp_path):
    import ember.utils.plot_model_graph as P

    monkeypatch.setattr(P.shutil, "which", lambda name: None)
    with pytest.raises(
        ImportError, match=r"`dot` program is not on PATH.*apt-get install graphviz"
    ):
        plot_model(nn.Linear(2, 2), str(tmp_path / "m.png"), input_shape=(2,))
    plot_model(nn.Linear(2, 2), str(tmp_path / "m.dot"), input_shape=(2,))
    assert "Linear" in (tmp_path / "m.dot").read_text()


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="input_shape="):
        plot_model(nn.Linear(2, 2), str(tmp_path / "m.dot"))
    with pytest.raises(ValueError, match="rankdir"):
        plot_model(nn.Linear(2, 2), str(tmp_path / "m.dot"), input_shape=(2,), rankdir="UP")
    from ember import keras

    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        plot_model(unbuilt, str(tmp_path / "k.dot"))


def test_rows_do_not_change_the_model():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    before = [p.detach().numpy().copy() for p in model.parameters()]
    layer_rows(model, input_shape=(3,))
    assert model.training and all(
        np.array_equal(a, p.detach().numpy()) for a, p in zip(before, model.parameters())
    )
    assert all(not m._forward_hooks for m in model.modules())
