"""Tensor factories: ``tensor``, ``zeros``, ``arange``, ``rand`` ... and interop."""

from __future__ import annotations

import numpy as np

from . import _dtype as dt
from ._device import as_device
from ._tensor import Tensor, _new, _to_array
from .ops._core import bind
from .ops.sampling import random_p
from .random import default_generator

__all__ = [
    "arange",
    "as_tensor",
    "bernoulli",
    "empty",
    "empty_like",
    "eye",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "logspace",
    "multinomial",
    "normal",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "randperm",
    "tensor",
    "zeros",
    "zeros_like",
]


def _check_device(device):
    if device is not None:
        d = as_device(device)
        if d.type != "cpu":
            from .backends import get_backend

            get_backend(d.type)


def _infer_dtype(data):
    """PyTorch's inference: Python floats -> default float (complex numbers: its complex
    dtype), ints -> int64, bools -> bool."""
    if isinstance(data, (bool, np.bool_)):
        return dt.bool_
    if isinstance(data, (int, np.integer)) and not isinstance(data, np.integer):
        return dt.int64
    if isinstance(data, float):
        return dt.get_default_dtype()
    if isinstance(data, complex):  # complex64 under a float32 default, as PyTorch
        return dt.get_default_dtype().to_complex()
    return None


def tensor(data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Build a tensor by copying ``data`` (nested lists, scalars, arrays, tensors).

    Example:
        >>> import ember
        >>> ember.tensor([[1, 2], [3, 4]]).dtype
        ember.int64
    """
    _check_device(device)
    t = _new(_to_array(data, dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, *, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor`, but shares memory with a NumPy array / tensor when it can."""
    _check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or dt.as_dtype(dtype).np == data.dtype):
        dt.from_numpy_dtype(data.dtype)
        return _new(data)
    return tensor(data, dtype=dtype)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``ndarray`` (zero copy).

    Example:
        >>> import numpy as np, ember
        >>> a = np.zeros(3, dtype=np.float32)
        >>> t = ember.from_numpy(a)
        >>> a[0] = 1.0  # the tensor sees the change
        >>> t.tolist()
        [1.0, 0.0, 0.0]
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    dt.from_numpy_dtype(ndarray.dtype)
    return _new(ndarray)


def from_dlpack(ext_tensor, *, device=None, copy: bool | None = None) -> Tensor:
    """A tensor sharing memory with any object implementing ``__dlpack__``.

    ``copy=True`` returns a copy instead of a view of the producer's memory.

    Example:
        >>> import ember, numpy as np
        >>> a = np.arange(3.0)
        >>> t = ember.from_dlpack(a, copy=True)
        >>> a[0] = 5.0
        >>> t.tolist()
        [0.0, 1.0, 2.0]
    """
    _check_device(device)
    t = _from_dlpack(ext_tensor)
    return _new(t._data.copy()) if copy else t


def _from_dlpack(ext_tensor) -> Tensor:
    if isinstance(ext_tensor, Tensor):
        return _new(ext_tensor._data)
    if str(getattr(ext_tensor, "dtype", "")) == "torch.bfloat16":
        # NumPy's DLPack importer has no bfloat16: import the bits as int16 (still zero
        # copy) and reinterpret them.
        return _new(np.from_dlpack(ext_tensor.view(_torch_int16(ext_tensor))).view(dt.bfloat16.np))
    if not hasattr(ext_tensor, "__dlpack__"):
        if type(ext_tensor).__name__ != "PyCapsule":
            raise TypeError(
                f"from_dlpack: expected an object with __dlpack__ or a DLPack "
                f"capsule, got {type(ext_tensor).__name__}"
            )
        ext_tensor = _Capsule(ext_tensor)
    try:
        arr = np.from_dlpack(ext_tensor)
    except (BufferError, RuntimeError, TypeError) as e:
        raise RuntimeError(f"from_dlpack: cannot import this tensor on the CPU ({e})") from e
    dt.from_numpy_dtype(arr.dtype)
    return _new(arr)


def _torch_int16(t):
    import sys

    return sys.modules[type(t).__module__.split(".")[0]].int16


class _Capsule:
    """Adapts a bare (legacy) DLPack capsule to the ``__dlpack__`` protocol."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, stream=None, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


def _size(size, op="size"):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    from .ops._util import size_ints

    out = size_ints(size, op)
    if any(s < 0 for s in out):
        raise ValueError(f"{op}: negative dimension in size {out}")
    return out


def _dt(dtype, default=None):
    return dt.as_dtype(dtype) if dtype is not None else (default or dt.get_default_dtype())


def _finish(arr, requires_grad, device=None):
    _check_device(device)
    t = _new(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros; ``size`` as separate ints or one tuple (default dtype float32).

    Example:
        >>> import ember
        >>> ember.zeros(2, 3)
        tensor([[0., 0., 0.],
                [0., 0., 0.]])
        >>> ember.zeros((2,), dtype=ember.int64).dtype
        ember.int64
    """
    return _finish(np.zeros(_size(size, "zeros"), _dt(dtype).np), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones; ``size`` as separate ints or one tuple.

    Example:
        >>> import ember
        >>> w = ember.ones(2, 2, requires_grad=True)
        >>> w.sum().backward()
        >>> w.grad
        tensor([[1., 1.],
                [1., 1.]])
    """
    return _finish(np.ones(_size(size, "ones"), _dt(dtype).np), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor whose values are unspecified (write them before reading); ``size`` as
    separate ints or one tuple.

    The memory comes zeroed (the operating system's zero pages cost what fresh uninitialized
    pages cost): a function compiled with :func:`ember.compile` that fills an ``empty``
    tensor then sees the same constant on every trace and compiles, where garbage would make
    it fall back to eager mode.

    Example:
        >>> import ember
        >>> ember.empty(2, 3).fill_(1.5).tolist()
        [[1.5, 1.5, 1.5], [1.5, 1.5, 1.5]]
    """
    return _finish(np.zeros(_size(size, "empty"), _dt(dtype).np), requires_grad, device)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value`` (dtype inferred from it).

    Example:
        >>> import ember
        >>> ember.full((2, 2), 7)
        tensor([[7, 7],
                [7, 7]])
    """
    if fill_value is None or isinstance(fill_value, (str, bytes)):
        raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")
    if dtype is None:
        dtype = _infer_dtype(fill_value) or dt.get_default_dtype()
    return _finish(
        np.full(_size((size,), "full"), fill_value, _dt(dtype).np), requires_grad, device
    )


def _like(x, dtype):
    return dt.as_dtype(dtype) if dtype is not None else x.dtype


def _made_like(make, input, dtype, requires_grad, memory_format, what):
    """``make(input.shape, ...)`` (zeros, ones, empty) with ``input``'s dtype unless given,
    laid out as :func:`_like_layout` says."""
    r = make(input.shape, dtype=_like(input, dtype), requires_grad=requires_grad)
    return _like_layout(r, input, memory_format, what)


def _like_layout(r, input, memory_format, what):
    """``r`` (new, C order) laid out as ``memory_format`` makes a copy of ``input`` (the
    default, ``preserve_format``, keeps a dense input's strides, as PyTorch's ``*_like``)."""
    like = input._data if isinstance(input, Tensor) else None
    if like is None or (memory_format is None and like.flags.c_contiguous and 1 not in like.shape):
        return r  # (the usual case, at no cost)
    from ._memory_format import laid_out_like

    arr = laid_out_like(r._data, like, memory_format, what)
    if arr is not r._data:
        r._data = arr
    return r


def zeros_like(
    input, *, dtype=None, device=None, requires_grad=False, memory_format=None
) -> Tensor:
    """Zeros with the shape (and, unless given, the dtype) of ``input``.

    Example:
        >>> import ember
        >>> ember.zeros_like(ember.ones(2, 3, dtype=ember.float64)).dtype
        ember.float64
    """
    return _made_like(zeros, input, dtype, requires_grad, memory_format, "zeros_like")


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    """Ones with the shape (and, unless given, the dtype) of ``input``.

    Example:
        >>> import ember
        >>> ember.ones_like(ember.zeros(3))
        tensor([1., 1., 1.])
    """
    return _made_like(ones, input, dtype, requires_grad, memory_format, "ones_like")


def empty_like(
    input, *, dtype=None, device=None, requires_grad=False, memory_format=None
) -> Tensor:
    return _made_like(empty, input, dtype, requires_grad, memory_format, "empty_like")


def full_like(
    input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None
) -> Tensor:
    r = full(input.shape, fill_value, dtype=_like(input, dtype), requires_grad=requires_grad)
    return _like_layout(r, input, memory_format, "full_like")


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 when all three are
    ints, else the default float dtype.

    Example:
        >>> import ember
        >>> ember.arange(5)
        tensor([0, 1, 2, 3, 4])
        >>> ember.arange(0, 1, 0.25).tolist()
        [0.0, 0.25, 0.5, 0.75]
    """
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if vals[2] == 0:
        raise ValueError("arange: step must be nonzero")
    if (vals[1] - vals[0]) * vals[2] < 0:
        raise ValueError(
            f"arange: upper bound and lower bound inconsistent with step sign "
            f"(start={vals[0]}, end={vals[1]}, step={vals[2]})"
        )
    if dtype is None:
        dtype = (
            dt.int64
            if all(isinstance(v, (int, np.integer)) for v in vals)
            else dt.get_default_dtype()
        )
    d = dt.as_dtype(dtype)
    n = int(np.ceil((vals[1] - vals[0]) / vals[2]))
    arr = (
        (vals[0] + np.arange(max(n, 0), dtype=np.float64) * vals[2])
        if d.is_floating_point
        else np.arange(vals[0], vals[1], vals[2])
    )
    return _finish(arr.astype(d.np), requires_grad, device)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included).

    Example:
        >>> import ember
        >>> ember.linspace(0, 1, steps=5).tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if int(steps) < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    return _finish(np.linspace(start, end, int(steps)).astype(_dt(dtype).np), requires_grad, device)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None) -> Tensor:
    return _finish(
        np.logspace(start, end, int(steps), base=base).astype(_dt(dtype).np), False, device
    )


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``n`` x ``m`` identity matrix (``m`` defaults to ``n``).

    Example:
        >>> import ember
        >>> ember.eye(2)
        tensor([[1., 0.],
                [0., 1.]])
    """
    for name, v in (("n", n), ("m", m)):
        if v is not None and v < 0:
            raise ValueError(f"eye: {name} must be greater or equal to 0, got {v}")
    return _finish(np.eye(n, m, dtype=_dt(dtype).np), requires_grad, device)


# -- random --------------------------------------------------------------------------------
def _gen(generator):
    """The NumPy stream of ``generator`` (an ember ``Generator``, None for the default one, or
    a NumPy ``Generator`` itself)."""
    if isinstance(generator, np.random.Generator):
        return generator
    return (generator or default_generator).numpy


def _seed_from(generator):
    """A seed drawn from ``generator``: an ember ``Generator`` (None: the default one) or a
    NumPy ``Generator`` (its own stream advances, as when Ember drew from it directly)."""
    if generator is None:
        return default_generator.next_seed()
    if hasattr(generator, "next_seed"):
        return generator.next_seed()
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(0, 2**63 - 1))
    raise TypeError(
        "generator must be an ember.Generator or a numpy.random.Generator, "
        f"got {type(generator).__name__}"
    )


def _draw(shape, dtype, dist, a, b, generator):
    """``bind(random_p)`` with a seed drawn from ``generator`` (or the default one): eager and
    compiled runs draw the same values for the same ``manual_seed``."""
    seed = _seed_from(generator)
    params = {"seed": seed, "shape": tuple(shape), "dtype": dtype.np, "dist": dist}
    params.update(a=a, b=b)
    return bind(random_p, (), params)


def _random(size, dtype, dist, generator, requires_grad, device, op):
    _check_device(device)
    d = _dt(dtype)
    if not d.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point dtype, got {d}")
    t = _draw(_size(size, op), d, dist, 0.0, 1.0, generator)
    if requires_grad:
        t.requires_grad_(True)
    return t


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples on [0, 1); seeded by ``ember.manual_seed`` or a ``generator``.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> x = ember.rand(2, 3)
        >>> x.shape, x.dtype, bool(((x >= 0) & (x < 1)).all())
        (ember.Size([2, 3]), ember.float32, True)
    """
    return _random(size, dtype, "uniform", generator, requires_grad, device, "rand")


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples; the same seed gives the same values.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0); a = ember.randn(4, 5)
        >>> _ = ember.manual_seed(0); b = ember.randn(4, 5)
        >>> a.shape, bool((a == b).all())
        (ember.Size([4, 5]), True)
    """
    return _random(size, dtype, "normal", generator, requires_grad, device, "randn")


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Integers in ``[low, high)``; ``randint(high, size)`` form too (dtype int64).

    Example:
        >>> import ember
        >>> y = ember.randint(0, 10, (32,))
        >>> y.shape, y.dtype, 0 <= int(y.min()) and int(y.max()) < 10
        (ember.Size([32]), ember.int64, True)
    """
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: missing the 'size' argument")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: expects 'low' < 'high', got low={low}, high={high}")
    _check_device(device)
    return _draw(
        _size((size,), "randint"), _dt(dtype, dt.int64), "randint", int(low), int(high), generator
    )


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64): the ``argsort`` of ``n`` float64 uniform
    draws keyed by one seed, so it traces into compiled functions as ``rand`` does.

    Example:
        >>> import ember
        >>> sorted(ember.randperm(4).tolist())
        [0, 1, 2, 3]
    """
    from .ops.sorting import argsort

    if int(n) < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    _check_device(device)
    d = _dt(dtype, dt.int64)
    p = argsort(_draw((int(n),), dt.float64, "uniform", 0.0, 1.0, generator), stable=True)
    if d != dt.int64:
        p = p.to(d)
    if requires_grad:
        p.requires_grad_(True)
    return p


def rand_like(input, *, dtype=None, generator=None, memory_format=None) -> Tensor:
    return _like_layout(
        rand(input.shape, dtype=_like(input, dtype), generator=generator),
        input,
        memory_format,
        "rand_like",
    )


def randn_like(input, *, dtype=None, generator=None, memory_format=None) -> Tensor:
    return _like_layout(
        randn(input.shape, dtype=_like(input, dtype), generator=generator),
        input,
        memory_format,
        "randn_like",
    )


def randint_like(
    input, low, high=None, *, dtype=None, generator=None, memory_format=None
) -> Tensor:
    r = randint(low, high, tuple(input.shape), dtype=_like(input, dtype), generator=generator)
    return _like_layout(r, input, memory_format, "randint_like")


def normal(mean=0.0, std=1.0, size=None, generator=None) -> Tensor:
    """Normal samples with ``mean`` and ``std`` (floats, or tensors broadcast together: one
    draw per element); ``size`` gives the shape of the float form.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(0)
        >>> ember.normal(2.0, 0.5, size=(2, 3)).shape
        ember.Size([2, 3])
        >>> ember.normal(ember.zeros(4), ember.ones(4)).shape
        ember.Size([4])
    """
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    sd = std._data if isinstance(std, Tensor) else np.asarray(std)
    if sd.size and np.any(sd < 0):
        raise ValueError(f"normal: expects std >= 0.0, but found std {np.min(sd)}")
    if not tensors:
        shape = _size((() if size is None else size,), "normal")
        return _draw(shape, dt.get_default_dtype(), "normal", float(mean), float(std), generator)
    d = None
    for v in tensors:
        if v.dtype.is_floating_point:
            d = v.dtype if d is None else dt.promote_types(d, v.dtype)
    d = d or dt.get_default_dtype()
    if size is None:
        size = np.broadcast_shapes(*(tuple(v.shape) for v in tensors))
    z = _draw(_size((size,), "normal"), d, "normal", 0.0, 1.0, generator)
    return z * std + mean


def bernoulli(input, generator=None) -> Tensor:
    """Ones with probability ``input`` (elementwise), zeros elsewhere, in ``input``'s dtype.

    Example:
        >>> import ember
        >>> ember.bernoulli(ember.tensor([0.0, 1.0, 1.0])).tolist()
        [0.0, 1.0, 1.0]
    """
    if not isinstance(input, Tensor):
        input = tensor(input)
    probs = input._data
    if probs.size and not (np.all(probs >= 0) and np.all(probs <= 1)):
        raise ValueError("bernoulli: all probabilities must be in [0, 1] (and not NaN)")
    work = dt.float64 if input.dtype is dt.float64 else dt.float32
    u = _draw(tuple(input.shape), work, "uniform", 0.0, 1.0, generator)
    return (u < input).to(input.dtype)


def multinomial(input, num_samples, replacement=False, generator=None) -> Tensor:
    """``num_samples`` category indices per row of the (unnormalized) probabilities
    ``input``, with or without ``replacement``; seeded like ``rand``, so a compiled function
    draws what its eager run draws.

    Example:
        >>> import ember
        >>> ember.multinomial(ember.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]), 1).tolist()
        [[1], [0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor, got {type(input).__name__}")
    p = np.asarray(input._data, dtype=np.float64)
    if p.ndim not in (1, 2):
        raise ValueError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(
            "multinomial: probability tensor contains either `inf`, `nan` or element < 0"
        )
    if np.any(p.sum(-1) <= 0):
        raise ValueError("multinomial: invalid distribution (sum of probabilities <= 0)")
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and num_samples > p.shape[-1]:
        raise ValueError(
            f"multinomial: cannot sample n_sample ({num_samples}) > prob_dist.size(-1) "
            f"({p.shape[-1]}) samples without replacement"
        )
    if not replacement and np.any((p > 0).sum(-1) < num_samples):
        raise ValueError(
            "multinomial: invalid distribution (with replacement=False, not enough "
            "non-negative category to sample)"
        )
    # drawn from uniforms keyed by one seed, in ember ops, so that it traces into compiled
    # functions as ``rand`` does (eager and compiled runs draw the same tokens)
    work = input.detach().to(dt.float64)
    if replacement:  # inverse CDF: the index of the first cumulative sum above each draw
        cdf = work.cumsum(-1)
        cdf = cdf / cdf[..., -1:]
        u = _draw(p.shape[:-1] + (num_samples,), dt.float64, "uniform", 0.0, 1.0, generator)
        from .ops.statistics import searchsorted

        return searchsorted(cdf, u, right=True)
    # without replacement: the num_samples largest keys log(u) / p (Efraimidis-Spirakis)
    u = _draw(p.shape, dt.float64, "uniform", 0.0, 1.0, generator)
    return (u.log() / work).topk(num_samples, -1).indices
