"""Neural-network building blocks: ``Module``, layers, losses, ``init`` and
``functional`` (PyTorch's ``torch.nn`` names and semantics).

Example:
    >>> import ember
    >>> from ember import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> tuple(net(ember.randn(3, 4)).shape)
    (3, 2)
"""

from . import (
    functional,  # noqa: F401
    init,  # noqa: F401
    parallel,  # noqa: F401
    utils,  # noqa: F401
)
from .modules import *
from .modules import Module  # noqa: F401
from .modules.module import RemovableHandle  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
