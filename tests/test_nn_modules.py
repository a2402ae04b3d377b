"""The Module contract: registration, traversal, state dicts, hooks, dtype casts,
containers, init distributions and a PyTorch script that runs unchanged."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from _nn_parity import needs_F

import ember
from ember import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(3, 2))
        self.register_buffer("scratch", ember.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(self.bn(self.fc(x)))


class TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 2))

    def forward(self, x):
        return self.head(self.bn(self.fc(x)))


@needs_F("linear", "relu", "dropout", "softmax")
def test_seed_pytorch_script_runs_unchanged():
    import ember as torch_  # the script's `import torch`

    nn_ = nn

    class SimpleNN(nn_.Module):
        def __init__(self):
            super(SimpleNN, self).__init__()  # noqa: UP008
            self.fc1 = nn_.Linear(784, 128)
            self.relu = nn_.ReLU()
            self.dropout = nn_.Dropout(0.2)
            self.fc2 = nn_.Linear(128, 10)
            self.softmax = nn_.Softmax(dim=1)

        def forward(self, x):
            return self.softmax(self.fc2(self.dropout(self.relu(self.fc1(x)))))

    model = SimpleNN()
    text = repr(model)
    assert text == (
        "SimpleNN(\n"
        "  (fc1): Linear(in_features=784, out_features=128, bias=True)\n"
        "  (relu): ReLU()\n"
        "  (dropout): Dropout(p=0.2, inplace=False)\n"
        "  (fc2): Linear(in_features=128, out_features=10, bias=True)\n"
        "  (softmax): Softmax(dim=1)\n"
        ")"
    )
    out = model(torch_.randn(4, 784))
    assert tuple(out.shape) == (4, 10)
    np.testing.assert_allclose(out.detach().numpy().sum(1), 1.0, rtol=1e-5)
    out.sum().backward()
    assert model.fc1.weight.grad is not None


def test_registration_and_traversal():
    m = Net()
    assert [n for n, _ in m.named_parameters()] == [
        "fc.weight",
        "fc.bias",
        "bn.weight",
        "bn.bias",
        "head.1.weight",
        "head.1.bias",
    ]
    assert [n for n, _ in m.named_buffers()] == [
        "scratch",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert [n for n, _ in m.named_children()] == ["fc", "bn", "head"]
    assert [n for n, _ in m.named_modules()] == ["", "fc", "bn", "head", "head.0", "head.1"]
    assert len(list(m.parameters(recurse=False))) == 0
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())
    # shared modules/params are reported once
    m.alias = m.fc
    assert len(list(m.parameters())) == 6
    assert len(list(m.named_parameters(remove_duplicate=False))) == 8
    del m.alias
    assert "alias" not in m._modules
    # reassigning a plain attribute over a parameter is an error
    with pytest.raises(TypeError):
        m.fc.weight = ember.zeros(3, 4)
    m.fc.weight = nn.Parameter(ember.zeros(3, 4))
    assert float(m.fc.weight.sum()) == 0
    m.fc.bias = None
    assert [n for n, _ in m.fc.named_parameters()] == ["weight"]


def test_parameter_shares_data_and_repr():
    t = ember.ones(3)
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf
    assert p.data_ptr() == t.data_ptr()
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    import copy

    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.data_ptr() != p.data_ptr()


def test_state_dict_names_match_torch_and_roundtrip():
    e, t = Net(), TNet()
    sd = t.state_dict()
    assert list(e.state_dict()) == list(sd)  # non-persistent buffer excluded
    assert isinstance(e.state_dict(), OrderedDict)
    r = e.load_state_dict(sd)
    assert r.missing_keys == [] and r.unexpected_keys == []
    np.testing.assert_array_equal(e.fc.weight.detach().numpy(), sd["fc.weight"].numpy())
    # numpy values, and ember tensors
    e2 = Net()
    e2.load_state_dict({k: v.numpy() for k, v in sd.items()})
    e3 = Net()
    e3.load_state_dict(e2.state_dict())
    np.testing.assert_array_equal(e3.head[1].bias.detach().numpy(), sd["head.1.bias"].numpy())
    # state_dict values are detached; keep_vars returns the Parameters
    assert not e.state_dict()["fc.weight"].requires_grad
    assert e.state_dict(keep_vars=True)["fc.weight"] is e.fc.weight


def test_load_state_dict_errors_and_non_strict():
    e = Net()
    sd = dict(e.state_dict())
    del sd["fc.bias"]
    sd["extra.weight"] = ember.zeros(1)
    sd["fc.weight"] = ember.zeros(5, 4)
    with pytest.raises(RuntimeError) as exc:
        e.load_state_dict(sd)
    msg = str(exc.value)
    assert 'Missing key(s) in state_dict: "fc.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert (
        "size mismatch for fc.weight: copying a param with shape (5, 4) "
        "from checkpoint, the shape in current model is (3, 4)"
    ) in msg
    sd["fc.weight"] = ember.zeros(3, 4)
    r = e.load_state_dict(sd, strict=False)
    assert r.missing_keys == ["fc.bias"] and r.unexpected_keys == ["extra.weight"]


def test_load_keeps_parameter_identity_and_assign():
    e = Net()
    w = e.fc.weight
    version = w._version[0]
    e.load_state_dict(TNet().state_dict())
    assert e.fc.weight is w and w._version[0] > version
    e.load_state_dict(TNet().state_dict(), assign=True)
    assert e.fc.weight is not w and isinstance(e.fc.weight, nn.Parameter)


@needs_F("linear", "relu", "batch_norm")
def test_forward_matches_torch_after_load():
    e, t = Net(), TNet()
    e.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for mode in (True, False):
        e.train(mode)
        t.train(mode)
        np.testing.assert_allclose(
            e(ember.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), atol=1e-5
        )
    np.testing.assert_allclose(e.bn.running_mean.numpy(), t.bn.running_mean.numpy(), atol=1e-6)


def test_train_eval_zero_grad_requires_grad():
    m = Net()
    assert m.training and m.head[1].training
    m.eval()
    assert not m.training and not m.head[1].training
    for p in m.parameters():
        p.grad = ember.ones(p.shape)
    m.zero_grad(set_to_none=False)
    assert all(float(p.grad.sum()) == 0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_to_dtype_keeps_parameter_identity():
    m = Net()
    w = m.fc.weight
    m.double()
    assert m.fc.weight is w and w.dtype == ember.float64
    assert m.bn.running_mean.dtype == ember.float64
    assert m.bn.num_batches_tracked.dtype == ember.int64
    m.to(ember.float32)
    assert w.dtype == ember.float32
    m.half().float().cpu()
    assert m.to("cpu") is m


@needs_F("linear", "relu", "batch_norm")
def test_forward_hooks_and_handles():
    m = Net()
    seen = []
    h1 = m.fc.register_forward_pre_hook(lambda mod, args: seen.append("pre"))
    h2 = m.fc.register_forward_hook(lambda mod, args, out: out * 0)
    out = m.fc(ember.randn(2, 4))
    assert seen == ["pre"] and float(out.abs().sum()) == 0
    h1.remove()
    h2.remove()
    out = m.fc(ember.randn(2, 4))
    assert seen == ["pre"] and float(out.abs().sum()) > 0


def test_apply_and_repr():
    m = Net()
    names = []
    m.apply(lambda mod: names.append(type(mod).__name__))
    assert names[-1] == "Net" and names.count("Linear") == 2
    assert repr(m) == (
        "Net(\n  (fc): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (bn): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)\n  (head): Sequential(\n    (0): ReLU()\n"
        "    (1): Linear(in_features=3, out_features=2, bias=True)\n  )\n)"
    )


def test_containers():
    seq = nn.Sequential(nn.Identity(), nn.Tanh(), nn.Identity())
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh) and isinstance(seq[-1], nn.Identity)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    seq.append(nn.ReLU())
    assert [type(m).__name__ for m in seq] == ["Identity", "Tanh", "Identity", "ReLU"]
    del seq[0]
    assert list(seq._modules) == ["0", "1", "2"]
    od = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())]))
    assert list(od.state_dict()) == ["a.weight", "a.bias"] and od.a is od[0]
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 3 and list(ml.state_dict())[-1] == "2.bias"
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.Linear(1, 2)
    assert list(md.keys()) == ["x", "y"] and "y.weight" in md.state_dict()
    pl = nn.ParameterList([nn.Parameter(ember.zeros(2)), ember.ones(1)])
    assert len(pl) == 2 and [n for n, _ in pl.named_parameters()] == ["0", "1"]
    pd = nn.ParameterDict({"a": nn.Parameter(ember.zeros(1))})
    assert list(pd.state_dict()) == ["a"]
    tl = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    assert list(tl.state_dict()) == list(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).state_dict())


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_default_init_distribution_matches_torch(kind):
    ember.manual_seed(0)
    torch.manual_seed(0)
    if kind == "linear":
        e, t = nn.Linear(256, 128), torch.nn.Linear(256, 128)
    else:
        e, t = nn.Conv2d(16, 32, 3), torch.nn.Conv2d(16, 32, 3)
    for name in ("weight", "bias"):
        ea = getattr(e, name).detach().numpy()
        ta = getattr(t, name).detach().numpy()
        bound = 1 / np.sqrt(ta[0].size if name == "weight" else t.weight[0].numel())
        assert np.abs(ea).max() <= bound + 1e-7
        assert abs(ea.std() - ta.std()) < 0.1 * ta.std()
        assert abs(ea.mean()) < 0.2 * bound


def test_init_functions():
    w = ember.empty(200, 100)
    nn.init.xavier_uniform_(w)
    assert abs(w.numpy().std() - np.sqrt(2 / 300)) < 0.01
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 200)) < 0.01
    nn.init.trunc_normal_(w, std=1.0, a=-1.0, b=1.0)
    assert w.numpy().min() >= -1 and w.numpy().max() <= 1
    nn.init.orthogonal_(w)
    np.testing.assert_allclose(w.numpy().T @ w.numpy(), np.eye(100), atol=1e-4)
    nn.init.eye_(w)
    assert float(w.sum()) == 100
    nn.init.constant_(w, 0.5)
    assert float(w.mean()) == 0.5
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )
    assert nn.init._calculate_fan_in_and_fan_out(ember.empty(8, 4, 3, 3)) == (36, 72)
    p = nn.Parameter(ember.zeros(3, 3))
    nn.init.normal_(p)  # works on leaf parameters (no_grad inside)
    assert p.requires_grad and p.grad_fn is None
    ember.manual_seed(5)
    a = nn.init.uniform_(ember.empty(4)).numpy().copy()
    ember.manual_seed(5)
    np.testing.assert_array_equal(nn.init.uniform_(ember.empty(4)).numpy(), a)
