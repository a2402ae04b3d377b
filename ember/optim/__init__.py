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
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD, Rprop
from .lbfgs import LBFGS
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD
from .zero import ZeroRedundancyOptimizer

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "ZeroRedundancyOptimizer",
    "lr_scheduler",
]


def __dir__() -> list[str]:
    # the public names only (the implementation submodules stay importable, but unlisted)
    return list(__all__)
