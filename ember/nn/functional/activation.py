"""Activation functions. ``inplace=True`` is accepted for PyTorch compatibility; the result
is computed out of place (so autograd never sees a clobbered saved value, and a traced model
stays a pure function that ONNX and saved models can export). The explicit in-place forms
(``relu_``, ``elu_``, ...) and the Tensor methods (``x.relu_()``) do write into their input."""

from __future__ import annotations

import math

from ... import ops
from ...ops._core import ShapeError, refuse_integral
from ...ops.complex_refuse import refuse_complex

__all__ = [
    "celu",
    "elu",
    "gelu",
    "glu",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_softmax",
    "logsigmoid",
    "mish",
    "prelu",
    "relu",
    "relu6",
    "relu_",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softmin",
    "softplus",
    "softshrink",
    "softsign",
    "tanh",
    "tanhshrink",
    "threshold",
]


def relu(input, inplace=False):
    return ops.relu(input)


def relu_(input):
    """In-place :func:`relu`: writes the result into ``input`` (as ``input.relu_()``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> x = ember.tensor([-1.0, 2.0])
        >>> _ = F.relu_(x)
        >>> x.tolist()
        [0.0, 2.0]
    """
    from ..._tensor_methods import _inplace

    return _inplace(input, ops.relu, "relu_")


def relu6(input, inplace=False):
    refuse_complex("relu6", input)
    return hardtanh(input, 0.0, 6.0)


def gelu(input, *, approximate="none"):
    refuse_integral("gelu", input)
    return ops.gelu(input, approximate=approximate)


def silu(input, inplace=False):
    refuse_integral("silu", input)
    return ops.silu(input)


def tanh(input):
    return ops.tanh(input)


def sigmoid(input):
    return ops.sigmoid(input)


def softplus(input, beta=1.0, threshold=20.0):
    refuse_integral("softplus", input)
    return ops.softplus(input, beta, threshold)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return ops.leaky_relu(input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return ops.elu(input, alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    refuse_complex("selu", input)
    return ops.elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input, alpha=1.0, inplace=False):
    refuse_complex("celu", input)
    if alpha == 0:
        raise ValueError("celu: ZeroDivisionError, alpha cannot be 0")
    return ops.where(input > 0, input, ops.expm1(ops.clamp_max(input, 0.0) / alpha) * alpha)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    refuse_complex("hardtanh", input)
    if min_val > max_val:
        raise ValueError("hardtanh: min_val cannot be greater than max_val")
    # the gradient is 0 at min_val and max_val themselves (PyTorch), where clamp's passes
    inside = (input > min_val) & (input < max_val)
    out = ops.where(inside, input, ops.clamp(input, min_val, max_val).detach())
    return out if out.dtype == input.dtype else out.to(input.dtype)  # int stays int (PyTorch)


def hardsigmoid(input, inplace=False):
    refuse_complex("hardsigmoid", input)
    inside = (input > -3.0) & (input < 3.0)
    # outside: clamp's 0 / 1, and nan stays nan (as PyTorch), with a zero gradient
    return ops.where(inside, input / 6.0 + 0.5, ops.clamp(input / 6.0 + 0.5, 0.0, 1.0).detach())


def hardswish(input, inplace=False):
    refuse_complex("hardswish", input)
    # the middle piece on clamp(x, -3, 3): at x = +-inf its unused gradient is 0, not nan
    xm = ops.clamp(input, -3.0, 3.0)
    return ops.where(
        input <= -3.0, input * 0.0, ops.where(input >= 3.0, input, xm * (xm + 3.0) / 6.0)
    )


def mish(input, inplace=False):
    refuse_complex("mish", input)
    return input * ops.tanh(ops.softplus(input))


def logsigmoid(input):
    refuse_complex("logsigmoid", input)
    return -ops.softplus(-input)


def softsign(input):
    return input / (ops.abs(input) + 1.0)


def tanhshrink(input):
    return input - ops.tanh(input)


def softshrink(input, lambd=0.5):
    refuse_complex("softshrink", input)
    return ops.where(
        input > lambd, input - lambd, ops.where(input < -lambd, input + lambd, input * 0.0)
    )


def hardshrink(input, lambd=0.5):
    refuse_complex("hardshrink", input)
    return ops.where((input > lambd) | (input < -lambd), input, input * 0.0)


def threshold(input, threshold, value, inplace=False):
    refuse_complex("threshold", input)
    return ops.where(
        input > threshold,
        input,
        ops.full_like(input, value) if hasattr(ops, "full_like") else input * 0.0 + value,
    )


def prelu(input, weight):
    refuse_complex("prelu", input)
    if weight.numel() != 1 and input.ndim >= 2:
        c = input.shape[1]
        if weight.numel() != c:
            raise ShapeError(
                f"prelu: mismatch of parameter numbers and input channel size: weight has "
                f"{weight.numel()} parameters, input of shape {tuple(input.shape)} has {c} "
                f"channels"
            )
    if weight.numel() != 1 and input.ndim >= 2:
        weight = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return ops.where(input > 0, input, input * weight)


def glu(input, dim=-1):
    refuse_complex("glu", input)
    n = input.shape[dim]
    if n % 2:
        raise ValueError(f"glu: Halving dimension must be even, but dimension {dim} is size {n}")
    a, b = ops.chunk(input, 2, dim)
    return a * ops.sigmoid(b)


def _softmax_dim(ndim):
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return ops.softmax(input, _softmax_dim(input.ndim) if dim is None else dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return ops.log_softmax(input, _softmax_dim(input.ndim) if dim is None else dim, dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    refuse_complex("softmin", input)
    return softmax(-input, dim, dtype=dtype)


_ = math
