"""ember.quantization: int8 formulas, kernels, dynamic and static quantization, QDQ ONNX.

Oracles: ``torch.quantize_per_tensor`` / ``quantize_per_channel`` and the torch.ao observers for
the formulas, ``torch.ao.quantization.quantize_dynamic`` for the dynamic modules, float
convolutions of the dequantized tensors for the kernels, onnxruntime for the QDQ export.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

import ember
from ember import nn
from ember import quantization as Q
from ember.quantization import _kernels as K

# torch.ao.quantization and quantized tensors warn that they are deprecated: they are the oracle
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*quantiz.*:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

BACKENDS = ["blas"] + (["vnni"] if K.backend() == "vnni" else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    old = K.set_backend(request.param)
    yield request.param
    K.set_backend(old)


def rng(seed=0):
    return np.random.default_rng(seed)


def t(a):
    return ember.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# ------------------------------------------------------------------ formulas vs PyTorch


def test_quantize_per_tensor_matches_torch():
    x = np.concatenate([rng().normal(0, 3, 500), [0.25, 0.35, -0.25, 1e6, -1e6]]).astype(np.float32)
    for dtype, tdt, zp in (("uint8", torch.quint8, 37), ("int8", torch.qint8, -3)):
        ref = torch.quantize_per_tensor(torch.from_numpy(x), 0.1, zp, tdt).int_repr().numpy()
        got = Q.quantize_per_tensor(x, 0.1, zp, dtype)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, ref)  # half-to-even rounding and clamping
        deq = Q.dequantize(got, 0.1, zp)
        ref_deq = torch.quantize_per_tensor(torch.from_numpy(x), 0.1, zp, tdt).dequantize()
        np.testing.assert_allclose(deq, ref_deq.numpy(), rtol=1e-6)


def test_quantize_per_channel_matches_torch():
    w = rng(1).normal(size=(6, 3, 2, 2)).astype(np.float32)
    obs = torch.ao.quantization.PerChannelMinMaxObserver(
        ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric
    )
    obs(torch.from_numpy(w))
    tscale, tzp = obs.calculate_qparams()
    q, scale = Q.modules.quantize_weight(w)
    np.testing.assert_allclose(scale, tscale.numpy(), rtol=1e-6)
    ref = torch.quantize_per_channel(torch.from_numpy(w), tscale, tzp, 0, torch.qint8)
    np.testing.assert_array_equal(q, ref.int_repr().numpy())
    got = Q.quantize_per_channel(w, tscale.numpy(), tzp.numpy(), 0, "int8")
    np.testing.assert_array_equal(got, ref.int_repr().numpy())


@pytest.mark.parametrize("lo,hi", [(-1.0, 3.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)])
def test_affine_qparams_match_torch_minmax_observer(lo, hi):
    obs = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)
    obs(torch.tensor([lo, hi]))
    ts, tz = obs.calculate_qparams()
    mine = Q.MinMaxObserver()
    mine(np.array([lo, hi], np.float32))
    s, z = mine.calculate_qparams()
    assert s == pytest.approx(float(ts), rel=1e-6) and z == int(tz)


def test_histogram_observer_trims_long_tails():
    x = rng(2).laplace(size=100000).astype(np.float32)  # long tails: min/max wastes levels
    mm, hist = Q.MinMaxObserver(), Q.HistogramObserver()
    for chunk in np.array_split(x, 4):
        mm(chunk)
        hist(chunk)

    def mse(s, z):
        return np.mean((Q.dequantize(Q.quantize_per_tensor(x, s, z, "uint8"), s, z) - x) ** 2)

    (s_mm, z_mm), (s_h, z_h) = mm.calculate_qparams(), hist.calculate_qparams()
    assert s_h < 0.95 * s_mm
    assert mse(s_h, z_h) < mse(s_mm, z_mm)


# ------------------------------------------------------------------ kernels


@pytest.mark.parametrize("m,k,n", [(1, 3, 1), (7, 64, 70), (33, 600, 129)])
def test_qgemm_exact_integer_accumulation(backend, m, k, n):
    r = rng(m)
    x = r.normal(size=(m, k)).astype(np.float32)
    wq = r.integers(-128, 128, size=(n, k)).astype(np.int8)
    ws = r.uniform(0.001, 0.01, n).astype(np.float32)
    bias = r.normal(size=n).astype(np.float32)
    pw = K.PackedWeight.from_int8(wq, ws)
    got = K.qgemm(x, 0.02, 131, pw, bias, False)
    xq = Q.quantize_per_tensor(x, 0.02, 131, "uint8").astype(np.int64)
    acc = (xq - 131) @ wq.astype(np.int64).T  # exact integers
    ref = acc * (0.02 * ws.astype(np.float64)) + bias
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    relu = K.qgemm(x, 0.02, 131, pw, bias, True)
    np.testing.assert_allclose(relu, np.maximum(got, 0), rtol=1e-6)


def test_numpy_only_path_without_jit():
    from ember.backends import jit

    old = jit.set_enabled(False)  # as without numba: the exact BLAS path, same results
    try:
        assert K.backend() == "blas"
        q = Q.quantize_dynamic(nn.Linear(600, 5))
        got = q(t(rng(11).normal(size=(3, 600)))).numpy()
    finally:
        jit.set_enabled(old)
    np.testing.assert_allclose(got, q(t(rng(11).normal(size=(3, 600)))).numpy(), atol=1e-6)


def test_vnni_and_blas_paths_agree():
    if "vnni" not in BACKENDS:
        pytest.skip("no AVX-512 VNNI here (or numba missing): only the BLAS path runs")
    conv = nn.Conv2d(8, 70, 3, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    q = Q.QuantizedConv2d.from_float(conv, 0.03, 100, relu=True)
    x = t(rng(3).normal(size=(5, 8, 9, 11)))
    outs = {}
    for b in ("vnni", "blas"):
        old = K.set_backend(b)
        outs[b] = q(x).numpy()
        K.set_backend(old)
    np.testing.assert_allclose(outs["vnni"], outs["blas"], rtol=1e-6, atol=1e-6)


def test_vnni_kernel_emits_vpdpbusd():
    if "vnni" not in BACKENDS:
        pytest.skip("no AVX-512 VNNI here (or numba missing)")
    import numba

    from ember.quantization import _vnni

    fn = numba.njit(_vnni.gemm_u8s8.py_func)  # uncached: cached code has no assembly
    bpk, k4, np_ = _vnni.pack_b(np.ones((2, 8), np.int8))
    out = np.empty((4, np_), np.int32)
    fn(np.ones((4, 4 * k4), np.uint8), bpk, k4, out)
    assert (out[:, :2] == 8).all() and (out[:, 2:] == 0).all()
    assert "vpdpbusd" in fn.inspect_asm(fn.signatures[0])


@pytest.mark.parametrize(
    "cin,stride,pad,dil", [(1, 1, 1, 1), (5, (2, 1), (1, 2), (1, 2)), (16, 2, 0, 1)]
)
def test_quantized_conv2d_vs_torch_on_dequantized(backend, cin, stride, pad, dil):
    conv = nn.Conv2d(cin, 12, 3, stride=stride, padding=pad, dilation=dil)
    q = Q.QuantizedConv2d.from_float(conv, 0.04, 128)  # covers +-5.1: no clipping
    x = rng(4).normal(size=(3, cin, 9, 10)).astype(np.float32)
    got = q(t(x)).numpy()
    xd = torch.quantize_per_tensor(torch.from_numpy(x), 0.04, 128, torch.quint8).dequantize()
    ref = torch.nn.functional.conv2d(
        xd, torch.from_numpy(q.weight()), torch.from_numpy(q.bias.numpy()), stride, pad, dil
    )
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5, atol=1e-5)
    # unbatched input, and a float conv nearby
    np.testing.assert_allclose(q(t(x[0])).numpy(), got[0], rtol=1e-6, atol=1e-6)
    assert np.abs(got - conv(t(x)).detach().numpy()).max() < 0.1 * np.abs(got).max()


# ------------------------------------------------------------------ dynamic


def _torch_linear_like(lin):
    tl = torch.nn.Linear(lin.in_features, lin.out_features)
    with torch.no_grad():
        tl.weight.copy_(torch.from_numpy(lin.weight.detach().numpy()))
        tl.bias.copy_(torch.from_numpy(lin.bias.detach().numpy()))
    return tl


def test_dynamic_linear_vs_torch_quantize_dynamic(backend):
    ember.manual_seed(0)
    m = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    tm = torch.nn.Sequential(_torch_linear_like(m[0]), torch.nn.ReLU(), _torch_linear_like(m[2]))
    tq = torch.ao.quantization.quantize_dynamic(
        tm, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, torch.qint8
    )
    q = Q.quantize_dynamic(m, {nn.Linear}, dtype=ember.int8)
    assert isinstance(q[0], Q.DynamicQuantizedLinear) and type(m[0]) is nn.Linear  # new model
    x = rng(5).normal(size=(2, 7, 20)).astype(np.float32)
    got = q(t(x)).numpy()
    ref = tq(torch.from_numpy(x)).numpy()
    fl = m(t(x)).detach().numpy()
    # both int8 results approximate the float one; torch reduces the activation range to 7
    # bits on x86, so they agree to a few steps of its scale
    np.testing.assert_allclose(got, ref, atol=0.03 * np.abs(fl).max())
    assert np.abs(got - fl).max() <= np.abs(ref - fl).max() * 1.5 + 1e-6


@pytest.mark.parametrize("bidirectional,layers,batch_first", [(False, 1, True), (True, 2, False)])
def test_dynamic_lstm_vs_torch_quantize_dynamic(backend, bidirectional, layers, batch_first):
    ember.manual_seed(1)
    lstm = nn.LSTM(6, 8, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    tl = torch.nn.LSTM(
        6, 8, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first
    )
    with torch.no_grad():
        for name, p in tl.named_parameters():
            p.copy_(torch.from_numpy(getattr(lstm, name).detach().numpy()))
    tq = torch.ao.quantization.quantize_dynamic(tl, {torch.nn.LSTM}, torch.qint8)
    q = Q.quantize_dynamic(lstm, {nn.LSTM})
    x = rng(6).normal(size=(3, 5, 6)).astype(np.float32)
    out, (h, c) = q(t(x))
    tout, (th, tc) = tq(torch.from_numpy(x))
    fout, (fh, fc) = lstm(t(x))
    for a, b_, f in ((out, tout, fout), (h, th, fh), (c, tc, fc)):
        a, b_, f = a.numpy(), b_.detach().numpy(), f.detach().numpy()
        assert a.shape == b_.shape == f.shape
        np.testing.assert_allclose(a, b_, atol=0.03)
        np.testing.assert_allclose(a, f, atol=0.03)
    # an initial state and unbatched input go through the same path
    h0 = ember.zeros(layers * (2 if bidirectional else 1), 8)
    o1, _ = q(t(x[0] if batch_first else x[:, 0]), (h0, h0))
    ref1 = out.numpy()[0] if batch_first else out.numpy()[:, 0]
    np.testing.assert_allclose(o1.numpy(), ref1, atol=0.02)


# ------------------------------------------------------------------ static


def _cnn(c1=8, c2=16):
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.BatchNorm2d(c2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(c2 * 16, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def test_fuse_conv_bn_relu_matches_unfused():
    ember.manual_seed(2)
    m = _cnn()
    with ember.no_grad():
        m(t(rng(7).normal(size=(16, 1, 8, 8))))  # moves the running statistics
    m.eval()
    for bn in (m[1], m[4]):
        bn.weight = nn.Parameter(t(rng(8).uniform(0.5, 2, bn.num_features)))
    f = Q.fuse_modules(m, [["0", "1", "2"], ["3", "4", "5"], ["9", "10"]])
    assert isinstance(f[0], Q.ConvReLU2d) and isinstance(f[1], nn.Identity)
    assert isinstance(m[1], nn.BatchNorm2d)  # not in place
    x = t(rng(9).normal(size=(4, 1, 8, 8)))
    np.testing.assert_allclose(f(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def digits_cnn():
    from ember.data.datasets import Digits

    tr, te = Digits(train=True), Digits(train=False)
    ember.manual_seed(0)
    m = _cnn()
    opt = ember.optim.Adam(m.parameters(), lr=3e-3)
    order = np.random.default_rng(0).permutation(len(tr.data))
    for _ in range(2):
        for s in range(0, len(order), 64):
            i = order[s : s + 64]
            loss = nn.functional.cross_entropy(m(t(tr.data[i])), ember.from_numpy(tr.targets[i]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    return m, tr, te


def _acc(model, data, labels):
    with ember.no_grad():
        return float((model(t(data)).numpy().argmax(1) == labels).mean())


@pytest.mark.parametrize("observer", ["minmax", "histogram"])
def test_static_int8_digits_accuracy_within_one_point(digits_cnn, observer):
    m, tr, te = digits_cnn
    before = copy.deepcopy(m.state_dict())
    p = Q.prepare(m, observer=observer)
    with ember.no_grad():
        for s in range(0, 512, 128):
            p(t(tr.data[s : s + 128]))
    q = Q.convert(p)
    kinds = [type(x).__name__ for x in q]
    assert kinds.count("QuantizedConv2d") == 2 and kinds.count("QuantizedLinear") == 2
    assert q[0].relu and not q[-1].relu
    f_acc, q_acc = _acc(m, te.data, te.targets), _acc(q, te.data, te.targets)
    assert f_acc > 0.85
    assert q_acc >= f_acc - 0.01, (f_acc, q_acc)
    for k, v in m.state_dict().items():  # the float model is untouched
        np.testing.assert_array_equal(v.numpy(), before[k].numpy())


def test_quantize_static_wrapper_and_loader(digits_cnn):
    m, tr, te = digits_cnn
    q1 = Q.quantize_static(m, tr.data[:256], observer="minmax")
    loader = ember.data.DataLoader(tr, batch_size=64)
    q2 = Q.quantize_static(m, loader, observer="minmax", num_batches=4)
    a, b = q1(t(te.data[:50])).numpy(), q2(t(te.data[:50])).numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)  # same 256 samples either way
    sd = q1.state_dict()
    assert sd["0.weight_int8"].dtype == ember.int8 and sd["0.weight_scale"].dtype == ember.float32
    assert {"0.scale", "0.zero_point", "0.bias"} <= set(sd)


def test_quantized_state_dict_round_trip(digits_cnn, tmp_path):
    m, tr, te = digits_cnn
    q1 = Q.quantize_static(m, tr.data[:256])
    ember.save(q1.state_dict(), str(tmp_path / "q.safetensors"))
    other = copy.deepcopy(m)
    for p_ in other.parameters():
        p_.data = p_.data * 0.5  # a different float model, differently calibrated
    q2 = Q.quantize_static(other, tr.data[256:300])
    x = t(te.data[:40])
    before = q2(x).numpy()  # builds q2's packed-weight caches
    q2.load_state_dict(ember.load(str(tmp_path / "q.safetensors")))
    assert np.abs(before - q1(x).numpy()).max() > 1e-3
    np.testing.assert_array_equal(q2(x).numpy(), q1(x).numpy())  # caches rebuilt


# ------------------------------------------------------------------ QDQ ONNX


def test_qdq_onnx_matches_onnxruntime(tmp_path, digits_cnn):
    ort = pytest.importorskip("onnxruntime")
    m, tr, te = digits_cnn
    q = Q.quantize_static(m, tr.data[:256])
    path = str(tmp_path / "q.onnx")
    proto = Q.export_onnx(q, t(te.data[:1]), path)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") == 4 and ops.count("DequantizeLinear") == 8
    int8_inits = [i for i in proto.graph.initializer if i.data_type == 3]  # INT8
    assert len(int8_inits) >= 4
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for opts in (plain, ort.SessionOptions()):
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        for bsz in (1, 5, 64):  # dynamic batch
            x = te.data[:bsz]
            got, ref = sess.run(None, {"input": x})[0], q(t(x)).numpy()
            tol = 1e-5 if opts is plain else 0.02 * np.abs(ref).max()  # fused QLinear ops
            np.testing.assert_allclose(got, ref, atol=tol)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ort_acc = float((sess.run(None, {"input": te.data})[0].argmax(1) == te.targets).mean())
    assert ort_acc >= _acc(m, te.data, te.targets) - 0.01


def test_qdq_onnx_dynamic_linear(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    q = Q.quantize_dynamic(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)))
    path = str(tmp_path / "d.onnx")
    Q.export_onnx(q, ember.randn(2, 16), path)
    x = rng(10).normal(size=(5, 16)).astype(np.float32)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got[0], q(t(x)).numpy(), atol=1e-5)


def test_qdq_onnx_of_any_traceable_structure(tmp_path):
    """The QDQ export is ember.onnx.export of the traced model: quantized layers anywhere
    (a residual branch, float ops between), not only Sequential containers."""
    ort = pytest.importorskip("onnxruntime")

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

        def forward(self, x):
            h = x + self.b(self.a(x).tanh())
            return self.head(h * 0.5).softmax(-1)

    ember.manual_seed(8)
    x = rng(8).normal(size=(32, 6)).astype(np.float32)
    for q in (Q.quantize_static(Residual().eval(), x), Q.quantize_dynamic(Residual().eval())):
        path = str(tmp_path / "r.onnx")
        Q.export_onnx(q, t(x[:2]), path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for b in (1, 7):
            got = sess.run(None, {"input": x[:b]})[0]
            np.testing.assert_allclose(got, q(t(x[:b])).numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ bad input


def test_bad_inputs_give_clear_errors(tmp_path):
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(ValueError, match="Conv2d is not supported for dynamic int8"):
        Q.quantize_dynamic(m, {nn.Conv2d})
    with pytest.raises(ValueError, match="only dtype=ember.int8"):
        Q.quantize_dynamic(m, {nn.Linear}, dtype=ember.float16)
    with pytest.raises(ValueError, match="no observers; call prepare"):
        Q.convert(m)
    with pytest.raises(RuntimeError, match="module '0' saw no calibration data"):
        Q.convert(Q.prepare(m))
    with pytest.raises(ValueError, match="observer must be one of"):
        Q.prepare(m, observer="percentile")
    with pytest.raises(ValueError, match="grouped convolution"):
        Q.QuantizedConv2d.from_float(nn.Conv2d(4, 4, 3, groups=2), 0.1, 0)
    with pytest.raises(ValueError, match="calibration data gave no batches"):
        Q.quantize_static(m, [])
    q = Q.quantize_static(m, ember.randn(8, 1, 5, 5))
    with pytest.raises(ValueError, match=r"expected input \(N, 1, H, W\), got \(2, 3, 5, 5\)"):
        q(ember.randn(2, 3, 5, 5))
    with pytest.raises(TypeError, match="expected a floating-point input"):
        q(ember.ones(2, 1, 5, 5, dtype=ember.int64))
    with pytest.raises(ValueError, match="quantized dtype must be 'uint8' or 'int8'"):
        Q.quantize_per_tensor(np.ones(2), 0.1, 0, "int4")
    with pytest.raises(ValueError, match="scale must be > 0"):
        Q.quantize_per_tensor(np.ones(2), 0.0, 0, "int8")
    with pytest.raises(ValueError, match="inf or nan"):
        Q.MinMaxObserver()(np.array([1.0, np.nan]))
    # int8 primitives are inference-only: differentiating through one says so
    x = ember.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="quantized_linear_dynamic is an int8 inference"):
        Q.quantize_dynamic(nn.Linear(3, 2))(x).sum().backward()
    with pytest.raises(ValueError, match="int8 backend must be"):
        K.set_backend("avx")


def test_dynamic_quantization_of_the_zoo_lstm_language_model():
    from ember.models import LSTMLanguageModel

    ember.manual_seed(3)
    m = LSTMLanguageModel(vocab_size=50, embed_dim=16, hidden_size=16, num_layers=2).eval()
    q = Q.quantize_dynamic(m, {nn.LSTM, nn.Linear}, dtype=ember.int8)
    assert isinstance(q.rnn, Q.DynamicQuantizedLSTM) and isinstance(
        q.decoder, Q.DynamicQuantizedLinear
    )
    assert isinstance(m.rnn, nn.LSTM)  # the original is untouched
    ids = ember.from_numpy(rng(12).integers(0, 50, size=(3, 7)))
    logits, (h, c) = q(ids)
    ref, (rh, rc) = m(ids)
    ref = ref.detach().numpy()
    # the float embedding still has trainable weights: the output needs detaching
    logits = logits.detach()
    np.testing.assert_allclose(logits.numpy(), ref, atol=0.02 * np.abs(ref).max())
    assert (logits.numpy().argmax(-1) == ref.argmax(-1)).mean() > 0.9
    # the state carries across windows, as with the float model
    logits2, _ = q(ids, (h, c))
    ref2, _ = m(ids, (rh, rc))
    np.testing.assert_allclose(
        logits2.detach().numpy(), ref2.detach().numpy(), atol=0.02 * np.abs(ref).max()
    )


# ------------------------------------------------------------------ traced: compile, saved, lite

_RUN_SAVED = """
import sys, numpy as np
kind, d, x, out = sys.argv[1:]
x = np.load(x)
if kind == "ember":
    import ember.export
    y = ember.export.load(d).signatures["serving_default"].run({"x": x})
else:
    import ember_lite
    y = ember_lite.load(d).signatures["serving_default"].run({"x": x})
    assert not any(m == "ember" or m.startswith("ember.") for m in sys.modules), "ember imported"
np.save(out, next(iter(y.values())))
"""


def _run_fresh(kind, d, x, tmp_path):
    """Run a saved model in a fresh process that never imports the defining code."""
    import os
    import subprocess
    import sys

    xp, out = str(tmp_path / f"x_{kind}.npy"), str(tmp_path / f"y_{kind}.npy")
    np.save(xp, x)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    r = subprocess.run(
        [sys.executable, "-c", _RUN_SAVED, kind, d, xp, out],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return np.load(out)


def test_int8_digits_cnn_compiles_saves_and_runs_in_lite(tmp_path, digits_cnn):
    import ember.export

    m, tr, te = digits_cnn
    q = Q.quantize_static(m, tr.data[:256])
    x = te.data
    want = q(t(x)).numpy()
    cq = ember.compile(q)
    for _ in range(2):  # traced, then run as a graph
        np.testing.assert_array_equal(cq(t(x)).numpy(), want)
    d = ember.export.save(q, str(tmp_path / "int8"), t(x[:2]), input_names=["x"])
    with open(os.path.join(d, "graph.serving_default.json")) as fh:
        prims = fh.read()
    assert '"quantized_conv2d"' in prims and '"quantized_linear"' in prims
    for kind in ("ember", "lite"):
        got = _run_fresh(kind, d, x, tmp_path)
        np.testing.assert_array_equal(got, want)  # the same integers, the same floats
        acc = float((got.argmax(1) == te.targets).mean())
        assert acc >= _acc(m, x, te.targets) - 0.01


def test_int8_dynamic_lstm_and_linear_save_with_dynamic_batch(tmp_path):
    import ember_lite

    import ember.export

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(6, 8, num_layers=2, batch_first=True, bidirectional=True)
            self.head = nn.Linear(16, 5)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out)

    ember.manual_seed(4)
    q = Q.quantize_dynamic(Tagger().eval())
    d = ember.export.save(q, str(tmp_path / "tagger"), t(rng(1).normal(size=(2, 7, 6))))
    lite = ember_lite.load(d)
    for b in (1, 3, 6):  # the batch axis stays symbolic
        x = rng(b).normal(size=(b, 7, 6)).astype(np.float32)
        want = q(t(x)).numpy()
        np.testing.assert_array_equal(ember.export.load(d)(t(x)).numpy(), want)
        np.testing.assert_array_equal(lite(x), want)


def test_int8_weights_updated_in_place_are_repacked():
    ember.manual_seed(5)
    q = Q.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)))
    other = Q.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)))
    cq = ember.compile(q)
    x = t(rng(3).normal(size=(5, 8)))
    cq(x)
    cq(x)
    q.load_state_dict(other.state_dict())  # in place: the same arrays, new versions
    want = other(x).numpy()
    np.testing.assert_array_equal(cq(x).numpy(), want)  # the compiled graph sees it first
    np.testing.assert_array_equal(q(x).numpy(), want)
