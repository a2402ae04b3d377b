"""Per-op checks generated from the op records (``ember/ops/_records.py``).

Every record with a PyTorch reference (``@op(ref=...)``) gets, for each of its cases, its own
test ids: ``test_value[exp]`` (forward vs PyTorch), ``test_grad[exp]`` (gradients vs
PyTorch), ``test_shape_rule[exp]`` (each primitive's abstract evaluation vs its eager
result) and ``test_finite_differences[exp]`` (float64 VJPs vs central differences).
``pytest -k exp`` also selects ``expm1`` and ``exp2``; ``pytest -k "exp and not expm1 and not
exp2"`` selects exp alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_close_torch

import ember
from ember.ops._core import AbstractValue, _state, bind
from ember.ops._records import OPS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHAPES = {
    1: (((),), ((0,),), ((5,),), ((2, 3),)),
    2: (((2, 3), (3,)), ((2, 1), (1, 3)), ((), (4,)), ((0, 3), (3,))),
}


def _case_id(rec, case):
    if len(rec.cases) == 1:
        return rec.name
    return rec.name + "".join(f"-{k}={v}" for k, v in case.items()) if case else rec.name


CASES = [
    pytest.param(rec, case, id=_case_id(rec, case))
    for rec in OPS.values()
    if rec.ref is not None
    for case in rec.cases
]
GRAD_CASES = [p for p in CASES if p.values[0].grad and p.values[0].dtypes[0].startswith("f")]
FD_CASES = [p for p in GRAD_CASES if p.values[0].fd]


def _arrays(rec, shapes, seed, noncontig=False):
    rng = np.random.default_rng(seed)
    if rec.sample is not None:
        arrays = rec.sample(rng, shapes)
    elif rec.dtypes[0].startswith("int"):
        return [rng.integers(-9, 10, s).astype(rec.dtypes[0]) for s in shapes]
    else:
        lo, hi = rec.domain
        arrays = []
        for s in shapes:
            a = rng.uniform(lo, hi, s)
            if lo < 0 < hi:  # keep away from the kinks of abs/relu/sign at 0
                a = np.where(np.abs(a) < 0.05, 0.3, a)
            arrays.append(a)
    arrays = [np.asarray(a, rec.dtypes[0]) for a in arrays]
    if noncontig:  # the same values, through a strided view
        arrays = [_strided(a) for a in arrays]
    return arrays


def _strided(a):
    if a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _shape_sets(rec):
    return rec.shapes or DEFAULT_SHAPES[rec.arity]


def _run_both(rec, case, arrays, grad=False):
    es = [ember.from_numpy(a) for a in arrays]
    ts = [torch.from_numpy(np.array(a, order="C")) for a in arrays]
    if grad:
        es = [e.requires_grad_() for e in es]
        ts = [t.requires_grad_() for t in ts]
    return es, ts, rec.fn(*es, **case), rec.torch_ref(torch)(*ts, **case)


@pytest.mark.parametrize("rec,case", CASES)
def test_value(rec, case):
    for k, shapes in enumerate(_shape_sets(rec)):
        for noncontig in (False, True):
            arrays = _arrays(rec, shapes, seed=k, noncontig=noncontig)
            _, _, ey, ty = _run_both(rec, case, arrays)
            assert_close_torch(
                ey, ty, rtol=rec.rtol, atol=1e-5, msg=f"{rec.name}{case} on {shapes}"
            )


@pytest.mark.parametrize("rec,case", GRAD_CASES)
def test_grad(rec, case):
    for k, shapes in enumerate(_shape_sets(rec)):
        es, ts, ey, ty = _run_both(rec, case, _arrays(rec, shapes, seed=k), grad=True)
        g = np.random.default_rng(k).standard_normal(tuple(ty.shape)).astype(np.float32)
        ey.backward(ember.tensor(g))
        ty.backward(torch.from_numpy(g))
        for i, (e, t) in enumerate(zip(es, ts)):
            want = torch.zeros_like(t) if t.grad is None else t.grad
            got = e.grad if e.grad is not None else ember.zeros(*e.shape)
            assert_close_torch(
                got, want, rtol=rec.rtol, atol=1e-4, msg=f"{rec.name}{case}: grad of input {i}"
            )


class _Recorder:
    """A tracer that records every primitive application (and runs it eagerly)."""

    def __init__(self):
        self.calls = []

    def process(self, prim, args, params):
        avals = [
            AbstractValue(a._data.shape, a.dtype) if isinstance(a, ember.Tensor) else a
            for a in args
        ]
        _state.tracer = None
        try:
            out = bind(prim, args, params)
        finally:
            _state.tracer = self
        self.calls.append((prim, avals, params, out))
        return out


@pytest.mark.parametrize("rec,case", CASES)
def test_shape_rule(rec, case):
    for k, shapes in enumerate(_shape_sets(rec)):
        xs = [ember.from_numpy(a) for a in _arrays(rec, shapes, seed=k)]
        rec_ = _Recorder()
        _state.tracer = rec_
        try:
            y = rec.fn(*xs, **case)
        finally:
            _state.tracer = None
        # an op may bind nothing only when it returns its input itself (positive)
        assert rec_.calls or y is xs[0], f"{rec.name} bound no primitive"
        for prim, avals, params, out in rec_.calls:
            av = prim.abstract(*avals, **params)
            avs = av if isinstance(av, tuple) else (av,)
            outs = out if isinstance(out, tuple) else (out,)
            for a, o in zip(avs, outs):
                assert (a.shape, a.dtype) == (tuple(o.shape), o.dtype), (
                    f"{rec.name}: {prim.name} abstract {a} != eager {tuple(o.shape)}/{o.dtype}"
                )


@pytest.mark.parametrize("rec,case", FD_CASES)
def test_finite_differences(rec, case, eps=1e-6):
    shapes = _shape_sets(rec)[-1]
    arrays = [a.astype(np.float64) for a in _arrays(rec, shapes, seed=3)]
    xs = [ember.tensor(a, requires_grad=True) for a in arrays]
    out = rec.fn(*xs, **case)
    cot = np.random.default_rng(0).standard_normal(tuple(out.shape))
    grads = ember.autograd.grad(out, xs, ember.tensor(cot), allow_unused=True)

    def f():
        with ember.no_grad():
            return float((rec.fn(*[ember.tensor(a) for a in arrays], **case).numpy() * cot).sum())

    for i, (a, g) in enumerate(zip(arrays, grads)):
        flat = a.reshape(-1)
        for j in range(min(flat.size, 12)):
            old = flat[j]
            flat[j] = old + eps
            fp = f()
            flat[j] = old - eps
            fm = f()
            flat[j] = old
            num = (fp - fm) / (2 * eps)
            ana = 0.0 if g is None else float(g.numpy().reshape(-1)[j])
            assert np.isclose(ana, num, rtol=1e-4, atol=1e-5), (
                f"{rec.name}{case}: input {i} element {j}: VJP {ana} vs finite difference {num}"
            )


@pytest.mark.parametrize(
    "rec",
    [pytest.param(r, id=r.name) for r in OPS.values() if r.methods or r.inplace],
)
def test_methods_and_inplace_variants_exist(rec):
    for m in rec.methods + rec.inplace:
        assert m in vars(ember._tensor_ops.TensorOps), f"Tensor.{m} missing: regenerate"


def test_generated_tensor_methods_are_current():
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_tensor_methods.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_inplace_variant_matches_out_of_place():
    for rec in OPS.values():
        if not rec.inplace or rec.ref is None or rec.arity != 1:
            continue
        a = _arrays(rec, ((2, 3),), seed=1)[0]
        want = rec.fn(ember.tensor(a), **rec.cases[0])
        for m in rec.inplace:
            x = ember.tensor(a)
            kw = rec.cases[0]
            r = getattr(x, m)(**kw)
            assert r is x, f"{m} must return self"
            assert_close_torch(x, want.numpy(), msg=m)


def test_float_warnings_are_silent_and_embers_own_warnings_reach_the_user():
    import warnings

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("default")
        x = ember.tensor([0.0, -1.0, float("inf")])
        ember.log(x)
        ember.sqrt(x)
        ember.tensor([1.0]) / ember.tensor([0.0])
        ember.exp(ember.tensor([1000.0]))
        ember.pow(x, -1.0)
        ember.tensor([float("nan")]).to(ember.int32)
    assert [str(w.message) for w in got] == []
    with pytest.warns(RuntimeWarning, match="from ember"):
        warnings.simplefilter("default")
        # a RuntimeWarning raised by code in an ember module (e.g. a training callback)
        warnings.warn_explicit(
            "from ember", RuntimeWarning, "callbacks.py", 1, module="ember.train.callbacks"
        )
