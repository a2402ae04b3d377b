"""Keras metric names resolved to ``ember.metrics`` streaming metrics.

``'accuracy'`` follows Keras: its meaning depends on the loss (sparse labels, one-hot
targets, or binary probabilities).
"""

from __future__ import annotations

__all__ = ["get"]


def get(identifier, loss_name: str | None = None):
    """A fresh streaming metric for ``identifier``; ``loss_name`` picks the accuracy kind."""
    from ember import metrics as M

    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        ln = (loss_name or "").lower()
        if "sparse_categorical" in ln:
            return M.SparseCategoricalAccuracy(name=identifier)
        if "categorical" in ln:
            return M.CategoricalAccuracy(name=identifier)
        if "binary" in ln:
            return M.BinaryAccuracy(name=identifier)
        return M.Accuracy(name=identifier)
    return M.get(identifier)


def __getattr__(name):
    from ember import metrics as M

    return getattr(M, name)
