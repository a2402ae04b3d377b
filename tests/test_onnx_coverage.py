"""Every primitive is ONNX-lowered or documented as not, and export quotes the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'ember[onnx]')")

import ember.keras  # (registers the Keras optimizers' update primitives)
import ember.onnx
from ember.onnx.lowering import LOWERINGS
from ember.onnx.unsupported import UNSUPPORTED, reason
from ember.ops._core import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def test_registry_is_lowered_or_documented():
    registry = set(REGISTRY)
    lowered = set(LOWERINGS) & registry
    documented = set(UNSUPPORTED)
    undecided = sorted(registry - lowered - documented)
    assert not undecided, f"primitives with neither an ONNX lowering nor a reason: {undecided}"
    both = sorted(lowered & documented)
    assert not both, f"lowered primitives still listed as unsupported: {both}"
    stale = sorted(documented - registry)
    assert not stale, f"reasons for primitives that are not registered: {stale}"


def test_reasons_are_specific():
    for name, why in UNSUPPORTED.items():
        assert len(why) > 20 and why != "no ONNX lowering", name
    assert reason("not_a_primitive") == "no ONNX lowering"


@pytest.mark.parametrize(
    "fn, args, prim",
    [
        (lambda a: ember.special.gammaincc(a, a), (np.float32([1.5, 2.5]),), "igammac"),
        (lambda a: ember.linalg.svd(a)[1], (np.eye(2, dtype=np.float32),), "linalg_svd"),
        (lambda a: ember.special.airy_ai(a), (np.float32([0.5]),), "airy_ai"),
        (lambda a: ember.linalg.eigh(a)[0], (np.eye(3, dtype=np.float32) * 2,), "linalg_eigh"),
    ],
)
def test_export_quotes_the_documented_reason(fn, args, prim):
    from ember.compiler import trace_graph

    with ember.no_grad():
        prims = trace_graph(fn, *[ember.tensor(a) for a in args]).primitives()
    assert prim in prims
    with pytest.raises(ember.onnx.ExportError) as info:
        ember.onnx.export(fn, tuple(ember.tensor(a) for a in args), None)
    assert f"{prim}: no ONNX lowering: {UNSUPPORTED[prim]}" in str(info.value)


def test_param_limits_are_clear_errors():
    x = ember.tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    with pytest.raises(ember.onnx.ExportError, match="cumprod along a symbolic axis"):
        ember.onnx.export(lambda a: a.cumprod(0), x, None, dynamic_axes={"input_0": [0]})
    s = ember.tensor(np.sort(np.random.default_rng(1).standard_normal((3, 4)), 1))
    with pytest.raises(ember.onnx.ExportError, match="N-D sorted sequence"):
        ember.onnx.export(lambda a, v: ember.searchsorted(a, v), (s, x), None)
    n = ember.tensor(np.arange(4))
    with pytest.raises(ember.onnx.ExportError, match="degree as a tensor"):
        ember.onnx.export(lambda a, k: ember.special.chebyshev_polynomial_t(a, k), (x, n), None)


def test_coverage_doc_is_current():
    tool = ROOT / "tools" / "onnx_export_coverage.py"
    r = subprocess.run(
        [sys.executable, str(tool), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "docs" / "onnx_export_coverage.md").read_text()
    assert (
        f"Of {len(REGISTRY)} registered primitives, {len(set(LOWERINGS) & set(REGISTRY))}" in text
    )


@pytest.mark.parametrize(
    "name", ["erfc", "special.ndtr", "special.erfcx", "special.log_ndtr", "special.i0e"]
)
def test_decompositions_keep_relative_precision_in_the_tails(name):
    ort = pytest.importorskip("onnxruntime")
    fn = ember
    for part in name.split("."):
        fn = getattr(fn, part)
    x = np.array([-37.5, -20, -8, -2.5, -0.1, 0.0, 0.3, 1.99, 2.01, 6, 15, 26, 120.0])
    model = ember.onnx.export(fn, ember.tensor(x), None)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_0": x})[0]
    want = fn(ember.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
