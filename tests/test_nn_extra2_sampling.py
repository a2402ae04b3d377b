"""grid_sample, embedding_bag and ctc_loss (and EmbeddingBag, CTCLoss) against PyTorch:
values and gradients in float32 and float64, float64 finite differences, empty batches,
non-contiguous inputs and every option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn

import ember
import ember.nn.functional as F

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------- grid_sample
GS_CASES = [
    (nd, mode, pad, align)
    for nd, mode, pad, align in itertools.product(
        (2, 3), ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (False, True)
    )
    if not (nd == 3 and mode == "bicubic")
]


def _grid(nd, dtype, seed=0, n=2):
    shape = (n, 3, 4, 2) if nd == 2 else (n, 2, 3, 4, 3)
    # beyond [-1, 1] on purpose: every padding mode gets exercised
    return np.random.default_rng(seed).uniform(-1.6, 1.6, shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("nd", "mode", "pad", "align"), GS_CASES)
def test_grid_sample_matches_torch(nd, mode, pad, align, dtype):
    x = randn(*((2, 3, 4, 5) if nd == 2 else (2, 2, 3, 4, 5)), dtype=dtype)
    # float32: the weights' rounding differs from PyTorch's by an ulp, times O(1) values
    tol = 2e-5 if dtype == np.float32 else 1e-10
    check(
        lambda a, g: F.grid_sample(a, g, mode, pad, align),
        lambda a, g: TF.grid_sample(a, g, mode, pad, align),
        [x, _grid(nd, dtype)],
        rtol=tol,
        atol=tol,
    )


def test_grid_sample_edges_noncontiguous_empty_and_fd():
    # grid points exactly on pixel centres and borders (the clamped-gradient convention)
    x = randn(1, 2, 3, 3)
    g = np.array([[[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [1.0, -1.0]]]], np.float32)
    for pad, align in itertools.product(("zeros", "border", "reflection"), (False, True)):
        check(
            lambda a, gg, p=pad, al=align: F.grid_sample(a, gg, "bilinear", p, al),
            lambda a, gg, p=pad, al=align: TF.grid_sample(a, gg, "bilinear", p, al),
            [x, g],
        )
    # a channels-last input and a transposed grid
    xs, gs = randn(2, 5, 4, 3), _grid(2, np.float32).transpose(0, 2, 1, 3).copy()
    check(
        lambda a, gg: F.grid_sample(
            a.permute(0, 3, 1, 2), gg.transpose(1, 2), "bicubic", align_corners=False
        ),
        lambda a, gg: TF.grid_sample(
            a.permute(0, 3, 1, 2), gg.transpose(1, 2), "bicubic", align_corners=False
        ),
        [xs, gs],
    )
    e = F.grid_sample(ember.zeros(0, 2, 4, 4), ember.zeros(0, 3, 3, 2), align_corners=False)
    assert tuple(e.shape) == (0, 2, 3, 3)
    for mode, pad in (("bilinear", "reflection"), ("bicubic", "border"), ("bilinear", "zeros")):
        numeric_grad_check(
            lambda a, gg, m=mode, p=pad: F.grid_sample(a, gg, m, p, False),
            [randn(1, 1, 3, 4, dtype=np.float64), _grid(2, np.float64, 3, n=1)[:, :2, :2].copy()],
        )
    numeric_grad_check(
        lambda a, gg: F.grid_sample(a, gg, "bilinear", "border", True),
        [
            randn(1, 1, 2, 3, 2, dtype=np.float64),
            _grid(3, np.float64, 4, n=1)[:, :1, :2, :2].copy(),
        ],
    )


def test_grid_sample_errors():
    x = ember.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="mode"):
        F.grid_sample(x, ember.zeros(1, 2, 2, 2), "area")
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, ember.zeros(1, 2, 2, 2), padding_mode="circular")
    with pytest.raises(ValueError, match="bicubic"):
        F.grid_sample(ember.zeros(1, 1, 2, 2, 2), ember.zeros(1, 1, 1, 1, 3), "bicubic")
    with pytest.raises(ValueError, match="grid of shape"):
        F.grid_sample(x, ember.zeros(1, 2, 2, 3))
    with pytest.raises(TypeError, match="dtype"):
        F.grid_sample(x, ember.zeros(1, 2, 2, 2).double())


# ---------------------------------------------------------------- embedding_bag
EB_CASES = [
    (mode, pad, last, psw, two_d)
    for mode, pad, last, psw, two_d in itertools.product(
        ("sum", "mean", "max"), (None, 2, -1), (False, True), (False, True), (False, True)
    )
    if not (psw and mode != "sum") and not (two_d and last)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "pad", "last", "psw", "two_d"), EB_CASES)
def test_embedding_bag_matches_torch(mode, pad, last, psw, two_d, dtype):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 4)).astype(dtype)
    if two_d:
        inp, off = rng.integers(0, 6, (3, 4)), None
    else:  # an empty bag in the middle (the last offset is the input's length: CSR form)
        inp, off = rng.integers(0, 6, (9,)), np.array([0, 2, 2, 5, 9] if last else [0, 2, 2, 5])
    arrays = [w] + ([rng.standard_normal(inp.shape).astype(dtype)] if psw else [])
    kw = {"mode": mode, "include_last_offset": last, "padding_idx": pad}

    def run(mod, lib):
        def f(wt, *p):
            o = None if off is None else mod.tensor(off)
            return lib.embedding_bag(
                mod.tensor(inp), wt, o, per_sample_weights=p[0] if p else None, **kw
            )

        return f

    check(run(ember, F), run(torch, TF), arrays)


def test_embedding_bag_scale_grad_max_norm_noncontiguous_empty_fd():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3))
    inp, off = np.array([3, 1, 1, 5, 5, 5, 0, 3]), np.array([0, 3, 5])
    # scale_grad_by_freq: the oracle is F.embedding's (PyTorch 2.13's CPU embedding_bag
    # divides by the count of the wrong index; see the embedding_bag docstring)
    we, wt = ember.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    ye = F.embedding_bag(ember.tensor(inp), we, ember.tensor(off), scale_grad_by_freq=True,
                         padding_idx=0)  # fmt: skip
    rows = TF.embedding(torch.tensor(inp), wt, padding_idx=0, scale_grad_by_freq=True)
    yt = torch.stack([rows[0:3].mean(0), rows[3:5].mean(0), rows[[5, 7]].mean(0)])
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    ye.pow(2).sum().backward()
    yt.pow(2).sum().backward()
    np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    # max_norm renormalises the looked-up rows in place, as PyTorch does
    we2, wt2 = ember.tensor(w * 3), torch.tensor(w * 3)
    ye = F.embedding_bag(ember.tensor(inp), we2, ember.tensor(off), max_norm=1.5, mode="sum")
    yt = TF.embedding_bag(torch.tensor(inp), wt2, torch.tensor(off), max_norm=1.5, mode="sum")
    np.testing.assert_allclose(ye.numpy(), yt.numpy(), rtol=1e-6)
    np.testing.assert_allclose(we2.numpy(), wt2.numpy(), rtol=1e-6)
    # a non-contiguous (transposed) weight and per_sample_weights
    wT = randn(3, 6)
    p = randn(8, seed=2)
    check(
        lambda a, b: F.embedding_bag(ember.tensor(inp), a.t(), ember.tensor(off), mode="sum",
                                     per_sample_weights=b),
        lambda a, b: TF.embedding_bag(torch.tensor(inp), a.t(), torch.tensor(off), mode="sum",
                                      per_sample_weights=b),
        [wT, p],
    )  # fmt: skip
    # no bags at all
    e = F.embedding_bag(ember.zeros(0, 3).long(), ember.randn(4, 2))
    assert tuple(e.shape) == (0, 2)
    e = F.embedding_bag(ember.tensor([], dtype=ember.int64), ember.randn(4, 2), ember.tensor([0]))
    assert e.tolist() == [[0.0, 0.0]]
    for mode in ("sum", "mean", "max"):
        numeric_grad_check(
            lambda a, m=mode: F.embedding_bag(ember.tensor(inp), a, ember.tensor(off), mode=m),
            [randn(6, 2, dtype=np.float64)],
        )
    numeric_grad_check(
        lambda a, b: F.embedding_bag(ember.tensor(inp), a, ember.tensor(off), mode="sum",
                                     per_sample_weights=b),
        [randn(6, 2, dtype=np.float64), randn(8, seed=1, dtype=np.float64)],
    )  # fmt: skip


def test_embedding_bag_errors():
    w = ember.randn(5, 2)
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(ember.zeros(2, 2).long(), w, ember.tensor([0]))
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        F.embedding_bag(ember.tensor([0, 1]), w)
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        F.embedding_bag(ember.tensor([0, 1]), w, ember.tensor([1]))
    with pytest.raises(NotImplementedError, match="per_sample_weights"):
        F.embedding_bag(ember.tensor([0, 1]), w, ember.tensor([0]), mode="max",
                        per_sample_weights=ember.ones(2))  # fmt: skip
    with pytest.raises(IndexError, match="out of range"):
        F.embedding_bag(ember.tensor([0, 7]), w, ember.tensor([0]))
    with pytest.raises(ValueError, match="mode"):
        F.embedding_bag(ember.tensor([0, 1]), w, ember.tensor([0]), mode="median")
    with pytest.raises(ValueError, match="max mode does not support"):
        F.embedding_bag(ember.tensor([0, 1]), w, ember.tensor([0]), mode="max",
                        scale_grad_by_freq=True)  # fmt: skip


def test_embedding_bag_module():
    w = randn(10, 3)
    tm = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), mode="max", padding_idx=1)
    em = ember.nn.EmbeddingBag.from_pretrained(ember.tensor(w), mode="max", padding_idx=1)
    inp, off = np.array([1, 2, 4, 5, 4, 1, 3]), np.array([0, 2, 5])
    ye, yt = em(ember.tensor(inp), ember.tensor(off)), tm(torch.tensor(inp), torch.tensor(off))
    np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy())
    assert not em.weight.requires_grad
    m = ember.nn.EmbeddingBag(7, 2, mode="sum", padding_idx=-1, include_last_offset=True)
    assert m.padding_idx == 6 and m.weight[6].tolist() == [0.0, 0.0]
    out = m(ember.tensor([0, 1, 6]), ember.tensor([0, 2, 3]), ember.tensor([1.0, 2.0, 3.0]))
    assert tuple(out.shape) == (2, 2)
    with pytest.raises(ValueError, match="mode"):
        ember.nn.EmbeddingBag(4, 2, mode="prod")


# ---------------------------------------------------------------- ctc_loss
CTC_CASES = list(
    itertools.product(("none", "mean", "sum"), (False, True), (False, True), (0, 4), (False, True))
)


def _ctc_data(dtype, normalized, blank, zero_inf, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 3, 5)).astype(dtype)
    if normalized:
        x = (x - np.log(np.exp(x).sum(2, keepdims=True))).astype(dtype)
    labels = [v for v in range(5) if v != blank]
    tl = np.array([3, 0, 4])
    # the third sequence needs 4 labels in 3 frames: impossible, unless zero_infinity is off
    il = np.array([8, 5, 3 if zero_inf else 7])
    tg = rng.choice(labels, (3, 4))
    tg[0, 1] = tg[0, 0]  # a repeated label needs a blank between
    return x, tg, il, tl


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("reduction", "zero_inf", "concat", "blank", "normalized"), CTC_CASES)
def test_ctc_loss_matches_torch(reduction, zero_inf, concat, blank, normalized, dtype):
    x, tg, il, tl = _ctc_data(dtype, normalized, blank, zero_inf)
    if concat:
        tg = np.concatenate([tg[b, : tl[b]] for b in range(3)])

    def run(mod, lib):
        return lambda a: lib.ctc_loss(
            a, mod.tensor(tg), mod.tensor(il), mod.tensor(tl), blank, reduction, zero_inf
        )

    # float32: PyTorch runs the recursion in float32, Ember in float64
    tol = 1e-5 if dtype == np.float32 else 1e-10
    check(run(ember, F), run(torch, TF), [x], rtol=tol, atol=tol)


def test_ctc_loss_infinite_unbatched_lists_noncontiguous_and_fd():
    x, tg, il, tl = _ctc_data(np.float64, True, 0, True)
    # an impossible alignment without zero_infinity: inf loss, NaN gradient (as PyTorch)
    le = F.ctc_loss(ember.tensor(x, requires_grad=True), ember.tensor(tg), il.tolist(),
                    tl.tolist(), reduction="none")  # fmt: skip
    lt = TF.ctc_loss(torch.tensor(x), torch.tensor(tg), tuple(il), tuple(tl), reduction="none")
    np.testing.assert_allclose(le.detach().numpy(), lt.numpy())
    assert np.isinf(le[2].item())
    # unbatched (T, C) with int lengths
    check(
        lambda a: F.ctc_loss(a, ember.tensor(tg[0, :3]), 8, 3),
        lambda a: TF.ctc_loss(a, torch.tensor(tg[0, :3]), (8,), (3,)),
        [x[:, 0]],
    )
    # (N, T, C) memory read through a transpose
    xb = x.transpose(1, 0, 2).copy()
    il2 = np.array([8, 5, 7])
    check(
        lambda a: F.ctc_loss(a.transpose(0, 1), ember.tensor(tg), ember.tensor(il2),
                             ember.tensor(tl)),
        lambda a: TF.ctc_loss(a.transpose(0, 1), torch.tensor(tg), torch.tensor(il2),
                              torch.tensor(tl)),
        [xb],
    )  # fmt: skip
    # the primitive's own gradient is the exact one: finite differences on raw log-probs
    from ember.nn.functional.ctc import ctc_loss_p
    from ember.ops._core import bind

    small = randn(4, 2, 3, dtype=np.float64)
    args = (ember.tensor([[1, 2], [2, 0]]), ember.tensor([4, 3]), ember.tensor([2, 1]))
    numeric_grad_check(lambda a: bind(ctc_loss_p, (a, *args), {"blank": 0}), [small])
    # and through log_softmax, the public function's too
    numeric_grad_check(
        lambda a: F.ctc_loss(a.log_softmax(2), args[0], args[1], args[2], reduction="sum"),
        [small],
    )


def test_ctc_loss_errors_and_module():
    lp = ember.randn(5, 2, 4).log_softmax(2)
    tg = ember.tensor([[1, 2], [3, 1]])
    with pytest.raises(ValueError, match="reduction"):
        F.ctc_loss(lp, tg, [5, 5], [2, 2], reduction="max")
    with pytest.raises(ValueError, match="blank"):
        F.ctc_loss(lp, tg, [5, 5], [2, 2], blank=4)
    with pytest.raises(ValueError, match="input_lengths"):
        F.ctc_loss(lp, tg, [6, 5], [2, 2])
    with pytest.raises(ValueError, match="target_lengths"):
        F.ctc_loss(lp, tg, [5, 5], [3, 2])
    with pytest.raises(ValueError, match="concatenated targets"):
        F.ctc_loss(lp, ember.tensor([1, 2, 3]), [5, 5], [2, 2])
    with pytest.raises(IndexError, match="target labels"):
        F.ctc_loss(lp, ember.tensor([[1, 7], [1, 1]]), [5, 5], [2, 2])
    with pytest.raises(ValueError, match="batch size"):
        F.ctc_loss(lp, tg, [5], [2, 2])
    with pytest.raises(ValueError, match="must not be empty"):
        F.ctc_loss(ember.zeros(5, 0, 4), ember.zeros(0, 2).long(), [], [])
    x, tgn, il, tl = _ctc_data(np.float32, True, 0, True)
    tm, em = torch.nn.CTCLoss(zero_infinity=True), ember.nn.CTCLoss(zero_infinity=True)
    np.testing.assert_allclose(
        em(ember.tensor(x), ember.tensor(tgn), ember.tensor(il), ember.tensor(tl)).item(),
        tm(torch.tensor(x), torch.tensor(tgn), torch.tensor(il), torch.tensor(tl)).item(),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="reduction"):
        ember.nn.CTCLoss(reduction="avg")
