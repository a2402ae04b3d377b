"""Ops the record-driven tests (tests/test_ops.py) cannot drive: list inputs, tuple outputs,
creation functions and Python results, against PyTorch; plus their error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember

RNG = np.random.default_rng(0)


def _pair(*shapes, dtype=np.float32):
    arrays = [RNG.uniform(-2, 2, s).astype(dtype) for s in shapes]
    return [ember.tensor(a) for a in arrays], [torch.from_numpy(a.copy()) for a in arrays]


def _same(e, t, rtol=1e-5):
    if isinstance(t, (tuple, list)):
        assert isinstance(e, (tuple, list)) and len(e) == len(t)
        for a, b in zip(e, t):
            _same(a, b, rtol)
        return
    assert tuple(e.shape) == tuple(t.shape), (tuple(e.shape), tuple(t.shape))
    assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize(
    "name,shapes",
    [
        ("hstack", [(2,), (3,)]),
        ("hstack", [(2, 1), (2, 3)]),
        ("hstack", [(), (2,)]),
        ("vstack", [(2,), (2,)]),
        ("vstack", [(1, 3), (2, 3)]),
        ("vstack", [(), ()]),
        ("row_stack", [(2,), (2,)]),
        ("dstack", [(2,), (2,)]),
        ("dstack", [(2, 3), (2, 3, 2)]),
        ("column_stack", [(3,), (3,)]),
        ("column_stack", [(3, 2), (3,)]),
        ("column_stack", [(), ()]),
    ],
)
def test_stacking_matches_torch_values_and_grads(name, shapes):
    es, ts = _pair(*shapes)
    for t in ts:
        t.requires_grad_()
    es = [e.requires_grad_() for e in es]
    ey, ty = getattr(ember, name)(es), getattr(torch, name)(ts)
    _same(ey, ty)
    g = RNG.standard_normal(tuple(ty.shape)).astype(np.float32)
    ey.backward(ember.tensor(g))
    ty.backward(torch.from_numpy(g))
    for e, t in zip(es, ts):
        _same(e.grad, t.grad)


@pytest.mark.parametrize("fn", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast_with_several_tensors_returns_a_tuple(fn):
    es, ts = _pair((), (3,), (2, 3), (1, 2, 3, 1))
    _same(getattr(ember, fn)(*es), getattr(torch, fn)(*ts))
    _same(getattr(ember, fn)(es), getattr(torch, fn)(ts))


@pytest.mark.parametrize(
    "shape,spec,dim",
    [
        ((7,), 3, 0),
        ((2, 7), 3, 1),
        ((5,), [1, 4], 0),
        ((5,), [3, 1], 0),  # decreasing index gives an empty part
        ((5,), [-2, 9], 0),
        ((4, 2), 5, 0),  # more sections than elements: empty parts
        ((0, 3), 2, 0),
    ],
)
def test_tensor_split_matches_torch(shape, spec, dim):
    (e,), (t,) = _pair(shape)
    _same(ember.tensor_split(e, spec, dim), torch.tensor_split(t, spec, dim))
    _same(e.tensor_split(spec, dim), t.tensor_split(spec, dim))


def test_tensor_split_takes_a_tensor_of_indices_and_backpropagates():
    e = ember.arange(6.0).requires_grad_()
    t = torch.arange(6.0).requires_grad_()
    es = ember.tensor_split(e, ember.tensor([2, 4]))
    ts = torch.tensor_split(t, torch.tensor([2, 4]))
    _same(es, ts)
    (es[0].sum() + 2 * es[2].sum()).backward()
    (ts[0].sum() + 2 * ts[2].sum()).backward()
    _same(e.grad, t.grad)


@pytest.mark.parametrize(
    "fn,shape,spec",
    [
        ("hsplit", (6,), 3),
        ("hsplit", (2, 4), 2),
        ("hsplit", (2, 4), [1, 3]),
        ("vsplit", (4, 2), 2),
        ("vsplit", (4, 2), [3]),
        ("dsplit", (1, 2, 4), 2),
    ],
)
def test_hvd_split_match_torch(fn, shape, spec):
    (e,), (t,) = _pair(shape)
    _same(getattr(ember, fn)(e, spec), getattr(torch, fn)(t, spec))


def test_split_errors_name_the_problem():
    x = ember.zeros(2, 5)
    with pytest.raises(ValueError, match="not divisible by 2"):
        ember.hsplit(x, 2)
    with pytest.raises(ember.ops.ShapeError, match="at least a 2-dimensional"):
        ember.vsplit(ember.zeros(3), 3)
    with pytest.raises(ember.ops.ShapeError, match="at least a 3-dimensional"):
        ember.dsplit(x, 1)
    with pytest.raises(ValueError, match="must be positive"):
        ember.tensor_split(x, 0)
    with pytest.raises(ember.ops.ShapeError, match="at least a 1-dimensional"):
        ember.tensor_split(ember.tensor(1.0), 2)


def test_split_with_sizes_matches_torch():
    (e,), (t,) = _pair((2, 6))
    _same(ember.split_with_sizes(e, [1, 2, 3], 1), torch.split_with_sizes(t, [1, 2, 3], 1))
    with pytest.raises(ember.ops.ShapeError, match="sum to"):
        ember.split_with_sizes(e, [1, 2], 1)


@pytest.mark.parametrize("r,rep", [(2, False), (3, False), (2, True), (1, False), (0, False)])
def test_combinations_match_torch(r, rep):
    (e,), (t,) = _pair((4,))
    _same(
        ember.combinations(e, r, with_replacement=rep),
        torch.combinations(t, r, with_replacement=rep),
    )


def test_combinations_of_too_few_elements_is_empty_like_torch():
    (e,), (t,) = _pair((2,))
    _same(ember.combinations(e, 3), torch.combinations(t, 3))


@pytest.mark.parametrize("row,col,off", [(3, 3, 0), (3, 4, 1), (4, 2, -1), (0, 3, 0), (3, 3, 5)])
def test_tril_triu_indices_match_torch(row, col, off):
    _same(ember.tril_indices(row, col, off), torch.tril_indices(row, col, off))
    _same(ember.triu_indices(row, col, off), torch.triu_indices(row, col, off))
    with pytest.raises(ValueError, match="non-negative"):
        ember.tril_indices(-1, 2)


def test_trapezoid_with_sample_points_and_its_alias():
    (y, x), (ty, tx) = _pair((3, 5), (5,))
    _same(ember.trapezoid(y, x), torch.trapezoid(ty, tx))
    _same(ember.trapz(y, x), torch.trapz(ty, tx))
    _same(ember.cumulative_trapezoid(y, x), torch.cumulative_trapezoid(ty, tx))
    (y, x), (ty, tx) = _pair((3, 5), (3, 5))
    _same(ember.trapezoid(y, x, dim=1), torch.trapezoid(ty, tx, dim=1))
    with pytest.raises(TypeError, match="not both"):
        ember.trapezoid(y, x, dx=1.0)


def test_diff_with_prepend_append_and_bools():
    (x, p, a), (tx, tp, ta) = _pair((3, 4), (3, 1), (3, 2))
    _same(ember.diff(x, prepend=p, append=a), torch.diff(tx, prepend=tp, append=ta))
    b = np.array([True, False, False, True])
    _same(ember.diff(ember.tensor(b)), torch.diff(torch.from_numpy(b)))


def test_select_and_rot90_errors():
    with pytest.raises(IndexError, match="out of range"):
        ember.select(ember.zeros(2, 3), 1, 3)
    with pytest.raises(ValueError, match="must differ"):
        ember.rot90(ember.zeros(2, 3), 1, (0, 0))


def test_product_errors_name_the_operand():
    with pytest.raises(ember.ops.ShapeError, match="mat1 must be a 2-D"):
        ember.addmm(ember.zeros(2, 2), ember.zeros(2), ember.zeros(2, 2))
    with pytest.raises(ember.ops.ShapeError, match="cannot be broadcast"):
        ember.addmm(ember.zeros(3, 3), ember.zeros(2, 2), ember.zeros(2, 2))
    with pytest.raises(ember.ops.ShapeError, match="contracted dimensions"):
        ember.tensordot(ember.zeros(2, 3), ember.zeros(2, 3), dims=1)
    with pytest.raises(ember.ops.ShapeError, match="last dimensions differ"):
        ember.inner(ember.zeros(2, 3), ember.zeros(2))
    with pytest.raises(ember.ops.ShapeError, match="1-D or 2-D"):
        ember.diag(ember.zeros(2, 2, 2))


def test_addmm_beta_zero_ignores_nan_in_input_like_torch():
    inp = np.full((2, 2), np.nan, np.float32)
    m = np.ones((2, 3), np.float32)
    e = ember.addmm(ember.tensor(inp), ember.tensor(m), ember.tensor(m.T.copy()), beta=0)
    t = torch.addmm(
        torch.from_numpy(inp), torch.from_numpy(m), torch.from_numpy(m.T.copy()), beta=0
    )
    _same(e, t)


def test_block_diag_of_mixed_dtypes_and_no_inputs():
    a = ember.tensor([[1, 2]])
    b = ember.tensor([[0.5]])
    _same(
        ember.block_diag(a, b),
        torch.block_diag(torch.tensor([[1, 2]]), torch.tensor([[0.5]])),
    )
    _same(ember.block_diag(), torch.block_diag())


def test_allclose_and_isclose_edge_cases_match_torch():
    a = np.array([1.0, np.inf, -np.inf, np.nan, 0.0], np.float32)
    b = np.array([1.0 + 1e-7, np.inf, np.inf, np.nan, 1e-9], np.float32)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0}):
        _same(
            ember.isclose(ember.tensor(a), ember.tensor(b), **kw),
            torch.isclose(torch.from_numpy(a), torch.from_numpy(b), **kw),
        )
        assert ember.allclose(ember.tensor(a), ember.tensor(b), **kw) == torch.allclose(
            torch.from_numpy(a), torch.from_numpy(b), **kw
        )
    ia, ib = np.array([5, -3, 7]), np.array([6, -3, 100])
    _same(
        ember.isclose(ember.tensor(ia), ember.tensor(ib), atol=1),
        torch.isclose(torch.from_numpy(ia), torch.from_numpy(ib), atol=1),
    )
    with pytest.raises(ValueError, match="non-negative"):
        ember.isclose(ember.tensor(a), ember.tensor(b), rtol=-1)


def test_integer_functions_reject_floats_and_positive_rejects_bool():
    with pytest.raises(TypeError, match="integer"):
        ember.gcd(ember.tensor([1.0]), ember.tensor([2.0]))
    with pytest.raises(TypeError, match="bool"):
        ember.positive(ember.tensor([True]))


def test_math_extras_promote_integers_like_torch():
    ia, ib = np.array([1, -2, 3]), np.array([2, 2, -1])
    for name in ("atan2", "copysign", "xlogy", "float_power"):
        _same(
            getattr(ember, name)(ember.tensor(ia), ember.tensor(ib)),
            getattr(torch, name)(torch.from_numpy(ia), torch.from_numpy(ib)),
        )
    _same(ember.sinc(ember.tensor(ia)), torch.sinc(torch.from_numpy(ia)))
    _same(ember.deg2rad(ember.tensor(ia)), torch.deg2rad(torch.from_numpy(ia)))


def test_fmax_fmin_ignore_nan_and_xlogy_zero_times_nan():
    a = np.array([np.nan, 1.0, np.nan, 2.0], np.float32)
    b = np.array([1.0, np.nan, np.nan, 3.0], np.float32)
    for name in ("fmax", "fmin"):
        _same(
            getattr(ember, name)(ember.tensor(a), ember.tensor(b)),
            getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)),
        )
    x = np.array([0.0, 0.0, 1.0], np.float32)
    y = np.array([0.0, np.nan, 0.0], np.float32)
    _same(
        ember.xlogy(ember.tensor(x), ember.tensor(y)),
        torch.xlogy(torch.from_numpy(x), torch.from_numpy(y)),
    )


# -- statistics ----------------------------------------------------------------------------
def _t(a):
    return ember.tensor(a), torch.from_numpy(np.array(a))


@pytest.mark.parametrize("name", ["median", "nanmedian"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_median_along_a_dim_gives_values_indices_and_grads_like_torch(name, keepdim):
    a = RNG.permutation(24).reshape(4, 6).astype(np.float32)
    a[1, 2] = np.nan
    a[3, :] = np.nan
    e, t = ember.tensor(a).requires_grad_(), torch.from_numpy(a).requires_grad_()
    ev, ei = getattr(ember, name)(e, 1, keepdim)
    tv, ti = getattr(torch, name)(t, 1, keepdim)
    _same(ev, tv)
    # which nan an all-nan row reports is unspecified (PyTorch's sort of nans decides)
    keep = ~torch.from_numpy(np.isnan(a).all(1, keepdims=keepdim))
    _same(ember.tensor(ei.numpy()[keep.numpy()]), ti[keep])
    ev.nan_to_num().sum().backward()
    tv.nan_to_num().sum().backward()
    _same(e.grad, t.grad)
    _same(getattr(ember, name)(ember.tensor(a)), getattr(torch, name)(torch.from_numpy(a)))


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
@pytest.mark.parametrize("interp", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_with_a_tensor_of_q_and_nans(name, interp):
    a = RNG.uniform(-2, 2, (3, 7)).astype(np.float32)
    a[0, 3] = np.nan
    q = np.array([0.0, 0.25, 0.5, 0.9, 1.0], np.float32)
    for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": None, "keepdim": True}):
        _same(
            getattr(ember, name)(ember.tensor(a), ember.tensor(q), interpolation=interp, **kw),
            getattr(torch, name)(
                torch.from_numpy(a), torch.from_numpy(q), interpolation=interp, **kw
            ),
        )


def test_quantile_errors():
    x = ember.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        ember.quantile(x, 1.5)
    with pytest.raises(ValueError, match="interpolation"):
        ember.quantile(x, 0.5, interpolation="cubic")
    with pytest.raises(TypeError, match="floating point"):
        ember.quantile(ember.tensor([1, 2]), 0.5)
    with pytest.raises(IndexError, match="empty"):
        ember.median(ember.zeros(2, 0), 1)


def test_mode_matches_torch_including_ties_and_grad():
    a = np.array([[1.0, 2.0, 2.0, 1.0, 3.0], [5.0, 5.0, 4.0, 4.0, 4.0]], np.float32)
    e, t = ember.tensor(a).requires_grad_(), torch.from_numpy(a).requires_grad_()
    ev, ei = ember.mode(e)
    tv, ti = torch.mode(t)
    _same(ev, tv)
    _same(ei, ti)
    ev.sum().backward()
    tv.sum().backward()
    _same(e.grad, t.grad)
    _same(ember.mode(ember.tensor(a), 0, True), torch.mode(torch.from_numpy(a), 0, True))


def test_aminmax_cummax_cummin_match_torch():
    a = np.array([[1.0, 3.0, 3.0, 2.0, 5.0], [2.0, np.nan, 1.0, 0.0, 7.0]], np.float32)
    _same(ember.aminmax(ember.tensor(a[:, [0, 2]])), torch.aminmax(torch.from_numpy(a[:, [0, 2]])))
    _same(ember.aminmax(ember.tensor(a), dim=1), torch.aminmax(torch.from_numpy(a), dim=1))
    for name in ("cummax", "cummin"):
        for dim in (0, 1):
            _same(
                getattr(ember, name)(ember.tensor(a), dim),
                getattr(torch, name)(torch.from_numpy(a), dim),
            )
    b = RNG.uniform(-1, 1, (3, 4)).astype(np.float32)
    e, t = ember.tensor(b).requires_grad_(), torch.from_numpy(b).requires_grad_()
    (ember.cummax(e, 1).values * ember.arange(4.0)).sum().backward()
    (torch.cummax(t, 1).values * torch.arange(4.0)).sum().backward()
    _same(e.grad, t.grad)
    ints = np.array([3, 1, 4, 1, 5])
    _same(ember.cummin(ember.tensor(ints), 0), torch.cummin(torch.from_numpy(ints), 0))


def test_logcumsumexp_is_stable_for_large_and_infinite_inputs():
    a = np.array([[-1000.0, 0.0, 1000.0, -np.inf], [-np.inf, -np.inf, 3.0, 2.0]], np.float64)
    e, t = ember.tensor(a).requires_grad_(), torch.from_numpy(a).requires_grad_()
    _same(ember.logcumsumexp(e, 1), torch.logcumsumexp(t, 1))
    g = np.array([[1.0, -2.0, 0.5, 1.0], [0.3, 1.0, -1.0, 2.0]])
    ember.logcumsumexp(e, 1).backward(ember.tensor(g))
    torch.logcumsumexp(t, 1).backward(torch.from_numpy(g))
    _same(e.grad, t.grad)


def test_cov_with_weights_matches_torch():
    x = RNG.uniform(-1, 1, (3, 6))
    fw = np.array([1, 2, 0, 3, 1, 1])
    aw = RNG.uniform(0.1, 1, 6)
    for kw in (
        {"fweights": fw},
        {"aweights": aw},
        {"fweights": fw, "aweights": aw, "correction": 0},
    ):
        _same(
            ember.cov(
                ember.tensor(x),
                **{k: ember.tensor(v) if k != "correction" else v for k, v in kw.items()},
            ),
            torch.cov(
                torch.from_numpy(x),
                **{k: torch.from_numpy(v) if k != "correction" else v for k, v in kw.items()},
            ),
        )
    with pytest.raises(TypeError, match="integral"):
        ember.cov(ember.tensor(x), fweights=ember.tensor(aw))


def test_bincount_histc_bucketize_searchsorted_match_torch():
    x = np.array([0, 1, 1, 3, 7])
    w = np.array([0.5, 1.0, 2.0, -1.0, 3.0], np.float32)
    _same(ember.bincount(ember.tensor(x)), torch.bincount(torch.from_numpy(x)))
    _same(
        ember.bincount(ember.tensor(x), ember.tensor(w)),
        torch.bincount(torch.from_numpy(x), torch.from_numpy(w)),
    )
    _same(
        ember.bincount(ember.tensor(x), minlength=10),
        torch.bincount(torch.from_numpy(x), minlength=10),
    )
    _same(ember.bincount(ember.tensor(x[:0])), torch.bincount(torch.from_numpy(x[:0])))
    with pytest.raises(ValueError, match="non-negative"):
        ember.bincount(ember.tensor([-1, 2]))
    h = RNG.uniform(-1, 3, 50).astype(np.float32)
    for kw in ({"bins": 4, "min": 0, "max": 3}, {"bins": 7}, {"bins": 5, "min": -5, "max": 5}):
        _same(ember.histc(ember.tensor(h), **kw), torch.histc(torch.from_numpy(h), **kw))
    bnd = np.array([1, 3, 5, 7])
    v = np.array([[0, 1, 3], [6, 7, 9]])
    for right in (False, True):
        _same(
            ember.bucketize(ember.tensor(v), ember.tensor(bnd), right=right),
            torch.bucketize(torch.from_numpy(v), torch.from_numpy(bnd), right=right),
        )
        _same(
            ember.searchsorted(ember.tensor(bnd), ember.tensor(v), right=right),
            torch.searchsorted(torch.from_numpy(bnd), torch.from_numpy(v), right=right),
        )
    seq = np.sort(RNG.uniform(0, 1, (2, 5)), 1)
    vals = RNG.uniform(0, 1, (2, 3))
    _same(
        ember.searchsorted(ember.tensor(seq), ember.tensor(vals), side="right", out_int32=True),
        torch.searchsorted(
            torch.from_numpy(seq), torch.from_numpy(vals), side="right", out_int32=True
        ),
    )
    perm = np.array([2, 0, 1])
    uns = np.array([5.0, 1.0, 3.0])
    _same(
        ember.searchsorted(
            ember.tensor(uns),
            ember.tensor([2.0, 4.0], dtype=ember.float64),
            sorter=ember.tensor(np.array([1, 2, 0])),
        ),
        torch.searchsorted(
            torch.from_numpy(uns),
            torch.tensor([2.0, 4.0], dtype=torch.float64),
            sorter=torch.from_numpy(np.array([1, 2, 0])),
        ),
    )
    del perm


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"return_inverse": True},
        {"return_counts": True},
        {"return_inverse": True, "return_counts": True},
        {"dim": 0, "return_counts": True},
        {"dim": 1, "return_inverse": True},
    ],
)
def test_unique_consecutive_matches_torch(kw):
    a = np.array([[1, 1, 2, 2, 3, 1], [1, 1, 2, 2, 3, 1], [4, 4, 4, 0, 0, 0]])
    _same(
        ember.unique_consecutive(ember.tensor(a), **kw),
        torch.unique_consecutive(torch.from_numpy(a), **kw),
    )


def test_unravel_index_matches_torch():
    idx = np.array([[0, 5], [11, -1]])
    _same(
        ember.unravel_index(ember.tensor(idx), (3, 4)),
        torch.unravel_index(torch.from_numpy(idx), (3, 4)),
    )
    _same(
        ember.unravel_index(ember.tensor(7), (2, 2, 2)),
        torch.unravel_index(torch.tensor(7), (2, 2, 2)),
    )
    with pytest.raises(IndexError, match="out of bounds"):
        ember.unravel_index(ember.tensor([12]), (3, 4))


def test_aliases_are_the_ops_they_name_and_match_torchs_aliases():
    from ember.ops.aliases import ALIASES

    a = np.array([[-1.5, 0.25, 2.0]], np.float32)
    b = np.array([[0.5, 0.25, -3.0]], np.float32)
    for alias, target in ALIASES.items():
        assert getattr(ember, alias) is getattr(ember, target), alias
        fn = getattr(torch, alias)
        if alias in ("moveaxis",):
            _same(ember.moveaxis(ember.tensor(a), 0, 1), fn(torch.from_numpy(a), 0, 1))
        elif alias == "ger":
            _same(
                ember.ger(ember.tensor(a[0]), ember.tensor(b[0])),
                fn(torch.from_numpy(a[0]), torch.from_numpy(b[0])),
            )
        elif alias == "arccosh":
            _same(ember.arccosh(ember.tensor(a) + 3), fn(torch.from_numpy(a) + 3))
        elif alias == "clip":
            _same(ember.clip(ember.tensor(a), -1, 1), fn(torch.from_numpy(a), -1, 1))
        elif alias in (
            "absolute",
            "arccos",
            "arcsin",
            "arctan",
            "negative",
            "fix",
            "arcsinh",
            "arctanh",
        ):
            x = a / 3
            _same(getattr(ember, alias)(ember.tensor(x)), fn(torch.from_numpy(x)))
        else:
            _same(
                getattr(ember, alias)(ember.tensor(a), ember.tensor(b)),
                fn(torch.from_numpy(a), torch.from_numpy(b)),
            )
    for m in ("greater", "greater_equal", "less", "less_equal", "not_equal", "moveaxis", "ger"):
        assert hasattr(ember.Tensor, m), m


# -- ember.special -------------------------------------------------------------------------
def test_special_has_every_torch_special_function():
    names = [
        n
        for n in dir(torch.special)
        if not n.startswith("_") and callable(getattr(torch.special, n))
    ]
    names = [n for n in names if n not in ("Tensor",)]
    missing = [n for n in names if not hasattr(ember.special, n)]
    assert not missing, missing


def test_special_aliases_and_polygamma_argument_order_match_torch():
    x = np.array([0.3, 1.0, 2.5], np.float64)
    e, t = ember.tensor(x), torch.from_numpy(x)
    for name in (
        "expit",
        "psi",
        "gammaln",
        "multigammaln",
        "exp2",
        "expm1",
        "log1p",
        "logit",
        "sinc",
        "round",
        "erf",
    ):
        args = (2,) if name == "multigammaln" else ()
        xe, xt = (e + 1, t + 1) if name == "multigammaln" else (e, t)
        _same(getattr(ember.special, name)(xe, *args), getattr(torch.special, name)(xt, *args))
    _same(ember.polygamma(2, e), torch.polygamma(2, t))
    _same(ember.special.polygamma(1, e), torch.special.polygamma(1, t))
    _same(e.polygamma(3), t.polygamma(3))
    _same(ember.special.softmax(e, 0), torch.special.softmax(t, 0))
    _same(ember.special.logsumexp(e, 0), torch.special.logsumexp(t, 0))


def test_incomplete_gamma_differentiates_in_its_second_argument_like_torch():
    a = np.array([0.5, 1.5, 3.0])
    x = np.array([0.7, 2.0, 1.0])
    ea, ex = ember.tensor(a), ember.tensor(x).requires_grad_()
    ta, tx = torch.from_numpy(a), torch.from_numpy(x).requires_grad_()
    for name in ("gammainc", "gammaincc"):
        ex.grad = None
        tx.grad = None
        getattr(ember.special, name)(ea, ex).sum().backward()
        getattr(torch.special, name)(ta, tx).sum().backward()
        _same(ex.grad, tx.grad)


def test_polynomials_take_a_tensor_of_degrees():
    x = np.linspace(-0.9, 0.9, 6)
    n = np.array([0, 1, 2, 5, 7, -1])
    for name in (
        "chebyshev_polynomial_t",
        "hermite_polynomial_h",
        "legendre_polynomial_p",
        "laguerre_polynomial_l",
    ):
        _same(
            getattr(ember.special, name)(ember.tensor(x), ember.tensor(n)),
            getattr(torch.special, name)(torch.from_numpy(x), torch.from_numpy(n)),
        )


def test_special_errors_name_the_problem(monkeypatch):
    with pytest.raises(ValueError, match=r"greater than \(p-1\)/2"):
        ember.mvlgamma(ember.tensor([0.5]), 3)
    with pytest.raises(ValueError, match="non-negative integer"):
        ember.polygamma(-1, ember.tensor([1.0]))
    import sys

    monkeypatch.setitem(sys.modules, "scipy.special", None)
    with pytest.raises(ImportError, match=r"ember\[special\]"):
        ember.special.ndtr(ember.tensor([0.0]))


# -- out-of-place writes -------------------------------------------------------------------
def _grads_match(efn, tfn, *arrays):
    es = [
        ember.tensor(a).requires_grad_() if a.dtype.kind == "f" else ember.tensor(a) for a in arrays
    ]
    ts = [
        torch.from_numpy(a.copy()).requires_grad_()
        if a.dtype.kind == "f"
        else torch.from_numpy(a.copy())
        for a in arrays
    ]
    ey, ty = efn(*es), tfn(*ts)
    _same(ey, ty)
    g = RNG.standard_normal(tuple(ty.shape)).astype(arrays[0].dtype)
    ey.backward(ember.tensor(g))
    ty.backward(torch.from_numpy(g))
    for e, t in zip(es, ts):
        if t.requires_grad:
            _same(e.grad, t.grad)


def _f(*shape):
    return RNG.uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("dim,index", [(0, 1), (1, -1), (-1, 0)])
def test_select_scatter_matches_torch(dim, index):
    x = _f(3, 4)
    src = _f(*np.delete(np.array(x.shape), dim % 2))
    _grads_match(
        lambda a, s: ember.select_scatter(a, s, dim, index),
        lambda a, s: torch.select_scatter(a, s, dim, index),
        x,
        src,
    )


@pytest.mark.parametrize(
    "kw", [{"start": 1, "end": 3}, {"dim": 1, "step": 2}, {"dim": 1, "start": -3}, {}]
)
def test_slice_scatter_matches_torch(kw):
    x = _f(4, 5)
    shape = tuple(
        torch.zeros(4, 5)[
            (slice(None),) * kw.get("dim", 0)
            + (slice(kw.get("start"), kw.get("end"), kw.get("step", 1)),)
        ].shape
    )
    _grads_match(
        lambda a, s: ember.slice_scatter(a, s, **kw),
        lambda a, s: torch.slice_scatter(a, s, **kw),
        x,
        _f(*shape),
    )


@pytest.mark.parametrize("offset,d1,d2", [(0, 0, 1), (1, 0, 1), (-1, 1, 0), (0, 0, 2), (2, 2, 1)])
def test_diagonal_scatter_matches_torch(offset, d1, d2):
    x = _f(3, 4, 5)
    shape = tuple(torch.zeros(3, 4, 5).diagonal(offset, d1, d2).shape)
    _grads_match(
        lambda a, s: ember.diagonal_scatter(a, s, offset, d1, d2),
        lambda a, s: torch.diagonal_scatter(a, s, offset, d1, d2),
        x,
        _f(*shape),
    )


def test_index_copy_index_put_put_masked_scatter_match_torch():
    x = _f(4, 3)
    idx = np.array([2, 0])
    _grads_match(
        lambda a, s: ember.index_copy(a, 0, ember.tensor(idx), s),
        lambda a, s: torch.index_copy(a, 0, torch.from_numpy(idx), s),
        x,
        _f(2, 3),
    )
    rows, cols = np.array([0, 2, 0]), np.array([1, 1, 1])
    for acc in (False, True):
        if not acc:
            rows_, cols_ = rows[:2], cols[:2]
            v = _f(2)
        else:
            rows_, cols_, v = rows, cols, _f(3)
        _grads_match(
            lambda a, s, r=rows_, c=cols_, acc=acc: ember.index_put(
                a, (ember.tensor(r), ember.tensor(c)), s, accumulate=acc
            ),
            lambda a, s, r=rows_, c=cols_, acc=acc: torch.index_put(
                a, (torch.from_numpy(r), torch.from_numpy(c)), s, accumulate=acc
            ),
            x,
            v,
        )
    _grads_match(
        lambda a, s: ember.index_put(a, (ember.tensor([1, 1, 3]),), s, accumulate=True),
        lambda a, s: torch.index_put(a, (torch.tensor([1, 1, 3]),), s, accumulate=True),
        x,
        _f(3, 3),
    )
    pidx = np.array([0, 11, -1, 5])
    for acc in (False, True):
        p = pidx if acc else pidx[[0, 1, 3]]
        _grads_match(
            lambda a, s, p=p, acc=acc: ember.put(a, ember.tensor(p), s, accumulate=acc),
            lambda a, s, p=p, acc=acc: torch.put(a, torch.from_numpy(p), s, accumulate=acc),
            x,
            _f(len(p)),
        )
    mask = np.array([[True], [False], [True], [False]])
    _grads_match(
        lambda a, s: ember.masked_scatter(a, ember.tensor(mask), s),
        lambda a, s: torch.masked_scatter(a, torch.from_numpy(mask), s),
        x,
        _f(8),
    )


def test_scatter_family_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(ember.ops.ShapeError, match=r"src must have shape \(4,\)"):
        ember.select_scatter(x, ember.zeros(3), 0, 0)
    with pytest.raises(ember.ops.ShapeError, match="source has 1 elements"):
        ember.masked_scatter(x, ember.ones(3, 4, dtype=ember.bool), ember.zeros(1))
    with pytest.raises(TypeError, match="bool tensor"):
        ember.masked_scatter(x, ember.ones(3, 4), ember.zeros(12))
    with pytest.raises(IndexError, match="out of bounds"):
        ember.index_put(x, (ember.tensor([5]),), ember.zeros(4), accumulate=True)
    with pytest.raises(ember.ops.ShapeError, match="same number of elements"):
        ember.put(x, ember.tensor([0, 1]), ember.zeros(3))


# -- top-level extras ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
)
@pytest.mark.parametrize("length", [0, 1, 2, 7])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_match_torch(name, length, periodic):
    _same(getattr(ember, name)(length, periodic), getattr(torch, name)(length, periodic))
    _same(
        getattr(ember, name)(length, periodic, dtype=ember.float64),
        getattr(torch, name)(length, periodic, dtype=torch.float64),
    )


def test_window_errors():
    with pytest.raises(ValueError, match="non-negative"):
        ember.hann_window(-1)
    with pytest.raises(TypeError, match="floating point"):
        ember.hann_window(4, dtype=ember.int64)


def test_predicates_match_torch():
    pairs = [
        (ember.float32, torch.float32),
        (ember.int64, torch.int64),
        (ember.int8, torch.int8),
        (ember.uint8, torch.uint8),
        (ember.bool, torch.bool),
        (ember.float64, torch.float64),
    ]
    for ea, ta in pairs:
        for eb, tb in pairs:
            assert ember.can_cast(ea, eb) == torch.can_cast(ta, tb), (ea, eb)
        e, t = ember.zeros(1, dtype=ea), torch.zeros(1, dtype=ta)
        assert ember.is_signed(e) == torch.is_signed(t)
        assert ember.is_complex(e) == torch.is_complex(t)
    assert ember.is_nonzero(ember.tensor([2])) and not ember.is_nonzero(ember.tensor(0.0))
    with pytest.raises(RuntimeError, match="2 elements"):
        ember.is_nonzero(ember.zeros(2))


def test_functional_layers_are_reachable_under_their_torch_names():
    from ember._toplevel_extra import FUNCTIONAL_ALIASES

    for name in FUNCTIONAL_ALIASES:
        assert getattr(ember, name) is getattr(ember.nn.functional, name)
        assert hasattr(torch, name), name
    x, w = _f(1, 2, 5, 5), _f(3, 2, 3, 3)
    _same(
        ember.conv2d(ember.tensor(x), ember.tensor(w), None, 1, 1),
        torch.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 1, 1),
        rtol=1e-4,
    )
    _same(ember.max_pool2d(ember.tensor(x), 2), torch.max_pool2d(torch.from_numpy(x), 2))
    _same(
        ember.layer_norm(ember.tensor(x), (5,)),
        torch.layer_norm(torch.from_numpy(x), (5,)),
        rtol=1e-4,
    )


def test_frexp_and_anomaly_switches_match_torch():
    a = np.array([8.0, 0.3, 0.0, -3.0, 1e-30], np.float32)
    em, ee = ember.frexp(ember.tensor(a))
    tm, te = torch.frexp(torch.from_numpy(a))
    _same(em, tm)
    _same(ee, te)
    assert ember.frexp(ember.tensor(a)).exponent is not None
    with pytest.raises(TypeError, match="floating point"):
        ember.frexp(ember.tensor([1, 2]))
    ember.set_anomaly_enabled(True)
    try:
        assert ember.is_anomaly_enabled() and ember.autograd.is_anomaly_enabled()
    finally:
        ember.set_anomaly_enabled(False)
    assert not ember.is_anomaly_enabled()


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_matches_torch(edge_order):
    x = _f(5, 6).astype(np.float64)
    e, t = ember.tensor(x), torch.from_numpy(x)
    _same(ember.gradient(e, edge_order=edge_order), torch.gradient(t, edge_order=edge_order))
    _same(
        ember.gradient(e, spacing=0.5, dim=1, edge_order=edge_order),
        torch.gradient(t, spacing=0.5, dim=1, edge_order=edge_order),
    )
    _same(
        ember.gradient(e, spacing=[2.0, 0.5], edge_order=edge_order),
        torch.gradient(t, spacing=[2.0, 0.5], edge_order=edge_order),
    )
    cx = np.cumsum(RNG.uniform(0.2, 1.0, 6))
    _same(
        ember.gradient(e, spacing=(ember.tensor(cx),), dim=1, edge_order=edge_order),
        torch.gradient(t, spacing=(torch.from_numpy(cx),), dim=1, edge_order=edge_order),
    )
    er = ember.tensor(x).requires_grad_()
    tr = torch.from_numpy(x).requires_grad_()
    (ember.gradient(er, dim=0)[0] ** 2).sum().backward()
    (torch.gradient(tr, dim=0)[0] ** 2).sum().backward()
    _same(er.grad, tr.grad)
    with pytest.raises(ValueError, match="edge_order"):
        ember.gradient(e, edge_order=3)


def test_op_coverage_table_is_current_and_at_least_90_percent():
    import importlib.util
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("op_coverage", root / "tools" / "op_coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.render(mod.collect())
    assert (root / "docs" / "op_coverage.md").read_text() == text, "run python tools/op_coverage.py"
    pct = float(re.search(r"names present \(([\d.]+)%\)", text).group(1))
    assert pct >= 90.0, pct
