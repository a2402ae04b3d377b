"""``ember.save`` / ``ember.load``: tensors, arrays, modules and nested containers in one
safetensors file.

Format: a standard safetensors file (8-byte little-endian header length, a JSON header,
then the raw little-endian tensor bytes). Tensors and NumPy arrays are stored under flattened
unique keys (``"fc.weight"``, ``"state.0.exp_avg"``); the structure around them (dicts,
OrderedDicts, lists, tuples, plain values, NumPy scalars, and whole ``nn.Module`` trees as
class path + constructor arguments + state) is JSON in the header's
``__metadata__["ember.structure"]``, with tensors as references to their keys.

No pickle, ever: loading a file from a stranger runs no code except the constructors of
module classes that are ``ember.*``, already imported, or allowed with
:func:`add_safe_globals` / ``safe_globals=``. Any safetensors file (e.g. one written by
``safetensors.torch.save_file``) loads as a dict of tensors. Writes are atomic (temporary
file in the same directory, fsync, ``os.replace``, fsync of the directory) and the file gets
the permissions the umask gives any new file (or keeps those of the file it replaces).
Damaged files raise :class:`ValueError` naming the file and the problem: files ember writes
carry a crc32 of the header and one of the tensor bytes in ``__metadata__``, so any changed
byte is detected. A PyTorch ``.pt`` file is recognised and the error says how to convert it.

The format is simple enough to implement here, which keeps the core free of dependencies;
tests check compatibility with the ``safetensors`` package both ways.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import warnings
from collections.abc import Iterable

import numpy as np

from ._save_format import HEADER_CRC_KEY, bad, pack, unpack
from ._save_objects import FORMAT_VERSION, STRUCT_KEY, Reader, Writer, global_path
from ._tensor import _new

__all__ = [
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "load",
    "safe_globals",
    "save",
]

_SAFE_GLOBALS: dict[str, object] = {}  # "module.qualname" -> the object, or None (a path only)
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin")


def _allowed_entries(items: Iterable) -> dict[str, object]:
    out: dict[str, object] = {}
    for obj in items:
        if isinstance(obj, str):
            if "." not in obj:
                raise ValueError(f"safe globals: {obj!r} is not a 'module.Name' import path")
            out[obj] = None
        else:
            mod, qual = global_path(obj)
            out[f"{mod}.{qual}"] = obj
    return out


def add_safe_globals(safe_globals: Iterable) -> None:
    """Allow :func:`load` to rebuild these classes (class objects, or ``'module.Name'``
    strings, which it may then import) for every later load in this process.

    Example:
        >>> import ember
        >>> ember.serialization.add_safe_globals(["mypackage.layers.Head"])
        >>> "mypackage.layers.Head" in ember.serialization.get_safe_globals()
        True
        >>> ember.serialization.clear_safe_globals()
    """
    _SAFE_GLOBALS.update(_allowed_entries(safe_globals))


def get_safe_globals() -> list[str]:
    """The import paths :func:`add_safe_globals` allowed.

    Example:
        >>> import ember
        >>> ember.serialization.get_safe_globals()
        []
    """
    return sorted(_SAFE_GLOBALS)


def clear_safe_globals() -> None:
    """Forget everything :func:`add_safe_globals` allowed.

    Example:
        >>> import ember
        >>> ember.serialization.clear_safe_globals()
    """
    _SAFE_GLOBALS.clear()


class safe_globals:  # the torch.serialization name
    """Context manager: allow these classes only inside the ``with`` block.

    Example:
        >>> import ember
        >>> with ember.serialization.safe_globals(["mypackage.Net"]):
        ...     "mypackage.Net" in ember.serialization.get_safe_globals()
        True
    """

    def __init__(self, safe_globals: Iterable):
        self._new = _allowed_entries(safe_globals)
        self._saved: dict | None = None

    def __enter__(self):
        self._saved = dict(_SAFE_GLOBALS)
        _SAFE_GLOBALS.update(self._new)
        return self

    def __exit__(self, *exc):
        _SAFE_GLOBALS.clear()
        _SAFE_GLOBALS.update(self._saved or {})
        return False


# ---------------------------------------------------------------------------------------------
# save
def _serialize(obj):
    """Return (head bytes, arrays in data order)."""
    w = Writer()
    structure = w.encode(obj, "")
    meta = {
        "format": "ember",
        STRUCT_KEY: json.dumps(
            {"v": FORMAT_VERSION, "root": structure}, separators=(",", ":"), allow_nan=False
        ),
    }
    return pack(w.tensors, meta)


def save(obj, f) -> None:
    """Save ``obj`` (a Tensor, NumPy array, state dict, optimizer state dict, a whole
    ``nn.Module``, or nested dicts / lists / tuples of those and plain values) to ``f`` (a
    path or a writable binary file) as one safetensors file, atomically when ``f`` is a path.

    A path ending in ``.pt``/``.pth`` gets a warning: PyTorch users expect a pickle there;
    ``.ember`` or ``.safetensors`` say what the file is.

    Example:
        >>> import ember, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> ember.save({"w": ember.ones(2)}, p)
        >>> ember.load(p)["w"].tolist()
        [1.0, 1.0]
    """
    if not hasattr(f, "write"):
        if not isinstance(f, (str, bytes, os.PathLike)):
            raise TypeError(
                f"ember.save: f must be a path or a file object with write(), got "
                f"{type(f).__name__}"
            )
        path = os.fspath(f)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(
                f"ember.save: cannot write {path!r}: parent directory {parent!r} does not exist"
            )
        if str(path).lower().endswith(_PICKLE_SUFFIXES):
            warnings.warn(
                f"ember.save: {path!r} will be a safetensors file, but PyTorch tools expect "
                "a pickle under that suffix; name it '.ember' or '.safetensors'",
                UserWarning,
                stacklevel=2,
            )
    head, arrays = _serialize(obj)
    if hasattr(f, "write"):
        _write_all(f, head, arrays)
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(path, directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, head, arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _create_temp(path, directory):
    """A new temporary file next to ``path``. It is created with mode 0o666, so the umask
    gives it the permissions of any new file (``mkstemp`` would give 0o600), or with the
    permissions of the file it will replace."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    base = "." + os.path.basename(path) + "."
    for _ in range(100):
        tmp = os.path.join(directory, base + secrets.token_hex(6) + ".tmp")
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
        except FileExistsError:
            continue
        if mode is not None:
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)
        return fd, tmp
    raise FileExistsError(f"ember.save: cannot create a temporary file in {directory!r}")


def _write_all(fh, head, arrays):
    fh.write(head)
    for a in arrays:
        if a.nbytes:
            fh.write(memoryview(a.reshape(-1).view(np.uint8)))


def _fsync_dir(directory):
    if os.name != "posix":
        return
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------------------------
# load
def load(f, map_location=None, weights_only=True, safe_globals: Iterable = ()):
    """Load what :func:`save` wrote (or any safetensors file, as a dict of tensors).

    ``f`` is a path or a readable binary file. A saved ``nn.Module`` is rebuilt by calling
    its class: ``ember.*`` classes and classes of already imported modules are allowed;
    others must be allowed by ``safe_globals`` (class objects or ``'module.Name'`` strings,
    imported on demand) or :func:`add_safe_globals`. ``map_location`` and ``weights_only``
    are accepted for PyTorch compatibility (everything loads to the CPU; nothing is
    unpickled). Raises :class:`ValueError` naming the file for a damaged file, a PyTorch
    pickle, or a class that is not allowed.

    Example:
        >>> import ember, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
        >>> ember.save(ember.nn.Linear(2, 1).state_dict(), p)
        >>> state = ember.load(p)
        >>> sorted(state)
        ['bias', 'weight']
        >>> ember.nn.Linear(2, 1).load_state_dict(state)
        <All keys matched successfully>
    """
    if hasattr(f, "read"):
        name = getattr(f, "name", "<file object>")
        buf = np.frombuffer(bytearray(f.read()), dtype=np.uint8)
        size, reader = buf.size, None
    else:
        if not isinstance(f, (str, bytes, os.PathLike)):
            raise TypeError(
                f"ember.load: f must be a path or a file object with read(), got {type(f).__name__}"
            )
        name = os.fspath(f)
        if os.path.isdir(name):
            raise IsADirectoryError(f"ember.load: {name!r} is a directory, not a file")
        try:
            size = os.path.getsize(name)
        except OSError as e:
            raise FileNotFoundError(f"ember.load: cannot open {name!r}: {e.strerror}") from None
        buf, reader = None, name
    meta, tensors, header_checked = unpack(name, size, buf, reader)
    if not (meta and STRUCT_KEY in meta):
        return {k: _new(v) for k, v in tensors.items()}
    try:
        st = json.loads(meta[STRUCT_KEY])
    except json.JSONDecodeError as e:
        raise bad(name, f"ember structure metadata is not valid JSON ({e})") from None
    if not isinstance(st, dict) or "root" not in st or not isinstance(st.get("v", 0), int):
        raise bad(name, "ember structure metadata has no 'root'")
    if st.get("v", 0) > FORMAT_VERSION:
        raise bad(name, f"written by a newer ember (format version {st.get('v')})")
    if st.get("v", 0) >= 2 and not header_checked:
        raise bad(name, f"the header checksum ({HEADER_CRC_KEY}) is missing; it is damaged")
    allowed = dict(_SAFE_GLOBALS)
    allowed.update(_allowed_entries(safe_globals))
    reader_ = Reader(name, tensors, allowed)
    out = reader_.decode(st["root"])
    reader_.finish()
    unused = set(tensors) - reader_.used
    if unused:
        raise bad(name, f"tensors {sorted(unused)[:5]} are not referenced by the structure")
    return out
