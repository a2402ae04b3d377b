"""Every signature of the norms against PyTorch 2.13: ``ember.norm`` / ``Tensor.norm``
(``torch.norm``'s dispatch), ``linalg.norm`` (vector vs matrix by ``ord`` and ``dim``),
``linalg.vector_norm`` and ``linalg.matrix_norm``.

A sweep over input shapes (0-d, empty, 1-D to 3-D), ``ord``/``p`` (numbers, +-inf, 'fro',
'nuc', an invalid string), ``dim`` (None, ints, pairs, reversed pairs, (), a list, repeats,
out of range), ``keepdim`` and ``dtype``: where PyTorch returns, Ember returns the same
values, shape and dtype; where PyTorch raises, Ember raises a clear error naming the norm.
Gradients (float64) are compared at generic points, at zeros, at an all-zero input and at
ties of the inf-norms.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402

INF = math.inf
SHAPES = [(), (0,), (4,), (3, 4), (2, 3, 4), (0, 3), (3, 0), (2, 0, 3)]
ORDS = [None, "fro", "nuc", 0, 1, 2, 3, 0.5, -1, -2, INF, -INF, 1.5, "bad"]
DIMS = [None, 0, -1, 2, (0, 1), (-2, -1), (1, 0), (0, 1, 2), (), [0], (0, 0), 5]


def _ordargs(o):
    return () if o is None else (o,)


FUNCS = {
    "norm": lambda m, x, o, d, k, dt: m.norm(x, *_ordargs(o), dim=d, keepdim=k, dtype=dt),
    "Tensor.norm": lambda m, x, o, d, k, dt: x.norm(*_ordargs(o), dim=d, keepdim=k, dtype=dt),
    "linalg.norm": lambda m, x, o, d, k, dt: m.linalg.norm(x, o, d, k, dtype=dt),
    "vector_norm": lambda m, x, o, d, k, dt: m.linalg.vector_norm(
        x, *_ordargs(o), dim=d, keepdim=k, dtype=dt
    ),
    "matrix_norm": lambda m, x, o, d, k, dt: m.linalg.matrix_norm(
        x, *_ordargs(o), dim=(-2, -1) if d is None else d, keepdim=k, dtype=dt
    ),
}
ERRORS = (ValueError, TypeError, IndexError, RuntimeError)


def _run(mod, f, a, o, d, k, dt):
    x = (torch.tensor if mod is torch else ember.tensor)(a)
    try:
        return f(mod, x, o, d, k, dt), None
    except Exception as e:  # noqa: BLE001  (the sweep records what each framework raises)
        return None, e


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("fname", list(FUNCS))
def test_norm_sweep_matches_torch(fname, shape):
    f = FUNCS[fname]
    a = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    mismatches, n_ok = [], 0
    for o, d, k, f64 in itertools.product(ORDS, DIMS, (False, True), (False, True)):
        tr, terr = _run(torch, f, a, o, d, k, torch.float64 if f64 else None)
        er, eerr = _run(ember, f, a, o, d, k, ember.float64 if f64 else None)
        case = (o, d, k, f64)
        if terr is not None:
            if eerr is None:
                mismatches.append((case, f"torch raises {terr!r}, ember returns"))
            elif not isinstance(eerr, ERRORS) or "norm" not in str(eerr):
                mismatches.append((case, f"unclear error {eerr!r}"))
            continue
        if eerr is not None:
            mismatches.append((case, f"ember raises {eerr!r}"))
            continue
        ev, tv = er.numpy(), tr.numpy()
        if ev.shape != tv.shape or ev.dtype != tv.dtype:
            mismatches.append((case, f"{ev.shape} {ev.dtype} vs torch {tv.shape} {tv.dtype}"))
        elif not np.allclose(ev, tv, rtol=1e-4, atol=1e-5, equal_nan=True):
            mismatches.append((case, f"values {ev.ravel()[:4]} vs torch {tv.ravel()[:4]}"))
        n_ok += 1
    assert not mismatches, mismatches[:10]
    assert n_ok > 0 or (fname == "matrix_norm" and len(shape) < 2)  # those always raise


def _grad_inputs(shape, rng):
    a = rng.standard_normal(shape)
    z = a.copy()
    z.reshape(-1)[::3] = 0.0
    z[0] = 0.0
    return {
        "generic": a,
        "zeros": z,
        "all_zero": np.zeros(shape),
        "ties": np.round(a),
    }


GRAD_ORDS = [None, "fro", "nuc", 0, 1, 2, 3, 0.5, -1, -2, INF, -INF, 1.5]
GRAD_DIMS = [None, 0, -1, (0, 1), (-2, -1), (1, 0), ()]


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("fname", ["norm", "linalg.norm", "vector_norm", "matrix_norm"])
def test_norm_gradients_match_torch(fname, shape):
    f = FUNCS[fname]
    rng = np.random.default_rng(7)
    bad, n = [], 0
    for kind, a in _grad_inputs(shape, rng).items():
        for o, d, k in itertools.product(GRAD_ORDS, GRAD_DIMS, (False, True)):
            if o in ("nuc", 2, -2) and kind == "ties" and fname != "vector_norm":
                # a rounded matrix can be singular or have repeated singular values: the
                # singular vectors are then not unique, and each LAPACK returns its own valid
                # subgradient
                continue
            tx = torch.tensor(a, requires_grad=True)
            try:
                tr = f(torch, tx, o, d, k, None)
            except Exception:  # noqa: BLE001  (an invalid combination: the sweep checks those)
                continue
            w = rng.standard_normal(tuple(tr.shape))
            out = (tr * torch.tensor(w)).sum()
            if out.requires_grad:
                out.backward()
            # PyTorch's ord=0 norm has no gradient path at all: its gradient is zero
            tg = np.zeros(shape) if tx.grad is None else tx.grad.numpy()
            if not np.all(np.isfinite(tg)):
                continue  # PyTorch's own gradient is undefined there (SVD of repeated values)
            ex = ember.tensor(a, requires_grad=True)
            out = (f(ember, ex, o, d, k, None) * ember.tensor(w)).sum()
            if out.requires_grad:
                out.backward()
            eg = np.zeros(shape) if ex.grad is None else ex.grad.numpy()
            n += 1
            if not np.allclose(eg, tg, rtol=1e-6, atol=1e-8):
                bad.append((kind, o, d, k))
    assert not bad, bad[:10]
    assert n > 50 or (fname == "matrix_norm" and len(shape) < 2)  # those always raise


def test_norm_dtype_argument_keeps_gradient_dtype():
    x = ember.tensor([[3.0, -4.0], [1.0, 2.0]], requires_grad=True)
    tx = torch.tensor([[3.0, -4.0], [1.0, 2.0]], requires_grad=True)
    for p, dim in (("nuc", None), (3, 1)):
        e = ember.norm(x, p, dim, dtype=ember.float64)
        t = torch.norm(tx, p, dim, dtype=torch.float64)
        assert e.dtype is ember.float64
        e.sum().backward()
        t.sum().backward()
        assert x.grad.dtype is ember.float32
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)
        x.grad = None
        tx.grad = None


def test_norm_non_contiguous_input():
    a = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    e, t = ember.tensor(a).T[::2], torch.tensor(a).T[::2]
    for p, dim in (("fro", None), ("nuc", None), (1, 0), (INF, (0, 1)), (0.5, -1)):
        np.testing.assert_allclose(
            ember.norm(e, p, dim).numpy(), torch.norm(t, p, dim).numpy(), rtol=1e-5
        )


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: ember.norm(x.to(ember.int64)), TypeError, "floating point"),
        (lambda x: ember.norm(x, "nuc", dim=0), ValueError, "2-tuple"),
        (lambda x: ember.norm(x, "bad"), ValueError, "not supported"),
        (lambda x: ember.linalg.norm(x, "bad", dim=0), ValueError, "not supported"),
        (lambda x: ember.linalg.norm(x[0], "fro"), ValueError, "matrix norm"),
        (lambda x: ember.linalg.norm(x.reshape(2, 3, 2), 2), ValueError, "1-D or 2-D"),
        (lambda x: ember.linalg.vector_norm(x, 2, dim=3), IndexError, "out of range"),
        (lambda x: ember.linalg.vector_norm(x, "fro"), TypeError, "ord must be a number"),
        (lambda x: ember.linalg.vector_norm(x[:0], -1), ValueError, "empty"),
        (lambda x: ember.linalg.matrix_norm(x, 3), ValueError, "not supported"),
        (lambda x: ember.linalg.matrix_norm(x[0]), ValueError, "at least 2 dimensions"),
        (lambda x: ember.linalg.matrix_norm(x, dim=(0, 0)), ValueError, "multiple times"),
        (lambda x: ember.linalg.matrix_norm(x[:0], -2), ValueError, "empty"),
        (lambda x: ember.norm(x, 2, dtype=ember.int64), TypeError, "floating point"),
    ],
)
def test_norm_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(ember.rand(4, 3))
