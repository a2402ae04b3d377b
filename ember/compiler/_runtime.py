"""``torch.compiler``'s runtime controls: :func:`disable`, :func:`is_compiling` and :func:`reset`.

A compiled function's Python runs in three ways: traced (dry runs, the tracer installed), as
the real eager call of a new signature, and eagerly for a signature with a graph break. In all
three :func:`is_compiling` is True, as in ``torch.compile`` where every call of the function
takes the branch its graph was traced with; a :func:`disable`-d function runs eagerly (it is
a graph break when a trace reaches it) and sees False.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from ..ops._core import _state
from .trace import Tracer

__all__ = ["disable", "is_compiling", "is_dynamo_compiling", "reset"]

_local = threading.local()
# every compiled function alive, for reset()
COMPILED: weakref.WeakSet[Any] = weakref.WeakSet()


def depth() -> int:
    return getattr(_local, "depth", 0)


def set_depth(n: int) -> None:
    _local.depth = n


def is_compiling() -> bool:
    """True while Ember compiles or runs a compiled function's Python (``torch.compiler
    .is_compiling``): in its traces and in the eager calls of a compiled function, False
    in plain eager code and inside a :func:`disable`-d function.

    Example:
        >>> import ember
        >>> seen = []
        >>> @ember.compile
        ... def f(x):
        ...     seen.append(ember.compiler.is_compiling())
        ...     return x + 1
        >>> _ = f(ember.ones(2))
        >>> all(seen), ember.compiler.is_compiling()
        (True, False)
    """
    return depth() > 0 or isinstance(_state.tracer, Tracer)


is_dynamo_compiling = is_compiling  # torch.compiler.is_dynamo_compiling


def disable(
    fn: Callable | None = None, recursive: bool = True, *, reason: str | None = None
) -> Any:
    """A function that always runs eagerly (``torch.compiler.disable``), also inside a
    compiled function: a trace that reaches the call stops there (a graph break: that
    input signature runs eagerly, without a warning; ``fullgraph=True`` raises
    :class:`~ember.compiler.CompileError` naming the line), and ``ember.compile`` of it
    returns it unchanged. Usable as ``@disable``, ``@disable(reason=...)`` or ``disable(f)``;
    ``recursive`` is accepted for compatibility (Ember compiles no frame called from it
    either way).

    Example:
        >>> import ember
        >>> @ember.compiler.disable
        ... def log(x):
        ...     print(round(x.sum().item(), 1))
        >>> @ember.compile
        ... def f(x):
        ...     log(x)
        ...     return x * 2
        >>> f(ember.ones(3)).tolist()
        3.0
        [2.0, 2.0, 2.0]
    """
    if fn is None:
        return functools.partial(disable, recursive=recursive, reason=reason)
    if not callable(fn):
        raise TypeError(f"ember.compiler.disable expects a function, got {type(fn).__name__}")
    if getattr(fn, "_ember_disabled", False):
        return fn
    from .api import CompiledFunction

    if isinstance(fn, CompiledFunction):
        fn = fn.fn
    name = getattr(fn, "__qualname__", None) or type(fn).__name__

    @functools.wraps(fn, updated=())
    def disabled(*args: Any, **kwargs: Any) -> Any:
        tr = _state.tracer
        if isinstance(tr, Tracer):
            tr.disabled_call(name, reason)  # raises: the trace ends before the call
        prev = depth()
        _local.depth = 0
        try:
            return fn(*args, **kwargs)
        finally:
            _local.depth = prev

    disabled._ember_disabled = True  # type: ignore[attr-defined]
    return disabled


def reset() -> None:
    """Clear every compiled function's graphs and guards (``torch.compiler.reset``): the
    next call of each traces afresh (``explain()`` shows it) and the recompile limit counts
    from zero again; the convolution workspaces of this thread are released too.

    Example:
        >>> import ember
        >>> f = ember.compile(lambda x: x * 2)
        >>> _ = f(ember.ones(2)); ember.compiler.reset(); _ = f(ember.ones(2))
        >>> f.explain().traces
        2
    """
    for cf in list(COMPILED):
        cf._reset()
    from ..ops._conv_util import clear_workspace

    clear_workspace()
