"""Symbolic graphs, the Theano / MXNet-Symbol way: declare variables, write expressions, compile.

Example:
    >>> import ember
    >>> from ember import symbol as S
    >>> x = S.var("x", ("batch", 3))
    >>> f = S.function([x], (x * 2).sum(1))
    >>> f(ember.ones(2, 3)).tolist()
    [6.0, 6.0]
"""

from typing import Any

from ._core import Symbol, SymbolicError
from ._function import Function, function
from ._grad import grad
from ._vars import shared, var

__all__ = ["Function", "Symbol", "SymbolicError", "function", "grad", "load", "shared", "var"]


def load(path: Any) -> Function:
    """A :class:`Function` from a graph file written by ``Function.save`` / ``graph.save``;
    it runs without the Python code that built it. Shared variables start at their saved
    values (read them with ``f.shared_values()``).

    Example:
        >>> import os, tempfile, ember
        >>> from ember import symbol as S
        >>> x = S.var("x", ("n",))
        >>> p = os.path.join(tempfile.mkdtemp(), "f.json")
        >>> S.function([x], x * 3).save(p)
        >>> S.load(p)(ember.ones(2)).tolist()
        [3.0, 3.0]
    """
    from ..compiler.serialize import load as _load

    g = _load(path)
    meta = g.meta if isinstance(g.meta, dict) else {}
    names = meta.get("input_names") or [f"input{i}" for i in range(len(g.inputs))]
    return Function(g, names, bool(meta.get("single_output", len(g.outputs) == 1)))
