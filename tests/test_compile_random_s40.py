"""Random tensors made inside compiled functions (``randn_like``, ``rand``, ``randint``,
``normal``, ``bernoulli``) trace into the graph as the ``random`` primitive with a graph seed:
compiled runs draw what eager runs draw for the same ``manual_seed``, in one trace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ember
from ember import nn
from ember.ops._core import bind
from ember.ops.sampling import random_p


def _graph_prims(f):
    return [e.prim.name for entry in f.cache.values() for e in entry.graph.eqns]


class _VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(6, 8)
        self.dec = nn.Linear(2, 6)

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = h[:, :2], h[:, 2:4]
        z = mu + ember.exp(0.5 * logvar) * ember.randn_like(mu)
        return self.dec(z), mu, logvar


def _vae_run(compiled, batches):
    ember.manual_seed(0)
    model = _VAE()
    opt = ember.optim.Adam(model.parameters(), lr=1e-2)

    def step(x):
        opt.zero_grad()
        rec, mu, logvar = model(x)
        kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(1).mean()
        loss = ((rec - x) ** 2).sum(1).mean() + kl
        loss.backward()
        opt.step()
        return loss

    f = ember.compile(step, fullgraph=True) if compiled else step
    rng = np.random.default_rng(1)
    ember.manual_seed(123)
    losses = []
    for b in batches:
        x = ember.tensor(rng.standard_normal((b, 6)).astype(np.float32))
        losses.append(float(f(x)))
    return losses, model, f


def test_vae_step_compiled_equals_eager_one_trace():
    batches = [4, 4, 6, 3, 5, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no eager-fallback warning
        (l1, m1, _), (l2, m2, f) = _vae_run(False, batches), _vae_run(True, batches)
    np.testing.assert_allclose(l2, l1, rtol=1e-5)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-5, atol=1e-6)
    exp = f.explain()
    assert exp.traces == 1 and exp.eager_signatures == 0, str(exp)
    assert "random" in _graph_prims(f)
    assert len(set(l2)) == len(l2)  # fresh noise every step


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x + ember.randn(x.shape),
        lambda x: x * ember.rand_like(x),
        lambda x: x + ember.randint(0, 5, x.shape).to(x.dtype),
        lambda x: x + ember.randint_like(x, 3),
        lambda x: x + ember.normal(0.5, 2.0, size=tuple(x.shape)),
        lambda x: ember.normal(x, ember.ones_like(x) * 0.1),
        lambda x: x * ember.bernoulli(ember.full_like(x, 0.5)),
        lambda x: x + ember.randn(x.shape[1]) + ember.randn(x.shape[0], 1, dtype=ember.float64),
    ],
)
def test_compiled_random_equals_eager(fn):
    f = ember.compile(fn, fullgraph=True)
    rng = np.random.default_rng(0)
    for b in (3, 3, 5, 2):
        x = ember.tensor(rng.standard_normal((b, 4)).astype(np.float32))
        ember.manual_seed(b)
        want = fn(x)
        ember.manual_seed(b)
        got = f(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    exp = f.explain()
    assert exp.traces == 1 and exp.eager_signatures == 0, str(exp)
    assert "random" in _graph_prims(f)


def test_generator_objects_are_graph_seed_sources():
    g = ember.Generator().manual_seed(5)
    f = ember.compile(lambda x: x + ember.randn(x.shape, generator=g), fullgraph=True)
    x = ember.zeros(2, 3)
    got = [f(x).numpy() for _ in range(3)]
    g.manual_seed(5)
    want = [(x + ember.randn(2, 3, generator=g)).numpy() for _ in range(3)]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(got[0], got[1])


def test_manual_seed_reproducible_and_generators_independent():
    ember.manual_seed(7)
    a = (
        ember.rand(3, 4),
        ember.randn(5),
        ember.randint(0, 9, (6,)),
        ember.bernoulli(ember.rand(4)),
    )
    ember.manual_seed(7)
    b = (
        ember.rand(3, 4),
        ember.randn(5),
        ember.randint(0, 9, (6,)),
        ember.bernoulli(ember.rand(4)),
    )
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    g1, g2 = ember.Generator().manual_seed(1), ember.Generator().manual_seed(1)
    ember.randn(3)  # the default generator's draws do not move g1/g2
    np.testing.assert_array_equal(
        ember.randn(4, generator=g1).numpy(), ember.randn(4, generator=g2).numpy()
    )


def test_distributions_match_torch_statistics():
    ember.manual_seed(0)
    torch.manual_seed(0)
    n = 20000
    cases = [
        (ember.rand(n), torch.rand(n)),
        (ember.randn(n), torch.randn(n)),
        (ember.normal(1.5, 0.5, size=(n,)), torch.normal(1.5, 0.5, size=(n,))),
        (ember.randint(-3, 4, (n,)).double(), torch.randint(-3, 4, (n,)).double()),
        (ember.bernoulli(ember.full((n,), 0.3)), torch.bernoulli(torch.full((n,), 0.3))),
    ]
    for e, t in cases:
        e, t = e.numpy().astype(np.float64), t.numpy().astype(np.float64)
        assert e.min() >= t.min() - 1.0 and e.max() <= t.max() + 1.0
        np.testing.assert_allclose(e.mean(), t.mean(), atol=0.05)
        np.testing.assert_allclose(e.std(), t.std(), rtol=0.05)
    r = ember.randint(-3, 4, (n,)).numpy()
    assert set(np.unique(r).tolist()) == set(range(-3, 4))
    u = ember.rand(n).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0


def test_dtypes_shapes_and_flags_as_torch():
    pairs = [
        (ember.rand(2, 3, dtype=ember.float64), torch.rand(2, 3, dtype=torch.float64)),
        (ember.randn((4,)), torch.randn((4,))),
        (ember.randint(5, (2, 2)), torch.randint(5, (2, 2))),
        (
            ember.randint(0, 5, (3,), dtype=ember.float32),
            torch.randint(0, 5, (3,), dtype=torch.float32),
        ),
        (
            ember.randn_like(ember.zeros(2, dtype=ember.float64)),
            torch.randn_like(torch.zeros(2, dtype=torch.float64)),
        ),
        (
            ember.randint_like(ember.zeros(3, dtype=ember.int32), 4),
            torch.randint_like(torch.zeros(3, dtype=torch.int32), 4),
        ),
        (
            ember.normal(ember.zeros(2, 1), ember.ones(3)),
            torch.normal(torch.zeros(2, 1), torch.ones(3)),
        ),
        (
            ember.normal(0.0, ember.ones(3, dtype=ember.float64)),
            torch.normal(0.0, torch.ones(3, dtype=torch.float64)),
        ),
        (
            ember.bernoulli(ember.full((2,), 0.5, dtype=ember.float64)),
            torch.bernoulli(torch.full((2,), 0.5, dtype=torch.float64)),
        ),
        (ember.rand(0, 3), torch.rand(0, 3)),
    ]
    for e, t in pairs:
        assert tuple(e.shape) == tuple(t.shape)
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    w = ember.randn(2, 2, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    w.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((2, 2), np.float32))
    assert ember.rand(3, device="cpu").shape == (3,)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="negative dimension"):
        ember.randn(-1, 2)
    with pytest.raises(ValueError, match="low"):
        ember.randint(3, 3, (2,))
    with pytest.raises(TypeError, match="floating-point"):
        ember.rand(2, dtype=ember.int64)
    with pytest.raises(ValueError, match="std >= 0"):
        ember.normal(0.0, -1.0, size=(2,))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ember.bernoulli(ember.tensor([1.5]))
    with pytest.raises(ValueError, match="unknown distribution"):
        bind(
            random_p,
            (),
            {
                "seed": 1,
                "shape": (2,),
                "dtype": np.dtype(np.float32),
                "dist": "gamma",
                "a": 0.0,
                "b": 1.0,
            },
        )


def test_primitive_is_a_function_of_its_seed():
    p = {"shape": (3, 4), "dtype": np.dtype(np.float32), "dist": "normal", "a": 0.0, "b": 1.0}
    a = bind(random_p, (), {"seed": 11, **p}).numpy()
    b = bind(random_p, (), {"seed": 11, **p}).numpy()
    c = bind(random_p, (), {"seed": 12, **p}).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    want = np.random.Generator(np.random.Philox(key=11)).standard_normal((3, 4), np.float32)
    np.testing.assert_array_equal(a, want)


def test_numpy_generators_are_accepted():
    import numpy as np

    a = ember.randn(3, generator=np.random.default_rng(0))
    b = ember.randn(3, generator=np.random.default_rng(0))
    assert a.tolist() == b.tolist()
    x = ember.empty(4).uniform_(generator=np.random.default_rng(1))
    assert bool(((x >= 0) & (x < 1)).all())
    assert sorted(ember.randperm(5, generator=np.random.default_rng(2)).tolist()) == [0, 1, 2, 3, 4]
    probs = ember.tensor([0.0, 1.0])
    assert ember.multinomial(probs, 1, generator=np.random.default_rng(3)).tolist() == [1]
    import pytest

    with pytest.raises(TypeError, match="generator must be"):
        ember.randn(2, generator=5)
