"""The graph IR of compiled mode: values, equations, graphs, and a reference interpreter.

The IR is a flat list of equations over typed values, in the spirit of a jaxpr:

- :class:`Var`: a value produced or consumed by the graph: ``shape`` (a tuple of ints and
  symbolic :class:`Dim` s) and ``dtype`` (an ember ``DType``). Vars are compared by identity;
  ``id`` is a small integer used for printing and for stable names when serialized.
- :class:`Literal`: a constant operand (a Python scalar, ``None`` or a NumPy array) passed
  to a primitive as is.
- :class:`Dim`: a symbolic dimension ``coef * name + offset`` (``B``, ``2*B``, ``B+1``);
  it appears in shapes and in equation params (reshape targets and the like) and is resolved
  at run time from :attr:`Graph.symbols` (which input axis gives each symbol's value).
- :class:`Seed`: a param standing for a random seed drawn at run time from an ember
  ``Generator``, in order (``Graph.seed_sources``), so that compiled random ops (dropout) draw
  the same numbers as eager code with the same generator state: the RNG state is an input.
- :class:`Ratio`: a symbolic float ``(a*B + b) / (c*B + d)`` (Python floats computed from the
  batch size: ``1 / B``, BatchNorm's ``n / (n - 1)``); :class:`HyperParam`: a param read at
  run time from a dict (an optimizer's ``group["lr"]``, so schedules need no retrace).
- Index arrays that are data (``x[idx_tensor]``) are inputs of the equation, not constants:
  the primitive is :func:`ember.compiler.prims.lifted` (same name) and the params hold
  :class:`ember.compiler.prims.InputRef` (``in3``: the array of input 3) in their place.
- :class:`Eqn`: ``outputs = prim(inputs, **params)``. ``prim`` is an
  :class:`ember.ops._core.Primitive` (its ``impl`` works on NumPy arrays; its ``abstract``
  gives output shapes). Params are static Python values (ints, floats, tuples, dtypes, ...),
  possibly holding :class:`Dim` / :class:`Seed`. A primitive of kind ``"inplace"`` writes
  into its inputs (``Eqn.mutates`` lists which input positions); equations after it that read
  the same var see the new value, so passes never move or drop such equations.
  A primitive of kind ``"view"`` may return a view of its input (aliasing).
- :class:`Graph`: ``inputs`` (the flattened tensor arguments, in order), ``captured``
  (state read by reference at run time: parameters, buffers, optimizer state; the tensors are
  in ``captured_tensors``, names in ``captured_names``), ``eqns``, ``outputs`` (vars or
  literals), ``grad_effects`` (``(captured index, var or None)``: set ``.grad`` of a captured
  tensor after a run, which is how ``loss.backward()`` inside a graph shows), ``symbols``
  (``name -> (input index, axis)``), ``seed_sources`` (one generator per :class:`Seed`),
  ``input_grad_effects`` (``(input index, var or None)``: ``.grad`` of an input tensor) and
  ``out_tree`` (how the flat outputs nest into the function's result; None: a flat list).

:func:`interpret` is the reference interpreter: it runs a graph primitive by primitive
through each primitive's ``impl`` on NumPy arrays. The fast executor
(:mod:`ember.compiler.executor`) must give the same results.

Example:
    >>> import numpy as np
    >>> import ember
    >>> from ember.ops.elementwise import exp_p
    >>> from ember.compiler.ir import Dim, Eqn, Graph, Var, interpret
    >>> x = Var((Dim("B"), 3), ember.float32)
    >>> y = Var((Dim("B"), 3), ember.float32)
    >>> g = Graph(inputs=[x], eqns=[Eqn(exp_p, [x], {}, [y])], outputs=[y],
    ...           symbols={"B": (0, 0)})
    >>> print(g)
    { lambda ; a:f32[B,3]. let
        b:f32[B,3] = exp a
      in (b) }
    >>> interpret(g, [np.zeros((2, 3), np.float32)])[0].tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from .._dtype import DType, from_numpy_dtype
from ..ops._core import AbstractValue, Primitive

__all__ = [
    "Dim",
    "Eqn",
    "Graph",
    "HyperParam",
    "Literal",
    "Ratio",
    "Seed",
    "Var",
    "interpret",
    "lookup_primitive",
    "resolve",
]

# -- symbolic dimensions ---------------------------------------------------------------------


class Dim:
    """A symbolic size: a polynomial in named sizes (``B``, ``2*B+1``, ``B*s1``, ``s1/2``).

    ``Dim(name, coef, offset)`` is ``coef * name + offset``; :meth:`poly` builds any
    polynomial (monomials of symbol names with rational coefficients, see
    :mod:`ember.compiler._shapes`). ``name`` and ``coef`` are set when the dim is affine in
    one symbol (``None`` otherwise); ``terms`` holds the monomials in every case.

    Example:
        >>> b = Dim("B")
        >>> str(b * 2 + 1), (b * 2 + 1).eval({"B": 4})
        ('2*B+1', 9)
        >>> bt = Dim.poly({("B", "s1"): 1}, 0)
        >>> str(bt), bt.eval({"B": 3, "s1": 5})
        ('B*s1', 15)
    """

    __slots__ = ("coef", "name", "offset", "terms")

    def __init__(self, name: str, coef: Any = 1, offset: Any = 0):
        self.name: str | None = name
        self.coef, self.offset = coef, offset
        self.terms: tuple[tuple[tuple[str, ...], Any], ...] = (((name,), coef),) if coef else ()

    @staticmethod
    def poly(terms: dict[tuple[str, ...], Any], offset: Any = 0) -> Any:
        """The polynomial ``sum(coef * prod(monomial)) + offset`` as a Dim (an int when no
        symbol is left); coefficients may be ``fractions.Fraction`` s."""
        items = tuple(
            sorted(
                ((tuple(sorted(m)), _canon(c)) for m, c in terms.items() if c), key=lambda t: t[0]
            )
        )
        offset = _canon(offset)
        if not items:
            return offset
        if len(items) == 1 and len(items[0][0]) == 1:
            return Dim(items[0][0][0], items[0][1], offset)
        d = Dim.__new__(Dim)
        d.name, d.coef, d.offset, d.terms = None, None, offset, items
        return d

    def symbols(self) -> set[str]:
        """The symbol names this size depends on."""
        return {s for m, _c in self.terms for s in m}

    def eval(self, env: dict[str, int]) -> Any:
        if self.name is not None:
            v = self.coef * env[self.name] + self.offset
        else:
            v = self.offset
            for m, c in self.terms:
                p = c
                for s in m:
                    p = p * env[s]
                v = v + p
        if type(v) is Fraction:
            return int(v) if v.denominator == 1 else v  # off the lattice: the guard rejects it
        return int(v) if isinstance(v, (int, np.integer)) else v

    def _as_poly(self) -> tuple[dict[tuple[str, ...], Any], Any]:
        return dict(self.terms), self.offset

    def __mul__(self, k: Any) -> Any:
        if isinstance(k, Dim):
            a, ao = self._as_poly()
            b, bo = k._as_poly()
            out: dict[tuple[str, ...], Any] = {}
            for ma, ca in [*a.items(), ((), ao)]:
                for mb, cb in [*b.items(), ((), bo)]:
                    m = tuple(sorted(ma + mb))
                    out[m] = out.get(m, 0) + ca * cb
            const = out.pop((), 0)
            return Dim.poly(out, const)
        if self.name is not None:
            return Dim(self.name, self.coef * k, self.offset * k)
        return Dim.poly({m: c * k for m, c in self.terms}, self.offset * k)

    __rmul__ = __mul__

    def __add__(self, k: Any) -> Any:
        if isinstance(k, Dim):
            a, ao = self._as_poly()
            for m, c in k.terms:
                a[m] = a.get(m, 0) + c
            return Dim.poly(a, ao + k.offset)
        if self.name is not None:
            return Dim(self.name, self.coef, self.offset + k)
        return Dim.poly(dict(self.terms), self.offset + k)

    __radd__ = __add__

    def __neg__(self) -> Any:
        return self * -1

    def __sub__(self, k: Any) -> Any:
        return self + (-k)

    def __rsub__(self, k: Any) -> Any:
        return (-self) + k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dim) and (self.terms, self.offset) == (other.terms, other.offset)

    def __hash__(self) -> int:
        return hash((self.terms, self.offset))

    def __str__(self) -> str:
        if self.name is not None:
            s = self.name if self.coef == 1 else f"{_num(self.coef)}*{self.name}"
        else:
            s = ""
            for m, c in self.terms:
                mono = "*".join(m)
                neg = c < 0
                c = abs(c)
                t = mono
                if type(c) is Fraction and c.denominator != 1:
                    t = (
                        f"{mono}/{c.denominator}"
                        if c.numerator == 1
                        else f"{c.numerator}*{mono}/{c.denominator}"
                    )
                elif c != 1:
                    t = f"{_num(c)}*{mono}"
                s += ("-" if neg else ("+" if s else "")) + t
        if self.offset:
            s += f"{'+' if self.offset > 0 else '-'}{_num(abs(self.offset))}"
        return s

    def __repr__(self) -> str:
        return f"Dim({str(self)!r})"


def _canon(c: Any) -> Any:
    if type(c) is Fraction and c.denominator == 1:
        return int(c)
    if isinstance(c, np.integer):
        return int(c)
    return c


class Ratio:
    """A symbolic float ``(a*x + b) / (c*x + d)`` with ``x`` the size ``name`` (or, with
    ``fn``, its ``"sqrt"`` or ``"log"``): Python floats computed from the batch size, such as
    ``1 / B`` (means), ``n / (n - 1)`` (unbiased variances) or ``1 / math.sqrt(T)``.

    Example:
        >>> r = Ratio("B", 1.0, 0.0, 1.0, -1.0)
        >>> r.eval({"B": 5}), str(r)
        (1.25, '(B)/(B-1)')
        >>> r = Ratio("T", 0.0, 1.0, 1.0, 0.0, fn="sqrt")
        >>> r.eval({"T": 16}), str(r)
        (0.25, '(1)/(sqrt(T))')
    """

    __slots__ = ("a", "b", "c", "d", "fn", "known", "name")

    def __init__(
        self,
        name: str,
        a: float,
        b: float,
        c: float,
        d: float,
        known: dict[int, float] | None = None,
        fn: str | None = None,
    ):
        if fn not in RATIO_FNS:
            raise ValueError(f"Ratio: fn must be one of {sorted(RATIO_FNS, key=str)}, got {fn!r}")
        self.name, self.a, self.b, self.c, self.d, self.fn = name, a, b, c, d, fn
        self.known = dict(known or {})  # values seen while tracing, returned bit-exact

    def eval(self, env: dict[str, int]) -> float:
        x = self.name.eval(env) if isinstance(self.name, Dim) else env[self.name]
        v = self.known.get(x)
        if v is not None:
            return v
        if self.fn is not None:
            x = RATIO_FNS[self.fn](x)
        return float((self.a * x + self.b) / (self.c * x + self.d))

    def _key(self) -> tuple:
        return (self.name, self.a, self.b, self.c, self.d, self.fn)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ratio) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        x = f"{self.fn}({self.name})" if self.fn else str(self.name)

        def lin(k: float, c: float) -> str:
            s = "" if k == 0 else (x if k == 1 else f"{k:g}*{x}")
            if c or not s:
                s += f"{'+' if c >= 0 and s else ''}{c:g}"
            return s

        return f"({lin(self.a, self.b)})/({lin(self.c, self.d)})"

    __repr__ = __str__


# the functions of a size a Ratio may apply before its (a*x + b) / (c*x + d)
RATIO_FNS: dict[str | None, Any] = {None: float, "sqrt": math.sqrt, "log": math.log}


class HyperParam:
    """A param read at run time from a dict: an optimizer hyperparameter (``group["lr"]``),
    so that learning-rate schedules apply to a compiled step without retracing.

    Example:
        >>> group = {"lr": 0.1}
        >>> h = HyperParam(group, "lr")
        >>> group["lr"] = 0.05
        >>> resolve(h, {})
        0.05
    """

    __slots__ = ("group", "index", "key")

    def __init__(self, group: dict, key: str, index: int | None = None):
        # index: an entry of a tuple setting (``group["betas"][0]``, which OneCycleLR cycles)
        self.group, self.key, self.index = group, key, index

    def value(self) -> Any:
        v = self.group[self.key]
        return v if self.index is None else v[self.index]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HyperParam)
            and other.group is self.group
            and other.key == self.key
            and other.index == self.index
        )

    def __hash__(self) -> int:
        return hash((id(self.group), self.key, self.index))

    def __repr__(self) -> str:
        return f"group[{self.key!r}]" + ("" if self.index is None else f"[{self.index}]")


def _num(v: Any) -> str:
    if type(v) is Fraction:
        return str(v)
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class Seed:
    """A param drawn at run time: the ``index``-th seed of a graph run (see module doc)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Seed) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("Seed", self.index))

    def __repr__(self) -> str:
        return f"seed{self.index}"


def resolve(value: Any, env: dict[str, int], seeds: Sequence[int] = ()) -> Any:
    """``value`` (a param) with its :class:`Dim` s evaluated in ``env`` and :class:`Seed` s
    replaced by ``seeds``; containers are rebuilt only when something inside changes."""
    t = type(value)
    if t is Dim or t is Ratio:
        return value.eval(env)
    if t is HyperParam:
        return value.value()
    if t is Seed:
        return seeds[value.index]
    if t is tuple or t is list:
        items = [resolve(v, env, seeds) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return t(items)
    if t is dict:
        return {k: resolve(v, env, seeds) for k, v in value.items()}
    if t is slice and is_symbolic(value):
        return slice(resolve(value.start, env), resolve(value.stop, env), resolve(value.step, env))
    return value


def is_symbolic(value: Any) -> bool:
    """Whether a param holds a :class:`Dim` or :class:`Seed` (needs :func:`resolve`)."""
    t = type(value)
    if t is Dim or t is Seed or t is Ratio or t is HyperParam:
        return True
    if t is tuple or t is list:
        return any(is_symbolic(v) for v in value)
    if t is dict:
        return any(is_symbolic(v) for v in value.values())
    if t is slice:
        return any(type(v) is Dim for v in (value.start, value.stop, value.step))
    return False


# -- values and equations --------------------------------------------------------------------

_ids = itertools.count()


class Var:
    """A graph value: ``shape`` (ints and :class:`Dim` s) and ``dtype`` (an ember DType)."""

    __slots__ = ("dtype", "id", "shape")

    def __init__(self, shape: Sequence[Any], dtype: DType):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.id = next(_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def aval(self, env: dict[str, int] | None = None) -> AbstractValue:
        shape = self.shape if env is None else tuple(resolve(d, env) for d in self.shape)
        return AbstractValue(shape, self.dtype)

    def type_str(self) -> str:
        return f"{_short(self.dtype)}[{','.join(str(d) for d in self.shape)}]"

    def __repr__(self) -> str:
        return f"Var({self.type_str()}#{self.id})"


class Literal:
    """A constant operand: a Python scalar, ``None`` or a NumPy array."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        if isinstance(v, np.ndarray):
            if v.size <= 4:
                return f"array({v.tolist()})"
            return f"array<{_short(from_numpy_dtype(v.dtype))}{list(v.shape)}>"
        return repr(v)


class Eqn:
    """``outputs = prim(*inputs, **params)``; ``mutates``: input positions written in place."""

    __slots__ = ("inputs", "mutates", "outputs", "params", "prim")

    def __init__(
        self,
        prim: Primitive,
        inputs: Sequence[Var | Literal],
        params: dict[str, Any],
        outputs: Sequence[Var],
        mutates: Sequence[int] | None = None,
    ):
        self.prim = prim
        self.inputs = list(inputs)
        self.params = dict(params)
        self.outputs = list(outputs)
        if mutates is None:
            mutates = tuple(range(len(self.inputs))) if prim.kind == "inplace" else ()
        self.mutates = tuple(mutates)

    @property
    def effectful(self) -> bool:
        return bool(self.mutates)

    def __repr__(self) -> str:
        return f"Eqn({self.prim.name})"


class Graph:
    """A traced or built program (see the module docstring for the fields)."""

    def __init__(
        self,
        inputs: Sequence[Var] = (),
        eqns: Sequence[Eqn] = (),
        outputs: Sequence[Var | Literal] = (),
        captured: Sequence[Var] = (),
        captured_tensors: Sequence[Any] = (),
        captured_names: Sequence[str] | None = None,
        grad_effects: Sequence[tuple[int, Var | None]] = (),
        symbols: dict[str, tuple[int, int]] | None = None,
        seed_sources: Sequence[Any] = (),
        input_grad_effects: Sequence[tuple[int, Var | None]] = (),
        out_tree: Any = None,
    ):
        self.inputs = list(inputs)
        self.eqns = list(eqns)
        self.outputs = list(outputs)
        self.captured = list(captured)
        self.captured_tensors = list(captured_tensors)
        if captured_names is None:
            captured_names = [f"c{i}" for i in range(len(self.captured))]
        self.captured_names = list(captured_names)
        self.grad_effects = list(grad_effects)
        self.symbols = dict(symbols or {})
        self.seed_sources = list(seed_sources)
        self.input_grad_effects = list(input_grad_effects)
        self.out_tree = out_tree
        # set by tracing when the graph also holds the backward pass of its outputs:
        # (forward equation count, differentiable output indices, wrt keys, gradient vars)
        self.aot: tuple | None = None
        # set by tracing: per flat output, ("in", i) when the function returned argument
        # tensor i itself, ("out", j) when it returned output j's tensor again, else None
        # (a compiled call then returns the same objects, as eager code does)
        self.out_alias: tuple | None = None

    # -- inspection
    def primitives(self) -> list[str]:
        """The primitive names in equation order."""
        return [e.prim.name for e in self.eqns]

    def bind_symbols(self, shapes: Sequence[tuple[int, ...]]) -> dict[str, int]:
        """The value of each symbol given the input shapes."""
        return {s: shapes[i][ax] for s, (i, ax) in self.symbols.items()}

    def copy(self) -> Graph:
        """A shallow copy with its own equation and output lists (what passes rewrite)."""
        g = Graph(
            self.inputs,
            [Eqn(e.prim, e.inputs, e.params, e.outputs, e.mutates) for e in self.eqns],
            self.outputs,
            self.captured,
            self.captured_tensors,
            self.captured_names,
            self.grad_effects,
            self.symbols,
            self.seed_sources,
            self.input_grad_effects,
            self.out_tree,
        )
        g.aot = self.aot
        g.out_alias = self.out_alias
        return g

    def __str__(self) -> str:
        names: dict[int, str] = {}

        def name(v: Var | Literal) -> str:
            if isinstance(v, Literal):
                return repr(v)
            n = names.get(v.id)
            if n is None:
                n = names[v.id] = _var_name(len(names))
            return n

        def decl(v: Var) -> str:
            return f"{name(v)}:{v.type_str()}"

        cap = " ".join(decl(v) for v in self.captured)
        ins = " ".join(decl(v) for v in self.inputs)
        lines = [f"{{ lambda {cap}{' ' if cap else ''}; {ins}. let"]
        for e in self.eqns:
            outs = " ".join(decl(v) for v in e.outputs)
            args = " ".join(name(v) for v in e.inputs)
            ps = " ".join(f"{k}={_param_str(v)}" for k, v in sorted(e.params.items()))
            mark = "!" if e.mutates else ""
            rhs = " ".join(s for s in (f"{e.prim.name}{mark}", args, ps) if s)
            lines.append(f"    {outs} = {rhs}")
        for i, v in self.grad_effects:
            lines.append(f"    {self.captured_names[i]}.grad := {name(v) if v else 'None'}")
        outs = " ".join(name(v) for v in self.outputs)
        lines.append(f"  in ({outs}) }}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Graph: {len(self.inputs)} inputs, {len(self.eqns)} equations>"

    # -- files and pictures (ember.compiler.serialize / ember.compiler.dot)
    meta: Any = None  # what the builder attaches (input names of ember.symbol functions)

    def save(self, path: Any) -> None:
        """Write the graph as JSON plus a raw array file (:mod:`ember.compiler.serialize`)."""
        from .serialize import save

        save(self, path)

    def to_dot(self) -> str:
        """The graph in Graphviz's DOT language (:mod:`ember.compiler.dot`)."""
        from .dot import to_dot

        return to_dot(self)

    def render(self, path: Any, format: str = "svg") -> str:
        """Draw the graph to ``path`` (``"svg"`` or ``"png"``) with Graphviz."""
        from .dot import render

        return render(self, path, format)


def _var_name(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return s


def _short(dtype: DType) -> str:
    n = dtype.name
    for long, short in (("float", "f"), ("uint", "u"), ("int", "i"), ("complex", "c")):
        if n.startswith(long):
            return short + n[len(long) :]
    return {"bool": "bool", "bfloat16": "bf16"}.get(n, n)


def _param_str(v: Any) -> str:
    if isinstance(v, DType):
        return v.name
    if isinstance(v, np.dtype):
        return str(v)
    if isinstance(v, (tuple, list)):
        inner = ",".join(_param_str(x) for x in v)
        return f"({inner}{',' if len(v) == 1 and isinstance(v, tuple) else ''})"
    if isinstance(v, (Dim, Ratio)):
        return str(v)
    if isinstance(v, np.ndarray):
        return repr(Literal(v))
    return repr(v)


# -- primitives known by name ----------------------------------------------------------------

EXTRA_PRIMITIVES: dict[str, Primitive] = {}


def lookup_primitive(name: str) -> Primitive:
    """The primitive called ``name``: a registered one, or one of the compiler's own
    (creation of constants inside graphs, see :mod:`ember.compiler.prims`)."""
    from ..ops._core import REGISTRY

    p = REGISTRY.get(name) or EXTRA_PRIMITIVES.get(name)
    if p is None:
        raise KeyError(f"unknown primitive {name!r}")
    return p


# -- the reference interpreter ---------------------------------------------------------------


def interpret(
    graph: Graph,
    inputs: Sequence[Any],
    captured: Sequence[Any] | None = None,
    seeds: Sequence[int] | None = None,
    env_out: dict[Var, Any] | None = None,
    symbols: dict[str, int] | None = None,
) -> list[Any]:
    """Run ``graph`` primitive by primitive through each primitive's ``impl``.

    ``inputs`` and ``captured`` are NumPy arrays (``captured`` defaults to the data of
    ``graph.captured_tensors``, which in-place equations then update). ``seeds`` gives
    the value of each :class:`Seed` (default: drawn from ``graph.seed_sources``). Returns the
    output arrays; ``env_out``, when given, receives every value (var -> array); ``symbols``
    gives the symbols' values (default: read from the input shapes, see ``Graph.symbols``).
    """
    if len(inputs) != len(graph.inputs):
        raise TypeError(f"graph takes {len(graph.inputs)} inputs, got {len(inputs)}")
    if captured is None:
        captured = [t._data for t in graph.captured_tensors]
    if seeds is None:
        seeds = [g.next_seed() for g in graph.seed_sources]
    env: dict[Var, Any] = {} if env_out is None else env_out
    for v, a in zip(graph.inputs, inputs):
        env[v] = np.asarray(a)
    for v, a in zip(graph.captured, captured):
        env[v] = a
    sym = symbols if symbols is not None else graph.bind_symbols([np.shape(a) for a in inputs])
    for e in graph.eqns:
        args = [env[v] if isinstance(v, Var) else resolve(v.value, sym, seeds) for v in e.inputs]
        params = resolve(e.params, sym, seeds)
        out = e.prim.impl(*args, **params)
        outs = list(out) if e.prim.n_out != 1 else [out]
        for v, o in zip(e.outputs, outs):
            env[v] = o if type(o) is np.ndarray else np.asarray(o)
    return [env[v] if isinstance(v, Var) else resolve(v.value, sym) for v in graph.outputs]
