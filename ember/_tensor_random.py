"""Tensor's random in-place fills (``uniform_``, ``normal_``, ``bernoulli_``, ``exponential_``,
``geometric_``, ``cauchy_``, ``log_normal_``, ``random_``), used by :mod:`ember.nn.init`.

Each binds the seeded ``random`` primitive (:mod:`ember.ops.sampling`) with a seed from the
generator (the global one by default) and writes the draw through ``assign``
(:func:`ember._tensor_methods._inplace`), so a compiled function records both and draws what
eager mode draws for the same seed. Installed on ``Tensor`` when :mod:`ember._tensor_methods`
loads.
"""

from __future__ import annotations

import numpy as np

from . import _dtype as dt
from ._creation import _draw
from ._tensor import Tensor
from ._tensor_methods import _inplace, _install
from .ops import elementwise as E
from .ops import shape as S


def _fill_random(self, op, dtype, dist, a, b, generator):
    return _inplace(self, lambda s: _draw(tuple(s.shape), dtype, dist, a, b, generator), op)


def _real_float(self, op, kernel):
    if not (self.dtype.is_floating_point or self.dtype.is_complex):
        raise TypeError(f'{op}: "{kernel}" not implemented for dtype {self.dtype.name}')


def _uniform_(self, from_=0.0, to=1.0, *, generator=None):
    """Fill with samples of the uniform distribution on ``[from_, to)``, in place (PyTorch's
    ``uniform_(from, to)``: ``from`` is a Python keyword).

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> x = ember.empty(100).uniform_(-1, 1)
        >>> bool(((x >= -1) & (x < 1)).all())
        True
    """
    _real_float(self, "uniform_", "check_uniform_bounds")
    if not from_ <= to:
        raise ValueError(
            f"uniform_: expects to return a [from, to) range, but found from={from_} > to={to}"
        )
    return _fill_random(self, "uniform_", self.dtype, "uniform", float(from_), float(to), generator)


def _normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with samples of the normal distribution with ``mean`` and ``std``, in place.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> a = ember.empty(3).normal_(2.0, 0.5)
        >>> _ = ember.manual_seed(0)
        >>> a.tolist() == ember.empty(3).normal_(2.0, 0.5).tolist()
        True
    """
    _real_float(self, "normal_", "normal_kernel_cpu")
    if not std >= 0:
        raise ValueError(f"normal_: expects std >= 0.0, but found std {std}")
    return _fill_random(self, "normal_", self.dtype, "normal", float(mean), float(std), generator)


def _bernoulli_(self, p=0.5, *, generator=None):
    """Fill with ones with probability ``p`` (a float, or a tensor broadcast to this one's
    shape), zeros elsewhere, in place; any real dtype.

    Example:
        >>> import ember
        >>> ember.zeros(3).bernoulli_(ember.tensor([0.0, 1.0, 1.0])).tolist()
        [0.0, 1.0, 1.0]
    """
    if self.dtype.is_complex:
        raise TypeError(f"bernoulli_: not implemented for dtype {self.dtype.name}")
    if isinstance(p, Tensor):
        pd = p._data
        if pd.size and not (np.all(pd >= 0) and np.all(pd <= 1)):
            raise ValueError("bernoulli_: expects p to be in [0, 1] (and not NaN)")
        S.expand(p, self.shape)  # the broadcast check (and its error) before drawing
    elif not 0 <= p <= 1:
        raise ValueError(f"bernoulli_: expects p to be in [0, 1], but got p={p}")
    work = dt.float64 if self.dtype == dt.float64 else dt.float32
    return _inplace(
        self,
        lambda s: _draw(tuple(s.shape), work, "uniform", 0.0, 1.0, generator) < p,
        "bernoulli_",
    )


def _continuous(self, op, what):
    if not self.dtype.is_floating_point:
        raise TypeError(
            f"{op}: the {what} distribution is continuous; the tensor's dtype must be a "
            f"floating-point dtype, got {self.dtype.name}"
        )


def _positive(op, name, v):
    if not v > 0:
        raise ValueError(f"{op}: expects {name} > 0.0, but found {name}={v}")


def _exponential_(self, lambd=1.0, *, generator=None):
    """Fill with samples of the exponential distribution of rate ``lambd``, in place.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> bool((ember.empty(100).exponential_(2.0) > 0).all())
        True
    """
    _continuous(self, "exponential_", "exponential")
    _positive("exponential_", "lambda", lambd)
    return _fill_random(self, "exponential_", self.dtype, "exponential", lambd, 0.0, generator)


def _geometric_(self, p, *, generator=None):
    """Fill with samples of the geometric distribution (trials up to the first success,
    so values from 1) with success probability ``p``, in place; any real dtype.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> bool((ember.zeros(100, dtype=ember.int64).geometric_(0.5) >= 1).all())
        True
    """
    if self.dtype.is_complex or self.dtype == dt.bool_:
        raise TypeError(f"geometric_: not implemented for dtype {self.dtype.name}")
    if not 0 < p < 1:
        raise ValueError(f"geometric_: expects p to be in (0, 1), but got p={p}")
    return _fill_random(self, "geometric_", self.dtype, "geometric", float(p), 0.0, generator)


def _cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """Fill with samples of the Cauchy distribution at ``median`` with scale ``sigma``,
    in place.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> ember.empty(3).cauchy_().shape
        ember.Size([3])
    """
    _continuous(self, "cauchy_", "Cauchy")
    _positive("cauchy_", "sigma", sigma)
    return _fill_random(
        self, "cauchy_", self.dtype, "cauchy", float(median), float(sigma), generator
    )


def _log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """Fill with samples of the log-normal distribution whose logarithm has ``mean`` and
    ``std``, in place.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> bool((ember.empty(100).log_normal_() > 0).all())
        True
    """
    _continuous(self, "log_normal_", "log-normal")
    _positive("log_normal_", "std", std)
    return _fill_random(
        self, "log_normal_", self.dtype, "log_normal", float(mean), float(std), generator
    )


# the integers a float dtype holds exactly (its significand's bits, the implicit one included)
_EXACT_BITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def _random_bounds(self):
    """The inclusive range of ``random_`` without bounds, and the range a bound may take."""
    name = self.dtype.name
    if self.dtype == dt.bool_:
        return 1, (0, 1)
    if name in _EXACT_BITS:
        big = 3.3895313892515355e38 if name == "bfloat16" else np.finfo(self._data.dtype).max
        return 2 ** _EXACT_BITS[name], (-int(big), int(big))
    if self.dtype.is_complex:
        raise TypeError(f"random_: not implemented for dtype {name}")
    info = np.iinfo(self._data.dtype)
    return int(info.max), (int(info.min), int(info.max))


def _random_(self, *args, generator=None, **kwargs):
    """``Tensor.random_``: fill with integers drawn uniformly, in place, PyTorch's way:
    ``random_()`` from ``[0, top]`` (the dtype's largest integer, or ``2**mantissa-bits``
    for a float dtype: ``2**24`` for float32), ``random_(to)`` from ``[0, to)``,
    ``random_(from, to)`` from ``[from, to)`` and ``random_(from, None)`` from
    ``[from, top]``.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> x = ember.zeros(100, dtype=ember.int64).random_(3, 7)
        >>> bool(((x >= 3) & (x < 7)).all())
        True
    """
    import warnings

    if "from" in kwargs or "from_" in kwargs:
        args = (kwargs.pop("from", kwargs.pop("from_", 0)), *args)
    if "to" in kwargs:
        args = (*(args or (0,)), kwargs.pop("to"))
    if kwargs:
        raise TypeError(f"random_: unexpected keyword arguments {sorted(kwargs)}")
    if len(args) > 2:
        raise TypeError(f"random_: takes at most 2 bounds (from, to), got {len(args)}")
    top, (lo, hi) = _random_bounds(self)
    if len(args) == 1:
        low, high = 0, args[0]
    else:
        low, high = (args + (None, None))[:2] if args else (0, None)
    for v, what in ((low, "from"), (high, "to")):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
            raise TypeError(f"random_: {what} must be an int, got {type(v).__name__}")
    if high is None:
        last = top
    else:
        if low >= high:
            raise ValueError(
                f"random_: expects 'from' to be less than 'to', but got from={low} >= to={high}"
            )
        last = high - 1
    if not lo <= low <= hi:
        raise ValueError(f"random_: from is out of bounds for {self.dtype.name}")
    if not lo <= last <= hi:
        raise ValueError(f"random_: to - 1 is out of bounds for {self.dtype.name}")
    bits = _EXACT_BITS.get(self.dtype.name)
    if bits is not None and high is not None and max(abs(low), abs(last)) > 2**bits:
        warnings.warn(
            f"random_: the bounds are outside [-(2^{bits}), 2^{bits}], where {self.dtype.name} "
            "holds every integer: the draws are rounded",
            UserWarning,
            stacklevel=2,
        )
    if low >= -(2**63) and last < 2**63:
        return _fill_random(self, "random_", self.dtype, "randint", low, last + 1, generator)

    def fill(s):  # float bounds beyond int64: the draws are rounded anyway
        u = _draw(tuple(s.shape), dt.float64, "uniform", float(low), float(last) + 1, generator)
        return E.minimum(u.floor(), float(last))

    return _inplace(self, fill, "random_")


_install(
    uniform_=_uniform_,
    normal_=_normal_,
    bernoulli_=_bernoulli_,
    exponential_=_exponential_,
    geometric_=_geometric_,
    cauchy_=_cauchy_,
    log_normal_=_log_normal_,
    random_=_random_,
)
