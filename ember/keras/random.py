"""``keras.random``: random tensors with Keras 3's names and ``seed=`` semantics.

``seed`` is ``None`` (ember's global generator, seeded by ``keras.utils.set_random_seed``),
an int (the same numbers on every call with that int) or a :class:`SeedGenerator` (a new
draw on every call, reproducible from the generator's seed).

Example:
    >>> from ember.keras import random
    >>> a = random.normal((2, 3), seed=1)
    >>> b = random.normal((2, 3), seed=1)
    >>> bool((a == b).all()), tuple(a.shape), a.dtype
    (True, (2, 3), ember.float32)
"""

from __future__ import annotations

import ember
from ember.random import Generator

from .ops._core import _dtype, convert_to_tensor

__all__ = [
    "SeedGenerator",
    "dropout",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]


class SeedGenerator:
    """A stateful source of seeds: each random call that takes it draws new numbers.

    Example:
        >>> from ember.keras import random
        >>> gen = random.SeedGenerator(42)
        >>> bool((random.uniform((3,), seed=gen) != random.uniform((3,), seed=gen)).any())
        True
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        self.name = name or "seed_generator"
        self._gen = Generator()
        self._gen.manual_seed(int(seed) if seed is not None else ember.random.next_seed())

    def next(self) -> Generator:
        return self._gen

    def get_config(self) -> dict:
        return {"seed": int(self._gen.initial_seed()), "name": self.name}


def _generator(seed) -> Generator | None:
    if seed is None:
        return None
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"keras.random: seed must be None, an int or a SeedGenerator, got {seed!r}")
    g = Generator()
    g.manual_seed(int(seed))
    return g


def _shape(shape) -> tuple:
    return (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)


def _float_dtype(dtype):
    dt = _dtype(dtype) or ember.float32
    if not dt.is_floating_point:
        raise TypeError(f"keras.random: dtype must be a float type, got {dtype!r}")
    return dt


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> ember.Tensor:
    """Samples of N(mean, stddev**2).

    Example:
        >>> import ember
        >>> from ember.keras import random
        >>> tuple(random.normal((2, 3), seed=0).shape)
        (2, 3)
    """
    x = ember.randn(*_shape(shape), generator=_generator(seed), dtype=_float_dtype(dtype))
    return x * stddev + mean


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> ember.Tensor:
    """Samples of U[minval, maxval).

    Example:
        >>> import ember
        >>> from ember.keras import random
        >>> bool((random.uniform((100,), minval=2.0, maxval=3.0, seed=0) >= 2.0).all())
        True
    """
    x = ember.rand(*_shape(shape), generator=_generator(seed), dtype=_float_dtype(dtype))
    return x * (maxval - minval) + minval


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> ember.Tensor:
    """Normal samples redrawn until within two standard deviations of the mean.

    Example:
        >>> import ember
        >>> from ember.keras import random
        >>> bool((random.truncated_normal((100,), seed=0).abs() <= 2.0).all())
        True
    """
    g = _generator(seed)
    dt = _float_dtype(dtype)
    x = ember.randn(*_shape(shape), generator=g, dtype=dt)
    bad = x.abs() > 2.0
    while bool(bad.any().item()):
        x = ember.where(bad, ember.randn(*_shape(shape), generator=g, dtype=dt), x)
        bad = x.abs() > 2.0
    return x * stddev + mean


def randint(shape, minval, maxval, dtype="int32", seed=None) -> ember.Tensor:
    """Integers uniform in ``[minval, maxval)`` (int32 by default, as Keras).

    Example:
        >>> import ember
        >>> from ember.keras import random
        >>> random.randint((3,), 0, 1, seed=0).tolist()
        [0, 0, 0]
    """
    if int(maxval) <= int(minval):
        raise ValueError(f"keras.random.randint: need minval < maxval, got [{minval}, {maxval})")
    x = ember.randint(int(minval), int(maxval), _shape(shape), generator=_generator(seed))
    return x.to(_dtype(dtype))


def dropout(inputs, rate, noise_shape=None, seed=None) -> ember.Tensor:
    """Zero each entry with probability ``rate`` and scale the rest by ``1 / (1 - rate)``;
    ``noise_shape`` (broadcast to the input) shares one draw along its size-1 axes.

    Example:
        >>> import ember
        >>> from ember.keras import random
        >>> sorted(set(random.dropout(ember.ones(20), 0.5, seed=0).tolist()))
        [0.0, 2.0]
    """
    x = convert_to_tensor(inputs)
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"keras.random.dropout: rate must be in [0, 1), got {rate}")
    if noise_shape is None:
        noise_shape = tuple(x.shape)
    noise_shape = tuple(int(d) if d is not None else x.shape[i] for i, d in enumerate(noise_shape))
    keep = uniform(noise_shape, seed=seed, dtype=x.dtype if x.is_floating_point() else None)
    mask = (keep >= float(rate)).to(x.dtype)
    return x * mask / (1.0 - float(rate))


def shuffle(x, axis=0, seed=None) -> ember.Tensor:
    """``x`` with its entries along ``axis`` in a random order.

    Example:
        >>> import ember
        >>> from ember.keras import random
        >>> sorted(random.shuffle([3, 1, 2], seed=0).tolist())
        [1, 2, 3]
    """
    x = convert_to_tensor(x)
    axis = int(axis) % x.ndim
    perm = ember.randperm(x.shape[axis], generator=_generator(seed))
    return ember.index_select(x, axis, perm)
