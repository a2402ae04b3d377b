"""Deployment paths with models/inputs the other tests do not use (bugs found by fuzzing)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.onnx
from ember import nn
from ember import quantization as Q


def _net() -> nn.Module:
    ember.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise: no int8 kernel
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2),  # grouped
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 4),
    ).eval()


def test_quantize_static_keeps_grouped_conv_in_float():
    # was: ValueError "grouped convolution ... leave that module in float" from convert(),
    # with no way to leave it in float through quantize_static / prepare
    net = _net()
    x = ember.randn(4, 3, 6, 6)
    q = Q.quantize_static(net, ember.randn(32, 3, 6, 6))
    kinds = [type(m).__name__ for m in q]
    assert kinds[0] == "QuantizedConv2d" and kinds[-1] == "QuantizedLinear"
    assert type(q[3]).__name__ == "ConvReLU2d" and q[3][0].groups == 8
    assert type(q[5]) is nn.Conv2d and q[5].groups == 2
    f, got = net(x).detach().numpy(), q(x).detach().numpy()
    assert np.abs(got - f).max() < 0.05 * np.abs(f).max()


def test_quantize_static_grouped_conv_exports_to_onnxruntime():
    import onnxruntime as ort

    q = Q.quantize_static(_net(), ember.randn(32, 3, 6, 6))
    m = ember.onnx.export(q, (ember.randn(2, 3, 6, 6),), None, dynamic_axes={"input_0": [0]})
    s = ort.InferenceSession(m.SerializeToString())
    x = ember.randn(3, 3, 6, 6)
    np.testing.assert_allclose(
        s.run(None, {"input_0": x.numpy()})[0], q(x).detach().numpy(), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("cut", [0, 5, -3])
def test_onnx_load_truncated_file_is_a_clear_error(tmp_path, cut):
    # was: an empty file loaded as an empty module without error; other cuts raised
    # protobuf's DecodeError without naming the file
    p = tmp_path / "m.onnx"
    ember.onnx.export(nn.Linear(4, 3), (ember.randn(2, 4),), str(p))
    data = p.read_bytes()
    assert ember.onnx.load(str(p))(ember.ones(1, 4)).shape == (1, 3)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"bad\.onnx.*not a valid ONNX model"):
        ember.onnx.load(str(bad))


def test_onnx_load_garbage_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "g.onnx"
    bad.write_bytes(b"\xff\x00garbage" * 20)
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        ember.onnx.load(str(bad))
