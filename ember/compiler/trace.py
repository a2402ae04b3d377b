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
import dataclasses
import io
import os
import sys
from typing import Any

import numpy as np

from .. import _creation
from .. import random as _random
from .._dtype import from_numpy_dtype
from .._tensor import Tensor, _new
from ..autograd import engine as _engine
from ..autograd.engine import _FreedPrim
from ..ops._core import _state, bind, bind_values
from ._abstract import fake_outputs
from ._grad_slots import grad_of
from ._unify import (  # noqa: F401  (re-exported: moved to _unify)
    FloatPoints,
    _affine,
    _all_same,
    _BatchFit,
    _fit_ratio,
    _Mismatch,
    _same_scalar,
    _snap,
    _uniform,
    _unify,
    _unify_value,
    fit_floats,
    resized,
    unify,
    unify_floats,
    unify_points,
)
from .ir import Eqn, HyperParam, Literal, Seed, Var
from .prims import InputRef, lifted

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


# the start of a graph break's description for a call of an ember.compiler.disable-d function
DISABLED = "call of ember.compiler.disable-d function"


class _TraceEnded(Exception):
    """Raised inside a dry-run trace that has met a graph break whose code must not run in
    the trace (a module's hooks); :func:`trace` returns what was recorded so far."""


# optimizer settings held as tuples, and the names their entries are bound under
_TUPLE_HYPER = {"betas": ("beta1", "beta2")}


def _own_float(v: float) -> float:
    """A new float object equal to ``v`` (bit for bit)."""
    return float.fromhex(v.hex())


def _group_value(e: tuple) -> Any:
    group, _v, key, index = e
    v = group.get(key)
    if index is None:
        return v
    return v[index] if type(v) is tuple and index < len(v) else None


class _ValueShown(_TraceEnded):
    """Raised when a dry-run trace would print or format a tensor's value (``print(loss)``):
    the text would show a value of no real call, so the trace's printed output is dropped
    (the eager run, which this graph break falls back to, prints the real one)."""


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
        self.out_alias: tuple | None = None  # see Graph.out_alias
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
        # leaves whose existing .grad the graph reads (captured as GradOf slots, guarded)
        self.grad_leaves: list[Any] = []


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
        # (id(float), name) -> (group, float, key, index in a tuple setting or None)
        self.hyper: dict[tuple[int, str], tuple[dict, Any, str, int | None]] = {}
        # module attributes assigned (first time): (id, name) -> (module, name, old, file:line)
        self.attr_log: dict[tuple[int, str], tuple[Any, str, Any, str]] = {}
        # the .grad a leaf held before the trace, as read: id(array) -> (array, leaf); and
        # the captured index of each such array -> its leaf (a GradOf slot after the trace)
        self.grad_src: dict[int, tuple[np.ndarray, Tensor]] = {}
        self.grad_caps: dict[int, Tensor] = {}
        self.input_ids: set[int] = set()

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
            for k, v in list(group.items()):
                if type(v) is float:
                    if self._shared(v, k, group):
                        v = group[k] = _own_float(v)
                    self.hyper[(id(v), k)] = (group, v, k, None)
                elif type(v) is tuple and k in _TUPLE_HYPER:
                    names = _TUPLE_HYPER[k]
                    if any(
                        type(x) is float and self._shared(x, n, group) for n, x in zip(names, v)
                    ):
                        v = group[k] = tuple(_own_float(x) if type(x) is float else x for x in v)
                    for i, (name, x) in enumerate(zip(names, v)):
                        if type(x) is float:
                            self.hyper[(id(x), name)] = (group, x, k, i)

    def _shared(self, v: float, key: str, group: dict) -> bool:
        # the same float object already a setting of another group (the constructor's
        # default shared by every group, one literal in two optimizers): the value bound in a
        # step could not tell its group, so each group gets a float object of its own
        e = self.hyper.get((id(v), key))
        return e is not None and e[1] is v and e[0] is not group

    def _hyper_params(self, params):
        # a float param that IS the group's value under the same name (or the entry of a
        # tuple setting it comes from: ``beta1`` of ``betas``): read at run time
        out = None
        for k, v in params.items():
            if type(v) is float:
                e = self.hyper.get((id(v), k))
                if e is not None and e[1] is v and _group_value(e) is v:
                    if out is None:
                        out = dict(params)
                    group, _v, key, index = e
                    out[k] = HyperParam(group, key, index)
                    self.t.dynamic_hyper.add(
                        (id(group), key if index is None else f"{key}[{index}]")
                    )
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
        src = self.grad_src.get(id(arr))
        if src is not None and src[0] is arr:  # a leaf's existing .grad (accumulation)
            self.grad_caps[len(self.t.captured)] = src[1]
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
        self.input_ids.add(id(t))
        return v

    # -- events from the patched Tensor / Generator / Module methods
    def _graph_break(self, what: str, why: str, strict: str) -> None:
        """Record a graph break at the user's line (``what: why``); under ``fullgraph=True``
        raise instead, naming the line, with ``strict`` (why one graph cannot hold it and
        what to do)."""
        where = user_frame()
        self.t.breaks.append((f"{what}: {why}", where))
        if self.fullgraph:
            raise CompileError(f"{where}: {what}: {strict}")

    def value_read(self, what: str) -> None:
        self._graph_break(
            what,
            "a tensor's value is needed in Python",
            "a tensor's value is needed in Python (data-dependent control flow or shapes), "
            "which cannot be part of one graph (fullgraph=True); compute it with tensor ops "
            "(e.g. ember.where) or move it out of the compiled function",
        )

    def hooked_call(self, m: Any) -> None:
        """A call of module ``m`` that runs user hooks: their Python (appending features to a
        list, logging, counting) runs on every eager call, and a graph would replay only
        their tensor arithmetic, so a hooked module is a graph break at the call (as
        ``torch.compile`` inlines hooks, Ember runs the signature eagerly instead of dropping
        their side effects)."""
        d = m.__dict__
        kinds = (
            ("forward pre-hook", d["_forward_pre_hooks"]),
            ("forward hook", d["_forward_hooks"]),
            ("backward hook", d["_backward_hooks"]),
            ("backward pre-hook", d["_backward_pre_hooks"]),
        )
        kind, hook = next((k, h) for k, hooks in kinds for h in hooks.values())
        self._graph_break(
            f"{kind} {_describe_hook(hook)} of {type(m).__name__}",
            "module hooks run Python on every call",
            "module hooks run Python on every call, which one graph cannot replay "
            "(fullgraph=True); remove the hook (handle.remove()) while compiling, or call the "
            "hooked module outside the compiled function",
        )
        # the trace ends here, before the hooks run: their effects then happen once per call,
        # in the eager run
        raise _TraceEnded

    def disabled_call(self, name: str, reason: str | None) -> None:
        """A call of a function wrapped in :func:`ember.compiler.disable`: a graph break at
        the call, nothing traced through it (the signature runs eagerly, the function too)."""
        self._graph_break(
            f"{DISABLED} {name}" + (f" ({reason})" if reason else ""),
            "it runs eagerly",
            "a disabled function runs eagerly, which cannot be part of one graph "
            "(fullgraph=True); remove ember.compiler.disable or call it outside the compiled "
            "function",
        )
        raise _TraceEnded

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
                self.t.breaks.append(
                    (f"{what}: a module's state is replaced by a traced value", where)
                )
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

    def grad_read(self, t: Tensor, g: Any) -> None:
        # the .grad a leaf held before the trace (not one the trace set): the graph reads
        # it at run time through the leaf (the grad effects replace it on every call)
        if isinstance(g, Tensor) and id(t) not in self.grad_log and id(t) not in self.input_ids:
            self.grad_src[id(g._data)] = (g._data, t)

    def grad_slots(self) -> None:
        """Captured arrays that are a leaf's existing ``.grad`` become :class:`GradOf`
        slots (after the rollback, which restores the arrays themselves)."""
        for i, leaf in self.grad_caps.items():
            _t, v, snap, _made = self.t.captured[i]
            self.t.captured[i] = (grad_of(leaf), v, snap, False)  # type: ignore[assignment]
            if all(x is not leaf for x in self.t.grad_leaves):
                self.t.grad_leaves.append(leaf)

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


def _describe_hook(hook: Any) -> str:
    """``name (file:line)`` of a hook function, for graph-break messages."""
    fn = getattr(hook, "__func__", hook)
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    code = getattr(fn, "__code__", None)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code is not None else name


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
    g = self.__dict__.get("grad")
    tr = _state.tracer
    if tr is not None and g is not None:
        tr.grad_read(self, g)
    return g


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
            if name in ("__repr__", "__str__"):
                raise _ValueShown
        return orig(self, *a, **k)

    method.__name__ = name
    return method


# ``__repr__``/``__str__``: ``print(loss)`` in a compiled function shows a value, which a
# graph replayed without the Python would never print again (a graph break, as in torch)
_READS = (
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "item",
    "tolist",
    "numpy",
    "__repr__",
    "__str__",
)


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
            d = self.__dict__
            if (
                d["_forward_pre_hooks"]
                or d["_forward_hooks"]
                or d["_backward_hooks"]
                or d["_backward_pre_hooks"]
            ):
                tr.hooked_call(self)
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


_is_dataclass = dataclasses.is_dataclass
_fields = dataclasses.fields


def flatten(x: Any) -> tuple[list[Any], Any]:
    """Leaves and structure of nested tuples/lists/dicts (namedtuples and dataclass instances
    too: a dataclass is a node whose children are its fields, as ``jax.tree_util`` with
    ``register_dataclass``)."""
    leaves: list[Any] = []

    def go(v):
        if isinstance(v, (tuple, list)) and not isinstance(v, Tensor):
            return (type(v), tuple(go(i) for i in v))
        if isinstance(v, dict):
            return (dict, tuple((k, go(i)) for k, i in v.items()))
        if _is_dataclass(v) and not isinstance(v, type):
            return (type(v), tuple((f.name, go(getattr(v, f.name))) for f in _fields(v)))
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
        if _is_dataclass(kind):
            # (rebuilt field by field: ``__init__``/``__post_init__`` ran when it was made)
            obj = kind.__new__(kind)
            for k, i in items:
                object.__setattr__(obj, k, go(i))
            return obj
        vals = [go(i) for i in items]
        if kind is tuple or kind is list or not hasattr(kind, "_fields"):
            return kind(vals)  # (also a tuple or list subclass such as ember.Size)
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
    shown = io.StringIO()  # what the function prints, held back until the trace ends
    # (kernels on the zeros of skipped ones may divide by zero: nobody reads those values)
    try:
        with _installed(tracer), np.errstate(all="ignore"), contextlib.redirect_stdout(shown):
            try:
                for a in leaves:
                    if isinstance(a, Tensor):
                        tracer.input(a)
                out = fn(*args, **kwargs)
                outs, tracer.t.out_tree = flatten(out)
                tracer.t.out_alias = _out_alias(outs, leaves)
                res: list[Var | Literal] = []
                for o in outs:
                    if isinstance(o, Tensor):
                        res.append(tracer.var_of(o))
                        if _differentiable(o):
                            tracer.t.output_requires_grad = True
                    else:
                        res.append(Literal(o))
                tracer.t.outputs = res
                tracer.attr_effects()
                _grad_effects(tracer, leaves)
                if tracer.t.output_requires_grad and not tracer.grad_log:
                    _trace_backward(tracer, leaves, outs)
            except _ValueShown:
                shown = io.StringIO()  # (a partial line such as print's "loss ")
            except _TraceEnded:
                pass  # (a graph break is recorded: the signature runs eagerly)
            finally:
                tracer.rollback()
                tracer.grad_slots()
    finally:
        sys.stdout.write(shown.getvalue())
    return tracer.t


def _out_alias(outs: list[Any], leaves: list[Any]) -> tuple | None:
    """Which outputs are an argument tensor itself or an earlier output's tensor again."""
    ins = [a for a in leaves if isinstance(a, Tensor)]
    res: list[Any] = []
    for j, o in enumerate(outs):
        r = None
        if isinstance(o, Tensor):
            i = next((i for i, a in enumerate(ins) if a is o), None)
            if i is not None:
                r = ("in", i)
            else:
                k = next((k for k in range(j) if outs[k] is o), None)
                r = None if k is None else ("out", k)
        res.append(r)
    return tuple(res) if any(r is not None for r in res) else None


def _differentiable(o: Tensor) -> bool:
    """``o`` has a graph to differentiate: it requires grad and its graph was not freed (the
    loss that ``ember.autograd.grad(loss, params)`` consumed inside the function cannot be
    differentiated again, in eager code either)."""
    return o.requires_grad and o._node is not None and type(o._node.prim) is not _FreedPrim


def _trace_backward(tracer: Tracer, leaves: list[Any], outs: list[Any]) -> None:
    """Trace the backward pass of the outputs that require grad, with cotangents as extra
    graph inputs, so that a compiled call can be differentiated (AOT autograd)."""
    from ..autograd import grad as _grad

    diff = [(k, o) for k, o in enumerate(outs) if isinstance(o, Tensor) and _differentiable(o)]
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
