"""Memory planning: elementwise results written into preallocated buffers, reused.

For the elementwise primitives that are NumPy ufuncs (``add``, ``mul``, ``exp``, ...) and
for fused groups (whose kernels write a C-contiguous result into the buffer unless eager code
would give it another layout, or the buffer holds one of the group's operands) the executor
passes ``out=``: each such result gets a buffer from a pool keyed by shape and dtype.
A buffer returns to the pool after the last use of its value, so a later equation (possibly
the very one that reads it, in place: ``np.exp(a, out=a)``) reuses it; buffers persist across
calls (reallocated only when the symbolic batch size changes).

A value is planned only when nothing can observe its memory afterwards: not an output or a
``.grad`` effect of the graph, never written in place, and read only by primitives that make
fresh arrays (no views, no casts that may return their input). The executor checks on the
first run of each shape that no result shares memory with a planned buffer and drops the plan
otherwise.

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> g = trace_graph(lambda x: ((x * 2).exp() + 1).sum(), ember.ones(4))
    >>> plan = plan_buffers(g)
    >>> len(plan.var_buffer), len(plan.buffers)  # mul, exp, add share one buffer
    (3, 1)
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal, Var
from ._util import escaping, mutable_vars

__all__ = ["UFUNCS", "BufferPlan", "out_kernel", "plan_buffers"]

# primitive name -> the ufunc with the same result (float dtypes only, see _plannable)
UFUNCS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "abs": np.absolute,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "sin": np.sin,
    "cos": np.cos,
}


def out_kernel(prim):
    """The primitive's kernel in ufunc form, ``f(*arrays, out=buf)``, or None: a kernel-layer
    op's own ``impl.into`` (``exp``, ``tanh``, ``silu``... whose kernels are no longer NumPy's
    ufuncs) or the ufunc of :data:`UFUNCS`."""
    if getattr(prim, "kernel", None) is not None:  # a fused group: its impl takes out=
        return prim.impl
    into = getattr(prim.impl, "into", None)
    if into is not None:
        return lambda x, out=None: into(x, out)
    return UFUNCS.get(prim.name)


_FRESH_KINDS = ("elementwise", "reduction", "contraction")
_ALIASING = ("convert", "contiguous")


class BufferPlan:
    """``var_buffer``: id(var) -> buffer index; ``buffers``: (shape, dtype) per buffer."""

    def __init__(self) -> None:
        self.var_buffer: dict[int, int] = {}
        self.buffers: list[tuple[tuple, np.dtype]] = []


_AGREES: dict[int, bool] = {}


def _agrees(prim) -> bool:
    """Whether the primitive's kernel gives the ufunc's results bit for bit (checked once on
    sample arrays: kernels may be replaced by faster ones that round differently)."""
    if getattr(prim, "kernel", None) is not None:  # fused: the same kernel either way
        return True
    r = _AGREES.get(id(prim))
    if r is None:
        uf = out_kernel(prim)
        nin = getattr(uf, "nin", 1)
        rng = np.random.default_rng(0)
        r = True
        for dt, n in ((np.float32, 1000), (np.float64, 1000), (np.float32, 300_000)):
            args = [rng.uniform(0.1, 2.0, n).astype(dt) for _ in range(nin)]
            try:
                with np.errstate(all="ignore"):
                    a, b = prim.impl(*args), uf(*args)
                r = r and np.asarray(a).dtype == b.dtype and np.array_equal(a, b)
            except Exception:  # noqa: BLE001  (a kernel that refuses the sample: not planned)
                r = False
        _AGREES[id(prim)] = r
    return r


def _plannable(e, out_ids, mutable) -> bool:
    if out_kernel(e.prim) is None or e.mutates or e.params or len(e.outputs) != 1:
        return False
    if not _agrees(e.prim):
        return False
    o = e.outputs[0]
    if o.dtype.np not in (np.float16, np.float32, np.float64):
        return False
    if id(o) in out_ids or id(o) in mutable:
        return False
    for v in e.inputs:
        if isinstance(v, Var) and v.dtype is not o.dtype:
            return False
        if isinstance(v, Literal) and not isinstance(v.value, (int, float)):
            return False
    return True


def plan_buffers(graph: Graph) -> BufferPlan:
    """Assign buffers to the plannable elementwise results of ``graph``."""
    out_ids = escaping(graph)
    mutable = mutable_vars(graph)
    candidates = {id(e.outputs[0]) for e in graph.eqns if _plannable(e, out_ids, mutable)}
    # every reader must make a fresh array
    last: dict[int, int] = {}
    for k, e in enumerate(graph.eqns):
        safe = e.prim.kind in _FRESH_KINDS and e.prim.name not in _ALIASING and not e.mutates
        for v in e.inputs:
            if isinstance(v, Var) and id(v) in candidates:
                if not safe:
                    candidates.discard(id(v))
                last[id(v)] = k
    plan = BufferPlan()
    free: dict[tuple, list[int]] = {}
    held: dict[int, int] = {}  # id(var) -> buffer, while the value is live
    for k, e in enumerate(graph.eqns):
        # values read for the last time here free their buffer first (in-place reuse)
        for v in e.inputs:
            if isinstance(v, Var) and id(v) in held and last.get(id(v)) == k:
                b = held.pop(id(v))
                free.setdefault(plan.buffers[b], []).append(b)
        o = e.outputs[0]
        if id(o) not in candidates:
            continue
        key = (o.shape, o.dtype.np)
        pool = free.get(key)
        if pool:
            b = pool.pop()
        else:
            b = len(plan.buffers)
            plan.buffers.append(key)
        plan.var_buffer[id(o)] = b
        if id(o) in last:
            held[id(o)] = b
        else:  # never read: the buffer is free again at once
            free.setdefault(key, []).append(b)
    return plan
