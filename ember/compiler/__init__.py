"""Compiled mode: trace Python functions into a graph IR, optimize it, run it fast.

See :mod:`ember.compiler.ir` for the IR.
"""

from .ir import Dim, Eqn, Graph, Literal, Seed, Var, interpret, lookup_primitive

__all__ = ["Dim", "Eqn", "Graph", "Literal", "Seed", "Var", "interpret", "lookup_primitive"]
