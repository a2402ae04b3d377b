"""PyTorch's ``torch.utils`` module paths, so that ported code runs with the import renamed.

Example:
    >>> import ember.utils.data as data
    >>> data.DataLoader is __import__("ember").data.DataLoader
    True
"""

from . import checkpoint, data
from .plot_model_graph import plot_model

__all__ = ["checkpoint", "data", "plot_model"]
