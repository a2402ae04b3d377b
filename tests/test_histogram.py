"""``ember.histogram`` / ``ember.histogramdd`` against PyTorch 2.13: integer and tensor bins,
``range``, ``weight``, ``density``, float32/float64, 0-d, empty, non-contiguous and N-d
inputs, the outer-edge rules (inferred range, a degenerate range widened by 0.5, the right
edge held by the last bin, NaN and out-of-range values skipped) and the errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402

DT = {"float32": (ember.float32, torch.float32), "float64": (ember.float64, torch.float64)}


def _pair(a, dtype="float32"):
    a = np.asarray(a, dtype=dtype)
    return ember.tensor(a), torch.tensor(a)


def _same(e, t, rtol=1e-6):
    assert e.numpy().dtype == t.numpy().dtype
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=rtol, atol=1e-6)


HIST_CASES = [
    ({"bins": 5}, (20,)),
    ({"bins": 1}, (7,)),
    ({"bins": 4, "range": (-1.0, 0.5)}, (3, 6)),
    ({"bins": 3, "density": True}, (4, 5)),
    ({"bins": 6, "weight": True}, (2, 9)),
    ({"bins": 6, "weight": True, "density": True, "range": (-2.0, 2.0)}, (12,)),
    ({"bins": "edges"}, (15,)),
    ({"bins": "edges", "weight": True, "density": True}, (3, 4)),
    ({"bins": 4}, ()),
    ({"bins": 3}, (0,)),
    ({"bins": 3, "range": (2.0, 2.0)}, (6,)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(HIST_CASES)))
def test_histogram_matches_torch(case, dtype):
    kw, shape = HIST_CASES[case]
    rng = np.random.default_rng(case)
    ex, tx = _pair(rng.standard_normal(shape), dtype)
    ekw, tkw = dict(kw), dict(kw)
    if kw.get("weight"):
        ew, tw = _pair(rng.uniform(0, 2, shape), dtype)
        ekw["weight"], tkw["weight"] = ew, tw
    if kw["bins"] == "edges":
        eb, tb = _pair([-2.0, -0.5, 0.0, 0.25, 1.5], dtype)
        ekw["bins"], tkw["bins"] = eb, tb
    eh, ee = ember.histogram(ex, **ekw)
    th, te = torch.histogram(tx, **tkw)
    assert eh.dtype is DT[dtype][0] and ee.dtype is DT[dtype][0]
    _same(ee, te)
    _same(eh, th, rtol=1e-5)
    # the Tensor method and the named fields agree with the function
    r = ex.histogram(**ekw)
    np.testing.assert_array_equal(r.hist.numpy(), eh.numpy())
    np.testing.assert_array_equal(r.bin_edges.numpy(), ee.numpy())


def test_histogram_edge_rules():
    # the right edge falls in the last bin; NaN, inf and values outside are skipped
    vals = [0.0, 1.0, 2.0, 3.0, 3.0, -1.0, 4.0, float("nan"), float("inf")]
    ex, tx = _pair(vals)
    eb, tb = _pair([0.0, 1.0, 1.0, 3.0])  # a repeated edge: an empty bin, as PyTorch
    _same(ember.histogram(ex, eb).hist, torch.histogram(tx, tb).hist)
    _same(
        ember.histogram(ex, 3, range=(0.0, 3.0)).hist,
        torch.histogram(tx, 3, range=(0.0, 3.0)).hist,
    )
    # a constant input widens to [c - 0.5, c + 0.5]; an empty one uses [0, 1]
    for v in ([2.5, 2.5], []):
        ex, tx = _pair(v)
        e, t = ember.histogram(ex, 4), torch.histogram(tx, 4)
        _same(e.bin_edges, t.bin_edges)
        _same(e.hist, t.hist)
    # density of an empty input is 0/0 (nan), as PyTorch
    ex, tx = _pair([])
    _same(ember.histogram(ex, 2, density=True).hist, torch.histogram(tx, 2, density=True).hist)


def test_histogram_non_contiguous_and_integer_data():
    rng = np.random.default_rng(5)
    a = rng.integers(-3, 4, (6, 8)).astype(np.float32)  # values on the edges of 7 bins
    ex, tx = ember.tensor(a).T[::2], torch.tensor(a).T[::2]
    for bins in (7, 3, 13):
        e, t = ember.histogram(ex, bins), torch.histogram(tx, bins)
        _same(e.bin_edges, t.bin_edges)
        _same(e.hist, t.hist)


def test_histogram_random_edges_sweep():
    # many ranges and bin counts: the evenly spaced edges and the counts agree
    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(1, 40))
        scale = float(rng.choice([1e-3, 1.0, 100.0]))
        a = (rng.standard_normal(n) * scale).astype(np.float32)
        bins = int(rng.integers(1, 30))
        e, t = ember.histogram(ember.tensor(a), bins), torch.histogram(torch.tensor(a), bins)
        # PyTorch's SIMD linspace rounds some inner edges by an ulp of the range differently
        span = float(np.abs(a).max())
        np.testing.assert_allclose(
            e.bin_edges.numpy(), t.bin_edges.numpy(), rtol=1e-6, atol=1e-6 * span
        )
        np.testing.assert_array_equal(e.hist.numpy(), t.hist.numpy())


def test_histogram_is_not_differentiable():
    x = ember.tensor([0.5, 1.5, 2.5], requires_grad=True)
    h, edges = ember.histogram(x, 2)
    assert not h.requires_grad and not edges.requires_grad


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: ember.histogram(x.to(ember.int64), 3), "float32 or float64"),
        (lambda x: ember.histogram(x, 0), "bins must be > 0"),
        (lambda x: ember.histogram(x, 2.5), "bins must be an int"),
        (lambda x: ember.histogram(x, 3, range=(2.0, 1.0)), "min should not exceed max"),
        (lambda x: ember.histogram(x, 3, range=(0.0, 1.0, 2.0)), "range should have 2"),
        (lambda x: ember.histogram(x, 3, range=(0.0, float("inf"))), "not finite"),
        (lambda x: ember.histogram(x, ember.tensor([[0.0, 1.0]])), "1-D"),
        (lambda x: ember.histogram(x, ember.tensor([1.0])), "at least 2 elements"),
        (lambda x: ember.histogram(x, ember.tensor([1.0, 0.0])), "increase monotonically"),
        (lambda x: ember.histogram(x, ember.tensor([0.0, 1.0], dtype=ember.float64)), "dtype"),
        (lambda x: ember.histogram(x, 3, weight=ember.ones(4)), "shape of input"),
        (
            lambda x: ember.histogram(x, 3, weight=ember.ones(5, dtype=ember.float64)),
            "same dtype",
        ),
        (lambda x: ember.histogram(ember.tensor([1.0, float("nan")]), 3), "not finite"),
    ],
)
def test_histogram_errors(call, match):
    x = ember.tensor([1.0, 2.0, 1.0, 4.0, 2.5])
    with pytest.raises((ValueError, TypeError), match=match):
        call(x)


HDD_CASES = [
    ({"bins": 3}, (10, 2)),
    ({"bins": [2, 4]}, (12, 2)),
    ({"bins": (3, 1, 2)}, (4, 5, 3)),
    ({"bins": [2, 3], "range": [-1.0, 1.0, 0.0, 2.0]}, (20, 2)),
    ({"bins": [3, 2], "weight": True, "density": True}, (9, 2)),
    ({"bins": "edges"}, (15, 2)),
    ({"bins": "edges", "weight": True}, (3, 5, 2)),
    ({"bins": 4}, (7, 1)),
    ({"bins": 2}, (0, 2)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(HDD_CASES)))
def test_histogramdd_matches_torch(case, dtype):
    kw, shape = HDD_CASES[case]
    rng = np.random.default_rng(100 + case)
    ex, tx = _pair(rng.standard_normal(shape), dtype)
    ekw, tkw = dict(kw), dict(kw)
    if kw.get("weight"):
        ew, tw = _pair(rng.uniform(0, 2, shape[:-1]), dtype)
        ekw["weight"], tkw["weight"] = ew, tw
    if kw["bins"] == "edges":
        edges = [[-2.0, -0.3, 0.0, 1.0], [-1.0, 0.5, 2.5]]
        ekw["bins"] = [_pair(e, dtype)[0] for e in edges]
        tkw["bins"] = [_pair(e, dtype)[1] for e in edges]
    e = ember.histogramdd(ex, **ekw)
    t = torch.histogramdd(tx, **tkw)
    assert tuple(e.hist.shape) == tuple(t.hist.shape)
    assert len(e.bin_edges) == len(t.bin_edges)
    for a, b in zip(e.bin_edges, t.bin_edges):
        _same(a, b)
    _same(e.hist, t.hist, rtol=1e-5)


def test_histogramdd_non_contiguous_and_skipped_points():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 8)).astype(np.float32)
    a[0, 3] = np.nan  # a NaN coordinate drops its whole point
    ex, tx = ember.tensor(a).T, torch.tensor(a).T
    kw = {"bins": [3, 3], "range": [-1.0, 1.0, -0.5, 0.5]}
    _same(ember.histogramdd(ex, **kw).hist, torch.histogramdd(tx, **kw).hist)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: ember.histogramdd(x, [2]), "must equal the innermost"),
        (lambda x: ember.histogramdd(x[:, 0], 2), "at least 2 dimensions"),
        (lambda x: ember.histogramdd(x, 2, range=[0.0, 1.0]), "should have 4 elements"),
        (lambda x: ember.histogramdd(x, [2, -1]), "bins must be > 0"),
        (lambda x: ember.histogramdd(x, 2, weight=ember.ones(6, 1)), "without its last"),
        (lambda x: ember.histogramdd(x, ember.tensor([0.0, 1.0])), "sequence of N"),
        (lambda x: ember.histogramdd(x, [2, "a"]), "ints or 1-D tensors"),
    ],
)
def test_histogramdd_errors(call, match):
    x = ember.rand(6, 2)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x)
