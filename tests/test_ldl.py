"""``ember.linalg.ldl_factor`` / ``ldl_factor_ex`` / ``ldl_solve`` against PyTorch 2.13:
the compact ``LD`` and the Bunch-Kaufman pivots (1x1 and 2x2 blocks) on random symmetric
indefinite, rounded (ties), zero-diagonal and batched matrices in float32/float64; solutions
against PyTorch and NumPy; ``info`` on singular input; no derivative (backward raises, as in
PyTorch); the errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402


def _sym(rng, shape, kind="normal"):
    a = rng.standard_normal(shape)
    if kind == "rounded":
        a = np.round(a)
    a = a + np.swapaxes(a, -1, -2)
    if kind == "zero_diag":  # forces 2x2 pivots
        idx = np.arange(shape[-1])
        a[..., idx, idx] = 0.0
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["normal", "rounded", "zero_diag"])
def test_factor_matches_torch(kind, dtype):
    rng = np.random.default_rng(len(kind) + len(dtype))
    mismatched = 0
    for n in (1, 2, 3, 5, 8):
        for _ in range(6):
            a = _sym(rng, (n, n), kind).astype(dtype)
            t = torch.linalg.ldl_factor_ex(torch.tensor(a))
            e = ember.linalg.ldl_factor_ex(ember.tensor(a))
            assert e.pivots.dtype is ember.int32 and e.info.dtype is ember.int32
            assert e.LD.dtype is getattr(ember, dtype)
            if not np.array_equal(e.pivots.numpy(), t.pivots.numpy()):
                # a pivot choice decided by a rounding-level tie (MKL's blocked code and the
                # unblocked one round differently)
                mismatched += 1
                continue
            tol = 1e-4 if dtype == "float32" else 1e-10
            np.testing.assert_allclose(e.LD.numpy(), t.LD.numpy(), rtol=tol, atol=tol)
            assert e.info.item() == t.info.item()
    assert mismatched <= 1


def test_two_by_two_pivots_and_solution():
    # zero diagonal: Bunch-Kaufman must take 2x2 blocks (negative pivots)
    a = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    t, e = torch.linalg.ldl_factor(torch.tensor(a)), ember.linalg.ldl_factor(ember.tensor(a))
    assert (e.pivots.numpy() < 0).any()
    np.testing.assert_array_equal(e.pivots.numpy(), t.pivots.numpy())
    np.testing.assert_allclose(e.LD.numpy(), t.LD.numpy(), rtol=1e-12, atol=1e-12)
    b = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, -1.0]])
    x = ember.linalg.ldl_solve(e.LD, e.pivots, ember.tensor(b))
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_solve_matches_torch_batched(dtype):
    rng = np.random.default_rng(3)
    a = _sym(rng, (3, 6, 6), "zero_diag").astype(dtype)
    b = rng.standard_normal((3, 6, 2)).astype(dtype)
    t = torch.linalg.ldl_factor(torch.tensor(a))
    e = ember.linalg.ldl_factor(ember.tensor(a))
    xt = torch.linalg.ldl_solve(t.LD, t.pivots, torch.tensor(b))
    xe = ember.linalg.ldl_solve(e.LD, e.pivots, ember.tensor(b))
    tol = 2e-3 if dtype == "float32" else 1e-10  # float32: conditioning of indefinite A
    np.testing.assert_allclose(xe.numpy(), xt.numpy(), rtol=tol, atol=tol)
    # hermitian=True is the same factorization for real matrices
    xh = ember.linalg.ldl_solve(*ember.linalg.ldl_factor(ember.tensor(a), hermitian=True),
                                ember.tensor(b), hermitian=True)  # fmt: skip
    np.testing.assert_allclose(xh.numpy(), xe.numpy())


def test_solve_broadcasts_batch_dims():
    rng = np.random.default_rng(4)
    a = _sym(rng, (3, 5, 5))
    b = rng.standard_normal((2, 3, 5, 4))
    e = ember.linalg.ldl_factor(ember.tensor(a))
    x = ember.linalg.ldl_solve(e.LD, e.pivots, ember.tensor(b))
    # (PyTorch 2.13 crashes on this broadcast, so NumPy is the oracle here)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-9, atol=1e-9)
    # an unbatched factor against a batch of right-hand sides: against PyTorch
    t = torch.linalg.ldl_factor(torch.tensor(a[0]))
    e0 = ember.linalg.ldl_factor(ember.tensor(a[0]))
    np.testing.assert_allclose(
        ember.linalg.ldl_solve(e0.LD, e0.pivots, ember.tensor(b)).numpy(),
        torch.linalg.ldl_solve(t.LD, t.pivots, torch.tensor(b)).numpy(),
        rtol=1e-10,
        atol=1e-10,
    )
    # int64 pivots are accepted, as PyTorch
    x64 = ember.linalg.ldl_solve(e.LD, e.pivots.to(ember.int64), ember.tensor(b[0]))
    np.testing.assert_allclose(x64.numpy(), x[0].numpy())


def test_non_contiguous_and_lower_triangle_only():
    rng = np.random.default_rng(5)
    a = _sym(rng, (5, 5))
    junk_upper = a + np.triu(rng.standard_normal((5, 5)), 1)  # only the lower part is read
    e = ember.linalg.ldl_factor(ember.tensor(junk_upper))
    t = torch.linalg.ldl_factor(torch.tensor(a))
    np.testing.assert_array_equal(e.pivots.numpy(), t.pivots.numpy())
    np.testing.assert_allclose(e.LD.numpy(), t.LD.numpy(), rtol=1e-10, atol=1e-10)
    et = ember.tensor(np.ascontiguousarray(a.T)).T  # a transposed view (a is symmetric)
    np.testing.assert_allclose(ember.linalg.ldl_factor(et).LD.numpy(), e.LD.numpy())


def test_empty_and_singular():
    e = ember.linalg.ldl_factor(ember.zeros(2, 0, 0))
    t = torch.linalg.ldl_factor(torch.zeros(2, 0, 0))
    assert tuple(e.LD.shape) == tuple(t.LD.shape) and tuple(e.pivots.shape) == (2, 0)
    for a in (np.zeros((3, 3)), np.diag([1.0, 0.0, 2.0])):
        e = ember.linalg.ldl_factor_ex(ember.tensor(a))
        t = torch.linalg.ldl_factor_ex(torch.tensor(a))
        assert e.info.item() == t.info.item() > 0
        np.testing.assert_array_equal(e.pivots.numpy(), t.pivots.numpy())
        with pytest.raises(ember.linalg.LinAlgError, match="exactly zero"):
            ember.linalg.ldl_factor(ember.tensor(a))
        with pytest.raises(ember.linalg.LinAlgError, match="exactly zero"):
            ember.linalg.ldl_factor_ex(ember.tensor(a), check_errors=True)
    batched = ember.linalg.ldl_factor_ex(ember.tensor(np.stack([np.eye(2), np.zeros((2, 2))])))
    assert batched.info.tolist() == [0, 1]


def test_no_derivative_as_in_torch():
    a = _sym(np.random.default_rng(6), (3, 3))
    A = ember.tensor(a, requires_grad=True)
    LD, piv = ember.linalg.ldl_factor(A)
    tLD, _ = torch.linalg.ldl_factor(torch.tensor(a, requires_grad=True))
    assert LD.requires_grad == tLD.requires_grad and not piv.requires_grad
    with pytest.raises(RuntimeError, match="derivative for linalg.ldl_factor is not implemented"):
        LD.sum().backward()
    with pytest.raises(RuntimeError, match="not implemented"):
        tLD.sum().backward()
    B = ember.tensor(np.ones((3, 1)), requires_grad=True)
    x = ember.linalg.ldl_solve(LD.detach(), piv, B)
    with pytest.raises(RuntimeError, match="derivative for linalg.ldl_solve is not implemented"):
        x.sum().backward()
    # without gradients the results are plain tensors
    with ember.no_grad():
        assert not ember.linalg.ldl_factor(A).LD.requires_grad


_LD, _P = ember.linalg.ldl_factor(ember.tensor([[2.0, 1.0], [1.0, -3.0]]))
_solve = ember.linalg.ldl_solve
_B = ember.ones(2, 1)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: ember.linalg.ldl_factor(ember.zeros(2, 3)), ValueError, "square"),
        (lambda: ember.linalg.ldl_factor(ember.zeros(3)), ValueError, "at least 2"),
        (lambda: ember.linalg.ldl_factor(ember.zeros(2, 2, dtype=ember.int64)), TypeError, "float"),
        (lambda: ember.linalg.ldl_factor(ember.eye(2), hermitian=1), TypeError, "hermitian"),
        (lambda: _solve(_LD, _P, ember.ones(3)), ValueError, "at least 2"),
        (lambda: _solve(_LD, _P, ember.ones(3, 1)), ValueError, "incompatible"),
        (lambda: _solve(_LD, _P[:1], _B), ValueError, "pivots"),
        (lambda: _solve(_LD, _P.float(), _B), TypeError, "int32"),
        (lambda: _solve(_LD, _P * 3, _B), ValueError, "1-based"),
        (lambda: _solve(_LD, _P, _B.double()), TypeError, "dtype"),
        (lambda: _solve(_LD.expand(3, 2, 2), _P.expand(3, 2), _B.expand(2, 2, 1)), ValueError, "b"),
    ],
)  # fmt: skip
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
