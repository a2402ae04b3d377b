"""embedding_bag as array ops (no per-bag Python loop, no reads of the indices' values in the
forward): values and gradients against PyTorch for every mode and option, ties in ``max``,
empty and all-padding bags, ``max_norm``, ``ember.compile(fullgraph=True)`` and ONNX export."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check

import ember
import ember.nn.functional as F

DTYPES = [np.float32, np.float64]
# bags: [0:2], [2:2] (empty), [2:5], [5:6] (all padding: index 2), [6:9]
INP = np.array([0, 5, 1, 3, 2, 2, 4, 2, 1])
OFF = np.array([0, 2, 2, 5, 6])
INP2D = np.array([[0, 5, 1], [2, 2, 2], [3, 4, 2], [1, 1, 0]])  # row 1 all padding

CASES = [
    (mode, layout, pad, psw, last)
    for mode, layout, pad, psw, last in itertools.product(
        ("sum", "mean", "max"), ("offsets", "2d"), (None, 2), (False, True), (False, True)
    )
    if not (psw and mode != "sum") and not (layout == "2d" and last)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "layout", "pad", "psw", "last"), CASES)
def test_matches_torch(mode, layout, pad, psw, last, dtype):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 4)).astype(dtype)
    if layout == "2d":
        inp, off = INP2D, None
    else:  # include_last_offset: the CSR form (the last offset is the input's length)
        inp, off = INP, (np.append(OFF, 9) if last else OFF)
    arrays = [w] + ([rng.standard_normal(inp.shape).astype(dtype)] if psw else [])
    kw = {"mode": mode, "include_last_offset": last, "padding_idx": pad}

    def run(mod, lib):
        def f(wt, *p):
            o = None if off is None else mod.tensor(off)
            return lib.embedding_bag(
                mod.tensor(inp), wt, o, per_sample_weights=p[0] if p else None, **kw
            )

        return f

    eo, _ = check(run(ember, F), run(torch, TF), arrays)
    if pad is not None:  # the all-padding bag gives zeros
        assert not eo.detach().numpy()[1 if layout == "2d" else 3].any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad", [None, 1])
def test_max_ties_gradient_goes_to_the_first_maximum(dtype, pad):
    # small integer weights: many ties in each column, the same word twice in a bag too;
    # PyTorch gives the whole (bag, column) gradient to the first maximal entry's row
    rng = np.random.default_rng(11)
    for _ in range(10):
        w = rng.integers(-2, 3, (5, 4)).astype(dtype)
        inp, off = rng.integers(0, 5, 12), np.array([0, 3, 3, 7, 8])
        check(
            lambda a, i=inp, o=off: F.embedding_bag(ember.tensor(i), a, ember.tensor(o),
                                                    mode="max", padding_idx=pad),
            lambda a, i=inp, o=off: TF.embedding_bag(torch.tensor(i), a, torch.tensor(o),
                                                     mode="max", padding_idx=pad),
            [w], rtol=0, atol=0,
        )  # fmt: skip


def test_max_fixed_bags_ties():
    w = np.array([[1.0, 2.0], [1.0, 3.0], [0.0, 3.0]])
    inp = np.array([[0, 1, 2], [2, 2, 1]])
    check(
        lambda a: F.embedding_bag(ember.tensor(inp), a, mode="max"),
        lambda a: TF.embedding_bag(torch.tensor(inp), a, mode="max"),
        [w], rtol=0, atol=0,
    )  # fmt: skip


def test_empty_bags_and_no_bags():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3))
    # empty bags at the start, middle and end
    inp, off = np.array([1, 4, 4, 0, 3]), np.array([0, 0, 2, 2, 5, 5])
    for mode in ("sum", "mean", "max"):
        check(
            lambda a, m=mode: F.embedding_bag(ember.tensor(inp), a, ember.tensor(off), mode=m,
                                              include_last_offset=True),
            lambda a, m=mode: TF.embedding_bag(torch.tensor(inp), a, torch.tensor(off), mode=m,
                                               include_last_offset=True),
            [w],
        )  # fmt: skip
        we = ember.tensor(w, requires_grad=True)
        out = F.embedding_bag(ember.tensor([], dtype=ember.int64), we, ember.tensor([0, 0]),
                              mode=mode)  # fmt: skip
        assert out.tolist() == [[0.0] * 3, [0.0] * 3]
        out.sum().backward()
        assert not we.grad.numpy().any()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_max_norm_renormalises_in_place(mode):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 3)) * 3
    inp, off = np.array([3, 1, 1, 5, 2, 5]), np.array([0, 3, 4])
    we, wt = ember.tensor(w.copy(), requires_grad=True), torch.tensor(w.copy(), requires_grad=True)
    ye = F.embedding_bag(ember.tensor(inp), we, ember.tensor(off), max_norm=1.5, mode=mode)
    yt = TF.embedding_bag(torch.tensor(inp), wt, torch.tensor(off), max_norm=1.5, mode=mode)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(we.detach().numpy(), wt.detach().numpy(), rtol=1e-6)
    assert np.allclose(we.detach().numpy()[[0, 4]], w[[0, 4]])  # rows not looked up
    ye.pow(2).sum().backward()
    yt.pow(2).sum().backward()
    np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("mode", "pad", "last", "psw"),
    [("sum", None, False, True), ("sum", 2, True, True), ("mean", 2, False, False),
     ("mean", None, True, False), ("max", None, False, False), ("max", 2, True, False)],
)  # fmt: skip
def test_compile_fullgraph_matches_eager(mode, pad, last, psw):
    m = ember.nn.EmbeddingBag(10, 3, mode=mode, padding_idx=pad, include_last_offset=last)
    m.weight.data = m.weight.data.double()

    def f(i, o, p):
        return m(i, o, p).pow(2).sum()

    cf = ember.compile(f, fullgraph=True)
    for n in (9, 12, 9):
        rng = np.random.default_rng(n)
        i = ember.tensor(rng.integers(0, 10, n))
        o = ember.tensor(np.array([0, 2, 2, 5, n] if last else [0, 2, 2, 5]))
        p = ember.tensor(rng.standard_normal(n), requires_grad=True) if psw else None
        results = []
        for fn in (f, cf):
            m.zero_grad()
            if p is not None:
                p.grad = None
            y = fn(i, o, p)
            y.backward()
            results.append(
                (y.item(), m.weight.grad.numpy().copy(), None if p is None else p.grad.numpy())
            )
        (ye, ge, pe), (yc, gc, pc) = results
        np.testing.assert_allclose(yc, ye, rtol=1e-12)
        np.testing.assert_allclose(gc, ge, rtol=1e-12, atol=1e-12)
        if psw:
            np.testing.assert_allclose(pc, pe, rtol=1e-12, atol=1e-12)
    assert not cf.explain().graph_breaks


def test_value_checks_still_raise_in_eager():
    w = ember.randn(5, 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        F.embedding_bag(ember.tensor([0, 1, 2]), w, ember.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match=r"offsets\[-1\] can not be greater"):
        F.embedding_bag(ember.tensor([0, 1]), w, ember.tensor([0, 3]), mode="max")
    with pytest.raises(IndexError, match="out of range"):
        F.embedding_bag(ember.tensor([0, 5]), w, ember.tensor([0]), mode="max")


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_onnx_export(mode):
    ort = pytest.importorskip("onnxruntime")
    import ember.onnx

    m = ember.nn.EmbeddingBag(10, 3, mode=mode, padding_idx=2, include_last_offset=True).eval()
    i, o = ember.tensor(np.array([1, 2, 3, 4, 2, 5, 9, 0, 2])), ember.tensor([0, 2, 2, 5, 9])
    proto = ember.onnx.export(m, (i, o))
    sess = ort.InferenceSession(proto.SerializeToString())
    feeds = {x.name: v.numpy() for x, v in zip(sess.get_inputs(), (i, o))}
    np.testing.assert_allclose(sess.run(None, feeds)[0], m(i, o).detach().numpy(), rtol=1e-6)
