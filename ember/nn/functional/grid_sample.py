"""``grid_sample``: sample an image (4-D) or volume (5-D) at normalized grid positions.

A composition of ember ops, so gradients reach both the input (through the gathers) and the
grid (through the interpolation weights), with PyTorch's conventions:

- coordinates in ``[-1, 1]`` map to the corner pixels' centres (``align_corners=True``) or
  to the image's outer edges (``False``);
- ``padding_mode`` ``zeros`` reads 0 outside the input, ``border`` clamps the coordinate and
  ``reflection`` mirrors it at the edges (and clamps); at a clamped coordinate, the edges
  included, the coordinate's gradient is 0, as in PyTorch;
- ``bilinear`` (trilinear on 5-D) weighs the 2 (or 2^3) neighbours, ``nearest`` rounds half to
  even (its grid gradient is zero), ``bicubic`` (4-D only) uses the 4x4 neighbourhood with
  the cubic convolution kernel ``A = -0.75``, each tap's index padded on its own.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> img = ember.arange(4.0).reshape(1, 1, 2, 2)
    >>> grid = ember.tensor([[[[0.0, 0.0], [-1.0, -1.0]]]])
    >>> F.grid_sample(img, grid, align_corners=True).tolist()
    [[[[1.5, 0.0]]]]
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ... import _creation as C
from ... import ops
from ...ops._core import ShapeError
from .sampling import embedding

__all__ = ["grid_sample"]

_A = -0.75  # PyTorch's (and OpenCV's) bicubic convolution constant


def _unnormalize(c, size: int, align_corners: bool):
    if align_corners:
        return (c + 1.0) * ((size - 1) / 2.0)
    return ((c + 1.0) * size - 1.0) / 2.0


def _clip(c, size: int):
    # where, not clamp: PyTorch treats the borders themselves as out of bounds for the
    # gradient (0 there)
    hi = float(size - 1)
    return ops.where(c <= 0.0, 0.0, ops.where(c >= hi, hi, c))


def _reflect(c, twice_low: int, twice_high: int):
    if twice_low == twice_high:
        return c * 0.0
    lo = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    v = c - lo
    v = ops.where(v < 0.0, -v, v)
    extra = ops.fmod(v, span)
    flips = ops.floor(v.detach() / span)
    even = ops.fmod(flips, 2.0) == 0.0
    return ops.where(even, extra + lo, (span - extra) + lo)


def _pad_coord(c, size: int, padding_mode: str, align_corners: bool):
    if padding_mode == "border":
        return _clip(c, size)
    if padding_mode == "reflection":
        if align_corners:
            c = _reflect(c, 0, 2 * (size - 1))
        else:
            c = _reflect(c, -1, 2 * size - 1)
        return _clip(c, size)
    return c


def _cubic_coeffs(t):
    """The four bicubic tap weights at fractional offset ``t`` (taps at -1, 0, 1, 2)."""

    def near(x):  # |x| <= 1
        return ((_A + 2.0) * x - (_A + 3.0)) * x * x + 1.0

    def far(x):  # 1 < |x| < 2
        return ((_A * x - 5.0 * _A) * x + 8.0 * _A) * x - 4.0 * _A

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def _total(terms: list):
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _as_index(c, size: int):
    """An integer-valued float coordinate as int64 in ``[-1, size]``: out of range lands on
    the zero border (-1 or ``size``), NaN too, and the cast never overflows."""
    c = ops.nan_to_num(c.detach(), nan=-1.0, posinf=float(size), neginf=-1.0)
    return ops.clamp(c, -1.0, float(size)).long()


def grid_sample(
    input,
    grid,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
):
    """Sample ``input`` ``(N, C, H_in, W_in)`` at ``grid`` ``(N, H, W, 2)`` (x, y in [-1, 1])
    giving ``(N, C, H, W)``; or ``(N, C, D_in, H_in, W_in)`` at ``(N, D, H, W, 3)``.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> x = ember.randn(2, 3, 5, 5)
        >>> grid = F.affine_grid(ember.eye(2, 3).expand(2, 2, 3), [2, 3, 5, 5], False)
        >>> bool((F.grid_sample(x, grid, align_corners=False) - x).abs().max() < 1e-5)
        True
    """
    op = "grid_sample"
    from ..._tensor import Tensor

    if not isinstance(input, Tensor) or not isinstance(grid, Tensor):
        raise TypeError(f"{op}: input and grid must be Tensors")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            f"{op}: expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            f"{op}: expected padding_mode to be 'zeros', 'border', or 'reflection', but got: "
            f"'{padding_mode}'"
        )
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise ShapeError(
            f"{op}: expected a 4-D input with a 4-D grid or a 5-D input with a 5-D grid, got "
            f"input {tuple(input.shape)} and grid {tuple(grid.shape)}"
        )
    nd = input.ndim - 2
    if grid.shape[-1] != nd or grid.shape[0] != input.shape[0]:
        raise ShapeError(
            f"{op}: expected grid of shape (N={input.shape[0]}, ..., {nd}) for input "
            f"{tuple(input.shape)}, got {tuple(grid.shape)}"
        )
    if mode == "bicubic" and nd != 2:
        raise ValueError(f"{op}: bicubic interpolation only supports 4-D input")
    if not input.dtype.is_floating_point or input.dtype != grid.dtype:
        raise TypeError(
            f"{op}: expected input and grid of one floating dtype, got {input.dtype} and "
            f"{grid.dtype}"
        )
    if any(s == 0 for s in input.shape[2:]):
        raise ShapeError(f"{op}: input spatial sizes must be non-zero, got {tuple(input.shape)}")
    align = bool(align_corners)
    n, c = input.shape[:2]
    spatial = tuple(input.shape[2:])
    out_sp = tuple(grid.shape[1:-1])
    p = math.prod(out_sp)
    # coordinate i runs along spatial axis nd-1-i (x along W, y along H, z along D)
    dims = [spatial[nd - 1 - i] for i in range(nd)]
    # gathers read a copy with one zero cell on every side: any index out of range is
    # clamped onto that border and reads an exact 0 (the zeros padding), no mask needed
    from .sampling import pad as pad_

    padded = [s + 2 for s in spatial]
    strides = [math.prod(padded[nd - i :]) for i in range(nd)]
    g = grid.reshape(n, p, nd)
    # a channels-last row table (N * cells, C): each gather is an embedding lookup, whose
    # backward is a sorted segment sum (take_along_dim's scatter-add is far slower)
    cells = math.prod(padded)
    perm = (0,) + tuple(range(2, nd + 2)) + (1,)
    table = pad_(input, (1, 1) * nd).permute(*perm).reshape(n * cells, c)
    batch_base = C.from_numpy((np.arange(n, dtype=np.int64) * cells)[:, None])

    def offset(v, i: int):
        """The flat-offset part of integer-valued coordinate ``v`` along coordinate ``i``."""
        return (_as_index(v, dims[i]) + 1) * strides[i]

    def gather(parts):
        return embedding(_total(parts) + batch_base, table)  # (N, P, C)

    coords = [_unnormalize(g[:, :, i], dims[i], align) for i in range(nd)]
    if mode == "bicubic":
        base = [ops.floor(cc.detach()) for cc in coords]
        ws = [_cubic_coeffs(cc - b) for cc, b in zip(coords, base)]
        # each tap's index is padded on its own; 4 per axis, shared by the 16 taps
        offs = [
            [offset(_pad_coord(base[i] + (k - 1.0), dims[i], padding_mode, align), i)
             for k in range(4)]
            for i in range(2)
        ]  # fmt: skip
        terms = [
            (ws[0][a] * ws[1][b]).unsqueeze(2) * gather([offs[0][a], offs[1][b]])
            for a, b in itertools.product(range(4), repeat=2)
        ]
        out = _total(terms)
    else:
        coords = [_pad_coord(cc, dims[i], padding_mode, align) for i, cc in enumerate(coords)]
        if mode == "nearest":
            out = gather([offset(ops.round(cc), i) for i, cc in enumerate(coords)])
            # PyTorch returns a zero (not a missing) grid gradient: a where that never picks
            # the grid keeps it in the graph with an exact zero
            never = C.zeros(1, 1, 1, dtype=C.tensor(True).dtype)
            out = ops.where(never, g[:, :, :1], out)
        else:
            base = [ops.floor(cc.detach()) for cc in coords]
            frac = [cc - b for cc, b in zip(coords, base)]
            offs = [[offset(base[i], i), offset(base[i] + 1.0, i)] for i in range(nd)]
            terms = []
            for corner in itertools.product((0, 1), repeat=nd):
                w = frac[0] if corner[0] else 1.0 - frac[0]
                for i in range(1, nd):
                    w = w * (frac[i] if corner[i] else 1.0 - frac[i])
                terms.append(w.unsqueeze(2) * gather([offs[i][k] for i, k in enumerate(corner)]))
            out = _total(terms)
    return out.permute(0, 2, 1).reshape(n, c, *out_sp)
