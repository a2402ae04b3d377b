"""The CPU kernels' ops on bad, unusual and edge inputs against PyTorch: what
``test_kernel_adversarial_s40.py`` leaves out (it covers thresholds, NaN/inf, layouts and
thread counts). Integer/bool inputs to the floating-only ops (PyTorch's
``NotImplementedError``, which Ember's ``DTypeNotImplementedError`` also is), bad arguments
(normalized_shape, pooling padding, dropout p, targets), float16/bfloat16/float64 values,
gradients and result dtypes, empty / 1-element / 0-d inputs forward and backward, and the
in-place forms users write (``F.relu_(x)``, ``x.sigmoid_()``, ... on leaves, non-leaves
and views; ``F.relu(x, inplace=True)``, ``nn.ReLU(True)``, ``F.dropout(x, inplace=True)``
computed out of place with PyTorch's values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F


def _lib_tensor(lib, a, dt):
    return lib.tensor(np.asarray(a), dtype=getattr(lib, dt))


def _f64(t):
    """A tensor's values as float64 NumPy (bfloat16 included)."""
    if isinstance(t, torch.Tensor):
        return t.detach().to(torch.float64).numpy()
    return t.detach().to(ember.float64).numpy()


def _name(dt):
    return str(dt).rsplit(".", 1)[-1]


def _compare(fe, ft, arrays, dt, tol, grad=True):
    """``fe`` on Ember tensors vs ``ft`` on torch tensors of dtype ``dt``: values, result
    dtype, and every input's gradient for a fixed upstream gradient."""
    res = []
    for lib, f in ((ember, fe), (torch, ft)):
        xs = [_lib_tensor(lib, a, dt) for a in arrays]
        if grad:
            for x in xs:
                x.requires_grad_()
        y = f(*xs)
        grads = None
        if grad:
            g = np.linspace(-1.0, 1.0, max(y.numel(), 1))[: y.numel()].reshape(tuple(y.shape))
            y.backward(_lib_tensor(lib, g, _name(y.dtype)))
            grads = [x.grad for x in xs]
        res.append((y, grads))
    (ye, ge), (yt, gt) = res
    assert _name(ye.dtype) == _name(yt.dtype)
    assert tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_allclose(_f64(ye), _f64(yt), rtol=tol, atol=tol, equal_nan=True)
    if grad:
        for a, b in zip(ge, gt):
            assert (a is None) == (b is None)
            if a is not None:
                assert _name(a.dtype) == _name(b.dtype)
                np.testing.assert_allclose(_f64(a), _f64(b), rtol=tol, atol=2 * tol)


# ---------------------------------------------------------------------------------------
# integer and bool inputs to the floating-only ops: PyTorch's NotImplementedError
# ---------------------------------------------------------------------------------------

_FLOAT_ONLY = [
    ("softmax", lambda m, x: m.softmax(x, -1)),
    ("log_softmax", lambda m, x: m.log_softmax(x, -1)),
    ("gelu", lambda m, x: m.gelu(x)),
    ("silu", lambda m, x: m.silu(x)),
    ("softplus", lambda m, x: m.softplus(x)),
    ("layer_norm", lambda m, x: m.layer_norm(x, (4,))),
    ("rms_norm", lambda m, x: m.rms_norm(x, (4,))),
    ("group_norm", lambda m, x: m.group_norm(x, 1)),
    ("batch_norm", lambda m, x: m.batch_norm(x, None, None, training=True)),
    ("adaptive_avg_pool2d", lambda m, x: m.adaptive_avg_pool2d(x.reshape(1, 1, 2, 4), (1, 2))),
    ("adaptive_avg_pool1d", lambda m, x: m.adaptive_avg_pool1d(x.reshape(1, 2, 4), 2)),
]


@pytest.mark.parametrize("dt", ["int64", "bool"])
@pytest.mark.parametrize("name,f", _FLOAT_ONLY, ids=[n for n, _ in _FLOAT_ONLY])
def test_integer_input_refused_as_torch(name, f, dt):
    a = np.arange(8).reshape(2, 4) % 3
    with pytest.raises(NotImplementedError):
        f(TF, torch.tensor(a).to(getattr(torch, dt)))
    with pytest.raises(NotImplementedError, match=name) as info:
        f(F, ember.tensor(a).to(getattr(ember, dt)))
    assert isinstance(info.value, TypeError)  # Ember's dtype errors stay TypeErrors
    assert "floating point" in str(info.value)


def test_relu_bool_and_mean_int_are_runtime_errors():
    with pytest.raises(RuntimeError, match="Boolean inputs not supported for relu"):
        TF.relu(torch.ones(2, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="Boolean inputs not supported for relu"):
        F.relu(ember.ones(2, dtype=ember.bool))
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        torch.arange(3).mean()
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        ember.arange(3).mean()
    # relu on integers stays an integer op (as PyTorch)
    assert ember.relu(ember.tensor([-2, 3])).tolist() == torch.relu(torch.tensor([-2, 3])).tolist()


@pytest.mark.parametrize("op", ["max_pool2d", "max_pool1d", "adaptive_max_pool2d"])
def test_max_pool_bool_refused(op):
    x = np.ones((1, 2, 4, 4), bool)
    xs = x[0] if op == "max_pool1d" else x
    fe = {"adaptive_max_pool2d": lambda m, t: m.adaptive_max_pool2d(t, 2)}.get(
        op, lambda m, t: getattr(m, op)(t, 2)
    )
    with pytest.raises(NotImplementedError):
        fe(TF, torch.tensor(xs))
    with pytest.raises(NotImplementedError, match=f"{op}: not implemented for bool"):
        fe(F, ember.tensor(xs))


@pytest.mark.parametrize("op", ["avg_pool2d", "avg_pool1d"])
def test_avg_pool_int_is_a_clear_refusal(op):
    # PyTorch averages int64 with integer division; Ember refuses with a message naming it
    x = np.arange(32).reshape(1, 2, 4, 4)
    xs = x[0] if op == "avg_pool1d" else x
    with pytest.raises(TypeError, match=f"{op}: expected a floating point input, got ember.int64"):
        getattr(F, op)(ember.tensor(xs), 2)
    # the floating result agrees with PyTorch's
    ye = getattr(F, op)(ember.tensor(xs, dtype=ember.float32), 2)
    yt = getattr(TF, op)(torch.tensor(xs, dtype=torch.float32), 2)
    np.testing.assert_allclose(ye.numpy(), yt.numpy())


@pytest.mark.parametrize("dt", ["int64", "bool"])
def test_dropout_training_refuses_integers(dt):
    a = np.ones((3, 4), np.int64)
    with pytest.raises(RuntimeError):
        TF.dropout(torch.tensor(a).to(getattr(torch, dt)), 0.5)
    with pytest.raises(RuntimeError, match="dropout: expected a floating point input"):
        F.dropout(ember.tensor(a).to(getattr(ember, dt)), 0.5)
    with pytest.raises(RuntimeError, match="dropout2d"):
        F.dropout2d(ember.tensor(a).reshape(1, 3, 2, 2).to(getattr(ember, dt)), 0.5)
    # evaluation mode is the identity for any dtype (as PyTorch)
    x = ember.tensor(a).to(getattr(ember, dt))
    assert F.dropout(x, 0.5, training=False) is x


# ---------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------


def test_layer_norm_empty_normalized_shape():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(RuntimeError, match="at least 1-dimensional"):
        TF.layer_norm(torch.tensor(x), ())
    with pytest.raises(ValueError, match="layer_norm: expected normalized_shape to be at least"):
        F.layer_norm(ember.tensor(x), ())


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"])
def test_pool_negative_padding(op):
    x = np.ones((1, 2, 5, 5), np.float32)
    xs = x[0] if op.endswith("1d") else x
    with pytest.raises(RuntimeError, match="non-negative"):
        getattr(TF, op)(torch.tensor(xs), 2, padding=-1)
    with pytest.raises(ValueError, match="pad must be non-negative"):
        getattr(F, op)(ember.tensor(xs), 2, padding=-1)


def test_group_norm_one_value_per_group_and_bad_groups():
    x = np.ones((1, 2, 1), np.float32)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        TF.group_norm(torch.tensor(x), 2)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.group_norm(ember.tensor(x), 2)
    with pytest.raises(ValueError, match="num_groups must be positive"):
        F.group_norm(ember.tensor(np.ones((2, 4, 3), np.float32)), 0)
    # two values per group is fine (PyTorch's check is on N * C / G * spatial)
    _compare(
        lambda t: F.group_norm(t, 2),
        lambda t: TF.group_norm(t, 2),
        [np.eye(2)[None]],
        "float32",
        1e-5,
    )


def test_cross_entropy_target_dtypes():
    logits = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    tgt = np.array([True, False, True, False])
    with pytest.raises(RuntimeError, match="target dtype"):
        TF.cross_entropy(torch.tensor(logits), torch.tensor(tgt))
    with pytest.raises(TypeError, match="cross_entropy: expected a target of integer"):
        F.cross_entropy(ember.tensor(logits), ember.tensor(tgt))


# ---------------------------------------------------------------------------------------
# half precision and float64: values, gradients, result dtypes
# ---------------------------------------------------------------------------------------

_TOL = {"float16": 2e-2, "bfloat16": 8e-2, "float64": 1e-10}
_R = np.random.default_rng(1)
_A35, _B35 = _R.standard_normal((3, 5)), _R.standard_normal((3, 5))
_P = np.abs(_R.standard_normal((3, 4))) + 0.1
_P = _P / _P.sum(1, keepdims=True)

_DT_CASES = [
    ("softmax", lambda m, x: m.softmax(x, 0), lambda m, x: m.softmax(x, 0), [_A35]),
    ("gelu_tanh", lambda m, x: m.gelu(x, approximate="tanh"), None, [_A35]),
    ("silu", lambda m, x: m.silu(x), None, [_A35]),
    ("softplus", lambda m, x: m.softplus(x), None, [_A35]),
    ("layer_norm", lambda m, x, w, b: m.layer_norm(x, (5,), w, b), None, [_A35, _A35[0], _B35[0]]),
    ("rms_norm", lambda m, x, w: m.rms_norm(x, (5,), w), None, [_A35, _A35[1]]),
    (
        "cross_entropy_probs",
        lambda m, x, t: m.cross_entropy(x, t.detach()),
        None,
        [_P, np.ascontiguousarray(_P[::-1])],
    ),
    ("avg_pool2d", lambda m, x: m.avg_pool2d(x.reshape(1, 1, 3, 5), (1, 2)), None, [_A35]),
    ("max_pool2d", lambda m, x: m.max_pool2d(x.reshape(1, 1, 3, 5), (1, 2)), None, [_A35]),
]


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", _DT_CASES, ids=[c[0] for c in _DT_CASES])
def test_low_and_double_precision(case, dt):
    _, f, _, arrays = case
    _compare(lambda *a: f(F, *a), lambda *a: f(TF, *a), arrays, dt, _TOL[dt])


# ---------------------------------------------------------------------------------------
# empty inputs forward and backward
# ---------------------------------------------------------------------------------------


def test_conv2d_zero_input_channels_backward():
    # no input channels: the output is the bias; both other gradients are empty
    x = ember.randn(2, 0, 5, 5, requires_grad=True)
    w = ember.randn(4, 0, 3, 3, requires_grad=True)
    b = ember.randn(4, requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    np.testing.assert_allclose(
        y.detach().numpy(), np.broadcast_to(b.detach().numpy()[:, None, None], (2, 4, 5, 5))
    )
    y.sum().backward()
    assert tuple(x.grad.shape) == (2, 0, 5, 5) and tuple(w.grad.shape) == (4, 0, 3, 3)
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 50.0))
    # the same through conv1d, gradient of the input only
    x1 = ember.randn(2, 0, 6, requires_grad=True)
    F.conv1d(x1, ember.randn(3, 0, 2)).sum().backward()
    assert tuple(x1.grad.shape) == (2, 0, 6)


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_empty_batch_and_sequence(cls, batch_first):
    shapes = [(3, 0, 3), (0, 2, 3)]  # (T, B, I): empty batch, empty sequence
    for t, b, i in shapes:
        shape = (b, t, i) if batch_first else (t, b, i)
        if t == 0:
            with pytest.raises(RuntimeError, match="sequence length"):
                getattr(torch.nn, cls)(3, 4, batch_first=batch_first)(torch.randn(*shape))
            with pytest.raises(RuntimeError, match=f"{cls}: Expected sequence length"):
                getattr(ember.nn, cls)(3, 4, batch_first=batch_first)(ember.randn(*shape))
            continue
        out = []
        for lib in (ember, torch):
            x = lib.randn(*shape, requires_grad=True)
            y, _ = getattr(lib.nn, cls)(3, 4, batch_first=batch_first)(x)
            y.sum().backward()
            out.append((tuple(y.shape), tuple(x.grad.shape)))
        assert out[0] == out[1]


# ---------------------------------------------------------------------------------------
# in-place forms
# ---------------------------------------------------------------------------------------

_BASE = np.array([[-1.5, 0.5, 2.0], [0.3, -0.2, 1.2]], np.float32)
_UP = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)

_INPLACE = {  # the explicit in-place forms: they write into their input, as PyTorch's
    "F.relu_": lambda lib, m, x: m.relu_(x),
    "F.elu_": lambda lib, m, x: m.elu_(x),
    "F.hardtanh_": lambda lib, m, x: m.hardtanh_(x),
    "sigmoid_": lambda lib, m, x: x.sigmoid_(),
    "tanh_": lambda lib, m, x: x.tanh_(),
    "exp_": lambda lib, m, x: x.exp_(),
}

# ``inplace=True``: Ember computes out of place (docs/api-differences.md); the returned
# values and the gradients are PyTorch's
_INPLACE_FLAG = {
    "F.relu(inplace)": lambda lib, m, x: m.relu(x, inplace=True),
    "nn.ReLU(True)": lambda lib, m, x: lib.nn.ReLU(True)(x),
    "F.relu6(inplace)": lambda lib, m, x: m.relu6(x, inplace=True),
    "nn.SiLU(inplace)": lambda lib, m, x: lib.nn.SiLU(inplace=True)(x),
    "F.elu(inplace)": lambda lib, m, x: m.elu(x, inplace=True),
    "F.selu(inplace)": lambda lib, m, x: m.selu(x, inplace=True),
    "F.celu(inplace)": lambda lib, m, x: m.celu(x, inplace=True),
    "nn.LeakyReLU(inplace)": lambda lib, m, x: lib.nn.LeakyReLU(0.1, inplace=True)(x),
    "nn.Hardtanh(inplace)": lambda lib, m, x: lib.nn.Hardtanh(inplace=True)(x),
    "F.hardsigmoid(inplace)": lambda lib, m, x: m.hardsigmoid(x, inplace=True),
    "F.hardswish(inplace)": lambda lib, m, x: m.hardswish(x, inplace=True),
    "F.mish(inplace)": lambda lib, m, x: m.mish(x, inplace=True),
    "F.threshold(inplace)": lambda lib, m, x: m.threshold(x, 0.1, 20.0, inplace=True),
}


@pytest.mark.parametrize("name", list(_INPLACE_FLAG))
def test_inplace_flag_values_and_gradients(name):
    f = _INPLACE_FLAG[name]

    def run(lib, m):
        x = lib.tensor(_BASE.copy(), requires_grad=True)
        h = x * 2.0
        y = f(lib, m, h)
        out = y.detach().numpy().copy()
        (y * lib.tensor(_UP)).sum().backward()
        return [out, x.grad.numpy()]

    for a, b in zip(run(ember, F), run(torch, TF)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    x = ember.tensor(_BASE.copy())
    f(ember, F, x)
    np.testing.assert_array_equal(x.numpy(), _BASE)  # computed out of place


@pytest.mark.parametrize("name", list(_INPLACE))
def test_inplace_forms(name):
    f = _INPLACE[name]
    # a leaf that requires grad: PyTorch's error
    for lib, m in ((torch, TF), (ember, F)):
        with pytest.raises(RuntimeError, match="leaf Variable"):
            f(lib, m, lib.tensor(_BASE.copy(), requires_grad=True))

    def plain(lib, m):  # no autograd: the input holds the result, which is returned
        x = lib.tensor(_BASE.copy())
        y = f(lib, m, x)
        assert y is x
        return [x.numpy()]

    def nonleaf(lib, m):  # the gradient flows through the pre-update value
        x = lib.tensor(_BASE.copy(), requires_grad=True)
        h = x * 2.0
        y = f(lib, m, h)
        (y * lib.tensor(_UP)).sum().backward()
        return [h.detach().numpy(), x.grad.numpy()]

    def view(lib, m):  # on a slice: the base is updated, its gradient is right
        x = lib.tensor(_BASE.copy(), requires_grad=True)
        h = x * 1.0
        f(lib, m, h[:, 1:])
        (h * lib.tensor(_UP)).sum().backward()
        return [h.detach().numpy(), x.grad.numpy()]

    def tview(lib, m):  # on a transposed view
        x = lib.tensor(_BASE.copy(), requires_grad=True)
        h = x * 1.0
        f(lib, m, h.t())
        (h * lib.tensor(_UP)).sum().backward()
        return [h.detach().numpy(), x.grad.numpy()]

    for case in (plain, nonleaf, view, tview):
        for a, b in zip(case(ember, F), case(torch, TF)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", ["dropout", "dropout2d", "alpha_dropout", "feature_alpha_dropout"])
def test_dropout_inplace_flag(fn):
    """``inplace=True`` is computed out of place (docs/api-differences.md): the result holds
    dropped and kept values, the gradient is the mask's, evaluation mode returns the input."""
    ember.manual_seed(0)  # 6 draws for the feature dropouts: all kept is 1 in 64 otherwise
    x = ember.ones(2, 3, 4, 4)
    y = getattr(F, fn)(x, 0.5, True, inplace=True)
    assert len(set(np.unique(y.numpy()).round(5).tolist())) == 2
    w = ember.ones(2, 3, 4, 4, requires_grad=True)
    out = getattr(F, fn)(w * 1.0, 0.5, True, inplace=True)
    out.sum().backward()
    if fn.startswith("dropout"):
        np.testing.assert_array_equal(w.grad.numpy() != 0, out.detach().numpy() != 0)
    x = ember.ones(2, 3)
    assert getattr(F, fn)(x, 0.5, False, inplace=True) is x
    assert x.tolist() == [[1.0] * 3] * 2
