"""``OptimizedModule``: what ``ember.compile(module)`` returns (``torch.compile``'s wrapper).

It is an ``nn.Module`` holding the original as its submodule ``_orig_mod`` (so parameters,
state dicts, ``train``/``eval``, ``to`` and optimizers see the original's tensors, with names
prefixed ``_orig_mod.``), whose ``forward`` is the :class:`~ember.compiler.api.CompiledFunction`
of the original module. Attribute reads and writes that are not the wrapper's own go to the
original module, as torch's ``OptimizedModule`` forwards them; the compiled function's
inspection API (``explain()``, ``graph(...)``, ``cache``, ...) stays reachable from it.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from ..nn.modules.module import Module

__all__ = ["OptimizedModule"]

# the attributes the wrapper keeps on itself (torch's ``_opt_mod_attributes``); any other
# attribute is read from and written to the original module
_OWN = frozenset({"_orig_mod", "_compiled", "forward", "__dict__"})


class OptimizedModule(Module):
    """A module compiled by :func:`ember.compile`: calling it runs the compiled forward of
    ``_orig_mod``, the original module, whose parameters and state it shares.

    Example:
        >>> import ember
        >>> m = ember.nn.Linear(3, 2)
        >>> c = ember.compile(m)
        >>> isinstance(c, ember.nn.Module), c._orig_mod is m
        (True, True)
        >>> [n for n, _ in c.named_parameters()]
        ['_orig_mod.weight', '_orig_mod.bias']
        >>> c.eval() is c, m.training
        (True, False)
        >>> tuple(c(ember.ones(4, 3)).shape), c.explain().traces
        ((4, 2), 1)
    """

    _save_init_args = False

    def __init__(self, mod: Module, compiled: Any) -> None:
        if not isinstance(mod, Module):
            raise TypeError(f"OptimizedModule wraps an ember.nn.Module, got {type(mod).__name__}")
        super().__init__()
        d = self.__dict__
        d.pop("training", None)  # (a property: the original module's flag)
        d["_modules"]["_orig_mod"] = mod
        d["_compiled"] = compiled
        d["forward"] = compiled

    # -- the training flag is the original module's
    @property
    def training(self) -> bool:
        return self.__dict__["_modules"]["_orig_mod"].training

    @training.setter
    def training(self, value: bool) -> None:
        self.__dict__["_modules"]["_orig_mod"].training = value

    # -- the compiled function's inspection API
    def explain(self) -> Any:
        """The trace history of the compiled forward (:class:`~ember.compiler.Explanation`)."""
        return self.__dict__["_compiled"].explain()

    def graph(self, *args: Any, **kwargs: Any) -> Any:
        """The optimized graph of the forward for these arguments (see
        :meth:`~ember.compiler.CompiledFunction.graph`)."""
        return self.__dict__["_compiled"].graph(*args, **kwargs)

    # -- attribute forwarding (as torch's OptimizedModule)
    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        mods = d.get("_modules")
        if mods is None or "_orig_mod" not in mods:
            raise AttributeError(f"'OptimizedModule' object has no attribute '{name}'")
        if name == "_orig_mod":
            return mods["_orig_mod"]
        orig = mods["_orig_mod"]
        try:
            return getattr(orig, name)
        except AttributeError:
            # the compiled function's state (cache, events, static_dims, ...)
            cf = d.get("_compiled")
            if cf is not None and (name in cf.__dict__ or hasattr(type(cf), name)):
                return getattr(cf, name)
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN or hasattr(type(self), name) or "_modules" not in self.__dict__:
            super().__setattr__(name, value)
            return
        setattr(self._orig_mod, name, value)

    def __delattr__(self, name: str) -> None:
        if name in _OWN or hasattr(type(self), name):
            super().__delattr__(name)
            return
        delattr(self._orig_mod, name)

    def __len__(self) -> int:
        orig = self._orig_mod
        if isinstance(orig, Sized):
            return len(orig)
        raise TypeError(f"{type(orig).__name__} does not support len()")

    def __dir__(self) -> list[str]:
        own = super().__dir__()
        return sorted(set(dir(self._orig_mod)) | set(own))
