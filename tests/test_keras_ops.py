"""``ember.keras.ops`` against ``keras.ops`` (Keras 3, torch backend): values and dtypes."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember.keras import ops

K = pytest.importorskip("keras")
kops = K.ops

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal((4, 5)).astype(np.float32)
C = rng.standard_normal((2, 3, 4)).astype(np.float32)
D = rng.standard_normal((2, 4, 3)).astype(np.float32)
V = rng.standard_normal(4).astype(np.float32)
POS = np.abs(A) + 0.1
I32 = np.array([[1, -2, 3], [4, 5, -6]], np.int32)
LABELS = np.array([0, 2, 1, 3])
IDX = np.array([[0, 3], [1, 1], [2, 0]])

# (op, positional args, keyword args); inputs are NumPy (converted by both libraries)
CASES = [
    ("relu", (A,), {}),
    ("sigmoid", (A,), {}),
    ("tanh", (A,), {}),
    ("softmax", (C,), {}),
    ("softmax", (C,), {"axis": 1}),
    ("log_softmax", (C,), {"axis": 0}),
    ("gelu", (A,), {}),
    ("gelu", (A,), {"approximate": False}),
    ("silu", (A,), {}),
    ("mean", (C,), {}),
    ("mean", (C,), {"axis": 1, "keepdims": True}),
    ("mean", (C,), {"axis": (0, 2)}),
    ("mean", (I32,), {"axis": 0}),
    ("sum", (C,), {"axis": -1}),
    ("sum", (I32,), {}),
    ("sum", (C,), {"axis": (1, 2), "keepdims": True}),
    ("max", (C,), {}),
    ("max", (C,), {"axis": 1, "keepdims": True}),
    ("max", (A,), {"axis": 0, "initial": 0.5}),
    ("min", (C,), {"axis": (0, 1)}),
    ("min", (I32,), {"axis": 1}),
    ("argmax", (C,), {}),
    ("argmax", (C,), {"axis": 1}),
    ("argmax", (A,), {"axis": -1, "keepdims": True}),
    ("argmin", (A,), {"axis": 0}),
    ("matmul", (A, B), {}),
    ("matmul", (C, D), {}),
    ("dot", (A, B), {}),
    ("dot", (V, V), {}),
    ("dot", (A, V), {}),
    ("dot", (C, B), {}),
    ("dot", (C, D), {}),
    ("einsum", ("ij,jk->ik", A, B), {}),
    ("einsum", ("bij,bjk->bik", C, D), {}),
    ("where", (A > 0, A, -A), {}),
    ("where", (A > 0, A, 0.0), {}),
    ("stack", ([A, A * 2],), {}),
    ("stack", ([A, A * 2],), {"axis": -1}),
    ("concatenate", ([A, A * 2],), {}),
    ("concatenate", ([C, C],), {"axis": 2}),
    ("reshape", (C, (4, -1)), {}),
    ("reshape", (A, 12), {}),
    ("transpose", (C,), {}),
    ("transpose", (C, (0, 2, 1)), {}),
    ("expand_dims", (A, 0), {}),
    ("expand_dims", (A, -1), {}),
    ("expand_dims", (A, (0, 3)), {}),
    ("squeeze", (A[None, :, None],), {}),
    ("squeeze", (A[None, :, None],), {"axis": 0}),
    ("squeeze", (A[None, :, None],), {"axis": (0, 2)}),
    ("exp", (A,), {}),
    ("log", (POS,), {}),
    ("sqrt", (POS,), {}),
    ("sqrt", (np.array([1, 4, 9], np.int32),), {}),
    ("square", (A,), {}),
    ("square", (I32,), {}),
    ("abs", (A,), {}),
    ("abs", (I32,), {}),
    ("absolute", (A,), {}),
    ("clip", (A, -0.5, 0.5), {}),
    ("clip", (I32, -1, 3), {}),
    ("maximum", (A, 0.0), {}),
    ("maximum", (A, A * -1), {}),
    ("minimum", (A, A * 0.5), {}),
    ("cast", (A, "int32"), {}),
    ("cast", (I32, "float32"), {}),
    ("cast", (A, "float64"), {}),
    ("ones", ((2, 3),), {}),
    ("ones", ((2,),), {"dtype": "int32"}),
    ("zeros", ((3,),), {}),
    ("ones_like", (I32,), {}),
    ("zeros_like", (A,), {"dtype": "int32"}),
    ("arange", (5,), {}),
    ("arange", (1, 10, 3), {}),
    ("arange", (0.0, 1.0, 0.25), {}),
    ("arange", (4,), {"dtype": "float32"}),
    ("convert_to_tensor", ([1, 2, 3],), {}),
    ("convert_to_tensor", ([1.5, 2.0],), {}),
    ("convert_to_tensor", (A,), {}),
    ("convert_to_tensor", (I32,), {"dtype": "float32"}),
    ("one_hot", (LABELS, 4), {}),
    ("one_hot", (LABELS, 4), {"axis": 0}),
    ("one_hot", (LABELS, 4), {"dtype": "int32"}),
    ("norm", (V,), {}),
    ("norm", (A,), {}),
    ("norm", (A,), {"axis": 1}),
    ("norm", (A,), {"axis": 0, "keepdims": True}),
    ("norm", (A,), {"ord": 1, "axis": 1}),
    ("norm", (A,), {"ord": np.inf, "axis": 1}),
    ("norm", (V,), {"ord": 3}),
    ("norm", (A,), {"ord": "fro"}),
    ("norm", (A,), {"ord": 1}),
    ("norm", (A,), {"ord": np.inf}),
    ("norm", (C,), {"axis": (1, 2)}),
    ("erf", (A,), {}),
    ("cumsum", (A,), {}),
    ("cumsum", (A,), {"axis": 1}),
    ("cumsum", (I32,), {"axis": 0}),
    ("take", (A, np.array([0, 5, 11])), {}),
    ("take", (A, np.array([[0, 2], [1, -1]])), {"axis": 1}),
    ("take", (C, np.array([1, 0])), {"axis": 0}),
    ("take_along_axis", (A, IDX), {"axis": 1}),
    ("take_along_axis", (A, np.array([0, 5])), {}),
    ("var", (C,), {}),
    ("var", (C,), {"axis": 1, "keepdims": True}),
    ("std", (C,), {"axis": (0, 2)}),
    ("std", (A,), {}),
    ("add", (A, 1.0), {}),
    ("add", (I32, 2), {}),
    ("subtract", (A, A * 2), {}),
    ("multiply", (I32, 3), {}),
    ("divide", (A, 2.0), {}),
    ("divide", (I32, np.array(4, np.int32)), {}),
    ("true_divide", (A, A + 3.0), {}),
    ("floor_divide", (I32, np.array(4, np.int32)), {}),
    ("mod", (I32, np.array(4, np.int32)), {}),
    ("mod", (A, 0.7), {}),
    ("power", (POS, 1.5), {}),
    ("power", (I32, np.array(2, np.int32)), {}),
    ("negative", (A,), {}),
    ("sign", (A,), {}),
    ("floor", (A * 3,), {}),
    ("ceil", (A * 3,), {}),
    ("round", (A * 3,), {}),
    ("round", (A * 30,), {"decimals": 1}),
    ("sin", (A,), {}),
    ("cos", (A,), {}),
    ("log1p", (POS,), {}),
    ("expm1", (A,), {}),
    ("rsqrt", (POS,), {}),
    ("reciprocal", (POS,), {}),
    ("softplus", (A,), {}),
    ("softsign", (A,), {}),
    ("leaky_relu", (A,), {}),
    ("leaky_relu", (A,), {"negative_slope": 0.05}),
    ("elu", (A,), {"alpha": 0.5}),
    ("selu", (A,), {}),
    ("hard_sigmoid", (A * 4,), {}),
    ("equal", (I32, np.array(4, np.int32)), {}),
    ("not_equal", (A, A), {}),
    ("greater", (A, 0.0), {}),
    ("greater_equal", (I32, np.array(3, np.int32)), {}),
    ("less", (A, A * 0.5), {}),
    ("less_equal", (A, 0.1), {}),
    ("logical_and", (A > 0, A > 0.5), {}),
    ("logical_or", (A > 0, A < -0.5), {}),
    ("logical_not", (A > 0,), {}),
    ("isnan", (np.array([1.0, np.nan], np.float32),), {}),
    ("isfinite", (np.array([1.0, np.inf, np.nan], np.float32),), {}),
    ("any", (A > 1.0,), {}),
    ("any", (A > 1.0,), {"axis": 1}),
    ("all", (A > -3.0,), {"axis": 0, "keepdims": True}),
    ("prod", (A,), {"axis": 1}),
    ("prod", (I32,), {}),
    ("logsumexp", (C,), {}),
    ("logsumexp", (C,), {"axis": 1, "keepdims": True}),
    ("tile", (A, (2, 1)), {}),
    ("tile", (V, 3), {}),
    ("repeat", (A, 2), {"axis": 0}),
    ("repeat", (A, 2), {}),
    ("flip", (A,), {}),
    ("flip", (C,), {"axis": 1}),
    ("sort", (A,), {}),
    ("sort", (A,), {"axis": 0}),
    ("argsort", (A,), {}),
    ("full", ((2, 3), 1.5), {}),
    ("full", ((2,), 7), {}),
    ("full_like", (A, 2.0), {}),
    ("eye", (3,), {}),
    ("eye", (3, 4), {"k": 1}),
    ("tril", (A,), {}),
    ("triu", (A,), {"k": 1}),
    ("broadcast_to", (V, (3, 4)), {}),
    ("moveaxis", (C, 0, -1), {}),
    ("swapaxes", (C, 0, 2), {}),
    ("outer", (V, V[:3]), {}),
    ("pad", (A, ((1, 0), (2, 1))), {}),
    ("pad", (A, ((1, 1), (0, 2))), {"constant_values": 3.0}),
    ("pad", (A, ((1, 1), (2, 2))), {"mode": "reflect"}),
]


def _ids():
    seen: dict = {}
    out = []
    for name, _, _ in CASES:
        seen[name] = seen.get(name, 0) + 1
        out.append(f"{name}-{seen[name]}")
    return out


def _np(x):
    if isinstance(x, ember.Tensor):
        return x.detach().numpy()
    return np.asarray(K.ops.convert_to_numpy(x))


def _dtype_name(x):
    if isinstance(x, ember.Tensor):
        return x.dtype.name
    return str(x.dtype).replace("torch.", "")


def _compare(ours, ref):
    if isinstance(ref, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(ref)
        for a, b in zip(ours, ref):
            _compare(a, b)
        return
    assert _dtype_name(ours) == _dtype_name(ref)
    np.testing.assert_allclose(_np(ours), _np(ref), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(("name", "args", "kwargs"), CASES, ids=_ids())
def test_op_matches_keras(name, args, kwargs):
    _compare(getattr(ops, name)(*args, **kwargs), getattr(kops, name)(*args, **kwargs))


@pytest.mark.parametrize("sections", [3, [1, 3], [2, 2, 5]])
def test_split_matches_keras(sections):
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    _compare(ops.split(x, sections), kops.split(x, sections))
    _compare(ops.split(x.T, 2, axis=1), kops.split(x.T, 2, axis=1))


def test_top_k_matches_keras():
    vals, idx = ops.top_k(A, 2)
    kv, ki = kops.top_k(A, 2)
    np.testing.assert_allclose(vals.numpy(), _np(kv), rtol=1e-6)
    np.testing.assert_array_equal(idx.numpy(), _np(ki))


@pytest.mark.parametrize("mode", ["edge", "wrap"])
def test_pad_modes_keras_torch_lacks_match_numpy(mode):
    widths = ((0, 0), (1, 2), (2, 1))
    out = ops.pad(C, widths, mode=mode).numpy()
    np.testing.assert_array_equal(out, np.pad(C, widths, mode=mode))
    with pytest.raises(NotImplementedError, match="median"):
        ops.pad(C, widths, mode="median")


def test_stop_gradient_blocks_the_gradient():
    w = ember.tensor(A, requires_grad=True)
    (ops.sum(w * 2.0) + ops.sum(ops.stop_gradient(w) * 5.0)).backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full_like(A, 2.0))
    np.testing.assert_array_equal(ops.stop_gradient(w).numpy(), A)


def test_ndim_and_size():
    assert ops.ndim(C) == int(kops.ndim(C)) == 3
    assert ops.size(C) == int(kops.size(C)) == 24


def test_shape_and_convert_to_numpy():
    assert ops.shape(C) == tuple(kops.shape(C)) == (2, 3, 4)
    assert ops.shape(ember.ones(2, 5)) == (2, 5)
    x = ops.convert_to_tensor(A)
    out = ops.convert_to_numpy(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, A)


def test_where_without_branches_gives_indices():
    cond = A > 0
    ours = ops.where(cond)
    ref = np.nonzero(cond)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a.numpy(), b)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="3 equal sections"):
        ops.split(np.ones((4, 2)), 3)
    with pytest.raises(ValueError, match="size 4"):
        ops.squeeze(A, axis=1)
    with pytest.raises(TypeError, match="unknown dtype"):
        ops.cast(A, "float13")
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        ops.one_hot(LABELS, 3)
    with pytest.raises(RuntimeError):  # the oracle refuses it too
        kops.one_hot(LABELS, 3)
    with pytest.raises(ValueError, match="both x1 and x2"):
        ops.where(A > 0, A)


def test_gradients_flow_through_ops():
    w = ember.tensor(A, requires_grad=True)
    y = ops.sum(ops.square(ops.tanh(ops.matmul(w, ops.convert_to_tensor(B)))))
    y.backward()
    import torch

    tw = torch.tensor(A, requires_grad=True)
    (torch.tanh(tw @ torch.tensor(B)) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_custom_layer_written_with_ops():
    from ember import keras

    class RMSNorm(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight("scale", (input_shape[-1],), "ones")

        def call(self, x):
            ms = ops.mean(ops.square(x), axis=-1, keepdims=True)
            return x / ops.sqrt(ms + 1e-6) * self.scale

    x = rng.standard_normal((4, 6)).astype(np.float32)
    out = RMSNorm()(ember.tensor(x)).detach().numpy()
    ref = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
