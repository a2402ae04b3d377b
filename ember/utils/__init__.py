"""PyTorch's ``torch.utils`` module paths, so that ported code runs with the import renamed.

Example:
    >>> import ember.utils.data as data
    >>> data.DataLoader is __import__("ember").data.DataLoader
    True
"""

from . import data

__all__ = ["data"]
