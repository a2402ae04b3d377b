"""Elementwise ops and gradients whose operands have different memory layouts (a transposed
matrix against a contiguous gradient, channels-last images against NCHW ones): the values and
gradients of PyTorch, C-contiguous results where PyTorch gives them, and the same bits on one
and two threads."""

import numpy as np
import pytest
import torch

import ember

F, TF = ember.nn.functional, torch.nn.functional

UNARY = {
    "exp": (lambda t: t.exp(), lambda t: t.exp()),
    "tanh": (lambda t: t.tanh(), lambda t: t.tanh()),
    "sigmoid": (lambda t: t.sigmoid(), lambda t: t.sigmoid()),
    "gelu": (F.gelu, TF.gelu),
    "silu": (F.silu, TF.silu),
    "relu": (F.relu, TF.relu),
}
# (shape of the stored array, the permutation that makes the op's input)
LAYOUTS = {
    "transposed matrix": ((257, 300), (1, 0)),
    "transposed batch of matrices": ((3, 130, 129), (0, 2, 1)),
    "channels-last images": ((2, 17, 19, 24), (0, 3, 1, 2)),
}


def _grads(lib, fn, x_np, perm, g_np, dtype):
    x = (ember if lib == "e" else torch).from_numpy(x_np.astype(dtype)).requires_grad_()
    y = fn(x.permute(*perm))
    g = (ember if lib == "e" else torch).from_numpy(g_np.astype(dtype))
    (gx,) = (ember if lib == "e" else torch).autograd.grad(y, [x], g)
    return y.detach().numpy(), gx.numpy()


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_gradients_on_permuted_inputs_match_torch(name, layout, dtype):
    shape, perm = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, shape)
    g = rng.standard_normal(tuple(shape[p] for p in perm))
    fe, ft = UNARY[name]
    ye, ge = _grads("e", fe, x, perm, g, dtype)
    yt, gt = _grads("t", ft, x, perm, g, dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(ye, yt, **tol)
    np.testing.assert_allclose(ge, gt, **tol)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_ops_of_a_matrix_and_a_transposed_one_are_laid_out_as_torch(op):
    rng = np.random.default_rng(1)
    a = rng.uniform(1, 2, (300, 257)).astype(np.float32)
    b = rng.uniform(1, 2, (257, 300)).astype(np.float32)
    for left in (True, False):
        ea, eb = ember.from_numpy(a), ember.from_numpy(b).T
        ta, tb = torch.from_numpy(a), torch.from_numpy(b).T
        args_e, args_t = ((ea, eb), (ta, tb)) if left else ((eb, ea), (tb, ta))
        re = getattr(ember, op)(*args_e)
        rt = getattr(torch, op)(*args_t)
        np.testing.assert_allclose(re.numpy(), rt.numpy(), rtol=1e-6)
        assert re.is_contiguous() == rt.is_contiguous()


def test_one_and_two_threads_give_the_same_bits():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((512, 384)).astype(np.float32)
    g = rng.standard_normal((384, 512)).astype(np.float32)
    outs = []
    before = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            res = []
            for name in ("exp", "tanh", "gelu"):
                res.extend(_grads("e", UNARY[name][0], x, (1, 0), g, np.float32))
            xe = ember.from_numpy(x)
            res.append((ember.from_numpy(g) * xe.T).numpy())
            outs.append(res)
    finally:
        ember.set_num_threads(before)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_the_gradient_of_a_contiguous_leaf_through_a_transpose_is_contiguous():
    x = ember.randn(300, 257, requires_grad=True)
    x.T.tanh().sum().backward()
    assert x.grad.is_contiguous()
    want = 1 - np.tanh(x.detach().numpy().astype(np.float64)) ** 2
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5, atol=1e-6)
