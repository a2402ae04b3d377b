"""Elementwise ops, reductions and matmul against PyTorch: forward values and gradients over
random shapes (broadcasting, 0-d, size-0 dims, negative dims, non-contiguous inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close_torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import ember
from ember.ops._records import OPS, small_integers

EW_RTOL, RED_RTOL = 1e-5, 1e-5
# Many ops x many examples: keep each op's share small (the suite runs in seconds).
PER_OP = settings(max_examples=10, deadline=None)


def _array(rng, shape, domain, noncontig):
    lo, hi = domain
    if noncontig and len(shape):
        big = rng.uniform(lo, hi, size=tuple(shape[:-1]) + (shape[-1] * 2,)).astype(np.float32)
        arr = big[..., ::2]
    else:
        arr = rng.uniform(lo, hi, size=shape).astype(np.float32)
    if domain == (-3, 3):  # keep away from kinks of abs/relu/etc.
        arr = np.where(np.abs(arr) < 0.05, np.float32(0.3), arr)
    return arr


def _pair(arr):
    """The same values as an ember leaf (sharing, possibly non-contiguous) and a torch leaf."""
    e = ember.from_numpy(arr).requires_grad_()
    t = torch.from_numpy(np.array(arr, order="C")).requires_grad_()
    return e, t


def _check_fwd_bwd(ef, tf, arrays, rng, rtol, atol=1e-5, grad=True):
    pairs = [_pair(a) for a in arrays]
    ey = ef(*[p[0] for p in pairs])
    ty = tf(*[p[1] for p in pairs])
    assert_close_torch(ey, ty, rtol=rtol, atol=atol, msg="forward")
    if not grad or not ty.requires_grad:
        return
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ey.backward(ember.tensor(g))
    ty.backward(torch.from_numpy(g))
    for k, (e, t) in enumerate(pairs):
        if t.grad is None:
            assert e.grad is None or not np.any(e.grad.numpy()), f"grad {k}"
            continue
        assert_close_torch(e.grad, t.grad, rtol=rtol, atol=atol * 10, msg=f"grad of input {k}")


def _record_forms(arity):
    """name -> (ember fn, torch fn, domain, record) for the float op records of ``arity``
    tensor inputs that take any broadcastable shapes (the data lives in the records)."""
    forms = {}
    for rec in OPS.values():
        if (
            rec.ref is None
            or rec.arity != arity
            or rec.shapes is not None
            or not rec.grad
            or not rec.dtypes[0].startswith("float")
        ):
            continue
        for case in rec.cases:
            name = rec.name + "".join(f"-{k}={v}" for k, v in case.items())
            ref = rec.torch_ref(torch)
            forms[name] = (
                lambda *xs, rec=rec, case=case: rec.fn(*xs, **case),
                lambda *xs, ref=ref, case=case: ref(*xs, **case),
                rec.domain,
                rec,
            )
    return forms


# Operator spellings and scalar operands, which are not op records of their own.
OPERATOR_FORMS = {
    "pow_scalar": (lambda x: x**3, lambda x: x**3, (-3, 3)),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5, (0.2, 4)),
    "pow_frac": (lambda x: x**1.7, lambda x: x**1.7, (0.2, 4)),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x, (-3, 3)),
    "add_scalar": (lambda x: x + 2, lambda x: x + 2, (-3, 3)),
    "rsub_scalar": (lambda x: 2 - x, lambda x: 2 - x, (-3, 3)),
    "rdiv_scalar": (lambda x: 2 / x, lambda x: 2 / x, (0.3, 3)),
    "mul_scalar": (lambda x: x * 2.5, lambda x: x * 2.5, (-3, 3)),
    "softmax": (
        lambda x: ember.softmax(x, -1) if x.ndim else ember.softmax(x, 0),
        lambda x: torch.softmax(x, -1 if x.ndim else 0),
        (-3, 3),
    ),
    "log_softmax": (
        lambda x: ember.log_softmax(x, -1) if x.ndim else ember.log_softmax(x, 0),
        lambda x: torch.log_softmax(x, -1 if x.ndim else 0),
        (-3, 3),
    ),
}
UNARY = {**{k: v[:3] for k, v in _record_forms(1).items()}, **OPERATOR_FORMS}

shapes = array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


@pytest.mark.parametrize("name", sorted(UNARY))
@PER_OP
@given(shape=shapes, noncontig=st.booleans(), seed=st.integers(0, 2**16))
def test_unary(name, shape, noncontig, seed):
    ef, tf, dom = UNARY[name]
    rng = np.random.default_rng(seed)
    rtol = RED_RTOL if "softmax" in name else EW_RTOL
    _check_fwd_bwd(ef, tf, [_array(rng, shape, dom, noncontig)], rng, rtol)


BINARY_RECORDS = _record_forms(2)
BINARY = {
    **{k: v[:3] for k, v in BINARY_RECORDS.items()},
    "where": (
        lambda a, b: ember.where(a > b, a, b),
        lambda a, b: torch.where(a > b, a, b),
        (-3, 3),
    ),
    "clamp_tensor": (
        lambda a, b: ember.clamp(a, min=b),
        lambda a, b: torch.clamp(a, min=b),
        (-3, 3),
    ),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@PER_OP
@given(
    shapes=mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3
    ),
    noncontig=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_binary(name, shapes, noncontig, seed):
    ef, tf, dom = BINARY[name]
    rng = np.random.default_rng(seed)
    rec = BINARY_RECORDS[name][3] if name in BINARY_RECORDS else None
    if rec is not None and rec.sample is not None:  # e.g. fmod: away from the jumps
        a, b = rec.sample(rng, shapes.input_shapes)
        if noncontig and a.ndim:
            a = np.repeat(a, 2, axis=-1)[..., ::2]
    else:
        a = _array(rng, shapes.input_shapes[0], dom, noncontig)
        b = _array(rng, shapes.input_shapes[1], dom, False)
    _check_fwd_bwd(ef, tf, [a, b], rng, EW_RTOL)


@pytest.mark.parametrize(
    "name", [r.name for r in OPS.values() if r.arity == 2 and r.sample is small_integers]
)
@PER_OP
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=st.integers(0, 2**16),
)
def test_comparisons(name, shapes, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, shapes.input_shapes[0]).astype(np.float32)
    b = rng.integers(-2, 3, shapes.input_shapes[1]).astype(np.float32)
    r = getattr(ember, name)(ember.tensor(a), ember.tensor(b))
    assert_close_torch(r, getattr(torch, name)(torch.tensor(a), torch.tensor(b)))


# -- reductions ----------------------------------------------------------------------------
@st.composite
def shape_and_dims(draw, allow_none=True, min_side=0):
    shape = draw(array_shapes(min_dims=0, max_dims=4, min_side=min_side, max_side=4))
    n = len(shape)
    if n == 0:
        dims = draw(st.sampled_from([None, 0, -1] if allow_none else [0, -1]))
    else:
        choices = [
            st.integers(-n, n - 1),
            st.lists(st.integers(0, n - 1), unique=True, min_size=1, max_size=n).map(
                lambda ds: tuple(d - n if i % 2 else d for i, d in enumerate(ds))
            ),
        ]
        if allow_none:
            choices.append(st.none())
        dims = draw(st.one_of(*choices))
    return shape, dims, draw(st.booleans())


def _kw(dims, keepdim):
    return {} if dims is None else {"dim": dims, "keepdim": keepdim}


@pytest.mark.parametrize(
    "name", ["sum", "mean", "amax", "amin", "logsumexp", "var", "std", "prod", "norm"]
)
@PER_OP
@given(sd=shape_and_dims(), noncontig=st.booleans(), seed=st.integers(0, 2**16))
def test_reductions(name, sd, noncontig, seed):
    shape, dims, keepdim = sd
    rng = np.random.default_rng(seed)
    reduced = [
        shape[d]
        for d in (
            (dims,) if isinstance(dims, int) else (dims if dims is not None else range(len(shape)))
        )
        if shape
    ]
    if name in ("amax", "amin", "logsumexp") and 0 in reduced:
        return  # torch errors on empty reductions for these (checked in test_errors)
    if name == "logsumexp" and dims is None:
        dims = tuple(range(len(shape))) if shape else 0
    x = _array(rng, shape, (-3, 3), noncontig)
    if name == "prod":
        x = np.where(rng.random(x.shape) < 0.2, np.float32(0), x)
        if not isinstance(dims, int) and dims is not None:
            dims = dims[0]  # torch.prod takes one dim
    if name in ("amax", "amin"):  # distinct values: ties are split in ember and torch alike
        x = np.asarray(rng.permutation(x.size).reshape(x.shape) / 3, np.float32)

    def ef(a):
        if name == "norm":  # p=2: the default 'fro' (as torch.norm's) takes at most 2 dims
            return ember.norm(a, 2, **_kw(dims, keepdim))
        return getattr(ember, name)(a, **_kw(dims, keepdim))

    def tf(a):
        if name == "norm":
            return torch.linalg.vector_norm(a, **_kw(dims, keepdim))
        return getattr(torch, name)(a, **_kw(dims, keepdim))

    _check_fwd_bwd(ef, tf, [x], rng, RED_RTOL)


@given(sd=shape_and_dims(allow_none=False, min_side=1), seed=st.integers(0, 2**16))
def test_max_min_dim_argmax(sd, seed):
    shape, dims, keepdim = sd
    dim = dims if isinstance(dims, int) else dims[0]
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.permutation(int(np.prod(shape))).reshape(shape) / 3, np.float32)
    for fn in ("max", "min"):
        _check_fwd_bwd(
            lambda a, fn=fn: getattr(ember, fn)(a, dim, keepdim)[0],
            lambda a, fn=fn: getattr(torch, fn)(a, dim, keepdim)[0],
            [x],
            rng,
            RED_RTOL,
        )
        e_idx = getattr(ember, fn)(ember.tensor(x), dim, keepdim).indices
        assert_close_torch(e_idx, getattr(torch, fn)(torch.tensor(x), dim, keepdim).indices)
    for fn in ("argmax", "argmin"):
        assert_close_torch(
            getattr(ember, fn)(ember.tensor(x), dim, keepdim),
            getattr(torch, fn)(torch.tensor(x), dim, keepdim),
        )
        assert_close_torch(getattr(ember, fn)(ember.tensor(x)), getattr(torch, fn)(torch.tensor(x)))


def test_reduction_ties_and_int_dtypes():
    x = ember.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    t = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    ember.amax(x, 1).sum().backward()
    torch.amax(t, 1).sum().backward()
    assert_close_torch(x.grad, t.grad)
    i = ember.tensor([1, 2, 3], dtype=ember.int8)
    assert_close_torch(ember.sum(i), torch.sum(torch.tensor([1, 2, 3], dtype=torch.int8)))
    assert_close_torch(ember.prod(i), torch.prod(torch.tensor([1, 2, 3], dtype=torch.int8)))
    assert ember.sum(ember.tensor([True, True])).item() == 2
    assert ember.all(ember.tensor([1, 0])).item() is False
    assert ember.any(ember.tensor([[0, 0], [0, 1]]), dim=0).tolist() == [False, True]
    assert ember.count_nonzero(ember.tensor([1, 0, 2])).item() == 2
    with pytest.raises(TypeError, match="mean"):
        ember.mean(ember.tensor([1, 2]))
    assert_close_torch(
        ember.mean(ember.tensor([1, 2]), dtype=ember.float32),
        torch.mean(torch.tensor([1, 2]), dtype=torch.float32),
    )


def test_empty_reductions_match_torch():
    z = np.zeros((0, 3), np.float32)
    assert_close_torch(ember.sum(ember.tensor(z), 0), torch.sum(torch.tensor(z), 0))
    assert_close_torch(ember.sum(ember.tensor(z)), torch.sum(torch.tensor(z)))
    assert_close_torch(ember.mean(ember.tensor(z), 0), torch.mean(torch.tensor(z), 0))
    assert_close_torch(ember.prod(ember.tensor(z), 0), torch.prod(torch.tensor(z), 0))
    assert_close_torch(ember.amax(ember.tensor(z), 1), torch.amax(torch.tensor(z), 1))
    with pytest.raises(ValueError, match="amax"):
        ember.amax(ember.tensor(z), 0)


# -- matmul --------------------------------------------------------------------------------
@st.composite
def matmul_shapes(draw):
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    k = draw(st.integers(1, 4)) if draw(st.booleans()) else k
    batch = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
    kind = draw(st.sampled_from(["mm", "vec-mat", "mat-vec", "vec-vec", "batched"]))
    if kind == "mm":
        return (m, k), (k, n)
    if kind == "vec-mat":
        return (k,), batch.input_shapes[1] + (k, n)
    if kind == "mat-vec":
        return batch.input_shapes[0] + (m, k), (k,)
    if kind == "vec-vec":
        return (k,), (k,)
    return batch.input_shapes[0] + (m, k), batch.input_shapes[1] + (k, n)


@given(shapes=matmul_shapes(), noncontig=st.booleans(), seed=st.integers(0, 2**16))
def test_matmul(shapes, noncontig, seed):
    rng = np.random.default_rng(seed)
    a = _array(rng, shapes[0], (-2, 2), noncontig)
    b = _array(rng, shapes[1], (-2, 2), noncontig)
    _check_fwd_bwd(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], rng, RED_RTOL)


@pytest.mark.parametrize(
    "eq,shapes",
    [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
        ("ii->i", [(3, 3)]),
        ("ij->", [(2, 3)]),
        ("i,j->ij", [(2,), (3,)]),
        ("...ij,jk", [(2, 2, 3), (3, 1)]),
        ("ij,ij->i", [(2, 3), (2, 3)]),
    ],
)
def test_einsum(eq, shapes):
    rng = np.random.default_rng(0)
    arrays = [_array(rng, s, (-2, 2), False) for s in shapes]
    _check_fwd_bwd(
        lambda *xs: ember.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), arrays, rng, RED_RTOL
    )


@pytest.mark.parametrize("fn", ["mm", "bmm", "dot", "outer"])
def test_matmul_variants(fn):
    rng = np.random.default_rng(1)
    shapes = {
        "mm": [(2, 3), (3, 4)],
        "bmm": [(2, 2, 3), (2, 3, 4)],
        "dot": [(3,), (3,)],
        "outer": [(3,), (4,)],
    }[fn]
    arrays = [_array(rng, s, (-2, 2), False) for s in shapes]
    _check_fwd_bwd(getattr(ember, fn), getattr(torch, fn), arrays, rng, RED_RTOL)


# -- float64: second-order gradients of the smooth ops against torch --------------------------
SMOOTH_UNARY = [n for n, f in _record_forms(1).items() if f[3].second_order] + [
    "pow_scalar",
    "pow_frac",
    "rpow",
    "softmax",
    "log_softmax",
]
SMOOTH_BINARY = [n for n, f in BINARY_RECORDS.items() if f[3].second_order]


def _second_order(ef, tf, arrays, rng):
    es = [ember.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ey, ty = ef(*es), tf(*ts)
    v = rng.standard_normal(tuple(ty.shape))
    eg = ember.autograd.grad(ey, es, ember.tensor(v), create_graph=True)
    tg = torch.autograd.grad(ty, ts, torch.tensor(v), create_graph=True)
    for a, b in zip(eg, tg):
        assert_close_torch(a, b, rtol=1e-9, atol=1e-10, msg="first order")
    w = [rng.standard_normal(a.shape) for a in arrays]
    el = sum((g * ember.tensor(wi)).sum() for g, wi in zip(eg, w))
    tl = sum((g * torch.tensor(wi)).sum() for g, wi in zip(tg, w))
    if not tl.requires_grad:
        return
    eh = ember.autograd.grad(el, es, allow_unused=True)
    th = torch.autograd.grad(tl, ts, allow_unused=True)
    for a, b in zip(eh, th):
        if b is None:
            assert a is None or not np.any(a.numpy())
            continue
        assert_close_torch(a, b, rtol=1e-8, atol=1e-10, msg="second order")


@pytest.mark.parametrize("name", SMOOTH_UNARY)
@PER_OP
@given(
    shape=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), seed=st.integers(0, 2**16)
)
def test_second_order_unary_float64(name, shape, seed):
    ef, tf, dom = UNARY[name]
    rng = np.random.default_rng(seed)
    _second_order(ef, tf, [_array(rng, shape, dom, False).astype(np.float64)], rng)


@pytest.mark.parametrize("name", SMOOTH_BINARY)
@PER_OP
@given(
    shapes=mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3
    ),
    seed=st.integers(0, 2**16),
)
def test_second_order_binary_float64(name, shapes, seed):
    ef, tf, dom = BINARY[name]
    rng = np.random.default_rng(seed)
    arrays = [_array(rng, s, dom, False).astype(np.float64) for s in shapes.input_shapes]
    _second_order(ef, tf, arrays, rng)


@pytest.mark.parametrize("name", ["sum", "mean", "logsumexp", "var", "prod", "norm"])
@PER_OP
@given(sd=shape_and_dims(allow_none=False, min_side=1), seed=st.integers(0, 2**16))
def test_second_order_reductions_float64(name, sd, seed):
    shape, dims, keepdim = sd
    if name == "prod":
        dims = dims if isinstance(dims, int) else dims[0]
    rng = np.random.default_rng(seed)
    x = _array(rng, shape, (0.5, 2), False).astype(np.float64)

    def tf(a):
        if name == "norm":
            return torch.linalg.vector_norm(a, dim=dims, keepdim=keepdim)
        return getattr(torch, name)(a, dim=dims, keepdim=keepdim)

    def ef(a):
        if name == "norm":  # p=2: the default 'fro' (as torch.norm's) takes at most 2 dims
            return ember.norm(a, 2, dim=dims, keepdim=keepdim)
        return getattr(ember, name)(a, dim=dims, keepdim=keepdim)

    _second_order(ef, tf, [x], rng)


@given(shapes=matmul_shapes(), seed=st.integers(0, 2**16))
def test_second_order_matmul_float64(shapes, seed):
    rng = np.random.default_rng(seed)
    arrays = [_array(rng, s, (-2, 2), False).astype(np.float64) for s in shapes]
    _second_order(lambda x, y: (x @ y).tanh(), lambda x, y: (x @ y).tanh(), arrays, rng)


# -- integer / bool / predicate ops ----------------------------------------------------------
@PER_OP
@pytest.mark.parametrize(
    "name",
    [
        "bitwise_and",
        "bitwise_or",
        "bitwise_xor",
        "floor_divide",
        "remainder",
        "fmod",
        "maximum",
        "minimum",
        "eq",
        "lt",
    ],
)
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=st.integers(0, 2**16),
)
def test_integer_binary_ops(name, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    lo = 0 if dtype == "uint8" else -9
    a = rng.integers(lo, 10, shapes.input_shapes[0])
    b = rng.integers(1, 5, shapes.input_shapes[1]) * (
        1 if dtype == "uint8" else rng.choice([-1, 1], shapes.input_shapes[1])
    )
    ea, eb = (
        ember.tensor(a, dtype=getattr(ember, dtype)),
        ember.tensor(b, dtype=getattr(ember, dtype)),
    )
    ta, tb = (
        torch.tensor(a, dtype=getattr(torch, dtype)),
        torch.tensor(b, dtype=getattr(torch, dtype)),
    )
    assert_close_torch(getattr(ember, name)(ea, eb), getattr(torch, name)(ta, tb), msg=name)


@PER_OP
@given(
    shape=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), seed=st.integers(0, 2**16)
)
def test_predicates_and_bool_reductions(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.choice(np.array([0.0, 1.5, -2.0, np.inf, -np.inf, np.nan], np.float32), shape)
    e, t = ember.tensor(a), torch.tensor(a)
    for name in ("isnan", "isinf", "isfinite", "logical_not", "sign"):
        assert_close_torch(getattr(ember, name)(e), getattr(torch, name)(t), msg=name)
    assert_close_torch(
        ember.nan_to_num(e, nan=1.0, posinf=9.0, neginf=-9.0),
        torch.nan_to_num(t, nan=1.0, posinf=9.0, neginf=-9.0),
    )
    assert_close_torch(~(e > 0), ~(t > 0))
    i = ember.tensor(np.nan_to_num(a).astype(np.int32))
    ti = torch.tensor(np.nan_to_num(a).astype(np.int32))
    assert_close_torch(~i, ~ti)
    assert_close_torch(ember.count_nonzero(e), torch.count_nonzero(t))
    for fn in ("all", "any"):
        assert_close_torch(getattr(ember, fn)(e), getattr(torch, fn)(t), msg=fn)
        if len(shape):
            assert_close_torch(getattr(ember, fn)(e, -1), getattr(torch, fn)(t, -1), msg=fn)
            assert_close_torch(
                getattr(ember, fn)(e, 0, keepdim=True),
                getattr(torch, fn)(t, 0, keepdim=True),
                msg=fn,
            )


@given(sd=shape_and_dims(allow_none=False, min_side=1), seed=st.integers(0, 2**16))
def test_var_mean_std_mean(sd, seed):
    shape, dims, keepdim = sd
    rng = np.random.default_rng(seed)
    x = _array(rng, shape, (-3, 3), False)
    for fn in ("var_mean", "std_mean"):
        ev = getattr(ember, fn)(ember.tensor(x), dims, keepdim=keepdim)
        tv = getattr(torch, fn)(torch.tensor(x), dims, keepdim=keepdim)
        for a, b in zip(ev, tv):
            assert_close_torch(a, b, rtol=RED_RTOL, atol=1e-5, msg=fn)
