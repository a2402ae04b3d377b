"""``scatter_reduce`` and ``index_reduce``: write ``src`` into ``input`` at ``index`` along
``dim``, reducing collisions with 'sum', 'prod', 'mean', 'amax' or 'amin' (with or without
the values already in ``input``: ``include_self``), as PyTorch does.

The values come from the scatter primitives (``np.add.at``-style kernels); the gradient is
PyTorch's: sum and mean pass it through the scatter, amax/amin split it evenly among the
entries equal to the result, prod gives each entry the product of the others (exactly, with
zeros). For prod, amax and amin it is attached as ``out + (e - e.detach())`` with ``e`` linear
in the inputs and detached coefficients, so the first derivative is exact and traces like any
composition (second derivatives of those three are not provided).

Example:
    >>> import ember
    >>> src = ember.tensor([1.0, 2.0, 3.0, 4.0])
    >>> idx = ember.tensor([0, 1, 0, 1])
    >>> ember.zeros(2).scatter_reduce(0, idx, src, "amax", include_self=False).tolist()
    [3.0, 4.0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ._core import ShapeError
from ._records import module_ops, op
from ._util import wrap_dim
from .elementwise import where
from .indexing import gather, scatter, scatter_add

if TYPE_CHECKING:
    from .._tensor import Tensor

_REDUCES = ("sum", "prod", "mean", "amax", "amin")


def _reduce_values(x0: np.ndarray, dim: int, index: np.ndarray, src: np.ndarray, reduce: str):
    """The reduced values, in NumPy (``x0`` already holds the identity where
    ``include_self`` is False)."""
    out = x0.copy()
    full: list[np.ndarray] = list(np.indices(index.shape, sparse=True))
    full[dim] = index
    ufunc = {
        "sum": np.add,
        "mean": np.add,
        "prod": np.multiply,
        "amax": np.maximum,
        "amin": np.minimum,
    }[reduce]
    with np.errstate(all="ignore"):
        ufunc.at(out, tuple(full), src)
    return out


@op(method="scatter_reduce")
def scatter_reduce(
    input: Tensor,
    dim: int,
    index: Tensor,
    src: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    """``input`` with each ``src[i][j]`` reduced into ``input[index[i][j]][j]`` (for dim 0)
    by ``reduce`` ('sum', 'prod', 'mean', 'amax', 'amin'); positions no index names keep
    their value; ``include_self=False`` leaves the old value out of the reduction."""
    from .._creation import from_numpy, ones_like

    if reduce not in _REDUCES:
        raise ValueError(f"scatter_reduce: reduce must be one of {_REDUCES}, got {reduce!r}")
    if index.dtype != dt.int64:
        raise TypeError(f"scatter_reduce: index must be an int64 tensor, got {index.dtype}")
    if index.ndim != src.ndim or (input.ndim and index.ndim != input.ndim):
        raise ShapeError(
            "scatter_reduce: index, src and input must have the same number of dimensions, "
            f"got {index.ndim}, {src.ndim} and {input.ndim}"
        )
    d = wrap_dim(dim, max(input.ndim, 1), "scatter_reduce")
    if any(index.shape[k] > src.shape[k] for k in range(index.ndim)):
        raise ShapeError(
            f"scatter_reduce: index {tuple(index.shape)} is larger than src {tuple(src.shape)}"
        )
    s = src[tuple(slice(0, n) for n in index.shape)] if index.ndim else src
    s = s.to(input.dtype)
    floating = input.dtype.is_floating_point
    # the targeted positions start from the reduction's identity when include_self is False
    if include_self:
        x0 = input
    else:
        ident: float | None = {"sum": 0, "mean": 0, "prod": 1}.get(reduce)
        if ident is None and floating:
            ident = -np.inf if reduce == "amax" else np.inf
        elif ident is None:
            info = np.iinfo(input._data.dtype)
            ident = int(info.min) if reduce == "amax" else int(info.max)
        x0 = scatter(input, d, index, value=ident)
    if reduce in ("sum", "mean"):
        total = scatter_add(x0, d, index, s)
        if reduce == "sum":
            return total
        counts = scatter_add(
            ones_like(input) if include_self else scatter(ones_like(input), d, index, value=0),
            d,
            index,
            ones_like(s),
        )
        if not include_self:  # untouched positions keep their value: count 1 there
            counts = where(counts == 0, 1, counts).to(counts.dtype)
        return total / counts if floating else total.div(counts, rounding_mode="floor")
    out_np = _reduce_values(
        x0.detach().numpy(), d, index.numpy().astype(np.intp), s.detach().numpy(), reduce
    )
    out = from_numpy(out_np)
    if not floating or not (input.requires_grad or s.requires_grad):
        return out
    # coefficients of the first derivative (PyTorch's formulas), as detached tensors
    outd = out.detach()
    x0d, sd = x0.detach(), s.detach()
    if reduce in ("amax", "amin"):
        # PyTorch counts input's own ties with the result even with include_self=False
        # (their gradient is then dropped by the scatter that built x0)
        hit_self = (input.detach() == outd).to(input.dtype)
        hit_src = (sd == gather(outd, d, index)).to(input.dtype)
        count = scatter_add(hit_self, d, index, hit_src)
        count = where(count == 0, 1, count).to(input.dtype)
        c_self = hit_self / count
        c_src = hit_src / gather(count, d, index)
    else:  # prod: the product of the other entries, zeros included
        zero_self = (x0d == 0).to(input.dtype)
        zero_src = (sd == 0).to(input.dtype)
        n_zero = scatter_add(zero_self, d, index, zero_src)
        nz = from_numpy(
            _reduce_values(
                where(x0d == 0, 1.0, x0d).numpy(),
                d,
                index.numpy().astype(np.intp),
                where(sd == 0, 1.0, sd).numpy(),
                "prod",
            )
        )
        safe_self = where(x0d == 0, 1.0, x0d)
        c_self = where(x0d != 0, outd / safe_self, where(n_zero == 1, nz, 0.0))
        o_at, nz_at, n_at = (gather(t, d, index) for t in (outd, nz, n_zero))
        c_src = where(sd != 0, o_at / where(sd == 0, 1.0, sd), where(n_at == 1, nz_at, 0.0))
    # without include_self, x0 is a scatter of input: its own VJP gives the targeted positions
    # of input no gradient, and the untouched ones c_self = 1
    if not include_self and reduce in ("amax", "amin"):
        # the +-inf identity would make 0 * inf = nan in e's (unused) value
        x0 = where(x0d.isinf(), 0.0, x0)
    e = scatter_add(c_self.detach() * x0, d, index, c_src.detach() * s)
    return outd + (e - e.detach())


@op(method="index_reduce")
def index_reduce(
    input: Tensor,
    dim: int,
    index: Tensor,
    source: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    """``input`` with the slices of ``source`` along ``dim`` reduced into the positions
    ``index`` ('prod', 'mean', 'amax', 'amin'; ``include_self`` as in
    :func:`scatter_reduce`)."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ValueError(
            f"index_reduce: reduce must be one of 'prod', 'mean', 'amax', 'amin', got {reduce!r}"
        )
    if index.ndim > 1 or index.dtype.is_floating_point:
        raise TypeError("index_reduce: index must be a 0-d or 1-D integer tensor")
    d = wrap_dim(dim, max(input.ndim, 1), "index_reduce")
    idx = index.reshape(-1).to(dt.int64)
    if source.ndim != input.ndim or source.shape[d] != idx.shape[0]:
        raise ShapeError(
            f"index_reduce: source must have input's dims with {idx.shape[0]} entries along "
            f"dim {d}, got {tuple(source.shape)}"
        )
    shape = [1] * source.ndim
    shape[d] = -1
    full = idx.reshape(*shape).expand(*source.shape)
    return scatter_reduce(input, d, full, source, reduce, include_self=include_self)


__all__ = module_ops(__name__)
