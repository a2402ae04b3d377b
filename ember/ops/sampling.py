"""Random tensors: one primitive, ``random``, behind ``ember.rand``/``randn``/``randint``, their
``*_like`` forms, ``normal``, ``bernoulli``, ``randperm`` and the in-place fills (``uniform_``,
``normal_``, ``exponential_``, ``geometric_``, ``log_normal_``, ``cauchy_``, ``random_``, and
``nn.init`` on top of them).

Its values are a function of the ``seed`` param alone (drawn with ``Generator.next_seed()``,
as dropout's), so a compiled function turns the seed into a graph seed input and draws what
eager mode draws for the same ``ember.manual_seed``. The kernel keys a Philox stream with the
seed (counter zero): one reused bit generator per thread whose state is set (no
``SeedSequence``, a few microseconds per draw).
"""

from __future__ import annotations

import threading

import numpy as np

from .._dtype import from_numpy_dtype
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError
from ._samples import defsample

__all__ = ["DISTRIBUTIONS", "random_p", "seeded_generator"]

# what each distribution draws: its scalars ``a``, ``b``
DISTRIBUTIONS = {
    "uniform": "uniform on [a, b)",
    "normal": "normal with mean a and standard deviation b",
    "randint": "integers in [a, b)",
    "exponential": "exponential with rate a (inverse CDF of a float64 uniform draw)",
    "geometric": "trials up to the first success (from 1), success probability a",
    "log_normal": "exp of a normal with mean a and standard deviation b",
    "cauchy": "Cauchy at median a with scale b",
}

_TLS = threading.local()
_M64 = (1 << 64) - 1
_ZEROS4 = np.zeros(4, np.uint64)


def seeded_generator(seed: int) -> np.random.Generator:
    """A NumPy generator on the Philox stream keyed by ``seed`` (the same values for the same
    seed; the generator is reused by the calling thread: draw from it before the next call).

    Example:
        >>> from ember.ops.sampling import seeded_generator
        >>> a = seeded_generator(7).random(3).tolist()
        >>> a == seeded_generator(7).random(3).tolist()
        True
    """
    g = getattr(_TLS, "gen", None)
    if g is None:
        g = _TLS.gen = np.random.Generator(np.random.Philox(0))
    g.bit_generator.state = {
        "bit_generator": "Philox",
        "state": {"counter": _ZEROS4, "key": np.array([int(seed) & _M64, 0], np.uint64)},
        "buffer": _ZEROS4,
        "buffer_pos": 4,
        "has_uint32": 0,
        "uinteger": 0,
    }
    return g


def _random_impl(*, seed, shape, dtype, dist, a, b):
    dtype = np.dtype(dtype)
    g = seeded_generator(seed)
    shape = tuple(shape)
    if dist == "randint":  # [a, b - 1] inclusive: b may be 2**63 (the same stream as [a, b))
        return g.integers(a, b - 1, size=shape, endpoint=True).astype(dtype, copy=False)
    if dist in _INVERSE_CDF:
        with np.errstate(all="ignore"):
            r = _INVERSE_CDF[dist](g, shape, a, b)
        return r.astype(dtype, copy=False)
    work = np.float64 if dtype == np.float64 else np.float32
    if dist == "uniform":
        r = g.random(shape, dtype=work)
        if a != 0.0 or b != 1.0:
            r = r * work(b - a) + work(a)
    elif dist == "normal":
        r = g.standard_normal(shape, dtype=work)
        if a != 0.0 or b != 1.0:
            r = r * work(b) + work(a)
    else:
        raise ValueError(f"random: unknown distribution {dist!r} (one of {sorted(DISTRIBUTIONS)})")
    return r.astype(dtype, copy=False)


def _exponential(g, shape, a, b):
    return -np.log1p(-g.random(shape)) / a


def _geometric(g, shape, a, b):
    return np.maximum(np.ceil(np.log1p(-g.random(shape)) / np.log1p(-a)), 1.0)


def _log_normal(g, shape, a, b):
    return np.exp(g.standard_normal(shape) * b + a)


def _cauchy(g, shape, a, b):
    return np.tan(np.pi * (g.random(shape) - 0.5)) * b + a


# the distributions drawn in float64 from a uniform (or normal) draw, then cast
_INVERSE_CDF = {
    "exponential": _exponential,
    "geometric": _geometric,
    "log_normal": _log_normal,
    "cauchy": _cauchy,
}


def _random_abstract(*, seed, shape, dtype, dist, a, b):
    if dist not in DISTRIBUTIONS:
        raise ShapeError(f"random: unknown distribution {dist!r} (one of {sorted(DISTRIBUTIONS)})")
    if any(s < 0 for s in shape):
        raise ShapeError(f"random: negative dimension in size {tuple(shape)}")
    return AbstractValue(tuple(shape), from_numpy_dtype(np.dtype(dtype)))


random_p = Primitive(
    "random",
    "creation",
    impl=_random_impl,
    abstract=_random_abstract,
    save=SAVE_NONE,
    nondiff=True,
)


def _samples() -> list:
    f32, f64, i64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
    return [
        ((), {"seed": 3, "shape": (2, 3), "dtype": f32, "dist": "uniform", "a": 0.0, "b": 1.0}),
        ((), {"seed": 5, "shape": (4,), "dtype": f64, "dist": "normal", "a": 1.0, "b": 2.0}),
        ((), {"seed": 7, "shape": (0, 2), "dtype": i64, "dist": "randint", "a": -3, "b": 4}),
        ((), {"seed": 9, "shape": (3,), "dtype": f32, "dist": "exponential", "a": 2.0, "b": 0.0}),
        ((), {"seed": 2, "shape": (3,), "dtype": i64, "dist": "geometric", "a": 0.3, "b": 0.0}),
        ((), {"seed": 4, "shape": (2,), "dtype": f64, "dist": "log_normal", "a": 1.0, "b": 2.0}),
        ((), {"seed": 6, "shape": (2, 2), "dtype": f32, "dist": "cauchy", "a": 0.0, "b": 1.0}),
    ]


defsample(random_p, _samples)
