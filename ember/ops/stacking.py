"""Stacking, splitting and sequence helpers with NumPy/PyTorch names: ``atleast_1d/2d/3d``,
``hstack``/``vstack``/``dstack``/``column_stack``, ``tensor_split`` and ``hsplit``/``vsplit``/
``dsplit``, ``split_with_sizes``, ``select``, ``rot90``, ``ravel``, ``diff``, ``trapezoid``,
``cumulative_trapezoid``, ``cartesian_prod``, ``combinations`` and ``tril_indices``/
``triu_indices``. All are compositions of existing primitives (gradients included).

Example:
    >>> import ember
    >>> ember.hstack([ember.tensor([1, 2]), ember.tensor([3])]).tolist()
    [1, 2, 3]
    >>> [t.tolist() for t in ember.tensor_split(ember.arange(5), 2)]
    [[0, 1, 2], [3, 4]]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .. import _dtype as dt
from ._core import ShapeError
from ._records import module_ops, op
from ._util import wrap_dim
from .elementwise import ne
from .shape import cat, narrow, stack

if TYPE_CHECKING:
    from .._tensor import Tensor


def _seq(tensors, name: str) -> list:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(
            f"{name}: expected a list or tuple of Tensors, got {type(tensors).__name__}"
        )
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty list of Tensors")
    return list(tensors)


def _atleast(tensors: tuple, rank: int):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(_atleast(tuple(tensors[0]), rank))
    out = []
    for t in tensors:
        s = tuple(t.shape)
        if t.ndim >= rank:
            out.append(t)
        elif rank == 1:
            out.append(t.reshape(1))
        elif rank == 2:
            out.append(t.reshape(1, *s) if t.ndim == 1 else t.reshape(1, 1))
        else:  # rank 3: (n,) -> (1, n, 1); (m, n) -> (m, n, 1)
            shape = {0: (1, 1, 1), 1: (1, *s, 1), 2: (*s, 1)}[t.ndim]
            out.append(t.reshape(*shape))
    return out[0] if len(out) == 1 else tuple(out)


@op(ref="atleast_1d", shapes=(((),), ((3,),), ((2, 3),)))
def atleast_1d(*tensors: Tensor) -> Tensor | tuple[Tensor, ...]:
    """Each tensor viewed with at least 1 dimension (one tensor in, one out)."""
    return _atleast(tensors, 1)


@op(ref="atleast_2d", shapes=(((),), ((3,),), ((2, 3),)))
def atleast_2d(*tensors: Tensor) -> Tensor | tuple[Tensor, ...]:
    """Each tensor viewed with at least 2 dimensions (a 1-D tensor becomes one row)."""
    return _atleast(tensors, 2)


@op(ref="atleast_3d", shapes=(((),), ((3,),), ((2, 3),), ((2, 1, 2, 2),)))
def atleast_3d(*tensors: Tensor) -> Tensor | tuple[Tensor, ...]:
    """Each tensor viewed with at least 3 dimensions (``(n,) -> (1, n, 1)``,
    ``(m, n) -> (m, n, 1)``, as NumPy)."""
    return _atleast(tensors, 3)


@op()
def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along dim 1 (dim 0 for 1-D tensors)."""
    ts = atleast_1d(*_seq(tensors, "hstack"))
    ts = ts if isinstance(ts, tuple) else (ts,)
    return cat(list(ts), dim=0 if ts[0].ndim == 1 else 1)


@op()
def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along dim 0 after :func:`atleast_2d` (1-D tensors become rows)."""
    ts = atleast_2d(*_seq(tensors, "vstack"))
    return cat(list(ts) if isinstance(ts, tuple) else [ts], dim=0)


row_stack = vstack


@op()
def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along dim 2 after :func:`atleast_3d`."""
    ts = atleast_3d(*_seq(tensors, "dstack"))
    return cat(list(ts) if isinstance(ts, tuple) else [ts], dim=2)


@op()
def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """Stack as columns: 0-d and 1-D tensors become ``(n, 1)`` columns, then dim 1."""
    ts = [t.reshape(-1, 1) if t.ndim < 2 else t for t in _seq(tensors, "column_stack")]
    return cat(ts, dim=1)


def _int_list(v: Any, name: str) -> list[int] | int:
    from .._tensor import Tensor

    if isinstance(v, Tensor):
        if v.dtype.is_floating_point or v.ndim > 1:
            raise TypeError(f"{name}: a tensor of indices must be a 0-d or 1-D integer tensor")
        return int(v.item()) if v.ndim == 0 else [int(i) for i in v.numpy().reshape(-1)]
    if isinstance(v, (int, np.integer)):
        return int(v)
    return [int(i) for i in v]


@op(method="tensor_split")
def tensor_split(
    input: Tensor, indices_or_sections: int | Sequence[int] | Tensor, dim: int = 0
) -> tuple[Tensor, ...]:
    """Split into ``n`` nearly equal parts (the first ``size % n`` one larger), or at the
    given indices (``[2, 3]`` gives ``[:2], [2:3], [3:]``). Parts may be empty."""
    if input.ndim == 0:
        raise ShapeError("tensor_split: expected at least a 1-dimensional tensor")
    d = wrap_dim(dim, input.ndim, "tensor_split")
    n = input.shape[d]
    spec = _int_list(indices_or_sections, "tensor_split")
    if isinstance(spec, int):
        if spec <= 0:
            raise ValueError(f"tensor_split: number of sections must be positive, got {spec}")
        q, r = divmod(n, spec)
        sizes = [q + 1] * r + [q] * (spec - r)
        bounds = list(itertools.accumulate(sizes))[:-1]
    else:
        bounds = spec
    out, start = [], 0
    for b in [*bounds, n]:
        b = min(max(b if b >= 0 else b + n, 0), n)
        s = min(max(start, 0), n)
        out.append(narrow(input, d, s, max(b - s, 0)))
        start = b
    return tuple(out)


def _even_split(input: Tensor, sections, dim: int, name: str) -> tuple[Tensor, ...]:
    spec = _int_list(sections, name)
    if isinstance(spec, int) and (spec == 0 or input.shape[dim] % spec):
        raise ValueError(
            f"{name}: the size {input.shape[dim]} of dim {dim} is not divisible by {spec} sections"
        )
    return tensor_split(input, spec, dim)


@op(method="hsplit")
def hsplit(input: Tensor, sections: int | Sequence[int]) -> tuple[Tensor, ...]:
    """Split along dim 1 (dim 0 for 1-D tensors) into equal parts or at indices."""
    if input.ndim == 0:
        raise ShapeError("hsplit: expected at least a 1-dimensional tensor")
    return _even_split(input, sections, 1 if input.ndim > 1 else 0, "hsplit")


@op(method="vsplit")
def vsplit(input: Tensor, sections: int | Sequence[int]) -> tuple[Tensor, ...]:
    """Split along dim 0 of a tensor with at least 2 dims."""
    if input.ndim < 2:
        raise ShapeError(f"vsplit: expected at least a 2-dimensional tensor, got {input.ndim}-D")
    return _even_split(input, sections, 0, "vsplit")


@op(method="dsplit")
def dsplit(input: Tensor, sections: int | Sequence[int]) -> tuple[Tensor, ...]:
    """Split along dim 2 of a tensor with at least 3 dims."""
    if input.ndim < 3:
        raise ShapeError(f"dsplit: expected at least a 3-dimensional tensor, got {input.ndim}-D")
    return _even_split(input, sections, 2, "dsplit")


@op(method="split_with_sizes")
def split_with_sizes(input: Tensor, split_sizes: Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """Split into parts of the given sizes (which must add up to the size of ``dim``)."""
    from .shape import split

    return split(input, list(split_sizes), dim)


@op(
    method="select",
    ref="select",
    shapes=(((2, 3),), ((3, 2, 2),)),
    cases=({"dim": 0, "index": 1}, {"dim": -1, "index": -1}),
)
def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` of dimension ``dim`` (that dimension removed)."""
    if input.ndim == 0:
        raise IndexError("select: cannot be applied to a 0-dim tensor")
    d = wrap_dim(dim, input.ndim, "select")
    n = input.shape[d]
    i = int(index)
    if not -n <= i < n:
        raise IndexError(f"select: index {index} out of range for dim {dim} of size {n}")
    return narrow(input, d, i % n, 1).squeeze(d)


@op(
    method="rot90",
    ref="rot90",
    shapes=(((2, 3),), ((2, 3, 4),)),
    cases=({}, {"k": 2}, {"k": -1, "dims": (1, 0)}, {"k": 3, "dims": (0, -1)}),
)
def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first axis
    toward the second)."""
    if len(dims) != 2:
        raise ValueError(f"rot90: expected 2 dims, got {len(dims)}")
    if input.ndim < 2:
        raise ShapeError(f"rot90: expected at least 2 dimensions, got {input.ndim}")
    d0, d1 = (wrap_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: the two dims must differ, got {tuple(dims)}")
    k %= 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip(d0, d1)
    if k == 3:
        return input.flip(d0).transpose(d0, d1)
    return input * 1 if input.dtype.is_floating_point else input.clone()


@op(method="ravel", ref="ravel", shapes=(((),), ((2, 3),), ((0, 2),)))
def ravel(input: Tensor) -> Tensor:
    """The tensor flattened to 1-D."""
    return input.reshape(-1)


@op(
    method="diff",
    ref="diff",
    shapes=(((5,),), ((3, 4),)),
    cases=({}, {"n": 2}, {"dim": 0}, {"n": 3, "dim": -1}),
)
def diff(
    input: Tensor,
    n: int = 1,
    dim: int = -1,
    prepend: Tensor | None = None,
    append: Tensor | None = None,
) -> Tensor:
    """The ``n``-th forward difference along ``dim`` (``!=`` for bool tensors), after
    concatenating ``prepend``/``append``."""
    if input.ndim == 0:
        raise ShapeError("diff: expected at least a 1-dimensional tensor")
    if n < 0:
        raise ValueError(f"diff: order must be non-negative, got {n}")
    d = wrap_dim(dim, input.ndim, "diff")
    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, dim=d) if len(parts) > 1 else input
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = ne(hi, lo) if x.dtype == dt.bool_ else hi - lo
    return x


def _trapz_parts(y: Tensor, x: Tensor | None, dx: float | None, d: int):
    m = y.shape[d]
    mids = (narrow(y, d, 1, m - 1) + narrow(y, d, 0, m - 1)) * 0.5
    if x is None:
        return mids * (1.0 if dx is None else dx)
    if x.ndim == 1:
        if x.shape[0] != m:
            raise ShapeError(f"trapezoid: x has {x.shape[0]} points, y has {m} along dim {d}")
        dxs = x[1:] - x[:-1]
        return mids * dxs.reshape([-1 if i == d else 1 for i in range(y.ndim)])
    xd = wrap_dim(d - y.ndim, x.ndim, "trapezoid")
    k = x.shape[xd]
    return mids * (narrow(x, xd, 1, k - 1) - narrow(x, xd, 0, k - 1))


@op(ref="trapezoid", shapes=(((5,),), ((3, 4),)), cases=({}, {"dx": 0.5}, {"dim": 0}))
def trapezoid(
    y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1
) -> Tensor:
    """The trapezoid rule along ``dim``: spacing ``dx`` (default 1) or sample points ``x``."""
    if x is not None and dx is not None:
        raise TypeError("trapezoid: give x or dx, not both")
    d = wrap_dim(dim, y.ndim, "trapezoid")
    if y.shape[d] == 0:
        return y.sum(d) * 0.0
    return _trapz_parts(y, x, dx, d).sum(d)


def trapz(y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """Alias of :func:`trapezoid` (the older PyTorch name).

    Example:
        >>> import ember
        >>> float(ember.trapz(ember.tensor([1.0, 2.0, 3.0])))
        4.0
    """
    return trapezoid(y, x, dx=dx, dim=dim)


@op(ref="cumulative_trapezoid", shapes=(((5,),), ((3, 4),)), cases=({}, {"dx": 0.5}, {"dim": 0}))
def cumulative_trapezoid(
    y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1
) -> Tensor:
    """The running trapezoid-rule integral along ``dim`` (one element shorter than ``y``)."""
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid: give x or dx, not both")
    d = wrap_dim(dim, y.ndim, "cumulative_trapezoid")
    if y.shape[d] == 0:
        return y * 1.0
    return _trapz_parts(y, x, dx, d).cumsum(d)


@op(ref="cartesian_prod", arity=2, shapes=(((2,), (3,)), ((3,), (0,))))
def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one element from each 1-D tensor, as rows (a 1-D tensor for a
    single input)."""
    from .shape import meshgrid

    for i, t in enumerate(tensors):
        if t.ndim != 1:
            raise ShapeError(f"cartesian_prod: input {i} must be 1-D, got {t.ndim}-D")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([g.reshape(-1) for g in grids], dim=1)


@op(method="combinations")
def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """All length-``r`` combinations of the elements of a 1-D tensor, as rows (``r = 0``
    gives an empty 1-D tensor, as PyTorch)."""
    from .._creation import tensor

    if input.ndim != 1:
        raise ShapeError(f"combinations: expected a 1-D tensor, got {input.ndim}-D")
    if r < 0:
        raise ValueError(f"combinations: r must be non-negative, got {r}")
    if r == 0:
        return input[:0]
    gen = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(gen(range(input.shape[0]), r)), np.int64).reshape(-1, r)
    if idx.shape[0] == 0:
        return input[:0].reshape(0, r)
    return input[tensor(idx.reshape(-1))].reshape(-1, r)


def _tri_indices(fn, row: int, col: int, offset: int, dtype):
    from .._creation import tensor

    if row < 0 or col < 0:
        raise ValueError(f"row and col must be non-negative, got {row} and {col}")
    i, j = fn(row, offset, col)
    return tensor(np.stack([i, j]).astype(np.int64), dtype=dtype or dt.int64)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row/column indices of the lower triangle of a ``row x col`` matrix.

    Example:
        >>> import ember
        >>> ember.tril_indices(2, 2).tolist()
        [[0, 1, 1], [0, 0, 1]]
    """
    return _tri_indices(np.tril_indices, row, col, offset, dtype)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row/column indices of the upper triangle of a ``row x col`` matrix.

    Example:
        >>> import ember
        >>> ember.triu_indices(2, 2).tolist()
        [[0, 0, 1], [0, 1, 1]]
    """
    return _tri_indices(np.triu_indices, row, col, offset, dtype)


def _gradient_along(f: Tensor, d: int, coords: np.ndarray | float, edge_order: int) -> Tensor:
    n = f.shape[d]
    if n < edge_order + 1:
        raise ValueError(
            f"gradient: each dimension needs at least edge_order + 1 = {edge_order + 1} "
            f"samples, dim {d} has {n}"
        )

    def sl(a: int, b: int | None) -> Tensor:
        return narrow(f, d, a, (n if b is None else b) - a)

    def coef(v: np.ndarray) -> Tensor:
        from .._creation import tensor

        shape = [1] * f.ndim
        shape[d] = -1
        return tensor(np.asarray(v, np.float64).reshape(shape), dtype=f.dtype)

    if np.ndim(coords) == 0:
        dx = np.full(n - 1, float(coords))
    else:
        dx = np.diff(np.asarray(coords, np.float64))
    d1, d2 = dx[:-1], dx[1:]
    parts = []
    if edge_order == 1:
        parts.append((sl(1, 2) - sl(0, 1)) / float(dx[0]))
    else:
        a = -(2 * dx[0] + dx[1]) / (dx[0] * (dx[0] + dx[1]))
        b = (dx[0] + dx[1]) / (dx[0] * dx[1])
        c = -dx[0] / (dx[1] * (dx[0] + dx[1]))
        parts.append(sl(0, 1) * float(a) + sl(1, 2) * float(b) + sl(2, 3) * float(c))
    if n > 2:
        a = -d2 / (d1 * (d1 + d2))
        b = (d2 - d1) / (d1 * d2)
        c = d1 / (d2 * (d1 + d2))
        parts.append(sl(0, n - 2) * coef(a) + sl(1, n - 1) * coef(b) + sl(2, None) * coef(c))
    if edge_order == 1:
        parts.append((sl(n - 1, None) - sl(n - 2, n - 1)) / float(dx[-1]))
    else:
        a = dx[-1] / (dx[-2] * (dx[-2] + dx[-1]))
        b = -(dx[-1] + dx[-2]) / (dx[-2] * dx[-1])
        c = (2 * dx[-1] + dx[-2]) / (dx[-1] * (dx[-2] + dx[-1]))
        parts.append(
            sl(n - 3, n - 2) * float(a) + sl(n - 2, n - 1) * float(b) + sl(n - 1, None) * float(c)
        )
    return cat(parts, dim=d)


def gradient(
    input: Tensor,
    *,
    spacing: float | Sequence[float] | Sequence[Tensor] | None = None,
    dim: int | Sequence[int] | None = None,
    edge_order: int = 1,
) -> tuple[Tensor, ...]:
    """Estimate the derivative of ``input`` along each of ``dim`` (all dims by default) by
    second-order central differences inside and first- or second-order one-sided differences
    at the edges; ``spacing`` is one step, a step per dim, or the sample coordinates per dim.

    Example:
        >>> import ember
        >>> ember.gradient(ember.tensor([1.0, 4.0, 9.0, 16.0]))[0].tolist()
        [3.0, 4.0, 6.0, 7.0]
    """
    from .._tensor import Tensor as _T

    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    if input.ndim == 0:
        raise ShapeError("gradient: expected a tensor with at least 1 dimension")
    dims = (
        list(range(input.ndim)) if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    )
    dims = [wrap_dim(d, input.ndim, "gradient") for d in dims]
    keep = input.dtype.is_floating_point or input.dtype.is_complex
    x = input if keep else input.to(dt.get_default_dtype())
    if spacing is None or isinstance(spacing, (int, float)):
        per = [1.0 if spacing is None else float(spacing)] * len(dims)
    else:
        per = list(cast("Sequence[Any]", spacing))
        if len(per) == 1 and len(dims) > 1:
            per = per * len(dims)
        if len(per) != len(dims):
            raise ValueError(f"gradient: spacing has {len(per)} entries for {len(dims)} dimensions")
    out = []
    for d, s in zip(dims, per):
        if isinstance(s, _T):
            if s.ndim == 0:
                s = float(s.item())
            else:
                if s.ndim != 1 or s.shape[0] != x.shape[d]:
                    raise ShapeError(
                        f"gradient: coordinates for dim {d} must be 1-D with {x.shape[d]} entries"
                    )
                s = s.detach().numpy()
        out.append(_gradient_along(x, d, s, edge_order))
    return tuple(out)


__all__ = ["gradient", "row_stack", "tril_indices", "trapz", "triu_indices", *module_ops(__name__)]
