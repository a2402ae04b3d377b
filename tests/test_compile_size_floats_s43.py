"""Python floats computed from sizes through ``** 0.5``, ``math.sqrt`` and ``math.log`` stay
symbolic in a compiled graph (``x / b ** 0.5``, an attention scale ``1 / math.sqrt(T)``, a
``log(num_classes)``-style term of a varying size): one graph for every size, equal to eager,
saved and loaded as JSON, exported to ONNX with the size read at run time."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember.compiler.ir import Ratio

nn = ember.nn


def _np(t):
    return t.detach().numpy()


class BatchScaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        b = x.size(0)
        return self.lin(x) / (b**0.5) + math.log(b) - 1.0 / math.sqrt(b)


def test_batch_size_through_sqrt_and_log_one_graph():
    ember.manual_seed(0)
    m = BatchScaled()
    cm = ember.compile(m)
    for b in (2, 3, 9, 10, 17, 1):
        x = ember.randn(b, 4)
        np.testing.assert_allclose(_np(cm(x)), _np(m(x)), rtol=1e-6, atol=1e-7)
    info = ember.compile.explain(cm)
    assert info.traces == 1, str(info)


def test_training_step_with_a_sqrt_of_batch_scale_equals_eager():
    def make():
        ember.manual_seed(1)
        m = BatchScaled()
        return m, ember.optim.SGD(m.parameters(), lr=0.1)

    (m1, o1), (m2, o2) = make(), make()

    def step(m, o, x, y):
        o.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        o.step()
        return loss

    cstep = ember.compile(lambda x, y: step(m2, o2, x, y))
    rng = np.random.default_rng(0)
    for b in (4, 5, 7, 4, 11):
        x = ember.from_numpy(rng.standard_normal((b, 4)).astype(np.float32))
        y = ember.from_numpy(rng.standard_normal((b, 3)).astype(np.float32))
        np.testing.assert_allclose(
            step(m1, o1, x, y).item(), cstep(x, y).item(), rtol=1e-5, atol=1e-7
        )
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-5, atol=1e-7)
    assert ember.compile.explain(cstep).traces == 1


def test_sequence_length_through_sqrt_is_symbolic():
    @ember.compile
    def f(x):
        t = x.shape[1]
        return x * math.sqrt(t) + 1.0 / math.sqrt(t)

    for t in (3, 4, 5, 6, 7, 30, 2):
        x = ember.randn(2, t)
        want = x * math.sqrt(t) + 1.0 / math.sqrt(t)
        np.testing.assert_allclose(_np(f(x)), _np(want), rtol=1e-6)
    info = ember.compile.explain(f)
    assert info.traces == 2, str(info)  # the first call, then the length made symbolic
    text = str(f.graph(ember.randn(2, 8)))
    assert "sqrt(s1)" in text


def test_a_float_by_size_in_a_table_still_specializes():
    table = {3: 0.5, 4: 0.25, 5: 0.7, 6: 0.1, 7: 0.9}

    @ember.compile
    def f(x):
        return x * table[x.shape[0]]

    for b in (3, 4, 5, 6, 7):
        x = ember.ones(b, 2)
        np.testing.assert_allclose(_np(f(x)), table[b] * np.ones((b, 2)), rtol=1e-6)


def test_ratio_with_fn_evaluates_prints_and_rejects_unknown_fns():
    r = Ratio("B", 0.0, 1.0, 1.0, 0.0, fn="sqrt")
    assert r.eval({"B": 16}) == 0.25
    assert str(r) == "(1)/(sqrt(B))"
    assert r != Ratio("B", 0.0, 1.0, 1.0, 0.0)
    assert Ratio("B", 1.0, 0.0, 0.0, 1.0, fn="log").eval({"B": math.e**2}) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="fn must be one of"):
        Ratio("B", 1.0, 0.0, 0.0, 1.0, fn="exp")


def test_graph_with_sqrt_ratio_saves_and_loads(tmp_path):
    from ember.compiler import serialize

    @ember.compile
    def f(x):
        return x / x.shape[0] ** 0.5

    for b in (2, 3, 5):
        f(ember.ones(b, 3))
    g = f.graph(ember.ones(4, 3))
    path = tmp_path / "g.json"
    serialize.save(g, path)
    assert '"fn": "sqrt"' in path.read_text()
    back = serialize.load(path)
    assert str(back) == str(g)


def test_onnx_export_reads_the_batch_size_through_sqrt():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import ember.onnx

    ember.manual_seed(2)
    m = BatchScaled().eval()
    proto = ember.onnx.export(
        m,
        (ember.randn(2, 4),),
        None,
        dynamic_axes={"input": {0: "batch"}},
        input_names=["input"],
        output_names=["out"],
    )
    onnx.checker.check_model(proto)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for b in (1, 2, 5, 9):
        x = rng.standard_normal((b, 4)).astype(np.float32)
        (got,) = sess.run(None, {"input": x})
        with ember.no_grad():
            want = m(ember.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
