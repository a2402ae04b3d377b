"""PyTorch-fidelity fixes found by fuzzing Ember against PyTorch 2.13 (round 4): the global
median's gradient with ties, ``interpolate(mode="area")`` to size 0, ``batch_norm``'s
momentum, integer shifts, ``where``'s condition dtype, ``cross_entropy`` on integer logits,
the regression losses' shape checks and ``TensorDataset`` items."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember.data import DataLoader, TensorDataset

_TIES = [
    [1.0, 2.0, 2.0, 3.0, 2.0],
    [1.0, 2.0, 2.0, 3.0],
    [5.0, 5.0, 5.0],
    [1.0, float("nan"), float("nan")],
    [[4.0, 1.0, 4.0], [4.0, 0.0, 9.0]],
    [7.0],
]


def _grads(values, name, **kw):
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    e = ember.tensor(values, dtype=ember.float64, requires_grad=True)
    tv, ev = getattr(t, name)(**kw), getattr(e, name)(**kw)
    if "dim" in kw:
        tv, ev = tv.values, ev.values
    (tv * torch.arange(1.0, tv.numel() + 1, dtype=torch.float64).reshape(tv.shape)).sum().backward()
    w = ember.arange(1.0, ev.numel() + 1, dtype=ember.float64).reshape(tuple(ev.shape))
    (ev * w).sum().backward()
    np.testing.assert_array_equal(ev.detach().numpy(), tv.detach().numpy())
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("values", _TIES, ids=range(len(_TIES)))
@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_global_median_gradient_splits_ties(values, name):
    _grads(values, name)


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_median_dim_gradient_goes_to_the_index(name):
    _grads([[1.0, 2.0, 2.0, 3.0, 2.0], [0.0, 0.0, 1.0, 1.0, 1.0]], name, dim=1)


def test_global_median_integer_and_empty():
    x = [3, 1, 2, 2]
    assert ember.median(ember.tensor(x)).item() == torch.median(torch.tensor(x)).item()
    assert ember.median(ember.tensor(x)).dtype is ember.int64
    with pytest.raises(IndexError):
        ember.median(ember.zeros(0))


@pytest.mark.parametrize("size", [0, (0, 3), (2, 0)])
def test_interpolate_area_to_size_zero_is_empty(size):
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    want = TF.interpolate(torch.tensor(x), size=size, mode="area")
    e = ember.tensor(x, requires_grad=True)
    got = F.interpolate(e, size=size, mode="area")
    assert tuple(got.shape) == tuple(want.shape)
    got.sum().backward()  # (PyTorch's backward refuses the empty output; Ember's gives zeros)
    assert not e.grad.numpy().any()


def test_interpolate_area_scale_to_zero_and_1d_3d():
    for shape, size in (((1, 2, 4), 0), ((1, 1, 3, 3, 3), (2, 0, 1))):
        x = np.ones(shape, np.float32)
        want = TF.interpolate(torch.tensor(x), size=size, mode="area")
        assert tuple(F.interpolate(ember.tensor(x), size=size, mode="area").shape) == tuple(
            want.shape
        )
    x = np.ones((1, 2, 4, 4), np.float32)
    want = TF.interpolate(torch.tensor(x), scale_factor=0.1, mode="area")
    got = F.interpolate(ember.tensor(x), scale_factor=0.1, mode="area")
    assert tuple(got.shape) == tuple(want.shape) == (1, 2, 0, 0)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
def test_interpolate_other_modes_refuse_size_zero(mode):
    x = np.ones((1, 2, 4, 4), np.float32)
    kw = {} if mode.startswith("nearest") else {"align_corners": False}
    with pytest.raises(RuntimeError):
        TF.interpolate(torch.tensor(x), size=(0, 3), mode=mode, **kw)
    with pytest.raises(ValueError, match="must be positive"):
        F.interpolate(ember.tensor(x), size=(0, 3), mode=mode, **kw)
    with pytest.raises(ValueError, match="must be positive"):
        F.interpolate(ember.tensor(x), size=-1, mode="area")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_refuses_momentum_none(training):
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(TypeError, match="momentum"):
        TF.batch_norm(
            torch.tensor(x), torch.zeros(3), torch.ones(3), training=training, momentum=None
        )
    with pytest.raises(TypeError, match="momentum"):
        F.batch_norm(
            ember.tensor(x), ember.zeros(3), ember.ones(3), training=training, momentum=None
        )
    with pytest.raises(TypeError, match="momentum"):
        F.instance_norm(ember.tensor(x).reshape(1, 3, 4), momentum=None)
    # an int momentum is a float to PyTorch; the module's momentum=None still works
    rm, trm = ember.zeros(3), torch.zeros(3)
    F.batch_norm(ember.tensor(x), rm, ember.ones(3), training=True, momentum=1)
    TF.batch_norm(torch.tensor(x), trm, torch.ones(3), training=True, momentum=1)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-6)
    m, tm = ember.nn.BatchNorm1d(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None)
    np.testing.assert_allclose(
        m(ember.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), atol=1e-6
    )


_INT = [
    (ember.int8, torch.int8),
    (ember.uint8, torch.uint8),
    (ember.int16, torch.int16),
    (ember.int32, torch.int32),
    (ember.int64, torch.int64),
]


@pytest.mark.parametrize("edt,tdt", _INT, ids=[str(t) for _, t in _INT])
def test_shift_operators_match_torch(edt, tdt):
    vals = [1, 3, 5, 127, 0, 100] if tdt is torch.uint8 else [1, -3, 5, 127, 0, -128]
    shifts = [0, 1, 3, 7, 8, 9, 15, 16, 31, 32, 33, 63, 64, 65] + (
        [] if tdt is torch.uint8 else [-1, -2]
    )
    a, ta = ember.tensor(vals, dtype=edt), torch.tensor(vals, dtype=tdt)
    for s in shifts:
        es, ts = ember.tensor(s, dtype=edt), torch.tensor(s, dtype=tdt)
        assert (a << es).tolist() == (ta << ts).tolist(), s
        assert (a >> es).tolist() == (ta >> ts).tolist(), s
        assert (a << s).tolist() == (ta << s).tolist(), s
        assert (a >> s).tolist() == (ta >> s).tolist(), s
        assert (a << es).dtype is edt


def test_shift_functions_methods_inplace_and_promotion():
    a, ta = ember.tensor([1, 2, -7], dtype=ember.int8), torch.tensor([1, 2, -7], dtype=torch.int8)
    b, tb = ember.tensor([1, 2, 3], dtype=ember.int32), torch.tensor([1, 2, 3], dtype=torch.int32)
    for got, want in (
        (a << b, ta << tb),
        (a >> b, ta >> tb),
        (3 << a.abs(), 3 << ta.abs()),
        (100 >> b, 100 >> tb),
        (ember.bitwise_left_shift(a, 2), torch.bitwise_left_shift(ta, 2)),
        (ember.bitwise_right_shift(a, 1), torch.bitwise_right_shift(ta, 1)),
        (a.bitwise_left_shift(b), ta.bitwise_left_shift(tb)),
        (a.bitwise_right_shift(b), ta.bitwise_right_shift(tb)),
        (ember.tensor([True, False]) << 1, torch.tensor([True, False]) << 1),
    ):
        assert got.tolist() == want.tolist()
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    c, tc = a.clone(), ta.clone()
    c <<= 2
    tc <<= 2
    assert c.tolist() == tc.tolist() and c.dtype is ember.int8
    c >>= ember.tensor([1, 1, 1])
    tc >>= torch.tensor([1, 1, 1])
    assert c.tolist() == tc.tolist() and c.dtype is ember.int8
    c.bitwise_left_shift_(1)
    tc.bitwise_left_shift_(1)
    assert c.tolist() == tc.tolist()


@pytest.mark.parametrize(
    "make",
    [
        lambda L: L.tensor([1.0, 2.0]) << 1,
        lambda L: L.tensor([1, 2]) >> 1.5,
        lambda L: L.tensor([True]) << L.tensor([True]),
    ],
)
def test_shifts_refuse_float_and_bool(make):
    with pytest.raises((NotImplementedError, RuntimeError)):
        make(torch)
    with pytest.raises(TypeError, match="integer"):
        make(ember)


def test_where_condition_must_be_bool():
    x, y = [1.0, 2.0], [3.0, 4.0]
    for cdt, tcdt in (
        (ember.int64, torch.int64),
        (ember.float32, torch.float32),
        (ember.int8, torch.int8),
    ):
        with pytest.raises(RuntimeError, match="boolean"):
            torch.where(torch.tensor([1, 0], dtype=tcdt), torch.tensor(x), torch.tensor(y))
        with pytest.raises(TypeError, match="boolean"):
            ember.where(ember.tensor([1, 0], dtype=cdt), ember.tensor(x), ember.tensor(y))
        # the one-argument form is nonzero, any dtype
        got = ember.where(ember.tensor([1, 0], dtype=cdt))[0].tolist()
        assert got == torch.where(torch.tensor([1, 0], dtype=tcdt))[0].tolist()
    # uint8 still works in PyTorch, with a deprecation UserWarning
    with pytest.warns(UserWarning, match="uint8"):
        got = ember.where(ember.tensor([1, 0], dtype=ember.uint8), ember.tensor(x), ember.tensor(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.where(
            torch.tensor([1, 0], dtype=torch.uint8), torch.tensor(x), torch.tensor(y)
        )
    assert got.tolist() == want.tolist()
    assert ember.where(ember.tensor([True, False]), ember.tensor(x), 0.0).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("edt,tdt", [(ember.int64, torch.int64), (ember.int32, torch.int32)])
def test_class_losses_refuse_integer_input(name, edt, tdt):
    logits, target = [[1, 2], [3, 4]], [0, 1]
    with pytest.raises(NotImplementedError):
        getattr(TF, name)(torch.tensor(logits, dtype=tdt), torch.tensor(target))
    with pytest.raises(TypeError, match="floating point"):
        getattr(F, name)(ember.tensor(logits, dtype=edt), ember.tensor(target))
    got = getattr(F, name)(ember.tensor(logits, dtype=ember.float32), ember.tensor(target))
    want = getattr(TF, name)(torch.tensor(logits, dtype=torch.float32), torch.tensor(target))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


def test_cross_entropy_probability_target_refuses_integer_input():
    with pytest.raises(NotImplementedError):
        TF.cross_entropy(torch.tensor([[1, 2]]), torch.tensor([[0.5, 0.5]]))
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(ember.tensor([[1, 2]]), ember.tensor([[0.5, 0.5]]))


_REGRESSION = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"]


@pytest.mark.parametrize("name", _REGRESSION)
@pytest.mark.parametrize("shapes", [((3, 1), (3, 4)), ((2, 3), (3,)), ((3,), (3, 1))])
def test_regression_losses_broadcast_with_a_warning(name, shapes):
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=shapes[0]), rng.uniform(size=shapes[1])
    ta = torch.tensor(a, requires_grad=True)
    with pytest.warns(UserWarning, match="different to the input size"):
        want = getattr(TF, name)(ta, torch.tensor(b))
    e = ember.tensor(a, requires_grad=True)
    with pytest.warns(
        UserWarning, match=rf"{name}: .*target size {re.escape(str(shapes[1]))}.*input size"
    ):
        got = getattr(F, name)(e, ember.tensor(b))
    want.backward()
    got.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    np.testing.assert_allclose(e.grad.numpy(), ta.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", _REGRESSION)
def test_regression_losses_name_themselves_on_bad_shapes(name):
    with pytest.raises(RuntimeError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns before it fails
        getattr(TF, name)(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=rf"^{name}: target size \(4,\).*input size \(3,\)"):
        getattr(F, name)(ember.zeros(3), ember.zeros(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same shapes: no warning
        getattr(F, name)(ember.zeros(3), ember.zeros(3))


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("shapes", [((3, 1), (3, 4)), ((3,), (4,)), ((3,), (3, 1))])
def test_binary_losses_refuse_other_shapes(name, shapes):
    a, b = np.full(shapes[0], 0.5), np.full(shapes[1], 0.5)
    with pytest.raises(ValueError):
        getattr(TF, name)(torch.tensor(a), torch.tensor(b))
    with pytest.raises(
        ValueError, match=rf"^{name}: target size {re.escape(str(shapes[1]))}.*input size"
    ):
        getattr(F, name)(ember.tensor(a), ember.tensor(b))


def test_tensor_dataset_items_are_tensors_like_torch():
    x, y = np.arange(12.0, dtype=np.float32).reshape(6, 2), np.arange(6)
    ds = TensorDataset(ember.tensor(x), ember.tensor(y))
    tds = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    for i in (0, 4, -1):
        (ex, ey), (tx, ty) = ds[i], tds[i]
        assert isinstance(ex, ember.Tensor) and isinstance(ey, ember.Tensor)
        assert tuple(ey.shape) == tuple(ty.shape) == ()
        assert ey.dtype is ember.int64 and ex.dtype is ember.float32
        assert ex.tolist() == tx.tolist() and ey.item() == ty.item()
    # slices index rows as PyTorch's
    assert ds[1:3][1].tolist() == tds[1:3][1].tolist()
    # NumPy inputs give tensors too
    assert isinstance(TensorDataset(x, y)[2][1], ember.Tensor)
    # the default collate gives the same batches
    got = [(a.numpy(), b.numpy()) for a, b in DataLoader(ds, batch_size=4)]
    want = [(a.numpy(), b.numpy()) for a, b in torch.utils.data.DataLoader(tds, batch_size=4)]
    assert len(got) == len(want) == 2
    for (ga, gb), (wa, wb) in zip(got, want):
        np.testing.assert_array_equal(ga, wa)
        np.testing.assert_array_equal(gb, wb)
        assert ga.dtype == wa.dtype and gb.dtype == wb.dtype
