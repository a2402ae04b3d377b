"""Convolutions and linear maps: ``linear bilinear conv1d conv2d conv_transpose1d/2d``."""

from __future__ import annotations

from ... import ops
from ...ops._core import ShapeError, bind
from ...ops.conv import conv2d_grad_input_p, conv2d_p, conv_out_size
from ...ops.nn import linear_p
from ._util import pair

__all__ = [
    "bilinear",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "fold",
    "linear",
    "unfold",
]


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (weight: (out_features, in_features))."""
    if weight.ndim not in (1, 2):
        raise ShapeError(f"linear: weight must be 1-D or 2-D, got shape {tuple(weight.shape)}")
    if input.shape[-1] != weight.shape[-1]:
        raise ShapeError(
            f"linear: input of shape {tuple(input.shape)} has "
            f"{input.shape[-1]} features, but weight of shape "
            f"{tuple(weight.shape)} expects {weight.shape[-1]}"
        )
    if (
        bias is not None
        and weight.ndim == 2
        and bias.ndim >= 1
        and (bias.ndim > 1 or bias.shape[-1] not in (1, weight.shape[0]))
    ):
        raise ShapeError(
            f"linear: bias of shape {tuple(bias.shape)} does not match weight of shape "
            f"{tuple(weight.shape)}; expected shape ({weight.shape[0]},)"
        )
    if (
        weight.ndim == 2
        and input.ndim >= 1
        and input.dtype == weight.dtype
        and (bias is None or bias.dtype == input.dtype)
    ):
        args = (input, weight) if bias is None else (input, weight, bias)
        return bind(linear_p, args)
    y = ops.matmul(input, weight.mT if weight.ndim == 2 else weight)
    return y + bias if bias is not None else y


def bilinear(input1, input2, weight, bias=None):
    """``y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]``."""
    if (
        weight.ndim != 3
        or input1.shape[-1] != weight.shape[1]
        or input2.shape[-1] != weight.shape[2]
    ):
        raise ShapeError(
            f"bilinear: weight {tuple(weight.shape)} does not match inputs "
            f"{tuple(input1.shape)} and {tuple(input2.shape)}"
        )
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, input1.shape[-1])
    x2 = input2.reshape(-1, input2.shape[-1])
    y = ops.einsum("bi,oij,bj->bo", x1, weight, x2)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (weight.shape[0],))


def _conv_padding(padding, kernel, stride, dilation, op):
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(
            f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'"
        )
    ph, pw = pair(padding, "padding", op)
    if ph < 0 or pw < 0:
        raise ValueError(f"{op}: negative padding is not supported, got {padding!r}")
    return (ph, ph, pw, pw)


def _check_conv(input, weight, groups, op, nd=2):
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-D weight, got shape {tuple(weight.shape)}")
    if input.ndim != nd + 2:
        raise ShapeError(
            f"{op}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"got shape {tuple(input.shape)}"
        )
    if groups < 1 or weight.shape[0] % groups:
        raise ShapeError(
            f"{op}: out_channels {weight.shape[0]} (weight shape "
            f"{tuple(weight.shape)}) must be divisible by groups={groups}"
        )
    if input.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"{op}: expected input with {weight.shape[1] * groups} channels "
            f"(weight shape {tuple(weight.shape)}, groups={groups}), got input of "
            f"shape {tuple(input.shape)} with {input.shape[1]} channels"
        )


def _float_pair(input, weight, op):
    if input.dtype != weight.dtype:
        raise TypeError(
            f"{op}: input type ({input.dtype}) and weight type ({weight.dtype}) should be the same"
        )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over an (N, C, H, W) input, PyTorch semantics."""
    op = "conv2d"
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    _check_conv(input, weight, groups, op)
    _float_pair(input, weight, op)
    stride = pair(stride, "stride", op, positive=True)
    dilation = pair(dilation, "dilation", op, positive=True)
    pad = _conv_padding(padding, tuple(weight.shape[2:]), stride, dilation, op)
    h, w = input.shape[2:]
    ho = conv_out_size(h, weight.shape[2], stride[0], pad[0], pad[1], dilation[0])
    wo = conv_out_size(w, weight.shape[3], stride[1], pad[2], pad[3], dilation[1])
    if ho <= 0 or wo <= 0:
        raise ShapeError(
            f"{op}: input of shape {tuple(input.shape)} (padding {padding!r}) is "
            f"too small for weight {tuple(weight.shape)} with dilation {dilation}:"
            f" the output would be {ho}x{wo}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ShapeError(
            f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}"
        )
    args = (input, weight) if bias is None else (input, weight, bias)
    out = bind(
        conv2d_p,
        args,
        {"stride": stride, "padding": pad, "dilation": dilation, "groups": int(groups)},
    )
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over an (N, C, L) input (computed as a conv2d with H = 1)."""
    op = "conv1d"
    unbatched = input.ndim == 2
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(
            f"{op}: expected 3-D input and weight, got input {tuple(input.shape)} "
            f"and weight {tuple(weight.shape)}"
        )
    if input.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"{op}: expected input with {weight.shape[1] * groups} channels "
            f"(weight shape {tuple(weight.shape)}, groups={groups}), got input of "
            f"shape {tuple(input.shape)}"
        )
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = (0, pair(padding, "padding", op, 1)[0])
    out = conv2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, pair(stride, "stride", op, 1, positive=True)[0]),
        pad2,
        (1, pair(dilation, "dilation", op, 1, positive=True)[0]),
        groups,
    )
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed 2-D convolution; weight: (C_in, C_out/groups, kh, kw)."""
    op = "conv_transpose2d"
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ShapeError(
            f"{op}: expected 4-D input and weight, got input {tuple(input.shape)} "
            f"and weight {tuple(weight.shape)}"
        )
    if input.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ShapeError(
            f"{op}: expected input with {weight.shape[0]} channels (weight shape "
            f"{tuple(weight.shape)}, groups={groups}), got input of shape "
            f"{tuple(input.shape)}"
        )
    _float_pair(input, weight, op)
    stride = pair(stride, "stride", op, positive=True)
    dilation = pair(dilation, "dilation", op, positive=True)
    ph, pw = pair(padding, "padding", op)
    oph, opw = pair(output_padding, "output_padding", op)
    if min(ph, pw) < 0 or min(oph, opw) < 0:  # a negative one made a wrong-sized output
        which = "padding" if min(ph, pw) < 0 else "output_padding"
        raise ValueError(
            f"{op}: negative {which} is not supported, got padding={padding!r}, "
            f"output_padding={output_padding!r}"
        )
    if oph >= max(stride[0], dilation[0]) or opw >= max(stride[1], dilation[1]):
        raise ValueError(
            f"{op}: output padding must be smaller than either stride or "
            f"dilation, got output_padding={output_padding}, stride={stride}, "
            f"dilation={dilation}"
        )
    kh, kw = weight.shape[2:]
    ho = (input.shape[2] - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1
    wo = (input.shape[3] - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"{op}: output size {ho}x{wo} is too small for input {tuple(input.shape)}")
    # output padding: rows/cols at the bottom/right that no input reaches (negative pad)
    out = bind(
        conv2d_grad_input_p,
        (input, weight),
        {
            "stride": stride,
            "padding": (ph, ph - oph, pw, pw - opw),
            "dilation": dilation,
            "groups": int(groups),
            "in_hw": (ho, wo),
        },
    )
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    unbatched = input.ndim == 2
    if unbatched:
        input = input.unsqueeze(0)
    op = "conv_transpose1d"
    out = conv_transpose2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, pair(stride, "stride", op, 1, positive=True)[0]),
        (0, pair(padding, "padding", op, 1)[0]),
        (0, pair(output_padding, "output_padding", op, 1)[0]),
        groups,
        (1, pair(dilation, "dilation", op, 1, positive=True)[0]),
    ).squeeze(2)
    return out.squeeze(0) if unbatched else out


def _patch_weight(c, kh, kw, dtype):
    """(C*kh*kw, 1, kh, kw) one-hot kernels: output channel c*kh*kw + i*kw + j picks x[c] at
    window offset (i, j). With groups=C, a conv with it is im2col (``unfold``) and the
    transposed conv is col2im (``fold``), both differentiable through the conv primitives."""
    import numpy as np

    from ..._creation import from_numpy

    w = np.zeros((c, kh * kw, kh, kw), dtype)
    for i in range(kh):
        for j in range(kw):
            w[:, i * kw + j, i, j] = 1
    return from_numpy(w.reshape(c * kh * kw, 1, kh, kw))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding local blocks (im2col): (N, C, H, W) -> (N, C*kh*kw, L)."""
    op = "unfold"
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    kh, kw = pair(kernel_size, "kernel_size", op)
    c = x.shape[1]
    out = conv2d(
        x, _patch_weight(c, kh, kw, x._data.dtype), None, stride, padding, dilation, groups=c
    )
    out = out.reshape(out.shape[0], c * kh * kw, -1)
    return out.squeeze(0) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Combine sliding blocks (col2im, summing overlaps): (N, C*kh*kw, L) -> (N, C, H, W)."""
    op = "fold"
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    kh, kw = pair(kernel_size, "kernel_size", op)
    h, w = pair(output_size, "output_size", op)
    d, p, s = (
        pair(dilation, "dilation", op, positive=True),
        pair(padding, "padding", op),
        pair(stride, "stride", op, positive=True),
    )
    if x.ndim != 3 or x.shape[1] % (kh * kw):
        raise ShapeError(f"{op}: expected (N, C*{kh}*{kw}, L) input, got {tuple(input.shape)}")
    c = x.shape[1] // (kh * kw)
    ho = conv_out_size(h, kh, s[0], p[0], p[0], d[0])
    wo = conv_out_size(w, kw, s[1], p[1], p[1], d[1])
    if ho * wo != x.shape[2]:
        raise ShapeError(
            f"{op}: expected {ho * wo} blocks for output_size {(h, w)}, "
            f"kernel_size {(kh, kw)}, got input of shape {tuple(input.shape)}"
        )
    out = bind(
        conv2d_grad_input_p,
        (x.reshape(x.shape[0], c * kh * kw, ho, wo), _patch_weight(c, kh, kw, x._data.dtype)),
        {
            "stride": s,
            "padding": (p[0], p[0], p[1], p[1]),
            "dilation": d,
            "groups": c,
            "in_hw": (h, w),
        },
    )
    return out.squeeze(0) if unbatched else out
