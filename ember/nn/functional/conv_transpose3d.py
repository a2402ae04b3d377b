"""``conv_transpose3d``: the transposed 3-D convolution as a composition of 2-D ones.

A transposed convolution scatters every input depth slice through every kernel depth slice:
input slice ``i`` and kernel slice ``kd`` produce a 2-D transposed convolution that lands at
output depth ``i * stride + kd * dilation``. The depth axis is folded into the batch, so it
costs one ``conv_transpose2d`` per kernel depth (not per output slice), and zero padding
places the results at their depths; every gradient comes from those primitives.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> x = ember.ones(1, 2, 3, 3, 3)
    >>> w = ember.ones(2, 4, 2, 2, 2)
    >>> tuple(F.conv_transpose3d(x, w, stride=2).shape)
    (1, 4, 6, 6, 6)
"""

from __future__ import annotations

from ...ops._core import ShapeError
from .volumetric import _triple

__all__ = ["conv_transpose3d"]


def conv_transpose3d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
):
    """Transposed 3-D convolution of ``(N, C_in, D, H, W)`` (or unbatched ``(C_in, D, H,
    W)``) with ``(C_in, C_out / groups, kD, kH, kW)`` weights, PyTorch's semantics.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> y = F.conv_transpose3d(ember.ones(1, 1, 2, 2, 2), ember.ones(1, 1, 3, 3, 3))
        >>> tuple(y.shape), float(y[0, 0, 1, 1, 1])
        ((1, 1, 4, 4, 4), 8.0)
    """
    from .conv import conv_transpose2d
    from .sampling import pad as pad_

    op = "conv_transpose3d"
    if input.ndim not in (4, 5):
        raise ShapeError(
            f"{op}: expected a 4-D (unbatched) or 5-D (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    if weight.ndim != 5:
        raise ShapeError(f"{op}: expected a 5-D weight, got shape {tuple(weight.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(
            f"{op}: input type ({input.dtype}) and weight type ({weight.dtype}) should be the same"
        )
    unbatched = input.ndim == 4
    x = input.unsqueeze(0) if unbatched else input
    groups = int(groups)
    if groups < 1 or weight.shape[0] % groups or x.shape[1] != weight.shape[0]:
        raise ShapeError(
            f"{op}: expected input with {weight.shape[0]} channels divisible by groups={groups} "
            f"(weight shape {tuple(weight.shape)}), got input of shape {tuple(input.shape)}"
        )
    s = _triple(stride, "stride", op)
    p = _triple(padding, "padding", op)
    opad = _triple(output_padding, "output_padding", op)
    dl = _triple(dilation, "dilation", op)
    if min(s) < 1 or min(dl) < 1 or min(p) < 0 or min(opad) < 0:
        raise ValueError(
            f"{op}: stride and dilation must be positive and padding, output_padding "
            f"non-negative, got stride={s}, dilation={dl}, padding={p}, output_padding={opad}"
        )
    if any(o >= max(si, di) for o, si, di in zip(opad, s, dl)):
        raise ValueError(
            f"{op}: output padding must be smaller than either stride or dilation, got "
            f"output_padding={opad}, stride={s}, dilation={dl}"
        )
    n, _, d_in, h_in, w_in = x.shape
    k = tuple(weight.shape[2:])
    if min(k) < 1:
        raise ShapeError(f"{op}: kernel sizes must be positive, got weight {tuple(weight.shape)}")
    sizes = [
        (x.shape[2 + i] - 1) * s[i] - 2 * p[i] + dl[i] * (k[i] - 1) + opad[i] + 1 for i in range(3)
    ]
    if min(sizes) <= 0:
        raise ShapeError(
            f"{op}: output size {tuple(sizes)} is too small for input {tuple(input.shape)}"
        )
    c_out = weight.shape[1] * groups
    full = sizes[0] + 2 * p[0]  # depth before the padding is cropped
    flat = x.permute(0, 2, 1, 3, 4).reshape(n * d_in, x.shape[1], h_in, w_in)
    spread = (d_in - 1) * s[0] + 1  # the input slices at depth stride s[0]
    terms = []
    for kd in range(k[0]):
        y = conv_transpose2d(
            flat, weight[:, :, kd], None, s[1:], p[1:], opad[1:], groups, dl[1:]
        ).reshape(n, d_in, c_out, sizes[1], sizes[2])
        if s[0] > 1:  # s[0] - 1 zero slices after each input slice
            y = pad_(y.unsqueeze(2), (0, 0, 0, 0, 0, 0, 0, s[0] - 1))
            y = y.reshape(n, d_in * s[0], c_out, sizes[1], sizes[2])[:, :spread]
        front = kd * dl[0]
        terms.append(pad_(y, (0, 0, 0, 0, 0, 0, front, full - front - spread)))
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    out = acc[:, p[0] : p[0] + sizes[0]].permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out
