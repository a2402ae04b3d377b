"""Ember dtypes and PyTorch's type-promotion rules.

A :class:`DType` wraps a NumPy dtype (bfloat16 comes from ``ml_dtypes``, imported on the
first use of ``ember.bfloat16.np``: it costs 0.3-1 s, more than the rest of ``import ember``).
Promotion follows PyTorch, not NumPy: ``int32 + float16 -> float16`` (NumPy says float64),
``float16 + bfloat16 -> float32``, and Python scalars / 0-d tensors only win when
they belong to a higher category (bool < integer < floating < complex).

Complex dtypes (``complex64``, ``complex128``) form the fourth category: ``is_floating_point``
is False for them (as in PyTorch), and a float meeting a complex dtype promotes to the complex
dtype whose real part is wide enough for both (``float64 + complex64 -> complex128``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ALL",
    "COMPLEX_NP",
    "DIFF_NP",
    "FLOATS",
    "FLOAT_NP",
    "LOW_FLOATS",
    "DType",
    "as_dtype",
    "bfloat16",
    "bool_",
    "complex64",
    "complex128",
    "default_for_category",
    "float16",
    "float32",
    "float64",
    "from_numpy_dtype",
    "get_default_dtype",
    "int8",
    "int16",
    "int32",
    "int64",
    "promote_types",
    "scalar_category",
    "set_default_dtype",
    "uint8",
]


class DType:
    """A tensor element type (``ember.float32``, ``ember.int64``, ...).

    Example:
        >>> import ember
        >>> ember.bfloat16.itemsize, ember.float32.np.name
        (2, 'float32')
    """

    __slots__ = ("_load", "category", "is_floating_point", "is_signed", "itemsize", "name", "np")

    def __init__(self, name: str, np_dtype, category: int, load=None, itemsize: int = 0):
        self.name = name
        self.category = category  # 0 bool, 1 integer, 2 floating, 3 complex
        self.is_floating_point = category == 2
        self._load = load
        if load is None:
            self.np = np.dtype(np_dtype)
            self.itemsize = self.np.itemsize
            self.is_signed = category >= 2 or (category == 1 and self.np.kind == "i")
        else:  # a dtype from an optional module: ``np`` is resolved on first use
            self.itemsize = itemsize
            self.is_signed = category == 2

    def __getattr__(self, attr: str):
        # Only reached while the ``np`` slot is unset (a lazily loaded dtype): the hot path
        # reads the slot directly and never comes here.
        if attr == "np" and self._load is not None:
            npd = np.dtype(self._load())
            self.np = npd
            _FROM_NP[npd] = self
            if self.is_floating_point:
                FLOAT_NP.add(npd)
                DIFF_NP.add(npd)
            return npd
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def __repr__(self) -> str:
        return f"ember.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    @property
    def is_complex(self) -> bool:
        return self.category == 3

    def to_real(self) -> DType:
        """The real dtype of this dtype's parts (``complex64 -> float32``; itself if real)."""
        return _TO_REAL.get(self.name, self)

    def to_complex(self) -> DType:
        """The complex dtype with this dtype's precision (``float64 -> complex128``)."""
        if self.category == 3:
            return self
        return complex128 if self.name == "float64" else complex64


def _load_bfloat16():
    try:
        import ml_dtypes
    except ImportError as e:  # pragma: no cover - ml_dtypes is a core dependency
        raise ImportError(
            "ember.bfloat16 needs the 'ml_dtypes' package (a core dependency of ember): "
            "pip install ml_dtypes"
        ) from e
    return ml_dtypes.bfloat16


class _NpToDType(dict):
    """NumPy dtype -> ember DType. A bfloat16 array can only exist once ``ml_dtypes`` is
    imported (by Ember or by the caller), so a miss on it resolves ``ember.bfloat16``."""

    def __missing__(self, key):
        if getattr(key, "name", None) == "bfloat16" or getattr(key, "__name__", None) == (
            "bfloat16"
        ):
            npd = bfloat16.np  # registers itself
            if npd == key:
                return bfloat16
        raise KeyError(key)


class _LowFloats:
    """``npdtype in LOW_FLOATS``: float16 or bfloat16 (without importing ``ml_dtypes``)."""

    __slots__ = ()

    def __contains__(self, d) -> bool:
        return getattr(d, "itemsize", 0) == 2 and (d.kind == "f" or d.name == "bfloat16")


LOW_FLOATS = _LowFloats()


float32 = DType("float32", np.float32, 2)
float64 = DType("float64", np.float64, 2)
float16 = DType("float16", np.float16, 2)
bfloat16 = DType("bfloat16", None, 2, load=_load_bfloat16, itemsize=2)
int8 = DType("int8", np.int8, 1)
int16 = DType("int16", np.int16, 1)
int32 = DType("int32", np.int32, 1)
int64 = DType("int64", np.int64, 1)
uint8 = DType("uint8", np.uint8, 1)
bool_ = DType("bool", np.bool_, 0)
complex64 = DType("complex64", np.complex64, 3)
complex128 = DType("complex128", np.complex128, 3)
_TO_REAL = {"complex64": float32, "complex128": float64}

ALL = (
    float32,
    float64,
    float16,
    bfloat16,
    int8,
    int16,
    int32,
    int64,
    uint8,
    bool_,
    complex64,
    complex128,
)
_FROM_NP = _NpToDType({d.np: d for d in ALL if d._load is None})
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update(
    float=float32,
    double=float64,
    half=float16,
    long=int64,
    int=int32,
    short=int16,
    bool_=bool_,
    cfloat=complex64,
    cdouble=complex128,
)
FLOATS = (float16, bfloat16, float32, float64)
# The NumPy dtypes of FLOATS that are loaded (a lazily loaded one adds itself on first use; no
# array can have its dtype before that).
FLOAT_NP = {d.np for d in FLOATS if d._load is None}
COMPLEX_NP = {complex64.np, complex128.np}
# The NumPy dtypes autograd differentiates through: the floats and the complex dtypes.
DIFF_NP = FLOAT_NP | COMPLEX_NP

_default_float = float32


def _by_name(name: str) -> DType:
    return _BY_NAME[name]


def get_default_dtype() -> DType:
    """The dtype of floating tensors made from Python floats (float32 unless changed)."""
    return _default_float


def set_default_dtype(d) -> None:
    """Set the default floating dtype (``ember.float32`` or ``ember.float64``)."""
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {d}")
    _default_float = d


def from_numpy_dtype(npd) -> DType:
    """Map a NumPy dtype to the ember dtype; a clear error for unsupported ones."""
    try:
        return _FROM_NP[npd]
    except KeyError:
        pass
    npd = np.dtype(npd)
    try:
        return _FROM_NP[npd]
    except KeyError:
        pass
    if npd.kind == "U" or npd.kind == "S" or npd.kind == "O":
        raise TypeError(
            f"can't convert an array of dtype {npd} to a tensor: only numeric "
            "and bool types are supported"
        )
    if npd == np.uint16 or npd == np.uint32 or npd == np.uint64:
        return int64
    if npd.kind == "c":  # complex256 (long double): no PyTorch counterpart
        raise TypeError(f"complex dtype {npd} is not supported (use complex64 or complex128)")
    raise TypeError(f"unsupported NumPy dtype {npd}")


def as_dtype(d) -> DType:
    """Accept an ember DType, a NumPy dtype/type, a Python type or a name."""
    if type(d) is DType:
        return d
    if d is None:
        return _default_float
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    if d is complex:
        return _default_float.to_complex()
    if isinstance(d, str):
        name = d.removeprefix("ember.")
        name = name.removeprefix("torch.")
        if name in _BY_NAME:
            return _BY_NAME[name]
        raise TypeError(f"unknown dtype name {d!r}; expected one of {sorted(_BY_NAME)}")
    if type(d).__module__.startswith("torch"):  # torch.float32 -> "torch.float32"
        return as_dtype(str(d))
    return from_numpy_dtype(np.dtype(d))


def promote_types(type1: DType, type2: DType) -> DType:
    """PyTorch's ``promote_types``: the smallest dtype both ``type1`` and ``type2`` fit."""
    if type1 is type2:
        return type1
    ca, cb = type1.category, type2.category
    if ca != cb:
        if ca + cb == 5:  # float with complex: the complex dtype wide enough for both parts
            return promote_types(type1.to_real(), type2.to_real()).to_complex()
        return type1 if ca > cb else type2
    if ca == 3:
        return type1 if type1.itemsize > type2.itemsize else type2
    if ca == 2:
        if {type1.name, type2.name} == {"float16", "bfloat16"}:
            return float32
        return type1 if type1.itemsize > type2.itemsize else type2
    if ca == 0:
        return bool_
    return _FROM_NP[np.promote_types(type1.np, type2.np)]


def scalar_category(v) -> int:
    """Category of a Python/NumPy scalar: 0 bool, 1 int, 2 float, 3 complex."""
    if isinstance(v, (bool, np.bool_)):
        return 0
    if isinstance(v, (int, np.integer)):
        return 1
    if isinstance(v, (complex, np.complexfloating)):
        return 3
    return 2


def default_for_category(c: int) -> DType:
    if c == 3:
        return _default_float.to_complex()
    return (bool_, int64, _default_float)[c]
