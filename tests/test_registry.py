"""Walk the primitive registry: every primitive must have sample inputs, its abstract
evaluation must agree with the eager result on them, it must have a VJP (or be marked
``nondiff``), and its VJP must match float64 finite differences.

Where samples come from (each primitive needs at least one):

* ``defsample(prim, fn)`` (``ember.ops._samples``): ``fn()`` returns a list of
  ``(args, params)`` that are bound
  directly with ``bind(prim, args, params)``;
* ``PROGRAMS`` below: small programs in the public API keyed by the primitive they are meant
  to exercise. Each program runs under a recording tracer (forward, then backward through every
  float output), and *every* primitive application it makes -- including those inside VJPs --
  counts as a sample for that primitive. ``test_programs_reach_their_primitive`` checks that a
  program keyed ``"foo"`` really binds ``foo``.

A primitive registered without samples makes ``test_every_primitive_has_samples`` fail with
the list of names: add a program here (or a ``defsample``) when you add a primitive.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np

import ember
from ember.ops import _core
from ember.ops._ad import vjp_rule
from ember.ops._core import AbstractValue, _state, bind
from ember.ops._records import OPS
from ember.ops._samples import SAMPLES

# Import every module that may declare primitives, so the registry is complete.
_PACKAGES = ("ember.ops", "ember.nn", "ember.optim")
IMPORT_ERRORS = {}
for _pkg in _PACKAGES:
    try:
        _m = importlib.import_module(_pkg)
    except Exception as _e:  # noqa: BLE001  (reported by test_all_modules_import)
        IMPORT_ERRORS[_pkg] = repr(_e)
        continue
    for _info in pkgutil.walk_packages(_m.__path__, _pkg + "."):
        try:
            importlib.import_module(_info.name)
        except Exception as _e:  # noqa: BLE001
            IMPORT_ERRORS[_info.name] = repr(_e)


def _r(*shape, lo=-2.0, hi=2.0, seed=0, grad=True, dtype=ember.float64):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    t = ember.tensor(rng.uniform(lo, hi, shape), dtype=dtype)
    return t.requires_grad_() if grad and t.is_floating_point() else t


def _i(*values, dtype=ember.int64):
    return ember.tensor(list(values), dtype=dtype)


class _Functional:
    """``ember.nn.functional``, falling back to its submodules (resolved at call time)."""

    def __getattr__(self, name):
        import ember.nn.functional as F

        if hasattr(F, name):
            return getattr(F, name)
        for info in pkgutil.iter_modules(F.__path__, F.__name__ + "."):
            m = importlib.import_module(info.name)
            if hasattr(m, name):
                return getattr(m, name)
        raise AttributeError(f"ember.nn.functional has no {name!r}")


def _F():
    return _Functional()


def _optim_step(cls, **kw):
    def run():
        p = ember.nn.Parameter(_r(3, grad=False)) if hasattr(ember, "nn") else _r(3)
        opt = cls([p], **kw)
        for _ in range(2):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()

    return run


def _second_order(fn, *shapes):
    """A program that differentiates twice: returns the first gradients (with their graph),
    so the harness's backward runs the VJPs of the VJPs."""

    def run():
        xs = [_r(*sh, seed=k) for k, sh in enumerate(shapes)]
        out = fn(*xs)
        grads = ember.autograd.grad(
            out.sum() if out.ndim else out, xs, create_graph=True, allow_unused=True
        )
        return tuple(g * g for g in grads if g is not None and g.requires_grad)

    return run


# Programs keyed by the primitive they exercise. Add yours: NAME: [lambda: ..., ...].
PROGRAMS = {
    # -- elementwise -----------------------------------------------------------------------
    "add": [lambda: _r(2, 3) + _r(3), lambda: _r(2) + 1.5, lambda: _i(1, 2) + _i(3, 4)],
    "sub": [lambda: _r(2, 3) - _r(2, 1)],
    "mul": [lambda: _r(2, 3) * _r(3, seed=1), lambda: _r(2) * 3],
    "div": [lambda: _r(2, 3) / _r(3, lo=0.5), lambda: _i(1, 2) / _i(2, 2)],
    "pow": [lambda: _r(3, lo=0.5) ** _r(3, seed=2), lambda: _r(3) ** 3, lambda: 2.0 ** _r(3)],
    "floor_divide": [lambda: ember.floor_divide(_r(3), _r(3, lo=0.5))],
    "remainder": [lambda: ember.remainder(_r(3), _r(3, lo=0.5, hi=0.9))],
    "fmod": [lambda: ember.fmod(_r(3), _r(3, lo=0.5, hi=0.9))],
    "maximum": [lambda: ember.maximum(_r(2, 3), _r(3, seed=3))],
    "minimum": [lambda: ember.minimum(_r(2, 3), _r(3, seed=3))],
    "convert": [lambda: _r(3).to(ember.float32), lambda: _i(1, 2).float()],
    "eq": [lambda: ember.eq(_r(3), _r(3))],
    "ne": [lambda: ember.ne(_r(3), 0.5)],
    "lt": [lambda: _r(2, 3) < _r(3)],
    "le": [lambda: _r(3) <= 0],
    "gt": [lambda: _r(3) > _r(1)],
    "ge": [lambda: _r(3) >= 1],
    "bitwise_and": [lambda: _i(1, 3) & _i(2, 3)],
    "bitwise_or": [lambda: _i(1, 3) | 4],
    "bitwise_xor": [lambda: _i(1, 3) ^ _i(2, 2)],
    "bitwise_not": [lambda: ~_i(1, 3)],
    "logical_not": [lambda: ember.logical_not(_r(3))],
    "logical_and": [lambda: ember.logical_and(_r(3), _r(3))],
    "logical_or": [lambda: ember.logical_or(_r(3), _r(3))],
    "logical_xor": [lambda: ember.logical_xor(_r(3), _r(3))],
    "isnan": [lambda: ember.isnan(_r(3))],
    "isinf": [lambda: ember.isinf(_r(3))],
    "isfinite": [lambda: ember.isfinite(_r(3))],
    "where": [
        lambda: ember.where(_r(2, 3) > 0, _r(2, 3), _r(3, seed=5)),
        lambda: ember.where(_r(3) > 0, _r(3), 0.0),
    ],
    "clamp_min": [lambda: ember.clamp(_r(3, 4), min=-0.5)],
    "clamp_max": [
        lambda: ember.clamp(_r(3, 4), max=0.5),
        lambda: ember.clamp(_r(3), max=_r(3, seed=9)),
    ],
    "round": [lambda: ember.round(_r(4)), lambda: ember.round(_r(4), decimals=1)],
    "gelu": [lambda: ember.gelu(_r(4)), lambda: ember.gelu(_r(4), approximate="tanh")],
    "softplus": [lambda: ember.softplus(_r(4)), lambda: ember.softplus(_r(4), 2.0, 1.0)],
    "leaky_relu": [lambda: ember.leaky_relu(_r(4), 0.2)],
    "elu": [lambda: ember.elu(_r(4), 0.5)],
    "nan_to_num": [lambda: ember.nan_to_num(_r(4))],
    "silu": [lambda: ember.silu(_r(4))],
    # -- reductions ------------------------------------------------------------------------
    "sum": [
        lambda: ember.sum(_r(2, 3), 1),
        lambda: ember.sum(_r(2, 3)),
        lambda: ember.sum(_r(2, 3, 4), (0, 2), keepdim=True),
    ],
    "prod": [lambda: ember.prod(_r(2, 3), 1), lambda: ember.prod(_r(4))],
    "amax": [lambda: ember.amax(_r(2, 3), -1)],
    "amin": [lambda: ember.amin(_r(2, 3), 0)],
    "argmax": [lambda: ember.argmax(_r(2, 3), 1)],
    "argmin": [lambda: ember.argmin(_r(2, 3))],
    "logsumexp": [lambda: ember.logsumexp(_r(2, 3), 1)],
    "softmax": [lambda: ember.softmax(_r(2, 3), -1)],
    "log_softmax": [lambda: ember.log_softmax(_r(2, 3), 0)],
    "all": [lambda: ember.all(_r(2, 3) > 0, 1)],
    "any": [lambda: ember.any(_r(2, 3) > 0)],
    # -- contractions ----------------------------------------------------------------------
    "matmul": [
        lambda: _r(2, 3) @ _r(3, 4),
        lambda: _r(2, 2, 3) @ _r(3, 2),
        lambda: _r(3) @ _r(3, 2),
    ],
    "einsum": [
        lambda: ember.einsum("ij,jk->ik", _r(2, 3), _r(3, 2)),
        lambda: ember.einsum("ii->i", _r(3, 3)),
    ],
    # -- tensor methods --------------------------------------------------------------------
    "clone": [lambda: _r(2, 3).clone()],
    "assign": [lambda: ember.zeros(3).add_(_r(3, grad=False))],
    # -- shape / indexing / scan (owned elsewhere; these only need to bind each primitive) --
    "reshape": [lambda: _r(2, 3).reshape(3, 2)],
    "permute": [lambda: _r(2, 3, 4).permute(2, 0, 1)],
    "expand": [lambda: _r(3, 1).expand(3, 4)],
    "cat": [lambda: ember.cat([_r(2, 3), _r(1, 3, seed=1)], 0)],
    "flip": [lambda: ember.flip(_r(2, 3), (1,))],
    "roll": [lambda: ember.roll(_r(2, 3), 1, 1)],
    "repeat": [lambda: _r(2, 3).repeat(2, 1)],
    "tril": [lambda: ember.tril(_r(3, 3))],
    "triu": [lambda: ember.triu(_r(3, 3), 1)],
    "diagonal": [lambda: ember.diagonal(_r(3, 3))],
    "getitem": [lambda: _r(3, 4)[1:, ::2], lambda: _r(3, 4)[::-1, 3:0:-2]],
    "getitem_adv": [lambda: _r(3, 4)[_i(0, 2)]],
    "getitem_mask": [lambda: _r(3, 4)[_r(3, 4, grad=False) > 0]],
    "index_put": [
        lambda: ember.ops.index_put_value(_r(3, 4), (_i(0, 2),), _r(2, 4, seed=4)),
        lambda: ember.ops.index_put_value(_r(3, 4), np.s_[::-2, 3::-3], _r(2, 2, seed=4)),
    ],
    "cumsum": [lambda: ember.cumsum(_r(2, 3), 1)],
    "cumprod": [lambda: ember.cumprod(_r(2, 3), 1)],
    "gather": [lambda: ember.gather(_r(2, 3), 1, ember.tensor([[0, 2], [1, 1]]))],
    "scatter": [lambda: ember.scatter(_r(2, 3), 1, ember.tensor([[0], [2]]), _r(2, 1))],
    "scatter_add": [
        lambda: ember.scatter_add(_r(2, 3), 1, ember.tensor([[0, 0], [2, 1]]), _r(2, 2))
    ],
    "scatter_mul": [
        lambda: ember.scatter(_r(2, 3), 1, ember.tensor([[0], [2]]), _r(2, 1), reduce="multiply")
    ],
    "index_select": [lambda: ember.index_select(_r(3, 2), 0, _i(2, 0))],
    "index_add": [lambda: ember.index_add(_r(3, 2), 0, _i(2, 0), _r(2, 2))],
    "index_fill": [lambda: ember.index_fill(_r(3, 2), 0, _i(2), 1.5)],
    "masked_fill": [lambda: ember.masked_fill(_r(3, 2), _r(3, 2, grad=False) > 0, 0.0)],
    "nonzero": [lambda: ember.nonzero(_r(3, 2, grad=False) > 0)],
    "one_hot": [lambda: ember.ops.indexing.one_hot(_i(0, 2, 1), 3)],
    "argsort": [lambda: ember.argsort(_r(2, 3), 1), lambda: ember.sort(_r(2, 3), 1)[0]],
    "unique": [lambda: ember.unique(_i(3, 1, 3, 2))],
    "wrap_index": [lambda: ember.take(_r(2, 3), _i(-1, 2))],
    "repeat_index": [lambda: ember.repeat_interleave(_r(3), _i(1, 0, 2))],
    "pad_constant": [lambda: ember.ops.shape.pad(_r(2, 3), (1, 2), value=0.5)],
    "pad_gather": [lambda: ember.ops.shape.pad(_r(1, 2, 3), (1, 1), mode="reflect")],
    # -- nn ----------------------------------------------------------------------------------
    "conv2d": [
        lambda: _F().conv2d(
            _r(1, 2, 5, 5), _r(3, 2, 3, 3, seed=1), _r(3, seed=2), stride=1, padding=1
        )
    ],
    "max_pool2d": [lambda: _F().max_pool2d(_r(1, 2, 4, 4), 2)],
    "linear": [
        lambda: _F().linear(_r(2, 3), _r(4, 3, seed=1), _r(4, seed=2)),
        lambda: _F().linear(_r(2, 2, 3), _r(4, 3, seed=1)),
    ],
    "max_pool2d_indices": [lambda: _F().max_pool2d(_r(1, 2, 4, 4), 2, return_indices=True)],
    "max_pool2d_gather": [_second_order(lambda x: _F().max_pool2d(x, 2) ** 2, (1, 1, 4, 4))],
    "ne_const": [
        _second_order(lambda w: _F().embedding(_i(0, 1, 2), w, padding_idx=1) ** 2, (3, 2))
    ],
    "avg_pool2d": [lambda: _F().avg_pool2d(_r(1, 2, 4, 4), 2)],
    "batch_norm_train": [
        lambda: _F().batch_norm(
            _r(4, 3), ember.zeros(3), ember.ones(3), _r(3, seed=1), _r(3, seed=2), training=True
        )
    ],
    "layer_norm": [lambda: _F().layer_norm(_r(2, 3), (3,), _r(3, seed=1), _r(3, seed=2))],
    "cross_entropy": [lambda: _F().cross_entropy(_r(4, 3), _i(0, 2, 1, 1))],
    "nll_loss": [
        lambda: _F().nll_loss(
            _r(4, 3), _i(0, 2, 1, 1), weight=ember.tensor([1.0, 2.0, 0.5], dtype=ember.float64)
        )
    ],
    "target_weight": [
        _second_order(  # the composite CE VJP (the fused one is first-order)
            lambda x: _F().cross_entropy(x, _i(0, 2, 1, 1), ignore_index=1), (4, 3)
        )
    ],
    "dropout": [lambda: _F().dropout(_r(4, 3), 0.5, training=True)],
    "embedding": [
        lambda: _F().embedding(_i(0, 2, 1), _r(3, 2)),
        lambda: _F().embedding(_i(0, 2, 1), _r(3, 2), padding_idx=1),
    ],
    "lstm_seq": [lambda: ember.nn.LSTM(2, 3).double()(_r(4, 1, 2))[0]],
    "gru_seq": [lambda: ember.nn.GRU(2, 3).double()(_r(4, 1, 2))[0]],
    "rnn_seq": [
        lambda: ember.nn.RNN(2, 3).double()(_r(4, 1, 2))[0],
        lambda: ember.nn.RNN(2, 3, nonlinearity="relu").double()(_r(4, 1, 2))[0],
    ],
    "sgd_update": [lambda: _optim_step(ember.optim.SGD, lr=0.1, momentum=0.9)()],
    "adam_update": [
        lambda: _optim_step(ember.optim.Adam, lr=0.1)(),
        lambda: _optim_step(ember.optim.AdamW, lr=0.1)(),
    ],
    "rmsprop_update": [lambda: _optim_step(ember.optim.RMSprop, lr=0.1)()],
    "adagrad_update": [lambda: _optim_step(ember.optim.Adagrad, lr=0.1)()],
}


def _record_program(rec, case):
    """A program from an op record (``ember/ops/_records.py``): its function on inputs drawn
    from the record's domain or sampler, in float64 (or the record's integer dtype)."""

    def run():
        rng = np.random.default_rng(len(rec.name))
        shapes = rec.shapes[0] if rec.shapes else ((2, 3),) * rec.arity
        if rec.sample is not None:
            arrays = rec.sample(rng, shapes)
        elif rec.dtypes[0].startswith("int"):
            arrays = [rng.integers(-9, 10, s) for s in shapes]
        else:
            arrays = [rng.uniform(*rec.domain, s) for s in shapes]
        dtype = getattr(ember, rec.dtypes[0])
        dtype = ember.float64 if dtype.is_floating_point else dtype
        xs = [ember.tensor(np.asarray(a), dtype=dtype) for a in arrays]
        xs = [x.requires_grad_() if x.is_floating_point() and rec.grad else x for x in xs]
        return rec.fn(*xs, **case)

    return run


# Every op record with a PyTorch reference contributes a program per case.
for _rec in OPS.values():
    if _rec.ref is not None:
        for _case in _rec.cases:
            PROGRAMS.setdefault("records", []).append(_record_program(_rec, _case))

# Direct samples, for primitives no public function reaches: NAME: lambda: [(args, params)].
# (Equivalent to ``defsample`` beside the primitive.)
DIRECT_SAMPLES = {}

# Outputs whose cotangent a VJP ignores by design (auxiliary outputs saved for backward).
AUX_OUTPUTS = {"lstm_seq": (2,), "gru_seq": (1,), "batch_norm_train": (1, 2), "max_pool2d": (1,)}

# Calls whose gradient deliberately differs from the mathematical derivative.
FD_SKIP_CALL = {
    "embedding": lambda params: params.get("padding_idx") is not None,  # padding row: no grad
}

# Known gaps in primitives owned elsewhere, listed (never skipped silently) so that the suite
# stays green while their owners fix them. Each entry must still fail: once fixed, the stale
# entry makes test_known_issues_are_current fail until it is removed here.
KNOWN_ISSUES: dict = {}


def _known(check, name):
    return (check, name) in KNOWN_ISSUES


# Primitives that cannot be sampled by binding them (the reason is shown in the report).


class _Recorder:
    """A tracer that records each primitive application and runs it eagerly."""

    def __init__(self):
        self.calls = []

    def process(self, prim, args, params):
        avals = [
            AbstractValue(a._data.shape, a.dtype) if isinstance(a, ember.Tensor) else a
            for a in args
        ]
        snap = [_snapshot(a) for a in args]
        _state.tracer = None
        try:
            out = bind(prim, args, params)
        finally:
            _state.tracer = self
        self.calls.append((prim, snap, params, avals, out))
        return out


def _snapshot(a):
    if isinstance(a, ember.Tensor):
        t = ember.tensor(a._data.copy(), dtype=a.dtype)
        t._snapshot_requires_grad = getattr(a, "_snapshot_requires_grad", a.requires_grad)
        return t
    return a


def _float_outputs(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, ember.Tensor) and o.requires_grad]


def _run_program(fn):
    rec = _Recorder()
    prev = _state.tracer
    _state.tracer = rec
    try:
        out = fn()
        fl = _float_outputs(out)
        if fl:
            loss = fl[0].sum() if fl[0].numel() else None
            for o in fl[1:]:
                if o.numel():
                    loss = o.sum() if loss is None else loss + o.sum()
            if loss is not None:
                loss.backward()
    finally:
        _state.tracer = prev
    return rec.calls


_CALLS = None
_PROGRAM_ERRORS = {}


def _all_calls():
    """name -> list of (prim, args, params, avals, out), from programs and ``defsample``."""
    global _CALLS
    if _CALLS is not None:
        return _CALLS
    calls = {}
    for name, progs in PROGRAMS.items():
        for k, fn in enumerate(progs):
            try:
                got = _run_program(fn)
            except Exception as e:  # noqa: BLE001  (reported by test_programs_run)
                _PROGRAM_ERRORS[f"{name}[{k}]"] = f"{type(e).__name__}: {e}"
                continue
            for c in got:
                calls.setdefault(c[0].name, []).append(c)
            if name != "records" and not any(c[0].name == name for c in got):
                _PROGRAM_ERRORS[f"{name}[{k}]"] = (
                    f"did not bind {name!r} (bound {sorted({c[0].name for c in got})})"
                )
    for name, prim in _core.REGISTRY.items():
        sampler = SAMPLES.get(prim) or DIRECT_SAMPLES.get(name)
        if sampler is None:
            continue
        for args, params in sampler():
            rec = _Recorder()
            _state.tracer = rec
            try:
                bind(prim, args, params)
            finally:
                _state.tracer = None
            calls.setdefault(name, []).extend(rec.calls)
    _CALLS = calls
    return calls


def test_all_modules_import():
    assert not IMPORT_ERRORS, (
        f"modules failed to import (their primitives can't be checked): {IMPORT_ERRORS}"
    )


def test_programs_run():
    _all_calls()
    assert not _PROGRAM_ERRORS, "sample programs failed:\n" + "\n".join(
        f"  {k}: {v}" for k, v in sorted(_PROGRAM_ERRORS.items())
    )


def test_every_primitive_has_samples():
    calls = _all_calls()
    missing = sorted(n for n in _core.REGISTRY if n not in calls)
    assert not missing, (
        f"{len(missing)} registered primitive(s) have no sample inputs: {missing}. Add a "
        "program to PROGRAMS in tests/test_registry.py, an @op record with a ref, or "
        "defsample(prim, fn) beside the primitive."
    )


def test_every_primitive_has_vjp_or_is_nondiff():
    bad = sorted(
        n
        for n, p in _core.REGISTRY.items()
        if vjp_rule(p) is None and not p.nondiff and not _known("vjp", n)
    )
    assert not bad, f"primitives with neither a VJP nor nondiff=True: {bad}"


def test_every_primitive_has_abstract_eval():
    bad = sorted(
        n for n, p in _core.REGISTRY.items() if p.abstract is None and not _known("abstract", n)
    )
    assert not bad, f"primitives without an abstract evaluation rule: {bad}"


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _shape_matches(abstract_shape, shape, prim):
    """Equal shapes; a data-dependent primitive may leave value-dependent sizes as None."""
    if len(abstract_shape) != len(shape):
        return False
    return all(a == s or (a is None and prim.data_dependent) for a, s in zip(abstract_shape, shape))


def _abstract_eval_problems():
    problems = []
    for name, calls in sorted(_all_calls().items()):
        prim = _core.REGISTRY.get(name)
        if prim is None or prim.abstract is None:
            continue
        for _p, _args, params, avals, out in calls[:6]:
            try:
                av = prim.abstract(*avals, **params)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{name}: abstract raised {type(e).__name__}: {e} on {avals}")
                continue
            avs, outs = _as_tuple(av), _as_tuple(out)
            if len(avs) != len(outs):
                problems.append(f"{name}: abstract gives {len(avs)} outputs, eager {len(outs)}")
                continue
            for a, o in zip(avs, outs):
                if not isinstance(a, AbstractValue):
                    problems.append(f"{name}: abstract returned {a!r}, not an AbstractValue")
                elif not _shape_matches(a.shape, o.shape, prim) or a.dtype is not o.dtype:
                    problems.append(
                        f"{name}: abstract {a.shape}/{a.dtype} != eager "
                        f"{tuple(o.shape)}/{o.dtype} for inputs {avals} {params}"
                    )
    return problems


def test_abstract_eval_matches_eager():
    problems = [
        p for p in _abstract_eval_problems() if not _known("abstract_eval", p.split(":")[0])
    ]
    assert not problems, "\n".join(problems)


def test_known_issues_are_current():
    """Every KNOWN_ISSUES entry must still be an issue (remove entries once fixed)."""
    names = {p.split(":")[0] for p in _abstract_eval_problems()}
    stale = []
    for check, name in KNOWN_ISSUES:
        prim = _core.REGISTRY.get(name)
        if prim is None:
            still = False
        elif check == "vjp":
            still = vjp_rule(prim) is None and not prim.nondiff
        elif check == "abstract":
            still = prim.abstract is None
        else:
            still = name in names
        if not still:
            stale.append((check, name))
    assert not stale, f"fixed (remove from KNOWN_ISSUES in tests/test_registry.py): {stale}"


# -- float64 finite-difference check of every differentiable primitive's VJP -----------------
FD_EXEMPT = {
    "lstm_seq_bwd": "first-order only: its VJP raises (tested in test_double_backward_*)",
    "gru_seq_bwd": "first-order only: its VJP raises (tested in test_double_backward_*)",
    "rnn_seq_bwd": "first-order only: its VJP raises (tested in test_double_backward_*)",
    "floor_divide": "piecewise constant",
    "round": "piecewise constant",
    # they read one triangle but return PyTorch's symmetric gradient (tests/test_linalg.py
    # checks it against finite differences along symmetric directions)
    "linalg_cholesky_ex": "symmetric gradient of a one-triangle input",
    "linalg_eigh": "symmetric gradient of a one-triangle input",
    "cholesky_solve": "PyTorch's gradient in the whole factor, of which one triangle is read",
}


def _fd_check(prim, args, params, eps=1e-6, max_elems=24):
    """Compare the VJP with central differences on the float64 tensor inputs."""
    args = [_snapshot(a) if isinstance(a, ember.Tensor) else a for a in args]
    wrt = [
        k
        for k, a in enumerate(args)
        if isinstance(a, ember.Tensor)
        and a.dtype is ember.float64
        and a.numel()
        and getattr(a, "_snapshot_requires_grad", True)
    ]
    for k in wrt:
        args[k].requires_grad_()
    out = bind(prim, args, params)
    aux = AUX_OUTPUTS.get(prim.name, ())
    outs = [
        o
        for i, o in enumerate(_as_tuple(out))
        if isinstance(o, ember.Tensor) and o.requires_grad and i not in aux
    ]
    if not outs or not wrt or any(o.dtype is not ember.float64 for o in outs):
        return None
    rng = np.random.default_rng(0)
    cots = [rng.standard_normal(o.shape) for o in outs]

    def f():
        with ember.no_grad():
            r = [
                o
                for i, o in enumerate(_as_tuple(bind(prim, args, params)))
                if isinstance(o, ember.Tensor) and o.dtype is ember.float64 and i not in aux
            ]
        return sum(float((o._data * c).sum()) for o, c in zip(r, cots))

    grads = ember.autograd.grad(
        outs, [args[k] for k in wrt], [ember.tensor(c) for c in cots], allow_unused=True
    )
    for k, g in zip(wrt, grads):
        a = args[k]._data
        flat = a.reshape(-1)
        for j in range(min(flat.size, max_elems)):
            old = flat[j]
            flat[j] = old + eps
            fp = f()
            flat[j] = old - eps
            fm = f()
            flat[j] = old
            num = (fp - fm) / (2 * eps)
            ana = 0.0 if g is None else float(g._data.reshape(-1)[j])
            if not np.isclose(ana, num, rtol=1e-4, atol=1e-5):
                return f"input {k} element {j}: VJP {ana} vs finite difference {num}"
    return None


def test_vjps_match_finite_differences():
    problems = []
    for name, calls in sorted(_all_calls().items()):
        prim = _core.REGISTRY.get(name)
        if prim is None or prim.nondiff or vjp_rule(prim) is None or name in FD_EXEMPT:
            continue
        checked = 0
        for _p, args, params, _avals, _out in calls:
            if checked >= 2:
                break
            if not any(isinstance(a, ember.Tensor) and a.dtype is ember.float64 for a in args):
                continue
            if prim.kind == "inplace" or FD_SKIP_CALL.get(name, lambda p: False)(params):
                continue
            try:
                err = _fd_check(prim, args, params)
            except Exception as e:  # noqa: BLE001
                err = f"{type(e).__name__}: {e}"
            checked += 1
            if err:
                problems.append(f"{name}: {err} (params {params})")
    assert not problems, "\n".join(problems)
