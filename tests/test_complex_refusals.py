"""Complex inputs across the whole shared surface: every public name of ``ember``,
``ember.nn.functional`` and ``ember.Tensor`` that PyTorch 2.13 also has is called on complex64
tensors with a signature that both frameworks accept for float64 tensors, and must raise
exactly where PyTorch raises; where both compute, the results must agree.

The signature of a name is the first entry of ``SIGNATURES`` (or its ``SPECIAL`` maker) that
PyTorch and Ember both take on real inputs, so an error on the complex call is about the dtype,
not the arguments. Names that no generic signature fits are listed in ``NEEDS_ARGS`` (the test
reports them as skips with that reason, and fails when a name starts or stops fitting, so the
list stays exact); random and state-changing names are in ``SKIP`` with their reasons.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F

_RNG = np.random.default_rng(0)
_SHAPE = (3, 4)
_A = _RNG.uniform(-2, 2, _SHAPE) + 1j * _RNG.uniform(-2, 2, _SHAPE)
_B = _RNG.uniform(-2, 2, _SHAPE) + 1j * _RNG.uniform(-2, 2, _SHAPE)
_A4 = _RNG.uniform(-2, 2, (2, 3, 4, 5)) + 1j * _RNG.uniform(-2, 2, (2, 3, 4, 5))
_SQ = _RNG.uniform(-2, 2, (3, 3)) + 1j * _RNG.uniform(-2, 2, (3, 3)) + 3 * np.eye(3)


def _t(lib, a, complex_: bool):
    a = a.astype(np.complex64) if complex_ else a.real.astype(np.float64)
    return torch.tensor(a) if lib is torch else ember.tensor(a)


class _In:
    """Input makers for one framework and one kind (complex64, or the float64 real parts)."""

    def __init__(self, lib, complex_):
        self.lib, self.c = lib, complex_

    def x(self):
        return _t(self.lib, _A, self.c)

    def y(self):
        return _t(self.lib, _B, self.c)

    def x4(self):
        return _t(self.lib, _A4, self.c)

    def sq(self):
        return _t(self.lib, _SQ, self.c)

    def vec(self):
        return _t(self.lib, _A[0], self.c)


# Generic signatures, tried in order (``i``: the inputs of one framework and kind).
SIGNATURES = (
    lambda i: ((i.x(),), {}),
    lambda i: ((i.x(), i.y()), {}),
    lambda i: ((i.x(), 0.5), {}),
    lambda i: ((i.x(), 1), {}),
    lambda i: ((i.x(), i.y(), i.y()), {}),
    lambda i: ((i.x(), i.y(), 0.5), {}),
    lambda i: ((i.x(), 0.5, 0.5), {}),
    lambda i: ((i.x(), 1, 1), {}),
    lambda i: ((i.sq(),), {}),
    lambda i: ((i.sq(), i.sq()), {}),
    lambda i: ((i.x4(),), {}),
    lambda i: ((i.x4(), 2), {}),
    lambda i: (([i.x(), i.y()],), {}),
    lambda i: ((i.x(), (1, 0)), {}),
    lambda i: ((i.vec(), i.vec()), {}),
)


def _real_1d(i):
    r = np.array([-1.0, 0.0, 1.5])
    return torch.tensor(r) if i.lib is torch else ember.tensor(r)


# Names whose first generic fit is not the call that matters, or that none fits.
SPECIAL = {
    "bucketize": lambda i: ((i.x(), _real_1d(i)), {}),
    "searchsorted": lambda i: ((i.vec(), i.x()), {}),
    "isin": lambda i: ((i.x(), i.y()), {}),
    "prelu": lambda i: ((i.x4(), _t(i.lib, _A4[0, :, 0, 0], i.c)), {}),
    "rrelu": lambda i: ((i.x(),), {"training": False}),
    "clamp": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "clip": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "clamp_": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "clip_": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "norm": lambda i: ((i.x(),), {}),
    "dist": lambda i: ((i.x(), i.y()), {}),
    "logaddexp": lambda i: ((i.x(), i.y()), {}),
}

# Not called: randomness (values differ by design) and process state.
SKIP = {
    **dict.fromkeys(
        (
            "dropout alpha_dropout feature_alpha_dropout dropout1d dropout2d dropout3d "
            "gumbel_softmax bernoulli multinomial normal poisson rand_like randn_like "
            "randint_like random_ uniform_ normal_ exponential_ geometric_ cauchy_ "
            "log_normal_ bernoulli_ rrelu_ rrelu_with_noise"
        ).split(),
        "random values",
    ),
    **dict.fromkeys(
        ("empty_like new_empty empty_strided new_empty_strided").split(),
        "uninitialized values",
    ),
    **dict.fromkeys(
        (
            "manual_seed seed initial_seed set_rng_state get_rng_state set_default_dtype "
            "set_num_threads set_grad_enabled set_anomaly_enabled use_deterministic_algorithms "
            "set_printoptions save load"
        ).split(),
        "process state or files",
    ),
    **dict.fromkeys(
        ("no_grad enable_grad inference_mode").split(),
        "context managers (returned objects, not values)",
    ),
    **dict.fromkeys(
        (
            "data_ptr storage_offset untyped_storage register_hook retain_grad backward "
            "share_memory_ numpy tolist item __array__"
        ).split(),
        "memory identity or autograd plumbing, not values",
    ),
}


def _names(kind):
    if kind == "ember":
        return [n for n in dir(ember) if not n.startswith("_") and hasattr(torch, n)]
    if kind == "F":
        return [n for n in dir(F) if not n.startswith("_") and hasattr(TF, n)]
    return [
        n for n in dir(ember.Tensor) if not n.startswith("__") and hasattr(torch.Tensor, n)
    ]


def _fn(kind, lib, name):
    if kind == "ember":
        return getattr(lib, name)
    if kind == "F":
        return getattr(TF if lib is torch else F, name)

    def method(x, *args, **kw):
        m = getattr(x, name)
        return m(*args, **kw) if callable(m) else m

    return method


def _call(fn, maker, lib, complex_):
    args, kw = maker(_In(lib, complex_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _signature(kind, name):
    tf, ef = _fn(kind, torch, name), _fn(kind, ember, name)
    makers = (SPECIAL[name],) if name in SPECIAL else SIGNATURES
    for maker in makers:
        try:
            _call(tf, maker, torch, False)
            _call(ef, maker, ember, False)
        except Exception:
            continue
        return maker
    return None


def _flat(o):
    if isinstance(o, (tuple, list)):
        return [y for z in o for y in _flat(z)]
    return [o]


def _np(o):
    if isinstance(o, torch.Tensor):
        return o.detach().resolve_conj().resolve_neg().numpy()
    if isinstance(o, ember.Tensor):
        return o.detach().numpy()
    return o


def _same(name, t, e):
    tf, ef = _flat(t), _flat(e)
    assert len(tf) == len(ef), f"{name}: {len(ef)} results, torch {len(tf)}"
    for a, b in zip(tf, ef):
        a, b = _np(a), _np(b)
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            a, b = np.asarray(a), np.asarray(b)
            assert a.shape == b.shape, f"{name}: shape {b.shape}, torch {a.shape}"
            assert a.dtype == b.dtype, f"{name}: dtype {b.dtype}, torch {a.dtype}"
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)
        elif isinstance(a, torch.dtype):
            assert str(a) == f"torch.{b.name}", name
        elif isinstance(a, (torch.Size, tuple)):
            assert tuple(a) == tuple(b), name
        elif isinstance(a, (bool, int, float, complex)):
            assert a == b or (a != a and b != b), f"{name}: {b!r}, torch {a!r}"


CASES = [(k, n) for k in ("ember", "F", "Tensor") for n in _names(k)]


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}.{n}" for k, n in CASES])
def test_complex_matches_torch(kind, name):
    if name in SKIP:
        pytest.skip(SKIP[name])
    maker = _signature(kind, name)
    listed = name in NEEDS_ARGS.get(kind, ())
    if maker is None:
        if listed:
            pytest.skip("needs arguments no generic signature gives (NEEDS_ARGS)")
        pytest.fail(f"{kind}.{name}: no signature fits; add a SPECIAL maker or NEEDS_ARGS")
    assert not listed, f"{kind}.{name} now fits a signature: remove it from NEEDS_ARGS"
    tf, ef = _fn(kind, torch, name), _fn(kind, ember, name)
    try:
        want = _call(tf, maker, torch, True)
    except Exception as exc:
        want, terr = None, exc
    else:
        terr = None
    if name in KNOWN.get(kind, {}):
        assert terr is None, f"{kind}.{name} is listed in KNOWN but torch raises {terr!r}"
        with pytest.raises(TypeError, match="complex"):
            _call(ef, maker, ember, True)
        return
    if terr is not None:
        with pytest.raises((TypeError, RuntimeError, ValueError)) as info:
            _call(ef, maker, ember, True)
        assert "complex" in str(info.value), f"{kind}.{name}: {info.value}"
        return
    got = _call(ef, maker, ember, True)
    _same(f"{kind}.{name}", want, got)


# Ember refuses where PyTorch computes (documented in docs/api-differences.md): complex
# matrices in ember.linalg beyond eig/eigvals.
KNOWN: dict[str, dict[str, str]] = {"ember": {}, "F": {}, "Tensor": {}}

NEEDS_ARGS: dict[str, set[str]] = {"ember": set(), "F": set(), "Tensor": set()}
