"""Tensor API and factories against PyTorch; interop (NumPy, DLPack); clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close_torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import ember


# -- factories -------------------------------------------------------------------------------
def test_tensor_inference_matches_torch():
    for data in (
        [1, 2],
        [1.0, 2],
        [True, False],
        3,
        2.5,
        [[1, 2], [3, 4]],
        [],
        np.float64(1.5),
        np.arange(3, dtype=np.int32),
        np.ones(2, np.float64),
    ):
        assert_close_torch(ember.tensor(data), torch.tensor(data), msg=repr(data))
    assert ember.tensor([ember.tensor(1.0), ember.tensor(2.0)]).tolist() == [1.0, 2.0]
    with pytest.raises((ValueError, TypeError)):
        ember.tensor([[1, 2], [3]])


@pytest.mark.parametrize(
    "fn,args,kw",
    [
        ("zeros", (2, 3), {}),
        ("ones", ((2, 3),), {}),
        ("full", ((2,), 7), {}),
        ("full", ((2,), 7.5), {}),
        ("full", ((2,), True), {}),
        ("arange", (5,), {}),
        ("arange", (1, 4, 0.5), {}),
        ("arange", (0.0, 1.0, 0.1), {}),
        ("arange", (10, 0, -3), {}),
        ("linspace", (0, 1, 5), {}),
        ("linspace", (-1, 1, 1), {}),
        ("eye", (3,), {}),
        ("eye", (2, 4), {}),
        ("zeros", (0, 3), {}),
        ("ones", (2,), {"dtype": "float64"}),
    ],
)
def test_factories_match_torch(fn, args, kw):
    ekw = {k: getattr(ember, v) for k, v in kw.items()}
    tkw = {k: getattr(torch, v) for k, v in kw.items()}
    assert_close_torch(getattr(ember, fn)(*args, **ekw), getattr(torch, fn)(*args, **tkw))


def test_like_factories_and_empty():
    x = ember.ones(2, 3, dtype=ember.float64)
    for f in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"):
        y = getattr(ember, f)(x)
        assert y.shape == (2, 3) and y.dtype is ember.float64
    assert ember.full_like(x, 2).tolist() == [[2.0] * 3] * 2
    assert ember.zeros_like(x, dtype=ember.int32).dtype is ember.int32
    assert ember.randint_like(ember.zeros(4), 3).dtype is ember.float32
    assert ember.empty(2, 2).shape == (2, 2)


def test_random_determinism_and_ranges():
    ember.manual_seed(123)
    a = [ember.rand(3), ember.randn(2, 2), ember.randint(0, 10, (5,)), ember.randperm(6)]
    ember.manual_seed(123)
    b = [ember.rand(3), ember.randn(2, 2), ember.randint(0, 10, (5,)), ember.randperm(6)]
    for x, y in zip(a, b):
        assert np.array_equal(x.numpy(), y.numpy())
    assert a[0].dtype is ember.float32 and a[2].dtype is ember.int64
    assert sorted(a[3].tolist()) == list(range(6))
    r = ember.rand(1000)
    assert r.min().item() >= 0 and r.max().item() < 1
    i = ember.randint(3, 7, (1000,))
    assert i.min().item() >= 3 and i.max().item() <= 6
    assert ember.randint(5, (3,)).shape == (3,)
    g = ember.Generator().manual_seed(5)
    g2 = ember.Generator().manual_seed(5)
    assert ember.rand(4, generator=g).tolist() == ember.rand(4, generator=g2).tolist()
    assert ember.randn(3, dtype=ember.float64).dtype is ember.float64


# -- attributes and conversion ---------------------------------------------------------------
def test_attributes():
    x = ember.arange(6.0).reshape(2, 3)
    t = torch.arange(6.0).reshape(2, 3)
    assert tuple(x.shape) == tuple(t.shape) and x.size() == (2, 3) and x.size(-1) == 3
    assert x.ndim == 2 and x.dim() == 2 and x.numel() == 6 and len(x) == 2
    assert x.dtype is ember.float32 and x.device == ember.device("cpu")
    assert str(x.device) == "cpu" and x.shape.numel() == 6
    assert x.tolist() == t.tolist()
    assert x[1, 2].item() == 5.0 and isinstance(x[1, 2].item(), float)
    assert ember.tensor(3).item() == 3 and isinstance(ember.tensor(3).item(), int)
    with pytest.raises(RuntimeError, match="elements"):
        x.item()
    with pytest.raises(IndexError, match="range"):
        x.size(2)
    assert x.is_leaf and x.grad is None and not x.requires_grad
    assert float(ember.tensor(2.5)) == 2.5 and int(ember.tensor(3)) == 3


def test_conversion_methods():
    x = ember.tensor([1.7, -2.2, 0.0])
    t = torch.tensor([1.7, -2.2, 0.0])
    for m in (
        "float",
        "double",
        "half",
        "bfloat16",
        "long",
        "int",
        "short",
        "bool",
        "byte",
        "char",
    ):
        if m == "byte":
            assert_close_torch(getattr(x.abs(), m)(), getattr(t.abs(), m)(), rtol=0, atol=0)
            continue
        assert_close_torch(
            getattr(x, m)(), getattr(t, m)(), rtol=0, atol=0, msg=m
        )  # both round alike
    assert x.to(ember.int64).dtype is ember.int64
    assert x.to("float64").dtype is ember.float64
    assert x.to("cpu") is x
    assert x.to(ember.ones(1, dtype=ember.float16)).dtype is ember.float16
    assert x.to(x.dtype, copy=True) is not x


def test_clone_detach_contiguous():
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    c = x.clone()
    assert c.grad_fn is not None and c.requires_grad
    c.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    d = x.detach()
    assert not d.requires_grad and np.shares_memory(d.numpy(), x.detach().numpy())
    xt = x.detach().t()
    assert not xt.is_contiguous()
    xc = xt.contiguous()
    assert xc.is_contiguous() and xc.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert x.detach().contiguous() is not None


def test_repr():
    assert repr(ember.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(ember.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=ember.float64" in repr(ember.tensor([1.0], dtype=ember.float64))
    assert "requires_grad=True" in repr(ember.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(ember.tensor([1.0], requires_grad=True) * 2)
    assert repr(ember.tensor([True, False])) == repr(torch.tensor([True, False]))
    assert "bfloat16" in repr(ember.ones(1, dtype=ember.bfloat16))
    assert repr(ember.zeros(0, 3)).startswith("tensor([], size=(0, 3)")


# -- interop ---------------------------------------------------------------------------------
def test_from_numpy_zero_copy_both_ways():
    a = np.zeros(3, np.float32)
    x = ember.from_numpy(a)
    a[0] = 5
    assert x[0].item() == 5
    x.add_(1)
    assert a.tolist() == [6.0, 1.0, 1.0]
    assert x.numpy() is a or np.shares_memory(x.numpy(), a)
    y = ember.as_tensor(a)
    assert np.shares_memory(y.numpy(), a)
    with pytest.raises(TypeError):
        ember.from_numpy([1, 2])
    c = np.zeros(2, np.complex64)
    assert ember.from_numpy(c).dtype is ember.complex64
    assert np.shares_memory(ember.from_numpy(c).numpy(), c)
    with pytest.raises(TypeError, match="complex"):
        ember.from_numpy(np.zeros(2, np.clongdouble))
    with pytest.raises(RuntimeError, match="detach"):
        ember.ones(2, requires_grad=True).numpy()


@pytest.mark.parametrize(
    ("data", "dtype"),
    [([1, 2], "float64"), ([[1.5, 2.5]], "int32"), (np.arange(3), "float32"), (3, "int16")],
)
def test_as_tensor_converts_non_array_data_to_dtype(data, dtype):
    got = ember.as_tensor(data, dtype=getattr(ember, dtype))
    want = torch.as_tensor(data, dtype=getattr(torch, dtype))
    assert str(got.dtype) == f"ember.{dtype}"
    assert got.tolist() == want.tolist()


def test_array_protocol():
    x = ember.arange(4.0)
    assert np.asarray(x).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert (np.ones(4) + x).tolist() == [1.0, 2.0, 3.0, 4.0]  # defers to Tensor.__radd__


def test_dlpack_round_trips():
    x = ember.arange(6.0).reshape(2, 3)
    y = ember.from_dlpack(x)
    assert y.tolist() == x.tolist() and np.shares_memory(y.numpy(), x.numpy())
    t = torch.from_dlpack(x)
    assert t.tolist() == x.tolist()
    t[0, 0] = 42.0
    assert x[0, 0].item() == 42.0  # shared memory
    tt = torch.arange(4, dtype=torch.int32)
    e = ember.from_dlpack(tt)
    assert e.dtype is ember.int32 and e.tolist() == [0, 1, 2, 3]
    tt[0] = 9
    assert e[0].item() == 9
    tb = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    eb = ember.from_dlpack(tb)  # NumPy's DLPack lacks bfloat16: imported bitwise, zero copy
    assert eb.dtype is ember.bfloat16 and eb.tolist() == [1.5, -2.0]
    tb[0] = 3.0
    assert eb[0].item() == 3.0
    be = ember.tensor([1.5, -2.0], dtype=ember.bfloat16)
    bt = torch.from_dlpack(be)  # bfloat16 export, zero copy
    assert bt.dtype == torch.bfloat16 and bt.tolist() == [1.5, -2.0]
    bt[1] = 4.0
    assert be[1].item() == 4.0
    assert ember.from_dlpack(be).dtype is ember.bfloat16
    e2 = ember.from_dlpack(torch.arange(3.0).__dlpack__())
    assert e2.tolist() == [0.0, 1.0, 2.0]


def test_device_errors():
    with pytest.raises(RuntimeError, match="cuda"):
        ember.device("cuda")
    with pytest.raises(RuntimeError, match="cuda"):
        ember.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="cuda"):
        ember.ones(2).to("cuda")
    assert ember.zeros(2, device="cpu").device == ember.device("cpu")


# -- clear errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn,match",
    [
        (lambda: ember.ones(2, 3) + ember.ones(4), r"add.*\(2, 3\).*\(4,\)"),
        (lambda: ember.ones(2, 3) * ember.ones(2, 2), r"mul.*\(2, 3\).*\(2, 2\)"),
        (lambda: ember.ones(2, 3) @ ember.ones(2, 3), r"matmul.*2x3.*2x3"),
        (lambda: ember.ones(3) @ ember.ones(4), r"matmul.*3.*4"),
        (lambda: ember.matmul(ember.ones(()), ember.ones(3)), r"matmul.*dimension"),
        (lambda: ember.sum(ember.ones(2, 3), 2), r"sum.*dimension out of range"),
        (lambda: ember.softmax(ember.ones(2, 3), -3), r"softmax.*dimension out of range"),
        (lambda: ember.amax(ember.ones(2), (0, 0)), r"amax.*multiple times"),
        (lambda: ember.where(ember.ones(2) > 0, ember.ones(3), ember.ones(2)), r"where.*\(3,\)"),
        (lambda: ember.mm(ember.ones(2), ember.ones(2, 2)), r"mm.*2-D"),
        (lambda: ember.einsum("ij,jk", ember.ones(2, 3), ember.ones(2, 3)), r"einsum"),
        (lambda: ember.ones(2).bitwise_and(ember.ones(2)), r"bitwise_and.*float"),
        (lambda: -ember.tensor([True]), r"neg.*bool"),
        (lambda: ember.maximum(ember.ones(2, 2), ember.ones(3)), r"maximum.*\(2, 2\).*\(3,\)"),
        (lambda: ember.exp([1.0, 2.0]), r"exp.*must be a Tensor, not list"),
        (lambda: ember.sum([1, 2]), r"sum.*must be a Tensor, not list"),
        (lambda: ember.softmax("a", 0), r"softmax.*must be a Tensor, not str"),
        (lambda: ember.relu([1.0]), r"relu.*Tensor.*list"),
        (lambda: ember.ones(2) + "a", r"unsupported operand type str"),
        (lambda: ember.sum(ember.ones(2), 0.5), r"sum: dim must be an int"),
    ],
)
def test_clear_errors_name_op_and_shapes(fn, match):
    with pytest.raises((ValueError, TypeError, IndexError, RuntimeError), match=match) as ei:
        fn()
    assert "numpy" not in type(ei.value).__module__


def test_inplace_shape_and_dtype_errors():
    x = ember.ones(3)
    with pytest.raises(RuntimeError, match=r"add_.*shape"):
        x.add_(ember.ones(2, 3))
    i = ember.tensor([1, 2])
    with pytest.raises(RuntimeError, match=r"mul_.*Float|mul_.*float"):
        i.mul_(1.5)


# -- property: bad shapes always give a clear error ------------------------------------------
def _broadcastable(a, b):
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b)))


@given(
    a=array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
    b=array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
    op=st.sampled_from(["add", "sub", "mul", "div", "maximum", "eq", "where", "pow"]),
)
def test_mismatched_shapes_name_op_and_shapes(a, b, op):
    assume(not _broadcastable(a, b))
    x, y = ember.ones(*a), ember.ones(*b)
    with pytest.raises(ValueError) as ei:
        if op == "where":
            ember.where(x > 0, x, y)
        else:
            getattr(ember, op)(x, y)
    msg = str(ei.value)
    assert op in msg and str(tuple(a)) in msg and str(tuple(b)) in msg, msg
    with pytest.raises(torch_error()):
        getattr(torch, op if op != "where" else "maximum")(torch.ones(*a), torch.ones(*b))


def torch_error():
    return RuntimeError


@given(
    shape=array_shapes(min_dims=0, max_dims=3, max_side=3),
    dim=st.integers(-6, 6),
    op=st.sampled_from(
        ["sum", "mean", "amax", "softmax", "log_softmax", "argmax", "prod", "logsumexp", "var"]
    ),
)
def test_bad_dims_give_index_errors(shape, dim, op):
    n = max(len(shape), 1)
    assume(not -n <= dim < n)
    with pytest.raises(IndexError, match=rf"{op}.*out of range.*{dim}"):
        getattr(ember, op)(ember.ones(*shape), dim)


def test_rmatmul_with_an_array_operand():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 2), np.float32)
    r = a @ ember.tensor(b)
    assert isinstance(r, ember.Tensor)
    np.testing.assert_allclose(r.numpy(), (torch.tensor(a) @ torch.tensor(b)).numpy())
