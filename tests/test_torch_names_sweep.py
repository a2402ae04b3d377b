"""The ``torch`` and ``torch.linalg`` names that no op record or other test compared with
PyTorch (``docs/op_coverage.md``, "present but not named in a test"): aliases, shape and
joining functions, window functions, order statistics, decompositions' helpers and the
random-state API, each against PyTorch 2.13 on 0-d / empty / non-contiguous inputs where
they apply, with float64 gradients of the differentiable ones. Random samplers are checked
for shape, dtype, support and reproducibility (their streams differ from PyTorch's).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402


class _Inputs:
    """Draws the same arrays for both frameworks (one seeded stream per case) and keeps the
    leaves that require grad."""

    def __init__(self, mod, seed):
        self.mod, self.rng, self.leaves = mod, np.random.default_rng(seed), []

    def __call__(self, shape=(3, 4), lo=-2.0, hi=2.0, grad=False, dtype="float64", T=False):
        if isinstance(shape, np.ndarray):
            a = shape
        else:
            a = self.rng.uniform(lo, hi, shape).astype(dtype)
        t = (torch.tensor if self.mod is torch else ember.tensor)(a)
        if T:  # a non-contiguous view with the same values: the transpose of a transposed copy
            t = (torch.tensor if self.mod is torch else ember.tensor)(np.ascontiguousarray(a.T)).T
        if grad:
            t.requires_grad_(True)
            self.leaves.append(t)
        return t


def _distinct(seed, shape):
    """Distinct values (no ties for the order statistics to split)."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 1.0


def _np(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [y for o in out for y in _flat(o)]
    return [out]


# Each case is written as the Ember call; the test runs it twice, with the name ``ember``
# bound to PyTorch (the oracle) and then to Ember, on the same drawn inputs.
CASES = {
    # aliases of elementwise ops
    "absolute": lambda ember, T: ember.absolute(T(grad=True)),
    "arccos": lambda ember, T: ember.arccos(T(lo=-0.9, hi=0.9, grad=True, T=True)),
    "arcsin": lambda ember, T: ember.arcsin(T((), lo=-0.9, hi=0.9, grad=True)),
    "arcsinh": lambda ember, T: ember.arcsinh(T(grad=True)),
    "arctan": lambda ember, T: ember.arctan(T((0, 3), grad=True)),
    "arctan2": lambda ember, T: ember.arctan2(T(grad=True), T((4,), lo=0.5, hi=2, grad=True)),
    "arctanh": lambda ember, T: ember.arctanh(T(lo=-0.9, hi=0.9, grad=True)),
    "divide": lambda ember, T: ember.divide(
        T(grad=True), T(lo=0.5, hi=2, grad=True), rounding_mode=None
    ),
    "divide_trunc": lambda ember, T: ember.divide(T(), T(lo=0.5, hi=2), rounding_mode="trunc"),
    "true_divide": lambda ember, T: ember.true_divide(T(grad=True), T(lo=0.5, hi=2, grad=True)),
    "multiply": lambda ember, T: ember.multiply(T(grad=True, T=True), T((4,), grad=True)),
    "subtract": lambda ember, T: ember.subtract(T(grad=True), T(grad=True), alpha=2),
    "negative": lambda ember, T: ember.negative(T(grad=True)),
    "fix": lambda ember, T: ember.fix(T(lo=-5, hi=5)),
    "greater": lambda ember, T: ember.greater(T(), T()),
    "greater_equal": lambda ember, T: ember.greater_equal(T(), 0.5),
    "less": lambda ember, T: ember.less(T(), T((4,))),
    "less_equal": lambda ember, T: ember.less_equal(T(np.array([1.0, 2.0, 3.0])), 2.0),
    "not_equal": lambda ember, T: ember.not_equal(T(np.array([1.0, 2.0, 3.0])), 2.0),
    # shapes, views and joining
    "clone": lambda ember, T: ember.clone(T(grad=True, T=True)),
    "detach": lambda ember, T: ember.detach(T()) * 2,
    "concatenate_dim": lambda ember, T: ember.concatenate((T((2, 3), grad=True), T((2, 1))), dim=1),
    "flatten": lambda ember, T: ember.flatten(T((2, 3, 4), grad=True), 1),
    "fliplr": lambda ember, T: ember.fliplr(T(grad=True, T=True)),
    "flipud": lambda ember, T: ember.flipud(T(grad=True)),
    "movedim": lambda ember, T: ember.movedim(T((2, 3, 4), grad=True), (0, 1), (2, 0)),
    "swapdims": lambda ember, T: ember.swapdims(T((2, 3, 4), grad=True), 0, -1),
    "permute": lambda ember, T: ember.permute(T((2, 3, 4), grad=True), (2, 0, 1)),
    "reshape": lambda ember, T: ember.reshape(T(grad=True, T=True), (2, -1)),
    "squeeze": lambda ember, T: ember.squeeze(T((1, 3, 1), grad=True), (0, 2)),
    "unsqueeze": lambda ember, T: ember.unsqueeze(T((3,), grad=True), -1),
    "t": lambda ember, T: ember.t(T(grad=True)),
    "transpose": lambda ember, T: ember.transpose(T((2, 3, 4), grad=True), 1, 2),
    "narrow": lambda ember, T: ember.narrow(T((5, 3), grad=True), 0, 1, 3),
    "unflatten": lambda ember, T: ember.unflatten(T((2, 6), grad=True), 1, (3, 2)),
    "chunk": lambda ember, T: ember.chunk(T((7, 2), grad=True), 3),
    "unbind": lambda ember, T: ember.unbind(T((3, 2), grad=True), 1),
    "broadcast_tensors": lambda ember, T: ember.broadcast_tensors(T((3, 1), grad=True), T((4,))),
    "concat": lambda ember, T: ember.concat([T((2, 3), grad=True), T((1, 3), grad=True)]),
    "concatenate": lambda ember, T: ember.concatenate([T((2, 3), grad=True), T((2, 1))], axis=1),
    "hstack": lambda ember, T: ember.hstack([T((2, 3), grad=True), T((2, 2))]),
    "vstack": lambda ember, T: ember.vstack([T((3,), grad=True), T((2, 3))]),
    "row_stack": lambda ember, T: ember.row_stack([T((3,)), T((2, 3), grad=True)]),
    "dstack": lambda ember, T: ember.dstack([T((2, 3), grad=True), T((2, 3))]),
    "column_stack": lambda ember, T: ember.column_stack([T((3,), grad=True), T((3, 2))]),
    # reductions, order statistics and searches
    "min": lambda ember, T: ember.min(T(_distinct(0, (3, 4)), grad=True), 1),
    "min_all": lambda ember, T: ember.min(T(grad=True)),
    "kthvalue": lambda ember, T: ember.kthvalue(T(_distinct(1, (3, 4)), grad=True), 2, 0, True),
    "topk": lambda ember, T: ember.topk(T(_distinct(2, (3, 4)), grad=True), 2, largest=False),
    "msort": lambda ember, T: ember.msort(T(_distinct(3, (4, 3)), grad=True)),
    "argwhere": lambda ember, T: ember.argwhere(T(np.array([[0.0, 1.0], [2.0, 0.0]]))),
    "std_mean": lambda ember, T: ember.std_mean(T(grad=True), 1, keepdim=True),
    "var_mean": lambda ember, T: ember.var_mean(T(grad=True), correction=0),
    "equal": lambda ember, T: (
        ember.equal(T(np.ones(3)), T(np.ones(3))),
        ember.equal(T(np.ones(3)), T(np.ones(2))),
    ),
    # linear algebra helpers
    "chain_matmul": lambda ember, T: ember.chain_matmul(T((2, 3), grad=True), T((3, 4)), T((4, 2))),
    "pinverse": lambda ember, T: ember.pinverse(T((3, 2), grad=True)),
    "lu_unpack": lambda ember, T: ember.lu_unpack(*ember.linalg.lu_factor(T((3, 3)))),
    "linalg.householder_product": lambda ember, T: ember.linalg.householder_product(
        T((4, 3), grad=True), T((2,), lo=0.5, hi=1.5, grad=True)
    ),
    "linalg.solve_ex": lambda ember, T: ember.linalg.solve_ex(
        T(np.eye(3) * 3 + 0.1, grad=True), T((3, 2), grad=True)
    ),
    "linalg.svdvals": lambda ember, T: ember.linalg.svdvals(T((2, 4, 3), grad=True)),
    # functional layers at the top level
    "bilinear": lambda ember, T: ember.bilinear(
        T((2, 3), grad=True), T((2, 4)), T((5, 3, 4), grad=True), T((5,))
    ),
    "hardshrink": lambda ember, T: ember.hardshrink(T(np.array([-1.0, -0.3, 0.8]), grad=True), 0.5),
    "threshold": lambda ember, T: ember.threshold(
        T(np.array([-1.0, 0.3, 2.0]), grad=True), 0.5, -3.0
    ),
    "selu": lambda ember, T: ember.selu(T(grad=True)),
    "pairwise_distance": lambda ember, T: ember.pairwise_distance(
        T((3, 4), grad=True), T((3, 4), grad=True), 1.5
    ),
    # window functions and ranges
    "bartlett_window": lambda ember, T: (
        ember.bartlett_window(7),
        ember.bartlett_window(6, periodic=False),
    ),
    "blackman_window": lambda ember, T: (ember.blackman_window(7), ember.blackman_window(1)),
    "hamming_window": lambda ember, T: ember.hamming_window(8, periodic=False, alpha=0.5, beta=0.4),
    "kaiser_window": lambda ember, T: (ember.kaiser_window(9), ember.kaiser_window(5, False, 3.0)),
    "linspace": lambda ember, T: (
        ember.linspace(-1, 2, 7),
        ember.linspace(0, 1, 1),
        ember.linspace(3, 3, 0),
    ),
    "logspace": lambda ember, T: (ember.logspace(0, 2, 5), ember.logspace(1, 3, 3, base=2.0)),
    "empty_like": lambda ember, T: ember.empty_like(T((2, 3), dtype="float32")).shape,
    # predicates and metadata
    "numel": lambda ember, T: (ember.numel(T((2, 0, 3))), ember.numel(T(()))),
    "is_tensor": lambda ember, T: (
        ember.is_tensor(T(())),
        ember.is_tensor(np.ones(2)),
        ember.is_tensor(1.0),
    ),
    "is_floating_point": lambda ember, T: (
        ember.is_floating_point(T(())),
        ember.is_floating_point(T(np.arange(3))),
    ),
    "get_default_dtype": lambda ember, T: str(ember.get_default_dtype()).split(".")[-1],
    "broadcast_shapes": lambda ember, T: tuple(ember.broadcast_shapes((3, 1), (1, 4), (4,))),
    # torch.signal.windows (M = 1 and 0 included) and torch.special aliases
    "windows.bartlett": lambda ember, T: (
        ember.signal.windows.bartlett(7),
        ember.signal.windows.bartlett(6, sym=False, dtype=ember.float64),
        ember.signal.windows.bartlett(1),
        ember.signal.windows.bartlett(0),
    ),
    "windows.blackman": lambda ember, T: (
        ember.signal.windows.blackman(8),
        ember.signal.windows.blackman(5, sym=False),
    ),
    "windows.cosine": lambda ember, T: (
        ember.signal.windows.cosine(7),
        ember.signal.windows.cosine(4, sym=False),
    ),
    "windows.general_cosine": lambda ember, T: (
        ember.signal.windows.general_cosine(9, a=[0.46, 0.23, 0.31]),
        ember.signal.windows.general_cosine(4, a=(0.5, 0.5), sym=False),
    ),
    "windows.general_hamming": lambda ember, T: (
        ember.signal.windows.general_hamming(7, alpha=0.6),
        ember.signal.windows.general_hamming(6, sym=False),
    ),
    "windows.hamming": lambda ember, T: (
        ember.signal.windows.hamming(7),
        ember.signal.windows.hamming(1, sym=False),
    ),
    "windows.kaiser": lambda ember, T: (
        ember.signal.windows.kaiser(7, beta=4.0),
        ember.signal.windows.kaiser(6, sym=False),
    ),
    "windows.nuttall": lambda ember, T: (
        ember.signal.windows.nuttall(9),
        ember.signal.windows.nuttall(8, sym=False),
    ),
    "special.expit": lambda ember, T: ember.special.expit(T(grad=True, T=True)),
    "special.gammaln": lambda ember, T: ember.special.gammaln(T(lo=0.2, hi=4, grad=True)),
    "special.psi": lambda ember, T: ember.special.psi(T(lo=0.2, hi=4, grad=True)),
    "special.multigammaln": lambda ember, T: ember.special.multigammaln(
        T(lo=1.6, hi=4, grad=True), 3
    ),
    "special.gammainc": lambda ember, T: ember.special.gammainc(T(lo=0.5, hi=3), T(lo=0.1, hi=4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.filterwarnings("ignore:torch.chain_matmul is deprecated")
def test_matches_torch(name):
    case = CASES[name]
    ti, ei = _Inputs(torch, 0), _Inputs(ember, 0)
    tout, eout = case(torch, ti), case(ember, ei)
    tf, ef = _flat(tout), _flat(eout)
    assert len(tf) == len(ef), f"{name}: {len(ef)} results vs torch {len(tf)}"
    for t, e in zip(tf, ef):
        if isinstance(t, torch.Tensor):
            tv, ev = _np(t), _np(e)
            assert ev.shape == tv.shape, f"{name}: shape {ev.shape} vs torch {tv.shape}"
            assert ev.dtype == tv.dtype, f"{name}: dtype {ev.dtype} vs torch {tv.dtype}"
            np.testing.assert_allclose(ev, tv, rtol=1e-6, atol=1e-7, err_msg=name)
        else:
            assert type(e) is type(t) and e == t, f"{name}: {e!r} vs torch {t!r}"
    # float64 gradients of a weighted sum of the float outputs
    pairs = [
        (t, e)
        for t, e in zip(tf, ef)
        if isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.requires_grad
    ]
    if not ti.leaves:
        return
    assert pairs, f"{name}: no differentiable output"
    rng = np.random.default_rng(1)
    ws = [rng.standard_normal(tuple(t.shape)) for t, _ in pairs]
    sum((t * torch.tensor(w)).sum() for (t, _), w in zip(pairs, ws)).backward()
    sum((e * ember.tensor(w)).sum() for (_, e), w in zip(pairs, ws)).backward()
    for tl, el in zip(ti.leaves, ei.leaves):
        tg = np.zeros(tuple(tl.shape)) if tl.grad is None else tl.grad.numpy()
        eg = np.zeros(tuple(el.shape)) if el.grad is None else el.grad.numpy()
        np.testing.assert_allclose(eg, tg, rtol=1e-6, atol=1e-8, err_msg=f"{name} grad")


def test_random_state_api():
    ember.manual_seed(123)
    assert ember.initial_seed() == 123
    state = ember.get_rng_state()
    a = ember.rand(5)
    ember.set_rng_state(state)
    np.testing.assert_array_equal(ember.rand(5).numpy(), a.numpy())
    s = ember.seed()  # a fresh non-deterministic seed, which initial_seed then reports
    assert isinstance(s, int) and ember.initial_seed() == s


def test_random_samplers_shapes_and_support():
    ember.manual_seed(0)
    p = ember.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    b = ember.bernoulli(p)
    assert b.shape == p.shape and b.dtype is ember.float32
    assert b[0, 0].item() == 0.0 and b[0, 1].item() == 1.0 and b[1, 0].item() == 1.0
    w = ember.tensor([[0.0, 1.0, 3.0], [2.0, 0.0, 1.0]])
    idx = ember.multinomial(w, 2)
    assert idx.dtype is ember.int64 and tuple(idx.shape) == (2, 2)
    # without replacement, two draws from two non-zero weights take both (zeros never)
    assert set(idx[0].tolist()) == {1, 2}
    assert set(idx[1].tolist()) == {0, 2}
    many = ember.multinomial(ember.tensor([1.0, 3.0]), 4000, replacement=True)
    assert abs(float(many.float().mean().item()) - 0.75) < 0.05
    n = ember.normal(ember.tensor([0.0, 100.0]), ember.tensor([1.0, 0.0]))
    assert n[1].item() == 100.0 and tuple(n.shape) == (2,)
    n2 = ember.normal(2.0, 3.0, size=(5000,))
    assert abs(float(n2.mean().item()) - 2.0) < 0.2 and abs(float(n2.std().item()) - 3.0) < 0.2
    x = ember.zeros(3, 2, dtype=ember.float64)
    for fn in (ember.rand_like, ember.randn_like):
        r = fn(x)
        assert tuple(r.shape) == (3, 2) and r.dtype is ember.float64
    assert float(ember.rand_like(x).amin().item()) >= 0 and float(ember.rand_like(x).amax()) < 1
    ember.manual_seed(5)
    first = ember.randn_like(x)
    ember.manual_seed(5)
    np.testing.assert_array_equal(ember.randn_like(x).numpy(), first.numpy())
