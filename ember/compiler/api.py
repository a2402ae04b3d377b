"""``ember.compile``: guards, the graph cache, retrace explanations and graph breaks.

The first call for an input signature runs the function eagerly (its result is the real one:
lazily created optimizer state and the like come into being as in eager code); then the
function is traced twice as dry runs (effects rolled back), at the batch size of the call and
one more, and the two traces are unified into one graph whose batch dimension is a symbol.
Later calls with a matching signature run the optimized graph; the first call at each new
batch size also traces a dry run and checks it gives the same graph (Python code may branch on
the batch size). When traces do not agree (the graph is not affine in the batch size, or a
branch flips) those shapes get a specialized graph; when
the function reads tensor values in Python (a graph break) it runs eagerly for that signature,
with a warning that names the user's line (``fullgraph=True``: an error).

Sizes beyond the batch (automatic dynamic shapes, as ``torch.compile``): when a call changes
another axis's size (a sequence length), the function is traced again with that axis
symbolic (axes of equal size that change together share a symbol; sizes 0 and 1 never become
symbols), and axes marked with :func:`~ember.compiler._shapes.mark_dynamic` are symbolic from
the first trace. Such graphs come from traces at the corners of a cube of nearby sizes
(:mod:`ember.compiler._shapes`): the ints and floats that Python code computes from sizes
become expressions of the symbols; a size used otherwise (indexing a list, a branch) fails
the fit, and that axis stays specialized (``explain().static_dims`` says why). Sizes that a
strided layer floor-divides are fitted on a lattice (sizes stepping by 2, 4, ...), with one
graph per residue class. As for the batch, every new combination of sizes is first checked
by a dry-run trace.
"""

from __future__ import annotations

import functools
import logging
import types
import warnings
from collections.abc import Callable
from typing import Any

from .._tensor import Tensor
from ..ops._core import _state
from . import _runtime
from ._entry import (  # noqa: F401  (re-exported: moved to _entry)
    _Entry,
    _GraphFunction,
    entry_static,
    split_backward,
)
from ._grad_slots import grad_key
from ._guards import (  # noqa: F401  (re-exported: moved to _guards)
    _GUARD_WHY,
    _SCALARS,
    _fmt,
    _free_key,
    _free_refs,
    _hashable,
    _name_captured,
    _ratios,
    _same_graph,
    _same_value,
    _slim,
    _tree_of,
    _walk,
    module_guards,
)
from ._shapes import mark_dynamic
from ._shapes_api import DynamicDims, _symbolic_axes
from .executor import ShapeGuardError
from .ir import Graph
from .trace import (
    DISABLED,
    CompileError,
    Trace,
    fit_floats,
    flatten,
    resized,
    trace,
    unflatten,
    unify,
    unify_floats,
)

__all__ = ["CompiledFunction", "compile", "explain", "trace_graph"]

_EAGER = "eager"
_LOG = logging.getLogger("ember.compile")


def _grad_fmt(v: Any) -> str:
    return "None" if v is None else f"tensor {v[0]} {v[1]}"


def _baked(group: dict, k: str, v: Any, dyn: set) -> Any:
    """An optimizer setting as the guard sees it: the entries of a tuple setting read at run
    time (``betas[0]``, cycled by OneCycleLR) are left out."""
    if type(v) is not tuple:
        return v
    return tuple(None if (id(group), f"{k}[{i}]") in dyn else x for i, x in enumerate(v))


class Explanation:
    """The trace history of a compiled function: ``traces`` (graphs built), ``graph_breaks``,
    ``events`` (one line per trace with the guard that failed), ``symbolic_dims`` (the
    symbolic axes of the latest graph) and ``static_dims`` (axes that could not be symbolic,
    with the reason)."""

    def __init__(self, cf: CompiledFunction):
        self.traces = cf.traces
        self.graph_breaks = list(cf.breaks)
        self.events = list(cf.events)
        self.calls = cf.calls
        self.eager_signatures = sum(1 for e in cf.cache.values() if e is _EAGER)
        self.validations = cf.validations
        # the symbolic axes of the latest graph ("argument 0 dim 1: s1")
        self.symbolic_dims = list(cf.last_symbolic)
        # axes that cannot be symbolic, and why (they are specialized: each size retraces)
        self.static_dims = {cf.static_names[p]: why for p, why in cf.static_dims.items()}

    def __str__(self) -> str:
        lines = [
            f"{self.calls} calls, {self.traces} graph(s) traced, "
            f"{len(self.graph_breaks)} graph break(s)"
        ]
        if self.symbolic_dims:
            lines.append(f"  symbolic: {', '.join(self.symbolic_dims)}")
        lines += [f"  {e}" for e in self.events]
        lines += [f"  not symbolic: {k}: {v}" for k, v in self.static_dims.items()]
        return "\n".join(lines)

    __repr__ = __str__


class CompiledFunction(DynamicDims):
    """A function (or module) compiled on first call per input signature.

    Example:
        >>> import ember
        >>> f = ember.compile(lambda x: (x * 2).sum())
        >>> [f(ember.ones(b, 3)).item() for b in (2, 4, 8)]
        [12.0, 24.0, 48.0]
        >>> f.explain().traces
        1
    """

    def __init__(
        self,
        fn: Callable,
        *,
        dynamic: bool = True,
        fullgraph: bool = False,
        name: str | None = None,
        recompile_limit: int = 8,
    ):
        self.fn = fn
        self.dynamic = dynamic
        self.fullgraph = fullgraph
        self.name = name or getattr(fn, "__qualname__", type(fn).__name__)
        self.recompile_limit = recompile_limit
        self.cache: dict[Any, Any] = {}
        self.modules: list[Any] = []
        self.free = _free_refs(fn)  # the globals and closure cells the function reads
        self.optimizers: list[Any] = []
        # leaves whose existing .grad a graph reads (gradient accumulation): guarded
        self.grad_leaves: list[Any] = []
        self.dynamic_hyper: set[tuple[int, str]] = set()
        self.events: list[str] = []
        self.breaks: list[str] = []
        self.traces = 0
        self.validations = 0  # dry runs that checked the symbolic graph at a new batch size
        self.calls = 0
        # symbolic sizes beyond the batch: the specs tried ((tensor index, axis) -> symbol),
        # axes that cannot be symbolic (-> why), and the shapes each graph was traced at
        self.specs: list[dict[tuple[int, int], str]] = []
        self.static_dims: dict[tuple[int, int], str] = {}
        self.static_names: dict[tuple[int, int], str] = {}  # "argument i dim a" of each
        self.seen: list[tuple[tuple, list[tuple[int, ...]], dict[tuple[int, int], str]]] = []
        self.last_symbolic: list[str] = []
        self.lattice: dict[str, int] = {}  # symbol -> the step of the sizes it was fitted on
        self._n_sym = 0
        self.resets = 0  # ember.compiler.reset() calls that cleared this function's graphs
        self._limit_base = 0  # traces before the last reset (the recompile limit counts after)
        functools.update_wrapper(self, fn, updated=())
        _runtime.COMPILED.add(self)

    def _reset(self) -> None:
        """Drop every graph and guard (``ember.compiler.reset()``); the history stays."""
        for d in (self.cache, self.static_dims, self.static_names, self.lattice):
            d.clear()
        for x in (self.specs, self.seen, self.modules, self.optimizers, self.grad_leaves):
            x.clear()
        self.dynamic_hyper.clear()
        self.last_symbolic = []
        self.resets += 1
        self._limit_base = self.traces
        self.events.append(f"reset after call {self.calls}: ember.compiler.reset()")

    def _eager(self, args: tuple, kwargs: dict) -> Any:
        """The function run eagerly as part of the compiled call (``is_compiling()`` True)."""
        prev = _runtime.depth()
        _runtime.set_depth(prev + 1)
        try:
            return self.fn(*args, **kwargs)
        finally:
            _runtime.set_depth(prev)

    def _run(self, entry: _Entry, tensors: list[Tensor], env: Any, args, kwargs) -> Any:
        """Run a graph. A kernel failing before any of the graph's effects (bad index values,
        a singular matrix) is raised by the eager call instead: the user's exception from the
        user's line, as on the first call."""
        prog = entry.program
        prog.failed_step = None
        try:
            return entry.run(tensors, env)
        except Exception as exc:
            k = prog.failed_step
            if k is None or any(e.mutates for e in prog.graph.eqns[:k]):
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(raised by the compiled graph of {self.name})")
                raise
        return self._eager(args, kwargs)

    def __deepcopy__(self, memo: dict) -> CompiledFunction:
        # a copy (of a module compiled in place with ``Module.compile``) compiles afresh
        import copy

        return CompiledFunction(
            copy.deepcopy(self.fn, memo),
            dynamic=self.dynamic,
            fullgraph=self.fullgraph,
            name=self.name,
            recompile_limit=self.recompile_limit,
        )

    def __reduce__(self) -> tuple:
        # pickled as the function and the settings: graphs are compiled afresh after loading
        return (_rebuild, (self.fn, self.dynamic, self.fullgraph, self.name, self.recompile_limit))

    # -- guards
    def _key(
        self,
        leaves: list[Any],
        tree: Any,
        symbolic: bool,
        spec: dict[tuple[int, int], str] | None = None,
    ) -> tuple:
        batch = None
        if symbolic:
            for a in leaves:
                if isinstance(a, Tensor) and a._data.ndim:
                    batch = a._data.shape[0]
                    break
        names: dict[tuple[int, int], str] = {}
        if spec:
            # an axis is symbolic when every axis of its symbol has the same size here
            sizes: dict[str, set[int]] = {}
            ti = 0
            for a in leaves:
                if isinstance(a, Tensor):
                    shp = a._data.shape
                    for (i, ax), n in spec.items():
                        if i == ti and ax < len(shp):
                            sizes.setdefault(n, set()).add(shp[ax])
                    ti += 1
            names = {}
            for p, n in spec.items():
                if len(sizes.get(n, ())) == 1:
                    m = self.lattice.get(n, 1)
                    # a graph fitted on a lattice of sizes serves its residue class
                    names[p] = n if m == 1 else f"{n}%{m}=={next(iter(sizes[n])) % m}"
        parts: list[Any] = [("structure", tree)]
        ti = 0
        for i, a in enumerate(leaves):
            if isinstance(a, Tensor):
                d = a._data
                sh: tuple = d.shape
                if names:
                    sh = tuple(names.get((ti, ax), n) for ax, n in enumerate(sh))
                    if batch is not None and sh and sh[0] == batch and (ti, 0) not in names:
                        sh = ("B",) + sh[1:]
                elif batch is not None and sh and sh[0] == batch:
                    sh = ("B",) + sh[1:]
                parts.append((f"argument {i}", (sh, d.dtype.name, a.requires_grad)))
                ti += 1
            else:
                try:
                    hash(a)
                    parts.append((f"argument {i}", ("value", a)))
                except TypeError:
                    parts.append((f"argument {i}", ("value", repr(a))))
        parts.append(("grad mode", _state.grad_enabled))
        # Python code may branch on ``x.is_contiguous()`` (or ``view`` may fail on a
        # transposed input): the graph holds for the memory layout it was traced with
        parts.append(
            (
                "memory layout of the arguments",
                tuple(a._data.flags.c_contiguous for a in leaves if isinstance(a, Tensor)),
            )
        )
        parts += module_guards(self.modules)
        if self.free:
            parts.append(("globals and closure variables", _free_key(self.free)))
        # None or a tensor (its shape, dtype): accumulating into an existing .grad is a graph
        # input and an add; a .grad of None is not read
        parts.append(("existing gradients", grad_key(self.grad_leaves)))
        if self.optimizers:
            # hyperparameters baked into the graph (those read at run time are left out)
            dyn = self.dynamic_hyper
            parts.append(
                (
                    "optimizer hyperparameters",
                    tuple(
                        (k, _hashable(_baked(g, k, v, dyn)))
                        for o in self.optimizers
                        for g in o.param_groups
                        for k, v in g.items()
                        if k != "params" and (id(g), k) not in dyn
                    ),
                )
            )
        return tuple(parts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if len(kwargs) > 1:  # f(a=1, b=2) and f(b=2, a=1) are one call: one trace
            kwargs = dict(sorted(kwargs.items()))
        leaves, tree = flatten((args, kwargs))
        if _state.tracer is not None:  # called inside another trace: inline
            return self.fn(*args, **kwargs)
        key = self._key(leaves, tree, self.dynamic)
        entry = self.cache.get(key)
        if entry is None and self.specs:
            for spec in reversed(self.specs):  # graphs with more symbolic sizes
                k = self._key(leaves, tree, self.dynamic, spec)
                entry = self.cache.get(k)
                if entry is not None:
                    key = k
                    break
        tensors = [a for a in leaves if isinstance(a, Tensor)]
        env = None
        if isinstance(entry, _Entry):
            try:
                env = entry.program.check_shapes([t._data.shape for t in tensors])
            except ShapeGuardError as exc:
                # the symbolic graph does not hold here: a graph for these exact shapes
                skey = self._key(leaves, tree, False)
                entry = self.cache.get(skey)
                if entry is None:
                    self.events.append(
                        f"call {self.calls}: the symbolic graph does not hold at these shapes "
                        f"({exc}); specializing"
                    )
                    return self._miss(skey, args, kwargs, leaves, tree, static=True)
                env = None
        if entry is None and self.dynamic:
            entry = self.cache.get(self._key(leaves, tree, False))
        if entry is None:
            if self.specs:  # explained against the graph with the most symbolic sizes
                key = self._key(leaves, tree, self.dynamic, self.specs[-1])
            return self._miss(key, args, kwargs, leaves, tree)
        if entry is _EAGER:
            return self._eager(args, kwargs)
        if env is None:
            env = entry.program.check_shapes([t._data.shape for t in tensors])
        if (entry.t1 is not None or entry.design is not None) and env:
            size: Any = env["B"] if entry.design is None else tuple(sorted(env.items()))
            if size in entry.bad_sizes:  # a graph specialized to these shapes
                skey = self._key(leaves, tree, False)
                special = self.cache.get(skey)
                if special is None:
                    return self._miss(skey, args, kwargs, leaves, tree, static=True)
                if special is _EAGER:
                    return self._eager(args, kwargs)
                return self._run(
                    special,
                    tensors,
                    special.program.check_shapes([t._data.shape for t in tensors]),
                    args,
                    kwargs,
                )
            if size not in entry.sizes:
                if entry.design is None:
                    why = self._holds_at(entry, args, kwargs, leaves, size)
                else:
                    why = self._holds_at_point(entry, args, kwargs, leaves, env)
                self.validations += 1
                if why:
                    entry.bad_sizes.add(size)
                    at = (
                        f"batch size {size}"
                        if entry.design is None
                        else "sizes " + ", ".join(f"{k}={v}" for k, v in size)
                    )
                    self.events.append(
                        f"call {self.calls}: the symbolic graph does not hold at {at} ({why}); "
                        "specializing"
                    )
                    skey = self._key(leaves, tree, False)
                    return self._miss(skey, args, kwargs, leaves, tree, static=True)
                entry.sizes.add(size)
        return self._run(entry, tensors, env, args, kwargs)

    def _describe_miss(self, key: tuple, exact: tuple | None = None) -> str:
        if not self.cache:
            return "first call" if not self.resets else "first call after ember.compiler.reset()"
        # ``exact``: the key with every size specialized; a graph whose batch could not be
        # symbolic is stored under such a key, and its shapes are no change to report
        alt = exact if exact is not None and len(exact) == len(key) else key
        best, n_diff = None, None
        for k in self.cache:
            if len(k) != len(key):
                continue
            d = [(a, b) for a, b, c in zip(k, key, alt) if a != b and a != c]
            if n_diff is None or len(d) < n_diff:
                best, n_diff = d, len(d)
        if not best:
            return "guard failed: the argument structure changed"
        (name, old), (_n, new) = best[0]
        if name == "module parameters":
            return "guard failed: a module parameter was replaced by another tensor"
        if name in _GUARD_WHY:
            return f"guard failed: {_GUARD_WHY[name]}"
        if name == "existing gradients":
            diff = [
                f"{self._leaf_name(t)}: {_grad_fmt(a)} -> {_grad_fmt(b)}"
                for t, a, b in zip(self.grad_leaves, old, new)
                if a != b
            ]
            return f"guard failed: .grad of {', '.join(diff[:3])}"
        if name == "optimizer hyperparameters":
            if [a[0] for a in old] != [b[0] for b in new]:  # (a positional diff would misname)
                return (
                    "guard failed: the optimizer's param groups were replaced or changed "
                    "(load_state_dict, add_param_group)"
                )
            diff = [f"{a[0]}: {a[1]!r} -> {b[1]!r}" for a, b in zip(old, new) if a != b]
            return f"guard failed: optimizer hyperparameters changed ({', '.join(diff[:3])})"
        return f"guard failed: {name}: {_fmt(old)} -> {_fmt(new)}"

    def _leaf_name(self, t: Any) -> str:
        for m in self.modules[:1]:
            for n, p in m.named_parameters():
                if p is t:
                    return repr(n)
        return f"a tensor of shape {tuple(t._data.shape)}"

    def _miss(self, key, args, kwargs, leaves, tree, static: bool = False) -> Any:
        reason = self._describe_miss(key, self._key(leaves, tree, False))
        pre = [t.__dict__.get("grad") for t in self.grad_leaves]
        out = self._eager(args, kwargs)  # the real call, eager
        # the dry-run traces (and the key the graph is stored under) see the .grad state the
        # call came with: None or a tensor (the eager call may have set them)
        post = [t.__dict__.get("grad") for t in self.grad_leaves]
        for t, g in zip(self.grad_leaves, pre):
            if (g is None) != (t.__dict__.get("grad") is None):
                t.__dict__["grad"] = g
        try:
            return self._traced_miss(key, reason, out, args, kwargs, leaves, tree, static)
        finally:
            for t, g in zip(self.grad_leaves[: len(post)], post):
                t.__dict__["grad"] = g

    def _traced_miss(self, key, reason, out, args, kwargs, leaves, tree, static) -> Any:
        if self.traces - self._limit_base >= self.recompile_limit:
            self.cache[key] = _EAGER
            event = (
                f"call {self.calls}: {reason} -> recompile_limit ({self.recompile_limit}) "
                "reached; this signature runs eagerly"
            )
            self.events.append(event)
            _LOG.info("%s: %s", self.name, event)
            warnings.warn(f"ember.compile: {self.name}: {event}", stacklevel=3)
            return out
        spec = None if static else self._dynamic_spec(leaves, tree)
        entry: Any = None
        note = ""
        try:
            if spec:
                entry, note, spec = self._build_dynamic(args, kwargs, leaves, tree, spec)
            if entry is None:
                entry, note2 = self._build(args, kwargs, leaves, static or not self.dynamic)
                note += note2
        except CompileError:
            self.cache[key] = _EAGER
            raise
        self.traces += 1
        # modules seen while tracing join the guard; store under the refreshed key
        if spec and isinstance(entry, _Entry):
            key = self._key(leaves, tree, self.dynamic, spec)
            if spec not in self.specs:
                self.specs.append(spec)
        else:
            key = self._key(leaves, tree, self.dynamic and not static and not entry_static(entry))
        self.cache[key] = entry
        if not static:
            shapes = [a._data.shape for a in leaves if isinstance(a, Tensor)]
            self.seen.append((self._sig(leaves, tree), shapes, dict(spec or {})))
        if isinstance(entry, _Entry):
            self.last_symbolic = _symbolic_axes(entry, leaves)
            if entry.design is not None:
                note += "; symbolic: " + ", ".join(self.last_symbolic)
        event = f"trace {self.traces} at call {self.calls}: {reason}{note}"
        self.events.append(event)
        _LOG.info("%s: %s", self.name, event)
        return out

    def _first_trace(self, t1: Trace) -> tuple[Any, str] | None:
        """Register what the first trace met; ``(_EAGER, note)`` when it cannot compile."""
        for m in t1.modules:
            for sub in m.modules():  # submodules read without being called are guarded too
                if all(sub is not x for x in self.modules):
                    self.modules.append(sub)
        for o in t1.optimizers:
            if all(o is not x for x in self.optimizers):
                self.optimizers.append(o)
        self.dynamic_hyper |= t1.dynamic_hyper
        for t in t1.grad_leaves:
            if all(t is not x for x in self.grad_leaves):
                self.grad_leaves.append(t)
        if t1.breaks:
            what, where = t1.breaks[0]
            self.breaks.append(f"{where}: {what}")
            if what.startswith(DISABLED):  # asked for: no warning
                return _EAGER, f" -> graph break at {where} ({what})"
            warnings.warn(
                f"{where}: graph break: {what}; ember.compile runs this function eagerly for "
                "this input signature (fullgraph=True makes this an error)",
                stacklevel=5,
            )
            return _EAGER, f" -> graph break at {where} ({what}); runs eagerly"
        if t1.output_requires_grad and not t1.grad_effects and not t1.aot:
            return _EAGER, (
                " -> its outputs require grad (autograd through a compiled graph is not "
                "supported): runs eagerly; compile the whole training step instead"
            )
        return None

    def _build(self, args, kwargs, leaves, static):
        tensors = [a for a in leaves if isinstance(a, Tensor)]
        batch = None
        if not static:
            first = next((t for t in tensors if t._data.ndim), None)
            if first is not None and first._data.shape[0] > 0:
                batch = first._data.shape[0]

        def run_trace(b, shift) -> Trace:
            a, k = self._copies(args, kwargs, leaves, batch, b, shift)
            return trace(self.fn, a, k, self.fullgraph)

        t1 = run_trace(batch, 0)
        early = self._first_trace(t1)
        if early is not None:
            return early

        g, why = None, ""

        def resized_trace(k) -> Trace | None:
            # (inputs whose batch is not axis 0, such as an RNN's (layers, batch, hidden)
            # state, keep their size here and the function may reject the mix: then the
            # batch is not symbolic this simple way; a later call at another size finds the
            # changing axes of every input)
            nonlocal why
            try:
                return run_trace(batch + k, k)
            except CompileError:
                raise
            except Exception as exc:  # noqa: BLE001  (reported in the explanation)
                why = f"the function fails when only axis 0 of the inputs is resized ({exc})"
                return None

        floats: list = []
        t2 = resized_trace(1) if batch is not None else None
        if t2 is not None:
            g, why, floats = unify_floats(t1, t2, batch, batch + 1)
            if g is not None and floats:
                # Python floats computed from the batch size: two more traces to fit them
                more = []
                for k in (2, 3):
                    tk = resized_trace(k)
                    if tk is None:
                        g = None
                        break
                    gk, whyk, fk = unify_floats(t1, tk, batch, batch + k)
                    if gk is None:
                        g, why = None, whyk
                        break
                    more.append(fk)
                if g is not None:
                    why = fit_floats(g, floats, more)
                    if why:
                        g = None
        if g is None:
            t2 = run_trace(batch, 1)
            g, why2 = unify(t1, t2, batch or 0, batch or 0)
            if g is None:
                warnings.warn(
                    f"ember.compile: {getattr(self.fn, '__name__', 'function')} does not trace "
                    f"to a stable graph ({why2}); it runs eagerly for this signature",
                    stacklevel=4,
                )
                return _EAGER, f" -> unstable graph ({why2}); runs eagerly"
            _name_captured(g, t1)
            entry = _Entry(g, g, static=True)
            return entry, (f" (batch not symbolic: {why})" if why else "")
        _name_captured(g, t1)
        entry = _Entry(g, g, static=False)
        entry.t1, entry.b1 = _slim(t1), batch
        entry.sizes = {batch + k for k in range(4 if floats else 2)}
        return entry, ""

    def _copies(self, args, kwargs, leaves, batch, b, shift):
        """The arguments with each tensor copied (rows of the batch dim: ``b`` of them,
        cyclically from row ``shift``), for a dry-run trace."""
        new = []
        for a in leaves:
            if isinstance(a, Tensor):
                n = a._data.shape[0] if a._data.ndim else 0
                a = resized(a, b if (b is not None and n == batch) else n, shift)
            new.append(a)
        return unflatten(_tree_of(args, kwargs), new)

    def _holds_at(self, entry: _Entry, args, kwargs, leaves, size: int) -> str:
        """Trace at a new batch size (a dry run) and check that it gives the same graph as
        the symbolic one: Python code may branch on the batch size. Returns "" or why not."""
        assert entry.t1 is not None
        a, k = self._copies(args, kwargs, leaves, None, None, 0)
        t = trace(self.fn, a, k, self.fullgraph)
        if t.breaks:
            return f"a graph break at batch size {size}"
        g, why, floats = unify_floats(entry.t1, t, entry.b1, size)
        if g is None:
            return why
        ratios = _ratios(entry.unified)
        if len(ratios) != len(floats):
            return "floats of the batch size differ"
        for r, fp in zip(ratios, floats):
            want = fp.points[1][1]
            if not abs(r.eval({"B": size}) - want) <= 1e-12 * max(1.0, abs(want)):
                return f"{fp.what}: a float of the batch size does not follow its fitted form"
        if not _same_graph(g, entry.unified):
            return "the graph at this batch size differs (Python code depends on the batch size)"
        for r, fp in zip(ratios, floats):
            r.known[size] = fp.points[1][1]  # bit-exact from now on
        return ""

    # -- inspection
    def graph(self, *args: Any, **kwargs: Any) -> Graph:
        """The optimized graph for these arguments (traced as a dry run if not cached)."""
        leaves, tree = flatten((args, kwargs))
        keys = [self._key(leaves, tree, self.dynamic, sp) for sp in reversed(self.specs)]
        keys += [self._key(leaves, tree, symbolic) for symbolic in (self.dynamic, False)]
        for k in keys:
            e = self.cache.get(k)
            if isinstance(e, _Entry):
                return e.graph
        spec = self._dynamic_spec(leaves, tree)  # axes marked with mark_dynamic
        if spec:
            entry, why = self._build_multi(args, kwargs, leaves, spec)
            if isinstance(entry, _Entry):
                return entry.graph
            if entry is None:
                for pos in spec:
                    self._not_symbolic(leaves, pos, why)
        entry, note = self._build(args, kwargs, leaves, not self.dynamic)
        if entry is _EAGER:
            raise CompileError(f"no graph for these arguments:{note}")
        if note:
            self.events.append(f"graph():{note}")
        return entry.graph

    def explain(self) -> Explanation:
        """The trace history (see :class:`Explanation`)."""
        return Explanation(self)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # ``@ember.compile`` on a method (``def step(self, x)`` in a class, or a Module's
        # ``forward``): each instance gets its own compiled bound method, with its own cache
        # and explain(), kept in the instance's __dict__ so that it dies with the instance
        if obj is None:
            return self
        store = getattr(obj, "__dict__", None)
        if not isinstance(store, dict):  # (__slots__: one cache, the instance a guard)
            return types.MethodType(self, obj)
        per = store.get("_ember_compiled_methods")
        if per is None:
            per = store["_ember_compiled_methods"] = _CompiledMethods()
        bound = per.get(id(self))
        if bound is None:
            bound = per[id(self)] = CompiledFunction(
                types.MethodType(self.fn, obj),
                dynamic=self.dynamic,
                fullgraph=self.fullgraph,
                name=self.name,
                recompile_limit=self.recompile_limit,
            )
        return bound

    def __getattr__(self, name: str) -> Any:
        # a compiled module forwards everything else (parameters(), train(), ...) to it
        fn = self.__dict__.get("fn")
        if name == "_orig_mod" and fn is not None:  # torch's OptimizedModule._orig_mod
            from ..nn.modules.module import Module

            if isinstance(fn, Module):
                return fn
        target = getattr(fn, "__self__", fn)
        if target is None:
            raise AttributeError(name)
        return getattr(target, name)


def _rebuild(fn, dynamic, fullgraph, name, recompile_limit) -> CompiledFunction:
    return CompiledFunction(
        fn, dynamic=dynamic, fullgraph=fullgraph, name=name, recompile_limit=recompile_limit
    )


class _CompiledMethods(dict):
    """An instance's compiled methods (``id(descriptor) -> CompiledFunction``). A copy of the
    instance (``copy.deepcopy``, pickling) starts with none: its methods compile afresh
    against its own tensors."""

    def __deepcopy__(self, memo: dict) -> _CompiledMethods:
        return _CompiledMethods()

    def __copy__(self) -> _CompiledMethods:
        return _CompiledMethods()

    def __reduce__(self) -> tuple:
        return (_CompiledMethods, ())


_BACKENDS = (None, "ember", "inductor", "eager")
_MODES = (
    None,
    "default",
    "lite",
    "reduce-overhead",
    "max-autotune",
    "max-autotune-no-cudagraphs",
)


def compile(
    model: Callable | None = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: str | Callable | None = None,
    mode: str | None = None,
    options: dict | None = None,
    name: str | None = None,
    disable: bool = False,
    recompile_limit: int | None = None,
    isolate_recompiles: bool = False,
    shapes_spec: Any = None,
) -> Any:
    """Compile a function or module into a graph on first call per input signature
    (``torch.compile``'s parameters).

    Usable as ``ember.compile(fn)``, ``@ember.compile`` or ``@ember.compile(dynamic=False)``.
    A module gives an ``OptimizedModule`` (``ember.compiler.OptimizedModule``): an
    ``nn.Module`` holding it as the submodule ``_orig_mod`` (its parameters and state dict,
    names prefixed ``_orig_mod.``), forwarding attribute access to it, whose forward is
    compiled.
    The batch dimension (dim 0 of the tensor arguments) is symbolic unless ``dynamic=False``
    (``None``, the default, and ``True`` make it symbolic), and so becomes any other axis
    whose size changes between calls (one retrace) or that ``ember.compile.mark_dynamic``
    marks (see the module doc for what stays specialized); ``fullgraph=True`` raises on a
    graph break instead of running that signature eagerly. Every trace is explained by
    :func:`explain` and logged (``logging`` logger ``"ember.compile"``, level INFO) with the
    guard that failed; after ``recompile_limit`` graphs (default 8) new signatures run
    eagerly. ``backend`` is ``"ember"`` (or ``None``/``"inductor"``, the same), or
    ``"eager"`` (no compilation, as ``disable=True``); ``mode`` is accepted for
    compatibility and changes nothing (one executor); ``name`` names the function in logs.
    ``options``, ``isolate_recompiles`` and ``shapes_spec`` are PyTorch's and not supported
    (only their defaults are accepted).

    Example:
        >>> import ember
        >>> @ember.compile
        ... def f(x, y):
        ...     return (x * y + 1).relu()
        >>> f(ember.ones(2), ember.ones(2)).tolist()
        [2.0, 2.0]
    """
    if callable(backend) or backend not in _BACKENDS:
        raise ValueError(
            f"ember.compile: unknown backend {backend!r}; expected one of "
            f"{[b for b in _BACKENDS if b]} (or None)"
        )
    if not isinstance(fullgraph, bool):
        raise TypeError(f"ember.compile: fullgraph must be a bool, got {fullgraph!r}")
    if dynamic is not None and not isinstance(dynamic, bool):
        raise TypeError(f"ember.compile: dynamic must be a bool or None, got {dynamic!r}")
    if mode not in _MODES:
        raise ValueError(f"ember.compile: unknown mode {mode!r}; expected one of {_MODES}")
    if options:
        raise ValueError(f"ember.compile takes no backend options, got {sorted(options)}")
    if shapes_spec is not None:
        raise ValueError(
            "ember.compile: shapes_spec is not supported (the batch dimension is symbolic; "
            "other dimensions become symbolic when their size changes, or with "
            "ember.compile.mark_dynamic(tensor, dim))"
        )
    if recompile_limit is not None and (
        not isinstance(recompile_limit, int) or recompile_limit < 1
    ):
        raise ValueError(
            f"ember.compile: recompile_limit must be a positive int, got {recompile_limit!r}"
        )
    _ = isolate_recompiles  # every compiled function has its own cache anyway
    kw: dict[str, Any] = {
        "dynamic": dynamic is not False,
        "fullgraph": fullgraph,
        "name": name,
        "recompile_limit": 8 if recompile_limit is None else recompile_limit,
    }
    if model is None:
        return lambda f: compile(
            f,
            fullgraph=fullgraph,
            dynamic=dynamic,
            backend=backend,
            mode=mode,
            name=name,
            disable=disable,
            recompile_limit=recompile_limit,
        )
    if not callable(model):
        raise TypeError(f"ember.compile expects a function or a Module, got {type(model).__name__}")
    if disable or backend == "eager" or getattr(model, "_ember_disabled", False):
        return model  # (an ember.compiler.disable-d function stays eager)
    return _compiled(model, kw)


def _compiled(model: Callable, kw: dict[str, Any]) -> Any:
    """A module gives an ``OptimizedModule`` (an ``nn.Module`` holding it as ``_orig_mod``,
    as ``torch.compile``), anything else a :class:`CompiledFunction`."""
    from ..nn.modules.module import Module

    if isinstance(model, Module):
        from ._optimized import OptimizedModule

        return OptimizedModule(model, CompiledFunction(model, **kw))
    return CompiledFunction(model, **kw)


def explain(fn: Any) -> Explanation:
    """The retrace history of a compiled function (``ember.compile.explain(f)``).

    Example:
        >>> import ember
        >>> f = ember.compile(lambda x: x + 1)
        >>> _ = f(ember.ones(2, 3)); _ = f(ember.ones(2, 4))
        >>> print(ember.compile.explain(f).events[1])  # doctest: +NORMALIZE_WHITESPACE
        trace 2 at call 2: guard failed: argument 0: shape ('B', 3) float32 ->
        shape ('B', 4) float32; symbolic: argument 0 dim 0: B, argument 0 dim 1: s1
        >>> _ = f(ember.ones(5, 7)); ember.compile.explain(f).traces
        2
    """
    compiled = getattr(fn, "__dict__", {}).get("_compiled")  # an OptimizedModule's
    if not isinstance(fn, CompiledFunction) and not isinstance(compiled, CompiledFunction):
        raise TypeError("explain() takes a function or module returned by ember.compile")
    return fn.explain()


compile.explain = explain  # type: ignore[attr-defined]
compile.mark_dynamic = mark_dynamic  # type: ignore[attr-defined]
compile.maybe_mark_dynamic = mark_dynamic  # type: ignore[attr-defined]


def trace_graph(fn: Callable, *args: Any, **kwargs: Any) -> Graph:
    """The graph of ``fn(*args, **kwargs)`` at these exact shapes (a dry run, nothing cached).

    Example:
        >>> import ember
        >>> from ember.compiler import trace_graph
        >>> trace_graph(lambda x: x.exp().sum(), ember.ones(3)).primitives()
        ['exp', 'sum']
    """
    leaves, tree = flatten((args, kwargs))

    def copies(shift):
        new = [
            resized(a, a._data.shape[0] if a._data.ndim else 0, shift)
            if isinstance(a, Tensor)
            else a
            for a in leaves
        ]
        return unflatten(tree, new)

    t1 = trace(fn, *copies(0))
    t2 = trace(fn, *copies(1))
    g, why = unify(t1, t2, 0, 0)
    if g is None:
        raise CompileError(f"no single graph: {why}")
    return g
