"""GoogLeNet / Inception v1: torchvision's parameter count and names, forward parity with a
torch port of the same layout on the same weights."""

import numpy as np
import pytest
import torch

import ember
import ember.models as M
from tests import _zoo_torch_ref as R
from tests.test_models import _close, _randomize_bn, _to_torch


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_googlenet_parameter_count_matches_torch_port():
    em, tm = M.googlenet(), R.TGoogLeNet()
    assert _count(em) == sum(p.numel() for p in tm.parameters()) == 6_624_904
    assert set(em.state_dict()) == set(tm.state_dict())
    aux = M.googlenet(aux_logits=True)
    assert _count(aux) == sum(p.numel() for p in R.TGoogLeNet(aux=True).parameters())


def test_googlenet_forward_matches_torch():
    ember.manual_seed(0)
    em = M.googlenet(num_classes=10)
    _randomize_bn(em)
    em.eval()
    tm = _to_torch(em, R.TGoogLeNet(10)).eval()
    # 45 pixels: odd sizes exercise the ceil-mode pooling
    x = np.random.default_rng(0).standard_normal((2, 3, 45, 45)).astype(np.float32)
    with ember.no_grad():
        out = em(ember.tensor(x)).numpy()
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    _close(out, ref)


def test_googlenet_aux_outputs_and_options():
    ember.manual_seed(0)
    m = M.googlenet(num_classes=4, aux_logits=True).train()
    out = m(ember.randn(2, 3, 64, 64))
    assert isinstance(out, M.GoogLeNetOutputs)
    assert out.logits.shape == out.aux_logits1.shape == out.aux_logits2.shape == (2, 4)
    assert m.eval()(ember.zeros(1, 3, 64, 64)).shape == (1, 4)  # eval: main logits only
    t = M.googlenet(num_classes=3, transform_input=True).eval()
    assert t(ember.zeros(1, 3, 48, 48)).shape == (1, 3)
    assert M.get("googlenet", num_classes=2, in_channels=1).conv1.conv.in_channels == 1
    with pytest.raises(ValueError, match="num_classes"):
        M.googlenet(num_classes=0)
    with pytest.raises(ValueError, match="transform_input"):
        M.googlenet(transform_input=True, in_channels=1)
