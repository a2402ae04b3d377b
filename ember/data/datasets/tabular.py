"""Numeric CSV files and NumPy ``.npz`` archives."""

from __future__ import annotations

import csv
import zipfile

import numpy as np

from .._errors import DataFormatError
from ._base import LabelledDataset, as_index

__all__ = ["CSVDataset", "NPZDataset"]


class CSVDataset(LabelledDataset):
    """Rows of a numeric CSV file as ``(features, label)``.

    Args:
        path: the CSV file.
        label_column: the label's column, by header name or index (negative counts
            from the end); ``None`` for unlabelled data (samples are then feature
            vectors only).
        header: whether the first row holds column names (``None``: detect it).
        delimiter: the field separator.

    Features come back as float32 vectors; labels as ints when every label is integral,
    else float32.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "d.csv")
        >>> _ = open(p, "w").write("a,b,y\\n1,2,0\\n3,4,1\\n")
        >>> x, y = CSVDataset(p, label_column="y")[1]
        >>> x.tolist(), y
        ([3.0, 4.0], 1)
    """

    def __init__(
        self,
        path: str,
        label_column: str | int | None = -1,
        header: bool | None = None,
        delimiter: str = ",",
        transform=None,
        target_transform=None,
    ):
        self.path = path
        # NOTE: utf-8-sig drops a byte-order mark (Excel writes one); read as plain UTF-8 it
        # glued itself to the first column name, or made a numeric first row look like a header
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = [r for r in csv.reader(f, delimiter=delimiter) if r]
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{path}: not valid UTF-8 at byte {e.start} ({e.reason})") from e
        if not rows:
            raise DataFormatError(f"{path}: empty CSV file")
        if header is None:
            header = not all(_is_number(v) for v in rows[0])
        self.columns = [c.strip() for c in rows[0]] if header else None
        body = rows[1:] if header else rows
        first_line = 2 if header else 1
        width = len(rows[0])
        values = np.empty((len(body), width), np.float64)
        for r, row in enumerate(body):
            if len(row) != width:
                raise DataFormatError(
                    f"{path}: line {first_line + r} has {len(row)} fields, expected {width}"
                )
            try:
                values[r] = [float(v) for v in row]
            except ValueError:
                c = next(c for c, v in enumerate(row) if not _is_number(v))
                name = repr(self.columns[c]) if self.columns else c
                what = "missing value" if not row[c].strip() else f"non-numeric value {row[c]!r}"
                raise DataFormatError(
                    f"{path}: line {first_line + r}, column {name}: {what}"
                ) from None
        if label_column is None:
            self.labels = None
            self.features = values.astype(np.float32)
        else:
            col = self._column_index(label_column, width)
            self.labels = _labels(values[:, col], [row[col] for row in body])
            self.features = np.delete(values, col, axis=1).astype(np.float32)
        self.transform, self.target_transform = transform, target_transform

    def _column_index(self, label_column, width: int) -> int:
        if not isinstance(label_column, (str, int, np.integer)) or isinstance(label_column, bool):
            raise TypeError(
                f"{self.path}: label_column must be a column name or index, "
                f"not {type(label_column).__name__}"
            )
        if isinstance(label_column, str):
            if self.columns is None or label_column not in self.columns:
                raise KeyError(
                    f"{self.path}: no column named {label_column!r} (columns: {self.columns})"
                )
            return self.columns.index(label_column)
        if not -width <= label_column < width:
            raise IndexError(
                f"{self.path}: label column {label_column} out of range for {width} columns"
            )
        return label_column % width

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int):
        x = self.features[as_index(index, f"CSVDataset {self.path}")]
        if self.labels is None:
            return self.transform(x) if self.transform is not None else x
        y = self.labels[index]
        return self._pair(x, y.item())


def _labels(y: np.ndarray, text: list[str]) -> np.ndarray:
    """int64 labels when every label is integral (and fits), else float32."""
    try:  # NOTE: exact for integer literals past 2**53, where the float64 parse rounds
        return np.array([int(v) for v in text], np.int64)
    except (ValueError, OverflowError):
        pass
    finite = np.isfinite(y)
    if finite.all() and np.all(np.mod(y, 1) == 0) and np.all(np.abs(y) < 2.0**63):
        return y.astype(np.int64)  # "1.0", "2e3": integral values written as floats
    return y.astype(np.float32)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class NPZDataset(LabelledDataset):
    """Samples and labels stored as two arrays in a NumPy ``.npz`` file (no pickle).

    Example:
        >>> import numpy as np, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "d.npz")
        >>> np.savez(p, x=np.zeros((3, 2)), y=np.arange(3))
        >>> len(NPZDataset(p))
        3
    """

    def __init__(
        self,
        path: str,
        x_key: str = "x",
        y_key: str | None = "y",
        transform=None,
        target_transform=None,
    ):
        self.path = path
        try:
            # NOTE: allow_pickle=False: an untrusted .npz must not be able to run code
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise DataFormatError(f"{path}: a single .npy array, not an .npz archive")
            with z:
                keys = list(z.keys())
                for k in (x_key, y_key):
                    if k is not None and k not in keys:
                        raise DataFormatError(f"{path}: no array named {k!r} (arrays: {keys})")
                self.data = z[x_key]
                self.targets = z[y_key] if y_key is not None else None
                for k, a in ((x_key, self.data), (y_key, self.targets)):
                    if a is not None and a.ndim == 0:
                        raise DataFormatError(
                            f"{path}: {k!r} is a scalar; samples need a first axis"
                        )
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataFormatError(f"{path}: cannot read .npz ({e})") from e
        except ValueError as e:
            if isinstance(e, DataFormatError):
                raise
            raise DataFormatError(f"{path}: {e}") from e
        if self.targets is not None and len(self.targets) != len(self.data):
            raise DataFormatError(
                f"{path}: {y_key!r} has {len(self.targets)} entries but "
                f"{x_key!r} has {len(self.data)}"
            )
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        x = self.data[index]
        if self.targets is None:
            return self.transform(x) if self.transform is not None else x
        y = self.targets[index]
        return self._pair(x, y.item() if y.ndim == 0 else y)
