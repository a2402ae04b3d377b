"""Keras 3 scripts ported by changing the import: ``tests/_keras_port/*.py`` each define
``run(keras)``; every one runs with real Keras 3 (torch backend) and with ``ember.keras`` and
the results (history values, evaluation, predictions, weights) must agree."""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras as K
import numpy as np
import pytest

from ember import keras as ek

HERE = os.path.join(os.path.dirname(__file__), "_keras_port")
SCRIPTS = ["mnist_convnet", "functional_multi_io", "custom_train_step", "text_bilstm", "save_load"]


def _compare(a, b, path="result", rtol=1e-5, atol=1e-6):
    if isinstance(a, dict):
        assert isinstance(b, dict), path
        assert sorted(a) == sorted(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _compare(a[k], b[k], f"{path}[{k!r}]", rtol, atol)
    elif isinstance(a, list | tuple) and not (a and isinstance(a[0], int | float)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _compare(u, v, f"{path}[{i}]", rtol, atol)
    elif isinstance(a, str | bool | type(None)):
        assert a == b, f"{path}: {a!r} != {b!r}"
    else:
        u, v = np.asarray(a), np.asarray(b)
        assert u.shape == v.shape, f"{path}: shape {u.shape} != {v.shape}"
        np.testing.assert_allclose(v, u, rtol=rtol, atol=atol, err_msg=path)


def _run(name, keras, tmp_path, sub):
    spec = importlib.util.spec_from_file_location(
        f"_keras_port_{name}", os.path.join(HERE, f"{name}.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = tmp_path / sub
    d.mkdir()
    cwd = os.getcwd()
    os.chdir(d)
    try:
        return mod.run(keras)
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_matches_keras(name, tmp_path):
    want = _run(name, K, tmp_path, "keras")
    got = _run(name, ek, tmp_path, "ember")
    _compare(want, got)
