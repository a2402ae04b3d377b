"""The random stream that data augmentation draws from.

Transforms run inside loader workers, where ember's global generator is a forked copy;
drawing from it would give every worker the same augmentation. Instead the loader
installs a generator seeded with ``base_seed + worker_id`` in each worker (and one
seeded from ember's global generator around each fetch in the main process). Outside a
loader each draw takes a fresh seed from ember's global generator, so
``ember.manual_seed`` alone makes direct calls repeatable.
"""

from __future__ import annotations

import numpy as np

__all__ = ["get_rng", "install", "manual_seed"]

_installed: np.random.Generator | None = None


def get_rng() -> np.random.Generator:
    """The generator a random transform should draw from right now."""
    if _installed is not None:
        return _installed
    import ember.random

    return np.random.default_rng(ember.random.next_seed())


def install(rng: np.random.Generator | None) -> np.random.Generator | None:
    """Make ``rng`` the augmentation stream; returns the previous one (to restore)."""
    global _installed
    prev, _installed = _installed, rng
    return prev


def manual_seed(seed: int) -> None:
    """Seed the augmentation stream of this process explicitly."""
    install(np.random.default_rng(int(seed)))
