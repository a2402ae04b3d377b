"""``Parameter``: a Tensor that a :class:`~ember.nn.Module` registers as a learnable weight."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _init

__all__ = ["Buffer", "Parameter"]


class Parameter(Tensor):
    """A Tensor that is a module parameter: assigning one to a Module attribute registers it.

    ``Parameter(t)`` shares ``t``'s data array (no copy) and requires grad by default.

    Example:
        >>> import ember
        >>> p = ember.nn.Parameter(ember.zeros(2))
        >>> p.requires_grad, p.is_leaf
        (True, True)
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            arr = np.empty((0,), np.float32)
        elif isinstance(data, Tensor):
            arr = data._data
        else:
            arr = np.asarray(data)
        _init(self, arr)
        if isinstance(data, Tensor):
            self._version = data._version
        if requires_grad:
            self.requires_grad_(True)

    @property
    def value(self) -> Parameter:
        """The parameter itself: Keras variables' ``.value`` (the backend tensor), so that
        Keras code such as ``[v.value.grad for v in model.trainable_weights]`` runs."""
        return self

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self._data, self.requires_grad))


def _rebuild_parameter(data, requires_grad):
    return Parameter(Tensor(np.array(data)), requires_grad)


class Buffer:
    """Marks a tensor to register as a buffer when assigned to a Module attribute
    (``self.x = nn.Buffer(t)``), as ``torch.nn.Buffer``."""

    def __init__(self, data, persistent=True):
        self.data = data
        self.persistent = persistent
