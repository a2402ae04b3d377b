"""``function``: compile symbolic outputs and updates into one graph and run it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _dtype as dt
from .._tensor import Tensor, _new
from .._tensor_methods import assign_p, clone_p
from ..compiler.executor import Program, ShapeGuardError
from ..compiler.ir import Dim, Eqn, Graph, Literal, Seed, Var
from ..compiler.passes import optimize
from ._core import SVar, Symbol, SymbolicError
from ._grad import ancestors
from ._trace import SymSeed, state_symbol, symbol_for

__all__ = ["Function", "function"]


def _pairs(x: Any, what: str) -> list[tuple[Any, Any]]:
    if x is None:
        return []
    items = list(x.items()) if isinstance(x, dict) else list(x)
    for k, it in enumerate(items):
        if not (isinstance(it, (tuple, list)) and len(it) == 2):
            raise TypeError(f"function: {what}[{k}] must be a (variable, value) pair, got {it!r}")
    return [tuple(it) for it in items]  # type: ignore[misc]


def _same_type(a: Var, b: Var) -> bool:
    return (
        a.dtype is b.dtype
        and len(a.shape) == len(b.shape)
        and all(x == y for x, y in zip(a.shape, b.shape))
    )


def _substitute(roots: list[SVar], givens: dict[int, SVar]) -> list[SVar]:
    """``roots`` rebuilt with the ``givens`` replacements (new equations where needed)."""
    if not givens:
        return roots
    memo: dict[int, SVar] = {}
    done: dict[int, Eqn] = {}

    def sub(v: Any) -> Any:
        if not isinstance(v, SVar):
            return v
        r = memo.get(id(v))
        if r is not None:
            return r
        if id(v) in givens:
            r = sub(givens[id(v)])
        elif v.producer is None:
            r = v
        else:
            e = v.producer
            ne = done.get(id(e))
            if ne is None:
                ins = [sub(x) for x in e.inputs]
                if all(a is b for a, b in zip(ins, e.inputs)):
                    ne = e
                else:
                    outs = [SVar(o.shape, o.dtype) for o in e.outputs]
                    ne = Eqn(e.prim, ins, e.params, outs, e.mutates)
                    for o in outs:
                        o.producer = ne
                done[id(e)] = ne
            r = ne.outputs[e.outputs.index(v)]
        memo[id(v)] = r
        return r

    return [sub(v) for v in roots]


def function(
    inputs: Sequence[Symbol],
    outputs: Any = None,
    updates: Any = None,
    givens: Any = None,
) -> Function:
    """Compile ``outputs`` (a symbol or a list of them) of the symbolic ``inputs`` into a
    callable graph.

    ``updates``: ``(shared, new_value)`` pairs (or a dict): after each call every shared
    variable holds its new value, all computed from the values before the call (as Theano
    does). ``givens``: ``(symbol, replacement)`` pairs substituted into the graph before it
    is compiled. The result runs through the compiler's executor; ``.graph`` is its IR
    (``.graph.save(path)``, ``.graph.to_dot()``).

    Example:
        >>> import ember
        >>> from ember import symbol as S
        >>> x = S.var("x", ())
        >>> acc = S.shared(0.0, "acc")
        >>> f = S.function([x], acc + x, updates=[(acc, acc + x)])
        >>> f(2.0).item(), f(3.0).item(), acc.get_value().item()
        (2.0, 5.0, 5.0)
    """
    if isinstance(inputs, Symbol) or not isinstance(inputs, (list, tuple)):
        raise TypeError("function: inputs must be a list of symbols from ember.symbol.var")
    in_vars: list[SVar] = []
    for k, s in enumerate(inputs):
        if not isinstance(s, Symbol):
            raise TypeError(f"function: inputs[{k}] is a {type(s).__name__}, not a Symbol")
        if s._svar.kind != "input":
            raise SymbolicError(
                f"function: inputs[{k}] ({s._svar.label()}) is not a var (a "
                f"{s._svar.kind} value); inputs are made with ember.symbol.var"
            )
        if any(s._svar is v for v in in_vars):
            raise SymbolicError(f"function: input {s._svar.label()} is listed twice")
        in_vars.append(s._svar)
    single = isinstance(outputs, Symbol)
    outs = [] if outputs is None else ([outputs] if single else list(outputs))
    out_vars = []
    for k, o in enumerate(outs):
        if not isinstance(o, (Symbol, Tensor)):
            raise TypeError(f"function: outputs[{k}] is a {type(o).__name__}, not a Symbol")
        out_vars.append(symbol_for(o))
    given: dict[int, SVar] = {}
    fixed: dict[str, int] = {}  # symbolic sizes that givens make concrete
    for old, new in _pairs(givens, "givens"):
        if not isinstance(old, Symbol):
            raise TypeError(f"function: givens key {old!r} is not a Symbol")
        nv = symbol_for(new if isinstance(new, (Symbol, Tensor)) else _new(np.asarray(new)))
        if not _given_fits(old._svar, nv, fixed):
            raise SymbolicError(
                f"function: givens replaces {old._svar.label()} ({old._svar.type_str()}) with "
                f"a value of type {nv.type_str()}"
            )
        given[id(old._svar)] = nv
    upd: list[tuple[SVar, SVar]] = []
    for tgt, new in _pairs(updates, "updates"):
        if isinstance(tgt, Tensor) and not isinstance(tgt, Symbol) and tgt.requires_grad:
            tgt = state_symbol(tgt, "function: update target")  # a module's parameter
        if not isinstance(tgt, Symbol) or tgt._svar.storage is None:
            raise SymbolicError(
                f"function: update target {tgt!r} is not a shared variable (make state with "
                "ember.symbol.shared)"
            )
        if any(t is tgt._svar for t, _ in upd):
            raise SymbolicError(f"function: {tgt._svar.label()} is updated twice")
        nv = symbol_for(new if isinstance(new, (Symbol, Tensor)) else _new(np.asarray(new)))
        if not _same_type(tgt._svar, nv):
            raise SymbolicError(
                f"function: the update of shared variable {tgt._svar.label()} "
                f"({tgt._svar.type_str()}) has type {nv.type_str()}"
            )
        upd.append((tgt._svar, nv))
    roots = _substitute(out_vars + [v for _, v in upd], given)
    eqns = ancestors(roots)
    if fixed:
        in_vars, roots, eqns = _fix_sizes(in_vars, roots, eqns, fixed)
    out_vars, upd_vals = roots[: len(out_vars)], roots[len(out_vars) :]
    captured: list[SVar] = []
    names = {id(v) for v in in_vars}
    for v in [x for e in eqns for x in e.inputs] + roots:
        if not isinstance(v, SVar) or v.producer is not None:
            continue
        if v.kind == "shared":
            if not any(v is c for c in captured):
                captured.append(v)
        elif id(v) not in names:
            raise SymbolicError(
                f"function: the outputs depend on input {v.label()}, which is not among the "
                f"inputs ({', '.join(repr(x.name) for x in in_vars) or 'none'})"
            )
    for t, _ in upd:
        if not any(t is c for c in captured):
            captured.append(t)
    # outputs and update values must not alias state that the updates then overwrite
    final_outs: list[Var] = []
    for v in out_vars:
        final_outs.append(_copy(v, eqns) if _aliases(v) else v)
    # every new value is computed (or copied) before the first write
    upd_vals = [_copy(v, eqns) if _aliases(v) else v for v in upd_vals]
    for t, v in zip([t for t, _ in upd], upd_vals):
        o = Var(t.shape, t.dtype)
        eqns.append(Eqn(assign_p, [t, v], {}, [o], mutates=(0,)))
    eqns, seed_sources = _number_seeds(eqns)
    symbols: dict[str, tuple[int, int]] = {}
    for i, v in enumerate(in_vars):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim) and d.name not in symbols:
                symbols[d.name] = (i, ax)
    for e in eqns:
        for v in e.outputs:
            for d in v.shape:
                for n in d.symbols() if isinstance(d, Dim) else ():
                    if n not in symbols:
                        raise SymbolicError(
                            f"function: the size {n!r} ({e.prim.name}) is not given by any "
                            "input's shape"
                        )
    g = Graph(
        inputs=in_vars,
        eqns=eqns,
        outputs=final_outs,
        captured=captured,
        captured_tensors=[c.storage for c in captured],
        captured_names=[c.name or f"c{k}" for k, c in enumerate(captured)],
        symbols=symbols,
        seed_sources=seed_sources,
    )
    return Function(g, [v.name or f"input{k}" for k, v in enumerate(in_vars)], single)


def _number_seeds(eqns: list[Eqn]) -> tuple[list[Eqn], list[Any]]:
    """The equations with each random op's ``SymSeed`` as the IR's ``Seed(k)`` (one draw per
    call from its generator; a backward op shares its forward op's seed)."""
    index: dict[int, Seed] = {}
    sources: list[Any] = []

    def go(v: Any) -> Any:
        t = type(v)
        if t is SymSeed:
            s = index.get(id(v))
            if s is None:
                s = index[id(v)] = Seed(len(sources))
                sources.append(v.gen)
            return s
        if t is tuple or t is list:
            return t(go(x) for x in v)
        if t is dict:
            return {k: go(x) for k, x in v.items()}
        return v

    out = []
    for e in eqns:
        before = len(index)
        p = go(e.params)
        seeded = len(index) > before or any(type(x) is Seed for x in _leaves(p))
        out.append(Eqn(e.prim, e.inputs, p, e.outputs, e.mutates) if seeded else e)
    return out, sources


def _leaves(v: Any) -> list[Any]:
    if isinstance(v, (tuple, list)):
        return [y for x in v for y in _leaves(x)]
    if isinstance(v, dict):
        return [y for x in v.values() for y in _leaves(x)]
    return [v]


def _given_fits(old: SVar, new: SVar, fixed: dict[str, int]) -> bool:
    """Whether ``new`` can stand for ``old``: the same dtype and shape, except that a plain
    symbolic size of ``old`` may be a fixed size in ``new`` (recorded in ``fixed``)."""
    if old.dtype is not new.dtype or len(old.shape) != len(new.shape):
        return False
    for a, b in zip(old.shape, new.shape):
        if a == b:
            continue
        if isinstance(a, Dim) and (a.coef, a.offset) == (1, 0) and isinstance(b, int):
            if fixed.setdefault(a.name, b) != b:
                return False
            continue
        return False
    return True


def _fix_sizes(
    in_vars: list[SVar], roots: list[SVar], eqns: list[Eqn], fixed: dict[str, int]
) -> tuple[list[SVar], list[SVar], list[Eqn]]:
    """The graph with the ``fixed`` symbolic sizes replaced by their values."""

    def size(d: Any) -> Any:
        if isinstance(d, Dim) and d.symbols() & fixed.keys():
            terms: dict[tuple[str, ...], Any] = {}
            const = d.offset
            for m, c in d.terms:  # the fixed sizes substituted, the others kept (``T*B``)
                rest = tuple(n for n in m if n not in fixed)
                for n in m:
                    if n in fixed:
                        c = c * fixed[n]
                if rest:
                    terms[rest] = terms.get(rest, 0) + c
                else:
                    const = const + c
            return Dim.poly(terms, const)
        if isinstance(d, (tuple, list)):
            return type(d)(size(x) for x in d)
        if isinstance(d, dict):
            return {k: size(x) for k, x in d.items()}
        return d

    memo: dict[int, Any] = {}

    def fix(v: Any) -> Any:
        if not isinstance(v, SVar):
            return Literal(size(v.value)) if isinstance(v, Literal) else v
        r = memo.get(id(v))
        if r is None:
            shape = size(v.shape)
            r = v if shape == v.shape and v.producer is None else None
            if r is None:
                r = SVar(shape, v.dtype, v.kind, v.name, None, v.storage)
            memo[id(v)] = r
        return r

    new_eqns = []
    for e in eqns:
        ins = [fix(v) for v in e.inputs]
        outs = [fix(v) for v in e.outputs]
        ne = Eqn(e.prim, ins, size(e.params), outs, e.mutates)
        for o in outs:
            o.producer = ne
        new_eqns.append(ne)
    return [fix(v) for v in in_vars], [fix(v) for v in roots], new_eqns


def _aliases(v: SVar) -> bool:
    if v.producer is None:
        return True
    return v.producer.prim.kind == "view"


def _copy(v: Var, eqns: list[Eqn]) -> Var:
    o = SVar(v.shape, v.dtype)
    e = Eqn(clone_p, [v], {}, [o])
    o.producer = e
    eqns.append(e)
    return o


def _nested_ok(a: Any) -> bool:
    try:
        np.asarray(a)
    except (TypeError, ValueError):
        return False
    return True


def _short(a: Any) -> str:
    r = repr(a)
    return r if len(r) <= 40 else r[:37] + "..."


class Function:
    """A compiled symbolic graph: call it with one value per input (in order or by name).

    Inputs are Tensors, NumPy arrays or Python numbers/lists; arrays must have the input's
    dtype (lists and numbers are converted). Returns Tensors (one, or a list as given to
    :func:`function`).
    """

    def __init__(self, graph: Graph, input_names: Sequence[str], single: bool):
        self.graph = graph
        self.input_names = list(input_names)
        self.single = single
        graph.meta = {"input_names": self.input_names, "single_output": single}
        self._program: Program | None = None

    def __repr__(self) -> str:
        ins = ", ".join(self.input_names)
        return f"<ember.symbol.Function ({ins}): {len(self.graph.eqns)} equations>"

    def _args(self, args: tuple, kwargs: dict) -> list[np.ndarray]:
        g = self.graph
        n = len(g.inputs)
        if kwargs:
            args = list(args) + [None] * (n - len(args))  # type: ignore[assignment]
            for k, v in kwargs.items():
                if k not in self.input_names:
                    raise TypeError(
                        f"function has no input named {k!r} (inputs: {self.input_names})"
                    )
                i = self.input_names.index(k)
                if i < len(args) and args[i] is not None and i < n - len(kwargs):
                    raise TypeError(f"function got input {k!r} twice")
                args[i] = v  # type: ignore[index]
            missing = [self.input_names[i] for i, a in enumerate(args) if a is None]
            if missing:
                raise TypeError(f"function: missing inputs {missing}")
        if len(args) != n:
            raise TypeError(
                f"function takes {n} inputs ({', '.join(self.input_names)}), got {len(args)}"
            )
        out = []
        for name, v, a in zip(self.input_names, g.inputs, args):
            if isinstance(a, Symbol):
                raise TypeError(f"input {name!r}: got a Symbol; pass data")
            if isinstance(a, Tensor):
                a = a._data
            if isinstance(a, np.ndarray):
                if a.dtype != v.dtype.np:
                    raise TypeError(
                        f"input {name!r} has dtype {dt.from_numpy_dtype(a.dtype).name}, "
                        f"expected {v.dtype.name}"
                    )
            else:
                kind = np.asarray(a).dtype.kind if _nested_ok(a) else None
                if kind in ("f", "c") and v.dtype.np.kind in "iub":
                    raise TypeError(
                        f"input {name!r} has dtype {v.dtype.name}; got a "
                        f"{'float' if kind == 'f' else 'complex'} value {_short(a)} (an index "
                        "or count must be an integer, it is not rounded)"
                    )
                try:
                    a = np.asarray(a, dtype=v.dtype.np)
                except (TypeError, ValueError) as exc:
                    raise TypeError(
                        f"input {name!r}: cannot convert {type(a).__name__}: {exc}"
                    ) from None
            out.append(a)
        return out

    def _env(self, arrays: list[np.ndarray]) -> dict[str, int]:
        env: dict[str, int] = {}
        src: dict[str, str] = {}
        for name, v, a in zip(self.input_names, self.graph.inputs, arrays):
            if a.ndim != len(v.shape):
                raise ValueError(
                    f"input {name!r} has shape {a.shape} ({a.ndim}-d), expected "
                    f"{v.type_str()} ({len(v.shape)}-d)"
                )
            for ax, (d, n) in enumerate(zip(v.shape, a.shape)):
                if isinstance(d, Dim):
                    if d.name in env and env[d.name] != n:
                        raise ValueError(
                            f"input {name!r} axis {ax} has size {n}, but {d.name!r} is "
                            f"{env[d.name]} (from {src[d.name]})"
                        )
                    env[d.name] = n
                    src[d.name] = f"input {name!r} axis {ax}"
                elif d != n:
                    raise ValueError(
                        f"input {name!r} has shape {a.shape}, expected {v.type_str()} "
                        f"(axis {ax} must be {d})"
                    )
        return env

    @property
    def program(self) -> Program:
        """The executor program: the graph after the compiler's default passes."""
        if self._program is None:
            self._program = Program(optimize(self.graph), reference=self.graph)
        return self._program

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        arrays = self._args(args, kwargs)
        env = self._env(arrays)
        p = self.program
        try:
            p.check_shapes([a.shape for a in arrays])
        except ShapeGuardError as exc:
            raise ValueError(f"the graph does not hold at sizes {env}: {exc}") from None
        outs = p(arrays, env)
        res = [_new(o if isinstance(o, np.ndarray) else np.asarray(o)) for o in outs]
        return res[0] if self.single else res

    def list_arguments(self) -> list[str]:
        """The input names in call order (MXNet's ``Symbol.list_arguments``; shared
        variables are not arguments: see :meth:`shared_values`).

        Example:
            >>> import ember.symbol as S
            >>> x, y = S.var("x", ("n", 3)), S.var("y", ("n",))
            >>> S.function([x, y], (x.sum(1) - y).abs().mean()).list_arguments()
            ['x', 'y']
        """
        return list(self.input_names)

    def infer_shape(self, **shapes: Sequence[int]) -> tuple[list, list, list]:
        """The shapes of the inputs, the outputs and the shared variables, given the shapes of
        some inputs by name (MXNet's ``infer_shape``): each symbolic size is read from the
        inputs given; a size that none of them fixes is a ValueError naming it.

        Example:
            >>> import ember.symbol as S
            >>> import numpy as np
            >>> x = S.var("x", ("n", 4))
            >>> w = S.shared(np.ones((4, 2), np.float32), "w")
            >>> f = S.function([x], x @ w)
            >>> f.infer_shape(x=(10, 4))
            ([(10, 4)], [(10, 2)], [(4, 2)])
        """
        g = self.graph
        env: dict[str, int] = {}
        src: dict[str, str] = {}
        for name, shape in shapes.items():
            if name not in self.input_names:
                raise ValueError(
                    f"infer_shape: no input named {name!r} (inputs: {self.input_names})"
                )
            v = g.inputs[self.input_names.index(name)]
            shape = tuple(int(n) for n in shape)
            if len(shape) != len(v.shape):
                raise ValueError(
                    f"infer_shape: input {name!r} has {len(v.shape)} axes ({v.type_str()}), "
                    f"got the shape {shape}"
                )
            for ax, (d, n) in enumerate(zip(v.shape, shape)):
                if isinstance(d, Dim) and d.name is not None and (d.coef, d.offset) == (1, 0):
                    if env.setdefault(d.name, n) != n:
                        raise ValueError(
                            f"infer_shape: input {name!r} axis {ax} has size {n}, but "
                            f"{d.name!r} is {env[d.name]} (from {src[d.name]})"
                        )
                    src.setdefault(d.name, f"input {name!r} axis {ax}")
                elif not isinstance(d, Dim) and d != n:
                    raise ValueError(f"infer_shape: input {name!r} axis {ax} must be {d}, got {n}")

        def sized(v: Any, what: str) -> tuple:
            if isinstance(v, Literal):
                return tuple(np.shape(v.value))
            missing = sorted(
                {n for d in v.shape if isinstance(d, Dim) for n in d.symbols() if n not in env}
            )
            if missing:
                raise ValueError(
                    f"infer_shape: the size {missing[0]!r} of {what} is not fixed by the "
                    f"shapes given (give an input that has it)"
                )
            return tuple(int(n) for n in v.aval(env).shape)

        ins = [sized(v, f"input {n!r}") for n, v in zip(self.input_names, g.inputs)]
        outs = [sized(v, f"output {i}") for i, v in enumerate(g.outputs)]
        shared = [tuple(t.shape) for t in g.captured_tensors]
        return ins, outs, shared

    def shared_values(self) -> dict[str, Tensor]:
        """The shared variables (captured state) of the graph by name: their storage."""
        g = self.graph
        return dict(zip(g.captured_names, g.captured_tensors))

    def save(self, path: Any) -> None:
        """Write the graph (and the current values of its shared variables) to ``path``."""
        self.graph.save(path)
