"""The builder the lowerings write into: ONNX node, constant and name bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ..compiler.ir import Dim, Graph, Literal, Ratio, Var
from ._deps import require

__all__ = ["Context", "Unsupported"]

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class Unsupported(Exception):
    """Raised by a lowering for a primitive (or a param value) ONNX export does not handle."""


class Context:
    """ONNX nodes and initializers being built for one graph at one opset.

    Lowerings call :meth:`inp` for the ONNX name of an equation input, :meth:`node` to add
    nodes, :meth:`const` for constants and :meth:`shape` for shape tensors that may hold the
    symbolic batch size.
    """

    def __init__(self, graph: Graph, opset: int):
        self.onnx = require("onnx")
        self.graph = graph
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[int, str] = {}
        self.input_names: dict[int, str] = {}
        self._consts: dict[tuple, str] = {}
        self._dims: dict[Dim, str] = {}
        self._syms: dict[str, str] = {}
        self._count = 0
        self.uses: dict[int, int] = {}
        for e in graph.eqns:
            for v in e.inputs:
                if isinstance(v, Var):
                    self.uses[id(v)] = self.uses.get(id(v), 0) + 1
        for v in graph.outputs:
            if isinstance(v, Var):
                self.uses[id(v)] = self.uses.get(id(v), 0) + 1

    # -- names
    def fresh(self, hint: str = "t") -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def name(self, v: Var) -> str:
        n = self.names.get(id(v))
        if n is None:
            n = self.names[id(v)] = self.fresh("v")
        return n

    def used(self, v: Var) -> bool:
        return self.uses.get(id(v), 0) > 0

    def inp(self, v: Var | Literal, dtype: Any = None) -> str:
        """The ONNX name of an operand; literals become constants of ``dtype`` (a NumPy
        dtype; default: the literal's own), vars are cast to ``dtype`` when it differs."""
        if isinstance(v, Literal):
            value = v.value
            if isinstance(value, Dim):
                return self.cast(self.dim(value, scalar=True), dtype or np.int64)
            if isinstance(value, Ratio):
                return self.ratio(value, dtype or np.float32)
            if value is None:
                raise Unsupported("a None operand")
            if not isinstance(value, np.ndarray) and not np.isscalar(value):
                raise Unsupported(f"a constant operand of type {type(value).__name__}")
            arr = np.asarray(value, dtype=dtype)
            if dtype is None and arr.dtype == np.float64 and not isinstance(value, np.ndarray):
                arr = arr.astype(np.float32)
            return self.const(arr)
        name = self.name(v)
        if dtype is not None and np.dtype(dtype) != v.dtype.np:
            return self.cast(name, dtype)
        return name

    # -- nodes
    def node(self, op: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        """Add a node; returns its output name (a list when ``n_out`` is not 1)."""
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def cast(self, name: str, dtype: Any) -> str:
        to = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.node("Cast", [name], to=to)

    def const(self, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` (shared between equal small constants)."""
        arr = np.array(value, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
        key = None
        if arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            n = self._consts.get(key)
            if n is not None:
                return n
        n = self.fresh("const")
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, n))
        if key is not None:
            self._consts[key] = n
        return n

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(list(values), np.int64).reshape(-1))

    # -- symbolic sizes
    def dim(self, d: Any, scalar: bool = False) -> str:
        """A one-element int64 tensor holding size ``d`` (an int or a symbolic Dim)."""
        if not isinstance(d, Dim):
            return self.const(np.asarray(int(d), np.int64).reshape(() if scalar else (1,)))
        n = self._dims.get(d)
        if n is None:
            # a polynomial in the symbols: sum of coef * product of input sizes, + offset
            # (fractional coefficients divide exactly on the sizes the graph holds at)
            n = None
            for mono, coef in d.terms:
                t = self._symbol(mono[0])
                for s in mono[1:]:
                    t = self.node("Mul", [t, self._symbol(s)])
                c = Fraction(coef)
                if c.numerator != 1:
                    t = self.node("Mul", [t, self.ints([c.numerator])])
                if c.denominator != 1:
                    t = self.node("Div", [t, self.ints([c.denominator])])
                n = t if n is None else self.node("Add", [n, t])
            assert n is not None
            off = Fraction(d.offset)
            if off.denominator != 1:
                raise Unsupported(f"symbolic size {d} has a fractional offset")
            if off:
                n = self.node("Add", [n, self.ints([int(off)])])
            self._dims[d] = n
        if scalar:
            return self.node("Squeeze", [n, self.ints([0])])
        return n

    def _symbol(self, name: str) -> str:
        """A one-element int64 tensor: the size of the input axis that gives symbol ``name``."""
        n = self._syms.get(name)
        if n is None:
            if name not in self.graph.symbols:
                raise Unsupported(f"symbolic size {name} has no input axis")
            i, ax = self.graph.symbols[name]
            src = self.input_names[id(self.graph.inputs[i])]
            n = self._syms[name] = self.node("Shape", [src], start=ax, end=ax + 1)
        return n

    def ratio(self, r: Ratio, dtype: Any) -> str:
        """A scalar ``(a*x + b) / (c*x + d)``, x the batch size or its ``r.fn``, in ``dtype``
        (float64 first, as the Python floats eager mode computes)."""
        x = r.name if isinstance(r.name, Dim) else Dim(r.name)
        b = self.cast(self.dim(x, scalar=True), np.float64)
        if r.fn is not None:  # sqrt(B), log(B)
            b = self.node({"sqrt": "Sqrt", "log": "Log"}[r.fn], [b])

        def affine(k: float, c: float) -> str:
            return self.node("Add", [self.node("Mul", [b, self.const(k, np.float64)]),
                                     self.const(c, np.float64)])  # fmt: skip

        q = self.node("Div", [affine(r.a, r.b), affine(r.c, r.d)])
        return self.cast(q, dtype)

    def shape(self, dims: Sequence[Any]) -> str:
        """A 1-D int64 shape tensor; symbolic entries are computed from the inputs."""
        if not any(isinstance(d, Dim) for d in dims):
            return self.ints([int(d) for d in dims])
        parts = [self.dim(d) for d in dims]
        return self.node("Concat", parts, axis=0)

    # -- helpers several lowerings share
    def reduce(self, op: str, x: str, axes: Sequence[int] | None, keepdims: bool) -> str:
        """``op`` (ReduceSum, ReduceMax, ...) over ``axes`` (None: all): the axes are an
        input from opset 18 on (13 for ReduceSum), an attribute before."""
        k = int(bool(keepdims))
        as_input = op == "ReduceSum" or self.opset >= 18
        if axes is None:
            return self.node(op, [x], keepdims=k)
        if as_input:
            return self.node(op, [x, self.ints(axes)], keepdims=k)
        return self.node(op, [x], keepdims=k, axes=list(axes))

    def slice(
        self,
        x: str,
        starts: Sequence[Any],
        ends: Sequence[Any],
        axes: Sequence[int],
        steps: Sequence[int] | None = None,
    ) -> str:
        ins = [x, self.shape(starts), self.shape(ends), self.ints(axes)]
        if steps is not None:
            ins.append(self.ints(steps))
        return self.node("Slice", ins)
