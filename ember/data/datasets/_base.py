"""Pieces shared by the file-format datasets: transforms and downloads."""

from __future__ import annotations

import operator
import os
import shutil
import urllib.error
import urllib.request

from ..dataset import Dataset

__all__ = ["LabelledDataset", "download_file"]


def as_index(index, where: str) -> int:
    """``index`` as a Python int, or a TypeError naming ``where`` (a slice, a float ...).

    ints, NumPy integers and 0-d integer arrays pass; ``1.0`` does not, as in a list.
    """
    try:
        return operator.index(index)
    except TypeError:
        raise TypeError(f"{where}: indices must be integers, not {type(index).__name__}") from None


class LabelledDataset(Dataset):
    """A map-style dataset of ``(sample, target)`` pairs with optional transforms."""

    transform = None
    target_transform = None

    def _pair(self, sample, target):
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target


def download_file(url: str, dest: str, hint: str, timeout: float = 30.0) -> str:
    """Fetch ``url`` into ``dest`` atomically, or explain where to put the file by hand."""
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    tmp = dest + ".part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise RuntimeError(
            f"could not download {url} ({e}). If this machine is offline, download it "
            f"elsewhere and place it at {dest!r}. {hint}"
        ) from e
    os.replace(tmp, dest)  # NOTE: rename last, so a broken download never looks complete
    return dest
