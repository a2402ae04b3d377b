"""Custom differentiable functions (``ember.autograd.Function``)."""

from __future__ import annotations

import numpy as np

from .._dtype import DIFF_NP as _DIFF_NP  # (floating and complex: differentiable)
from ..ops._ad import ZERO_FILL_OFF, defvjp
from ..ops._core import SAVE_NONE, Node, Primitive, _state

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` passed to ``forward``/``backward`` of a custom Function."""

    def __init__(self):
        self.saved_tensors = ()
        self.needs_input_grad = ()
        self._non_diff = set()
        self.materialize_grads = True
        self._saved_versions = None

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_diff.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = value


def _function_vjp(g, out, *inputs, fn_cls, ctx, n_inputs):
    versions = ctx._saved_versions
    if versions is not None:
        for k, (t, v) in enumerate(zip(ctx.saved_tensors, versions)):
            if v is not None and t._version[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: saved tensor {k} of {fn_cls.__name__}Backward "
                    f"(shape {tuple(t.shape)}) is at version {t._version[0]}; expected version "
                    f"{v}. Hint: use the out-of-place form of the op, or .clone() first."
                )
    grads = g if isinstance(g, tuple) else (g,)
    r = fn_cls.backward(ctx, *grads)
    if not isinstance(r, tuple):
        r = (r,)
    if len(r) < n_inputs:
        raise RuntimeError(
            f"{fn_cls.__name__}.backward returned {len(r)} gradients, expected "
            f"{n_inputs} (one per forward input)"
        )
    return tuple(r[:n_inputs])


def _primitive_of(cls, n_out: int, materialize: bool) -> Primitive:
    """The primitive of a custom Function class (one per output count and zero-fill mode),
    so the graph shows ``<Name>Backward`` and the engine finds its VJP in the table like any
    other. ``forward`` runs eagerly in :meth:`Function.apply`, so it has no kernel to bind;
    it is not listed in the registry (class names need not be unique)."""
    prims = cls.__dict__.get("_ember_prims")
    if prims is None:
        prims = {}
        type.__setattr__(cls, "_ember_prims", prims)
    p = prims.get((n_out, materialize))
    if p is None:
        p = Primitive(cls.__name__, "opaque", save=SAVE_NONE, n_out=n_out, register=False)
        defvjp(p, _function_vjp)
        if not materialize:
            ZERO_FILL_OFF.add(p)
        prims[(n_out, materialize)] = p
    return p


class Function:
    """Define a new differentiable operation with ``forward`` and ``backward``.

    Example:
        >>> import ember
        >>> class Square(ember.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x * x
        ...     @staticmethod
        ...     def backward(ctx, g):
        ...         (x,) = ctx.saved_tensors
        ...         return 2 * x * g
        >>> x = ember.tensor([3.0], requires_grad=True)
        >>> Square.apply(x).backward()
        >>> x.grad.tolist()
        [6.0]
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a custom Function must define backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args, **kwargs):
        from .._tensor import Tensor

        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            outs = cls.forward(ctx, *args, **kwargs)
        finally:
            _state.grad_enabled = prev
        single = not isinstance(outs, tuple)
        outs_t = (outs,) if single else outs
        if prev and any(ctx.needs_input_grad):
            nondiff = [id(o) in ctx._non_diff for o in outs_t]
            outs_t = tuple(o.detach() if isinstance(o, Tensor) else o for o in outs_t)
            _attach(cls, ctx, args, outs_t, nondiff)
        return outs_t[0] if single else outs_t


def _attach(cls, ctx, args, outs, nondiff):
    from .._tensor import Tensor

    ctx._saved_versions = tuple(
        t._version[0] if isinstance(t, Tensor) else None for t in ctx.saved_tensors
    )
    edges, idx, shapes = [], [], []
    for a in args:
        if isinstance(a, Tensor) and a.requires_grad:
            edges.append(a._node if a._node is not None else a)
            idx.append(a._idx)
            shapes.append(a._data.shape)
        else:
            edges.append(None)
            idx.append(0)
            shapes.append(getattr(a, "shape", None))
    prim = _primitive_of(cls, len(outs), ctx.materialize_grads)
    node = Node(
        prim,
        {"fn_cls": cls, "ctx": ctx, "n_inputs": len(args)},
        None,
        tuple(edges),
        tuple(idx),
        tuple(shapes),
    )
    node.out_dtype = tuple(o._data.dtype if isinstance(o, Tensor) else None for o in outs)
    node.out_data = None
    node.fn_ctx = (
        [
            (o._data.shape, o._data.dtype) if isinstance(o, Tensor) else ((), np.float32)
            for o in outs
        ]
        if len(outs) > 1
        else None
    )
    for i, o in enumerate(outs):
        if isinstance(o, Tensor) and not nondiff[i] and o._data.dtype in _DIFF_NP:
            o._node, o._idx, o.requires_grad = node, i, True


def once_differentiable(fn):
    return fn
