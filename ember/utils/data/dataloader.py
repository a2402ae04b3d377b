"""``torch.utils.data.dataloader`` names (re-exports of :mod:`ember.data`)."""

from ...data import default_collate, default_convert, get_worker_info
from ...data.dataloader import DataLoader

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]
