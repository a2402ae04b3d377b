"""Layout-rearranging and distance functions with PyTorch's names: ``pixel_shuffle``,
``pixel_unshuffle``, ``channel_shuffle``, ``pdist``, ``affine_grid``, ``gumbel_softmax``,
``rrelu``, ``lp_pool1d``/``lp_pool2d``, the ``*_with_indices`` pooling spellings,
``triplet_margin_with_distance_loss``, ``multilabel_margin_loss`` and the in-place activation
variants (``elu_``, ``leaky_relu_`` ...). Compositions of ember ops, so differentiable.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> tuple(F.pixel_shuffle(ember.zeros(1, 8, 2, 3), 2).shape)
    (1, 2, 4, 6)
"""

from __future__ import annotations

from ... import _creation as C
from ... import _dtype as dt
from ... import ops
from ...ops._core import ShapeError
from ...ops.complex_refuse import refuse_complex

__all__ = [
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d_with_indices",
    "affine_grid",
    "celu_",
    "channel_shuffle",
    "elu_",
    "gumbel_softmax",
    "hardtanh_",
    "leaky_relu_",
    "lp_pool1d",
    "lp_pool2d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "multilabel_margin_loss",
    "native_channel_shuffle",
    "pdist",
    "pixel_shuffle",
    "pixel_unshuffle",
    "rrelu",
    "rrelu_",
    "selu_",
    "threshold_",
    "triplet_margin_with_distance_loss",
]


def pixel_shuffle(input, upscale_factor):
    """``(*, C r^2, H, W) -> (*, C, H r, W r)``: depth to space."""
    r = int(upscale_factor)
    if r <= 0:
        raise ValueError(f"pixel_shuffle: upscale_factor must be positive, got {upscale_factor}")
    if input.ndim < 3:
        raise ShapeError(f"pixel_shuffle: expected at least 3 dims, got {input.ndim}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(
            f"pixel_shuffle: channels ({c}) must be divisible by upscale_factor^2 ({r * r})"
        )
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """``(*, C, H r, W r) -> (*, C r^2, H, W)``: space to depth (inverse of pixel_shuffle)."""
    r = int(downscale_factor)
    if r <= 0:
        raise ValueError(
            f"pixel_unshuffle: downscale_factor must be positive, got {downscale_factor}"
        )
    if input.ndim < 3:
        raise ShapeError(f"pixel_unshuffle: expected at least 3 dims, got {input.ndim}")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ShapeError(f"pixel_unshuffle: height ({h}) and width ({w}) must be divisible by {r}")
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input, groups):
    """Interleave the channels of ``groups`` groups (ShuffleNet): ``(N, g*k, ...)`` viewed as
    ``(N, g, k, ...)``, transposed to ``(N, k, g, ...)`` and flattened back."""
    g = int(groups)
    if g <= 0:
        raise ValueError(f"channel_shuffle: groups must be positive, got {groups}")
    if input.ndim < 3:
        raise ShapeError(f"channel_shuffle: expected at least 3 dims, got {input.ndim}")
    n, c, *rest = input.shape
    if c % g:
        raise ShapeError(f"channel_shuffle: channels ({c}) must be divisible by groups ({g})")
    return input.reshape(n, g, c // g, *rest).transpose(1, 2).reshape(n, c, *rest)


native_channel_shuffle = channel_shuffle


def pdist(input, p=2.0):
    """The ``p``-norm distances between every pair of rows ``i < j`` of a 2-D tensor, in
    row-major order of the upper triangle."""
    refuse_complex("pdist", input)
    if input.ndim != 2:
        raise ShapeError(f"pdist: expected a 2-D tensor, got {input.ndim}-D")
    n = input.shape[0]
    i, j = ops.triu_indices(n, n, 1)
    from ...linalg import vector_norm

    return vector_norm(input[i] - input[j], ord=p, dim=-1)


def affine_grid(theta, size, align_corners=None):
    """Sampling grids for ``grid_sample`` from batches of affine matrices: ``theta`` of
    shape ``(N, 2, 3)`` with ``size = (N, C, H, W)`` gives ``(N, H, W, 2)``; ``(N, 3, 4)``
    with ``(N, C, D, H, W)`` gives ``(N, D, H, W, 3)``."""
    refuse_complex("affine_grid", theta)
    align = bool(align_corners)
    size = tuple(int(s) for s in size)
    spatial = size[2:]
    k = len(spatial)
    if k not in (2, 3) or tuple(theta.shape) != (size[0], k, k + 1):
        raise ShapeError(
            f"affine_grid: expected theta of shape (N, {k}, {k + 1}) for size {size}, got "
            f"{tuple(theta.shape)}"
        )

    def axis(n):
        if n <= 1:
            return C.zeros(n, dtype=theta.dtype)
        lin = C.linspace(-1.0, 1.0, n, dtype=theta.dtype)
        return lin if align else lin * ((n - 1) / n)

    # base coordinates in (x, y[, z]) order, i.e. the last spatial dim first
    coords = ops.meshgrid(*[axis(n) for n in spatial], indexing="ij")
    base = ops.stack([*reversed(coords), C.ones(*spatial, dtype=theta.dtype)], dim=-1)
    grid = base.reshape(1, -1, k + 1) @ theta.transpose(1, 2)
    return grid.reshape(size[0], *spatial, k)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """Samples from the Gumbel-softmax distribution (``hard``: one-hot in the forward pass,
    the soft sample's gradient in the backward pass)."""
    u = C.rand_like(logits).clamp(1e-20, 1.0 - 1e-7)
    gumbels = -ops.log(-ops.log(u))  # -log of an Exp(1) draw
    y = ops.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y
    idx = y.argmax(dim, keepdim=True)
    one_hot = C.zeros_like(y).scatter(dim, idx, 1.0)
    return one_hot - y.detach() + y


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU: negative inputs scaled by a slope drawn uniformly from
    ``[lower, upper]`` per element in training, by ``(lower + upper) / 2`` otherwise."""
    refuse_complex("rrelu", input)
    if lower > upper:
        raise ValueError(f"rrelu: lower ({lower}) must not exceed upper ({upper})")
    if training:
        slope = C.rand_like(input) * (upper - lower) + lower
    else:
        slope = (lower + upper) / 2
    return ops.where(input >= 0, input, input * slope)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling: ``(sum over the window of x**p) ** (1/p)``."""
    from .pooling import avg_pool2d

    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    out = avg_pool2d(input.pow(norm_type), (kh, kw), stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(kh * kw).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over the last dimension."""
    refuse_complex("lp_pool1d", input)
    from .pooling import avg_pool1d

    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    out = avg_pool1d(input.pow(norm_type), k, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(k).pow(1.0 / norm_type)


def max_pool1d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """:func:`max_pool1d` returning ``(values, indices)``."""
    from .pooling import max_pool1d

    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """:func:`max_pool2d` returning ``(values, indices)``."""
    refuse_complex("max_pool2d_with_indices", input)
    from .pooling import max_pool2d

    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    """:func:`adaptive_max_pool1d` returning ``(values, indices)``."""
    from .pooling import adaptive_max_pool1d

    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    """:func:`adaptive_max_pool2d` returning ``(values, indices)``."""
    refuse_complex("adaptive_max_pool2d_with_indices", input)
    from .pooling import adaptive_max_pool2d

    return adaptive_max_pool2d(input, output_size, True)


def triplet_margin_with_distance_loss(
    anchor,
    positive,
    negative,
    *,
    distance_function=None,
    margin=1.0,
    swap=False,
    reduction="mean",
):
    """The triplet loss with any distance (default: :func:`pairwise_distance`)."""
    from .loss import _reduce, _reduction, pairwise_distance

    reduction = _reduction(reduction, "triplet_margin_with_distance_loss")
    if margin <= 0:
        raise ValueError(
            f"triplet_margin_with_distance_loss: margin must be positive, got {margin}"
        )
    dist = distance_function or pairwise_distance
    dp, dn = dist(anchor, positive), dist(anchor, negative)
    if swap:
        dn = ops.minimum(dn, dist(positive, negative))
    return _reduce(ops.clamp_min(margin + dp - dn, 0.0), reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """The multi-class multi-label hinge loss: ``target`` holds class indices, ended by the
    first -1; each (target class, other class) pair costs ``max(0, 1 - (x[y] - x[j]))``,
    averaged over the classes."""
    from .loss import _reduce, _reduction

    reduction = _reduction(reduction, "multilabel_margin_loss", size_average, reduce)
    if input.ndim not in (1, 2) or tuple(target.shape) != tuple(input.shape):
        raise ShapeError(
            f"multilabel_margin_loss: input and target must have the same 1-D or 2-D shape, "
            f"got {tuple(input.shape)} and {tuple(target.shape)}"
        )
    x = input.reshape(1, -1) if input.ndim == 1 else input
    t = target.reshape(1, -1) if target.ndim == 1 else target
    c = x.shape[1]
    valid = (t >= 0).to(dt.int64).cumprod(1).to(dt.bool_)  # entries before the first -1
    tgt = ops.where(valid, t, 0)
    is_target = C.zeros(*x.shape, dtype=x.dtype)
    is_target = is_target.scatter_add(1, tgt, valid.to(is_target.dtype)).clamp(max=1.0)
    xy = x.gather(1, tgt)  # (N, C): the score of each listed target
    margins = (1.0 - (xy.unsqueeze(2) - x.unsqueeze(1))).clamp(min=0.0)  # (N, C_t, C)
    keep = valid.unsqueeze(2).to(x.dtype) * (1.0 - is_target).unsqueeze(1)
    loss = (margins * keep).sum((1, 2)) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


# -- in-place activation variants (modify ``input``, as PyTorch's do) -----------------------
def _inplace(name, fn):
    def run(input, *args, **kwargs):
        from ..._tensor_methods import _inplace as write_back

        return write_back(input, lambda s: fn(s, *args, **kwargs), name)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = f"In-place :func:`{name[:-1]}`: writes the result into ``input``."
    return run


def _activation(name):
    from . import activation

    return getattr(activation, name)


elu_ = _inplace("elu_", lambda x, *a, **k: _activation("elu")(x, *a, **k))
celu_ = _inplace("celu_", lambda x, *a, **k: _activation("celu")(x, *a, **k))
selu_ = _inplace("selu_", lambda x, *a, **k: _activation("selu")(x, *a, **k))
leaky_relu_ = _inplace("leaky_relu_", lambda x, *a, **k: _activation("leaky_relu")(x, *a, **k))
hardtanh_ = _inplace("hardtanh_", lambda x, *a, **k: _activation("hardtanh")(x, *a, **k))
threshold_ = _inplace("threshold_", lambda x, *a, **k: _activation("threshold")(x, *a, **k))
rrelu_ = _inplace("rrelu_", rrelu)
