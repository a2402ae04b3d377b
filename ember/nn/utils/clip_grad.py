"""Gradient clipping: by total norm and by value (``torch.nn.utils.clip_grad_*``)."""

from __future__ import annotations

import math

from ... import _creation
from ..._tensor import Tensor
from ...autograd import no_grad
from ...ops import elementwise as E
from ...ops import reduction as R
from ...ops import shape as S

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _vector_norm(x, p):
    """The ``p``-norm of all elements of ``x`` (0-d tensor), as ``torch.linalg.vector_norm``."""
    if p == math.inf:
        return R.amax(E.abs(x)) if x.numel() else _creation.zeros((), dtype=x.dtype)
    if p == -math.inf:
        return R.amin(E.abs(x))
    if p == 2:
        return E.sqrt(R.sum(x * x))
    if p == 1:
        return R.sum(E.abs(x))
    if p == 0:
        return R.sum(E.convert(E.ne(x, 0), x.dtype))
    return E.pow(R.sum(E.pow(E.abs(x), p)), 1.0 / p)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all elements of ``tensors`` together (a 0-d tensor)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return _creation.tensor(0.0)
    with no_grad():
        norms = [_vector_norm(t, norm_type) for t in tensors]
        dtype = norms[0].dtype
        total = _vector_norm(S.stack([E.convert(n, dtype) for n in norms]), norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters`"
            " is non-finite, so it cannot be clipped. To disable this error and "
            "scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return total


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of ``parameters`` in place so that their total ``norm_type``-norm
    is at most ``max_norm``: ``g *= min(1, max_norm / (total_norm + 1e-6))``.

    Returns the total norm (before clipping) as a 0-d tensor.

    Example:
        >>> import ember
        >>> w = ember.ones(4, requires_grad=True)
        >>> (w * 3).sum().backward()
        >>> float(ember.nn.utils.clip_grad_norm_([w], max_norm=1.0))
        6.0
    """
    grads = _grads(parameters)
    if not grads:
        return _creation.tensor(0.0)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    with no_grad():
        coef = E.clamp(E.div(float(max_norm), total + 1e-6), None, 1.0)
        for g in grads:
            g.mul_(E.convert(coef, g.dtype))
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of :func:`clip_grad_norm_`."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp the gradients of ``parameters`` in place to ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
