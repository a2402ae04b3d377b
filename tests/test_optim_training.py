"""End to end: import PyTorch weights through a safetensors file, then train both frameworks
for 50 steps with each optimizer (and a schedule and gradient clipping) and compare."""

import numpy as np
import pytest
import torch

import ember

nn = pytest.importorskip("ember.nn")
if not hasattr(nn, "Linear"):  # pragma: no cover
    pytest.skip("ember.nn.Linear not available yet", allow_module_level=True)


def _models(tmp_path):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    from safetensors.torch import save_file

    path = tmp_path / "torch_weights.safetensors"
    save_file(tm.state_dict(), str(path))
    em = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    em.load_state_dict(ember.load(path))
    for (kn, ep), (tn, tp) in zip(em.state_dict().items(), tm.state_dict().items()):
        assert kn == tn
        np.testing.assert_array_equal(ep.detach().numpy(), tp.numpy())
    return em, tm


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
        ("Adam", {"lr": 1e-2, "amsgrad": True}),
        ("AdamW", {"lr": 1e-2, "weight_decay": 0.05}),
        ("RMSprop", {"lr": 1e-3, "momentum": 0.5, "centered": True}),
        ("Adagrad", {"lr": 0.05, "lr_decay": 1e-3}),
    ],
)
def test_fifty_training_steps_match_torch(tmp_path, name, kw):
    em, tm = _models(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 6)).astype(np.float32)
    Y = rng.standard_normal((32, 3)).astype(np.float32)
    eo = getattr(ember.optim, name)(em.parameters(), **kw)
    to = getattr(torch.optim, name)(tm.parameters(), **kw)
    es = ember.optim.lr_scheduler.CosineAnnealingLR(eo, T_max=50)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(to, T_max=50)
    ex, ey, tx, ty = ember.tensor(X), ember.tensor(Y), torch.tensor(X), torch.tensor(Y)
    for _ in range(50):
        eo.zero_grad()
        to.zero_grad()
        el = ((em(ex) - ey) ** 2).mean()
        tl = ((tm(tx) - ty) ** 2).mean()
        el.backward()
        tl.backward()
        en = ember.nn.utils.clip_grad_norm_(em.parameters(), 1.0)
        tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        np.testing.assert_allclose(float(en), float(tn), rtol=1e-5)
        eo.step()
        to.step()
        es.step()
        ts.step()
    np.testing.assert_allclose(float(el), float(tl.detach()), rtol=1e-5)
    for ep, tp in zip(em.parameters(), tm.parameters()):
        np.testing.assert_allclose(ep.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_checkpoint_resume_is_identical(tmp_path):
    em, _ = _models(tmp_path)
    rng = np.random.default_rng(1)
    X = ember.tensor(rng.standard_normal((16, 6)).astype(np.float32))
    opt = ember.optim.Adam(em.parameters(), lr=1e-2)

    def run(model, o, n):
        for _ in range(n):
            o.zero_grad()
            (model(X) ** 2).mean().backward()
            o.step()

    run(em, opt, 5)
    ember.save(
        {"model": em.state_dict(), "optim": opt.state_dict(), "epoch": 5},
        tmp_path / "ckpt.safetensors",
    )
    run(em, opt, 5)
    em2, _ = _models(tmp_path)
    opt2 = ember.optim.Adam(em2.parameters(), lr=1e-2)
    ck = ember.load(tmp_path / "ckpt.safetensors")
    em2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optim"])
    assert ck["epoch"] == 5
    run(em2, opt2, 5)
    for a, b in zip(em.parameters(), em2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
