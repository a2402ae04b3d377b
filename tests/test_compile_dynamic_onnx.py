"""ONNX export with dynamic axes beyond the batch: onnxruntime runs one exported file at
several batch sizes and sequence lengths and equals Ember."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import ember

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import ember.onnx  # noqa: E402  (after the skips: needs the [onnx] extra)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from workloads import build  # noqa: E402


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _run(model, sizes, vocab):
    m = ember.onnx.export(
        model,
        (ember.from_numpy(np.zeros((2, 16), np.int64)),),
        None,
        dynamic_axes={"input": {0: "batch", 1: "seq"}},
        input_names=["input"],
        output_names=["logits"],
    )
    assert _dims(m.graph.input[0]) == ["batch", "seq"]
    assert _dims(m.graph.output[0]) == ["batch", "seq", vocab]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for b, t in sizes:
        x = rng.integers(0, vocab, (b, t)).astype(np.int64)
        (got,) = sess.run(None, {"input": x})
        with ember.no_grad():
            want = model(ember.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{(b, t)}")


def test_gpt_written_one_file_many_sequence_lengths():
    model, *_ = build(ember, "gpt_written", small=True)
    model.eval()
    _run(model, [(2, 16), (3, 7), (1, 32), (4, 25), (2, 2)], 256)


def test_lstm_one_file_many_sequence_lengths():
    model, *_ = build(ember, "lstm", small=True)
    _run(model, [(2, 16), (3, 5), (1, 30)], 96)


def test_output_size_is_an_expression_of_the_input_axes():
    w = ember.randn(4, 3)

    def f(x):
        return (x.reshape(-1, x.shape[-1]) @ w).relu()

    m = ember.onnx.export(f, (ember.randn(2, 5, 4),), None, dynamic_axes={"input_0": [0, 1]})
    assert _dims(m.graph.input[0]) == ["batch", "s1", 4]
    assert _dims(m.graph.output[0]) == ["batch*s1", 3]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 7, 4)).astype(np.float32)
    (got,) = sess.run(None, {"input_0": x})
    np.testing.assert_allclose(got, f(ember.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_example_inputs_are_not_marked():
    x = ember.randn(2, 5)
    ember.onnx.export(lambda x: x * 2, (x,), None, dynamic_axes={"input_0": {1: "n"}})
    assert "_dynamic_dims" not in x.__dict__


def test_axis_that_cannot_be_dynamic_says_why():
    nn = ember.nn
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    with pytest.raises(ValueError, match=r"axis 2 has the fixed size 16.*cannot be symbolic"):
        ember.onnx.export(
            net, (ember.randn(2, 3, 16, 16),), None, dynamic_axes={"input_0": {0: "b", 2: "h"}}
        )


def test_dynamic_shapes_torch_export_style():
    torch = pytest.importorskip("torch")
    model, *_ = build(ember, "gpt_written", small=True)
    model.eval()
    x = ember.from_numpy(np.zeros((2, 16), np.int64))
    seq = torch.export.Dim("seq")
    for spec in (({0: "batch", 1: seq},), {"idx": (torch.export.Dim("batch"), seq)}):
        m = ember.onnx.export(model, (x,), None, dynamic_shapes=spec)
        assert _dims(m.graph.input[0]) == ["batch", "seq"]
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        xx = np.random.default_rng(2).integers(0, 256, (3, 9)).astype(np.int64)
        (got,) = sess.run(None, {"input_0": xx})
        with ember.no_grad():
            want = model(ember.from_numpy(xx)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="not an input"):
        ember.onnx.export(model, (x,), None, dynamic_shapes={"nope": {1: "seq"}})
    with pytest.raises(ValueError, match="not both"):
        ember.onnx.export(
            model, (x,), None, dynamic_shapes=({1: "s"},), dynamic_axes={"input_0": [1]}
        )
