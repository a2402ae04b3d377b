"""Tracing: run a Python function with a tracer installed and record every bind as an equation.

Design (record-while-running, as ``torch.jit.trace``): the tracer sits on the dispatch hook of
:func:`ember.ops.bind`; every call is executed eagerly (so Python code sees real values,
autograd records its graph as usual and ``loss.backward()`` / ``optimizer.step()`` run their
binds through the tracer too) and appended to the graph as an equation. A tensor the tracer has
not seen produced is *captured*: read by reference at run time (parameters, buffers, optimizer
state). ``.grad`` assignments are logged (as graph effects), random seeds drawn from ember
generators become :class:`~ember.compiler.ir.Seed` params, and Python reads of tensor values
(``bool(t)``, ``t.item()``...) are graph breaks.

A trace is a *dry run*: afterwards every captured tensor, ``.grad`` and generator state is
rolled back, so the caller decides what really happens. :func:`unify` merges two traces taken
at different batch sizes into one graph whose batch dimension is a symbol, and classifies
captured tensors: the same object in both traces is state; a fresh one each time (made by
NumPy-level constructors) becomes a ``full``/``constant`` equation.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import numpy as np

from .. import _creation
from .. import random as _random
from .._dtype import from_numpy_dtype
from .._tensor import Tensor, _new
from ..autograd import engine as _engine
from ..ops._core import _state, bind, bind_values
from ._abstract import fake_outputs
from .ir import Dim, Eqn, Graph, HyperParam, Literal, Ratio, Seed, Var
from .prims import InputRef, constant_p, full_p, lifted

__all__ = ["CompileError", "Trace", "Tracer", "trace", "unify"]

_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CompileError(RuntimeError):
    """A function cannot be compiled into one graph (raised under ``fullgraph=True``)."""


def user_frame() -> str:
    """``file:line`` of the innermost frame outside the ember package (the user's code)."""
    f: Any = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_EMBER_DIR + os.sep) and "contextlib" not in fn:
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


class _SeedInt(int):
    """A seed drawn during a trace (an int that remembers its draw index)."""

    index: int


class Trace:
    """What one traced call produced (before unification into a :class:`Graph`)."""

    def __init__(self) -> None:
        self.inputs: list[Var] = []
        self.eqns: list[Eqn] = []
        # (tensor, var, snapshot, made by a constructor)
        self.captured: list[tuple[Tensor, Var, np.ndarray, bool]] = []
        self.outputs: list[Var | Literal] = []
        self.out_tree: Any = None
        self.grad_effects: list[tuple[Any, Var | None]] = []  # (("cap"|"in", i), var)
        self.seeds: list[Any] = []  # the generator of each seed, in draw order
        self.breaks: list[tuple[str, str]] = []  # (what, file:line)
        self.modules: list[Any] = []  # modules called (their .training is guarded)
        self.optimizers: list[Any] = []  # optimizers stepped (their hyperparameters too)
        self.dynamic_hyper: set[tuple[int, str]] = set()  # (id(group), key) read at run time
        self.output_requires_grad = False
        # autograd through the graph: (forward equation count, differentiable output indices,
        # wrt keys ("in"|"cap", index), gradient var per wrt or None), see _trace_backward
        self.aot: tuple | None = None


class Tracer:
    """The object installed as ``_state.tracer`` while a function is traced."""

    def __init__(self, fullgraph: bool = False):
        self.fullgraph = fullgraph
        self.t = Trace()
        self.tmap: dict[int, tuple[Any, Var]] = {}  # id(tensor) -> (tensor, var)
        self.amap: dict[int, tuple[Any, Var]] = {}  # id(array) -> (array, var)
        self.versions: list[tuple[list, int]] = []
        self.grad_log: dict[int, tuple[Tensor, Any]] = {}  # first .grad write: old value
        self.rng_log: dict[int, tuple[Any, dict]] = {}
        self.made: dict[int, Any] = {}  # tensors made by constructors (ember.zeros, tensor...)
        self.hyper: dict[tuple[int, str], tuple[dict, Any]] = {}  # (id(float), key) -> group
        # module attributes assigned (first time): (id, name) -> (module, name, old, file:line)
        self.attr_log: dict[tuple[int, str], tuple[Any, str, Any, str]] = {}

    # -- the bind hook
    def process(self, prim, args, params):
        if prim.data_dependent:  # output shape follows the values: no static graph
            self.value_read(f"{prim.name} (its output shape depends on the values)")
        ins: list[Var | Literal] = []
        for a in args:
            ins.append(self.var_of(a) if isinstance(a, Tensor) else Literal(a))
        _state.tracer = None
        try:
            # a dry run: heavy kernels' values are never read, so they need not run
            fake = fake_outputs(prim, args, params)
            out = (
                bind(prim, args, params) if fake is None else bind_values(prim, args, params, fake)
            )
        finally:
            _state.tracer = self
        outs = (out,) if prim.n_out == 1 else tuple(out)
        if params and _has_array(params):  # index arrays taken from tensors: graph values
            extra: list[Var] = []
            params = self._lift(params, len(ins), extra)
            if extra:
                ins.extend(extra)
                prim = lifted(prim)
        ovars = [self.define(o) for o in outs]
        if self.t.seeds:
            params = _seed_params(params)
        if self.hyper and params:
            params = self._hyper_params(params)
        self.t.eqns.append(Eqn(prim, ins, params, ovars))
        return out

    def optimizer_step(self, opt: Any) -> None:
        if all(o is not opt for o in self.t.optimizers):
            self.t.optimizers.append(opt)
        for group in opt.param_groups:
            for k, v in group.items():
                if type(v) is float:
                    self.hyper[(id(v), k)] = (group, v)

    def _hyper_params(self, params):
        # a float param that IS the group's value under the same name: read at run time
        out = None
        for k, v in params.items():
            if type(v) is float:
                e = self.hyper.get((id(v), k))
                if e is not None and e[1] is v and e[0].get(k) is v:
                    if out is None:
                        out = dict(params)
                    out[k] = HyperParam(e[0], k)
                    self.t.dynamic_hyper.add((id(e[0]), k))
        return params if out is None else out

    def _lift(self, v, base: int, extra: list[Var]):
        t = type(v)
        if t is np.ndarray:
            e = self.amap.get(id(v))
            if e is not None and e[0] is v:
                extra.append(e[1])
                return InputRef(base + len(extra) - 1)
            return v
        if t is tuple or t is list:
            return t(self._lift(x, base, extra) for x in v)
        if t is dict:
            return {k: self._lift(x, base, extra) for k, x in v.items()}
        return v

    def var_of(self, t: Tensor) -> Var:
        e = self.tmap.get(id(t))
        if e is not None and e[0] is t:
            return e[1]
        arr = t._data
        e = self.amap.get(id(arr))
        if e is not None and e[0] is arr:  # another Tensor around a known array (detach)
            self.tmap[id(t)] = (t, e[1])
            return e[1]
        v = Var(arr.shape, from_numpy_dtype(arr.dtype))
        made = self.made.get(id(t)) is t
        self.t.captured.append((t, v, arr.copy(), made))
        self.versions.append((t._version, t._version[0]))
        self.tmap[id(t)] = (t, v)
        self.amap[id(arr)] = (arr, v)
        return v

    def define(self, o: Tensor) -> Var:
        arr = o._data
        v = Var(arr.shape, from_numpy_dtype(arr.dtype))
        self.tmap[id(o)] = (o, v)
        self.amap[id(arr)] = (arr, v)
        return v

    def input(self, t: Tensor) -> Var:
        v = Var(t._data.shape, from_numpy_dtype(t._data.dtype))
        self.tmap[id(t)] = (t, v)
        self.amap[id(t._data)] = (t._data, v)
        self.t.inputs.append(v)
        return v

    # -- events from the patched Tensor / Generator / Module methods
    def value_read(self, what: str) -> None:
        where = user_frame()
        self.t.breaks.append((what, where))
        if self.fullgraph:
            raise CompileError(
                f"{where}: {what}: a tensor's value is needed in Python (data-dependent "
                "control flow or shapes), which cannot be part of one graph (fullgraph=True); "
                "compute it with tensor ops (e.g. ember.where) or move it out of the compiled "
                "function"
            )

    def attr_set(self, m: Any, name: str) -> None:
        key = (id(m), name)
        if key not in self.attr_log:
            self.attr_log[key] = (m, name, _attr_slot(m, name), user_frame())

    def attr_effects(self) -> None:
        """A module attribute left holding another tensor (``self.count = self.count + 1``,
        ``self.last = attn``) is an effect the graph cannot replay: a graph break at the
        assignment. Plain Python values (a Keras layer's recorded output shape) are not
        tensors of the graph and stay as the trace left them."""
        for m, name, old, where in self.attr_log.values():
            new = _attr_slot(m, name)
            if _holds_tensor(new[1]) and not _same_slot(old, new):
                what = f"assignment to module attribute {type(m).__name__}.{name}"
                self.t.breaks.append((what, where))
                if self.fullgraph:
                    raise CompileError(
                        f"{where}: {what}: a module's state is replaced by a traced value, "
                        "which one graph cannot do (fullgraph=True); update it in place "
                        "(e.g. buf.copy_(...)) or move it out of the compiled function"
                    )

    def constructed(self, t: Tensor) -> None:
        self.made[id(t)] = t

    def grad_set(self, t: Tensor, old: Any) -> None:
        if id(t) not in self.grad_log:
            self.grad_log[id(t)] = (t, old)

    def seed_drawn(self, gen: Any, value: int) -> int:
        s = _SeedInt(value)
        s.index = len(self.t.seeds)
        self.t.seeds.append(gen)
        return s

    # -- end of trace
    def rollback(self) -> None:
        for t, _v, snap, _m in self.t.captured:
            if t._data.shape == snap.shape:
                np.copyto(t._data, snap)
        for ver, n in self.versions:
            ver[0] = n
        for t, old in self.grad_log.values():
            t.__dict__["grad"] = old
        for gen, st in self.rng_log.values():
            gen.set_state(st)
        for m, name, old, _where in self.attr_log.values():
            if _holds_tensor(_attr_slot(m, name)[1]):  # (a traced tensor must not stay)
                _restore_slot(m, name, old)


_SLOTS = ("_parameters", "_buffers", "_modules")


def _holds_tensor(v: Any) -> bool:
    """``v`` is a Tensor or a list, tuple or dict with one inside."""
    if isinstance(v, Tensor):
        return True
    if isinstance(v, (list, tuple)):
        return any(_holds_tensor(x) for x in v)
    if isinstance(v, dict):
        return any(_holds_tensor(x) for x in v.values())
    return False


def _attr_slot(m: Any, name: str) -> tuple[str | None, Any]:
    """Where a module keeps attribute ``name`` and its value."""
    d = m.__dict__
    for key in _SLOTS:
        sub = d.get(key)
        if sub is not None and name in sub:
            return key, sub[name]
    if name in d:
        return "__dict__", d[name]
    return None, None


def _same_slot(a: tuple[str | None, Any], b: tuple[str | None, Any]) -> bool:
    if a[0] != b[0]:
        return False
    x, y = a[1], b[1]
    if x is y:
        return True
    try:
        return type(x) is type(y) and type(x) in (int, float, bool, str) and bool(x == y)
    except Exception:  # noqa: BLE001
        return False


def _restore_slot(m: Any, name: str, old: tuple[str | None, Any]) -> None:
    d = m.__dict__
    for slot in _SLOTS:
        sub = d.get(slot)
        if sub is not None:
            sub.pop(name, None)
    if name not in _SLOTS:
        d.pop(name, None)
    key, v = old
    if key == "__dict__":
        d[name] = v
    elif key is not None:
        d[key][name] = v


def _has_array(v) -> bool:
    t = type(v)
    if t is np.ndarray:
        return True
    if t is tuple or t is list:
        return any(_has_array(x) for x in v)
    if t is dict:
        return any(_has_array(x) for x in v.values())
    return False


def _seed_params(params):
    t = type(params)
    if t is _SeedInt:
        return Seed(params.index)
    if t is dict:
        return {k: _seed_params(v) for k, v in params.items()}
    if t is tuple or t is list:
        return t(_seed_params(v) for v in params)
    return params


# -- patches installed for the duration of a trace -------------------------------------------


def _grad_get(self):
    return self.__dict__.get("grad")


def _grad_set(self, value):
    tr = _state.tracer
    if tr is not None:
        tr.grad_set(self, self.__dict__.get("grad"))
    self.__dict__["grad"] = value


def _reader(name, orig):
    def method(self, *a, **k):
        tr = _state.tracer
        if tr is not None:
            tr.value_read(f"Tensor.{name}()" if not name.startswith("__") else f"{name}")
        return orig(self, *a, **k)

    method.__name__ = name
    return method


_READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy")


@contextlib.contextmanager
def _installed(tracer: Tracer):
    from ..nn.modules.module import Module

    missing = object()
    saved = {n: Tensor.__dict__.get(n, missing) for n in (*_READS, "grad")}
    for n in _READS:
        setattr(Tensor, n, _reader(n, getattr(Tensor, n)))
    Tensor.grad = property(_grad_get, _grad_set)  # type: ignore[assignment]
    from ..optim.optimizer import Optimizer

    gen_cls = _random.Generator
    orig_seed = gen_cls.next_seed
    orig_call = Module.__call__
    orig_setattr = Module.__setattr__
    orig_step = Optimizer.__dict__.get("_run_step")

    def run_step(self, closure):
        tr = _state.tracer
        if tr is not None:
            tr.optimizer_step(self)
        return orig_step(self, closure)

    def next_seed(self):
        tr = _state.tracer
        if tr is None:
            return orig_seed(self)
        if id(self) not in tr.rng_log:
            tr.rng_log[id(self)] = (self, self.get_state())
        return tr.seed_drawn(self, orig_seed(self))

    def call(self, *args, **kwargs):
        tr = _state.tracer
        if tr is not None:
            tr.t.modules.append(self)
        return orig_call(self, *args, **kwargs)

    def setattr_(self, name, value):
        tr = _state.tracer
        if tr is not None:
            tr.attr_set(self, name)
        return orig_setattr(self, name, value)

    def made(arr):
        t = _new(arr)
        tr = _state.tracer
        if tr is not None:
            tr.constructed(t)
        return t

    gen_cls.next_seed = next_seed  # type: ignore[method-assign]
    Module.__call__ = call  # type: ignore[method-assign]
    Module.__setattr__ = setattr_  # type: ignore[method-assign]
    # (optimizers are seen through their step runner; without one, hyperparameters are
    # simply baked into the graph)
    has_step = "_run_step" in Optimizer.__dict__
    if has_step:
        Optimizer._run_step = run_step  # type: ignore[method-assign]
    _creation._new = made
    _engine._new = made
    prev = _state.tracer
    _state.tracer = tracer
    try:
        yield
    finally:
        _state.tracer = prev
        _creation._new = _new
        _engine._new = _new
        gen_cls.next_seed = orig_seed  # type: ignore[method-assign]
        Module.__call__ = orig_call  # type: ignore[method-assign]
        Module.__setattr__ = orig_setattr  # type: ignore[method-assign]
        if has_step:
            Optimizer._run_step = orig_step  # type: ignore[method-assign,assignment]
        for n, v in saved.items():
            if v is missing:
                delattr(Tensor, n)
            else:
                setattr(Tensor, n, v)


# -- pytrees (tuples, lists, dicts of tensors and Python values) -----------------------------


def flatten(x: Any) -> tuple[list[Any], Any]:
    """Leaves and structure of nested tuples/lists/dicts."""
    leaves: list[Any] = []

    def go(v):
        if isinstance(v, (tuple, list)) and not isinstance(v, Tensor):
            return (type(v), tuple(go(i) for i in v))
        if isinstance(v, dict):
            return (dict, tuple((k, go(i)) for k, i in v.items()))
        leaves.append(v)
        return None

    return leaves, go(x)


def unflatten(tree: Any, leaves: list[Any]) -> Any:
    it = iter(leaves)

    def go(t):
        if t is None:
            return next(it)
        kind, items = t
        if kind is dict:
            return {k: go(i) for k, i in items}
        vals = [go(i) for i in items]
        if kind is tuple or kind is list:
            return kind(vals)
        return kind(*vals)  # namedtuple

    return go(tree)


# -- one trace -------------------------------------------------------------------------------


def trace(fn, args: tuple, kwargs: dict, fullgraph: bool = False) -> Trace:
    """Trace ``fn(*args, **kwargs)`` as a dry run (all effects rolled back afterwards).

    The tensors among ``args``/``kwargs`` become the graph inputs, in flattening order.

    Example:
        >>> import ember
        >>> t = trace(lambda x: (x * 2).exp(), (ember.ones(3),), {})
        >>> [e.prim.name for e in t.eqns]
        ['mul', 'exp']
    """
    tracer = Tracer(fullgraph)
    leaves, _tree = flatten((args, kwargs))
    # (kernels on the zeros of skipped ones may divide by zero: nobody reads those values)
    with _installed(tracer), np.errstate(all="ignore"):
        try:
            for a in leaves:
                if isinstance(a, Tensor):
                    tracer.input(a)
            out = fn(*args, **kwargs)
            outs, tracer.t.out_tree = flatten(out)
            res: list[Var | Literal] = []
            for o in outs:
                if isinstance(o, Tensor):
                    res.append(tracer.var_of(o))
                    if o.requires_grad and o._node is not None:
                        tracer.t.output_requires_grad = True
                else:
                    res.append(Literal(o))
            tracer.t.outputs = res
            tracer.attr_effects()
            _grad_effects(tracer, leaves)
            if tracer.t.output_requires_grad and not tracer.grad_log:
                _trace_backward(tracer, leaves, outs)
        finally:
            tracer.rollback()
    return tracer.t


def _trace_backward(tracer: Tracer, leaves: list[Any], outs: list[Any]) -> None:
    """Trace the backward pass of the outputs that require grad, with cotangents as extra
    graph inputs, so that a compiled call can be differentiated (AOT autograd)."""
    from ..autograd import grad as _grad

    diff = [
        (k, o)
        for k, o in enumerate(outs)
        if isinstance(o, Tensor) and o.requires_grad and o._node is not None
    ]
    wrt, keys = [], []
    for i, a in enumerate(x for x in leaves if isinstance(x, Tensor)):
        if a.requires_grad and a._node is None:
            wrt.append(a)
            keys.append(("in", i))
    for ci, (t, *_rest) in enumerate(tracer.t.captured):
        if t.requires_grad and t._node is None:
            wrt.append(t)
            keys.append(("cap", ci))
    if not wrt:
        return
    n_fwd = len(tracer.t.eqns)
    cts = []
    for _k, o in diff:
        ct = _new(np.ones_like(o._data))
        tracer.input(ct)
        cts.append(ct)
    grads = _grad([o for _k, o in diff], wrt, grad_outputs=cts, allow_unused=True)
    gvars = [tracer.var_of(g) if isinstance(g, Tensor) else None for g in grads]
    tracer.t.aot = (n_fwd, [k for k, _o in diff], keys, gvars)


def _grad_effects(tracer: Tracer, leaves: list[Any]) -> None:
    cap = {id(t): i for i, (t, *_rest) in enumerate(tracer.t.captured)}
    inp = {id(a): i for i, a in enumerate(x for x in leaves if isinstance(x, Tensor))}
    for t, _old in tracer.grad_log.values():
        g = t.__dict__.get("grad")
        v = tracer.var_of(g) if isinstance(g, Tensor) else None
        if id(t) in cap:
            tracer.t.grad_effects.append((("cap", cap[id(t)]), v))
        elif id(t) in inp:
            tracer.t.grad_effects.append((("in", inp[id(t)]), v))
    # var_of above may have captured more tensors (a .grad that is state): index them now
    tracer.t.grad_effects = [
        (k, v) for k, v in tracer.t.grad_effects if k[0] == "in" or k[1] < len(tracer.t.captured)
    ]


# -- unification of traces ------------------------------------------------------------------


class _Mismatch(Exception):
    pass


def _affine(a1, a2, b1, b2, what):
    if a1 == a2:
        return a1
    if b1 == b2:
        raise _Mismatch(f"{what}: {a1} vs {a2} at the same batch size")
    k, r = divmod(a2 - a1, b2 - b1)
    if r:
        raise _Mismatch(f"{what}: {a1} -> {a2} is not affine in the batch size")
    c = a1 - k * b1
    return Dim("B", k, c) if k else c


class _BatchFit:
    """How two traces at batch sizes ``b1``, ``b2`` unify ints (affine in ``B``) and floats
    (:class:`FloatPoints`, fitted later by :func:`fit_floats`)."""

    def __init__(self, b1: int, b2: int):
        self.b1, self.b2 = b1, b2

    def fit_int(self, vals: list[int], what: str) -> Any:
        return _affine(vals[0], vals[1], self.b1, self.b2, what)

    def fit_float(self, vals: list[float], what: str) -> Any:
        v1, v2 = vals
        if self.b1 != self.b2 and _FLOATS is not None:  # fitted as a function of the batch later
            fp = FloatPoints([(self.b1, v1), (self.b2, v2)], what)
            _FLOATS.append(fp)
            return fp
        raise _Mismatch(f"{what}: {v1!r} vs {v2!r} (a Python float that changes)")


def _all_same(vs: list[Any]) -> bool:
    return all(v == vs[0] for v in vs[1:])


def _unify_value(vs: list[Any], fit: Any, what: str) -> Any:
    t = type(vs[0])
    if any(type(v) is not t for v in vs[1:]):
        raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")
    if t is int or t is np.int64:
        return fit.fit_int([int(v) for v in vs], what)
    if t is tuple or t is list:
        if any(len(v) != len(vs[0]) for v in vs):
            raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")
        return t([_unify_value(list(items), fit, what) for items in zip(*vs)])
    if t is dict:
        if any(v.keys() != vs[0].keys() for v in vs):
            raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")
        return {k: _unify_value([v[k] for v in vs], fit, f"{what}[{k}]") for k in vs[0]}
    if t is slice:
        parts = [
            _unify_value([getattr(v, f) for v in vs], fit, what) for f in ("start", "stop", "step")
        ]
        return slice(*parts)
    if t is np.ndarray:
        v1 = vs[0]
        if all(
            v.shape == v1.shape and v.dtype == v1.dtype and np.array_equal(v, v1) for v in vs[1:]
        ):
            return v1
        raise _Mismatch(f"{what}: a constant array differs between calls")
    if t is float:
        if all(v == vs[0] or (np.isnan(v) and np.isnan(vs[0])) for v in vs[1:]):
            return vs[0]
        return fit.fit_float(vs, what)
    if _all_same(vs):
        return vs[0]
    raise _Mismatch(f"{what}: {' vs '.join(repr(v) for v in vs)}")


def _same_scalar(a, b) -> bool:
    if a == b:
        return True
    try:
        return bool(np.isnan(a) and np.isnan(b))
    except TypeError:
        return False


def _uniform(a: np.ndarray):
    if a.size == 0:
        return True, 0
    f = a.reshape(-1)[0]
    if (a == f).all():
        return True, f.item()
    return False, None


class FloatPoints:
    """A Python float param that changed with the batch size: its values so far."""

    __slots__ = ("points", "what")

    def __init__(self, points: list[tuple[int, float]], what: str):
        self.points, self.what = points, what


_FLOATS: list[FloatPoints] | None = None


def unify_floats(t1: Trace, t2: Trace, b1: int, b2: int) -> tuple[Graph | None, str, list]:
    """:func:`unify`, letting Python floats vary with the batch size: they come back as
    :class:`FloatPoints` (in the graph and in the returned list) for :func:`fit_floats`."""
    global _FLOATS
    _FLOATS = []
    try:
        g, why = unify(t1, t2, b1, b2)
        return g, why, _FLOATS
    finally:
        _FLOATS = None


def fit_floats(graph: Graph, floats: list, more: list[list]) -> str:
    """Replace each :class:`FloatPoints` of ``graph`` by a :class:`~.ir.Ratio` of the batch
    size fitted through three points and checked on a fourth; ``more``: the float lists of
    unifications with traces at other batch sizes. Returns "" or why it does not fit."""
    for extra in more:
        if len(extra) != len(floats):
            return "floats that change with the batch size differ between calls"
        for fp, ex in zip(floats, extra):
            fp.points.append(ex.points[1])
    fitted: dict[int, Ratio] = {}
    for fp in floats:
        r = _fit_ratio(fp.points)
        if r is None:
            return f"{fp.what}: a Python float that changes with the batch size in no simple way"
        fitted[id(fp)] = r

    def sub(v):
        t = type(v)
        if t is FloatPoints:
            return fitted[id(v)]
        if t is tuple or t is list:
            return t(sub(x) for x in v)
        if t is dict:
            return {k: sub(x) for k, x in v.items()}
        return v

    for e in graph.eqns:
        e.params = sub(e.params)
        e.inputs = [Literal(sub(v.value)) if isinstance(v, Literal) else v for v in e.inputs]
    graph.outputs = [Literal(sub(v.value)) if isinstance(v, Literal) else v for v in graph.outputs]
    return ""


def _snap(coefs: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The coefficients scaled to integers when some scale makes them all integers (to
    rounding): ``1 / B`` fits as ``(~0 B + 1) / (B + ~0)``, and as ``1 / B`` exactly it gives
    the very float Python computes at every batch size."""
    nonzero = [abs(v) for v in coefs if abs(v) > 1e-9]
    for scale in [1.0, *(1.0 / v for v in nonzero), *range(2, 65)]:
        scaled = [v * scale for v in coefs]
        ints = [round(v) for v in scaled]
        if all(abs(v - i) <= 1e-9 * max(1.0, abs(v)) for v, i in zip(scaled, ints)):
            return (float(ints[0]), float(ints[1]), float(ints[2]), float(ints[3]))
    return coefs


def _fit_ratio(points: list[tuple[int, float]]) -> Ratio | None:
    # (a x + b) / (c x + d) through the first three points, checked on the rest: normalized
    # with d = 1, or with c = 1 when the denominator has no constant term (1 / B, n / B)
    if len(points) < 4:
        return None
    xs = np.array([p[0] for p in points[:3]], np.float64)
    ys = np.array([p[1] for p in points[:3]], np.float64)
    for const_denominator in (True, False):
        if const_denominator:  # y (c x + 1) = a x + b
            m, rhs = np.stack([xs, np.ones(3), -xs * ys], axis=1), ys
        else:  # y (x + d) = a x + b
            m, rhs = np.stack([xs, np.ones(3), -ys], axis=1), xs * ys
        try:
            a, b, k = np.linalg.solve(m, rhs)
        except np.linalg.LinAlgError:
            continue
        c, d = (float(k), 1.0) if const_denominator else (1.0, float(k))
        a, b, c, d = _snap((float(a), float(b), c, d))
        r = Ratio("B", a, b, c, d)
        if all(abs(r.eval({"B": x}) - y) <= 1e-12 * max(1.0, abs(y)) for x, y in points):
            r.known = {int(x): float(y) for x, y in points}
            return r
    return None


def unify(t1: Trace, t2: Trace, b1: int, b2: int) -> tuple[Graph | None, str]:
    """One graph for both traces (batch sizes ``b1``, ``b2``; equal sizes: no symbol).

    Returns ``(graph, "")`` or ``(None, reason)`` when the traces differ in structure.
    """
    try:
        g = _unify([t1, t2], _BatchFit(b1, b2))
    except _Mismatch as e:
        return None, str(e)
    if b1 != b2:
        for i, v in enumerate(g.inputs):
            if v.shape and v.shape[0] == Dim("B"):
                g.symbols["B"] = (i, 0)
                break
    return g, ""


def unify_points(
    traces: list[Trace], design: Any, symbols: dict[str, tuple[int, int]]
) -> tuple[Graph | None, str]:
    """One graph for traces taken at the points of ``design`` (a
    :class:`ember.compiler._shapes.Design`): every int and float that changes between them is
    fitted to an expression of the sizes. ``symbols``: which input axis gives each size.
    Returns ``(graph, "")`` or ``(None, reason)``."""
    from ._shapes import SizeMismatch

    try:
        g = _unify(traces, design)
    except (_Mismatch, SizeMismatch) as e:
        return None, str(e)
    g.symbols = dict(symbols)
    return g, ""


def _unify(ts: list[Trace], fit: Any) -> Graph:
    from ._shapes import arange_p, as_arange

    vmaps: list[dict[int, Var]] = [{} for _ in ts]  # per trace: id(var) -> the new var

    def nv(vs: list[Var], what: str) -> Var:
        v1 = vs[0]
        if any(len(v.shape) != len(v1.shape) or v.dtype is not v1.dtype for v in vs[1:]):
            raise _Mismatch(f"{what}: {' vs '.join(v.type_str() for v in vs)}")
        shape = tuple(fit.fit_int(list(d), what) for d in zip(*(v.shape for v in vs)))
        v = Var(shape, v1.dtype)
        for m, x in zip(vmaps, vs):
            m[id(x)] = v
        return v

    def get(vs: list[Any], what: str) -> Any:
        lits = [isinstance(v, Literal) for v in vs]
        if any(lits):
            if not all(lits):
                raise _Mismatch(f"{what}: a tensor in one call, a constant in the other")
            return Literal(_unify_value([v.value for v in vs], fit, what))
        got = [m.get(id(v)) for m, v in zip(vmaps, vs)]
        if got[0] is None or any(g is not got[0] for g in got[1:]):
            raise _Mismatch(f"{what}: the data flow differs between calls")
        return got[0]

    t1 = ts[0]
    if any(len(t.inputs) != len(t1.inputs) for t in ts):
        raise _Mismatch("the number of tensor arguments differs")
    inputs = [nv(list(vs), f"input {i}") for i, vs in enumerate(zip(*(t.inputs for t in ts)))]
    if any(len(t.captured) != len(t1.captured) for t in ts):
        raise _Mismatch("different tensors are read from outside the function between calls")
    if any(len(t.eqns) != len(t1.eqns) for t in ts):
        raise _Mismatch(f"{' vs '.join(str(len(t.eqns)) for t in ts)} operations between calls")
    captured: list[Var] = []
    cap_tensors: list[Any] = []
    pre: list[Eqn] = []
    cap_index: dict[int, int] = {}
    for i, caps in enumerate(zip(*(t.captured for t in ts))):
        what = f"captured tensor {i}"
        v = nv([c[1] for c in caps], what)
        ta = caps[0][0]
        if all(c[0] is ta for c in caps[1:]):
            cap_index[i] = len(captured)
            captured.append(v)
            cap_tensors.append(ta)
            continue
        # fresh on every call: re-created inside the graph
        snaps = [c[2] for c in caps]
        sa = snaps[0]
        if not all(c[3] for c in caps):
            raise _Mismatch(
                f"{what} (shape {sa.shape}) is computed outside ember's ops (raw NumPy), "
                "so the graph cannot recompute it"
            )
        unif = [_uniform(x) for x in snaps]
        if all(u for u, _f in unif) and all(_same_scalar(unif[0][1], f) for _u, f in unif[1:]):
            shape = tuple(fit.fit_int(list(d), what) for d in zip(*(x.shape for x in snaps)))
            pre.append(
                Eqn(full_p, [], {"shape": shape, "value": unif[0][1], "dtype": sa.dtype}, [v])
            )
        elif all(x.shape == sa.shape and np.array_equal(x, sa, equal_nan=True) for x in snaps):
            pre.append(Eqn(constant_p, [], {"value": sa}, [v]))
        elif (ar := as_arange(snaps)) is not None:  # ember.arange(x.shape[1])
            p = {"start": ar[0], "step": ar[1], "n": v.shape[0], "dtype": sa.dtype}
            pre.append(Eqn(arange_p, [], p, [v]))
        else:
            raise _Mismatch(
                f"{what} (shape {sa.shape}) is made outside ember's ops with values that "
                "change between calls (random or data-dependent)"
            )
    eqns = list(pre)
    for k, es in enumerate(zip(*(t.eqns for t in ts))):
        e1 = es[0]
        what = f"equation {k} ({e1.prim.name})"
        for e in es[1:]:
            if e1.prim is not e.prim or len(e1.inputs) != len(e.inputs):
                raise _Mismatch(f"{what}: {e1.prim.name} vs {e.prim.name}")
        ins = [get(list(vs), what) for vs in zip(*(e.inputs for e in es))]
        params = _unify_value([e.params for e in es], fit, what)
        outs = [nv(list(vs), what) for vs in zip(*(e.outputs for e in es))]
        eqns.append(Eqn(e1.prim, ins, params, outs, e1.mutates))
    if any(t.out_tree != t1.out_tree or len(t.outputs) != len(t1.outputs) for t in ts):
        raise _Mismatch("the structure of the result differs")
    outputs = [get(list(vs), f"output {i}") for i, vs in enumerate(zip(*(t.outputs for t in ts)))]
    for t in ts[1:]:
        if len(t1.seeds) != len(t.seeds) or any(a is not b for a, b in zip(t1.seeds, t.seeds)):
            raise _Mismatch("random seeds are drawn differently between calls")
        if [k for k, _ in t1.grad_effects] != [k for k, _ in t.grad_effects]:
            raise _Mismatch("different .grad attributes are set between calls")
    grad_effects: list[tuple[int, Var | None]] = []
    input_grad_effects: list[tuple[int, Var | None]] = []
    for gs in zip(*(t.grad_effects for t in ts)):
        k = gs[0][0]
        vs = [g[1] for g in gs]
        gv = None if all(x is None for x in vs) else get(vs, f".grad of {k}")
        if k[0] == "in":
            input_grad_effects.append((k[1], gv))
        elif k[1] in cap_index:
            grad_effects.append((cap_index[k[1]], gv))
    aot = None
    if any((t.aot is None) != (t1.aot is None) for t in ts):
        raise _Mismatch("autograd through the graph in one call only")
    if t1.aot is not None:
        n1, d1, k1, _g1 = t1.aot
        for t in ts[1:]:
            assert t.aot is not None
            n2, d2, k2, _g2 = t.aot
            if n1 != n2 or d1 != d2 or k1 != k2:
                raise _Mismatch("the backward pass differs between calls")
        wrt, gvars = [], []
        for j, key in enumerate(k1):
            if key[0] == "cap" and key[1] not in cap_index:
                continue  # a fresh tensor: nobody sees its gradient
            wrt.append(key if key[0] == "in" else ("cap", cap_index[key[1]]))
            vs = [t.aot[3][j] for t in ts]  # type: ignore[index]
            gvars.append(None if all(x is None for x in vs) else get(vs, f"gradient {key}"))
        aot = (len(pre) + n1, d1, wrt, gvars)
    g = Graph(
        inputs=inputs,
        eqns=eqns,
        outputs=outputs,
        captured=captured,
        captured_tensors=cap_tensors,
        grad_effects=grad_effects,
        symbols={},
        seed_sources=t1.seeds,
        input_grad_effects=input_grad_effects,
        out_tree=t1.out_tree,
    )
    g.aot = aot
    return g


def resized(t: Tensor, b: int, shift: int = 0) -> Tensor:
    """A copy of ``t`` with ``b`` rows along dim 0 taken cyclically from row ``shift`` (so that
    values differ from the original's), with the same requires_grad."""
    a = t._data
    if a.ndim == 0:
        arr = a.copy()
    else:
        arr = np.ascontiguousarray(np.take(a, (np.arange(b) + shift) % a.shape[0], axis=0))
    r = _new(arr)
    if t.requires_grad:
        r.requires_grad = True
    return r
