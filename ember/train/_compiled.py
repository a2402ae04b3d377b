"""Compiled runs of the training engine (``Engine(..., compile=True)``): the checked
``ember.compile`` options, the compiled forward kept between runs, and which module's forward a
run replaces. The engine swaps the module's ``forward`` for the compiled one while it runs
(:meth:`ember.train.Engine._compiled_model`).

Example:
    >>> from ember.train._compiled import compile_options
    >>> compile_options(True), compile_options({"fullgraph": True}), compile_options(False)
    ({}, {'fullgraph': True}, None)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import ember

__all__ = ["MISSING", "ForwardCache", "compile_forward", "compile_options", "compile_target"]

MISSING = object()
# the keyword options of ember.compile that ``compile={...}`` may pass
_COMPILE_OPTIONS = ("dynamic", "fullgraph", "backend", "mode", "recompile_limit", "name")


def compile_options(value, who: str = "Engine") -> dict | None:
    """``compile=`` as ember.compile's keyword options (None: eager), checked now."""
    if value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict):
        raise TypeError(
            f"{who}: compile must be True, False or a dict of ember.compile options "
            f"{list(_COMPILE_OPTIONS)}, got {value!r} of type {type(value).__name__}"
        )
    bad = sorted(str(k) for k in value if k not in _COMPILE_OPTIONS)
    if bad:
        raise ValueError(
            f"{who}: compile={value!r}: unknown ember.compile option(s) {bad}; expected some "
            f"of {list(_COMPILE_OPTIONS)}"
        )
    for k in ("dynamic", "fullgraph"):
        if k in value and not (isinstance(value[k], bool) or (k == "dynamic" and value[k] is None)):
            raise TypeError(f"{who}: compile option {k!r} must be a bool, got {value[k]!r}")
    ember.compile(**value)  # ember.compile's own checks (backend, mode, recompile_limit)
    return dict(value)


class ForwardCache:
    """The compiled forward of one module, kept between runs (an engine's, or a Keras
    model's between ``fit``/``evaluate``/``predict``); copies and pickles start empty."""

    def __init__(self):
        self.mod: Any = None
        self.base: Any = MISSING  # the instance ``forward`` it was compiled from, if any
        self.fn: Any = None  # the CompiledFunction
        self.call: Any = None  # what the module's ``forward`` is while compiled

    def set(self, mod, base, fn) -> None:
        self.mod, self.base, self.fn = mod, base, fn

        # NumPy arguments (an ArrayLoader's batches) as tensors: the compiled function
        # guards Python values by value, a tensor by shape
        @functools.wraps(fn)
        def call(*args, **kwargs):
            args, kwargs = _as_tensors((args, kwargs))
            return fn(*args, **kwargs)

        self.call = call

    def __deepcopy__(self, memo):
        return ForwardCache()

    def __reduce__(self):
        return (ForwardCache, ())


def _as_tensors(tree):
    if isinstance(tree, np.ndarray):
        return ember.as_tensor(tree)
    if isinstance(tree, (list, tuple)) and type(tree) in (list, tuple):
        return type(tree)(_as_tensors(v) for v in tree)
    if type(tree) is dict:
        return {k: _as_tensors(v) for k, v in tree.items()}
    return tree


def compile_target(model):
    """The module whose forward a compiled run replaces: the one inside a DDP wrapper;
    None for no model or one that ``ember.compile`` already wraps (its forward is compiled)."""
    from ember.compiler import OptimizedModule
    from ember.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        model = model.module
    if model is None or isinstance(model, OptimizedModule):
        return None
    if not isinstance(model, ember.nn.Module):
        raise TypeError(f"compile=True needs an ember.nn.Module model, got {type(model).__name__}")
    return model


def compile_forward(mod, options: dict, guard_self: bool = True):
    """``ember.compile`` of ``mod.forward``; the module and its submodules are guarded (their
    ``training`` flags, Python attributes, parameters) as when ``ember.compile(mod)`` calls it."""
    fn = ember.compile(mod.forward, **options)
    if isinstance(fn, ember.compiler.CompiledFunction):
        # NOTE: the forward is called directly, not through Module.__call__, so the trace
        # would not see ``mod`` itself: register it (and its submodules) for the guards
        for sub in mod.modules() if guard_self else list(mod.modules())[1:]:
            if all(sub is not m for m in fn.modules):
                fn.modules.append(sub)
    return fn
