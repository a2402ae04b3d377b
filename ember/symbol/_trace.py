"""The tracer that turns every op on symbols into a graph equation.

While any symbol is alive, :data:`TRACER` sits on the dispatch hook of
:func:`ember.ops.bind`: a call with a symbolic argument becomes an
:class:`~ember.compiler.ir.Eqn` whose output shapes come from the primitive's shape rule
(``prim.abstract``), so every primitive works without a per-op table; any other call runs
eagerly as usual.

Symbolic output sizes are found by probing: the shape rule runs at the probe sizes and again
with each symbol shifted by one and two; a size that moves with one symbol is affine in it,
one that moves with several is fitted as a multilinear polynomial in them (``T*B``) from the
corners of the unit cube at the probe sizes and checked at one more point.
Symbols used as index arrays become inputs of the compiler's lifted primitive; seeds drawn
by random ops become the IR's per-call seeds; eager tensors met among symbols are state
(trainable parameters, read by reference) or constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtype as dt
from .._tensor import Tensor, _new
from ..compiler.ir import Dim, Eqn, Literal, Var
from ..compiler.prims import InputRef, constant_p, full_p, lifted
from ..ops._core import AbstractValue, _state, bind
from . import _core, _sizes
from ._core import SVar, Symbol, SymbolicError, _Placeholder, wrap
from ._prims import iota_p
from ._sizes import SymInt, at, float_size, has_symint, names_in, probe_of, sym_size, to_ir

__all__ = ["TRACER", "SymSeed", "constant_var", "record", "state_symbol", "symbol_for"]


def dim_of(d: Any, where: str) -> Any:
    """A requested size (int, SymInt) as a Var dim (int or Dim)."""
    return to_ir(d, where) if isinstance(d, SymInt) else int(d)


# -- the tracer ------------------------------------------------------------------------------

# id(eager tensor) -> (weakref, its var, its version when captured)
_constants: dict[int, tuple[Any, SVar, int]] = {}


class _SymbolTracer:
    """Installed as ``_state.tracer`` while symbols are alive (see the module doc)."""

    def process(self, prim: Any, args: Any, params: Any) -> Any:
        for a in args:
            if type(a) is Symbol:
                break
        else:
            if not (
                prim.kind == "creation"
                and (has_symint(params) or _probe_sized(params) or _sizes.opaque_in(params))
            ):
                _state.tracer = None
                try:
                    return bind(prim, args, params)
                finally:
                    if _core._live > 0 and _state.tracer is None:
                        _state.tracer = self
        return record(prim, args, params)


TRACER = _SymbolTracer()


def _probe_sized(params: Any) -> bool:
    """Whether a random creation's ``shape`` holds a probe size as a plain int: the shape
    of an eager tensor made like a symbol (``bernoulli(full_like(x, p))``, whose
    ``input.shape`` lost its SymInts). Drawn eagerly it would be one call's fixed sample;
    recorded, ``record`` makes the size symbolic again and the draw is made per call."""
    shape = params.get("shape") if "seed" in params else None
    return isinstance(shape, (tuple, list)) and any(
        type(d) is int and _sizes.symbol_of_probe(d) is not None for d in shape
    )


def record(prim: Any, args: Any, params: Any) -> Any:
    """Add ``prim(*args, **params)`` to the graph; returns the result symbol(s)."""
    where = prim.name
    if prim.kind == "inplace" and args and not isinstance(args[0], Symbol):
        raise SymbolicError(
            f"{where}: an in-place write of a symbolic value into an eager tensor of shape "
            f"{tuple(args[0].shape)} (a module buffer, such as BatchNorm's running statistics "
            "in training mode?): graphs change state only through function(..., updates=...); "
            "put such modules in eval() mode or keep the state in ember.symbol.shared"
        )
    if prim.kind == "inplace":
        raise SymbolicError(
            f"{where}: in-place ops cannot change symbolic values (they are immutable); write "
            "y = x + 1 instead of x += 1, and change shared variables with "
            "function(..., updates=[(shared, new_value)])"
        )
    if prim.data_dependent:
        raise SymbolicError(
            f"{where}: its output shape depends on the values, which a symbolic graph does not "
            "have; it cannot be part of one"
        )
    if prim.abstract is None:
        raise SymbolicError(f"{where}: the primitive has no shape rule, so it cannot be traced")
    params, extra = _lift(params, len(args), where)
    why = _sizes.opaque_in(params)
    if why is not None:
        raise SymbolicError(_opaque_message(where, why))
    abstract = prim.abstract
    if extra:  # symbols used as index arrays: graph inputs of the lifted primitive
        base, n = prim, len(args)
        args = [*args, *(wrap(v) for v in extra)]
        prim = lifted(base)

        def abstract(*avals: Any, **ps: Any) -> Any:
            return base.abstract(*avals[:n], **_fill_refs(ps, avals))

    names: set[str] = set()
    for a in args:
        if type(a) is Symbol:
            names_in(a._data.shape, names)
    names_in(params, names)
    # sizes that library code computed with NumPy or int() (losing the SymInt) come back
    # here: the probe values are primes above 1000 that real sizes rarely are multiples of
    probes = {probe_of(n): n for n in names} if names else _sizes.by_probe()
    if probes:
        params = _deprobe(params, probes)
        args = [_deprobe(a, probes) if type(a) in (int, np.int64) else a for a in args]
    ins: list[Var | Literal] = []
    avals: list[Any] = []
    for a in args:
        if type(a) is Symbol:
            v = a._svar
            ins.append(v)
            avals.append(AbstractValue(a._data.shape, v.dtype))
        elif isinstance(a, Tensor):
            v = constant_var(a)
            ins.append(v)
            avals.append(AbstractValue(tuple(sym_size(d) for d in v.shape), v.dtype))
        else:
            if type(a) is _SizeFloat:
                lit = a.fdim
            else:
                lit = _float_size(a) if type(a) is float and _sizes.floats else None
            ins.append(Literal(lit if lit is not None else to_ir(a, where, literal=True)))
            avals.append(a if lit is None else _SizeFloat(a, lit))
    if _sizes.leaks:
        what = "; ".join(_sizes.leaks)
        _sizes.leaks.clear()
        _sizes.floats.clear()
        raise SymbolicError(
            f"{where}: a symbolic size was used in Python float arithmetic ({what}) while "
            "building this op, so its result would hold the size of one call; give that "
            "dimension a fixed size"
        )
    out = abstract(*avals, **params)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    ir_params = _seeds(to_ir(params, where))  # first: an opaque size is named as it is
    shapes = _symbolic_shapes(abstract, _fit_n(prim, outs), avals, params, where)
    ovars = [
        SVar(shape, o.dtype if isinstance(o.dtype, dt.DType) else dt.as_dtype(o.dtype))
        for shape, o in zip(shapes, outs)
    ]
    e = Eqn(prim, ins, ir_params, ovars)
    for v in ovars:
        v.producer = e
    syms = tuple(wrap(v) for v in ovars)
    return syms[0] if prim.n_out == 1 else syms


def _opaque_message(where: str, why: str) -> str:
    return (
        f"{where}: the size {why} reaches this op as a plain int, so the graph would keep the "
        "size of one call (only sums and products of symbolic sizes and ints stay symbolic, "
        "not floor division, remainders or powers); give that dimension a fixed size"
    )


def _fit_n(prim: Any, outs: tuple) -> tuple:
    if len(outs) != prim.n_out:
        raise SymbolicError(
            f"{prim.name}: the shape rule gave {len(outs)} outputs, the primitive has {prim.n_out}"
        )
    return outs


class _SizeFloat(float):
    """An operand that is ``float(size)``: its value at other sizes, for probing."""

    fdim: Any

    def __new__(cls, value: float, fdim: Any) -> _SizeFloat:
        obj = float.__new__(cls, value)
        obj.fdim = fdim
        return obj


def _float_size(a: float) -> Any:
    """``a`` as a symbolic float (a ``Ratio``) when it is the value of a ``float(size)`` made
    while building this op (that conversion is then accounted for)."""
    for k, (value, expr) in enumerate(_sizes.floats):
        if value == a and expr is not None:
            del _sizes.floats[k]
            _sizes.leaks.remove(f"float({expr})")
            return float_size(expr)
    return None


def _deprobe(v: Any, probes: dict[int, str]) -> Any:
    """``v`` with plain ints that are multiples of a probe size (or of a product of them)
    made symbolic again."""
    t = type(v)
    if t is int or t is np.int64:
        v = int(v)
        if v > 1000:
            hits = [(p, n) for p, n in probes.items() if v % p == 0]
            if len(hits) == 1:
                p, n = hits[0]
                return SymInt(v, Dim(n, v // p))
            if hits:  # a product of sizes (``T*B`` that NumPy or int() computed)
                prod = int(np.prod([p for p, _n in hits], dtype=object))
                if v % prod == 0:
                    return SymInt(v, Dim.poly({tuple(n for _p, n in hits): v // prod}))
        return v
    if t is tuple or t is list:
        return t(_deprobe(x, probes) for x in v)
    if t is dict:
        return {k: _deprobe(x, probes) for k, x in v.items()}
    return v


class _DrawnSeed(int):
    """A seed drawn from ``gen`` while symbols are being built (a random op's param)."""

    gen: Any


class SymSeed:
    """A random op's seed in a symbolic graph: drawn from ``gen`` at every call (``function``
    numbers them into the IR's ``Seed`` s)."""

    __slots__ = ("gen",)

    def __init__(self, gen: Any):
        self.gen = gen

    def __repr__(self) -> str:
        return "seed"


_seed_hooked = False


def hook_seeds() -> None:
    """Make generators mark the seeds they draw while symbols are built (once per process;
    outside symbol building the hook returns the plain seed)."""
    global _seed_hooked
    if _seed_hooked:
        return
    from .. import random as _random

    orig = _random.Generator.next_seed

    def next_seed(self: Any) -> int:
        v = orig(self)
        if _core._live > 0 and _state.tracer is TRACER:
            s = _DrawnSeed(v)
            s.gen = self
            return s
        return v

    _random.Generator.next_seed = next_seed  # type: ignore[method-assign]
    _seed_hooked = True


def _seeds(params: Any) -> Any:
    t = type(params)
    if t is _DrawnSeed:
        return SymSeed(params.gen)
    if t is tuple or t is list:
        return t(_seeds(x) for x in params)
    if t is dict:
        return {k: _seeds(x) for k, x in params.items()}
    return params


def _lift(params: Any, n_args: int, where: str) -> tuple[Any, list[SVar]]:
    """``params`` with the data of symbols (index arrays) replaced by ``InputRef`` s to extra
    inputs (appended after the ``n_args`` arguments), and those inputs' vars."""
    extra: list[SVar] = []

    def go(v: Any) -> Any:
        t = type(v)
        if t is _Placeholder:
            sv = getattr(v, "_svar", None)
            if sv is None or v._sym_shape is None:
                raise SymbolicError(
                    f"{where}: a value computed in NumPy from a symbol's placeholder is used as "
                    "a parameter; only a symbol itself can be (as an index array)"
                )
            for k, e in enumerate(extra):
                if e is sv:
                    return InputRef(n_args + k)
            extra.append(sv)
            return InputRef(n_args + len(extra) - 1)
        if isinstance(v, Symbol):
            raise SymbolicError(f"{where}: a symbol is used as a static parameter")
        if t is np.ndarray and any(_sizes.symbol_of_probe(int(d)) for d in v.shape):
            # an index array made from a symbolic size (``ember.arange(x.shape[0])``): an
            # extra input computed in the graph (constant_var checks that it counts 0, 1, ...)
            sv = constant_var(_new(v))
            extra.append(sv)
            return InputRef(n_args + len(extra) - 1)
        if t is tuple or t is list:
            return t(go(x) for x in v)
        if t is dict:
            return {k: go(x) for k, x in v.items()}
        return v

    return go(params), extra


def _fill_refs(params: Any, avals: tuple) -> Any:
    """``params`` with each ``InputRef`` replaced by zeros of its input's shape (for shape
    rules, which need index arrays of the right shape, not their values)."""
    t = type(params)
    if t is InputRef:
        a = avals[params.index]
        return np.broadcast_to(np.zeros((), a.dtype.np), tuple(int(d) for d in a.shape))
    if t is tuple or t is list:
        return t(_fill_refs(x, avals) for x in params)
    if t is dict:
        return {k: _fill_refs(x, avals) for k, x in params.items()}
    return params


def _symbolic_shapes(abstract: Any, outs: tuple, avals: list, params: Any, where: str) -> list:
    """The output shapes with each size that follows a symbol as a Dim."""
    bases = [tuple(o.shape) for o in outs]
    names: set[str] = set()
    for a in avals:
        if type(a) is _SizeFloat:
            fname = a.fdim.name  # a symbol's name, or a Dim (a product of sizes)
            names.update(fname.symbols() if isinstance(fname, Dim) else (fname,))
        names_in(tuple(a.shape) if isinstance(a, AbstractValue) else a, names)
    names_in(params, names)
    if not names:
        return [tuple(dim_of(d, where) for d in b) for b in bases]
    env = _sizes.probes()
    cache: dict[tuple, list[tuple[int, ...]]] = {}

    def shapes_at(shift: dict[str, int]) -> list[tuple[int, ...]]:
        key = tuple(sorted(shift.items()))
        r = cache.get(key)
        if r is None:
            e2 = dict(env)
            for n, k in shift.items():
                e2[n] = env[n] + k
            try:
                o = abstract(*[_aval_at(a, e2) for a in avals], **at(params, e2))
            except Exception as exc:
                name = ", ".join(repr(n) for n in sorted(shift))
                raise SymbolicError(
                    f"{where}: cannot keep dimension {name} symbolic: at another size the op "
                    f"fails ({exc}); give it a fixed size"
                ) from exc
            o = tuple(o) if isinstance(o, (tuple, list)) else (o,)
            r = cache[key] = [tuple(int(d) for d in x.shape) for x in o]
        return r

    ordered = sorted(names)
    for name in ordered:  # each symbol moved by one and two
        shapes_at({name: 1})
        shapes_at({name: 2})
    shapes = []
    for k, base in enumerate(bases):
        out = []
        for j, d0 in enumerate(base):
            d0 = int(d0)
            moves = [
                n for n in ordered if shapes_at({n: 1})[k][j] != d0 or shapes_at({n: 2})[k][j] != d0
            ]
            out.append(_fit_dim(shapes_at, k, j, d0, moves, env, where) if moves else d0)
        shapes.append(tuple(out))
    return shapes


def _fit_dim(
    shapes_at: Any, k: int, j: int, d0: int, moves: list[str], env: dict[str, int], where: str
) -> Any:
    """Output ``k``'s dimension ``j`` (``d0`` at the probe sizes) as the multilinear
    polynomial in the symbols ``moves``: fitted from the corners of the unit cube at the probe
    sizes (each symbol moved by 0 or 1), checked with each symbol moved by two and at one more
    point where all of them move (by 2, 3, ...)."""
    if len(moves) > _MAX_FIT:
        raise SymbolicError(
            f"{where}: output dimension {j} depends on {len(moves)} symbolic sizes "
            f"({', '.join(moves)}); at most {_MAX_FIT} per dimension are supported"
        )
    n = len(moves)
    # g[m]: the coefficient of prod(size_i - probe_i for i in m) (Moebius inversion)
    g = []
    for m in range(1 << n):
        g.append(shapes_at({moves[i]: 1 for i in range(n) if m >> i & 1})[k][j] if m else d0)
    for i in range(n):
        for m in range(1 << n):
            if m >> i & 1:
                g[m] -= g[m ^ (1 << i)]
    d: Any = 0
    for m in range(1 << n):
        if g[m]:
            term: Any = g[m]
            for i in range(n):
                if m >> i & 1:
                    term = term * (Dim(moves[i]) - env[moves[i]])
            d = d + term
    checks = [{x: 2} for x in moves]
    if n > 1:
        checks.append({x: 2 + i for i, x in enumerate(moves)})
    for shift in checks:
        pt = {x: env[x] + shift.get(x, 0) for x in moves}
        got = d.eval(pt) if isinstance(d, Dim) else d
        if got != shapes_at(shift)[k][j]:
            which = " and ".join(repr(x) for x in moves)
            raise SymbolicError(
                f"{where}: output dimension {j} is not "
                + (f"affine in {which}" if n == 1 else f"multilinear in {which}")
                + " (only sums and products of symbolic sizes, with no size squared, are "
                "kept symbolic); give that dimension a fixed size"
            )
    return d


_MAX_FIT = 6  # symbols one output dimension may depend on (2**n shape-rule runs)


def _aval_at(a: Any, env: dict[str, int]) -> Any:
    if type(a) is _SizeFloat:
        return a.fdim.eval(env)
    if isinstance(a, AbstractValue):
        return AbstractValue(at(tuple(a.shape), env), a.dtype)
    return at(a, env)


def constant_var(t: Tensor) -> SVar:
    """The graph value of an eager tensor used among symbols: a trainable parameter (a leaf
    that requires grad) is state read by reference, like a shared variable; any other tensor
    is a constant (its value now)."""
    import weakref

    e = _constants.get(id(t))
    if e is not None and e[0]() is t and (e[1].kind == "shared" or e[2] == t._version[0]):
        return e[1]  # the same state, or a constant not written since
    arr = t._data
    why = _sizes.opaque_in(tuple(arr.shape))
    if why is not None:  # ember.zeros(B // 2): made eagerly at the size of one call
        raise SymbolicError(_opaque_message(f"a tensor of shape {arr.shape}", why))
    if t.requires_grad and t._node is None:
        v = SVar(arr.shape, t.dtype, kind="shared", storage=t)
    else:
        shape = tuple(_dim_from_probe(d) for d in arr.shape)
        v = SVar(shape, t.dtype)
        if any(isinstance(d, Dim) for d in shape):
            flat = arr.reshape(-1)
            # the shape came from symbolic sizes: the float arithmetic that made it is fine
            _sizes.leaks.clear()
            _sizes.floats.clear()
            ax = _iota_axis(arr)
            if ax is not None:
                v.producer = Eqn(iota_p, [], {"shape": shape, "axis": ax, "dtype": arr.dtype}, [v])
            elif arr.size and not (flat == flat[0]).all():
                raise SymbolicError(
                    f"a tensor of shape {arr.shape} made from a symbolic size outside ember's "
                    "ops (ember.arange, ember.rand, ...) has varying values; build it with ops "
                    "on the symbol instead"
                )
            else:
                fill = flat[0].item() if arr.size else 0
                v.producer = Eqn(
                    full_p, [], {"shape": shape, "value": fill, "dtype": arr.dtype}, [v]
                )
        else:
            v.producer = Eqn(constant_p, [], {"value": np.array(arr, copy=True)}, [v])
    key = id(t)
    table = _constants  # the callback may run at interpreter exit, after module globals

    _constants[key] = (weakref.ref(t, lambda _r: table.pop(key, None)), v, t._version[0])
    return v


def _iota_axis(arr: np.ndarray) -> int | None:
    """The axis along which ``arr`` counts 0, 1, 2, ... (constant along the others)."""
    for ax, n in enumerate(arr.shape):
        if n > 1 and _sizes.symbol_of_probe(int(n)) is not None:
            shape = [1] * arr.ndim
            shape[ax] = n
            ref = np.arange(n).reshape(shape)
            if np.array_equal(arr, np.broadcast_to(ref, arr.shape)):
                return ax
    return None


def _dim_from_probe(d: int) -> Any:
    name = _sizes.symbol_of_probe(int(d))
    if name is not None:
        return Dim(name)
    d = int(d)
    if d > 1000:  # a product of probe sizes (``ember.zeros(T * B)``)
        names, rest = [], d
        for p, n in _sizes.by_probe().items():
            if rest % p == 0:
                rest //= p
                names.append(n)
        if rest == 1 and len(names) > 1:
            return Dim.poly({tuple(names): 1})
    return d


def state_symbol(t: Any, what: str) -> Symbol:
    """``t`` as a state symbol: a Symbol, or a trainable parameter (a leaf tensor that
    requires grad), which graphs read by reference."""
    if isinstance(t, Symbol):
        return t
    if isinstance(t, Tensor) and t.requires_grad and t._node is None:
        return wrap(constant_var(t))
    raise TypeError(f"{what} is a {type(t).__name__}, not a Symbol or a trainable parameter")


def symbol_for(value: Any) -> SVar:
    """The graph value of a symbol or eager tensor (for givens and update values)."""
    if type(value) is Symbol:
        return value._svar
    if isinstance(value, Tensor):
        return constant_var(value)
    raise TypeError(f"expected a Symbol or Tensor, got {type(value).__name__}")
