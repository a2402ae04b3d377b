"""How ember.data turns a ``generator=`` argument into a NumPy generator.

Everything random in the pipeline (shuffling, splits, augmentation) is derived from
ember's global generator unless told otherwise, so ``ember.manual_seed`` makes a whole
run repeatable.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "next_seed", "resolve_rng"]


def next_seed(generator=None) -> int:
    """A 63-bit seed from ``generator`` (ember Generator, int, NumPy Generator) or ember's."""
    if generator is None:
        import ember.random

        return ember.random.next_seed()
    if isinstance(generator, (int, np.integer)):
        return int(generator)
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(0, 2**63 - 1))
    if hasattr(generator, "next_seed"):
        return int(generator.next_seed())
    raise TypeError(
        f"generator must be an ember.Generator, an int seed or a "
        f"numpy.random.Generator, got {type(generator).__name__}"
    )


def resolve_rng(generator=None) -> np.random.Generator:
    """A fresh NumPy generator seeded from ``generator`` (see :func:`next_seed`)."""
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(next_seed(generator))


def as_generator(generator):
    """Keep ``None`` and ember Generators; turn an int seed into a stateful NumPy generator.

    An int seed must not give the same shuffle every epoch, so it becomes a generator
    that advances with each use (like a seeded ``torch.Generator``).
    """
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    return generator
