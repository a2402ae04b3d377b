"""The saved-model directory on disk: names, the manifest, the weights file, integrity checks.

Layout (``saved_model.json`` is the manifest; every other file is listed in its ``"files"``
with its SHA-256 and size, and loading verifies each before building anything)::

    MODEL_DIR/
      saved_model.json
      graph.<signature>.json        the graph of one signature (ember.compiler.serialize),
      graph.<signature>.json.bin    its constant arrays; captured state has "value": null
      weights.safetensors           every captured array by captured name, shared
      assets/                       optional files

The weights file is a standard safetensors file written by ember's own container
(:mod:`ember._save_format`), so neither writing nor reading it needs an extra package.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "MANIFEST",
    "VERSION",
    "WEIGHTS",
    "SavedModelError",
    "TensorSpec",
]

FORMAT = "ember-saved-model"
VERSION = 1
MANIFEST = "saved_model.json"
WEIGHTS = "weights.safetensors"


class SavedModelError(ValueError):
    """A model that cannot be saved, or a directory that is not a sound saved model
    (missing, tampered, truncated or foreign files, a wrong format or version); the message
    names the file and what is wrong."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype (``"float32"``, ...) and shape of a signature's input or output; ``None``
    in the shape is a dynamic dimension (the batch axis by default).

    Example:
        >>> TensorSpec("x", "float32", (None, 64)).to_json()
        {'name': 'x', 'dtype': 'float32', 'shape': [None, 64]}
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: Any, where: str) -> TensorSpec:
        ok = (
            isinstance(d, dict)
            and isinstance(d.get("name"), str)
            and isinstance(d.get("dtype"), str)
            and isinstance(d.get("shape"), list)
            and all(s is None or (type(s) is int and s >= 0) for s in d["shape"])
        )
        if not ok:
            raise SavedModelError(
                f"{where}: a tensor spec must be {{name: str, dtype: str, shape: [int or "
                f"null, ...]}}, got {_short(d)}"
            )
        return cls(d["name"], d["dtype"], tuple(d["shape"]))


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


# -- hashing and the file list ---------------------------------------------------------------


def file_digest(path: str) -> tuple[str, int]:
    """(SHA-256 hex digest, size in bytes) of a file, read in chunks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def list_files(root: str) -> list[str]:
    """Every file under ``root`` as a '/'-separated relative path, sorted; links refused."""
    out = []
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(d, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if os.path.islink(full):
                raise SavedModelError(
                    f"{root}: {rel} is a symbolic link; a saved model holds files"
                )
        for name in files:
            out.append(os.path.relpath(os.path.join(d, name), root).replace(os.sep, "/"))
    return sorted(out)


def _safe_rel(rel: Any, root: str) -> str:
    if (
        not isinstance(rel, str)
        or not rel
        or rel.startswith("/")
        or "\\" in rel
        or any(p in ("", ".", "..") for p in rel.split("/"))
    ):
        raise SavedModelError(f"{root}/{MANIFEST}: the file list names {rel!r}, not a plain path")
    return rel


def verify_files(root: str, files: Any) -> None:
    """Check that the directory holds exactly the listed files, each of the listed size and
    SHA-256 (the manifest itself aside)."""
    where = f"{root}/{MANIFEST}"
    if not isinstance(files, dict):
        raise SavedModelError(f"{where}: 'files' must map file names to their size and sha256")
    for rel, info in files.items():
        _safe_rel(rel, root)
        if rel == MANIFEST or not (
            isinstance(info, dict)
            and isinstance(info.get("sha256"), str)
            and type(info.get("bytes")) is int
        ):
            raise SavedModelError(f"{where}: bad entry for {rel!r} in 'files': {_short(info)}")
    present = set(list_files(root)) - {MANIFEST}
    extra = sorted(present - set(files))
    if extra:
        raise SavedModelError(
            f"{root}: unexpected file {extra[0]} (not listed in {MANIFEST}"
            + (f"; {len(extra) - 1} more" if len(extra) > 1 else "")
            + "): the directory was modified after it was saved"
        )
    for rel, info in sorted(files.items()):
        path = os.path.join(root, *rel.split("/"))
        if rel not in present:
            raise SavedModelError(f"{root}: file {rel} is missing (listed in {MANIFEST})")
        size = os.path.getsize(path)
        if size != info["bytes"]:
            what = "truncated" if size < info["bytes"] else "longer than saved"
            raise SavedModelError(
                f"{root}: file {rel} is {what}: {size} bytes, the manifest says {info['bytes']}"
            )
        digest, _ = file_digest(path)
        if digest != info["sha256"]:
            raise SavedModelError(
                f"{root}: file {rel} is damaged or was modified: its SHA-256 is {digest}, the "
                f"manifest says {info['sha256']}"
            )


# -- the manifest ----------------------------------------------------------------------------


def read_manifest(root: str) -> dict[str, Any]:
    """The parsed manifest of ``root``, its format, version and structure checked."""
    if not os.path.exists(root):
        raise SavedModelError(f"{root}: no such directory")
    if not os.path.isdir(root):
        raise SavedModelError(f"{root}: not a directory (a saved model is a directory)")
    path = os.path.join(root, MANIFEST)
    where = f"{root}/{MANIFEST}"
    if not os.path.isfile(path):
        raise SavedModelError(f"{root}: no {MANIFEST}: not an ember saved model")
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SavedModelError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise SavedModelError(f"{where}: format is {got!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise SavedModelError(
            f"{where}: format version {doc.get('version')!r}; this ember reads version {VERSION}"
        )
    sigs = doc.get("signatures")
    if not isinstance(sigs, dict) or not sigs:
        raise SavedModelError(f"{where}: 'signatures' must be a non-empty object")
    for name, s in sigs.items():
        if not (
            isinstance(s, dict)
            and isinstance(s.get("graph"), str)
            and isinstance(s.get("inputs"), list)
            and isinstance(s.get("outputs"), list)
        ):
            raise SavedModelError(
                f"{where}: signature {name!r} must have 'graph', 'inputs' and 'outputs'"
            )
    if not isinstance(doc.get("weights"), str):
        raise SavedModelError(f"{where}: 'weights' must name the weights file")
    pre = doc.get("preprocessing")
    if pre is not None and not isinstance(pre, dict):
        raise SavedModelError(f"{where}: 'preprocessing' must be an object or null")
    return doc


# -- weights ---------------------------------------------------------------------------------


def write_weights(path: str, arrays: dict[str, np.ndarray]) -> None:
    from .._save_format import dtype_name, pack

    for k, a in arrays.items():
        if dtype_name(a) is None:
            raise SavedModelError(
                f"weight {k!r} has dtype {a.dtype}, which safetensors cannot hold"
            )
    head, data = pack(arrays, {"format": FORMAT})
    with open(path, "wb") as fh:
        fh.write(head)
        for a in data:
            fh.write(memoryview(a.reshape(-1).view(np.uint8)))
        fh.flush()
        os.fsync(fh.fileno())


def read_weights(root: str, rel: str) -> dict[str, np.ndarray]:
    from .._save_format import unpack

    path = os.path.join(root, *rel.split("/"))
    try:
        _, tensors, _ = unpack(rel, os.path.getsize(path), None, path)
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"{root}: weights file {rel}: {exc}") from None
    # native byte order, writable: the loaded model owns its arrays (and may be fine-tuned)
    return {k: np.array(a, dtype=a.dtype.newbyteorder("=")) for k, a in tensors.items()}


# -- writing a directory as a whole ----------------------------------------------------------


def new_temp_dir(target: str) -> str:
    """A fresh hidden directory beside ``target`` (same file system, so a rename moves it)."""
    parent = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(os.path.abspath(target))
    for _ in range(100):
        tmp = os.path.join(parent, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"cannot create a temporary directory beside {target}")


def check_target(target: str, overwrite: bool) -> None:
    """Refuse an existing ``target`` unless ``overwrite``; even then, replace only a saved
    model or an empty directory (never a folder of other files)."""
    if not os.path.lexists(target):
        parent = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"ember.export.save: the parent folder {parent} does not exist")
        return
    if not overwrite:
        raise FileExistsError(
            f"ember.export.save: {target} exists; pass overwrite=True to replace it"
        )
    if not os.path.isdir(target) or os.path.islink(target):
        raise FileExistsError(f"ember.export.save: {target} exists and is not a directory")
    if os.listdir(target) and not os.path.isfile(os.path.join(target, MANIFEST)):
        raise FileExistsError(
            f"ember.export.save: {target} is a folder that is not a saved model (no "
            f"{MANIFEST}); overwrite=True replaces only a saved model or an empty folder"
        )


def commit_dir(tmp: str, target: str) -> None:
    """Move the finished ``tmp`` to ``target`` (replacing an old one), fsynced."""
    from ..serialization import _fsync_dir

    for d, _, files in os.walk(tmp):
        for name in files:
            fd = os.open(os.path.join(d, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(d)
    parent = os.path.dirname(os.path.abspath(target))
    old = None
    if os.path.lexists(target):
        old = tmp[: -len(".tmp")] + ".old"
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    _fsync_dir(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
