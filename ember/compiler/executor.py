"""The executor: a graph lowered to a flat list of steps over a slot array.

Elementwise groups are fused first (:mod:`ember.compiler.passes.fuse`, when numba is
installed). Each step is ``(impl, input slots, literal template, params, symbolic?, output
slots, kill)``: no Tensor objects, no dictionaries of vars, no autograd at run time. Slots
of values whose last use has passed are cleared (``kill``) so that memory is returned early.
Params holding symbolic dims or seeds are resolved per call; the others are passed as they are.

With ``EMBER_COMPILE_DEBUG=1`` (or ``debug=True``) every call also runs the unoptimized
traced graph through the reference interpreter (:func:`ember.compiler.ir.interpret`) on
copies of the state and compares every value that both compute, raising an error that names
the first equation whose result differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._env import env_flag
from .ir import Graph, HyperParam, Literal, Seed, Var, interpret, is_symbolic, resolve

__all__ = ["CompileDebugError", "Program"]


class CompileDebugError(AssertionError):
    """A compiled value differs from the reference (``EMBER_COMPILE_DEBUG=1``)."""


class ShapeGuardError(Exception):
    """The symbolic graph does not hold at these input shapes (the caller retraces)."""


def debug_enabled() -> bool:
    return env_flag("EMBER_COMPILE_DEBUG", False)


class Program:
    """A graph ready to run: ``Program(graph)(inputs) -> outputs`` on NumPy arrays.

    Example:
        >>> import numpy as np, ember
        >>> from ember.compiler import trace
        >>> from ember.compiler.executor import Program
        >>> t = trace.trace(lambda x: x * 2 + 1, (ember.ones(2),), {})
        >>> g, _ = trace.unify(t, t, 2, 2)
        >>> Program(g)([np.ones(2, np.float32)])[0].tolist()
        [3.0, 3.0]
    """

    def __init__(
        self,
        graph: Graph,
        reference: Graph | None = None,
        debug: bool | None = None,
        plan_memory: bool = True,
        fuse: bool | None = None,
    ):
        from . import codegen
        from .passes.fuse import fuse_elementwise
        from .passes.memory import out_kernel, plan_buffers

        if fuse if fuse is not None else codegen.available():
            graph = fuse_elementwise(graph)
        self.graph = graph
        self.failed_step: int | None = None  # the equation whose kernel failed last
        plan = plan_buffers(graph) if plan_memory else None
        self.plan = plan
        self.reference = reference
        self.debug = debug_enabled() if debug is None else debug
        slot: dict[int, int] = {}

        def s(v: Var) -> int:
            i = slot.get(id(v))
            if i is None:
                i = slot[id(v)] = len(slot)
            return i

        self.in_slots = [s(v) for v in graph.inputs]
        self.cap_slots = [s(v) for v in graph.captured]
        self.cap_shapes = [v.shape for v in graph.captured]
        # last use of each slot, so dead values are released
        keep = {s(v) for v in graph.outputs if isinstance(v, Var)}
        keep |= {s(v) for _, v in graph.grad_effects if v is not None}
        keep |= {s(v) for _, v in getattr(graph, "input_grad_effects", ()) if v is not None}
        keep |= set(self.cap_slots) | set(self.in_slots)
        last: dict[int, int] = {}
        for k, e in enumerate(graph.eqns):
            for v in e.inputs:
                if isinstance(v, Var):
                    last[s(v)] = k
            for v in e.outputs:
                last.setdefault(s(v), k)
        kills: list[list[int]] = [[] for _ in graph.eqns]
        for sl, k in last.items():
            if sl not in keep:
                kills[k].append(sl)
        steps: list[tuple] = []
        for k, e in enumerate(graph.eqns):
            ins: list[Any]
            tmpl = None
            if any(isinstance(v, Literal) for v in e.inputs):
                tmpl = [v.value if isinstance(v, Literal) else None for v in e.inputs]
                ins = [(p, s(v)) for p, v in enumerate(e.inputs) if isinstance(v, Var)]
            else:
                ins = [s(v) for v in e.inputs if isinstance(v, Var)]
            outs = tuple(s(v) for v in e.outputs)
            buf = -1
            if plan is not None:
                buf = plan.var_buffer.get(id(e.outputs[0]), -1)
            sym = 0
            if is_symbolic(e.params) or (tmpl is not None and is_symbolic(tmpl)):
                # 1: depends on the symbols only (resolved once per batch size); 2: per call
                sym = 2 if _per_call(e.params) or (tmpl is not None and _per_call(tmpl)) else 1
            steps.append(
                (
                    out_kernel(e.prim) if buf >= 0 else e.prim.impl,
                    tuple(ins),
                    tmpl,
                    e.params,
                    sym,
                    outs,
                    e.prim.n_out != 1,
                    tuple(kills[k]),
                    buf,
                    {},
                )
            )
        self.steps = steps
        # the same steps without buffers: the first run checks that no result aliases a value
        # the plan would overwrite (and drops such values from the plan)
        self.plain_steps = [
            (e.prim.impl, *st[1:8], -1, st[9]) if st[8] >= 0 else st
            for e, st in zip(graph.eqns, steps)
        ]
        self.buffer_shapes = [b[0] for b in plan.buffers] if plan is not None else []
        self.buffer_dtypes = [b[1] for b in plan.buffers] if plan is not None else []
        self.buffers: list[Any] = [None] * len(self.buffer_shapes)
        self.buffer_slots = {
            slot[vid]: b for vid, b in (plan.var_buffer.items() if plan else ()) if vid in slot
        }
        self.validated = not self.buffer_slots
        self.n_slots = len(slot)
        self.slot_of = slot
        self.out_spec = [
            (True, s(v)) if isinstance(v, Var) else (False, v.value) for v in graph.outputs
        ]
        self.verified: set[tuple] = set()
        self._unplan: set[int] = set()
        self.calls = 0

    # -- shape guard for symbolic graphs
    def check_shapes(self, shapes: Sequence[tuple[int, ...]]) -> dict[str, int]:
        g = self.graph
        env = g.bind_symbols(shapes) if g.symbols else {}
        key = tuple(sorted(env.items()))
        if key in self.verified:
            return env
        for v, sh in zip(g.inputs, shapes):
            if tuple(resolve(d, env) for d in v.shape) != tuple(sh):
                raise ShapeGuardError(f"input shape {tuple(sh)} does not match {v.type_str()}")
        if g.symbols:
            _verify_abstract(g, env)
        self.verified.add(key)
        return env

    def __call__(
        self,
        inputs: Sequence[Any],
        env: dict[str, int] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[Any]:
        g = self.graph
        if env is None:
            env = self.check_shapes([np.shape(a) for a in inputs])
        slots: list[Any] = [None] * self.n_slots
        for i, a in zip(self.in_slots, inputs):
            slots[i] = a
        for i, t in zip(self.cap_slots, g.captured_tensors):
            slots[i] = t._data
        if seeds is None:
            seeds = [gen.next_seed() for gen in g.seed_sources] if g.seed_sources else ()
        self.last_seeds = seeds
        if self.debug:
            ref = self._reference_run(inputs, seeds, env)
        validate = not self.validated
        steps = self.plain_steps if validate else self.steps
        bufs = self._buffers(env) if not validate and self.buffers else self.buffers
        with np.errstate(all="ignore"):
            ekey = tuple(env.values()) if env else ()
            for impl, ins, tmpl, params, sym, outs, multi, kill, buf, cache in steps:
                if sym:
                    if sym == 1:
                        c = cache.get(ekey)
                        if c is None:
                            c = cache[ekey] = (resolve(params, env), resolve(tmpl, env))
                        params, tm = c
                    else:
                        params, tm = resolve(params, env, seeds), resolve(tmpl, env, seeds)
                else:
                    tm = tmpl
                if tm is None:
                    args = [slots[i] for i in ins]
                else:
                    args = list(tm)
                    for p, i in ins:
                        args[p] = slots[i]
                try:
                    if buf >= 0:
                        out = impl(*args, out=bufs[buf])
                    else:
                        out = impl(*args, **params)
                except Exception as exc:
                    err = self._op_error(outs, args, params, exc)
                    if err is exc:  # (already the clear error: never its own cause)
                        del err  # (held by this frame, it would keep the traceback's frames alive)
                        raise
                    try:
                        raise err from exc
                    finally:  # not held by this frame (a cycle keeping frames alive)
                        del err
                if multi:
                    for i, o in zip(outs, out):
                        slots[i] = o if type(o) is np.ndarray else np.asarray(o)
                else:
                    slots[outs[0]] = out if type(out) is np.ndarray else np.asarray(out)
                if validate:
                    self._check_aliasing(ins, tmpl, outs, slots)
                for i in kill:
                    slots[i] = None
                if self.debug:
                    self._compare(ref, outs, slots)
        if validate:
            self._finish_validation()
        self.calls += 1
        self._slots = slots  # read by the grad effects of the caller
        return [slots[x] if is_var else resolve(x, env) for is_var, x in self.out_spec]

    def _op_error(self, outs: tuple, args: list, params: Any, exc: Exception) -> Exception:
        """The error eager ``bind`` raises for a kernel failure (bad input values), naming
        the op: the shape rule's error, or the kernel's wrapped by ``_op_error``."""
        from ..ops._core import _aval
        from ..ops._core import _op_error as op_error

        k = next((k for k, st in enumerate(self.steps) if st[5] is outs), None)
        if k is None:
            k = next((k for k, st in enumerate(self.plain_steps) if st[5] is outs), None)
        if k is None:
            return exc
        self.failed_step = k
        prim = self.graph.eqns[k].prim
        if prim.abstract is not None:
            try:
                prim.abstract(*[_aval(a) for a in args], **params)
            except Exception as err:  # noqa: BLE001  (the clear error, as eager raises)
                return err
        return op_error(prim, args, params, exc)

    def _buffers(self, env: dict[str, int]) -> list[Any]:
        bufs = self.buffers
        for b, (shape, dt) in enumerate(zip(self.buffer_shapes, self.buffer_dtypes)):
            want = tuple(resolve(d, env) for d in shape)
            a = bufs[b]
            if a is None or a.shape != want:
                bufs[b] = np.empty(want, dt)
        return bufs

    def _check_aliasing(self, ins, tmpl, outs, slots) -> None:
        planned = self.buffer_slots
        for o in outs:
            # a buffer is C-contiguous: keep eager's layout (kernels after it may round
            # differently on other layouts)
            if o in planned and not slots[o].flags.c_contiguous:
                self._unplan.add(o)
        in_slots = [i for _p, i in ins] if tmpl is not None else ins
        for i in in_slots:
            if i in planned and slots[i] is not None:
                for o in outs:
                    if o not in planned and np.may_share_memory(slots[o], slots[i]):
                        self._unplan.add(i)

    def _finish_validation(self) -> None:
        bad = self._unplan
        if bad:
            # rebuild the steps of the values that must keep fresh arrays
            st = []
            for e, plain, planned in zip(self.graph.eqns, self.plain_steps, self.steps):
                st.append(plain if any(self.slot_of[id(o)] in bad for o in e.outputs) else planned)
            self.steps = st
        self.validated = True

    def value(self, v: Var) -> Any:
        """The value of ``v`` in the last run (outputs and effects only)."""
        return self._slots[self.slot_of[id(v)]]

    # -- EMBER_COMPILE_DEBUG
    def _reference_run(self, inputs, seeds, symbols):
        ref_graph = self.reference if self.reference is not None else self.graph
        cap = [np.array(t._data, copy=True) for t in ref_graph.captured_tensors]
        env: dict[Var, Any] = {}
        interpret(ref_graph, [np.array(a, copy=True) for a in inputs], cap, seeds, env, symbols)
        by_id = {id(v): (v, a) for v, a in env.items()}
        names = {}
        for k, e in enumerate(ref_graph.eqns):
            for v in e.outputs:
                names[id(v)] = f"equation {k} ({e.prim.name})"
        return {
            self.slot_of[i]: (a, names.get(i, "a value"))
            for i, (_v, a) in by_id.items()
            if i in self.slot_of and i in names
        }

    def _compare(self, ref, outs, slots):
        for i in outs:
            r = ref.get(i)
            if r is None or slots[i] is None:
                continue
            want, name = r
            got = slots[i]
            if np.shape(got) != np.shape(want) or not np.allclose(
                got, want, rtol=1e-5, atol=1e-6, equal_nan=True
            ):
                if np.shape(got) == np.shape(want):
                    err = np.max(np.abs(np.asarray(got, np.float64) - want))
                    how = f"shape {np.shape(got)}, max abs error {err:.6g}"
                else:
                    how = f"shape {np.shape(got)}, the reference's {np.shape(want)}"
                raise CompileDebugError(
                    f"EMBER_COMPILE_DEBUG: {name} differs from the reference interpreter "
                    f"(the traced graph run primitive by primitive): {how}"
                )


def _per_call(value: Any) -> bool:
    """Whether a param changes between calls at the same shapes (seeds, hyperparameters)."""
    t = type(value)
    if t is Seed or t is HyperParam:
        return True
    if t is tuple or t is list:
        return any(_per_call(v) for v in value)
    if t is dict:
        return any(_per_call(v) for v in value.values())
    return False


def _verify_abstract(g: Graph, env: dict[str, int]) -> None:
    """Check the symbolic shapes at this batch size with the primitives' shape rules."""
    from ..ops._core import AbstractValue

    for e in g.eqns:
        if e.prim.abstract is None:
            continue
        avals = [v.aval(env) if isinstance(v, Var) else resolve(v.value, env) for v in e.inputs]
        avals = [
            AbstractValue(np.shape(a), _dt(a)) if isinstance(a, np.ndarray) else a for a in avals
        ]
        try:
            out = e.prim.abstract(*avals, **resolve(e.params, env, [0] * len(g.seed_sources)))
        except Exception as exc:  # the rule rejects these shapes: do not trust the graph
            raise ShapeGuardError(f"{e.prim.name}: {exc}") from exc
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for o, v in zip(outs, e.outputs):
            want = tuple(resolve(d, env) for d in v.shape)
            if hasattr(o, "shape") and tuple(o.shape) != want:
                raise ShapeGuardError(
                    f"{e.prim.name}: shape {tuple(o.shape)} at this batch size, the graph "
                    f"says {want}"
                )


def _dt(a):
    from .._dtype import from_numpy_dtype

    return from_numpy_dtype(a.dtype)
