"""Image transforms for NumPy arrays (HWC), ember Tensors (CHW) and PIL images.

Example:
    >>> import numpy as np
    >>> import ember.data.transforms as T
    >>> t = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
    ...                T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    >>> tuple(t(np.zeros((32, 32, 3), np.uint8)).shape)
    (3, 32, 32)

Random transforms draw from ember's global generator (``ember.manual_seed``) in the main
process, and from a per-worker stream (``base_seed + worker_id``) inside DataLoader
workers, so augmentation differs between workers while whole runs repeat exactly.
"""

from . import functional
from .transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Lambda,
    Normalize,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
    ToTensor,
)

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Lambda",
    "Normalize",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "ToTensor",
    "functional",
]
