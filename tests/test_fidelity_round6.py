"""Fidelity fixes, round 6: clone's memory formats, interpolate with zero channels, RandomSampler
over an empty source, and the ONNX lowering of median over all elements."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember.data import RandomSampler

# -- clone / memory_format -----------------------------------------------------------------

_VIEWS = [
    lambda m: m.arange(6.0).reshape(2, 3).t(),
    lambda m: m.arange(6.0).reshape(2, 3)[:, ::2],
    lambda m: m.arange(6.0).reshape(2, 3).t()[::2],
    lambda m: m.ones(3, 1).expand(3, 4),
    lambda m: m.arange(3.0).reshape(1, 3).t(),
    lambda m: m.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1),
    lambda m: m.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1)[:, ::2],
    lambda m: m.arange(120.0).reshape(2, 3, 4, 5).permute(0, 2, 3, 1),
    lambda m: m.arange(120.0).reshape(2, 3, 4, 5)[:, :, ::2],
    lambda m: m.tensor(3.0),
]


@pytest.mark.parametrize("fmt", ["preserve_format", "contiguous_format", "channels_last"])
@pytest.mark.parametrize("i", range(len(_VIEWS)))
def test_clone_memory_format_matches_torch(i, fmt):
    t, e = _VIEWS[i](torch), _VIEWS[i](ember)
    assert e.stride() == t.stride()
    try:
        tc = t.clone(memory_format=getattr(torch, fmt))
    except RuntimeError as err:
        with pytest.raises(RuntimeError, match=str(err)):
            e.clone(memory_format=getattr(ember, fmt))
        return
    ec = e.clone(memory_format=getattr(ember, fmt))
    np.testing.assert_array_equal(ec.numpy(), tc.numpy())
    assert ec.stride() == tc.stride()
    assert ec.is_contiguous() == tc.is_contiguous()


def test_clone_default_keeps_transposed_layout_and_gradient():
    x = ember.arange(6.0).reshape(2, 3).requires_grad_()
    xt = torch.arange(6.0).reshape(2, 3).requires_grad_()
    c, ct = ember.clone(x.t()), torch.clone(xt.t())
    assert c.stride() == ct.stride() == (1, 3) and not c.is_contiguous()
    (c * ember.arange(6.0).reshape(3, 2)).sum().backward()
    (ct * torch.arange(6.0).reshape(3, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    c2 = ember.clone(x.t(), memory_format=ember.contiguous_format)
    assert c2.is_contiguous() and c2.stride() == (2, 1)


def test_clone_compiles_to_the_eager_values():
    def f(a):
        return a.t().clone() * 2.0

    x = ember.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(ember.compile(f)(x).numpy(), f(x).numpy())


def test_contiguous_channels_last_and_bad_format():
    x, xt = ember.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)
    y = x.contiguous(memory_format=ember.channels_last)
    assert y.stride() == xt.contiguous(memory_format=torch.channels_last).stride()
    assert y.contiguous(memory_format=ember.channels_last) is y
    with pytest.raises(TypeError, match="memory_format"):
        x.clone(memory_format="channels_last")
    with pytest.raises(RuntimeError, match="rank 5"):
        x.clone(memory_format=ember.channels_last_3d)
    assert x.clone(memory_format=ember.channels_last).stride() == (60, 1, 15, 3)


# -- interpolate with an empty batch or no channels -----------------------------------------

_MODES = [
    ("nearest", 3),
    ("nearest-exact", 3),
    ("linear", 3),
    ("area", 3),
    ("nearest", 4),
    ("bilinear", 4),
    ("bicubic", 4),
    ("area", 4),
    ("nearest", 5),
    ("trilinear", 5),
    ("area", 5),
]


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("mode, nd", _MODES)
def test_interpolate_empty_batch_or_channels_like_torch(mode, nd, which):
    shape = [2, 3] + [4] * (nd - 2)
    shape[which] = 0
    kw = {} if mode in ("nearest", "nearest-exact", "area") else {"align_corners": False}
    try:
        want = TF.interpolate(torch.zeros(*shape), scale_factor=2, mode=mode, **kw)
    except RuntimeError:
        with pytest.raises(ValueError, match="non-empty .* channel"):
            F.interpolate(ember.zeros(*shape), scale_factor=2, mode=mode, **kw)
        return
    got = F.interpolate(ember.zeros(*shape), scale_factor=2, mode=mode, **kw)
    assert tuple(got.shape) == tuple(want.shape)


# -- RandomSampler over an empty source -----------------------------------------------------


def test_random_sampler_empty_source_like_torch():
    tsamp = torch.utils.data.RandomSampler([], replacement=True, num_samples=3)
    with pytest.raises(RuntimeError, match="from=0 >= to=0"):
        list(tsamp)
    s = RandomSampler([], replacement=True, num_samples=3)  # accepted, as in PyTorch
    assert len(s) == 3
    with pytest.raises(RuntimeError, match="from=0 >= to=0"):
        list(s)
    with pytest.raises(ZeroDivisionError):
        list(torch.utils.data.RandomSampler([], num_samples=3))
    with pytest.raises(ZeroDivisionError, match="empty data source"):
        list(RandomSampler([], num_samples=3))
    for kw in ({}, {"replacement": True}):
        with pytest.raises(ValueError, match="num_samples=0"):
            torch.utils.data.RandomSampler([], **kw)
        with pytest.raises(ValueError, match="num_samples=0"):
            RandomSampler([], **kw)


# -- ONNX: median over all elements ---------------------------------------------------------

_NAN = np.nan
_MEDIAN_INPUTS = [
    np.float32([3, 1, 2, 4]),
    np.float32([[3, _NAN], [1, 2]]),
    np.float32([_NAN, _NAN]),
    np.float64([5, 1, 2, 9, -3]),
    np.float32([np.inf, 1, -np.inf, 2]),
    np.int64([4, 2, 9, 1]),
    np.int32([[7]]),
    np.float32(2.5),
]


@pytest.mark.parametrize("fn", ["median", "nanmedian"])
@pytest.mark.parametrize("i", range(len(_MEDIAN_INPUTS)))
def test_median_all_onnx_matches_eager_and_torch(tmp_path, i, fn):
    import onnxruntime as ort

    x = np.asarray(_MEDIAN_INPUTS[i])
    f = getattr(ember, fn)
    path = str(tmp_path / "m.onnx")
    ember.onnx.export(lambda t: f(t), (ember.tensor(x),), path)
    sess = ort.InferenceSession(path)
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    eager = f(ember.tensor(x)).numpy()
    want = getattr(torch, fn)(torch.from_numpy(x)).numpy()
    assert got.dtype == eager.dtype == want.dtype
    np.testing.assert_array_equal(got, eager)
    np.testing.assert_array_equal(got, want)
