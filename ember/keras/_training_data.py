"""The data side of Keras' ``fit``/``evaluate``/``predict``: nested Python lists as arrays,
several inputs and outputs batched together, class weights as sample weights, and
``(x, y, sample_weight)`` unpacked from a batch.

Example:
    >>> from ember.keras._training_data import _unpack
    >>> _unpack((1, 2))
    (1, 2, None)
"""

from __future__ import annotations

import numpy as np

import ember
from ember.train import ArrayLoader


def _batch_len(batch) -> float:
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    while isinstance(x, (list, tuple)):
        x = x[0]
    if isinstance(x, dict):
        x = next(iter(x.values()))
    return float(x.shape[0])


def _to_np(a):
    if a is None or isinstance(a, ember.Tensor):
        return a
    a = np.asarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return a


def _to_tensor(a):
    if a is None or isinstance(a, ember.Tensor):
        return a
    return ember.tensor(np.ascontiguousarray(a))


class _StructLoader:
    """An :class:`ArrayLoader` over flattened inputs/targets, regrouped per batch."""

    def __init__(self, xs, ys, sw, n_x, x_multi, y_multi, batch_size, shuffle):
        self.n_x, self.x_multi, self.y_multi = n_x, x_multi, y_multi
        self.has_y, self.has_sw = ys is not None, sw is not None
        arrays = list(xs) + (list(ys) if ys is not None else []) + ([sw] if sw is not None else [])
        self.inner = ArrayLoader(arrays, batch_size=batch_size, shuffle=shuffle)

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        for b in self.inner:
            b = [_to_tensor(a) for a in b]
            x = b[: self.n_x] if self.x_multi else b[0]
            rest = b[self.n_x :]
            if not self.has_y:
                yield (x,)
                continue
            n_y = len(rest) - (1 if self.has_sw else 0)
            y = rest[:n_y] if self.y_multi else rest[0]
            yield (x, y, rest[-1]) if self.has_sw else (x, y)

    def shard(self, rank: int, world_size: int) -> None:
        self.inner.shard(rank, world_size)

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def rng_state(self):
        return self.inner.rng_state()

    def set_rng_state(self, state):
        self.inner.set_rng_state(state)


def _class_weights(y, class_weight) -> np.ndarray:
    """Per-sample weights from ``class_weight`` (integer or one-hot labels)."""
    yl = np.asarray(y.numpy() if isinstance(y, ember.Tensor) else y)
    labels = yl.argmax(-1) if yl.ndim > 1 and yl.shape[-1] > 1 else yl.reshape(len(yl))
    return np.array([class_weight.get(int(c), 1.0) for c in labels], np.float32)


class _ClassWeighted:
    """A dataset/loader/generator of ``(x, y[, sample_weight])`` batches with the
    ``class_weight`` of each target folded into its sample weight (as Keras does)."""

    def __init__(self, inner, class_weight):
        self.inner, self.class_weight = inner, class_weight

    def __len__(self):
        return len(self.inner)

    def __getattr__(self, name):
        if name in ("inner", "class_weight"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __iter__(self):
        for batch in self.inner:
            x, y, sw = _unpack(batch)
            if y is None or isinstance(y, (list, tuple, dict)):
                raise ValueError("class_weight needs a single target")
            cw = ember.tensor(_class_weights(y, self.class_weight))
            yield x, y, cw if sw is None else _to_tensor(sw) * cw


def _is_number_nest(v) -> bool:
    """A (nested) list/tuple of Python numbers: one array, as ``tf.keras`` converted them."""
    while isinstance(v, (list, tuple)):
        if not v:
            return False
        v = v[0]
    return isinstance(v, (bool, int, float, np.bool_, np.number))


def _nest_to_array(v, what):
    try:
        a = np.asarray(v)
    except ValueError as e:
        raise ValueError(f"{what}: the nested lists are not rectangular ({e})") from None
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{what}: the nested lists hold {a.dtype} items, not numbers")
    return a


def _lists_to_arrays(v, n_parts: int, what: str):
    """Plain nested Python lists of numbers as NumPy arrays: ``v`` itself when it is one
    such nest (for a single input/output), else each nest among its items/values (a list of
    ``n_parts`` inputs or outputs, a dict by layer name)."""
    if isinstance(v, dict):
        return {k: _nest_to_array(a, what) if _is_number_nest(a) else a for k, a in v.items()}
    if not isinstance(v, (list, tuple)):
        return v
    nests = [isinstance(a, (list, tuple)) and _is_number_nest(a) for a in v]
    if _is_number_nest(v) and not (n_parts > 1 and len(v) == n_parts and all(nests)):
        return _nest_to_array(v, what)
    if any(nests):
        return [_nest_to_array(a, what) if n else a for a, n in zip(v, nests)]
    return v


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _outputs_list(v):
    """A model's outputs (or their targets) as a list: a dict of outputs (a functional model
    built with ``outputs={name: ...}``) in the model's order of its keys."""
    return list(v.values()) if isinstance(v, dict) else _as_list(v)


def _unpack(data):
    """``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if isinstance(data, (list, tuple)):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data[0], data[1], data[2]
    return data, None, None
