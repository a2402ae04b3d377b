"""Bad input gets a clear error that names the function and the problem (regressions)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import keras
from ember.ops._core import ShapeError

# -- creation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["a", None, 2.5])
def test_creation_size_must_be_ints(size):
    with pytest.raises(TypeError, match=r"zeros: size must be a sequence of ints"):
        ember.zeros(size)


def test_creation_integral_float_size_still_works():
    assert ember.ones(2.0, 3).shape == (2, 3)


def test_creation_negative_size_names_function():
    with pytest.raises(ValueError, match=r"randn: negative dimension in size \(2, -1\)"):
        ember.randn(2, -1)


def test_full_fill_value_string():
    with pytest.raises(TypeError, match=r"full: fill_value must be a number, got str"):
        ember.full((2,), "x")


def test_arange_step_sign_inconsistent():
    with pytest.raises(ValueError, match=r"arange: upper bound and lower bound inconsistent"):
        ember.arange(10, 0, 1)
    assert ember.arange(10, 0, -3).tolist() == [10, 7, 4, 1]
    assert ember.arange(3, 3).tolist() == []


def test_linspace_eye_randperm_negative():
    with pytest.raises(ValueError, match=r"linspace: number of steps must be non-negative"):
        ember.linspace(0, 1, -1)
    with pytest.raises(ValueError, match=r"eye: n must be greater or equal to 0"):
        ember.eye(-1)
    with pytest.raises(ValueError, match=r"randperm: n must be non-negative, got -1"):
        ember.randperm(-1)


def test_random_distribution_arguments():
    with pytest.raises(ValueError, match=r"normal: expects std >= 0.0"):
        ember.normal(0.0, -1.0, (3,))
    with pytest.raises(ValueError, match=r"bernoulli: all probabilities must be in \[0, 1\]"):
        ember.bernoulli(ember.tensor([1.5]))
    with pytest.raises(ValueError, match=r"multinomial: probability tensor contains"):
        ember.multinomial(ember.tensor([0.5, -0.1]), 1)
    with pytest.raises(ValueError, match=r"multinomial: invalid distribution"):
        ember.multinomial(ember.tensor([0.0, 0.0]), 1)
    with pytest.raises(ValueError, match=r"multinomial: cannot sample n_sample \(3\)"):
        ember.multinomial(ember.tensor([0.5, 0.5]), 3)


# -- shapes ------------------------------------------------------------------------------------


def test_reshape_bad_shape_types():
    x = ember.ones(2, 3)
    with pytest.raises(TypeError, match=r"reshape: shape must be a sequence of ints.*str"):
        x.reshape("a")
    with pytest.raises(TypeError, match=r"reshape: shape must be a sequence of ints.*2.5"):
        x.reshape(2.5, 3)


def test_cat_stack_need_a_sequence_of_tensors():
    with pytest.raises(TypeError, match=r"cat: expected a sequence \(list or tuple\) of Tensors"):
        ember.cat(ember.ones(2, 3))
    with pytest.raises(TypeError, match=r"cat: .*element 1 is int"):
        ember.cat([ember.ones(2), 3])
    with pytest.raises(TypeError, match=r"stack: .*element 0 is list"):
        ember.stack([[1.0], ember.ones(1)])


def test_narrow_out_of_range():
    x = ember.ones(2, 3)
    with pytest.raises(ShapeError, match=r"narrow: start \(1\) \+ length \(5\) exceeds"):
        x.narrow(0, 1, 5)
    with pytest.raises(IndexError, match=r"narrow: start \(-4\) out of range"):
        x.narrow(1, -4, 1)
    with pytest.raises(ValueError, match=r"narrow: length must be non-negative"):
        x.narrow(1, 0, -1)
    assert x.narrow(1, -2, 2).shape == (2, 2)


def test_outer_needs_vectors():
    with pytest.raises(ShapeError, match=r"outer: expected 1-D arguments"):
        ember.outer(ember.ones(3, 1), ember.ones(3))


def test_bmm_and_matmul_batch_mismatch():
    with pytest.raises(ShapeError, match=r"bmm: batch1 of shape \(2, 3, 4\) and batch2"):
        ember.bmm(ember.ones(2, 3, 4), ember.ones(3, 4, 5))
    with pytest.raises(ShapeError, match=r"matmul: the batch dimensions \(2,\) and \(3,\)"):
        ember.matmul(ember.ones(2, 3, 4), ember.ones(3, 4, 5))


def test_linear_bias_mismatch():
    with pytest.raises(ShapeError, match=r"linear: bias of shape \(5,\) does not match"):
        F.linear(ember.ones(2, 3), ember.ones(4, 3), ember.ones(5))


def test_copy_broadcast_failure():
    with pytest.raises(RuntimeError, match=r"copy_: src of shape \(4,\) cannot be broadcast"):
        ember.ones(3).copy_(ember.ones(4))
    with pytest.raises(RuntimeError, match=r"copy_: src of shape \(2, 3\) cannot be broadcast"):
        ember.ones(3).copy_(ember.ones(2, 3))
    assert ember.zeros(2, 3).copy_(ember.ones(3)).sum().item() == 6.0


# -- nn ----------------------------------------------------------------------------------------


def test_kernel_casting_error_is_wrapped():
    # NumPy's ufunc casting errors can't be rebuilt from a message: bind must still name the op
    # (the op itself: F.avg_pool2d now refuses integer inputs before the kernel runs)
    from ember.ops.pooling import avg_pool2d_op

    x = ember.ones(1, 1, 4, 4, dtype=ember.int64)
    with pytest.raises(TypeError, match=r"avg_pool2d: cannot apply to .*int64"):
        avg_pool2d_op(x, (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(TypeError, match=r"avg_pool2d: expected a floating point input"):
        F.avg_pool2d(x, 2)


def test_conv_stride_dilation_positive():
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive, got 0"):
        F.conv2d(ember.ones(1, 1, 5, 5), ember.ones(2, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv1d: stride must be positive"):
        F.conv1d(ember.ones(1, 1, 5), ember.ones(2, 1, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv_transpose2d: dilation must be positive"):
        F.conv_transpose2d(ember.ones(1, 1, 5, 5), ember.ones(1, 1, 3, 3), dilation=0)


@pytest.mark.parametrize("fn", [F.adaptive_avg_pool2d, F.adaptive_max_pool2d])
def test_adaptive_pool_output_size(fn):
    with pytest.raises(ValueError, match=r"adaptive_(avg|max)_pool2d: output_size must be >= 0"):
        fn(ember.ones(1, 1, 3, 3), -1)
    # a zero output size gives an empty result, as in PyTorch, still differentiable
    import torch

    x = ember.ones(2, 3, 4, 4, requires_grad=True)
    for size in (0, (0, 2), (3, 0)):
        want = getattr(torch.nn.functional, fn.__name__)(torch.ones(2, 3, 4, 4), size)
        got = fn(x, size)
        assert tuple(got.shape) == tuple(want.shape)
        got.sum().backward()
        assert x.grad.shape == x.shape and float(x.grad.abs().sum()) == 0.0


def test_group_norm_weight_mismatch():
    with pytest.raises(ShapeError, match=r"group_norm: weight of shape \(4,\) does not match"):
        ember.nn.GroupNorm(2, 4)(ember.ones(2, 6, 3))


def test_prelu_weight_mismatch():
    with pytest.raises(ShapeError, match=r"prelu: mismatch of parameter numbers"):
        ember.nn.PReLU(3)(ember.ones(2, 4))


def test_attention_mask_shape():
    q = ember.ones(1, 2, 3, 4)
    with pytest.raises(ShapeError, match=r"scaled_dot_product_attention: attn_mask of shape"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=ember.ones(5, 5))
    x = ember.ones(3, 2, 4)
    with pytest.raises(ShapeError, match=r"attn_mask should have shape \(3, 3\)"):
        ember.nn.MultiheadAttention(4, 2)(x, x, x, attn_mask=ember.ones(5, 5))


# -- autograd ----------------------------------------------------------------------------------


def test_backward_gradient_list():
    x = ember.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"backward: gradient must be a Tensor or None, got list"):
        (x * 2).backward([1.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [ember.float64, ember.int64])
def test_backward_gradient_of_another_dtype(dtype):
    # PyTorch casts the seed to the output's dtype; this used to fail in Tensor.to
    x = ember.ones(3, requires_grad=True)
    x.exp().backward(ember.ones(3, dtype=dtype))
    assert x.grad.dtype == ember.float32
    np.testing.assert_allclose(x.grad.numpy(), np.e, rtol=1e-6)


# -- optim -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ember.optim.SGD, ember.optim.Adam])
def test_optimizer_step_grad_of_wrong_shape(cls):
    w = ember.nn.Parameter(ember.ones(3))
    opt = cls([w], lr=0.1)
    w.grad = ember.ones(1)  # would broadcast silently in Adam
    with pytest.raises(ValueError, match=r"optimizer step: .*shape \(3,\) has a .grad of shape"):
        opt.step()
    assert w.tolist() == [1.0, 1.0, 1.0]


def test_optimizer_given_a_module_or_group_without_params():
    with pytest.raises(TypeError, match=r"SGD: .*got a Linear module; pass model.parameters"):
        ember.optim.SGD(ember.nn.Linear(2, 2), lr=0.1)
    with pytest.raises(KeyError, match=r"param_group must have a 'params' entry"):
        ember.optim.SGD([{"lr": 0.1}], lr=0.1)


# -- serialization -----------------------------------------------------------------------------


def test_save_load_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ember.save: .*parent directory .* not exist"):
        ember.save({"a": ember.ones(1)}, tmp_path / "no" / "such" / "x.safetensors")
    with pytest.raises(TypeError, match=r"ember.save: f must be a path or a file object"):
        ember.save({"a": ember.ones(1)}, None)
    with pytest.raises(TypeError, match=r"ember.load: f must be a path or a file object"):
        ember.load(None)
    with pytest.raises(IsADirectoryError, match=r"ember.load: .* is a directory"):
        ember.load(tmp_path)


# -- keras -------------------------------------------------------------------------------------


def _model():
    m = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    return m


_X = np.ones((6, 4), np.float32)
_Y = np.ones((6, 1), np.float32)


@pytest.mark.parametrize("bs", [0, -1, 1.5])
def test_keras_fit_batch_size(bs):
    with pytest.raises(ValueError, match=r"batch_size must be a positive int"):
        _model().fit(_X, _Y, batch_size=bs, verbose=0)


def test_keras_fit_bad_arguments():
    m = _model()
    with pytest.raises(ValueError, match=r"compute_loss: no targets: y is None"):
        m.fit(_X, None, verbose=0)
    with pytest.raises(ValueError, match=r"fit: epochs must be a non-negative int"):
        m.fit(_X, _Y, epochs="2", verbose=0)
    with pytest.raises(ValueError, match=r"fit: validation_data must be \(x_val, y_val\)"):
        m.fit(_X, _Y, validation_data=(_X,), verbose=0)
    # (nested lists of numbers are converted, as tf.keras did: tests/test_keras_round4.py)
    with pytest.raises(ValueError, match=r"x: the nested lists are not rectangular"):
        m.fit([[1.0, 2.0], [3.0]], _Y[:2], verbose=0)
    with pytest.raises(ValueError, match=r"x of type set is not an array input"):
        m.fit({1.0, 2.0}, _Y, verbose=0)


def test_keras_layer_arguments():
    with pytest.raises(ValueError, match=r"Dense: units must be a positive int, got 'a'"):
        keras.layers.Dense("a")
    with pytest.raises(ValueError, match=r"LSTM: units must be a positive int, got 0"):
        keras.layers.LSTM(0)
    with pytest.raises(ValueError, match=r"kernel_size must be positive"):
        keras.layers.Conv2D(3, 0)
    with pytest.raises(ValueError, match=r"Conv2D: filters must be a positive int"):
        keras.layers.Conv2D(0, 3)
    with pytest.raises(ValueError, match=r"Input: shape must be a tuple of non-negative ints"):
        keras.Input(shape=(-1,))
    with pytest.raises(ValueError, match=r"Input: shape must be a tuple"):
        keras.Input(shape="a")


def test_keras_normalization_axis_out_of_range():
    with pytest.raises(ValueError, match=r"BatchNormalization: axis=5 is out of range"):
        keras.Sequential([keras.Input(shape=(4,)), keras.layers.BatchNormalization(axis=5)])
    with pytest.raises(ValueError, match=r"LayerNormalization: axis=3 is out of range"):
        keras.Sequential([keras.Input(shape=(4,)), keras.layers.LayerNormalization(axis=3)])
