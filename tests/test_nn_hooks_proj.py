"""Full module backward hooks and ``nn.LSTM(proj_size=...)`` against PyTorch."""

import numpy as np
import pytest
import torch

import ember
from ember import nn


def _np(t):
    return None if t is None else t.detach().numpy().copy()


def _pair(seed=0):
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    em = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    em.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, em


X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def _run(m, lib, register, x_grad=True):
    seen = []
    handles = register(m, seen)
    x = lib.tensor(X, requires_grad=x_grad)
    (m(x) ** 2).sum().backward()
    grads = {n: _np(p.grad) for n, p in m.named_parameters()}
    return seen, grads, _np(x.grad) if x_grad else None, handles


def _both(register, x_grad=True):
    tm, em = _pair()
    return _run(tm, torch, register, x_grad), _run(em, ember, register, x_grad)


def _close(a, b):
    if a is None or b is None:
        assert a is None and b is None
        return
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _compare(t, e):
    (ts, tg, tx, _), (es, eg, ex, _) = t, e
    assert len(ts) == len(es) > 0
    for a, b in zip(ts, es):
        assert a[0] == b[0]
        for va, vb in zip(a[1:], b[1:]):
            assert len(va) == len(vb)
            for x, y in zip(va, vb):
                _close(x, y)
    assert tg.keys() == eg.keys()
    for k in tg:
        _close(tg[k], eg[k])
    _close(tx, ex)


def test_pre_hook_and_hook_values_and_replacements():
    def register(m, seen):
        def pre(mod, go):
            seen.append(("pre", [_np(g) for g in go]))
            return (go[0] * 2,)

        def hook(mod, gi, go):
            seen.append(("hook", [_np(g) for g in gi], [_np(g) for g in go]))
            return (gi[0] * -3,)

        return [m[1].register_full_backward_pre_hook(pre), m[1].register_full_backward_hook(hook)]

    t, e = _both(register)
    _compare(t, e)
    # the replacements reached the first layer's gradients
    _, plain = _both(lambda m, s: [])
    assert not np.allclose(e[1]["0.weight"], plain[1]["0.weight"])


def test_hook_order_prepend_and_removal():
    def register(m, seen):
        hs = []
        for name in ("a", "b"):
            hs.append(
                m[2].register_full_backward_hook(
                    lambda mod, gi, go, name=name: (
                        seen.append((name, [_np(g) for g in gi])),
                        (gi[0] * 2,),
                    )[1]
                )
            )
        hs.append(
            m[2].register_full_backward_hook(
                lambda mod, gi, go: seen.append(("first", [_np(g) for g in gi])), prepend=True
            )
        )
        hs.append(
            m[2].register_full_backward_pre_hook(
                lambda mod, go: seen.append(("p2", [_np(g) for g in go]))
            )
        )
        hs.append(
            m[2].register_full_backward_pre_hook(
                lambda mod, go: (seen.append(("p1", [_np(g) for g in go])), (go[0] + 1,))[1],
                prepend=True,
            )
        )
        return hs

    t, e = _both(register)
    assert [s[0] for s in e[0]] == ["p1", "p2", "first", "a", "b"]
    _compare(t, e)
    # hook b sees what hook a returned
    np.testing.assert_allclose(e[0][4][1][0], 2 * e[0][3][1][0], rtol=1e-6)
    # removal: no hook runs, the gradients are the plain ones
    _, em = _pair()
    seen: list = []
    for h in register(em, seen):
        h.remove()
    x = ember.tensor(X, requires_grad=True)
    (em(x) ** 2).sum().backward()
    _, plain = _both(lambda m, s: [])
    assert seen == []
    assert em[2]._backward_hooks == {} and em[2]._backward_pre_hooks == {}
    _close(_np(em[0].weight.grad), plain[1]["0.weight"])


def test_input_without_grad_gets_none():
    def register(m, seen):
        return [
            m[0].register_full_backward_hook(
                lambda mod, gi, go: seen.append(("h0", list(gi), [_np(g) for g in go]))
            ),
            m[0].register_full_backward_pre_hook(
                lambda mod, go: (seen.append(("p0", [_np(g) for g in go])), (go[0] * 0.5,))[1]
            ),
        ]

    t, e = _both(register, x_grad=False)
    assert e[0][1][1] == [None]
    _compare(t, e)


class _TwoOut:
    @staticmethod
    def make(lib):
        base = torch.nn.Module if lib is torch else nn.Module
        lin = torch.nn.Linear if lib is torch else nn.Linear

        class Split(base):
            def __init__(self):
                super().__init__()
                self.fc = lin(4, 6)

            def forward(self, x, scale, y):
                h = self.fc(x) * scale
                return h[:, :3], 7, h[:, 3:] * y

        return Split()


def test_tuple_outputs_and_non_tensor_args():
    results = []
    for lib in (torch, ember):
        torch.manual_seed(1)
        tm = _TwoOut.make(torch)
        m = tm if lib is torch else _TwoOut.make(lib)
        if lib is ember:
            m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
        seen = []
        m.register_full_backward_pre_hook(
            lambda mod, go, seen=seen: (
                seen.append(("pre", [_np(g) for g in go])),
                (go[0] * 3, None, go[2]),
            )[1]
        )
        m.register_full_backward_hook(
            lambda mod, gi, go, seen=seen: (
                seen.append(("hook", [_np(g) for g in gi], [_np(g) for g in go])),
                (gi[0] + 1, None, None),
            )[1]
        )
        x = lib.tensor(X, requires_grad=True)
        y = lib.tensor(np.full((3, 3), 0.5, np.float32), requires_grad=True)
        a, n, b = m(x, 2.0, y)
        assert n == 7
        ((a**2).sum() + (b**3).sum()).backward()
        results.append((seen, _np(m.fc.weight.grad), _np(x.grad), _np(y.grad)))
    (ts, tw, tx, ty), (es, ew, ex, ey) = results
    assert len(es[0][1]) == 3 and es[0][1][1] is None
    assert len(es[1][1]) == 3 and es[1][1][1] is None
    for a, b in zip(ts, es):
        for va, vb in zip(a[1:], b[1:]):
            for x, y in zip(va, vb):
                _close(x, y)
    _close(tw, ew)
    _close(tx, ex)
    assert ty is None and ey is None  # the hook replaced y's gradient by None


def test_module_used_twice():
    results = []
    for lib in (torch, ember):
        torch.manual_seed(2)
        tl = torch.nn.Linear(4, 4)
        m = tl if lib is torch else nn.Linear(4, 4)
        if lib is ember:
            m.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
        seen = []
        m.register_full_backward_hook(
            lambda mod, gi, go, seen=seen: (
                seen.append(([_np(g) for g in gi], [_np(g) for g in go])),
                (gi[0] * 2,),
            )[1]
        )
        x = lib.tensor(X, requires_grad=True)
        (m(m(x)) ** 2).sum().backward()
        results.append((seen, _np(m.weight.grad), _np(x.grad)))
    (ts, tw, tx), (es, ew, ex) = results
    assert len(ts) == len(es) == 2
    for a, b in zip(ts, es):
        for va, vb in zip(a, b):
            for x, y in zip(va, vb):
                _close(x, y)
    _close(tw, ew)
    _close(tx, ex)


def test_no_hooks_no_wrapping():
    m = nn.Linear(4, 2)
    h = m.register_full_backward_hook(lambda *a: None)
    h.remove()
    x = ember.tensor(X, requires_grad=True)
    out = m(x)
    assert type(out.grad_fn).__name__ != "_HookIdentityBackward"
    with ember.no_grad():
        m.register_full_backward_hook(lambda *a: None)
        assert m(x).requires_grad is False


# ----- LSTM proj_size -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "layers,bidirectional,batch_first,with_state,bias",
    [
        (1, False, False, False, True),
        (1, True, False, True, True),
        (2, False, True, True, False),
        (2, True, True, False, True),
        (2, True, False, True, True),
    ],
)
def test_lstm_proj_size(layers, bidirectional, batch_first, with_state, bias):
    H, P, I, T, B = 6, 3, 4, 5, 2
    torch.manual_seed(3)
    tm = torch.nn.LSTM(
        I,
        H,
        layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        proj_size=P,
    )
    em = nn.LSTM(
        I,
        H,
        layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        proj_size=P,
    )
    tsd = tm.state_dict()
    esd = em.state_dict()
    assert list(esd) == list(tsd)
    assert all(tuple(esd[k].shape) == tuple(v.shape) for k, v in tsd.items())
    assert "weight_hr_l0" in esd
    if bidirectional:
        assert "weight_hr_l0_reverse" in esd
    em.load_state_dict({k: v.numpy() for k, v in tsd.items()})
    rng = np.random.default_rng(4)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((layers * D, B, P)).astype(np.float32)
    c0 = rng.standard_normal((layers * D, B, H)).astype(np.float32)
    outs = []
    for lib, m in ((torch, tm), (ember, em)):
        xt = lib.tensor(x, requires_grad=True)
        st = (lib.tensor(h0, requires_grad=True), lib.tensor(c0, requires_grad=True))
        out, (h, c) = m(xt, st) if with_state else m(xt)
        w = lib.tensor(np.linspace(-1, 1, out.shape[-1], dtype=np.float32))
        ((out * w).sum() + (h**2).sum() + 0.5 * (c**2).sum()).backward()
        grads = {n: _np(p.grad) for n, p in m.named_parameters()}
        sg = [_np(s.grad) for s in st] if with_state else [None, None]
        outs.append((_np(out), _np(h), _np(c), _np(xt.grad), sg, grads))
    (to, th, tc, tx, tsg, tg), (eo, eh, ec, ex, esg, eg) = outs
    shape_out = (B, T, D * P) if batch_first else (T, B, D * P)
    assert eo.shape == shape_out and eh.shape == (layers * D, B, P)
    assert ec.shape == (layers * D, B, H)
    for a, b in [(to, eo), (th, eh), (tc, ec), (tx, ex), *zip(tsg, esg)]:
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    assert tg.keys() == eg.keys()
    for k in tg:
        np.testing.assert_allclose(eg[k], tg[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_lstm_proj_size_errors_and_unbatched():
    with pytest.raises(ValueError):
        nn.LSTM(4, 3, proj_size=3)
    with pytest.raises(ValueError):
        nn.RNNBase("GRU", 4, 6, proj_size=2)
    torch.manual_seed(5)
    tm = torch.nn.LSTM(4, 6, proj_size=2)
    em = nn.LSTM(4, 6, proj_size=2)
    em.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(6).standard_normal((5, 4)).astype(np.float32)
    to, (th, tc) = tm(torch.tensor(x))
    eo, (eh, ec) = em(ember.tensor(x))
    assert tuple(eh.shape) == (1, 2) and tuple(ec.shape) == (1, 6)
    np.testing.assert_allclose(_np(eo), _np(to), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(eh), _np(th), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(ec), _np(tc), rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError):
        em(ember.tensor(x), (ember.zeros(1, 6), ember.zeros(1, 6)))
