"""The streaming-metric base class and input helpers.

Metrics are not differentiable: they read their inputs as NumPy arrays and keep
their state in NumPy. ``compute()`` returns an ember Tensor (a 0-d float64 tensor
for scalar results, so ``.item()`` gives a Python float; an array-valued tensor for
per-class results and confusion matrices).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Metric", "to_numpy"]


def to_numpy(x) -> np.ndarray:
    """An ember Tensor, a NumPy array, a torch tensor or a nested list -> ndarray."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "numpy"):
        d = x.detach()
        if hasattr(d, "cpu"):
            d = d.cpu()
        return np.asarray(d.numpy())
    return np.asarray(x)


def as_output(value):
    """Wrap a computed value as an ember Tensor (float64 for floating scalars)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64, copy=False)
    import ember

    return ember.tensor(arr) if arr.ndim == 0 else ember.from_numpy(np.ascontiguousarray(arr))


class Metric:
    """A streaming metric.

    Subclasses implement three pure functions over a *state* (a dict of NumPy
    arrays / lists): ``_batch_state(preds, target, **kw)`` builds the state of one
    batch, ``_merge(state, other)`` adds ``other`` into ``state`` (in place), and
    ``_value(state)`` computes the metric from a state. Everything else follows:

    - ``update(preds, target)`` accumulates a batch;
    - ``compute()`` returns the metric over everything seen since ``reset()``;
    - ``m(preds, target)`` accumulates and returns the value *of this batch alone*;
    - ``merge_state(other)`` folds another metric's state in (e.g. from another worker).
    """

    name = "metric"

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name
        self._state = self._empty_state()
        self._count = 0

    # ----- to implement -------------------------------------------------------------------
    def _empty_state(self) -> dict:
        raise NotImplementedError

    def _batch_state(self, preds, target, *args, **kwargs) -> dict:
        raise NotImplementedError

    def _merge(self, state: dict, other: dict) -> None:
        for k, v in other.items():
            if isinstance(state[k], list):
                state[k].extend(v)
            elif state[k] is None:
                state[k] = v.copy() if isinstance(v, np.ndarray) else v
            else:
                state[k] = state[k] + v

    def _value(self, state: dict):
        raise NotImplementedError

    # ----- public API ---------------------------------------------------------------------
    def update(self, *args, **kwargs) -> None:
        """Accumulate one batch: ``update(preds, target)`` (``Mean``: ``update(values,
        weight=None)``)."""
        batch = self._batch_state(*args, **kwargs)
        self._merge(self._state, batch)
        self._count += 1

    def compute(self):
        """The metric over every batch since the last ``reset()`` (an ember Tensor)."""
        return as_output(self._value(self._state))

    def reset(self) -> None:
        self._state = self._empty_state()
        self._count = 0

    def __call__(self, *args, **kwargs):
        """Accumulate a batch and return the metric of that batch alone."""
        batch = self._batch_state(*args, **kwargs)
        self._merge(self._state, batch)
        self._count += 1
        return as_output(self._value(batch))

    forward = __call__

    def merge_state(self, other: Metric) -> None:
        """Fold another metric's accumulated state into this one."""
        if type(other) is not type(self):
            raise TypeError(
                f"{type(self).__name__}.merge_state: cannot merge a {type(other).__name__}"
            )
        self._merge(self._state, other._state)
        self._count += other._count

    def result(self):
        """Keras spelling of ``compute()``."""
        return self.compute()

    def reset_state(self) -> None:
        """Keras spelling of ``reset()``."""
        self.reset()

    update_state = update

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def safe_div(num, den):
    """num / den elementwise with 0 where den == 0 (sklearn's zero_division=0), warning-free."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out
