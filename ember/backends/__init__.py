"""Array backends: each owns memory and kernels for one kind of device.

A backend module exposes ``name``, ``xp`` (the array namespace: NumPy, CuPy),
``array_types`` and ``is_available()``. Everything above this package reaches arrays
only through :func:`get_backend` / :func:`xp_of`, so adding a device means adding a
module here, not touching every op.
"""

from . import cpu, cudnn

__all__ = ["backend_of", "cpu", "cudnn", "get_backend", "xp_of"]

_BACKENDS = {"cpu": cpu}
_TYPE_TO_BACKEND = dict.fromkeys(cpu.array_types, cpu)


def get_backend(device_type: str):
    """The backend module for ``'cpu'`` / ``'cuda'``, with a clear error when absent."""
    b = _BACKENDS.get(device_type)
    if b is not None:
        return b
    if device_type == "cuda":
        raise RuntimeError(
            "device 'cuda' was requested but Ember's GPU backend is not available in this "
            "build (it needs an NVIDIA GPU and the [gpu] extra: pip install 'ember[gpu]')"
        )
    import importlib

    try:
        mod = importlib.import_module(f"ember.backends.{device_type}")
    except ImportError:
        raise RuntimeError(
            f"unknown device type {device_type!r}; available: {sorted(_BACKENDS)}"
        ) from None
    _BACKENDS[device_type] = mod
    return mod


def backend_of(array):
    """The backend that owns ``array``."""
    b = _TYPE_TO_BACKEND.get(type(array))
    if b is None:
        return cpu
    return b


def xp_of(array):
    """The array namespace (``numpy`` / ``cupy``) for ``array``."""
    return backend_of(array).xp
