"""Higher-level derivatives of functions (``torch.autograd.functional`` names and
signatures): ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``vhp`` and ``hvp``.

``inputs`` is a Tensor or a tuple of Tensors and ``func`` returns a Tensor or a tuple of
Tensors; results mirror those structures as in PyTorch. Results are detached unless
``create_graph=True`` (then they are differentiable, also with respect to inputs that
require grad). With ``strict=True`` an output independent of an input is an error instead
of a zero. ``vectorize`` and the forward-mode strategies are accepted; the Jacobian is
always built one output element at a time with reverse mode (the same numbers).

Example:
    >>> import ember
    >>> from ember.autograd.functional import hessian, jacobian
    >>> x = ember.tensor([1.0, 2.0])
    >>> jacobian(lambda x: x**2, x).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    >>> hessian(lambda x: (x**3).sum(), x).tolist()
    [[6.0, 0.0], [0.0, 12.0]]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._creation import ones_like, zeros_like
from .._creation import tensor as _tensor
from .._tensor import Tensor
from ..ops.shape import stack
from . import grad as _grad
from .grad_mode import enable_grad

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]

TensorOrTensors = Tensor | tuple[Tensor, ...]


def _as_tuple(x, arg: str, fn: str) -> tuple[bool, tuple]:
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            where = f"the value at index {i} has" if is_tuple else "the given value has"
            raise TypeError(
                f"{fn}: the {arg} must be either a Tensor or a tuple of Tensors, but {where} "
                f"type {type(t).__name__}"
            )
    return is_tuple, items


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    # a fresh alias to differentiate against; under create_graph an input that requires
    # grad stays connected to its own graph through the alias
    return tuple(
        t.view(t.shape) if create_graph and t.requires_grad else t.detach().requires_grad_(True)
        for t in inputs
    )


def _finish(items: tuple, create_graph: bool) -> tuple:
    return tuple(t if create_graph else t.detach() for t in items)


def _unwrap(items, is_tuple: bool):
    return items if is_tuple else items[0]


def _check_v(v, outputs: tuple, what: str, fn: str) -> tuple:
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(
                f"{fn}: v can only be None when the {what} is a single Tensor with a single "
                f"element; got {len(outputs)} tensor(s) of shapes "
                f"{[tuple(o.shape) for o in outputs]}"
            )
        return (ones_like(outputs[0]),)
    _, v = _as_tuple(v, "v", fn)
    if len(v) != len(outputs):
        raise RuntimeError(
            f"{fn}: v is a tuple of invalid length: should be {len(outputs)} but got {len(v)}"
        )
    for i, (a, o) in enumerate(zip(v, outputs)):
        if tuple(a.shape) != tuple(o.shape):
            raise RuntimeError(
                f"{fn}: entry {i} in v has invalid size: should be {tuple(o.shape)} but got "
                f"{tuple(a.shape)}"
            )
    return v


def _differentiable(outputs: tuple, strict: bool, fn: str) -> None:
    if strict:
        for i, o in enumerate(outputs):
            if not o.requires_grad:
                raise RuntimeError(
                    f"{fn}: output {i} of the user-provided function does not require "
                    "gradients; in strict mode every output must be computed in a "
                    "differentiable manner from the inputs"
                )


def _grads(outputs, inputs, grad_outputs, create_graph, strict, fn, what="input"):
    """``autograd.grad`` of the outputs that require grad, None-free: zeros, or an error in
    strict mode, for the inputs they do not depend on."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if pairs:
        res = _grad(
            [o for o, _ in pairs],
            list(inputs),
            grad_outputs=[g for _, g in pairs],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
    else:
        res = (None,) * len(inputs)
    out = []
    for i, (r, t) in enumerate(zip(res, inputs)):
        if r is None:
            if strict:
                raise RuntimeError(
                    f"{fn}: the output of the user-provided function is independent of "
                    f"{what} {i}; this is not allowed in strict mode"
                )
            r = zeros_like(t)
        out.append(r)
    return tuple(out)


def _call(func, inputs: tuple, fn: str) -> tuple[bool, tuple]:
    with enable_grad():
        out = func(*inputs)
    return _as_tuple(out, "outputs of the user-provided function", fn)


def vjp(
    func: Callable,
    inputs: TensorOrTensors,
    v: TensorOrTensors | None = None,
    create_graph: bool = False,
    strict: bool = False,
):
    """``(func(inputs), v^T J)``: the vector-Jacobian product at ``inputs``.

    Example:
        >>> import ember
        >>> out, g = vjp(lambda x: x * 3, ember.ones(2), ember.tensor([1.0, 2.0]))
        >>> g.tolist()
        [3.0, 6.0]
    """
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
    inputs = _prepare(inputs, create_graph)
    is_out_tuple, outputs = _call(func, inputs, "vjp")
    _differentiable(outputs, strict, "vjp")
    v = _check_v(v, outputs, "output of the user-provided function", "vjp")
    with enable_grad():
        res = _grads(outputs, inputs, v, create_graph, strict, "vjp")
    return (
        _unwrap(_finish(outputs, create_graph), is_out_tuple),
        _unwrap(_finish(res, create_graph), is_in_tuple),
    )


def jvp(
    func: Callable,
    inputs: TensorOrTensors,
    v: TensorOrTensors | None = None,
    create_graph: bool = False,
    strict: bool = False,
):
    """``(func(inputs), J v)``: the Jacobian-vector product, by differentiating a
    vector-Jacobian product with respect to its vector (two reverse passes).

    Example:
        >>> import ember
        >>> out, t = jvp(lambda x: x**2, ember.tensor([1.0, 2.0]), ember.tensor([1.0, 1.0]))
        >>> t.tolist()
        [2.0, 4.0]
    """
    _, inputs = _as_tuple(inputs, "inputs", "jvp")
    inputs = _prepare(inputs, create_graph)
    v = _check_v(v, inputs, "input", "jvp")
    is_out_tuple, outputs = _call(func, inputs, "jvp")
    _differentiable(outputs, strict, "jvp")
    with enable_grad():
        # J^T u is linear in u; its vector-Jacobian product with v is J v
        us = tuple(zeros_like(o).requires_grad_(True) for o in outputs)
        g = _grads(outputs, inputs, us, True, strict, "jvp")
        res = _grads(g, us, v, create_graph, False, "jvp", "output")
    return (
        _unwrap(_finish(outputs, create_graph), is_out_tuple),
        _unwrap(_finish(res, create_graph), is_out_tuple),
    )


def jacobian(
    func: Callable,
    inputs: TensorOrTensors,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """The Jacobian of ``func`` at ``inputs``: for output ``i`` and input ``j`` a Tensor
    of shape ``outputs[i].shape + inputs[j].shape``, nested as PyTorch nests them.

    Example:
        >>> import ember
        >>> a, b = jacobian(lambda x, y: x * y, (ember.tensor([2.0]), ember.tensor([5.0])))
        >>> a.tolist(), b.tolist()
        ([[5.0]], [[2.0]])
    """
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(
            f"jacobian: strategy must be 'forward-mode' or 'reverse-mode', got {strategy!r}"
        )
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError(
            "jacobian: strategy='forward-mode' requires vectorize=True (as in PyTorch)"
        )
    if strict and vectorize:
        raise RuntimeError("jacobian: strict=True and vectorize=True are not supported together")
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = _prepare(inputs, create_graph)
    is_out_tuple, outputs = _call(func, inputs, "jacobian")
    _differentiable(outputs, strict, "jacobian")
    result = []
    with enable_grad():
        for i, out in enumerate(outputs):
            rows: list[list[Tensor]] = [[] for _ in inputs]
            n = out.numel()
            for k in range(n):
                onehot = np.zeros(n, dtype=out.dtype.np)
                onehot[k] = 1
                u = _tensor(onehot.reshape(tuple(out.shape)), dtype=out.dtype)
                try:
                    g = _grads((out,), inputs, (u,), create_graph, strict, "jacobian")
                except RuntimeError as e:
                    raise RuntimeError(f"{e} (output {i})") from None
                for j, gj in enumerate(g):
                    rows[j].append(gj)
            per_input = []
            for j, t in enumerate(inputs):
                shape = tuple(out.shape) + tuple(t.shape)
                if n == 0:
                    per_input.append(zeros_like(t).reshape(-1)[:0].reshape(shape))
                    continue
                per_input.append(stack(rows[j], 0).reshape(shape))
            result.append(_unwrap(_finish(tuple(per_input), create_graph), is_in_tuple))
    return _unwrap(tuple(result), is_out_tuple)


def _scalar_output(func, inputs, fn: str) -> Tensor:
    is_tuple, out = _call(func, inputs, fn)
    if is_tuple and len(out) != 1:
        raise RuntimeError(f"{fn}: the function should return a single Tensor, got {len(out)}")
    if out[0].numel() != 1:
        raise RuntimeError(
            f"{fn}: the Tensor returned by the function should contain a single element, "
            f"got shape {tuple(out[0].shape)}"
        )
    return out[0]


def hessian(
    func: Callable,
    inputs: TensorOrTensors,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar function: for inputs ``i`` and ``j`` a Tensor of shape
    ``inputs[i].shape + inputs[j].shape`` (one Tensor for a single input).

    Example:
        >>> import ember
        >>> hessian(lambda x: (x[0] * x[1]), ember.tensor([1.0, 2.0])).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(
            "hessian: outer_jacobian_strategy must be 'forward-mode' or 'reverse-mode', "
            f"got {outer_jacobian_strategy!r}"
        )

    def gradient(*xs):
        out = _scalar_output(func, xs, "hessian")
        _differentiable((out,), strict, "hessian")
        return _grads((out,), xs, (ones_like(out),), True, strict, "hessian")

    res = jacobian(
        gradient,
        inputs,
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy="reverse-mode",
    )
    if not is_in_tuple:
        return res[0][0]
    return res


def vhp(
    func: Callable,
    inputs: TensorOrTensors,
    v: TensorOrTensors | None = None,
    create_graph: bool = False,
    strict: bool = False,
):
    """``(func(inputs), v^T H)`` for a scalar function: the vector-Hessian product.

    Example:
        >>> import ember
        >>> out, p = vhp(lambda x: (x**3).sum(), ember.tensor([1.0, 2.0]), ember.ones(2))
        >>> p.tolist()
        [6.0, 12.0]
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(
    func: Callable,
    inputs: TensorOrTensors,
    v: TensorOrTensors | None = None,
    create_graph: bool = False,
    strict: bool = False,
):
    """``(func(inputs), H v)`` for a scalar function. The Hessian of a twice
    differentiable function is symmetric, so this is :func:`vhp` transposed: one
    double-backward pass.

    Example:
        >>> import ember
        >>> out, p = hvp(lambda x: x[0] ** 2 * x[1], ember.tensor([1.0, 2.0]), ember.ones(2))
        >>> p.tolist()
        [6.0, 2.0]
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def _hessian_product(func, inputs, v, create_graph, strict, fn):
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", fn)
    inputs = _prepare(inputs, create_graph)
    v = _check_v(v, inputs, "input", fn)
    out = _scalar_output(func, inputs, fn)
    _differentiable((out,), strict, fn)
    with enable_grad():
        g = _grads((out,), inputs, (ones_like(out),), True, strict, fn)
        res = _grads(g, inputs, v, create_graph, strict, fn)
    return _finish((out,), create_graph)[0], _unwrap(_finish(res, create_graph), is_in_tuple)
