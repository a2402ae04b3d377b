import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn, to_e

import ember
import ember.nn.functional as F


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"stride": 2},
        {"padding": 1},
        {"padding": (2, 1), "stride": (2, 1)},
        {"dilation": 2, "padding": 2},
        {"groups": 2},
        {"padding": "same"},
        {"padding": "valid"},
        {"padding": "same", "dilation": (2, 1)},
        {"stride": 3, "padding": 1},
    ],
)
def test_conv2d_matches_torch(kw):
    x, w, b = randn(2, 4, 9, 8), randn(6, 4 // kw.get("groups", 1), 3, 3, seed=1), randn(6, seed=2)
    check(
        lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw), [x, w, b]
    )


def test_conv2d_no_bias_1x1_depthwise_and_even_kernel():
    x = randn(2, 4, 7, 7)
    check(lambda x, w: F.conv2d(x, w), lambda x, w: TF.conv2d(x, w), [x, randn(5, 4, 1, 1)])
    check(
        lambda x, w: F.conv2d(x, w, padding=1, groups=4),
        lambda x, w: TF.conv2d(x, w, padding=1, groups=4),
        [x, randn(8, 1, 3, 3)],
    )
    check(
        lambda x, w: F.conv2d(x, w, padding="same"),
        lambda x, w: TF.conv2d(x, w, padding="same"),
        [x, randn(3, 4, 4, 2)],
    )


def test_conv2d_unbatched_and_double_precision():
    x, w = randn(3, 6, 6, dtype=np.float64), randn(2, 3, 3, 3, dtype=np.float64)
    check(
        lambda x, w: F.conv2d(x, w, padding=1),
        lambda x, w: TF.conv2d(x, w, padding=1),
        [x, w],
        rtol=1e-10,
        atol=1e-10,
    )


def test_conv2d_float32_stays_float32():
    y = F.conv2d(to_e(randn(1, 2, 5, 5)), to_e(randn(3, 2, 3, 3)), to_e(randn(3)))
    assert y.dtype == ember.float32


def test_conv2d_finite_difference():
    x, w = randn(1, 2, 5, 4, dtype=np.float64), randn(3, 2, 3, 2, seed=1, dtype=np.float64)
    numeric_grad_check(lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1), [x, w])


def test_conv2d_double_backward_matches_torch():
    x, w = randn(2, 3, 5, 5, dtype=np.float64), randn(4, 3, 3, 3, seed=1, dtype=np.float64)
    ex, ew = to_e(x, True), to_e(w, True)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    gx, gw = ember.autograd.grad(
        F.conv2d(ex, ew, stride=2, padding=1).pow(2).sum(), [ex, ew], create_graph=True
    )
    ((gx * gx).sum() + (gw * gw).sum()).backward()
    tgx, tgw = torch.autograd.grad(
        TF.conv2d(tx, tw, stride=2, padding=1).pow(2).sum(), [tx, tw], create_graph=True
    )
    ((tgx * tgx).sum() + (tgw * tgw).sum()).backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-8, atol=1e-8)


def test_conv1d():
    x, w, b = randn(2, 3, 10), randn(4, 3, 3, seed=1), randn(4, seed=2)
    for kw in ({}, {"stride": 2, "padding": 1}, {"padding": "same", "dilation": 2}):
        check(
            lambda x, w, b, kw=kw: F.conv1d(x, w, b, **kw),
            lambda x, w, b, kw=kw: TF.conv1d(x, w, b, **kw),
            [x, w, b],
        )


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"stride": 2},
        {"stride": 2, "padding": 1, "output_padding": 1},
        {"stride": (2, 3), "padding": (1, 0), "output_padding": (0, 2)},
        {"groups": 2, "stride": 2},
        {"dilation": 2, "padding": 1},
        {"stride": 3, "padding": 2, "output_padding": 2, "dilation": 2},
    ],
)
def test_conv_transpose2d_matches_torch(kw):
    x, w, b = randn(2, 4, 5, 4), randn(4, 3, 3, 3, seed=1), randn(3 * kw.get("groups", 1), seed=2)
    w = randn(4, 3, 3, 3, seed=1)
    check(
        lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
        lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw),
        [x, w, b],
    )


def test_conv_transpose1d():
    check(
        lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
        lambda x, w: TF.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
        [randn(2, 3, 6), randn(3, 2, 4, seed=1)],
    )


def test_linear_and_bilinear():
    x, w, b = randn(5, 4), randn(3, 4, seed=1), randn(3, seed=2)
    check(F.linear, TF.linear, [x, w, b])
    check(lambda x, w: F.linear(x, w), lambda x, w: TF.linear(x, w), [randn(2, 5, 4), w])
    x1, x2, w3, b3 = randn(6, 3), randn(6, 4, seed=1), randn(5, 3, 4, seed=2), randn(5, seed=3)
    check(F.bilinear, TF.bilinear, [x1, x2, w3, b3])


def test_conv_errors_name_op_and_shapes():
    x, w = to_e(randn(2, 4, 8, 8)), to_e(randn(8, 3, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"conv2d: expected input with 3 channels .*\(8, 3, 3, "
        r"3\).*\(2, 4, 8, 8\)",
    ):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match="conv2d: .*too small"):
        F.conv2d(to_e(randn(1, 3, 2, 2)), w)
    with pytest.raises(ValueError, match="conv2d: .*4-D weight"):
        F.conv2d(x, to_e(randn(3, 3)))
    with pytest.raises(ValueError, match="linear: .*features"):
        F.linear(to_e(randn(2, 5)), to_e(randn(3, 4)))
    with pytest.raises(ValueError, match="same"):
        F.conv2d(to_e(randn(1, 3, 8, 8)), w, stride=2, padding="same")


def test_linear_double_backward_and_nd():
    x, w, b = (
        randn(2, 3, 4, dtype=np.float64),
        randn(5, 4, seed=1, dtype=np.float64),
        randn(5, seed=2, dtype=np.float64),
    )
    check(F.linear, TF.linear, [x, w, b], rtol=1e-10, atol=1e-10)
    numeric_grad_check(F.linear, [x, w, b])
    ex, ew = to_e(x, True), to_e(w, True)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    ge = ember.autograd.grad((F.linear(ex, ew) ** 3).sum(), [ex, ew], create_graph=True)
    gt = torch.autograd.grad((TF.linear(tx, tw) ** 3).sum(), [tx, tw], create_graph=True)
    sum((g * g).sum() for g in ge).backward()
    sum((g * g).sum() for g in gt).backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-8)
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-8)


def test_conv_transpose2d_and_grouped_finite_difference():
    x, w = randn(1, 4, 3, 3, dtype=np.float64), randn(4, 1, 3, 2, seed=1, dtype=np.float64)
    numeric_grad_check(
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
        [x, w],
    )
    numeric_grad_check(
        lambda x, w: F.conv2d(x, w, padding=(1, 0), groups=4, dilation=(1, 2)),
        [randn(1, 4, 5, 6, dtype=np.float64), w],
    )


def test_conv_on_strided_inputs():
    # inputs in any memory layout (a permuted view; a conv output feeding the next conv)
    x = randn(5, 3, 2, 7).transpose(2, 1, 0, 3)  # (2, 3, 5, 7), non-contiguous
    w, w2 = randn(4, 3, 3, 3, seed=1), randn(2, 4, 1, 1, seed=2)
    check(
        lambda x, w, w2: F.conv2d(F.conv2d(x, w, padding=1), w2),
        lambda x, w, w2: TF.conv2d(TF.conv2d(x, w, padding=1), w2),
        [np.ascontiguousarray(x), w, w2],
    )
    e = F.conv2d(to_e(x), to_e(w))
    t = TF.conv2d(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w))
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-5, atol=1e-5)


def test_shared_input_convs_and_repeated_backward():
    # the forward's im2col memo must not leak between convs or steps
    x, w1, w2 = randn(2, 3, 6, 6), randn(4, 3, 3, 3, seed=1), randn(4, 3, 3, 3, seed=2)
    check(
        lambda x, a, b: (
            F.conv2d(x, a, padding=1) * F.conv2d(x, b, padding=1) + F.conv2d(x, a, stride=2).sum()
        ),
        lambda x, a, b: (
            TF.conv2d(x, a, padding=1) * TF.conv2d(x, b, padding=1)
            + TF.conv2d(x, a, stride=2).sum()
        ),
        [x, w1, w2],
        atol=1e-5,
    )
    ew = to_e(w1, True)
    for k in range(2):
        xk = to_e(randn(2, 3, 6, 6, seed=10 + k))
        ew.grad = None
        F.conv2d(xk, ew).sum().backward()
        tw = torch.from_numpy(w1.copy()).requires_grad_()
        TF.conv2d(torch.from_numpy(randn(2, 3, 6, 6, seed=10 + k)), tw).sum().backward()
        np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [{"kernel_size": 3}, {"kernel_size": (2, 3), "stride": 2, "padding": 1, "dilation": (1, 2)}],
)
def test_unfold_fold(kw):
    x = randn(2, 3, 7, 8)
    check(lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw), [x])
    cols = TF.unfold(torch.from_numpy(x), **kw).numpy()
    check(lambda c: F.fold(c, (7, 8), **kw), lambda c: TF.fold(c, (7, 8), **kw), [cols])


def test_interpolate_area():
    x = randn(2, 3, 8, 6)
    check(
        lambda x: F.interpolate(x, size=(3, 4), mode="area"),
        lambda x: TF.interpolate(x, size=(3, 4), mode="area"),
        [x],
    )
