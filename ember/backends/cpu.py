"""The CPU backend: NumPy arrays and kernels."""

import numpy as np

name = "cpu"
xp = np
array_types = (np.ndarray,)


def is_available() -> bool:
    return True


def asarray(data, dtype=None):
    return np.asarray(data, dtype=dtype)
