"""ImageFolder: one sub-folder per class, images decoded with Pillow."""

from __future__ import annotations

import os
from collections.abc import Callable

from .._errors import DataFormatError, require
from ._base import LabelledDataset

__all__ = ["IMG_EXTENSIONS", "ImageFolder", "pil_loader"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


def pil_loader(path: str):
    """Decode an image file to an RGB PIL image, failing with the file's name if corrupt."""
    Image = require("PIL.Image", "ImageFolder")
    try:
        with open(path, "rb") as f, Image.open(f) as img:
            # NOTE: load() forces the full decode here; PIL is lazy and would otherwise
            # fail later, far from the file name (or not at all for truncated data)
            img.load()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataFormatError(f"{path}: cannot decode image ({e})") from e


class ImageFolder(LabelledDataset):
    """Images in ``root/<class>/<file>``, labelled by the sorted class folder names.

    Args:
        root: the dataset folder.
        loader: decodes one file (default: RGB PIL image).
        extensions: file endings that count as images (case-insensitive).
        is_valid_file: a custom filter instead of ``extensions``.
        allow_empty: allow class folders without any image (default: FileNotFoundError
            naming them, as torchvision: a stray folder would shift every label after it).

    Example:
        >>> ds = ImageFolder("photos/train", transform=ToTensor())  # doctest: +SKIP
        >>> ds.classes, ds.class_to_idx                             # doctest: +SKIP
    """

    def __init__(
        self,
        root: str,
        transform=None,
        target_transform=None,
        loader: Callable = pil_loader,
        extensions=IMG_EXTENSIONS,
        is_valid_file: Callable | None = None,
        allow_empty: bool = False,
    ):
        self.root = os.path.expanduser(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder: {self.root!r} is not a folder")
        self.classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not self.classes:
            raise FileNotFoundError(f"ImageFolder: no class folders in {self.root!r}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        exts = tuple(e.lower() for e in extensions)
        ok = is_valid_file or (lambda p: p.lower().endswith(exts))
        self.samples = []
        for c in self.classes:
            for dirpath, _, files in sorted(os.walk(os.path.join(self.root, c), followlinks=True)):
                for name in sorted(files):
                    path = os.path.join(dirpath, name)
                    if ok(path):
                        self.samples.append((path, self.class_to_idx[c]))
        empty = sorted(set(self.classes) - {self.classes[t] for _, t in self.samples})
        if self.samples and empty and not allow_empty:
            raise FileNotFoundError(
                f"ImageFolder: no image files ({', '.join(exts)}) for the classes "
                f"{', '.join(empty)} under {self.root!r} (allow_empty=True keeps them)"
            )
        if not self.samples and not allow_empty:
            raise FileNotFoundError(
                f"ImageFolder: no image files ({', '.join(exts)}) under {self.root!r}"
            )
        self.targets = [t for _, t in self.samples]
        self.loader = loader
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        return self._pair(self.loader(path), target)
