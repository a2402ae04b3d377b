"""Ember's random number generators.

All randomness (``rand``, ``dropout``, shuffling, augmentation) draws from a
:class:`Generator`. Ops that need random bits take an explicit integer seed drawn
here, so that a traced graph can be re-seeded and CPU runs are bitwise repeatable
after ``ember.manual_seed``.
"""

from __future__ import annotations

from typing import cast

import numpy as np

__all__ = [
    "Generator",
    "default_generator",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "next_seed",
    "seed",
    "set_rng_state",
]


class Generator:
    """A seeded random stream (PCG64).

    Example:
        >>> import ember
        >>> g = ember.Generator().manual_seed(0)
        >>> ember.rand(2, generator=g).shape
        ember.Size([2])
    """

    def __init__(self, device="cpu"):
        self._seed = 0
        self._rng = np.random.Generator(np.random.PCG64(0))

    def manual_seed(self, seed: int) -> Generator:
        seed = int(seed)
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed & (2**64 - 1)))
        return self

    def seed(self) -> int:
        # a SeedSequence made without entropy draws a fresh int
        s = int(cast("int", np.random.SeedSequence().entropy)) & (2**63 - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The full state as a JSON-able dict (saved in checkpoints)."""
        st = self._rng.bit_generator.state
        return {
            "seed": self._seed,
            "bit_generator": st["bit_generator"],
            "state": {k: int(v) for k, v in st["state"].items()},
            "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"]),
        }

    def set_state(self, state: dict) -> None:
        self._seed = int(state.get("seed", 0))
        bg = np.random.PCG64()
        bg.state = {
            "bit_generator": state["bit_generator"],
            "state": {"state": state["state"]["state"], "inc": state["state"]["inc"]},
            "has_uint32": state["has_uint32"],
            "uinteger": state["uinteger"],
        }
        self._rng = np.random.Generator(bg)

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng

    def next_seed(self) -> int:
        return int(self._rng.integers(0, 2**63 - 1))


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator; CPU runs become bitwise repeatable.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(42); a = ember.rand(3)
        >>> _ = ember.manual_seed(42); b = ember.rand(3)
        >>> bool((a == b).all())
        True
    """
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(new_state: dict) -> None:
    default_generator.set_state(new_state)


def next_seed(generator: Generator | None = None) -> int:
    """Draw a 63-bit seed for an op that needs random bits (advances the generator)."""
    return (generator or default_generator).next_seed()
