"""Compiled mode: trace Python functions into a graph IR, optimize it, run it fast.

``ember.compile(fn)`` is the entry point (:mod:`ember.compiler.api`); the IR is in
:mod:`ember.compiler.ir`, tracing in :mod:`ember.compiler.trace`, the passes in
:mod:`ember.compiler.passes` and the executor in :mod:`ember.compiler.executor`.
"""

from . import prims as _prims  # noqa: F401  (registers the compiler's own primitives)
from ._optimized import OptimizedModule
from ._runtime import disable, is_compiling, is_dynamo_compiling, reset
from .api import CompiledFunction, Explanation, compile, explain, trace_graph
from .executor import Program
from .ir import (
    Dim,
    Eqn,
    Graph,
    HyperParam,
    Literal,
    Ratio,
    Seed,
    Var,
    interpret,
    lookup_primitive,
)
from .passes import optimize
from .serialize import load
from .trace import CompileError

__all__ = [
    "CompileError",
    "CompiledFunction",
    "Dim",
    "Eqn",
    "Explanation",
    "Graph",
    "HyperParam",
    "Literal",
    "OptimizedModule",
    "Program",
    "Ratio",
    "Seed",
    "Var",
    "compile",
    "disable",
    "explain",
    "interpret",
    "is_compiling",
    "is_dynamo_compiling",
    "load",
    "lookup_primitive",
    "optimize",
    "reset",
    "trace_graph",
]
