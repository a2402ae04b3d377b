"""Character- or byte-level language-modelling windows over a text file."""

from __future__ import annotations

import numpy as np

from .._errors import DataFormatError
from ..dataset import Dataset
from ._base import as_index

__all__ = ["TextDataset"]


class TextDataset(Dataset):
    """Sliding windows ``(input, target)`` of ``seq_len`` tokens, target shifted by one.

    Args:
        path: a UTF-8 text file (``level="char"``) or any file (``level="byte"``).
        seq_len: tokens per window.
        stride: step between window starts (default ``seq_len``: non-overlapping).
        level: ``"char"`` (vocabulary = sorted distinct characters of the file) or
            ``"byte"`` (vocabulary = the 256 byte values).

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "t.txt")
        >>> _ = open(p, "w").write("hello")
        >>> ds = TextDataset(p, seq_len=3, stride=1)
        >>> x, y = ds[0]
        >>> ds.decode(x), ds.decode(y), len(ds)
        ('hel', 'ell', 2)
    """

    def __init__(self, path: str, seq_len: int, stride: int | None = None, level: str = "char"):
        if seq_len <= 0:
            raise ValueError(f"seq_len must be positive, got {seq_len}")
        self.path, self.seq_len = path, seq_len
        self.stride = seq_len if stride is None else stride
        if self.stride <= 0:
            raise ValueError(f"stride must be positive, got {self.stride}")
        self.level = level
        with open(path, "rb") as f:
            raw = f.read()
        if level == "byte":
            self.itos = [bytes([i]) for i in range(256)]
            self.data = np.frombuffer(raw, np.uint8).astype(np.int64)
        elif level == "char":
            try:
                text = raw.decode("utf-8-sig")  # NOTE: a byte-order mark is not text
            except UnicodeDecodeError as e:
                raise DataFormatError(
                    f"{path}: not valid UTF-8 at byte {e.start} (use level='byte' for binary data)"
                ) from e
            self.itos = sorted(set(text))
            stoi = {c: i for i, c in enumerate(self.itos)}
            self.data = np.fromiter((stoi[c] for c in text), np.int64, len(text))
        else:
            raise ValueError(f"level must be 'char' or 'byte', got {level!r}")
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        if len(self.data) < seq_len + 1:
            raise ValueError(
                f"{path}: {len(self.data)} tokens is too short for seq_len "
                f"{seq_len} (need at least {seq_len + 1})"
            )

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return (len(self.data) - self.seq_len - 1) // self.stride + 1

    def __getitem__(self, index: int):
        n = len(self)
        index = as_index(index, f"TextDataset {self.path}")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} windows")
        s = index * self.stride
        chunk = self.data[s : s + self.seq_len + 1]
        return chunk[:-1], chunk[1:]

    def encode(self, text) -> np.ndarray:
        """Token ids of a string (char level) or bytes (byte level)."""
        if self.level == "byte":
            data = text.encode() if isinstance(text, str) else text
            return np.frombuffer(bytes(data), np.uint8).astype(np.int64)
        try:
            return np.array([self.stoi[c] for c in text], np.int64)
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from e

    def decode(self, ids):
        """Text (char level) or bytes (byte level) for a sequence of token ids."""
        ids = np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids).ravel().tolist()
        if self.level == "byte":
            return b"".join(self.itos[i] for i in ids)
        return "".join(self.itos[i] for i in ids)
