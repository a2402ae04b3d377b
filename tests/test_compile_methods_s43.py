"""``@ember.compile`` on methods: a trainer class's ``step``, a Module's ``forward``.

As with ``torch.compile``, decorating a method in a class body compiles it for every
instance: each instance gets its own compiled bound method (its own cache and ``explain()``),
trained results equal the eager method's, copies compile afresh against their own tensors.
"""

import copy

import numpy as np

import ember

nn, F = ember.nn, ember.nn.functional


def _np(t):
    return t.detach().numpy()


class Trainer:
    def __init__(self, seed):
        ember.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        self.opt = ember.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)

    def eager_step(self, x, y):
        self.opt.zero_grad()
        loss = F.mse_loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    @ember.compile
    def step(self, x, y):
        self.opt.zero_grad()
        loss = F.mse_loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


class CompiledForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 6)
        self.b = nn.Linear(6, 2)

    @ember.compile
    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class StrictForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 2)

    @ember.compile(fullgraph=True)
    def forward(self, x):
        return self.a(x).tanh()


def _batches(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = 4 + i % 3
        x = rng.standard_normal((b, 3)).astype(np.float32)
        y = rng.standard_normal((b, 1)).astype(np.float32)
        out.append((ember.from_numpy(x), ember.from_numpy(y)))
    return out


def test_decorated_method_trains_like_the_eager_method():
    compiled, eager = Trainer(0), Trainer(0)
    for x, y in _batches(9):
        want = eager.eager_step(x, y).item()
        got = compiled.step(x, y).item()
        np.testing.assert_allclose(got, want, rtol=1e-5)
    for p, q in zip(compiled.model.parameters(), eager.model.parameters()):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-5, atol=1e-6)
    info = ember.compile.explain(compiled.step)
    assert info.traces == 1  # three batch sizes, one symbolic graph
    assert info.calls == 9


def test_each_instance_has_its_own_compiled_method():
    t1, t2 = Trainer(1), Trainer(2)
    assert t1.step is t1.step  # the same compiled bound method on every access
    assert t1.step is not t2.step
    x, y = _batches(1)[0]
    before = [_np(p).copy() for p in t2.model.parameters()]
    t1.step(x, y)
    for p, q in zip(t2.model.parameters(), before):  # t2's weights untouched by t1's step
        np.testing.assert_array_equal(_np(p), q)
    t2.step(x, y)
    assert ember.compile.explain(t1.step).calls == 1
    assert ember.compile.explain(t2.step).calls == 1


def test_class_attribute_is_the_compiled_function():
    assert isinstance(Trainer.__dict__["step"], ember.compiler.CompiledFunction)
    assert Trainer.step is Trainer.__dict__["step"]  # accessed on the class: unbound


def test_compiled_forward_of_a_module():
    ember.manual_seed(3)
    m = CompiledForward()
    x = ember.randn(5, 4)
    want = m.b(F.relu(m.a(x)))
    np.testing.assert_allclose(_np(m(x)), _np(want), rtol=1e-6)
    # training through the compiled forward: gradients equal the eager ones
    y = ember.randn(5, 2)
    F.mse_loss(m(x), y).backward()
    got = [_np(p.grad).copy() for p in m.parameters()]
    m.zero_grad()
    F.mse_loss(m.b(F.relu(m.a(x))), y).backward()
    for g, p in zip(got, m.parameters()):
        np.testing.assert_allclose(g, _np(p.grad), rtol=1e-5, atol=1e-7)
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_deepcopy_of_a_module_with_compiled_forward_uses_its_own_weights():
    ember.manual_seed(4)
    m = CompiledForward()
    x = ember.randn(3, 4)
    m(x)
    c = copy.deepcopy(m)
    with ember.no_grad():
        c.a.weight.mul_(2.0)
    np.testing.assert_allclose(_np(c(x)), _np(c.b(F.relu(c.a(x)))), rtol=1e-6)
    assert not np.allclose(_np(c(x)), _np(m(x)))
    assert ember.compile.explain(c.forward).calls == 2  # a fresh cache for the copy


def test_fullgraph_method_raises_with_the_users_line():
    class Breaks(nn.Module):
        @ember.compile(fullgraph=True)
        def forward(self, x):
            if x.sum() > 0:  # a tensor value read in Python
                return x
            return -x

    m = Breaks()
    try:
        m(ember.ones(2))
    except Exception as exc:  # noqa: BLE001
        assert "test_compile_methods_s43.py" in str(exc)
    else:
        raise AssertionError("fullgraph=True did not raise on a graph break")
    assert StrictForward()(ember.ones(2, 4)).shape == (2, 2)


def test_slots_class_falls_back_to_one_shared_cache():
    class Scaler:
        __slots__ = ("k",)

        def __init__(self, k):
            self.k = k

        @ember.compile
        def apply(self, x):
            return x * self.k

    a, b = Scaler(2.0), Scaler(3.0)
    x = ember.ones(3)
    np.testing.assert_allclose(_np(a.apply(x)), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(_np(b.apply(x)), [3.0, 3.0, 3.0])
