"""ember.keras.applications against Keras 3's keras.applications (torch backend) as the oracle:
weight counts, layer names, and predictions on the same weights moved through a Keras
``.weights.h5`` file."""

import os
import re

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

from ember.keras import applications as A
from ember.keras import layers as EL
from ember.models.weights import keras_layer_order

keras = pytest.importorskip("keras")
KA = keras.applications
# Keras 3 on NumPy 2 warns about __array__(copy=...) on every weight read
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _randomize_keras(model, seed=0):
    # non-trivial weights everywhere, BN moving statistics included
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            n = ws[0].shape
            # [gamma,] beta, moving mean, moving variance (InceptionV3 has no gamma)
            ws = [rng.uniform(0.5, 1.5, n)] if layer.scale else []
            ws += [rng.normal(0, 0.1, n), rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)]
        else:
            ws = [w + rng.normal(0, 0.02, w.shape) for w in ws]
        layer.set_weights([w.astype(np.float32) for w in ws])


def _names(layers):
    # layers Keras leaves unnamed get counters that depend on what was built before (both
    # frameworks): renumber each name stem by order of appearance
    seen: dict[str, int] = {}
    out = []
    for lyr in layers:
        stem = re.sub(r"_\d+$", "", lyr.name)
        out.append(f"{stem}#{seen.get(stem, 0)}")
        seen[stem] = seen.get(stem, 0) + 1
    return out


def _parity(tmp_path, ours_fn, ref_fn, shape, **kw):
    ref = ref_fn(weights=None, input_shape=shape, **kw)
    _randomize_keras(ref)
    path = str(tmp_path / "ref.weights.h5")
    ref.save_weights(path)
    ours = ours_fn(weights=path, input_shape=shape, **kw)
    assert ours.count_params() == ref.count_params()
    # Keras' layer order (by depth) is the order of the .weights.h5 file
    assert _names(keras_layer_order(ours)) == _names(ref.layers)
    x = np.random.default_rng(1).uniform(-1, 1, (2, *shape)).astype(np.float32)
    got = ours.predict(x, verbose=0)
    want = np.asarray(ref.predict(x, verbose=0))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_mobilenet_v2_matches_keras(tmp_path):
    _parity(tmp_path, A.MobileNetV2, KA.MobileNetV2, (32, 32, 3), alpha=0.35, classes=7)


def test_mobilenet_v2_odd_size_and_pooling(tmp_path):
    # an odd input size takes the other branch of the asymmetric padding
    _parity(
        tmp_path,
        A.MobileNetV2,
        KA.MobileNetV2,
        (35, 35, 3),
        alpha=0.5,
        include_top=False,
        pooling="max",
    )


def test_mobilenet_v2_full_count_and_names():
    ours, ref = A.MobileNetV2(), KA.MobileNetV2(weights=None)
    assert ours.count_params() == ref.count_params() == 3_538_984
    assert ours.name == ref.name
    wide = A.MobileNetV2(alpha=1.3, input_shape=(32, 32, 3), classes=5)
    assert (
        wide.count_params()
        == KA.MobileNetV2(
            weights=None, alpha=1.3, input_shape=(32, 32, 3), classes=5
        ).count_params()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, kw",
    [
        ("VGG16", {}),
        ("VGG19", {}),
        ("ResNet50", {}),
        ("ResNet101", {}),
        ("ResNet152", {}),
        ("ResNet50", {"include_top": False, "pooling": "avg"}),
    ],
)
def test_full_size_counts_match_keras(name, kw):
    ours, ref = getattr(A, name)(**kw), getattr(KA, name)(weights=None, **kw)
    assert ours.count_params() == ref.count_params()
    assert ours.name == ref.name
    assert ours.output_shape[-1] == ref.output_shape[-1]


def test_vgg16_headless_counts_and_names():
    ours = A.VGG16(include_top=False, input_shape=(32, 32, 3), pooling="avg")
    ref = KA.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    assert ours.count_params() == ref.count_params() == 14_714_688
    # Keras' layer order (by depth) is the order of the .weights.h5 file
    assert _names(keras_layer_order(ours)) == _names(ref.layers)
    assert ours.output_shape == ref.output_shape


@pytest.mark.slow
def test_vgg16_matches_keras(tmp_path):
    _parity(tmp_path, A.VGG16, KA.VGG16, (32, 32, 3), include_top=False, pooling="avg")


@pytest.mark.slow
def test_resnet50_matches_keras(tmp_path):
    _parity(tmp_path, A.ResNet50, KA.ResNet50, (32, 32, 3), classes=3)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="never downloads"):
        A.ResNet50(weights="imagenet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        A.MobileNetV2(weights=str(tmp_path / "none.weights.h5"))
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max'"):
        A.VGG16(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="at least 32x32"):
        A.VGG16(input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match=r"\(rows, cols, channels\)"):
        A.MobileNetV2(input_shape=(32, 32))
    with pytest.raises(ValueError, match="classes must be a positive int"):
        A.MobileNetV2(classes=0)
    with pytest.raises(ValueError, match="alpha"):
        A.MobileNetV2(alpha=-1)
    with pytest.raises(ValueError, match="fixed input size"):
        A.MobileNetV2(input_shape=(None, None, 3))


def test_headless_default_input_accepts_other_sizes():
    m = A.MobileNetV2(alpha=0.35, include_top=False)
    assert m.name == KA.MobileNetV2(weights=None, alpha=0.35, include_top=False).name
    x = np.zeros((1, 64, 64, 3), np.float32)
    assert m.predict(x, verbose=0).shape == (1, 2, 2, 1280)


def test_input_tensor_and_preprocess():
    from ember import keras as ek

    inp = ek.Input((32, 32, 3))
    m = A.MobileNetV2(input_tensor=inp, alpha=0.35, classes=4, classifier_activation=None)
    assert m.output_shape == (None, 4)
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        A.resnet50.preprocess_input(x.copy()), KA.resnet50.preprocess_input(x.copy()), atol=1e-4
    )
    np.testing.assert_allclose(
        A.mobilenet_v2.preprocess_input(x.copy()),
        np.asarray(KA.mobilenet_v2.preprocess_input(x.copy())),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        A.inception_v3.preprocess_input(x.copy()),
        np.asarray(KA.inception_v3.preprocess_input(x.copy())),
        atol=1e-6,
    )


def test_mobilenet_v2_round_trips_through_model_save_and_load_model(tmp_path):
    import ember
    from ember.keras.applications import MobileNetV2

    m = MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=5, alpha=0.35)
    path = tmp_path / "m.keras"
    m.save(str(path))
    m2 = ember.keras.models.load_model(str(path))  # DepthwiseConv2D is a registered layer
    x = ember.randn(2, 32, 32, 3)
    assert float((m(x) - m2(x)).abs().max()) == 0.0


# ---------------------------------------------------------------- InceptionV3 and shared arguments


def test_inception_v3_matches_keras(tmp_path):
    _parity(
        tmp_path,
        A.InceptionV3,
        KA.InceptionV3,
        (75, 75, 3),
        classes=5,
        classifier_activation=None,
    )


@pytest.mark.slow
def test_inception_v3_headless_odd_size_matches_keras(tmp_path):
    _parity(tmp_path, A.InceptionV3, KA.InceptionV3, (83, 91, 3), include_top=False, pooling="max")


def test_inception_v3_full_count_and_names():
    ours, ref = A.InceptionV3(), KA.InceptionV3(weights=None)
    assert ours.count_params() == ref.count_params() == 23_851_784
    assert ours.name == ref.name and ours.output_shape == ref.output_shape
    assert _names(keras_layer_order(ours)) == _names(ref.layers)
    with pytest.raises(ValueError, match="at least 75x75"):
        A.InceptionV3(input_shape=(64, 64, 3))


_APPS = ["InceptionV3", "MobileNetV2", "ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19"]


@pytest.mark.parametrize("name", _APPS)
def test_constructor_arguments_match_keras(name):
    """Keras' argument names, order and defaults; only ``weights`` defaults to None
    (Keras: 'imagenet', a download)."""
    import inspect

    ours = inspect.signature(getattr(A, name)).parameters
    ref = inspect.signature(getattr(KA, name)).parameters
    assert list(ours) == list(ref)
    for arg, p in ref.items():
        want = None if arg == "weights" else p.default
        assert ours[arg].default == want, arg
    assert getattr(A, name).__doc__  # and an example


@pytest.mark.parametrize("name", ["ResNet50", "VGG16", "InceptionV3"])
def test_top_and_pooling_arguments_match_keras(name):
    size = 75 if name == "InceptionV3" else 32
    for kw in (
        {"include_top": False},
        {"include_top": False, "pooling": "avg"},
        {"include_top": False, "pooling": "max"},
        {"classes": 3, "classifier_activation": None},
    ):
        ours = getattr(A, name)(input_shape=(size, size, 3), **kw)
        ref = getattr(KA, name)(weights=None, input_shape=(size, size, 3), **kw)
        assert ours.output_shape == ref.output_shape, kw
        assert ours.count_params() == ref.count_params(), kw
        assert _names(ours.layers[-2:]) == _names(ref.layers[-2:]), kw


def _tf_same_pool(x, k, s, kind):
    # TensorFlow's definition: output ceil(n/s), the window clipped to the image
    n, h, w, c = x.shape
    oh, ow = -(-h // s), -(-w // s)
    th, tw = max((oh - 1) * s + k - h, 0), max((ow - 1) * s + k - w, 0)
    out = np.zeros((n, oh, ow, c), np.float32)
    for i in range(oh):
        for j in range(ow):
            r, q = i * s - th // 2, j * s - tw // 2
            win = x[:, max(r, 0) : min(r + k, h), max(q, 0) : min(q + k, w)]
            out[:, i, j] = win.max((1, 2)) if kind == "Max" else win.mean((1, 2))
    return out


@pytest.mark.parametrize("kind", ["Max", "Average"])
@pytest.mark.parametrize("size, k, s", [(7, 3, 1), (8, 3, 2), (7, 2, 2), (6, 3, 2), (8, 4, 3)])
def test_same_padding_pooling(kind, size, k, s):
    """'same' pooling (InceptionV3's branches): Keras (symmetric pads), and TensorFlow's
    definition where the pads are uneven (Keras' torch backend replicates edge pixels there)."""
    import ember

    x = np.random.default_rng(0).standard_normal((2, size, size + 1, 3)).astype(np.float32)
    got = getattr(EL, f"{kind}Pooling2D")(k, s, padding="same")(ember.tensor(x))
    np.testing.assert_allclose(got.numpy(), _tf_same_pool(x, k, s, kind), rtol=1e-6, atol=1e-6)
    if (size, k, s) == (7, 3, 1):
        ref = getattr(keras.layers, f"{kind}Pooling2D")(k, s, padding="same")(x)
        np.testing.assert_allclose(got.numpy(), np.asarray(ref), rtol=1e-6, atol=1e-6)
