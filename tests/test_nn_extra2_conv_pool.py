"""conv_transpose3d, max_unpool1d/2d/3d and fractional_max_pool2d/3d (and their layers)
against PyTorch: values and gradients in float32 and float64, float64 finite differences,
empty batches, non-contiguous inputs and every option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn

import ember
import ember.nn.functional as F

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------- conv_transpose3d
CT3_CASES = [
    {},
    {"stride": 2},
    {"stride": (2, 1, 3), "padding": (1, 0, 1), "output_padding": (1, 0, 2)},
    {"dilation": (2, 1, 2), "stride": 2, "output_padding": 1},
    {"groups": 2},
    {"groups": 2, "stride": (1, 2, 1), "padding": 1, "dilation": (1, 1, 2)},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", CT3_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose3d_matches_torch(kw, dtype, bias):
    g = kw.get("groups", 1)
    x, w = randn(2, 4, 3, 4, 3, dtype=dtype), randn(4, 6 // g, 2, 3, 2, seed=1, dtype=dtype)
    arrays = [x, w] + ([randn(6, seed=2, dtype=dtype)] if bias else [])
    tol = 1e-5 if dtype == np.float32 else 1e-10
    check(
        lambda *a: F.conv_transpose3d(*a[:2], a[2] if bias else None, **kw),
        lambda *a: TF.conv_transpose3d(*a[:2], a[2] if bias else None, **kw),
        arrays,
        rtol=tol,
        atol=tol,
    )


def test_conv_transpose3d_unbatched_noncontiguous_empty_and_fd():
    x, w = randn(3, 2, 3, 4), randn(2, 3, 2, 2, 2, seed=1)  # x: (C, W, D, H) -> transposed
    check(
        lambda a, b: F.conv_transpose3d(a.permute(0, 2, 3, 1), b, stride=2),
        lambda a, b: TF.conv_transpose3d(a.permute(0, 2, 3, 1), b, stride=2),
        [x.transpose(1, 0, 2, 3).copy(), w],
    )
    e = F.conv_transpose3d(ember.zeros(0, 2, 2, 2, 2), ember.zeros(2, 3, 2, 2, 2))
    assert tuple(e.shape) == (0, 3, 3, 3, 3)
    numeric_grad_check(
        lambda a, b, c: F.conv_transpose3d(a, b, c, stride=(2, 1, 1), padding=(0, 1, 0)),
        [randn(1, 2, 2, 2, 2, dtype=np.float64), randn(2, 1, 2, 2, 2, seed=3, dtype=np.float64),
         randn(1, seed=4, dtype=np.float64)],
    )  # fmt: skip


def test_conv_transpose3d_errors():
    x, w = ember.zeros(1, 2, 2, 2, 2), ember.zeros(2, 3, 2, 2, 2)
    with pytest.raises(ValueError, match="output padding"):
        F.conv_transpose3d(x, w, output_padding=1)
    with pytest.raises(ValueError, match="channels"):
        F.conv_transpose3d(ember.zeros(1, 3, 2, 2, 2), w)
    with pytest.raises(ValueError, match="5-D weight"):
        F.conv_transpose3d(x, ember.zeros(2, 3, 2, 2))
    with pytest.raises(TypeError, match="should be the same"):
        F.conv_transpose3d(x, w.double())


def test_conv_transpose3d_module_and_output_size():
    torch.manual_seed(0)
    tm = torch.nn.ConvTranspose3d(2, 4, 3, stride=2, padding=1, groups=2, dilation=(1, 2, 1))
    em = ember.nn.ConvTranspose3d(2, 4, 3, stride=2, padding=1, groups=2, dilation=(1, 2, 1))
    em.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = randn(1, 2, 3, 4, 3)
    for size in (None, (6, 10, 6)):
        ye, yt = em(ember.tensor(x), size), tm(torch.tensor(x), size)
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert tuple(em.weight.shape) == (2, 2, 3, 3, 3)
    # the top-level alias, as torch.conv_transpose3d
    w = randn(2, 3, 2, 2, 2, seed=5)
    np.testing.assert_allclose(
        ember.conv_transpose3d(ember.tensor(x), ember.tensor(w), None, 2).numpy(),
        torch.conv_transpose3d(torch.tensor(x), torch.tensor(w), None, 2).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )


# ---------------------------------------------------------------- max_unpool
POOLS = {1: TF.max_pool1d, 2: TF.max_pool2d, 3: TF.max_pool3d}
UNPOOLS = {1: (F.max_unpool1d, TF.max_unpool1d), 2: (F.max_unpool2d, TF.max_unpool2d),
           3: (F.max_unpool3d, TF.max_unpool3d)}  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize(
    ("k", "s", "p", "size"),
    [(2, None, 0, None), (3, 2, 0, None), (3, 2, 1, None), (3, 2, 0, "bigger"),
     (2, 1, 0, "full")],
)  # fmt: skip
def test_max_unpool_matches_torch(n, k, s, p, size, dtype):
    x = randn(2, 3, *(8 if k == 2 else 7,) * n, dtype=dtype)  # the unpooled size
    _, idx = POOLS[n](torch.tensor(x), k, s, p, return_indices=True)
    vals = POOLS[n](torch.tensor(x), k, s, p)
    stride = k if s is None else s
    base = [(v - 1) * stride - 2 * p + k for v in vals.shape[2:]]
    out = None
    if size == "bigger":
        out = tuple(b + stride - 1 for b in base)
    elif size == "full":
        out = (2, 3) + tuple(base)
    idx_np = idx.numpy()
    fe, ft = UNPOOLS[n]
    check(
        lambda v: fe(v, ember.tensor(idx_np), k, s, p, out),
        lambda v: ft(v, idx, k, s, p, out),
        [vals.numpy()],
    )


def test_max_unpool_unbatched_noncontiguous_empty_fd_and_errors():
    x = randn(3, 6, 6)
    v, i = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    vt = v.numpy().transpose(0, 2, 1).copy()
    it = ember.tensor(i.numpy())
    check(
        lambda a: F.max_unpool2d(a.transpose(1, 2), it, 2),
        lambda a: TF.max_unpool2d(a.transpose(1, 2), i, 2),
        [vt],
    )
    e = F.max_unpool2d(ember.zeros(0, 2, 3, 3), ember.zeros(0, 2, 3, 3).long(), 2)
    assert tuple(e.shape) == (0, 2, 6, 6)
    v64, i64 = TF.max_pool3d(torch.tensor(randn(1, 1, 4, 4, 4, dtype=np.float64)), 2,
                             return_indices=True)  # fmt: skip
    numeric_grad_check(lambda a: F.max_unpool3d(a, ember.tensor(i64.numpy()), 2), [v64.numpy()])
    with pytest.raises(IndexError, match="invalid max index"):
        F.max_unpool1d(ember.ones(1, 1, 2), ember.tensor([[[0, 9]]]), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.max_unpool1d(ember.ones(1, 1, 2), ember.tensor([[[0, 3]]]), 2, output_size=(9,))
    with pytest.raises(ValueError, match="indices of the input's shape"):
        F.max_unpool1d(ember.ones(1, 1, 2), ember.tensor([[[0]]]), 2)
    with pytest.raises(TypeError, match="integer"):
        F.max_unpool1d(ember.ones(1, 1, 2), ember.ones(1, 1, 2), 2)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_unpool_modules(n):
    tmod = getattr(torch.nn, f"MaxUnpool{n}d")(3, 2)
    emod = getattr(ember.nn, f"MaxUnpool{n}d")(3, 2)
    x = randn(1, 2, *(7,) * n)
    v, i = POOLS[n](torch.tensor(x), 3, 2, return_indices=True)
    ye = emod(ember.tensor(v.numpy()), ember.tensor(i.numpy()))
    np.testing.assert_array_equal(ye.numpy(), tmod(v, i).numpy())
    assert emod.kernel_size == (3,) * n and emod.stride == (2,) * n


# ---------------------------------------------------------------- fractional max pooling
FRAC = {2: (F.fractional_max_pool2d, TF.fractional_max_pool2d),
        3: (F.fractional_max_pool3d, TF.fractional_max_pool3d)}  # fmt: skip
FRAC_CASES = [
    (2, (2, 3, 9, 11), 2, (4, 5), None),
    (2, (2, 3, 10, 10), 3, None, (0.5, 0.5)),
    (2, (3, 8, 7), (2, 3), 3, None),  # unbatched
    (2, (2, 2, 25, 31), 2, (13, 17), None),
    (3, (2, 2, 7, 8, 9), 2, (3, 4, 5), None),
    (3, (2, 2, 9, 8, 7), (3, 2, 2), None, (0.5, 0.6, 0.4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "shape", "k", "size", "ratio"), FRAC_CASES)
def test_fractional_max_pool_matches_torch(n, shape, k, size, ratio, dtype):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    lead = (1, shape[0]) if len(shape) == n + 1 else shape[:2]
    u = rng.random(lead + (n,)).astype(dtype)
    fe, ft = FRAC[n]
    ue, ut = ember.tensor(u), torch.tensor(u)
    check(
        lambda a: fe(a, k, size, ratio, True, ue),
        lambda a: ft(a, k, size, ratio, True, ut),
        [x],
        rtol=0,
        atol=0,
    )
    _, ti = ft(torch.tensor(x), k, size, ratio, True, ut)
    np.testing.assert_array_equal(fe(ember.tensor(x), k, size, ratio, True, ue)[1].numpy(), ti)


def test_fractional_max_pool_fd_noncontiguous_empty_random_and_errors():
    u = ember.tensor(np.array([[[0.3, 0.7]]]))
    numeric_grad_check(
        lambda a: F.fractional_max_pool2d(a, 2, (3, 3), _random_samples=u),
        [randn(1, 1, 5, 5, dtype=np.float64)],
    )
    x = randn(1, 2, 8, 6)
    us = np.random.default_rng(1).random((1, 2, 2)).astype(np.float32)
    check(
        lambda a: F.fractional_max_pool2d(a.transpose(2, 3), 2, (3, 4), None, False,
                                          ember.tensor(us)),
        lambda a: TF.fractional_max_pool2d(a.transpose(2, 3), 2, (3, 4), None, False,
                                           torch.tensor(us)),
        [x],
    )  # fmt: skip
    e = F.fractional_max_pool2d(ember.zeros(0, 2, 6, 6), 2, 3)
    assert tuple(e.shape) == (0, 2, 3, 3)
    # without _random_samples: the windows are random, but each output is a window maximum
    ember.manual_seed(0)
    v, i = F.fractional_max_pool3d(ember.randn(2, 3, 6, 7, 8), 2, (3, 3, 4), return_indices=True)
    assert tuple(v.shape) == (2, 3, 3, 3, 4) and i.dtype == ember.int64
    with pytest.raises(ValueError, match="output_size or an output_ratio"):
        F.fractional_max_pool2d(ember.zeros(1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="too large"):
        F.fractional_max_pool2d(ember.zeros(1, 1, 4, 4), 3, 3)
    with pytest.raises(ValueError, match="_random_samples must have shape"):
        F.fractional_max_pool2d(ember.zeros(1, 1, 4, 4), 2, 2, _random_samples=ember.zeros(1, 2))
    with pytest.raises(ValueError, match="3-D"):
        F.fractional_max_pool2d(ember.zeros(4, 4), 2, 2)


@pytest.mark.parametrize("n", [2, 3])
def test_fractional_max_pool_modules(n):
    u = np.random.default_rng(0).random((2, 3, n)).astype(np.float32)
    x = randn(2, 3, *(9,) * n)
    tm = getattr(torch.nn, f"FractionalMaxPool{n}d")(
        2, output_ratio=(0.5,) * n, return_indices=True, _random_samples=torch.tensor(u)
    )
    em = getattr(ember.nn, f"FractionalMaxPool{n}d")(
        2, output_ratio=(0.5,) * n, return_indices=True, _random_samples=ember.tensor(u)
    )
    (ve, ie), (vt, it) = em(ember.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_array_equal(ve.numpy(), vt.numpy())
    np.testing.assert_array_equal(ie.numpy(), it.numpy())
    with pytest.raises(ValueError, match="output size, or a pooling ratio"):
        getattr(ember.nn, f"FractionalMaxPool{n}d")(2)


def test_fractional_max_pool_with_indices_variants():
    u2 = np.random.default_rng(3).random((1, 2, 2)).astype(np.float32)
    u3 = np.random.default_rng(4).random((1, 2, 3)).astype(np.float32)
    x2, x3 = randn(1, 2, 7, 7), randn(1, 2, 7, 7, 7)
    for (ve, ie), (vt, it) in [
        (F.fractional_max_pool2d_with_indices(ember.tensor(x2), 2, 3, None, False,
                                              ember.tensor(u2)),
         TF.fractional_max_pool2d_with_indices(torch.tensor(x2), 2, 3, None, False,
                                               torch.tensor(u2))),
        (F.fractional_max_pool3d_with_indices(ember.tensor(x3), 2, 3, None, False,
                                              ember.tensor(u3)),
         TF.fractional_max_pool3d_with_indices(torch.tensor(x3), 2, 3, None, False,
                                               torch.tensor(u3))),
    ]:  # fmt: skip
        np.testing.assert_array_equal(ve.numpy(), vt.numpy())
        np.testing.assert_array_equal(ie.numpy(), it.numpy())


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kernel, divisor", [(2, None), (3, None), ((2, 4), 5)])
def test_avg_pool_tiled_gradient_matches_torch(kernel, divisor, channels_last):
    """Windows that tile the input (kernel == stride, no padding) take the one-copy gradient
    path: PyTorch's values, and a channels-last gradient stays channels-last."""
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((2, 5, 12, 24)).astype(np.float32)
    if channels_last:
        x0 = np.ascontiguousarray(x0.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x = ember.from_numpy(x0).requires_grad_(True)
    y = ember.nn.functional.avg_pool2d(x, kernel, divisor_override=divisor)
    gw = rng.standard_normal(y.shape).astype(np.float32)
    if channels_last:  # (so that the pool's incoming gradient is channels-last)
        gw = np.ascontiguousarray(gw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    (y * ember.from_numpy(gw)).sum().backward()
    xt = torch.tensor(np.ascontiguousarray(x0), requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, kernel, divisor_override=divisor)
    (yt * torch.tensor(np.ascontiguousarray(gw))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-7)
    if channels_last:  # the kernel keeps a channels-last incoming gradient's layout
        from ember.ops import pooling

        g = np.ascontiguousarray(gw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        k2 = (kernel, kernel) if isinstance(kernel, int) else kernel
        gx = pooling._avgpool_grad_tiled(g, k2, divisor, x0.shape)
        assert gx.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_tiled_gradient_kernel_on_any_strides_and_threads(dtype):
    """The compiled NCHW spread of a tiled average pool's gradient: float32 and float64, a
    broadcast (stride-0) incoming gradient, one and two threads bitwise alike."""
    from ember.ops import pooling

    rng = np.random.default_rng(4)
    g = rng.standard_normal((3, 40, 9, 7)).astype(dtype)  # 7560 windows: the parallel build
    want = np.repeat(np.repeat(g / dtype(6), 2, axis=2), 3, axis=3)
    old = ember.get_num_threads()
    try:
        got = []
        for threads in (1, 2):
            ember.set_num_threads(threads)
            got.append(pooling._avgpool_grad_tiled(g, (2, 3), None, (3, 40, 18, 21)))
    finally:
        ember.set_num_threads(old)
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[0], want)
    ones = np.broadcast_to(dtype(1), g.shape)
    spread = pooling._avgpool_grad_tiled(ones, (2, 3), 4, (3, 40, 18, 21))
    np.testing.assert_array_equal(spread, np.full((3, 40, 18, 21), 0.25, dtype))
