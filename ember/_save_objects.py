"""What ``ember.save`` can store and how it comes back: the JSON structure of a file.

Tensors, NumPy arrays and parameters live in the safetensors data and the structure refers
to them by key (a tensor shared by several places is stored once and loads as one object).
Plain values, containers, dtypes and NumPy scalars are JSON nodes. A whole ``nn.Module`` is
its class (by import path), the constructor arguments captured by ``nn.Module.__new__``, its
children (recursively), parameters, buffers and ``training`` flag: loading rebuilds it by
calling the class, then puts the saved children and state in place. No pickle: loading only
calls classes that are ``ember.*``, already imported ``nn.Module`` subclasses, or allowed by
the caller (``add_safe_globals`` / ``safe_globals=``).
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections import OrderedDict
from typing import Any

import numpy as np

from . import _dtype as _dt
from ._save_format import bad, dtype_name, lookup
from ._tensor import Tensor, _new

__all__ = ["FORMAT_VERSION", "STRUCT_KEY", "Reader", "Writer", "global_path"]

STRUCT_KEY = "ember.structure"
FORMAT_VERSION = 2  # 2: header checksum, modules, NumPy arrays and scalars, shared objects
_DTYPE_BY_NAME = {d.name: d for d in _dt.ALL}


def _module_cls():
    from .nn.modules.module import Module

    return Module


def _parameter_cls():
    from .nn.parameter import Parameter

    return Parameter


def _is_key(k):
    if k is None or isinstance(k, (str, int, float, bool)):
        return True
    return isinstance(k, tuple) and all(_is_key(x) for x in k)


def _join(path, k):
    return f"{path}.{k}" if path else str(k)


def global_path(obj) -> tuple[str, str]:
    """``(module, qualname)`` of a class or function, checked to import back to ``obj``."""
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not mod or not qual or "<" in qual:
        raise TypeError(
            f"ember.save: {obj!r} cannot be saved by import path (it is defined inside a "
            "function or has no module); define it at module level"
        )
    return mod, qual


class Writer:
    """Encodes an object into the JSON structure, collecting arrays under unique keys."""

    def __init__(self) -> None:
        self.tensors: OrderedDict[str, np.ndarray] = OrderedDict()
        # id(Tensor or ndarray) -> key (shared ones are stored once)
        self.by_id: dict[int, str] = {}
        self.keep: list[object] = []  # keep ids alive while encoding
        self.modules: dict[int, int] = {}  # id(Module) -> its number in the file
        self.open: set[int] = set()  # modules being encoded (a cycle is an error)

    def add(self, arr, obj, path):
        k = self.by_id.get(id(obj))
        if k is not None:
            return k
        key = path or "tensor"
        if key in self.tensors:
            n = 1
            while f"{key}#{n}" in self.tensors:
                n += 1
            key = f"{key}#{n}"
        if dtype_name(arr) is None:
            raise TypeError(f"ember.save: {path or 'the object'} has unsupported dtype {arr.dtype}")
        self.tensors[key] = arr
        self.by_id[id(obj)] = key
        self.keep.append(obj)
        return key

    def encode(self, obj, path):
        if isinstance(obj, Tensor):
            key = self.add(obj._data, obj, path)
            if isinstance(obj, _parameter_cls()):
                return {"P": key, "rg": bool(obj.requires_grad)}
            node = {"T": key}
            if obj.requires_grad:
                node["rg"] = True
            return node
        if isinstance(obj, np.ndarray):
            return {"A": self.add(obj, obj, path)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, _dt.DType):
            return {"dtype": obj.name}
        if isinstance(obj, np.generic):
            name = dtype_name(np.asarray(obj))
            if name is None:
                raise TypeError(
                    f"ember.save: NumPy scalar {obj!r} at {path or '/'} has dtype "
                    f"{obj.dtype}, which safetensors cannot hold"
                )
            le = np.asarray(obj).astype(lookup(name))
            return {"S": [name, le.tobytes().hex()]}
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"F": repr(float(obj))}
        if isinstance(obj, complex):  # (repr keeps nan and inf parts)
            return {"C": [repr(obj.real), repr(obj.imag)]}
        if isinstance(obj, dict):
            tag = "O" if isinstance(obj, OrderedDict) else "D"
            if all(isinstance(k, str) for k in obj):
                return {tag: {k: self.encode(v, _join(path, k)) for k, v in obj.items()}}
            pairs = []
            for k, v in obj.items():
                if isinstance(k, Tensor) or not _is_key(k):
                    raise TypeError(
                        f"ember.save: unsupported dict key {k!r} at {path or '/'} "
                        "(keys must be str, int, float, bool, None or tuples)"
                    )
                pairs.append([self.encode(k, path), self.encode(v, _join(path, str(k)))])
            return {tag + "k": pairs}
        if isinstance(obj, (list, tuple)):
            tag = "L" if isinstance(obj, list) else "U"
            return {tag: [self.encode(v, _join(path, str(i))) for i, v in enumerate(obj)]}
        if isinstance(obj, _module_cls()):
            return self.module(obj, path)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            return {"G": list(global_path(obj))}
        raise TypeError(
            f"ember.save: cannot save an object of type {type(obj).__name__} at "
            f"{path or '/'}; supported: Tensor, nn.Module, NumPy arrays and scalars, dict, "
            "OrderedDict, list, tuple, int, float, str, bool, None, dtypes, classes and "
            "functions by import path (no pickle)"
        )

    def _done(self, m) -> bool:
        """Whether module ``m`` is already in the file (an attribute may refer to it)."""
        return id(m) in self.modules and id(m) not in self.open

    def module(self, m, path):
        n = self.modules.get(id(m))
        if n is not None:
            if id(m) in self.open:
                raise TypeError(
                    f"ember.save: module {type(m).__name__} at {path or '/'} contains itself"
                )
            return {"R": n}
        n = self.modules[id(m)] = len(self.modules)
        self.open.add(id(m))
        self.keep.append(m)
        d = m.__dict__
        args, kwargs = d.get("_init_args") or ((), {})
        where = _join(path, "__init__")
        node = {
            "M": list(global_path(type(m))),
            "id": n,
            "args": [self.encode(a, _join(where, str(i))) for i, a in enumerate(args)],
            "kwargs": {str(k): self.encode(v, _join(where, k)) for k, v in kwargs.items()},
            "training": bool(d.get("training", True)),
        }
        node["children"] = {
            k: None if c is None else self.module(c, _join(path, k))
            for k, c in d["_modules"].items()
        }
        node["params"] = {k: self.encode(p, _join(path, k)) for k, p in d["_parameters"].items()}
        node["buffers"] = {k: self.encode(b, _join(path, k)) for k, b in d["_buffers"].items()}
        node["np"] = sorted(d["_non_persistent_buffers_set"])
        # plain attributes (sizes, flags, names, rates, references to modules of the tree)
        # set by the constructor or changed later; functions and other objects come back
        # from the constructor arguments
        node["attrs"] = {
            k: self.encode(v, _join(path, k))
            for k, v in d.items()
            if k not in _MODULE_FIELDS and _plain(v, self._done)
        }
        self.open.discard(id(m))
        return node


class Reader:
    """Decodes a structure back into objects; only allowed classes are called."""

    def __init__(self, name, tensors, allowed: dict):
        self.name, self.tensors, self.allowed = name, tensors, allowed
        self.used: set[str] = set()
        self.objs: dict = {}  # (kind, key) -> the loaded object: sharing survives
        self.modules: dict[int, object] = {}
        self.pending: list = []
        self.filled: set[int] = set()  # ids of the modules given their saved state

    def _array(self, key):
        if not isinstance(key, str) or key not in self.tensors:
            raise bad(
                self.name, f"the structure refers to tensor {key!r}, which is not in the file"
            )
        self.used.add(key)
        return self.tensors[key]

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not (isinstance(node, dict) and node):
            raise bad(self.name, f"malformed node in the ember structure: {str(node)[:80]}")
        tag = next(iter(node))
        val = node[tag]
        if tag in ("T", "P", "A"):
            memo = (tag, val if isinstance(val, str) else None)
            if memo in self.objs:
                return self.objs[memo]
            arr = self._array(val)
            if tag == "A":
                out = arr
            elif tag == "P":
                out = _parameter_cls()(_new(arr), requires_grad=bool(node.get("rg")))
            else:
                out = _new(arr)
                if node.get("rg"):
                    out.requires_grad = True
            self.objs[memo] = out
            return out
        if tag == "dtype" and isinstance(val, str) and val in _DTYPE_BY_NAME:
            return _DTYPE_BY_NAME[val]
        if tag == "F" and isinstance(val, str) and val in ("nan", "inf", "-inf"):
            return float(val)
        if tag == "C" and isinstance(val, list) and len(val) == 2:
            try:
                return complex(float(val[0]), float(val[1]))
            except (TypeError, ValueError):
                raise bad(self.name, f"malformed complex number {val!r} in the structure") from None
        if tag == "S" and isinstance(val, list) and len(val) == 2 and lookup(val[0]) is not None:
            dt = lookup(val[0])
            try:
                raw = bytes.fromhex(val[1])
            except (TypeError, ValueError):
                raw = b""
            if len(raw) != dt.itemsize:
                raise bad(self.name, f"malformed NumPy scalar {val!r} in the ember structure")
            return np.frombuffer(raw, dtype=dt)[0]
        if tag in ("L", "U") and isinstance(val, list):
            items = [self.decode(v) for v in val]
            return items if tag == "L" else tuple(items)
        if tag in ("D", "O") and isinstance(val, dict):
            cls = dict if tag == "D" else OrderedDict
            return cls((k, self.decode(v)) for k, v in val.items())
        if tag in ("Dk", "Ok") and isinstance(val, list):
            out = {} if tag == "Dk" else OrderedDict()
            for pair in val:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise bad(self.name, "malformed dict entry in the ember structure")
                k = self.decode(pair[0])
                if isinstance(k, list):
                    raise bad(self.name, "malformed dict key in the ember structure")
                out[k] = self.decode(pair[1])
            return out
        if tag == "M" and _is_path(val):
            return self.module(node)
        if tag == "R" and isinstance(val, int) and val in self.modules:
            return self.modules[val]
        if tag == "G" and _is_path(val):
            return self.resolve(*val, kind="global")
        raise bad(self.name, f"malformed node in the ember structure: {str(node)[:80]}")

    def resolve(self, mod: str, qual: str, kind: str):
        """The object at ``mod.qual`` if loading it is allowed, else a ValueError naming it."""
        path = f"{mod}.{qual}"
        if path in self.allowed and self.allowed[path] is not None:
            return self.allowed[path]
        ok_import = mod == "ember" or mod.startswith("ember.") or path in self.allowed
        obj: Any  # the module, then the attributes down ``qual``
        if ok_import:
            try:
                obj = importlib.import_module(mod)
            except ImportError as e:
                raise ValueError(f"ember.load: {self.name!r} needs {path}: {e}") from None
        elif kind == "module" and mod in sys.modules:
            obj = sys.modules[mod]  # already imported: importing runs no new code
        else:
            why = "" if kind == "global" else f" and its module {mod!r} is not imported"
            raise ValueError(
                f"ember.load: {self.name!r} holds the {kind} {path!r}, which is not allowed "
                f"to load: it is not part of ember{why}. If you trust the file, allow it with "
                f"ember.serialization.add_safe_globals([{qual}]) or "
                f"ember.load(..., safe_globals=[{qual}]) (a class or its import path string)"
            )
        for part in qual.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise ValueError(f"ember.load: {self.name!r} needs {path}, which does not exist")
        return obj

    def module(self, node):
        mod, qual = _fields(self, node)[0]
        cls = self.resolve(mod, qual, kind="module")
        if not (isinstance(cls, type) and issubclass(cls, _module_cls())):
            raise TypeError(
                f"ember.load: {self.name!r} names {mod}.{qual} as a module class, but it is "
                "not an ember.nn.Module subclass"
            )
        args = [self.decode(a) for a in node["args"]]
        kwargs = {k: self.decode(v) for k, v in node["kwargs"].items()}
        try:
            m = cls(*args, **kwargs)
        except Exception as e:  # reported with the class and the arguments
            raise ValueError(
                f"ember.load: {self.name!r}: rebuilding {mod}.{qual} from its saved "
                f"constructor arguments failed: {type(e).__name__}: {e}"
            ) from e
        return self._fill(m, node)

    def _fill(self, m, node):
        """Register ``m`` as the module of ``node`` and queue its saved state."""
        (mod, qual), mid, children, params, buffers, attrs = _fields(self, node)
        self.modules[mid] = m
        self.filled.add(id(m))
        current = m.__dict__["_modules"]
        kids = {}
        for k, c in children.items():
            if c is None:
                kids[k] = None
            elif self._adoptable(current.get(k), c):
                # NOTE: the constructor built this child with the saved arguments: keep the
                # object (references the constructor took to it stay valid) and load into it
                kids[k] = self._fill(current[k], c)
            else:
                kids[k] = self.decode(c)
            if kids[k] is not None and not isinstance(kids[k], _module_cls()):
                raise bad(self.name, f"child {k!r} of {mod}.{qual} is not a module")
        # NOTE: the state goes in after every constructor ran (finish): a constructor may
        # rebuild the modules it is given (a Keras Sequential builds its layers)
        self.pending.append((m, kids, params, buffers, node.get("np", ()), node, attrs))
        return m

    def _adoptable(self, existing, node) -> bool:
        """Whether the saved child ``node`` is ``existing`` as its parent's constructor made
        it: same class, same constructor arguments, holding no modules or tensors."""
        if (
            existing is None
            or id(existing) in self.filled
            or not (isinstance(node, dict) and "M" in node and isinstance(node.get("args"), list))
        ):
            return False
        try:
            if list(global_path(type(existing))) != node["M"]:
                return False
            args, kwargs = existing.__dict__.get("_init_args") or ((), {})
            w = Writer()
            enc = [w.encode(a, "") for a in args]
            enc_kw = {str(k): w.encode(v, "") for k, v in kwargs.items()}
        except TypeError:
            return False
        if w.modules or w.tensors:
            return False
        return enc == node["args"] and enc_kw == node.get("kwargs")

    def finish(self) -> None:
        """Put the saved children, parameters, buffers and plain attributes in place."""
        for m, kids, params, buffers, np_names, node, attrs in self.pending:
            d = m.__dict__
            d["_modules"] = kids
            d["_parameters"] = {
                k: self._state(d["_parameters"].get(k), v) for k, v in params.items()
            }
            d["_buffers"] = {k: self._state(d["_buffers"].get(k), v) for k, v in buffers.items()}
            d["_non_persistent_buffers_set"] = set(np_names)
            d["training"] = bool(node.get("training", True))
            for k, v in attrs.items():
                d[k] = self.decode(v)
        self.pending = []

    def _state(self, current, node):
        """A saved parameter or buffer. When the rebuilt module already holds one of the same
        shape and dtype, the values go into it, so references the constructor took stay
        valid; a tensor shared in the file stays shared."""
        if node is None:
            return None
        if not (isinstance(node, dict) and next(iter(node), None) in ("T", "P")):
            raise bad(self.name, f"malformed parameter or buffer node {str(node)[:80]}")
        tag, key = next(iter(node.items()))
        memo = (tag, key)
        if memo in self.objs or not isinstance(current, Tensor):
            return self.decode(node)
        arr = self._array(key)
        if (
            tuple(current.shape) != arr.shape
            or current._data.dtype != arr.dtype
            or isinstance(current, _parameter_cls()) != (tag == "P")
        ):
            return self.decode(node)
        from .autograd import no_grad

        with no_grad():
            current.copy_(_new(arr))
        current.requires_grad = bool(node.get("rg"))
        self.objs[memo] = current
        return current


_MODULE_FIELDS = frozenset(
    (
        "_init_args",
        "training",
        "_parameters",
        "_buffers",
        "_non_persistent_buffers_set",
        "_modules",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_load_state_dict_pre_hooks",
    )
)


def _plain(v, done, depth: int = 0) -> bool:
    """JSON-like data, or modules already in the file; no tensors, functions or objects."""
    if v is None or isinstance(v, (bool, int, float, str, _dt.DType)):
        return True
    if isinstance(v, _module_cls()):
        return done(v)
    if depth < 4 and isinstance(v, (list, tuple)):
        return all(_plain(x, done, depth + 1) for x in v)
    if depth < 4 and type(v) is dict:
        return all(isinstance(k, str) and _plain(x, done, depth + 1) for k, x in v.items())
    return False


def _fields(reader, node):
    """The checked parts of a module node."""
    parts = [node.get(k) for k in ("M", "id", "children", "params", "buffers")]
    attrs = node.get("attrs", {})
    if not (
        _is_path(parts[0])
        and isinstance(parts[1], int)
        and isinstance(node.get("args"), list)
        and isinstance(node.get("kwargs"), dict)
        and all(isinstance(x, dict) for x in (*parts[2:], attrs))
        and not any(k in _MODULE_FIELDS for k in attrs)
    ):
        raise bad(reader.name, f"malformed module node {str(node)[:80]}")
    return (*parts, attrs)


def _is_path(val) -> bool:
    return isinstance(val, list) and len(val) == 2 and all(isinstance(v, str) for v in val)
