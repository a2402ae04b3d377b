"""``ember.norm`` / ``Tensor.norm``: PyTorch's ``torch.norm`` dispatch onto
:func:`ember.linalg.vector_norm` and :func:`ember.linalg.matrix_norm`.

A numeric ``p`` (or None, meaning 2) is a vector norm over ``dim`` (every element by default);
``'fro'`` is the 2-norm over up to two dims; ``'nuc'`` and any other string are matrix norms
over ``dim`` (all dims by default, which must then be two). Values, errors and gradients are
those of the two linalg functions (PyTorch's subgradients: 0 at a zero norm).

Example:
    >>> import ember
    >>> x = ember.tensor([[3.0, -4.0], [0.0, 0.0]])
    >>> ember.norm(x).item(), x.norm(1, dim=1).tolist(), ember.norm(x, "nuc").item()
    (5.0, [7.0, 0.0], 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._records import module_ops, op
from .linalg_norms import matrix_norm, vector_norm

if TYPE_CHECKING:
    from .._dtype import DType
    from .._tensor import Tensor


@op(
    method="norm",
    ref="norm",
    shapes=(((2, 3),), ((2, 3, 2),)),
    cases=(
        {},
        {"dim": 1},
        {"p": 1, "dim": (0, 1), "keepdim": True},
        {"p": math.inf, "dim": -1},
        {"p": 3},
        {"p": "nuc", "dim": (0, 1)},
    ),
    rtol=1e-4,
)
def norm(
    input: Tensor,
    p: float | str | None = "fro",
    dim: int | Sequence[int] | None = None,
    keepdim: bool = False,
    dtype: DType | None = None,
) -> Tensor:
    """The ``p``-norm of ``input`` over ``dim``: a number (``inf``, ``-inf``, 0, 1, 2, any
    real) for a vector norm, ``'fro'`` (default) or ``'nuc'`` for a matrix norm. ``dtype``
    casts the input first.

    Example:
        >>> import ember
        >>> ember.norm(ember.tensor([3.0, -4.0]), float("inf")).item()
        4.0
    """
    dims: list[int] | None
    if dim is None:
        dims = None
    elif isinstance(dim, int):
        dims = [dim]
    else:
        dims = list(dim)
    if isinstance(p, str):
        if p == "fro" and (dims is None or len(dims) <= 2):
            return vector_norm(input, 2, dims, keepdim, dtype=dtype)
        # 'nuc', or an invalid combination that matrix_norm reports
        if dims is None:
            dims = list(range(input.ndim))
        return matrix_norm(input, p, tuple(dims), keepdim, dtype=dtype)
    return vector_norm(input, 2.0 if p is None else p, dims, keepdim, dtype=dtype)


__all__ = module_ops(__name__)
