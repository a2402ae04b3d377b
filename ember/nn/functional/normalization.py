"""Normalization: ``batch_norm layer_norm group_norm instance_norm rms_norm normalize``."""

from __future__ import annotations

from ... import ops
from ..._dtype import float32, float64
from ...ops._core import ShapeError, _state, bind, refuse_integral
from ...ops.complex_refuse import refuse_complex
from ...ops.normalization import batch_norm_train_p, group_norm_p, layer_norm_p, rms_norm_p

__all__ = [
    "batch_norm",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "local_response_norm",
    "normalize",
    "rms_norm",
]


def _check_momentum(momentum, op: str) -> None:
    # PyTorch's functional norms take momentum as a float (None is the modules' cumulative
    # average, resolved by the module before the call)
    import numbers

    from ..._tensor import Tensor

    if not isinstance(momentum, (numbers.Real, Tensor)):
        raise TypeError(f"{op}(): argument 'momentum' must be float, not {type(momentum).__name__}")


class _NoGrad:
    def __enter__(self):
        self.prev = _state.grad_enabled
        _state.grad_enabled = False

    def __exit__(self, *a):
        _state.grad_enabled = self.prev


def _empty(input, weight, bias):
    """The result of a channel normalization of an empty input: empty, as PyTorch (which
    also leaves running statistics alone); weight and bias stay in the graph with zero
    gradients."""
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    y = input.clone()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    """Batch normalization over (N, C, ...). In training mode the batch statistics are used
    and ``running_mean`` / ``running_var`` (if given) are updated in place with ``momentum``
    (the running variance uses the unbiased batch variance, as PyTorch)."""
    refuse_complex("batch_norm", input)
    refuse_integral("batch_norm", input)
    op = "batch_norm"
    _check_momentum(momentum, op)
    if input.ndim < 2:
        raise ShapeError(
            f"{op}: expected input with >= 2 dims (N, C, ...), got shape {tuple(input.shape)}"
        )
    c = input.shape[1]
    for name, t in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        if t is not None and tuple(t.shape) != (c,):
            raise ShapeError(
                f"{op}: {name} should have shape ({c},) for input of shape "
                f"{tuple(input.shape)}, got {tuple(t.shape)}"
            )
    if input.numel() == 0:
        return _empty(input, weight, bias)
    if training:
        m = input.numel() // c
        if m <= 1:
            raise ValueError(
                f"{op}: expected more than 1 value per channel when training, got "
                f"input size {tuple(input.shape)}"
            )
        args = (
            (input,)
            + ((weight,) if weight is not None else (() if bias is None else (None,)))
            + ((bias,) if bias is not None else ())
        )
        y, mean, var = bind(batch_norm_train_p, args, {"eps": float(eps)})
        if running_mean is not None or running_var is not None:
            mom = float(momentum)
            with _NoGrad():
                if running_mean is not None:
                    running_mean.mul_(1.0 - mom).add_(mean.to(running_mean.dtype) * mom)
                if running_var is not None:
                    running_var.mul_(1.0 - mom).add_(
                        var.to(running_var.dtype) * (mom * m / (m - 1))
                    )
        return y
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var must be given when not training")
    shape = (1, c) + (1,) * (input.ndim - 2)
    scale = (running_var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(shape).to(input.dtype) + shift.reshape(shape).to(input.dtype)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    refuse_complex("layer_norm", input)
    refuse_integral("layer_norm", input)
    op = "layer_norm"
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0:
        raise ShapeError(
            f"{op}: expected normalized_shape to be at least 1-dimensional, i.e., containing "
            f"at least one element, but got normalized_shape={normalized_shape}"
        )
    if tuple(input.shape[input.ndim - k :]) != normalized_shape or input.ndim < k:
        raise ShapeError(
            f"{op}: normalized_shape {normalized_shape} does not match the trailing "
            f"dims of input of shape {tuple(input.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != normalized_shape:
            raise ShapeError(
                f"{op}: {name} shape {tuple(t.shape)} must equal normalized_shape "
                f"{normalized_shape}"
            )
    args = (
        (input,)
        + ((weight,) if weight is not None else (() if bias is None else (None,)))
        + ((bias,) if bias is not None else ())
    )
    return bind(layer_norm_p, args, {"k": k, "eps": float(eps)})


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    refuse_complex("group_norm", input)
    refuse_integral("group_norm", input)
    op = "group_norm"
    if input.ndim < 2:
        raise ShapeError(f"{op}: expected input with >= 2 dims, got {tuple(input.shape)}")
    n, c = input.shape[:2]
    if num_groups <= 0:
        raise ValueError(f"{op}: num_groups must be positive, got {num_groups}")
    if c % num_groups:
        raise ShapeError(
            f"{op}: number of channels {c} (input shape {tuple(input.shape)}) must "
            f"be divisible by num_groups={num_groups}"
        )
    if input.numel() == 0:
        return _empty(input, weight, bias)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ShapeError(
                f"{op}: {name} of shape {tuple(t.shape)} does not match the {c} channels of "
                f"input of shape {tuple(input.shape)}"
            )
    if input.numel() // num_groups == 1:  # PyTorch's check: one value per (sample, group)
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, got input size "
            f"{tuple(input.shape)} with num_groups={num_groups}"
        )
    if _state.tracer is None and input.dtype in (float32, float64):
        # the fused eager kernel (traced graphs keep layer_norm + mul/add: export, lite)
        args = (
            (input,)
            + ((weight.reshape(c),) if weight is not None else (() if bias is None else (None,)))
            + ((bias.reshape(c),) if bias is not None else ())
        )
        return bind(group_norm_p, args, {"groups": int(num_groups), "eps": float(eps)})[0]
    x = input.reshape(n, num_groups, -1)
    y = bind(layer_norm_p, (x,), {"k": 1, "eps": float(eps)}).reshape(tuple(input.shape))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats=True,
    momentum=0.1,
    eps=1e-5,
):
    refuse_complex("instance_norm", input)
    _check_momentum(momentum, "instance_norm")
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    if input.numel() == 0:
        return _empty(input, weight, bias)
    n, c = input.shape[:2]
    if running_mean is not None or running_var is not None:
        # update the running statistics with the batch average of the per-instance mean and
        # unbiased variance, as PyTorch (the output still uses the instance statistics)
        mom = float(momentum)
        with _NoGrad():
            x = input.detach().reshape(n, c, -1)
            if running_mean is not None:
                running_mean.mul_(1.0 - mom).add_(x.mean(2).mean(0).to(running_mean.dtype) * mom)
            if running_var is not None:
                running_var.mul_(1.0 - mom).add_(
                    x.var(2, correction=1).mean(0).to(running_var.dtype) * mom
                )
    return group_norm(
        input.reshape((1, n * c) + tuple(input.shape[2:])), n * c, None, None, eps
    ).reshape(tuple(input.shape)) * (
        1.0 if weight is None else weight.reshape((1, c) + (1,) * (input.ndim - 2))
    ) + (0.0 if bias is None else bias.reshape((1, c) + (1,) * (input.ndim - 2)))


def rms_norm(input, normalized_shape, weight=None, eps=None):
    refuse_integral("rms_norm", input)
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k :]) != tuple(normalized_shape):
        raise ShapeError(
            f"rms_norm: normalized_shape {tuple(normalized_shape)} does not match "
            f"the trailing dims of input of shape {tuple(input.shape)}"
        )
    if eps is None:
        import numpy as np

        eps = float(
            np.finfo(input._data.dtype if input._data.dtype.kind == "f" else np.float32).eps
        )
    if weight is not None and tuple(weight.shape) != tuple(normalized_shape):
        raise ShapeError(
            f"rms_norm: weight shape {tuple(weight.shape)} must equal normalized_shape "
            f"{tuple(normalized_shape)}"
        )
    if input._data.dtype.kind != "f" or input._data.dtype.itemsize < 4:
        # half precision: the composite in ember ops (PyTorch computes these in float32 too)
        dims = tuple(range(input.ndim - k, input.ndim))
        y = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
        return y * weight if weight is not None else y
    args = (input,) + ((weight,) if weight is not None else ())
    return bind(rms_norm_p, args, {"k": k, "eps": float(eps)})


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    refuse_complex("local_response_norm", input)
    from .sampling import pad

    sq = (input * input).unsqueeze(1)
    sq = pad(sq.reshape(sq.shape[0], 1, sq.shape[2], -1), (0, 0, size // 2, (size - 1) // 2))
    from .pooling import avg_pool2d

    div = avg_pool2d(sq, (size, 1), stride=1).squeeze(1).reshape(tuple(input.shape))
    return input / (div * alpha + k) ** beta


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    n = ops.norm(input, p, dim, keepdim=True)
    return input / ops.clamp_min(n, eps)
