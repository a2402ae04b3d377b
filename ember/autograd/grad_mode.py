"""Grad-mode switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``,
``inference_mode`` (usable as context managers and decorators)."""

from __future__ import annotations

import functools

from ..ops import _core
from ..ops._core import _state

__all__ = [
    "enable_grad",
    "inference_mode",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "set_grad_enabled",
]


class _Mode:
    _enabled = True

    def __new__(cls, *args, **kwargs):
        # ``@no_grad`` without parentheses (as PyTorch allows): decorate directly.
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], bool):
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        self._prev = _state.grad_enabled
        _state.grad_enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args()):
                return fn(*args, **kwargs)

        return wrapper

    def _args(self):
        return ()


class no_grad(_Mode):
    """Disable gradient recording.

    Example:
        >>> import ember
        >>> x = ember.ones(2, requires_grad=True)
        >>> with ember.no_grad():
        ...     y = x * 2
        >>> y.requires_grad
        False
    """

    _enabled = False


class enable_grad(_Mode):
    """Enable gradient recording inside a ``no_grad`` block."""

    _enabled = True


class set_grad_enabled(_Mode):
    """Set grad mode on or off (a function call or a context manager)."""

    def __init__(self, mode: bool):
        self._enabled = bool(mode)
        self._prev = _state.grad_enabled
        _state.grad_enabled = self._enabled

    def __enter__(self):
        return self

    def __call__(self, fn):
        # Used as a decorator: the constructor already switched the mode; undo that.
        _state.grad_enabled = self._prev
        return super().__call__(fn)

    def _args(self):
        return (self._enabled,)


class inference_mode(_Mode):
    """Like ``no_grad``, for pure inference; ``inference_mode(False)`` changes nothing.

    Example:
        >>> import ember
        >>> with ember.inference_mode():
        ...     ember.is_inference_mode_enabled(), ember.is_grad_enabled()
        (True, False)
    """

    def __init__(self, mode: bool = True):
        self._mode = bool(mode)

    def __enter__(self):
        self._prev = _state.grad_enabled
        self._entered = False
        if self._mode:
            _state.grad_enabled = False
            self._entered = _core.enter_inference()
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self._prev
        if self._entered:
            _core.exit_inference()
        return False

    def _args(self):
        return (self._mode,)


def is_grad_enabled() -> bool:
    """Whether this thread records operations for autograd (each thread has its own mode)."""
    return _state.grad_enabled


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()`` (``no_grad`` alone is not)."""
    return _state.inference
