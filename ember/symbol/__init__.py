"""Symbolic graphs, the Theano / MXNet-Symbol way: declare variables, write expressions, compile.

Example:
    >>> import ember
    >>> from ember import symbol as S
    >>> x = S.var("x", ("batch", 3))
    >>> f = S.function([x], (x * 2).sum(1))
    >>> f(ember.ones(2, 3)).tolist()
    [6.0, 6.0]
"""

from ._core import Symbol, SymbolicError
from ._function import Function, function
from ._grad import grad
from ._vars import shared, var

__all__ = ["Function", "Symbol", "SymbolicError", "function", "grad", "shared", "var"]
