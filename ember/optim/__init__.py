"""Optimizers and learning-rate schedules (``torch.optim`` names and semantics).

Example:
    >>> import ember
    >>> w = ember.zeros(2, requires_grad=True)
    >>> opt = ember.optim.Adam([w], lr=0.1)
    >>> ((w - 1.0) ** 2).sum().backward()
    >>> opt.step(); opt.zero_grad()
"""

from . import (
    _functional,  # noqa: F401
    lr_scheduler,
)
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]


def __dir__() -> list[str]:
    # the public names only (the implementation submodules stay importable, but unlisted)
    return list(__all__)
