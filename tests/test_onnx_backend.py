"""Ember as an ONNX backend: the ``onnx`` package's node conformance cases.

The fast tests run every node case of a representative set of operators (elementwise,
reductions, shape and index ops, convolution and pooling, normalization, recurrences,
losses) and require each to pass; the slow one runs all cases and requires the pass rate
that ``docs/onnx_conformance.md`` records (``tools/onnx_node_report.py`` writes it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'ember[onnx]')")

from onnx import TensorProto, helper  # noqa: E402

from ember.onnx.backend import EmberBackend, prepare, run_node  # noqa: E402
from ember.onnx.conformance import node_cases, run_case  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# one or more operators of each family; all of their supported cases pass today
REPRESENTATIVE = [
    "Add", "Div", "Pow", "Mod", "Where", "Clip", "Gelu", "Selu", "HardSwish", "Erf",
    "ReduceSum", "ReduceMax", "ReduceL2", "ReduceLogSumExp", "ArgMax", "CumSum", "TopK",
    "Reshape", "Transpose", "Slice", "Squeeze", "Unsqueeze", "Concat", "Split", "Expand",
    "Pad", "Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "OneHot",
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "Softmax", "LogSoftmax",
    "LSTM", "GRU", "RNN", "SoftmaxCrossEntropyLoss", "Cast", "Range", "Trilu", "Einsum",
    "Resize", "LpPool", "QuantizeLinear", "DequantizeLinear", "SwiGLU", "RotaryEmbedding",
    "QLinearMatMul", "QLinearConv", "MatMulInteger", "BitShift", "If", "AffineGrid", "Unique",
    "NonMaxSuppression", "GridSample", "MaxUnpool", "OptionalHasElement",
]  # fmt: skip


# the representative operators' known failures (docs/onnx_conformance.md lists them all)
KNOWN_FAILING = {
    "test_convtranspose_3d",
    "test_col2im_5d",
    *(f"test_resize_downsample_{k}_antialias" for k in
      ("scales_cubic", "scales_linear", "sizes_cubic", "sizes_linear")),
}  # fmt: skip


@pytest.fixture(scope="module")
def some_cases():
    return node_cases(tuple(REPRESENTATIVE))


@pytest.mark.parametrize("op", REPRESENTATIVE)
def test_representative_operator_cases(some_cases, op):
    mine = [c for c in some_cases if c.op == op]
    assert mine, f"no node cases for {op}"
    results = {c.name: run_case(c) for c in mine}
    failing = {n: r.detail for n, r in results.items() if r.status == "fail"}
    assert set(failing) <= KNOWN_FAILING, failing
    # the operator itself is implemented: at least its plain cases run
    assert sum(r.status == "pass" for r in results.values()) >= 1


def test_conformance_rate_is_recorded_and_parseable():
    sys.path.insert(0, str(ROOT / "tools"))
    import onnx_node_report

    doc = (ROOT / "docs" / "onnx_conformance.md").read_text()
    passed, total = onnx_node_report.recorded_rate(doc)
    assert total > 0 and passed / total >= 0.9
    readme = (ROOT / "README.md").read_text()
    assert onnx_node_report.recorded_rate(readme) == (passed, total)


@pytest.mark.slow
def test_full_node_sweep_keeps_the_recorded_rate():
    sys.path.insert(0, str(ROOT / "tools"))
    import onnx_node_report

    passed, total = onnx_node_report.recorded_rate(
        (ROOT / "docs" / "onnx_conformance.md").read_text()
    )
    results = [run_case(c) for c in node_cases()]
    now_pass = sum(r.status == "pass" for r in results)
    now_total = now_pass + sum(r.status == "fail" for r in results)
    assert now_pass / now_total >= passed / total - 1e-12, (now_pass, now_total)


# -- the Backend interface itself ---------------------------------------------------------------


def test_run_node_and_prepare():
    x = np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32)
    (y,) = run_node(helper.make_node("Relu", ["x"], ["y"]), [x])
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Tanh", ["t"], ["y"])],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        [onnx.numpy_helper.from_array(x, "w")],
    )
    rep = prepare(helper.make_model(g))
    np.testing.assert_allclose(rep.run([x])[0], np.tanh(x @ x), rtol=1e-6)
    np.testing.assert_allclose(rep.run({"a": x})[0], np.tanh(x @ x), rtol=1e-6)
    assert EmberBackend.supports_device("CPU") and not EmberBackend.supports_device("CUDA")


def test_backend_errors_are_clear():
    x = np.ones(2, np.float32)
    with pytest.raises(ValueError, match="CPU only"):
        prepare(helper.make_model(helper.make_graph([], "g", [], [])), device="CUDA")
    with pytest.raises(ValueError, match="2 inputs, got 1"):
        run_node(helper.make_node("Add", ["a", "b"], ["c"]), [x])
    with pytest.raises(NotImplementedError, match="TfIdfVectorizer"):
        run_node(helper.make_node("TfIdfVectorizer", ["a"], ["c"]), [x])
    g = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["y"])],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(ValueError, match="unknown input name"):
        prepare(helper.make_model(g)).run({"b": x})
