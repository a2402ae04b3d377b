"""A compiled training step across checkpoint restores: ``load_state_dict`` of the model and
the optimizer mid-training, a learning rate set by hand, ``add_param_group`` (fine-tuning a
frozen layer later), restoring the best weights (early stopping); equal to eager, and
``explain`` names why a graph was retraced."""

import copy

import numpy as np

import ember

nn, F = ember.nn, ember.nn.functional


def _setup():
    ember.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    return m, ember.optim.Adam(m.parameters(), 1e-2)


def _data(n):
    rng = np.random.default_rng(0)
    return [
        (
            ember.from_numpy(rng.standard_normal((4 + i % 2, 3)).astype(np.float32)),
            ember.from_numpy(rng.standard_normal((4 + i % 2, 1)).astype(np.float32)),
        )
        for i in range(n)
    ]


def _step(m, o):
    def step(x, y):
        o.zero_grad()
        loss = F.mse_loss(m(x), y)
        loss.backward()
        o.step()
        return loss

    return step


def _run(compiled):
    m, o = _setup()
    step = _step(m, o)
    step = ember.compile(step) if compiled else step
    data = _data(12)
    losses = [step(x, y).item() for x, y in data[:4]]
    ck = {"m": copy.deepcopy(m.state_dict()), "o": copy.deepcopy(o.state_dict())}
    losses += [step(x, y).item() for x, y in data[4:8]]
    m.load_state_dict(ck["m"])
    o.load_state_dict(ck["o"])
    losses += [step(x, y).item() for x, y in data[8:12]]
    for g in o.param_groups:
        g["lr"] = 0.05
    losses += [step(x, y).item() for x, y in data[:3]]
    return losses, [p.detach().numpy().copy() for p in m.parameters()], step


def test_restoring_model_and_optimizer_mid_training_equals_eager():
    want, wp, _ = _run(False)
    got, gp, step = _run(True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for a, b in zip(gp, wp):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    info = ember.compile.explain(step)
    assert info.traces == 2, str(info)
    assert "param groups were replaced" in str(info)


def test_add_param_group_after_compiling_trains_the_new_group():
    def run(compiled):
        ember.manual_seed(1)
        body, head = nn.Linear(3, 4), nn.Linear(4, 1)
        for p in body.parameters():
            p.requires_grad_(False)
        o = ember.optim.SGD(head.parameters(), lr=0.1)

        def step(x, y):
            o.zero_grad()
            loss = F.mse_loss(head(body(x).relu()), y)
            loss.backward()
            o.step()
            return loss

        f = ember.compile(step) if compiled else step
        data = _data(6)
        out = [f(x, y).item() for x, y in data[:3]]
        for p in body.parameters():  # unfreeze and train it too, at a smaller lr
            p.requires_grad_(True)
        o.add_param_group({"params": list(body.parameters()), "lr": 0.01})
        out += [f(x, y).item() for x, y in data[3:]]
        return out, body.weight.detach().numpy().copy()

    (a, wa), (b, wb) = run(False), run(True)
    np.testing.assert_allclose(b, a, rtol=1e-6)
    np.testing.assert_allclose(wb, wa, rtol=1e-6)


def test_early_stopping_restores_best_weights_between_compiled_steps():
    def run(compiled):
        m, o = _setup()
        f = ember.compile(_step(m, o)) if compiled else _step(m, o)
        best, best_loss, out = None, float("inf"), []
        for i, (x, y) in enumerate(_data(8)):
            loss = f(x, y).item()
            out.append(loss)
            if loss < best_loss:
                best_loss, best = loss, copy.deepcopy(m.state_dict())
            if i == 5:
                m.load_state_dict(best)
        return out, [p.detach().numpy().copy() for p in m.parameters()]

    (a, pa), (b, pb) = run(False), run(True)
    np.testing.assert_allclose(b, a, rtol=1e-6)
    for p, q in zip(pb, pa):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)
