"""Transfer-learning helpers: freeze/unfreeze by pattern, replace_head, param_groups; a
frozen backbone's gradients and updates match PyTorch's with the same requires_grad flags."""

import fnmatch

import numpy as np
import pytest
import torch

import ember
import ember.models as M
from tests import _zoo_torch_ref as R
from tests.test_models import _to_torch


def test_freeze_unfreeze_patterns():
    m = M.resnet18(num_classes=4)
    names = [n for n, _ in m.named_parameters()]
    frozen = M.freeze(m, ["conv1.*", "bn1.*", "layer[12].*"])
    want = [
        n
        for n in names
        if any(fnmatch.fnmatchcase(n, p) for p in ("conv1.*", "bn1.*", "layer[12].*"))
    ]
    assert frozen == want
    assert M.trainable_parameter_names(m) == [n for n in names if n not in want]
    assert M.unfreeze(m, "layer2.1.*") == [n for n in names if n.startswith("layer2.1.")]
    M.freeze(m)
    assert M.trainable_parameter_names(m) == []
    with pytest.raises(ValueError, match="pattern 'layer9.*' matches no parameter.*conv1.weight"):
        M.freeze(m, "layer9.*")
    with pytest.raises(TypeError, match="non-empty str"):
        M.unfreeze(m, [])
    with pytest.raises(TypeError, match="ember.nn.Module"):
        M.freeze(torch.nn.Linear(2, 2))


def test_frozen_backbone_step_matches_torch():
    ember.manual_seed(0)
    em = M.ResNet(M.BasicBlock, [1, 1, 1, 1], num_classes=3)  # small: the step is the point
    tm = _to_torch(em, R.TResNet(R.TBasic, [1] * 4, 3))
    M.freeze(em, "*")
    M.unfreeze(em, ["layer4.0.*", "fc.*"])
    for n, p in tm.named_parameters():
        p.requires_grad_(n.startswith(("layer4.0.", "fc.")))
    groups = M.param_groups(em, {"fc.*": {"lr": 0.1}}, lr=0.01)
    assert [len(g["params"]) for g in groups] == [2, 9]  # fc; layer4.0 with its downsample
    opt = ember.optim.SGD(groups, lr=0.5)
    tnamed = dict(tm.named_parameters())
    topt = torch.optim.SGD(
        [
            {"params": [tnamed["fc.weight"], tnamed["fc.bias"]], "lr": 0.1},
            {"params": [p for n, p in tnamed.items() if n.startswith("layer4.0.")], "lr": 0.01},
        ],
        lr=0.5,
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 3, 4)
    loss = ember.nn.functional.cross_entropy(em(ember.tensor(x)), ember.tensor(y))
    loss.backward()
    opt.step()
    tl = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    tl.backward()
    topt.step()
    emp = dict(em.named_parameters())
    assert emp["conv1.weight"].grad is None and emp["layer1.0.conv1.weight"].grad is None
    for name in ("fc.weight", "layer4.0.conv2.weight", "layer4.0.bn2.bias", "conv1.weight"):
        np.testing.assert_allclose(
            emp[name].detach().numpy(), tnamed[name].detach().numpy(), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize(
    "make, head",
    [
        (lambda: M.resnet18(num_classes=10), "fc"),
        (lambda: M.mobilenet_v2(num_classes=10), "classifier.1"),
        (lambda: M.googlenet(num_classes=10), "fc"),
        (lambda: M.lenet5(num_classes=10), None),
    ],
)
def test_replace_head(make, head):
    ember.manual_seed(0)
    m = make().eval()
    modules = dict(m.named_modules())
    before = {n: p.detach().numpy().copy() for n, p in m.named_parameters()}
    new = M.replace_head(m, 4)
    assert new.out_features == 4
    if head is not None:
        assert dict(m.named_modules())[head] is new
        assert new.in_features == modules[head].in_features
    size = 32 if head != "fc" or isinstance(m, M.ResNet) else 48
    x = ember.zeros(2, 1 if isinstance(m, M.LeNet5) else 3, size, size)
    assert m(x).shape == (2, 4)
    after = dict(m.named_parameters())
    kept = [n for n in before if n in after and tuple(after[n].shape) == before[n].shape]
    assert len(kept) == len(before) - 2 or head is None  # the backbone is untouched
    for n in kept:
        if not n.startswith(head or "\0"):
            np.testing.assert_array_equal(after[n].detach().numpy(), before[n])


def test_replace_head_errors_and_names():
    m = M.resnet18(num_classes=3)
    M.replace_head(m, 5, name="fc")
    assert m.fc.out_features == 5
    with pytest.raises(ValueError, match="'layer1' must name an nn.Linear layer, found Sequential"):
        M.replace_head(m, 5, name="layer1")
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        M.replace_head(m, 0)
    with pytest.raises(ValueError, match="no nn.Linear"):
        M.replace_head(ember.nn.Conv2d(1, 1, 1), 2)


def test_param_groups_errors():
    m = ember.nn.Sequential(ember.nn.Linear(2, 2), ember.nn.Linear(2, 1))
    gs = M.param_groups(m, {("0.*", "1.bias"): {"lr": 1.0}}, lr=0.1)
    assert [len(g["params"]) for g in gs] == [3, 1] and gs[1]["lr"] == 0.1
    M.freeze(m)
    with pytest.raises(ValueError, match="no trainable parameters"):
        M.param_groups(m, {"0.*": {"lr": 1.0}})
    assert len(M.param_groups(m, {"0.*": {}}, include_frozen=True)) == 2
    with pytest.raises(ValueError, match="matches no parameter"):
        M.param_groups(m, {"2.*": {}})
    with pytest.raises(TypeError, match="must be a mapping"):
        M.param_groups(m, {"0.*": 0.1})


def test_transfer_digits_example_runs_small():
    """examples/transfer_digits.py as a user runs it, with few epochs: the new head learns
    digits 5-9 well above chance (0.2) on top of weights loaded through the registry."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("sklearn")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    args = ["--pretrain-epochs", "3", "--epochs", "8", "--shots", "10"]
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "transfer_digits.py"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "trainable: features.3.weight, features.3.bias, fc.weight, fc.bias" in out, out
    pre = float(re.search(r"pretrained on digits 0-4: accuracy ([0-9.]+)", out).group(1))
    acc = float(re.search(r"^test accuracy: ([0-9.]+)$", out, re.MULTILINE).group(1))
    assert pre > 0.8 and acc > 0.6, out
