"""``ember.compile(module)`` returns an ``OptimizedModule`` (an ``nn.Module`` holding the
original as ``_orig_mod``), checked against ``torch.compile``'s ``OptimizedModule``
(``backend="eager"``): names, state dicts, modes, attribute forwarding, nesting, hooks,
optimizers and saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember import nn

RTOL, ATOL = 1e-5, 1e-6


def _pair(build):
    """The same module in ember and torch (torch's weights copied into ember's)."""
    torch.manual_seed(0)
    t = build(torch.nn)
    e = build(nn)
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return e, t


def _mlp(lib):
    return lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.Dropout(0.5), lib.Linear(4, 2))


def _close(e, t):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=RTOL, atol=ATOL)


def _tc(m):
    return torch.compile(m, backend="eager")


def _x(n=5):
    a = np.random.default_rng(1).standard_normal((n, 3)).astype(np.float32)
    return ember.tensor(a), torch.tensor(a)


def test_is_a_module_holding_the_original():
    e, t = _pair(_mlp)
    ce, ct = ember.compile(e), _tc(t)
    assert isinstance(ce, nn.Module) and isinstance(ct, torch.nn.Module)
    assert ce._orig_mod is e and ct._orig_mod is t
    assert type(ce).__name__ == type(ct).__name__ == "OptimizedModule"
    assert isinstance(ce, ember.compiler.OptimizedModule)
    assert repr(ce) == repr(ct)
    assert repr(ce).startswith("OptimizedModule(\n  (_orig_mod): Sequential(")
    # functions still give a CompiledFunction
    assert isinstance(ember.compile(lambda x: x + 1), ember.compiler.CompiledFunction)


def test_parameters_names_and_state_dict_keys_are_prefixed():
    e, t = _pair(_mlp)
    ce, ct = ember.compile(e), _tc(t)
    assert [n for n, _ in ce.named_parameters()] == [n for n, _ in ct.named_parameters()]
    assert all(p is q for p, q in zip(ce.parameters(), e.parameters()))
    assert len(list(ce.parameters())) == len(list(e.parameters())) == 4
    assert list(ce.state_dict()) == list(ct.state_dict())
    assert [n for n, _ in ce.named_modules()] == [n for n, _ in ct.named_modules()]
    assert [type(m).__name__ for m in ce.modules()] == [type(m).__name__ for m in ct.modules()]
    assert [type(m).__name__ for m in ce.children()] == [type(m).__name__ for m in ct.children()]
    assert next(iter(ce.children())) is e


def test_load_state_dict_with_the_prefix():
    e, t = _pair(_mlp)
    ce, ct = ember.compile(e), _tc(t)
    torch.manual_seed(5)
    t2 = _tc(_mlp(torch.nn))
    sd = t2.state_dict()
    ct.load_state_dict(sd)
    res = ce.load_state_dict({k: ember.tensor(v.numpy()) for k, v in sd.items()})
    assert not res.missing_keys and not res.unexpected_keys
    ce.eval(), ct.eval()
    xe, xt = _x()
    _close(ce(xe), ct(xt))
    _close(e.state_dict()["0.weight"], t2._orig_mod.state_dict()["0.weight"])
    # keys without the prefix do not match (strict=False reports them, as torch)
    plain = dict(e.state_dict())
    re_ = ce.load_state_dict(plain, strict=False)
    rt = ct.load_state_dict(t.state_dict(), strict=False)
    assert sorted(re_.missing_keys) == sorted(rt.missing_keys)
    assert sorted(re_.unexpected_keys) == sorted(rt.unexpected_keys)
    with pytest.raises(RuntimeError):
        ct.load_state_dict(t.state_dict())
    with pytest.raises(RuntimeError, match="_orig_mod"):
        ce.load_state_dict(plain)


def test_train_eval_return_the_wrapper_and_flip_the_original():
    e, t = _pair(lambda lib: lib.Sequential(lib.Linear(3, 4), lib.BatchNorm1d(4)))
    ce, ct = ember.compile(e), _tc(t)
    xe, xt = _x(6)
    for mode in ("train", "eval", "train", "eval"):
        assert getattr(ce, mode)() is ce and getattr(ct, mode)() is ct
        assert ce.training == ct.training == e.training == t.training == e[1].training
        _close(ce(xe), ct(xt))
        _close(e[1].running_mean, t[1].running_mean)
    ce.train(True)
    assert e.training and e[1].training
    assert ce.explain().traces >= 2  # the training flag is guarded: eval retraced
    with pytest.raises(ValueError, match="boolean"):
        ce.train("yes")


def test_dropout_follows_the_mode_through_the_wrapper():
    ember.manual_seed(0)
    e = _mlp(nn)
    ce = ember.compile(e)
    xe, _ = _x()
    ce.eval()
    _close(ce(xe), e(xe))
    ce.train()
    ember.manual_seed(3)
    a = e(xe)
    ember.manual_seed(3)
    _close(ce(xe), a)


def test_attribute_reads_and_writes_go_to_the_original():
    class Net:
        def __init__(self, lib):
            self.lib = lib

        def build(self):
            lib = self.lib

            class M(lib.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = lib.Linear(3, 2)
                    self.scale = 2.0

                def forward(self, x):
                    return self.fc(x) * self.scale

            return M()

    torch.manual_seed(0)
    t = Net(torch.nn).build()
    e = Net(nn).build()
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    ce, ct = ember.compile(e), _tc(t)
    assert ce.fc is e.fc and ct.fc is t.fc
    assert ce.scale == ct.scale == 2.0
    xe, xt = _x()
    _close(ce(xe), ct(xt))
    ce.scale, ct.scale = 3.0, 3.0  # written on the original: the compiled forward retraces
    assert e.scale == t.scale == 3.0
    assert "scale" not in ce.__dict__ and "scale" not in ct.__dict__
    _close(ce(xe), ct(xt))
    ce.head, ct.head = nn.Linear(2, 2), torch.nn.Linear(2, 2)  # registered in the original
    assert ce.head is e.head and ct.head is t.head
    assert [n for n, _ in ce.named_parameters()] == [n for n, _ in ct.named_parameters()]
    del ce.head, ct.head
    assert not hasattr(e, "head") and not hasattr(t, "head")
    for c in (ce, ct):
        with pytest.raises(AttributeError, match="nothing"):
            _ = c.nothing
    assert "fc" in dir(ce) and "explain" in dir(ce)


def test_len_explain_graph_and_cache_reachable():
    e, t = _pair(_mlp)
    ce, ct = ember.compile(e), _tc(t)
    assert len(ce) == len(ct) == 4
    with pytest.raises(TypeError, match="len"):
        len(ember.compile(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="len"):
        len(_tc(torch.nn.Linear(2, 2)))
    xe, _ = _x()
    ce.eval()
    ce(xe)
    ce(_x(7)[0])
    assert ce.explain().traces == 1 and ember.compile.explain(ce).calls == 2
    assert len(ce.cache) == 1 and ce.events
    assert ce.graph(xe).primitives().count("linear") == 2


def test_as_a_child_of_sequential_and_assigned_submodule():
    def build(lib, comp):
        class Enc(lib.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.Linear(3, 4)

            def forward(self, x):
                return self.fc(x).tanh()

        class Outer(lib.Module):
            def __init__(self):
                super().__init__()
                self.enc = comp(Enc())
                self.head = lib.Sequential(comp(lib.Linear(4, 2)), lib.ReLU())

            def forward(self, x):
                return self.head(self.enc(x))

        return Outer()

    torch.manual_seed(0)
    t = build(torch.nn, _tc)
    e = build(nn, ember.compile)
    assert [n for n, _ in e.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert "enc._orig_mod.fc.weight" in dict(e.named_parameters())
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    xe, xt = _x()
    # eagerly, then the outer module compiled too (the inner ones are inlined in its trace)
    for me, mt in ((e, t), (ember.compile(e), _tc(t))):
        ye, yt = me(xe), mt(xt)
        _close(ye, yt)
        ye.sum().backward()
        yt.sum().backward()
        for p, q in zip(e.parameters(), t.parameters()):
            _close(p.grad, q.grad)
        me.zero_grad(), mt.zero_grad()
        assert all(p.grad is None for p in e.parameters())


def test_optimizer_on_compiled_parameters_trains_the_original():
    e, t = _pair(lambda lib: lib.Sequential(lib.Linear(3, 4), lib.Tanh(), lib.Linear(4, 1)))
    ce, ct = ember.compile(e), _tc(t)
    oe = ember.optim.SGD(ce.parameters(), lr=0.1, momentum=0.9)
    ot = torch.optim.SGD(ct.parameters(), lr=0.1, momentum=0.9)
    xe, xt = _x(8)
    for _ in range(3):
        oe.zero_grad(), ot.zero_grad()
        le, lt = (ce(xe) ** 2).mean(), (ct(xt) ** 2).mean()
        le.backward(), lt.backward()
        oe.step(), ot.step()
        _close(le, lt)
    for p, q in zip(e.parameters(), t.parameters()):
        _close(p, q)


def test_hooks_on_the_wrapper_run_around_the_compiled_forward():
    e, t = _pair(lambda lib: lib.Linear(3, 2))
    ce, ct = ember.compile(e), _tc(t)
    seen: dict[str, list] = {"e": [], "t": []}
    for key, c in (("e", ce), ("t", ct)):
        c.register_forward_pre_hook(lambda m, args, k=key: (seen[k].append(m), (args[0] * 2,))[1])
        c.register_forward_hook(lambda m, args, out: out + 1)
    xe, xt = _x()
    for _ in range(2):
        _close(ce(xe), ct(xt))
    assert len(seen["e"]) == len(seen["t"]) == 2
    assert seen["e"][0] is ce and seen["t"][0] is ct
    assert ce.explain().eager_signatures == 0  # the original is hook-free: compiled


def test_to_dtype_and_requires_grad_return_the_wrapper():
    e, t = _pair(lambda lib: lib.Linear(3, 2))
    ce, ct = ember.compile(e), _tc(t)
    assert ce.to(ember.float64) is ce and ct.to(torch.float64) is ct
    assert e.weight.dtype == ember.float64 and t.weight.dtype == torch.float64
    xe, xt = _x()
    _close(ce(xe.double()), ct(xt.double()))
    assert ce.double() is ce and ce.requires_grad_(False) is ce
    assert not e.weight.requires_grad


def test_save_and_load_of_its_state_dict(tmp_path):
    ember.manual_seed(0)
    ce = ember.compile(_mlp(nn))
    path = str(tmp_path / "c.ember")
    ember.save(ce.state_dict(), path)
    ember.manual_seed(1)
    other = ember.compile(_mlp(nn))
    other.load_state_dict(ember.load(path))
    ce.eval(), other.eval()
    xe, _ = _x()
    _close(other(xe), ce(xe))
    assert list(ember.load(path)) == list(_tc(_mlp(torch.nn)).state_dict())


def test_bad_input():
    with pytest.raises(TypeError, match="Module"):
        ember.compiler.OptimizedModule(lambda x: x, None)
    with pytest.raises(TypeError, match="ember.compile"):
        ember.compile.explain(nn.Linear(2, 2))
    with pytest.raises(AttributeError, match="missing"):
        del ember.compile(nn.Linear(2, 2)).missing
