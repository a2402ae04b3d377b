"""The in-place random fills (``uniform_``, ``normal_``, ``bernoulli_``, ``exponential_``,
``geometric_``, ``log_normal_``, ``cauchy_``, ``random_``), ``nn.init`` on top of them and
``randperm`` bind the seeded ``random`` primitive: their distributions against PyTorch's,
PyTorch's argument checks, seeding, and compiled functions that draw what eager mode draws."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import ember
from ember.nn import init

_N = 20000


def _graph_prims(f):
    return [e.prim.name for entry in f.cache.values() for e in entry.graph.eqns]


# method, args, dtype name, statistic checks: (mean, std) compared loosely with torch's
_CONTINUOUS = [
    ("uniform_", (-2.0, 3.0), "float32"),
    ("uniform_", (0.5, 0.75), "float64"),
    ("normal_", (1.5, 0.5), "float32"),
    ("normal_", (-1.0, 2.0), "float64"),
    ("exponential_", (2.0,), "float32"),
    ("exponential_", (0.5,), "float64"),
    ("log_normal_", (0.5, 0.25), "float32"),
    ("geometric_", (0.3,), "float32"),
    ("geometric_", (0.7,), "int64"),
    ("bernoulli_", (0.3,), "float32"),
    ("bernoulli_", (0.6,), "int64"),
    ("random_", (3, 9), "int32"),
    ("random_", (-4, 4), "float64"),
]


@pytest.mark.parametrize("method,args,dtype", _CONTINUOUS)
def test_moments_bounds_and_dtype_match_torch(method, args, dtype):
    ember.manual_seed(0)
    torch.manual_seed(0)
    x = ember.zeros(_N, dtype=getattr(ember, dtype))
    assert getattr(x, method)(*args) is x
    t = getattr(torch.zeros(_N, dtype=getattr(torch, dtype)), method)(*args)
    assert x.dtype.name == str(t.dtype).removeprefix("torch.")
    a, b = x.numpy().astype(np.float64), t.double().numpy()
    sa, sb = a.std(), b.std()
    assert abs(a.mean() - b.mean()) < 4 * max(sa, sb) / math.sqrt(_N) * 1.5 + 1e-12
    assert abs(sa - sb) < 0.05 * sb + 1e-12
    assert a.min() >= b.min() - 0.05 * sb and a.max() <= b.max() + 2 * sb + 1e-12
    if method in ("bernoulli_", "random_"):
        assert set(np.unique(a)) == set(np.unique(b))  # same support
    if method == "geometric_":
        assert a.min() == 1 and np.array_equal(a, np.floor(a))


def test_cauchy_quantiles_match_torch():
    ember.manual_seed(1)
    torch.manual_seed(1)
    a = ember.empty(_N).cauchy_(1.5, 0.5).numpy().astype(np.float64)
    b = torch.empty(_N).cauchy_(1.5, 0.5).double().numpy()
    qs = [0.1, 0.25, 0.5, 0.75, 0.9]
    np.testing.assert_allclose(np.quantile(a, qs), np.quantile(b, qs), atol=0.05)
    # the exact quartiles of Cauchy(1.5, 0.5) are 1.5 -+ 0.5
    np.testing.assert_allclose(np.quantile(a, [0.25, 0.75]), [1.0, 2.0], atol=0.03)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_fills_keep_low_precision_dtypes(dtype):
    for fill in (
        lambda x: x.uniform_(-1, 1),
        lambda x: x.normal_(),
        lambda x: x.exponential_(),
        lambda x: x.log_normal_(0.0, 0.5),
        lambda x: x.cauchy_(),
        lambda x: x.bernoulli_(0.5),
        lambda x: x.geometric_(0.5),
    ):
        x = ember.zeros(64, dtype=getattr(ember, dtype))
        t = fill(torch.zeros(64, dtype=getattr(torch, dtype)))
        assert fill(x).dtype.name == str(t.dtype).removeprefix("torch.")
    y = ember.empty(1000, dtype=getattr(ember, dtype)).uniform_(-1, 1).numpy().astype(float)
    assert y.min() >= -1 and y.max() <= 1


def test_bernoulli_tensor_probabilities_broadcast():
    ember.manual_seed(0)
    p = ember.tensor([0.0, 0.25, 1.0])
    x = ember.zeros(_N // 4, 3).bernoulli_(p).numpy()
    t = torch.zeros(_N // 4, 3).bernoulli_(torch.tensor([0.0, 0.25, 1.0])).numpy()
    np.testing.assert_allclose(x.mean(0), t.mean(0), atol=0.03)
    assert x[:, 0].max() == 0 and x[:, 2].min() == 1


def test_random_full_int64_range_and_float_default():
    ember.manual_seed(0)
    x = ember.zeros(2000, dtype=ember.int64).random_().numpy()
    t = torch.zeros(2000, dtype=torch.int64).random_().numpy()
    assert x.min() >= 0 and x.max() > 2**62 and t.max() > 2**62
    f = ember.zeros(2000).random_().numpy()
    assert f.min() >= 0 and f.max() <= 2**24 and f.max() > 2**23
    assert np.array_equal(f, np.floor(f))


def _msg(f):
    try:
        f()
    except Exception as e:  # noqa: BLE001 - torch's message is the oracle
        return str(e).splitlines()[0]
    raise AssertionError("torch accepted the arguments")


@pytest.mark.parametrize(
    "fill,err",
    [
        (lambda x: x.uniform_(1, 0), ValueError),
        (lambda x: x.normal_(0, -1), ValueError),
        (lambda x: x.bernoulli_(1.5), ValueError),
        (lambda x: x.exponential_(-1), ValueError),
        (lambda x: x.geometric_(0), ValueError),
        (lambda x: x.cauchy_(0, -1), ValueError),
        (lambda x: x.log_normal_(0, -1), ValueError),
    ],
)
def test_bad_arguments_carry_torchs_message(fill, err):
    want = _msg(lambda: fill(torch.zeros(3)))
    with pytest.raises(err) as info:
        fill(ember.zeros(3))
    got = str(info.value)
    # PyTorch's wording after the op name ("uniform_ expects ..." -> "uniform_: expects ...")
    assert want.split(" ", 1)[1].replace(" ", "") in got.replace(" ", ""), (got, want)


def test_bad_dtypes_and_shapes_refused_as_torch():
    for fill, kernel in (
        (lambda x: x.uniform_(), "check_uniform_bounds"),
        (lambda x: x.normal_(), "normal_kernel_cpu"),
    ):
        with pytest.raises(NotImplementedError, match=kernel):
            fill(torch.zeros(3, dtype=torch.long))
        with pytest.raises(TypeError, match=f"{kernel}.*int64"):
            fill(ember.zeros(3, dtype=ember.int64))
        with pytest.raises(TypeError, match="bool"):
            fill(ember.zeros(3, dtype=ember.bool_))
    with pytest.raises(RuntimeError, match="expanded size"):
        torch.zeros(3).bernoulli_(torch.tensor([0.2, 0.5]))
    with pytest.raises(ValueError):
        ember.zeros(3).bernoulli_(ember.tensor([0.2, 0.5]))
    with pytest.raises(ValueError, match=r"bernoulli_: expects p to be in \[0, 1\]"):
        ember.zeros(2).bernoulli_(ember.tensor([0.2, 1.5]))
    with pytest.raises(RuntimeError, match="leaf Variable"):
        ember.zeros(3, requires_grad=True).uniform_()


_FILLS = [
    lambda x: x.uniform_(-1, 1),
    lambda x: x.normal_(1.0, 2.0),
    lambda x: x.bernoulli_(0.3),
    lambda x: x.exponential_(2.0),
    lambda x: x.geometric_(0.4),
    lambda x: x.log_normal_(0.0, 0.5),
    lambda x: x.cauchy_(0.5, 2.0),
    lambda x: x.random_(0, 7),
]


@pytest.mark.parametrize("fill", _FILLS)
def test_manual_seed_and_generators_reproduce(fill):
    ember.manual_seed(11)
    a = fill(ember.zeros(50)).numpy()
    ember.manual_seed(11)
    b = fill(ember.zeros(50)).numpy()
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) > 1
    ember.manual_seed(11)
    assert not np.array_equal(a, fill(ember.zeros(50)).numpy()[::-1])


def test_generator_keyword_draws_from_that_generator():
    g = ember.Generator().manual_seed(3)
    a = [ember.zeros(20).uniform_(generator=g), ember.zeros(20).normal_(generator=g)]
    a += [ember.zeros(20).exponential_(generator=g), ember.zeros(20).random_(0, 9, generator=g)]
    g.manual_seed(3)
    ember.manual_seed(0)  # the global generator is not used
    b = [ember.zeros(20).uniform_(generator=g), ember.zeros(20).normal_(generator=g)]
    b += [ember.zeros(20).exponential_(generator=g), ember.zeros(20).random_(0, 9, generator=g)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


@pytest.mark.parametrize("fill", _FILLS)
def test_compiled_fill_equals_eager_fullgraph(fill):
    def fn(x):
        return fill(x.clone()) + x

    f = ember.compile(fn, fullgraph=True)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for b in (3, 3, 5):
            x = ember.tensor(rng.standard_normal((b, 4)).astype(np.float32))
            ember.manual_seed(b)
            want = fn(x)
            ember.manual_seed(b)
            got = f(x)
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    exp = f.explain()
    assert exp.traces == 1 and exp.eager_signatures == 0, str(exp)
    prims = _graph_prims(f)
    assert "random" in prims and "assign" in prims
    ember.manual_seed(0)
    assert not np.array_equal(f(x).numpy(), f(x).numpy())  # fresh draws each call


def test_init_under_no_grad_keeps_leaf_and_fan_rules():
    ember.manual_seed(0)
    w = ember.nn.Parameter(ember.zeros(64, 32, 3))
    tw = torch.nn.Parameter(torch.zeros(64, 32, 3))
    for fn, tfn in (
        (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_),
        (init.xavier_uniform_, torch.nn.init.xavier_uniform_),
    ):
        assert fn(w) is w and w.requires_grad and w.grad_fn is None
        tfn(tw)
        a, b = np.abs(w.detach().numpy()), np.abs(tw.detach().numpy())
        assert a.max() <= b.max() * 1.001 and a.max() > 0.99 * b.max()  # the same bound
    for fn, tfn, kw in (
        (init.kaiming_normal_, torch.nn.init.kaiming_normal_, {"mode": "fan_out"}),
        (init.xavier_normal_, torch.nn.init.xavier_normal_, {"gain": 2.0}),
        (init.normal_, torch.nn.init.normal_, {"std": 0.02}),
    ):
        fn(w, **kw)
        tfn(tw, **kw)
        sa, sb = w.detach().numpy().std(), tw.detach().numpy().std()
        assert abs(sa - sb) < 0.05 * sb
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(ember.zeros(3))


def test_trunc_normal_orthogonal_sparse_match_torch():
    ember.manual_seed(0)
    torch.manual_seed(0)
    a = init.trunc_normal_(ember.empty(_N), 0.1, 0.5, -0.5, 0.8).numpy()
    b = torch.nn.init.trunc_normal_(torch.empty(_N), 0.1, 0.5, -0.5, 0.8).numpy()
    assert a.min() >= -0.5 and a.max() <= 0.8
    assert abs(a.mean() - b.mean()) < 0.02 and abs(a.std() - b.std()) < 0.02
    for shape in ((4, 6), (6, 4), (3, 2, 2)):
        q = init.orthogonal_(ember.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
        small = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
        np.testing.assert_allclose(small, 4 * np.eye(min(q.shape)), atol=1e-4)
    s = init.sparse_(ember.empty(10, 4), 0.3).numpy()
    ts = torch.nn.init.sparse_(torch.empty(10, 4), 0.3).numpy()
    np.testing.assert_array_equal((s == 0).sum(0), (ts == 0).sum(0))


def test_init_seeded_and_compiled_equals_eager():
    def fn(x):
        w = ember.zeros(x.shape[1], 3)
        init.kaiming_uniform_(w, a=math.sqrt(5))
        b = init.trunc_normal_(ember.zeros(3), std=0.02)
        return x @ w + b

    f = ember.compile(fn, fullgraph=True)
    x = ember.randn(4, 5)
    ember.manual_seed(2)
    want = fn(x)
    ember.manual_seed(2)
    got = f(x)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    assert "random" in _graph_prims(f)
    ember.manual_seed(2)
    m1 = ember.nn.Linear(5, 3)
    ember.manual_seed(2)
    m2 = ember.nn.Linear(5, 3)
    np.testing.assert_array_equal(m1.weight.detach().numpy(), m2.weight.detach().numpy())


def test_randperm_is_a_seeded_traceable_permutation():
    ember.manual_seed(4)
    p = ember.randperm(50)
    assert p.dtype == ember.int64 and sorted(p.tolist()) == list(range(50))
    ember.manual_seed(4)
    assert ember.randperm(50).tolist() == p.tolist()
    assert ember.randperm(0).dtype == ember.int64 and ember.randperm(0).shape == (0,)
    t = ember.randperm(5, dtype=ember.float32, requires_grad=True)
    assert t.dtype == ember.float32 and t.requires_grad
    # every position is uniform: compare the per-position means with torch's
    ember.manual_seed(0)
    counts = np.mean([ember.randperm(4).numpy() for _ in range(2000)], axis=0)
    tc = np.mean([torch.randperm(4).numpy() for _ in range(2000)], axis=0)
    np.testing.assert_allclose(counts, tc, atol=0.15)

    def fn(x):
        return x[ember.randperm(x.shape[0])]

    f = ember.compile(fn, fullgraph=True)
    x = ember.arange(6.0)
    for s in (1, 2):
        ember.manual_seed(s)
        want = fn(x)
        ember.manual_seed(s)
        np.testing.assert_array_equal(f(x).numpy(), want.numpy())
    assert f.explain().traces == 1
