"""``memory_format`` in ``*_like``, ``Tensor.to`` and ``Module.to``, against PyTorch's strides."""

import numpy as np
import pytest
import torch

import ember

FORMATS = [None, "preserve_format", "contiguous_format", "channels_last"]
VIEWS = {
    "contiguous": lambda a: a,
    "transposed": lambda a: a.transpose(1, 3),
    "channels_last_view": lambda a: a.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),
    "sliced": lambda a: a[:, ::2],
    "size_one": lambda a: a[:, :1],
}


def _pair(seed=0):
    x = np.random.default_rng(seed).standard_normal((2, 3, 4, 5)).astype(np.float32)
    return ember.tensor(x), torch.tensor(x)


def _kw(lib, fmt):
    return {} if fmt is None else {"memory_format": getattr(lib, fmt)}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize(
    "name", ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"]
)
def test_like_functions_lay_out_as_torch(name, view, fmt):
    e, t = _pair()
    ev, tv = VIEWS[view](e), VIEWS[view](t)
    got = getattr(ember, name)(ev, **_kw(ember, fmt))
    want = getattr(torch, name)(tv, **_kw(torch, fmt))
    assert got.shape == tuple(want.shape) and got.stride() == want.stride()
    if name in ("zeros_like", "ones_like"):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("fmt", FORMATS)
def test_full_and_randint_like(fmt):
    e, t = _pair()
    got = ember.full_like(e.transpose(1, 3), 2.5, **_kw(ember, fmt))
    want = torch.full_like(t.transpose(1, 3), 2.5, **_kw(torch, fmt))
    assert got.stride() == want.stride()
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    r = ember.randint_like(e.transpose(1, 3), 7, **_kw(ember, fmt))
    assert r.stride() == torch.randint_like(t.transpose(1, 3), 7, **_kw(torch, fmt)).stride()
    assert r.numpy().min() >= 0 and r.numpy().max() < 7


@pytest.mark.parametrize("fmt", ["contiguous_format", "channels_last", "preserve_format"])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_tensor_to_memory_format(view, fmt):
    e, t = _pair(1)
    ev, tv = VIEWS[view](e), VIEWS[view](t)
    got = ev.to(**_kw(ember, fmt))
    want = tv.to(**_kw(torch, fmt))
    assert got.stride() == want.stride()
    assert (got is ev) == (want is tv)  # no copy when the layout already fits
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    both = ev.to(ember.float64, memory_format=ember.channels_last)
    assert both.dtype == ember.float64
    assert both.stride() == tv.to(torch.float64, memory_format=torch.channels_last).stride()


def test_to_keeps_gradients_flowing():
    e, t = _pair(2)
    e.requires_grad_(True)
    t.requires_grad_(True)
    (e.to(memory_format=ember.channels_last) * 3).sum().backward()
    (t.to(memory_format=torch.channels_last) * 3).sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy())


def test_bad_memory_format_and_rank():
    e, _ = _pair()
    with pytest.raises(TypeError, match="memory_format"):
        ember.zeros_like(e, memory_format="channels_last")
    with pytest.raises(TypeError, match="memory_format"):
        e.to(memory_format="channels_last")
    with pytest.raises(RuntimeError, match="rank 4"):
        ember.zeros_like(ember.ones(2, 3), memory_format=ember.channels_last)
    with pytest.raises(TypeError, match="memory_format"):
        ember.nn.Linear(2, 3).to(memory_format=3)


def test_module_to_memory_format_is_accepted():
    conv = ember.nn.Conv2d(3, 4, 3)
    x = ember.randn(1, 3, 6, 6)
    before = conv(x).detach().numpy()
    assert conv.to(memory_format=ember.channels_last) is conv
    np.testing.assert_array_equal(conv(x).detach().numpy(), before)
