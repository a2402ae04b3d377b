"""Small Keras utilities: ``to_categorical``, ``normalize``, ``clear_session``.

Example:
    >>> from ember.keras.utils import to_categorical
    >>> to_categorical([0, 2], num_classes=3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["clear_session", "normalize", "set_random_seed", "to_categorical"]


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """One-hot encode integer labels (class axis last)."""
    y = np.asarray(y, dtype=np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    n = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(
            f"to_categorical: labels must be in [0, {n}), got range [{y.min()}, {y.max()}]"
        )
    return np.eye(n, dtype=dtype)[y]


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(n == 0, 1, n)


def clear_session() -> None:
    """Reset automatic layer names (``dense``, ``dense_1``, ...)."""
    from .layers.base import _NAME_COUNTS

    _NAME_COUNTS.clear()


def set_random_seed(seed: int) -> None:
    """Seed ember (weights, dropout, shuffling) and NumPy's global generator."""
    import ember

    ember.manual_seed(seed)
    np.random.seed(seed)
