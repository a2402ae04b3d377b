"""Weight regularizers (``kernel_regularizer=keras.regularizers.l2(1e-4)``): penalties added to
the training loss (``model.losses``).

Example:
    >>> import ember
    >>> from ember.keras import regularizers
    >>> regularizers.l2(0.5)(ember.tensor([1.0, 2.0])).item()
    2.5
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
]


class Regularizer:
    def __call__(self, w):
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``."""

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0):
        self.l1 = 0.0 if l1 is None else float(l1)
        self.l2 = 0.0 if l2 is None else float(l2)

    def __call__(self, w):
        out = 0.0
        if self.l1:
            out = out + self.l1 * w.abs().sum()
        if self.l2:
            out = out + self.l2 * w.square().sum()
        return out


class L1(L1L2):
    """``l1 * sum(|w|)``; its config holds ``l1`` as a float32 value, as Keras 3 stores it.

    Example:
        >>> from ember.keras import regularizers
        >>> regularizers.L1().get_config()
        {'l1': 0.009999999776482582}
    """

    def __init__(self, l1: float | None = 0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": float(np.float32(self.l1))}


class L2(L1L2):
    def __init__(self, l2: float | None = 0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Keras' penalty that pushes the rows (``mode="rows"``) or the columns
    (``mode="columns"``) of a 2-D weight (Keras' layout: a ``Dense`` kernel is
    ``(input_dim, units)``) towards orthogonality: ``factor / 2`` times the summed absolute
    cosines between distinct rows (columns), over the number of pairs.

    Example:
        >>> import ember
        >>> from ember.keras import regularizers
        >>> reg = regularizers.OrthogonalRegularizer(factor=1.0)
        >>> round(reg(ember.tensor([[1.0, 0.0], [1.0, 1.0]])).item(), 4)
        0.7071
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        # (Keras raises ValueError for a wrong type here too, and accepts bools as numbers)
        if not isinstance(factor, (int, float, np.floating, np.integer)) or factor < 0:
            raise ValueError(
                "Invalid value for argument factor: expected a non-negative float. "
                f"Received: factor={factor}"
            )
        if mode not in ("rows", "columns"):
            raise ValueError(
                'Invalid value for argument `mode`. Expected one of {"rows", "columns"}. '
                f"Received: mode={mode}"
            )
        self.factor = float(np.float32(factor))  # (Keras keeps it as a float32 tensor)
        self.mode = mode

    def __call__(self, w):
        if w.ndim != 2:
            raise ValueError(
                f"Inputs to OrthogonalRegularizer must have rank 2. Received: "
                f"inputs.shape={tuple(w.shape)}"
            )
        axis = 1 if self.mode == "rows" else 0
        # unit vectors as keras.ops.normalize makes them (norms floored at sqrt(1e-7))
        unit = w / w.square().sum(axis, keepdim=True).clamp(min=1e-7).sqrt()
        product = unit @ unit.T if axis == 1 else unit.T @ unit
        size = product.shape[0]
        off_diagonal = product * (1.0 - _eye(size, product))
        pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * off_diagonal.abs().sum() / pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def _eye(n, like):
    import ember

    return ember.eye(n, dtype=like.dtype)


l1, l2, l1_l2 = L1, L2, L1L2
orthogonal_regularizer = OrthogonalRegularizer
_ALL = {
    "l1": L1,
    "l2": L2,
    "l1_l2": L1L2,
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
    "OrthogonalRegularizer": OrthogonalRegularizer,
}


def get(identifier):
    if (
        identifier is None
        or isinstance(identifier, Regularizer)
        or (callable(identifier) and not isinstance(identifier, (str, dict, type)))
    ):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _ALL:
            raise ValueError(f"unknown regularizer {identifier!r}; known: {sorted(_ALL)}")
        return _ALL[identifier]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _ALL:
            raise ValueError(f"unknown regularizer {name!r}; known: {sorted(_ALL)}")
        return _ALL[name].from_config(identifier.get("config") or {})
    raise TypeError(f"cannot interpret {identifier!r} as a regularizer")


def serialize(reg):
    if reg is None:
        return None
    if not isinstance(reg, Regularizer):
        raise TypeError(f"cannot serialize the regularizer {reg!r}")
    return {
        "module": "keras.regularizers",
        "class_name": type(reg).__name__,
        "config": reg.get_config(),
        "registered_name": None,
    }
