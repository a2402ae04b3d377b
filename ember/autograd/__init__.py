"""Automatic differentiation: ``backward``, ``grad``, grad modes, custom Functions,
checkpointing and anomaly detection.

Example:
    >>> import ember
    >>> x = ember.tensor(2.0, requires_grad=True)
    >>> (g,) = ember.autograd.grad(x ** 3, x, create_graph=True)
    >>> (gg,) = ember.autograd.grad(g, x)
    >>> float(g), float(gg)
    (12.0, 12.0)
"""

from .._creation import ones_like as _ones_like
from .._creation import tensor as _tensor
from .._creation import zeros as _zeros
from .._creation import zeros_like as _zeros_like
from .._tensor import Tensor as _Tensor
from ..ops._core import _state
from ..ops.shape import stack as _stack
from .engine import run_backward as _run_backward
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = [
    "Function",
    "FunctionCtx",
    "backward",
    "checkpoint",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "inference_mode",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "once_differentiable",
    "set_detect_anomaly",
    "set_grad_enabled",
]


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _root_grads(outputs, grad_outputs):
    grads = []
    for k, o in enumerate(outputs):
        g = grad_outputs[k] if grad_outputs is not None else None
        if g is None:
            if o.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; "
                    f"output {k} has shape {tuple(o.shape)}: pass gradient="
                )
            g = _ones_like(o)
        elif not isinstance(g, _Tensor):
            if isinstance(g, (list, tuple, str)) or g is NotImplemented:
                raise TypeError(
                    f"backward: gradients can be either Tensors or None, but got "
                    f"{type(g).__name__} for output {k}"
                )
            g = _tensor(g, dtype=o.dtype)
        if tuple(g.shape) != tuple(o.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{k}] has a shape of "
                f"{tuple(g.shape)} and output[{k}] has a shape of "
                f"{tuple(o.shape)}."
            )
        grads.append(g)
    return grads


def backward(
    tensors,
    grad_tensors=None,
    retain_graph=None,
    create_graph=False,
    grad_variables=None,
    inputs=None,
):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of graph leaves.

    ``grad_variables`` is PyTorch's old name for ``grad_tensors``.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> ember.autograd.backward((x * x).sum())
        >>> x.grad.tolist()
        [2.0, 4.0]
    """
    if grad_variables is not None:
        if grad_tensors is not None:
            raise RuntimeError(
                "backward: pass grad_tensors or its old name grad_variables, not both"
            )
        grad_tensors = grad_variables
    tensors = _as_list(tensors)
    grad_tensors = _as_list(grad_tensors)
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(tensors, grad_tensors)
    if inputs is not None:
        inputs = _as_list(inputs)
        res = _run_backward(
            tensors, roots, retain_graph, create_graph, inputs=inputs, allow_unused=True
        )
        for t, g in zip(inputs, res):
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
        return
    _run_backward(tensors, roots, retain_graph, create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    only_inputs=True,
    allow_unused=None,
    is_grads_batched=False,
    materialize_grads=False,
):
    """Gradients of ``outputs`` with respect to ``inputs`` (returned, not accumulated).

    ``is_grads_batched=True``: each ``grad_outputs`` tensor has a leading batch dimension, and
    the result holds one vector-Jacobian product per batch entry (stacked on dim 0).
    ``only_inputs`` is accepted for PyTorch compatibility (it is always True there too).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> ember.autograd.grad((x * x).sum(), x)[0].tolist()
        [2.0, 4.0]
    """
    if allow_unused is None:
        allow_unused = materialize_grads
    if is_grads_batched:
        return _batched_grad(
            outputs, inputs, grad_outputs, create_graph, allow_unused, materialize_grads
        )
    outputs = _as_list(outputs)
    single = not isinstance(inputs, (list, tuple))
    inputs = _as_list(inputs)
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(
                f"One of the differentiated Tensors (input {k}) does not require grad"
            )
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(outputs, _as_list(grad_outputs))
    res = _run_backward(
        outputs,
        roots,
        retain_graph,
        create_graph,
        inputs=inputs,
        allow_unused=allow_unused or materialize_grads,
        accumulate=False,
    )
    if materialize_grads:
        res = [_zeros_like(t) if g is None else g for t, g in zip(inputs, res)]
    if not create_graph:
        res = [g.detach() if g is not None else None for g in res]
    _ = single
    return tuple(res)


def _batched_grad(outputs, inputs, grad_outputs, create_graph, allow_unused, materialize):
    """``grad(..., is_grads_batched=True)``: one VJP per entry of the grad_outputs' batch dim."""
    batched = _as_list(grad_outputs)
    if not batched or any(g is None for g in batched):
        raise RuntimeError("grad: is_grads_batched=True needs a grad_outputs tensor per output")
    sizes = {int(g.shape[0]) if g.ndim else None for g in batched}
    if len(sizes) != 1 or None in sizes:
        raise RuntimeError(
            "grad: with is_grads_batched=True every grad_outputs tensor needs the same leading "
            f"batch dimension, got shapes {[tuple(g.shape) for g in batched]}"
        )
    per_entry = [
        grad(
            outputs,
            inputs,
            [g[b] for g in batched],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=allow_unused,
            materialize_grads=materialize,
        )
        for b in range(sizes.pop())
    ]
    return tuple(
        None if any(r[k] is None for r in per_entry) else _stack([r[k] for r in per_entry])
        for k in range(len(per_entry[0]))
    )


class detect_anomaly:
    """Context manager: name the op whose backward produced NaN/Inf (with its forward
    stack), and run shape rules eagerly."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = _state.anomaly
        _state.anomaly = self.check_nan

    def __exit__(self, *exc):
        _state.anomaly = self.prev


class set_detect_anomaly:
    """Turn anomaly detection on or off; as a context manager, the previous setting comes back
    on exit. ``check_nan`` is accepted for PyTorch compatibility: Ember's anomaly mode always
    checks gradients for NaN/Inf.

    Example:
        >>> import ember
        >>> with ember.autograd.set_detect_anomaly(True):
        ...     ember.autograd.is_anomaly_enabled()
        True
        >>> ember.autograd.is_anomaly_enabled()
        False
    """

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = _state.anomaly
        _state.anomaly = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _state.anomaly = self.prev


def is_anomaly_enabled() -> bool:
    return _state.anomaly


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, fn, preserve_rng, *args):
        from ..random import get_rng_state

        ctx.fn = fn
        ctx.rng = get_rng_state() if preserve_rng else None
        ctx.save_for_backward(*args)
        return fn(*args)

    @staticmethod
    def backward(ctx, *grads):
        from ..random import get_rng_state, set_rng_state

        args = ctx.saved_tensors
        detached = [
            a.detach().requires_grad_(a.requires_grad)
            if isinstance(a, _Tensor) and (a.is_floating_point() or a.is_complex())
            else a
            for a in args
        ]
        if ctx.rng is not None:
            saved = get_rng_state()
            set_rng_state(ctx.rng)
        try:
            with enable_grad():
                out = ctx.fn(*detached)
        finally:
            if ctx.rng is not None:
                set_rng_state(saved)
        outs = out if isinstance(out, tuple) else (out,)
        pairs = [
            (o, g)
            for o, g in zip(outs, grads)
            if isinstance(o, _Tensor) and o.requires_grad and g is not None
        ]
        if pairs:
            # Like PyTorch's checkpoint: a full backward through the recomputed block, so
            # parameters used inside it (closures, modules) accumulate their .grad too; the
            # inputs' gradients are read back from the detached copies.
            backward([o for o, _ in pairs], [g for _, g in pairs], create_graph=_state.grad_enabled)
        return (None, None) + tuple(
            d.grad if isinstance(d, _Tensor) and d.requires_grad else None for d in detached
        )


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """Run ``function(*args, **kwargs)`` without storing its intermediate activations; they
    are recomputed during backward (trading compute for memory). Parameters used inside
    ``function`` receive gradients even when no input requires grad."""

    if kwargs:
        import functools

        function = functools.partial(function, **kwargs)
    if _state.grad_enabled and not any(isinstance(a, _Tensor) and a.requires_grad for a in args):
        # Make sure a graph node exists, so the recomputation runs in backward.

        args = (*args, _zeros((), requires_grad=True))
        inner = function

        def function(*a):
            return inner(*a[:-1])

    return _Checkpoint.apply(function, preserve_rng_state, *args)


from . import functional  # noqa: E402, F401 - needs grad, defined above
