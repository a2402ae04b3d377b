"""The reverse-mode engine: walks recorded :class:`Node` s and applies VJPs."""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heapify, heappop, heappush
from typing import Any

import numpy as np

from .._dtype import from_numpy_dtype
from .._tensor import Tensor, _from_node_output, _new
from ..ops._ad import ARRAY_VJPS, UNREAD_OUTPUTS, VJPS, ZERO_FILL_OFF
from ..ops._core import _QUIET, Node, Primitive, _as_array, _fp_reset, _fp_set, _state
from ..ops._ew_binary import _flat_binary, add_into
from ..ops.indexing import getitem_p
from ..ops.reduction import sum_to
from ._slice_parts import SliceParts

__all__ = ["run_backward"]


def _toposort(roots):
    """Nodes reachable from ``roots``, each after every node that feeds it a gradient."""
    order = []
    seen = set()
    add = seen.add
    for root in roots:
        if root is None or root in seen:
            continue
        add(root)
        stack = [(root, iter(root.edges))]
        push, pop = stack.append, stack.pop
        while stack:
            node, it = stack[-1]
            for e in it:
                if type(e) is Node and e not in seen:
                    add(e)
                    push((e, iter(e.edges)))
                    break
            else:
                pop()
                order.append(node)
    order.reverse()
    return order


_NO_VERSION = (0,)  # what a constant input's version reads as


def _check_saved(node):
    """Raise if a tensor saved for this node's backward was modified in place."""
    if node.versions is not None:
        for a, v in zip(node.inputs, node.versions):
            if hasattr(a, "_version") and a._version[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: input of {node.name()} (shape "
                    f"{tuple(a.shape)}) is at version {a._version[0]}; expected version {v}. "
                    "Hint: use the out-of-place form of the op, or .clone() before modifying."
                )
    if node.out_version is not None:
        unread = UNREAD_OUTPUTS.get(node.prim, ())
        for i, (ver, v) in enumerate(node.out_version):
            if ver[0] != v and i not in unread:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: the output of {node.name()} is at version "
                    f"{ver[0]}; expected version {v}. Hint: use the out-of-place form."
                )


def _saved_outputs(node):
    if node.out_data is None:
        return None
    outs = tuple(_from_node_output(node, i) for i in range(len(node.out_data)))
    return outs[0] if len(outs) == 1 else outs


def _fit(ct, shape, dtype):
    """Reduce a broadcast cotangent to ``shape`` and cast it to the input's dtype."""
    if ct._data.shape != shape:
        ct = sum_to(ct, shape)
    if ct._data.dtype != dtype:
        ct = ct.to(from_numpy_dtype(dtype))
    return ct


def _add(a, b):
    if a is None:
        return b
    return a + b


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor | None],
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
    allow_unused: bool = False,
    accumulate: bool = True,
) -> list[Tensor | None] | None:
    """Back-propagate ``root_grads`` from ``roots``.

    With ``accumulate`` the leaves' ``.grad`` is updated (``Tensor.backward``);
    otherwise the gradients for ``inputs`` are returned (``autograd.grad``).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> run_backward([y], [ember.tensor(1.0)], inputs=[x], accumulate=False)[0].tolist()
        [2.0, 4.0]
    """
    if _QUIET is None:
        return _run_backward(
            roots, root_grads, retain_graph, create_graph, inputs, allow_unused, accumulate
        )
    # inf - inf and inf * 0 in gradient sums give nan silently, as PyTorch (the ops' kernels
    # are quiet already; this covers the engine's own array arithmetic, once per pass)
    token = _fp_set(_QUIET)
    try:
        return _run_backward(
            roots, root_grads, retain_graph, create_graph, inputs, allow_unused, accumulate
        )
    finally:
        _fp_reset(token)


def _run_backward(roots, root_grads, retain_graph, create_graph, inputs, allow_unused, accumulate):
    grads: dict[Node, Any] = {}  # node -> [grad per output]
    leaf_root = []
    g: Any
    for r, g in zip(roots, root_grads):
        if r._node is None:
            if r.requires_grad:
                leaf_root.append((r, g))
                continue
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a "
                "grad_fn: call .requires_grad_() on an input before computing it"
            )
        slot = grads.setdefault(r._node, [None] * r._node.prim.n_out)
        slot[r._idx] = _add(slot[r._idx], g)

    # For autograd.grad: capture gradients at the requested inputs.
    want: dict[tuple[Any, ...], list[int]] | None = None
    results: Any = None
    if inputs is not None:
        want = {}
        results = [None] * len(inputs)
        for k, t in enumerate(inputs):
            key = ("node", id(t._node), t._idx) if t._node is not None else ("leaf", id(t))
            want.setdefault(key, []).append(k)
    # Leaf gradients are summed over all their uses first, so hooks see the total once.
    leaf_acc: dict[int, Any] = {}  # id(leaf) -> [leaf, grad]
    for r, g in leaf_root:
        e = leaf_acc.setdefault(id(r), [r, None])
        e[1] = _add(e[1], g)

    # (the root gradients' arrays count as assigned: a leaf's .grad never shares the caller's
    # buffer, since later backward calls add into it in place)
    assigned: set[int] = {id(g._data) for g in root_grads if isinstance(g, Tensor)}
    # Leaves with hooks finish as soon as the last node feeding them has run, not after the
    # whole graph, so that e.g. DDP can start reducing gradients while backward goes on.
    # (the scan is skipped until some leaf has had a hook: it costs a pass over every edge)
    pending = None
    order: list[Node] = []
    if want is None and accumulate and _state.leaf_hooks:
        order = _toposort([r._node for r in roots])
        pending = _hooked_leaf_uses(order)
    # Nodes run in decreasing ``seq`` (creation order reversed: a topological order). The
    # heap holds the nodes that have a gradient waiting, so no separate pass sorts the graph
    # first; a node only ever receives gradients from nodes created after it, so when it
    # is popped, all of its gradient is in. With early-finishing leaves every node of the
    # graph is listed up front, as _finish_ready_leaves needs to see each one in turn.
    prefilled = bool(pending)
    if prefilled:
        heap = [(-n.seq, n) for n in order]
    else:
        heap = [(-n.seq, n) for n in grads]
    heapify(heap)
    # NOTE: the loop below runs once per recorded op: names it reads are locals, and the
    # usual node (one output, no hooks, nothing retained) takes no helper calls.
    anomaly = _state.anomaly
    # Gradients summed without a backward graph (and with no tracer watching) add their
    # arrays directly: the same np.add the add primitive runs, minus the dispatch.
    raw = not create_graph and _state.tracer is None
    fast_arrays = raw and not anomaly
    rule_of = VJPS.get
    array_rule_of = ARRAY_VJPS.get
    _ndarray, _array = np.ndarray, _as_array
    pop_grad = grads.pop
    get_grad = grads.get
    _NodeT, _TensorT = Node, Tensor
    # Gradients of basic-index views (getitem: slices, split, chunk, unbind) are added into
    # their input's pending gradient in place (``_slice_grad``) instead of as full-size
    # zero arrays holding one slice each. ``owned``: id -> array of the pending gradients
    # the engine made itself (no one else holds them), which may be added into in place.
    owned: dict[int, np.ndarray] = {}
    # nodes whose pending gradient holds SliceParts (slice gradients kept as pieces)
    sliced: set[Node] = set()
    prev = None
    prev_mode = _state.grad_enabled  # (grad mode for the pass: create_graph)
    _state.grad_enabled = create_graph
    try:
        while heap:
            node = heappop(heap)[1]
            if pending and prev is not None:  # prev's contributions are all in by now
                _finish_ready_leaves(prev, pending, leaf_acc, create_graph, assigned)
            prev = node
            slot = pop_grad(node, None)
            if slot is None:
                continue
            if sliced and node in sliced:  # its slice gradients: summed now, once
                sliced.discard(node)
                slot = [sg.array() if type(sg) is SliceParts else sg for sg in slot]
            if owned:  # the node's gradient is complete: no more in-place adds into it
                for sg in slot:
                    if sg is not None:
                        owned.pop(id(sg._data if isinstance(sg, _TensorT) else sg), None)
            if node.hooks is not None or want is not None or node.retained is not None:
                slot = [_as_tensor(sg) for sg in slot]  # (the array paths store arrays)
                if node.hooks is not None:
                    slot = [_run_hooks(node, i, g) for i, g in enumerate(slot)]
                if want is not None:
                    for i, g in enumerate(slot):
                        for k in want.get(("node", id(node), i), ()):
                            results[k] = _add(results[k], g)
                if node.retained is not None:
                    for i, ref in node.retained.items():
                        t = ref()
                        if t is not None and slot[i] is not None:
                            t.grad = slot[i] if create_graph else slot[i].detach()
            prim = node.prim
            rule = rule_of(prim)
            if rule is None:
                raise _no_rule(prim)
            vs = node.versions
            if vs is not None:  # _check_saved(node)'s test, inlined; it raises the error
                for a, v in zip(node.inputs, vs):
                    if v != getattr(a, "_version", _NO_VERSION)[0]:
                        _check_saved(node)
            vs = node.out_version
            if vs is not None:
                for ver, v in vs:
                    if ver[0] != v:
                        _check_saved(node)
            if len(slot) == 1:
                g = slot[0]
                if g is None:
                    continue
            else:
                if all(s is None for s in slot):
                    continue
                if prim not in ZERO_FILL_OFF:
                    slot = [s if s is not None else _zeros_out(node, i) for i, s in enumerate(slot)]
                g = tuple([_as_tensor(sg) for sg in slot])
            od = node.out_data
            ins = node.inputs
            params = node.params
            cts: Any = NotImplemented
            arule: Any = array_rule_of(prim) if fast_arrays else None
            gd = None
            if arule is not None and type(g) is not tuple:
                gd = g if type(g) is _ndarray else g._data
            if type(gd) is _ndarray:
                # the rule's array fast path: no Tensors, no binds (see ARRAY_VJPS)
                if ins is None:
                    arrs: Any = (None,) * len(node.edges)
                else:
                    arrs = [a._data if isinstance(a, _TensorT) else a for a in ins]
                o = od[0] if od is not None else None
                cts = (
                    arule(node.edges, gd, o, *arrs, **params)
                    if params
                    else arule(node.edges, gd, o, *arrs)
                )
            from_arrays = cts is not NotImplemented
            if not from_arrays:
                if not isinstance(g, (_TensorT, tuple)):
                    g = _new(g)
                if od is None:
                    out = None
                elif len(od) == 1:
                    out = _new(od[0])  # _from_node_output(node, 0), inlined
                    out._version = node.out_version[0][0]
                    if create_graph:
                        out._node = node
                        out.requires_grad = True
                else:
                    out = _saved_outputs(node)
                if ins is None:
                    ins = (None,) * len(node.edges)
                done = 0
                if prim is getitem_p and raw and not anomaly:
                    done = _slice_grad(node, g, grads, owned, sliced)
                    if done == 2 and not prefilled:  # the input's first gradient
                        heappush(heap, (-node.edges[0].seq, node.edges[0]))
                if done:
                    cts = ()
                else:
                    cts = rule(g, out, *ins, **params) if params else rule(g, out, *ins)
                if type(cts) is not tuple:
                    cts = (cts,)
                if anomaly:
                    _check_anomaly(node, cts)
            # Each cotangent is fitted to its input (a broadcast summed back, the dtype cast)
            # and added to the input's pending gradient. Without a backward graph (raw) the
            # pending gradients are bare arrays, added with np.add; Tensors are made where
            # hooks, retained grads, autograd.grad or a Tensor rule need them (_as_tensor).
            for edge, ct, shape, ix in zip(node.edges, cts, node.shapes, node.idx):
                if edge is None or ct is None:
                    continue
                if from_arrays:
                    d = ct if type(ct) is _ndarray else _array(ct)
                elif isinstance(ct, _TensorT):
                    d = ct._data
                else:
                    raise TypeError(f"{node.name()} returned a non-tensor gradient {ct!r}")
                if type(edge) is _NodeT:
                    dtype = edge.out_dtype[ix]
                    if d.shape != shape or d.dtype != dtype:  # _fit, inlined
                        ct = _new(d) if from_arrays else ct
                        if d.shape != shape:
                            ct = sum_to(ct, shape)
                        if ct._data.dtype != dtype:
                            ct = ct.to(dtype)
                        d = ct._data
                    pend = d if raw and type(d) is _ndarray else ct
                    s = get_grad(edge)
                    if s is None:
                        s = grads[edge] = [None] * edge.prim.n_out
                        s[ix] = pend
                        if not prefilled:
                            heappush(heap, (-edge.seq, edge))
                    elif s[ix] is None:
                        s[ix] = pend
                    elif raw:
                        p = s[ix]
                        if type(p) is SliceParts:  # slices and now a whole gradient
                            p = p.array()
                            p += d
                            owned[id(p)] = p
                            s[ix] = p
                            continue
                        if isinstance(p, _TensorT):
                            p = p._data
                        if owned:
                            owned.pop(id(p), None)
                        s[ix] = _sum2(p, d)
                    else:
                        s[ix] = s[ix] + ct
                else:  # a leaf tensor
                    if d.shape != shape or d.dtype != edge._data.dtype:
                        ct = _fit(_new(d) if from_arrays else ct, shape, edge._data.dtype)
                        d = ct._data
                    e = leaf_acc.get(id(edge))
                    if e is None:
                        leaf_acc[id(edge)] = [edge, d if raw and type(d) is _ndarray else ct]
                    elif raw:
                        p = e[1]
                        e[1] = _sum2(p._data if isinstance(p, _TensorT) else p, d)
                    else:
                        e[1] = e[1] + ct
            if not retain_graph:  # _free(node), inlined
                node.inputs = node.out_data = node.versions = node.out_version = None
                freed = _FREED.get(prim)
                node.prim = freed if freed is not None else _freed(prim)
        if pending and prev is not None:
            _finish_ready_leaves(prev, pending, leaf_acc, create_graph, assigned)
        for leaf, g in leaf_acc.values():
            g = _as_tensor(g)
            if leaf._hooks:
                for h in leaf._hooks:
                    r = h(g)
                    if r is not None:
                        g = r
            if want is not None:
                for k in want.get(("leaf", id(leaf)), ()):
                    results[k] = _add(results[k], g)
            elif accumulate:
                _accumulate_leaf(leaf, g, create_graph, assigned)
    finally:
        _state.grad_enabled = prev_mode
    if results is not None:
        for k, (t, r) in enumerate(zip(inputs or (), results)):
            if r is None and not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {k}, shape {tuple(t.shape)}) "
                    "appears to not have been used in the graph. Set allow_unused=True if "
                    "this is the desired behavior."
                )
        return results
    return None


def _slice_grad(node, g, grads: dict[Node, Any], owned, sliced) -> int:
    """Add the gradient ``g`` of a basic-index view (``node``: a ``getitem``) into its
    input's pending gradient: as one more piece of a :class:`SliceParts` while it holds
    only slices (summed when the input's gradient is needed; the input goes into
    ``sliced``), else in place when the engine made that array itself (``owned``) or into
    a copy that it then owns. The same sums as the ``index_put_zeros`` rule plus the add (a
    slice's zeros add exactly). Returns 0 when it does not apply (a leaf input, another
    dtype, a non-basic index), 1 when added to a pending gradient, 2 when the input got its
    first gradient."""
    edge = node.edges[0]
    params = node.params
    if type(edge) is not Node or not params["basic"] or node.hooks is not None:
        return 0
    ix = node.idx[0]
    d = g._data
    if d.dtype != edge.out_dtype[ix] or type(d) is not np.ndarray:
        return 0
    idx = params["idx"]
    s = grads.get(edge)
    if s is None or s[ix] is None:
        sliced.add(edge)
        parts = SliceParts(params["shape"], d.dtype, idx, d)
        if s is None:
            grads[edge] = [None] * edge.prim.n_out
            grads[edge][ix] = parts
            return 2
        s[ix] = parts
        return 1
    a = s[ix]
    if type(a) is SliceParts:
        a.add(idx, d)
        return 1
    if type(a) is not np.ndarray:
        a = a._data
    if owned.get(id(a)) is not a:
        a = a.copy()
        owned[id(a)] = a
        s[ix] = _new(a)
    a[idx] += d
    return 1


def _hooked_leaf_uses(order):
    """id(leaf) -> how many graph edges feed it, for the leaves that have hooks."""
    uses = {}
    for node in order:
        for edge in node.edges:
            if edge is not None and type(edge) is not Node and (edge._hooks or edge._post_hooks):
                uses[id(edge)] = uses.get(id(edge), 0) + 1
    return uses


def _finish_ready_leaves(node, pending, leaf_acc, create_graph, assigned):
    """Run hooks and accumulate the leaves whose last feeding node was ``node``."""
    for edge in node.edges:
        n = pending.get(id(edge)) if edge is not None else None
        if n is None:
            continue
        if n > 1:
            pending[id(edge)] = n - 1
            continue
        del pending[id(edge)]
        e = leaf_acc.pop(id(edge), None)
        if e is not None:
            leaf, g = e
            g = _as_tensor(g)
            if leaf._hooks:
                for h in leaf._hooks:
                    r = h(g)
                    if r is not None:
                        g = r
            _accumulate_leaf(leaf, g, create_graph, assigned)


def _sum2(a, b):
    """``a + b`` of two gradient arrays, as an array (0-d sums would give NumPy scalars).
    Large ones of one layout (a residual's two gradients) add in one compiled loop on
    numba's threads: the same bits, 243 -> 145 us for (16, 128, 256) float32 on 2 Xeon
    threads (gpt_written's backward 161-165 -> 154-158 ms)."""
    r = _flat_binary("bias_add", a, b) if a.size >= _PAR_SUM and a.shape == b.shape else None
    if r is None:  # (small, another layout or dtype, or no numba)
        r = a + b
    return r if type(r) is np.ndarray else _as_array(r)


_PAR_SUM = 1 << 16


def _as_tensor(g):
    """A pending gradient as a Tensor (without a backward graph they are bare arrays)."""
    return g if g is None or isinstance(g, Tensor) else _new(g)


def _zeros_out(node, i):
    if node.fn_ctx is not None:
        shape, dtype = node.fn_ctx[i]
        return _new(np.zeros(shape, dtype))
    raise_shape = node.out_data[i].shape if node.out_data is not None else None
    if raise_shape is None:
        raise RuntimeError(f"{node.name()}: missing gradient for output {i}")
    return _new(np.zeros(raise_shape, node.out_dtype[i]))


def _run_hooks(node, i, g):
    if node.hooks is None or g is None:
        return g
    for h in node.hooks.get(i, ()):
        r = h(g)
        if r is not None:
            g = r
    return g


def _accumulate_leaf(leaf, g, create_graph, assigned):
    if _state.tracer is not None and not create_graph:
        # compiled mode: the copy and the sum must be ops the tracer sees (a raw NumPy copy
        # would look like a constant of the graph)
        from ..compiler._abstract import is_fake

        d = g._data
        # (a dry run's fake GEMM output is a view of its zero pages, where the real kernel
        # returns a fresh array: no copy for it in the graph)
        if (d.base is not None and not is_fake(d)) or id(d) in assigned or not d.flags.writeable:
            g = g.detach().clone()
        assigned.add(id(g._data))
        leaf.grad = g.detach() if leaf.grad is None else leaf.grad.detach() + g.detach()
    elif not create_graph:
        d = g._data
        # The same array may reach several leaves (``a + b`` passes g to both), and a view
        # may alias a live buffer: copy so in-place updates of one .grad never touch another.
        if d.base is not None or id(d) in assigned or not d.flags.writeable:
            d = d.copy(order="K")  # (keeps a channels-last gradient's layout: a plain copy)
        assigned.add(id(d))
        if leaf.grad is None:
            leaf.grad = _new(d)
        else:
            leaf.grad = _add_into_grad(leaf.grad, d)
    else:
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    if leaf._post_hooks:
        for h in leaf._post_hooks:
            h(leaf)


def _detached(d):
    return _new(d)


def _add_into_grad(grad, d):
    """``grad + d`` for a first-order backward: added into ``grad`` in place where it can
    hold the sum, as PyTorch's AccumulateGrad does (``variable_grad += new_grad``), so a
    reference to ``p.grad`` kept across backward calls sees the accumulated gradient."""
    a = grad._data
    if (
        grad.requires_grad
        or tuple(grad.shape) != d.shape
        or grad.dtype.np != d.dtype
        or not a.flags.writeable  # (a read-only buffer set by hand: a new sum)
    ):
        return grad.detach() + _detached(d)
    if _state.tracer is None and not np.may_share_memory(a, d):
        # one pass into the existing buffer (``add_`` computes a new array and copies it in)
        add_into(a, d)
        grad._version[0] += 1
        return grad
    grad.add_(_detached(d))
    return grad


def _freed(prim):
    """The stand-in for ``prim`` in nodes whose saved values were released."""
    freed = _FREED[prim] = _FreedPrim(prim)
    return freed


# primitive -> its stand-in once a node's saved values are released
_FREED: dict[Primitive, _FreedPrim] = {}


class _FreedPrim:
    """Stands in for a primitive whose saved values were released after backward (it has
    no rule in the VJP table, so a second backward through it ends in :func:`_no_rule`)."""

    __slots__ = ("n_out", "name")

    def __init__(self, prim):
        self.name = prim.name
        self.n_out = prim.n_out


def _no_rule(prim):
    if isinstance(prim, _FreedPrim):
        return RuntimeError(
            f"Trying to backward through the graph a second time (through {prim.name}), or "
            "to access saved tensors after they have already been freed. Specify "
            "retain_graph=True if you need to backward through the graph a second time."
        )
    return RuntimeError(
        f"{prim.name} has no gradient rule: register one with ember.ops._ad.defvjp, or "
        "declare the primitive nondiff=True"
    )


def _check_anomaly(node, cts):
    for ct in cts:
        if ct is None:
            continue
        d = ct._data
        if d.dtype.kind in "fV" and not np.isfinite(d.astype(np.float32)).all():
            where = f"\nThe forward call that created it:\n{node.stack}" if node.stack else ""
            raise RuntimeError(
                f"Function '{node.name()}' returned nan/inf values in its gradient.{where}"
            )
