"""The primitive registry and the single dispatch point, :func:`bind`.

A :class:`Primitive` is declared once and carries its kind, abstract evaluation
(shape/dtype rule) and its CPU kernel (NumPy code). Rules of other
subsystems live in their own tables keyed by the primitive: the VJP (written in ember ops,
so backward passes are differentiable and traceable) in :mod:`ember.ops._ad`.

Every tensor computation goes through :func:`bind`. In eager mode it runs the kernel
and, when a gradient is needed, records an autograd :class:`Node`; when a tracer is
installed (``_state.tracer``: :mod:`ember.compiler`'s, or :mod:`ember.symbol`'s while
symbols are alive) it hands the call to the tracer instead.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._dtype import DIFF_NP, from_numpy_dtype

# The differentiable dtypes: floating and complex (grows when bfloat16 loads on first use)
_FLOAT_DTYPES = DIFF_NP


__all__ = ["REGISTRY", "AbstractValue", "Primitive", "ShapeError", "bind", "registry"]

# What a primitive keeps for its backward pass (memory matters: keep only what the VJP reads).
SAVE_NONE, SAVE_INPUTS, SAVE_OUTPUT, SAVE_BOTH = 0, 1, 2, 3
KINDS = (
    "elementwise",
    "reduction",
    "view",
    "layout",
    "contraction",
    "opaque",
    "creation",
    "inplace",
)

REGISTRY: dict[str, Primitive] = {}


class ShapeError(ValueError):
    """Raised for inputs an op cannot take (shapes, dims, dtypes); names the op."""


class DTypeNotImplementedError(TypeError, NotImplementedError):
    """An op got a dtype it has no kernel for (an integer or bool tensor where PyTorch's
    kernel is floating-only): a ``TypeError``, and also the ``NotImplementedError`` (a
    ``RuntimeError``) PyTorch raises."""


def refuse_integral(
    op: str,
    x: Any,
    what: str = "input",
    kinds: str = "iub",
    message: str = "{op}: expected a floating point {what}, got {dtype}",
) -> None:
    """Raise :class:`DTypeNotImplementedError` when tensor ``x`` holds integers or bools
    (NumPy dtype kinds ``kinds``: ``"b"`` refuses bools only); ``message`` is formatted with
    ``op``, ``what`` and ``dtype`` only when it raises.

    Example:
        >>> import ember
        >>> from ember.ops._core import refuse_integral
        >>> refuse_integral("gelu", ember.ones(2))  # floating: nothing to say
        >>> try:
        ...     refuse_integral("gelu", ember.ones(2, dtype=ember.int64))
        ... except NotImplementedError as e:
        ...     print(e)
        gelu: expected a floating point input, got ember.int64
    """
    data = getattr(x, "_data", None)
    if data is not None and data.dtype.kind in kinds:
        raise DTypeNotImplementedError(message.format(op=op, what=what, dtype=x.dtype))


class OpIndexError(IndexError):
    """An index out of range, raised by a kernel with a message that already names the op
    and the range (``bind`` passes it on as it is)."""


class AbstractValue:
    """Shape and dtype of a value, without data (what abstract evaluation works on)."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"AbstractValue(shape={self.shape}, dtype={self.dtype})"

    def __eq__(self, other):
        return (
            isinstance(other, AbstractValue)
            and self.shape == other.shape
            and self.dtype is other.dtype
        )


try:  # NumPy >= 2 keeps its error state in a context variable: set it directly (cheap)
    # private NumPy names, absent from its type stubs
    from numpy._core._ufunc_config import (  # type: ignore[attr-defined]
        _extobj_contextvar,
        _make_extobj,
    )

    _QUIET = _make_extobj(all="ignore")
    _fp_set, _fp_reset = _extobj_contextvar.set, _extobj_contextvar.reset
except ImportError:  # pragma: no cover  (NumPy 1.x: kernels made by quiet() still are)
    _extobj_contextvar = _QUIET = _fp_set = _fp_reset = None


class Primitive:
    """One operation: a kernel and its shape rule, dispatched by :func:`bind`.

    Rules owned by a subsystem live in that subsystem's table keyed by the primitive
    (the VJP: :func:`ember.ops._ad.defvjp`), not on the primitive.

    Args:
        name: unique name, e.g. ``'exp'``.
        kind: one of ``elementwise reduction view layout contraction opaque creation inplace``.
        impl: the CPU kernel ``impl(*arrays, **params) -> array`` (NumPy arrays in and out).
        abstract: ``abstract(*avals, **params) -> AbstractValue`` (raise ShapeError on bad input).
        save: what the backward pass reads: SAVE_NONE / SAVE_INPUTS / SAVE_OUTPUT / SAVE_BOTH.
        nondiff: the op has no gradient (comparisons, argmax, integer results).
        data_dependent: output shape depends on input values (``nonzero``); tracing stops here.
        n_out: the number of outputs (a tuple is returned when it is not 1).
        register: list it in :data:`REGISTRY` (False for per-class custom Functions).

    Example:
        >>> import numpy as np
        >>> p = Primitive("doc_neg", "elementwise", impl=np.negative, register=False,
        ...               abstract=lambda x: AbstractValue(x.shape, x.dtype))
        >>> p
        Primitive(doc_neg, kind=elementwise)
    """

    __slots__ = (
        "abstract",
        "data_dependent",
        "impl",
        "kind",
        "loud",
        "n_out",
        "name",
        "nondiff",
        "save",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        impl=None,
        abstract=None,
        save: int = SAVE_INPUTS,
        nondiff: bool = False,
        data_dependent: bool = False,
        n_out: int = 1,
        register: bool = True,
    ):
        if kind not in KINDS:
            raise ValueError(f"primitive {name}: unknown kind {kind!r}")
        if register and name in REGISTRY:
            raise ValueError(f"primitive {name!r} is already registered")
        self.name, self.kind, self.impl, self.abstract = name, kind, impl, abstract
        self.save, self.nondiff = save, nondiff
        self.data_dependent, self.n_out = data_dependent, n_out
        # whether bind silences NumPy's floating-point warnings around the kernel (an impl
        # made by ember.ops._ew_kernels.quiet does it itself)
        self.loud = _QUIET is not None and not getattr(impl, "fp_quiet", False)
        if register:
            REGISTRY[name] = self

    def __repr__(self):
        return f"Primitive({self.name}, kind={self.kind})"


def registry() -> dict[str, Primitive]:
    """All registered primitives by name (a copy)."""
    return dict(REGISTRY)


class _State:
    """One thread's dispatch state: grad mode, inference mode, the active tracer and anomaly
    detection."""

    __slots__ = ("anomaly", "grad_enabled", "inference", "tracer")

    def __init__(self):
        self.grad_enabled = True
        self.tracer = None
        self.anomaly = False
        self.inference = False


class _PerThread(threading.local):
    """Dispatch state is per thread, as in PyTorch: a ``no_grad`` block in a server's worker
    thread must not switch gradients off for the main thread (interleaved enter/exit of a
    process-wide switch could even leave them off for good), and a trace must not capture
    another thread's ops. A new thread starts with the defaults."""

    def __init__(self):
        self.state = _State()


_local = _PerThread()


def _state_property(name):
    return property(
        lambda self: getattr(_local.state, name),
        lambda self, value: setattr(_local.state, name, value),
        doc=f"This thread's ``{name}``.",
    )


class _CurrentState:
    """``_state.grad_enabled`` etc. read and write the calling thread's state (hot paths
    read ``_local.state`` once instead), plus the process-wide ``leaf_hooks``: whether any
    leaf tensor ever had a gradient hook, in any thread (until then backward skips the
    early-finish scan)."""

    __slots__ = ("leaf_hooks",)
    grad_enabled = _state_property("grad_enabled")
    tracer = _state_property("tracer")
    anomaly = _state_property("anomaly")
    inference = _state_property("inference")

    def __init__(self):
        self.leaf_hooks = False


_state = _CurrentState()

# How many threads are inside inference_mode: tensor constructors (``ember._tensor._new``) read
# their thread's flag only while this is non-zero (a list: no module attribute lookup there).
INFERENCE_THREADS = [0]
_inference_lock = threading.Lock()


def enter_inference() -> bool:
    """Turn this thread's inference flag on; True when it was off (then call
    :func:`exit_inference` once when leaving)."""
    if _local.state.inference:
        return False
    with _inference_lock:
        INFERENCE_THREADS[0] += 1
    _local.state.inference = True
    return True


def exit_inference() -> None:
    """Undo :func:`enter_inference`."""
    _local.state.inference = False
    with _inference_lock:
        INFERENCE_THREADS[0] -= 1


# Nodes are numbered in creation order: a node's inputs were produced by nodes recorded
# before it, so decreasing ``seq`` is a topological order for the backward pass.
_next_seq = itertools.count().__next__


class Node:
    """An autograd graph node: one primitive application that needs a gradient.

    ``edges[i]`` is where the cotangent of input ``i`` goes: the input's producing
    node (captured at record time, so later in-place rebinding cannot reroute it),
    the input itself when it is a leaf that requires grad, or None.
    """

    # Rarely-set fields (hooks, retained grads, the anomaly-mode stack, multi-output info)
    # are class defaults that an instance overrides in its __dict__, so that recording an op
    # fills only the slots below.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "edges",
        "idx",
        "inputs",
        "out_data",
        "out_dtype",
        "out_version",
        "params",
        "prim",
        "seq",
        "shapes",
        "versions",
    )
    hooks: dict[int, list[Any]] | None = None
    retained: dict[int, Any] | None = None
    stack: str | None = None
    fn_ctx: Any = None

    def __init__(self, prim, params, inputs, edges, idx, shapes):
        self.prim = prim
        self.params = params
        self.inputs = inputs
        self.edges = edges
        self.idx = idx  # output index of each edge's tensor within its node
        self.shapes = shapes
        self.versions = None
        self.out_data = None
        self.out_version = None
        self.out_dtype = None
        self.seq = _next_seq()

    def name(self) -> str:
        n = "".join(p[:1].upper() + p[1:] for p in self.prim.name.split("_"))
        return f"{n}Backward"

    def __repr__(self):
        return f"<{self.name()}>"


_EMPTY: dict[str, Any] = {}


def _op_error(prim, arrays, params, exc):
    """Turn a kernel failure into an error that names the op, shapes and dtypes."""
    if isinstance(exc, (ShapeError, OpIndexError, ImportError, MemoryError)):
        return exc  # already says what is wrong; a missing extra or memory is not a
        # problem of the arguments
    desc = ", ".join(_describe(a) for a in arrays)
    bad = [
        a
        for a in arrays
        if not (hasattr(a, "shape") and hasattr(a, "dtype"))
        and not isinstance(a, (int, float, bool, np.generic))
    ]
    if bad:
        return TypeError(
            f"{prim.name}(): expected Tensor arguments, got "
            f"{', '.join(type(a).__name__ for a in bad)} in ({desc})"
        )
    extra = f" with {params}" if params else ""
    msg = f"{prim.name}: cannot apply to ({desc}){extra}: {exc}"
    if isinstance(exc, (TypeError, IndexError)):
        try:
            return type(exc)(msg)
        except Exception:  # noqa: BLE001 - any class whose constructor wants more than a
            # message (NumPy's ufunc casting errors): the builtin base carries the message
            return (TypeError if isinstance(exc, TypeError) else IndexError)(msg)
    return ShapeError(msg)


def _describe(a):
    if isinstance(a, np.ndarray):
        return f"Tensor(shape={tuple(a.shape)}, dtype={from_numpy_dtype(a.dtype).name})"
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return f"Tensor(shape={tuple(a.shape)}, dtype={a.dtype})"
    return repr(a)


def bind(prim: Primitive, args: Sequence[Any], params: Mapping[str, Any] = _EMPTY) -> Any:
    """Apply ``prim`` to ``args`` (Tensors or constants) with static ``params``.

    This is the one place where ember computes on tensors. Returns a Tensor (or a
    tuple for multi-output primitives).

    Example:
        >>> import ember
        >>> from ember.ops.elementwise import add_p
        >>> bind(add_p, (ember.tensor([1.0, 2.0]), 3.0)).tolist()
        [4.0, 5.0]
    """
    # NOTE: the eager hot path (one call per op, forward and backward): locals instead of
    # repeated global/attribute lookups, no helper calls for the usual single output.
    st = _local.state
    if st.tracer is not None:
        return st.tracer.process(prim, args, params)
    # (constants such as Python scalars pass as they are; isinstance costs no more than a
    # bare ``a._data`` here, while catching the AttributeError of a constant costs ~1 us;
    # one and two inputs skip the comprehension's frame)
    Tensor = _Tensor
    arrays: Sequence[Any]
    n = len(args)
    if n == 2:
        a, b = args
        arrays = (
            a._data if isinstance(a, Tensor) else a,
            b._data if isinstance(b, Tensor) else b,
        )
    elif n == 1:
        a = args[0]
        arrays = (a._data,) if isinstance(a, Tensor) else tuple(args)
    else:
        arrays = [a._data if isinstance(a, Tensor) else a for a in args]
    if st.anomaly and prim.abstract is not None:
        prim.abstract(*[_aval(a) for a in arrays], **params)
    try:
        if prim.loud:
            # inf * 0, log(0), overflow: inf/nan silently, as PyTorch (NumPy would warn);
            # scoped to the kernel, the user's own error state is untouched
            token = _fp_set(_QUIET)
            try:
                out = prim.impl(*arrays, **params) if params else prim.impl(*arrays)
            finally:
                _fp_reset(token)
        else:
            out = prim.impl(*arrays, **params) if params else prim.impl(*arrays)
    except Exception as exc:
        if prim.abstract is not None:
            prim.abstract(*[_aval(a) for a in arrays], **params)  # raises the clear error
        err = _op_error(prim, arrays, params, exc)
        if err is exc:  # (already the clear error: as it is, never its own cause)
            del err  # (held by this frame, it would keep the traceback's frames alive)
            raise
        try:
            raise err from exc
        finally:  # not held by this frame: a cycle that keeps the traceback's frames alive
            del err
    if prim.n_out != 1:
        return _wrap_multi(prim, args, params, out)
    if type(out) is not np.ndarray:
        out = _as_array(out)
    t = _tensor_new(Tensor)  # what _new does, inlined
    t._data = out
    t._node = None
    t._version = [0]
    if st.grad_enabled:
        if not prim.nondiff:
            for a in args:
                if getattr(a, "requires_grad", False):
                    if out.dtype in _FLOAT_DTYPES:
                        node = _record1(prim, args, params, t, out)
                        if st.anomaly:
                            _stack(node)
                    break
    elif st.inference:  # (inference_mode turns gradients off: no test while they are on)
        t._inference = True
    if prim.kind == "view" and out.base is not None:
        src = args[0]
        if isinstance(src, Tensor):
            t._version = src._version
            t._base = src if src._base is None else src._base
            t._view = (src, prim, params)  # how to replay the view (in-place on views)
    return t


def bind_values(prim: Primitive, args: Sequence[Any], params: Mapping[str, Any], out: Any):
    """Wrap ``out`` (the arrays ``prim`` would compute from ``args``) as ``bind``'s result,
    recording autograd as ``bind`` does, without running the kernel. The compiler's dry-run
    traces use it to skip heavy kernels whose values no Python code reads. Not for views.

    Example:
        >>> import numpy as np, ember
        >>> from ember.ops.elementwise import exp_p
        >>> x = ember.ones(2, requires_grad=True)
        >>> y = bind_values(exp_p, (x,), {}, np.zeros(2, np.float32))
        >>> y.tolist(), y.requires_grad
        ([0.0, 0.0], True)
    """
    if prim.n_out != 1:
        return _wrap_multi(prim, args, params, out)
    t = _new(out)
    st = _local.state
    if (
        st.grad_enabled
        and not prim.nondiff
        and out.dtype in _FLOAT_DTYPES
        and any(getattr(a, "requires_grad", False) for a in args)
    ):
        node = _record1(prim, args, params, t, out)
        if st.anomaly:
            _stack(node)
    return t


def _wrap_multi(prim, args, params, outs):
    Tensor = _Tensor
    ts = tuple(_new(o if type(o) is np.ndarray else _as_array(o)) for o in outs)
    st = _local.state
    if st.grad_enabled and not prim.nondiff:
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                node = _record(prim, args, params, ts)
                if st.anomaly:
                    _stack(node)
                break
    return ts


def _node_fields(prim, args, params, node):
    """Fill ``node``'s input side: one edge, output index and shape per argument (and the
    inputs with their versions when the VJP reads them)."""
    Tensor = _Tensor
    save_inputs = prim.save & SAVE_INPUTS
    if len(args) == 1:  # the common unary case, without the per-input lists
        a = args[0]
        n = a._node
        if n is not None:
            node.edges = (n,)
            node.idx = (a._idx,)
        else:
            node.edges = (a,)  # a leaf that requires grad (it got here through bind)
            node.idx = _IDX0
        node.shapes = (a._data.shape,)
        if save_inputs:
            node.inputs = args if type(args) is tuple else tuple(args)
            node.versions = (a._version[0],)
        else:
            node.inputs = node.versions = None
        return
    if len(args) == 2:  # binary ops: two tensors, or a tensor and a constant
        a, b = args
        ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
        if ta and tb:
            na, nb = a._node, b._node
            node.edges = (
                na if na is not None else (a if a.requires_grad else None),
                nb if nb is not None else (b if b.requires_grad else None),
            )
            node.idx = (a._idx if na is not None else 0, b._idx if nb is not None else 0)
            node.shapes = (a._data.shape, b._data.shape)
            if save_inputs:
                node.inputs = args if type(args) is tuple else tuple(args)
                node.versions = (a._version[0], b._version[0])
            else:
                node.inputs = node.versions = None
            return
        if ta or tb:  # a tensor and a constant (x + 1.0, 2.0 / x)
            t = a if ta else b
            n = t._node
            e = n if n is not None else t
            i = t._idx if n is not None else 0
            if ta:
                node.edges, node.idx, node.shapes = (e, None), (i, 0), (t._data.shape, None)
            else:
                node.edges, node.idx, node.shapes = (None, e), (0, i), (None, t._data.shape)
            if save_inputs:
                node.inputs = args if type(args) is tuple else tuple(args)
                node.versions = (t._version[0], 0) if ta else (0, t._version[0])
            else:
                node.inputs = node.versions = None
            return
    edges = []
    idx = []
    shapes = []
    versions = [] if save_inputs else None
    for a in args:
        if isinstance(a, Tensor):
            shapes.append(a._data.shape)
            n = a._node
            if n is not None:
                edges.append(n)
                idx.append(a._idx)
            else:
                edges.append(a if a.requires_grad else None)
                idx.append(0)
            if versions is not None:
                versions.append(a._version[0])
        else:
            edges.append(None)
            idx.append(0)
            shapes.append(None)
            if versions is not None:
                versions.append(0)
    node.edges = tuple(edges)
    node.idx = tuple(idx)
    node.shapes = tuple(shapes)
    if versions is not None:
        node.inputs = args if type(args) is tuple else tuple(args)
        node.versions = tuple(versions)
    else:
        node.inputs = node.versions = None


_IDX0 = (0,)


def _record1(prim, args, params, o, d):
    # NOTE: the hottest function of eager training (one call per recorded op, single float
    # output ``o`` with array ``d``): slots filled directly, no Node.__init__.
    node = _node_new(Node)
    node.seq = _next_seq()
    node.prim = prim
    node.params = params
    _node_fields(prim, args, params, node)
    if prim.save & SAVE_OUTPUT:
        node.out_data = (d,)
        v = o._version
        node.out_version = ((v, v[0]),)
    else:
        node.out_data = node.out_version = None
    node.out_dtype = (d.dtype,)
    o._node = node
    o.requires_grad = True
    return node


def _record(prim, args, params, outs):
    """Record ``prim`` applied to ``args`` with outputs ``outs`` (Tensors) in a new Node."""
    if len(outs) == 1 and outs[0]._data.dtype in _FLOAT_DTYPES:
        return _record1(prim, args, params, outs[0], outs[0]._data)
    node = _node_new(Node)
    node.seq = _next_seq()
    node.prim = prim
    node.params = params
    _node_fields(prim, args, params, node)
    if prim.save & SAVE_OUTPUT:
        node.out_data = tuple(o._data for o in outs)
        node.out_version = tuple((o._version, o._version[0]) for o in outs)
    else:
        node.out_data = node.out_version = None
    node.out_dtype = tuple(o._data.dtype for o in outs)
    if len(outs) > 1:
        # what a missing cotangent of an unused output looks like
        node.fn_ctx = [(o._data.shape, o._data.dtype) for o in outs]
    for i, o in enumerate(outs):
        if o._data.dtype in _FLOAT_DTYPES:
            o._node = node
            if i:
                o._idx = i
            o.requires_grad = True
    return node


def _stack(node):
    import traceback

    frames = traceback.extract_stack()
    while frames and frames[-1].filename == __file__:  # (bind and the recording helpers)
        frames.pop()
    node.stack = "".join(traceback.format_list(frames))


def _aval(a):
    if isinstance(a, np.ndarray) or (hasattr(a, "shape") and hasattr(a, "dtype")):
        return AbstractValue(a.shape, from_numpy_dtype(a.dtype))
    return a


def _as_array(x):
    if isinstance(x, np.generic):
        return np.asarray(x)
    from ..backends import backend_of

    b = backend_of(x)
    return b.xp.asarray(x)


_Tensor: Any = None  # ember.Tensor and ember._tensor._new, installed by ember._tensor
_new: Any = None
_tensor_new = object.__new__
_node_new = object.__new__


def _install_tensor(tensor_cls, new_fn):
    """Called once by ember._tensor to break the import cycle."""
    global _Tensor, _new
    _Tensor = tensor_cls
    _new = new_fn
