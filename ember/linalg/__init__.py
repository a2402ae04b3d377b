"""``ember.linalg``: PyTorch's ``torch.linalg`` on NumPy's LAPACK, batched over leading dims,
with gradients (second order included) where PyTorch has them.

Results with several tensors are named tuples (``Q, R = qr(A)`` or ``qr(A).Q``). Errors on
singular or indefinite inputs raise :class:`LinAlgError` (a ``RuntimeError``). The functions
take float32/float64 matrices; :func:`eig` and :func:`eigvals` return complex tensors (and
also take complex ones).

Example:
    >>> import ember
    >>> A = ember.tensor([[4.0, 2.0], [2.0, 3.0]], requires_grad=True)
    >>> L = ember.linalg.cholesky(A)
    >>> ember.linalg.slogdet(A).logabsdet.backward()
    >>> [round(v, 3) for v in A.grad.flatten().tolist()]
    [0.375, -0.25, -0.25, 0.5]
"""

from ..ops._linalg_util import LinAlgError
from ..ops.linalg import matmul
from ..ops.linalg_decomp import (
    cholesky,
    cholesky_ex,
    eig,
    eigh,
    eigvals,
    eigvalsh,
    householder_product,
    qr,
    svd,
    svdvals,
)
from ..ops.linalg_ldl import ldl_factor, ldl_factor_ex, ldl_solve
from ..ops.linalg_lstsq import lstsq, pinv
from ..ops.linalg_lu import lu, lu_factor, lu_factor_ex, lu_solve
from ..ops.linalg_norms import cond, matrix_norm, matrix_rank, norm, vector_norm
from ..ops.linalg_products import (
    cross,
    diagonal,
    matrix_exp,
    matrix_power,
    multi_dot,
    tensorinv,
    tensorsolve,
    vander,
    vecdot,
)
from ..ops.linalg_solve import (
    det,
    inv,
    inv_ex,
    slogdet,
    solve,
    solve_ex,
    solve_triangular,
)

__all__ = [
    "LinAlgError",
    "cholesky",
    "cholesky_ex",
    "cond",
    "cross",
    "det",
    "diagonal",
    "eig",
    "eigh",
    "eigvals",
    "eigvalsh",
    "householder_product",
    "inv",
    "inv_ex",
    "ldl_factor",
    "ldl_factor_ex",
    "ldl_solve",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_factor_ex",
    "lu_solve",
    "matmul",
    "matrix_exp",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_ex",
    "solve_triangular",
    "svd",
    "svdvals",
    "tensorinv",
    "tensorsolve",
    "vander",
    "vecdot",
    "vector_norm",
]
