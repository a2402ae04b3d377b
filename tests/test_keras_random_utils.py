"""``ember.keras.random`` and ``ember.keras.utils`` against Keras 3 (torch backend): shapes,
dtypes, distributions and ``seed=`` semantics (the generators differ, so values are compared
statistically, not bit for bit)."""

from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras
from ember.keras import random as R

K = pytest.importorskip("keras")


def _np(x):
    return x.detach().numpy() if isinstance(x, ember.Tensor) else np.asarray(x)


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [
        ("normal", ((200, 50),), {"mean": 1.0, "stddev": 2.0}),
        ("uniform", ((200, 50),), {"minval": -1.0, "maxval": 3.0}),
        ("truncated_normal", ((200, 50),), {"stddev": 0.5}),
        ("randint", ((200, 50), 2, 9), {}),
        ("normal", ((4, 3),), {"dtype": "float64"}),
        ("randint", ((4,), 0, 5), {"dtype": "int64"}),
    ],
)
def test_shapes_dtypes_and_moments_match_keras(fn, args, kwargs):
    ours = getattr(R, fn)(*args, seed=3, **kwargs)
    ref = getattr(K.random, fn)(*args, seed=3, **kwargs)
    assert tuple(ours.shape) == tuple(ref.shape)
    assert ours.dtype.name == str(ref.dtype).replace("torch.", "")
    a, b = _np(ours).astype(np.float64), np.asarray(K.ops.convert_to_numpy(ref), np.float64)
    if a.size > 1000:
        assert abs(a.mean() - b.mean()) < 0.1 and abs(a.std() - b.std()) < 0.1
        assert a.min() >= b.min() - 0.5 and a.max() <= b.max() + 0.5


def test_int_seed_repeats_and_seed_generator_advances():
    assert np.array_equal(_np(R.uniform((5,), seed=7)), _np(R.uniform((5,), seed=7)))
    assert not np.array_equal(_np(R.uniform((5,), seed=7)), _np(R.uniform((5,), seed=8)))
    g1, g2 = R.SeedGenerator(1), R.SeedGenerator(1)
    a1, b1 = _np(R.normal((5,), seed=g1)), _np(R.normal((5,), seed=g1))
    a2, b2 = _np(R.normal((5,), seed=g2)), _np(R.normal((5,), seed=g2))
    assert not np.array_equal(a1, b1)
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    keras.utils.set_random_seed(11)
    x = _np(R.normal((5,)))
    keras.utils.set_random_seed(11)
    assert np.array_equal(x, _np(R.normal((5,))))
    with pytest.raises(TypeError, match="seed"):
        R.normal((2,), seed="x")


def test_truncated_normal_stays_within_two_stddevs():
    x = _np(R.truncated_normal((1000,), mean=1.0, stddev=0.5, seed=0))
    assert np.all(np.abs(x - 1.0) <= 1.0 + 1e-6)


def test_dropout_matches_keras_semantics():
    x = np.ones((400, 50), np.float32)
    ours = _np(R.dropout(x, 0.3, seed=1))
    ref = np.asarray(
        K.ops.convert_to_numpy(K.random.dropout(K.ops.convert_to_tensor(x), 0.3, seed=1))
    )
    for out in (ours, ref):
        kept = out[out != 0]
        np.testing.assert_allclose(kept, 1 / 0.7, rtol=1e-6)
    assert abs((ours == 0).mean() - (ref == 0).mean()) < 0.02
    shared = _np(R.dropout(x, 0.5, noise_shape=(1, 50), seed=2))
    assert np.all(shared == shared[0])  # one draw per column
    with pytest.raises(ValueError, match="rate"):
        R.dropout(x, 1.0)


def test_shuffle_is_a_permutation_along_axis():
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    out = _np(R.shuffle(x, seed=4))
    assert sorted(map(tuple, out)) == sorted(map(tuple, x))
    cols = _np(R.shuffle(x, axis=1, seed=4))
    np.testing.assert_array_equal(np.sort(cols, axis=1), x)
    assert np.array_equal(out, _np(R.shuffle(x, seed=4)))


def test_to_categorical_matches_keras():
    for y, n in (([0, 2, 1], None), ([[1], [0]], 3), (np.array([[0, 1], [2, 0]]), 3)):
        ours, ref = keras.utils.to_categorical(y, n), K.utils.to_categorical(y, n)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)
    t = keras.utils.to_categorical(ember.tensor([1, 0]), 2)
    assert isinstance(t, ember.Tensor) and t.dtype == ember.float32
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        keras.utils.to_categorical([0, 3], 3)
    with pytest.raises(ValueError, match="label -1"):
        keras.utils.to_categorical([0, -1], 3)


def test_plot_model_without_pydot_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ImportError, match="pydot.*Graphviz"):
        keras.utils.plot_model(model)


def test_plot_model_builds_the_layer_graph(monkeypatch, tmp_path):
    """With a stand-in pydot module: one node per layer, one edge per connection."""

    class Dot:
        def __init__(self, **kw):
            self.kw, self.nodes, self.edges, self.written = kw, [], [], None

        def add_node(self, n):
            self.nodes.append(n)

        def add_edge(self, e):
            self.edges.append(e)

        def write_raw(self, path):
            self.written = path

    fake = types.SimpleNamespace(
        Dot=Dot,
        Node=lambda name, label, shape: (name, label),
        Edge=lambda a, b: (a, b),
    )
    monkeypatch.setitem(sys.modules, "pydot", fake)
    L = keras.layers
    inp = keras.Input(shape=(4,))
    a, b = L.Dense(3, name="a")(inp), L.Dense(3, name="b")(inp)
    model = keras.Model(inp, L.Add(name="sum")([a, b]))
    g = keras.utils.plot_model(
        model, to_file=tmp_path / "m.dot", show_shapes=True, show_layer_names=True
    )
    labels = [lbl for _, lbl in g.nodes]
    assert len(labels) == 4 and any("a (Dense)" in s and "(None, 3)" in s for s in labels)
    assert len(g.edges) == 4 and g.written == str(tmp_path / "m.dot")
    assert g.kw["rankdir"] == "TB"
