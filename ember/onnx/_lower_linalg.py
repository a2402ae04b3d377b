"""Triangular solves and the Cholesky factorization, unrolled for a static matrix size.

ONNX has no solver operators, so each lowering unrolls its textbook recurrence over the
rows or columns (``O(n^2)`` nodes for an ``n x n`` matrix, which must be static; batch axes
may be symbolic). Importing :mod:`ember.onnx.lowering` registers them.
"""

from __future__ import annotations

import numpy as np

from ..compiler.ir import Dim, Eqn, Literal, Var
from ._context import Context, Unsupported
from .lowering import lowers, out_dtype


def _size(e: Eqn, v: Var | Literal, axis: int) -> int:
    if isinstance(v, Literal):
        raise Unsupported(f"{e.prim.name} of a constant operand")
    n = v.shape[axis]
    if isinstance(n, Dim):
        raise Unsupported(f"{e.prim.name} over a symbolic matrix size (the unrolling needs it)")
    return int(n)


def _pick(ctx: Context, x: str, i: int, axis: int) -> str:
    """``x`` at index ``i`` of ``axis``, the axis removed."""
    return ctx.node("Gather", [x, ctx.const(np.int64(i))], axis=axis)


def _onehot(ctx: Context, p: str, n: int, dt: np.dtype) -> str:
    """OneHot of the int64 indices ``p`` (depth ``n``) in ``dt`` (onnxruntime's OneHot has
    no float64 kernel: float32, then a Cast)."""
    vals = ctx.const(np.array([0, 1], np.float32))
    oh = ctx.node("OneHot", [p, ctx.const(np.int64(n)), vals], axis=-1)
    return oh if np.dtype(dt) == np.float32 else ctx.cast(oh, dt)


def _swap_to(ctx: Context, m: str, j: int, n: int, oh_p: str, row_p: str) -> str:
    """``m`` with rows ``j`` and ``p`` (one-hot ``oh_p``) exchanged, by selection (an
    additive update would lose the smaller row next to a much larger one)."""
    is_j = ctx.const((np.arange(n) == j).reshape(n, 1))
    is_p = ctx.node("Unsqueeze", [ctx.cast(oh_p, np.bool_), ctx.ints([-1])])
    row_j = ctx.node("Unsqueeze", [_pick(ctx, m, j, -2), ctx.ints([-2])])
    m = ctx.node("Where", [is_p, row_j, m])
    return ctx.node("Where", [is_j, ctx.node("Unsqueeze", [row_p, ctx.ints([-2])]), m])


def _transpose_last(ctx: Context, x: str, nd: int) -> str:
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    return ctx.node("Transpose", [x], perm=perm)


def _solve_lower(ctx: Context, a: str, b: str, n: int, lower: bool, unit: bool) -> str:
    """``A X = B`` for triangular ``A`` (..., n, n) and ``B`` (..., n, m) by substitution:
    forward for lower, backward for upper."""
    rows: dict[int, str] = {}
    order = range(n) if lower else range(n - 1, -1, -1)
    for i in order:
        a_i = _pick(ctx, a, i, -2)  # row i of A: (..., n)
        r = _pick(ctx, b, i, -2)  # (..., m)
        for k in rows:
            coef = ctx.node("Unsqueeze", [_pick(ctx, a_i, k, -1), ctx.ints([-1])])
            r = ctx.node("Sub", [r, ctx.node("Mul", [coef, rows[k]])])
        if not unit:
            diag = ctx.node("Unsqueeze", [_pick(ctx, a_i, i, -1), ctx.ints([-1])])
            r = ctx.node("Div", [r, diag])
        rows[i] = r
    parts = [ctx.node("Unsqueeze", [rows[i], ctx.ints([-2])]) for i in range(n)]
    return ctx.node("Concat", parts, axis=-2)


@lowers("linalg_solve_triangular")
def _solve_triangular(ctx: Context, e: Eqn) -> str:
    """Forward (lower) or backward (upper) substitution, unrolled over the ``n`` rows;
    ``left=False`` solves the transposed system."""
    dt = out_dtype(e)
    av, bv = e.inputs[:2]
    n = _size(e, av, -1)
    a, b = ctx.inp(av, dt), ctx.inp(bv, dt)
    upper, unit = bool(e.params["upper"]), bool(e.params["unit"])
    if e.params.get("left", True):
        return _solve_lower(ctx, a, b, n, not upper, unit)
    # X A = B  <=>  A^T X^T = B^T (A^T is triangular the other way)
    nd_a, nd_b = av.ndim, bv.ndim
    xt = _solve_lower(
        ctx, _transpose_last(ctx, a, nd_a), _transpose_last(ctx, b, nd_b), n, upper, unit
    )
    return _transpose_last(ctx, xt, max(nd_a, nd_b))


@lowers("linalg_cholesky_ex")
def _cholesky(ctx: Context, e: Eqn) -> list[str]:
    """Column by column: ``v = A[:, j] - sum_{k<j} L[:, k] L[j, k]``, ``L[:, j] = v /
    sqrt(v[j])`` below the diagonal (``upper``: the transpose); ``info`` is the first
    column whose pivot is not positive (1-based), else 0, and the columns from there on
    are zero."""
    dt = out_dtype(e)
    av = e.inputs[0]
    n, nd = _size(e, av, -1), av.ndim
    a = ctx.inp(av, dt)
    cols: list[str] = []
    bad: list[str] = []
    failed = ""  # any bad pivot so far
    for j in range(n):
        v = _pick(ctx, a, j, -1)  # column j: (..., n)
        for col in cols:
            ljk = ctx.node("Unsqueeze", [_pick(ctx, col, j, -1), ctx.ints([-1])])
            v = ctx.node("Sub", [v, ctx.node("Mul", [col, ljk])])
        pivot = _pick(ctx, v, j, -1)
        bad.append(ctx.node("Not", [ctx.node("Greater", [pivot, ctx.const(0, dt)])]))
        failed = ctx.node("Or", [failed, bad[-1]]) if failed else bad[-1]
        d = ctx.node("Unsqueeze", [ctx.node("Sqrt", [pivot]), ctx.ints([-1])])
        below = ctx.const((np.arange(n) >= j).astype(dt))
        col = ctx.node("Mul", [ctx.node("Div", [v, d]), below])
        # from the first bad pivot on, columns are zero (as eager mode leaves them)
        gone = ctx.node("Unsqueeze", [failed, ctx.ints([-1])])
        cols.append(ctx.node("Where", [gone, ctx.const(0, dt), col]))
    parts = [ctx.node("Unsqueeze", [c, ctx.ints([-1])]) for c in cols]
    low = ctx.node("Concat", parts, axis=-1)
    out = _transpose_last(ctx, low, nd) if e.params.get("upper", False) else low
    # info: the smallest 1-based j with a bad pivot (n + 1 stands for none, then 0)
    stacked = ctx.node("Concat", [ctx.node("Unsqueeze", [b, ctx.ints([-1])]) for b in bad],
                       axis=-1)  # fmt: skip
    ranks = ctx.const(np.arange(1, n + 1, dtype=np.int64))
    first = ctx.node("Where", [stacked, ranks, ctx.const(np.int64(n + 1))])
    first = ctx.reduce("ReduceMin", first, [-1], False)
    none = ctx.node("Equal", [first, ctx.const(np.int64(n + 1))])
    info = ctx.node("Where", [none, ctx.const(np.int64(0)), first])
    return [out, ctx.cast(info, out_dtype(e, 1))]


@lowers("cholesky_solve")
def _cholesky_solve(ctx: Context, e: Eqn) -> str:
    """Two substitutions with the factor: ``L y = b`` then ``L^T x = y`` (``upper``:
    ``U^T y = b`` then ``U x = y``)."""
    dt = out_dtype(e)
    bv, lv = e.inputs[:2]
    n = _size(e, lv, -1)
    b, f = ctx.inp(bv, dt), ctx.inp(lv, dt)
    ft = _transpose_last(ctx, f, lv.ndim)
    if e.params.get("upper", False):
        y = _solve_lower(ctx, ft, b, n, True, False)
        return _solve_lower(ctx, f, y, n, False, False)
    y = _solve_lower(ctx, f, b, n, True, False)
    return _solve_lower(ctx, ft, y, n, False, False)


def _gauss_jordan(ctx: Context, m: str, n: int, dt: np.dtype) -> tuple[str, str]:
    """Gauss-Jordan elimination with partial pivoting on the augmented ``[A | B]``
    (..., n, n + k): returns the reduced matrix and LAPACK's ``info`` (the 1-based column
    of the first zero pivot, 0 if none)."""
    zero, one = ctx.const(0, dt), ctx.const(1, dt)
    zero_piv: list[str] = []
    for j in range(n):
        col = _pick(ctx, m, j, -1)  # (..., n)
        below = ctx.const(np.arange(n) >= j)
        cand = ctx.node("Where", [below, ctx.node("Abs", [col]), ctx.const(-1, dt)])
        p = ctx.node("ArgMax", [cand], axis=-1, keepdims=0)
        oh_p = _onehot(ctx, p, n, dt)
        row_p = ctx.reduce(
            "ReduceSum", ctx.node("Mul", [m, ctx.node("Unsqueeze", [oh_p, ctx.ints([-1])])]),
            [-2], False,
        )  # fmt: skip

        def outer(v: str, r: str) -> str:
            col, row = (
                ctx.node("Unsqueeze", [v, ctx.ints([-1])]),
                ctx.node("Unsqueeze", [r, ctx.ints([-2])]),
            )
            return ctx.node("Mul", [col, row])

        m = _swap_to(ctx, m, j, n, oh_p, row_p)
        piv = _pick(ctx, row_p, j, -1)
        is_zero = ctx.node("Equal", [piv, zero])
        zero_piv.append(is_zero)
        safe = ctx.node("Where", [is_zero, one, piv])
        r_norm = ctx.node("Div", [row_p, ctx.node("Unsqueeze", [safe, ctx.ints([-1])])])
        f = ctx.node("Mul", [_pick(ctx, m, j, -1), ctx.const(1 - np.eye(n, dtype=dt)[j])])
        m = ctx.node("Sub", [m, outer(f, r_norm)])
        is_j = ctx.const((np.arange(n) == j).reshape(n, 1))
        m = ctx.node("Where", [is_j, ctx.node("Unsqueeze", [r_norm, ctx.ints([-2])]), m])
    flags = ctx.node("Concat", [ctx.node("Unsqueeze", [z, ctx.ints([-1])]) for z in zero_piv],
                     axis=-1)  # fmt: skip
    ranks = ctx.const(np.arange(1, n + 1, dtype=np.int64))
    first = ctx.reduce(
        "ReduceMin", ctx.node("Where", [flags, ranks, ctx.const(np.int64(n + 1))]), [-1], False
    )
    none = ctx.node("Equal", [first, ctx.const(np.int64(n + 1))])
    return m, ctx.node("Where", [none, ctx.const(np.int64(0)), first])


def _solve_with_info(ctx: Context, e: Eqn, a: str, b: str, n: int, k: int) -> list[str]:
    dt = out_dtype(e)
    batch = list(e.outputs[0].shape[:-2])
    a = ctx.node("Expand", [a, ctx.shape(batch + [n, n])])
    b = ctx.node("Expand", [b, ctx.shape(batch + [n, k])])
    m, info = _gauss_jordan(ctx, ctx.node("Concat", [a, b], axis=-1), n, dt)
    x = ctx.slice(m, [n], [n + k], [-1])
    ok = ctx.node("Equal", [info, ctx.const(np.int64(0))])
    bad = ctx.node("Unsqueeze", [ctx.node("Not", [ok]), ctx.ints([-1, -2])])
    x = ctx.node("Where", [bad, ctx.const(np.nan, dt), x])
    return [x, ctx.cast(info, out_dtype(e, 1))]


@lowers("linalg_solve_ex")
def _solve_ex(ctx: Context, e: Eqn) -> list[str]:
    """Gauss-Jordan with partial pivoting on ``[A | B]``, unrolled over the ``n`` columns;
    NaN results and LAPACK's ``info`` where a pivot is zero (singular ``A``)."""
    dt = out_dtype(e)
    av, bv = e.inputs[:2]
    n, k = _size(e, av, -1), _size(e, bv, -1)
    return _solve_with_info(ctx, e, ctx.inp(av, dt), ctx.inp(bv, dt), n, k)


@lowers("linalg_inv_ex")
def _inv_ex(ctx: Context, e: Eqn) -> list[str]:
    """``solve(A, I)`` by the Gauss-Jordan elimination of ``linalg_solve_ex``."""
    dt = out_dtype(e)
    av = e.inputs[0]
    n = _size(e, av, -1)
    return _solve_with_info(ctx, e, ctx.inp(av, dt), ctx.const(np.eye(n, dtype=dt)), n, n)


def _outer(ctx: Context, v: str, r: str) -> str:
    col = ctx.node("Unsqueeze", [v, ctx.ints([-1])])
    return ctx.node("Mul", [col, ctx.node("Unsqueeze", [r, ctx.ints([-2])])])


@lowers("linalg_lu_factor")
def _lu_factor(ctx: Context, e: Eqn) -> list[str]:
    """Gaussian elimination with partial pivoting (LAPACK's getrf order, square matrices),
    unrolled over the columns: the packed ``L\\U``, 1-based pivots and ``info``."""
    dt = out_dtype(e)
    av = e.inputs[0]
    n = _size(e, av, -1)
    if _size(e, av, -2) != n:
        raise Unsupported("lu_factor of a non-square matrix")
    m = ctx.inp(av, dt)
    zero, one = ctx.const(0, dt), ctx.const(1, dt)
    pivots, zero_piv = [], []
    for j in range(n):
        col = _pick(ctx, m, j, -1)
        below = ctx.const(np.arange(n) >= j)
        cand = ctx.node("Where", [below, ctx.node("Abs", [col]), ctx.const(-1, dt)])
        p = ctx.node("ArgMax", [cand], axis=-1, keepdims=0)
        pivots.append(ctx.node("Unsqueeze", [p, ctx.ints([-1])]))
        oh_p = _onehot(ctx, p, n, dt)
        row_p = ctx.reduce(
            "ReduceSum",
            ctx.node("Mul", [m, ctx.node("Unsqueeze", [oh_p, ctx.ints([-1])])]),
            [-2],
            False,
        )
        m = _swap_to(ctx, m, j, n, oh_p, row_p)
        piv = _pick(ctx, row_p, j, -1)
        is_zero = ctx.node("Equal", [piv, zero])
        zero_piv.append(ctx.node("Unsqueeze", [is_zero, ctx.ints([-1])]))
        safe = ctx.node("Unsqueeze", [ctx.node("Where", [is_zero, one, piv]), ctx.ints([-1])])
        gt = ctx.const((np.arange(n) > j).astype(dt))
        col = _pick(ctx, m, j, -1)
        factors = ctx.node("Mul", [ctx.node("Div", [col, safe]), gt])  # l below the pivot
        m = ctx.node("Sub", [m, _outer(ctx, factors, ctx.node("Mul", [row_p, gt]))])
        # store l below the pivot in column j (by selection, to keep its digits)
        l_spot = ctx.const((np.arange(n)[:, None] > j) & (np.arange(n)[None, :] == j))
        m = ctx.node("Where", [l_spot, ctx.node("Unsqueeze", [factors, ctx.ints([-1])]), m])
    piv = ctx.node("Add", [ctx.node("Concat", pivots, axis=-1), ctx.const(np.int64(1))])
    flags = ctx.node("Concat", zero_piv, axis=-1)
    ranks = ctx.const(np.arange(1, n + 1, dtype=np.int64))
    first = ctx.reduce(
        "ReduceMin", ctx.node("Where", [flags, ranks, ctx.const(np.int64(n + 1))]), [-1], False
    )
    none = ctx.node("Equal", [first, ctx.const(np.int64(n + 1))])
    info = ctx.node("Where", [none, ctx.const(np.int64(0)), first])
    return [m, ctx.cast(piv, out_dtype(e, 1)), ctx.cast(info, out_dtype(e, 2))]


@lowers("linalg_lu_perm")
def _lu_perm(ctx: Context, e: Eqn) -> str:
    """The permutation matrix of LAPACK pivots: the identity's rows swapped in order
    (``i`` with ``piv[i] - 1``), transposed."""
    dt = out_dtype(e)
    m = int(e.params["m"])
    pv = e.inputs[0]
    k = _size(e, pv, -1)
    piv = ctx.node("Sub", [ctx.inp(pv, np.int64), ctx.const(np.int64(1))])
    batch = list(pv.shape[:-1])
    q = ctx.node("Expand", [ctx.const(np.eye(m, dtype=dt)), ctx.shape(batch + [m, m])])
    for i in range(k):
        oh_p = _onehot(ctx, _pick(ctx, piv, i, -1), m, dt)
        row_p = ctx.reduce(
            "ReduceSum",
            ctx.node("Mul", [q, ctx.node("Unsqueeze", [oh_p, ctx.ints([-1])])]),
            [-2],
            False,
        )
        diff = ctx.node("Sub", [row_p, _pick(ctx, q, i, -2)])
        e_i = ctx.const(np.eye(m, dtype=dt)[i])
        q = ctx.node("Add", [q, _outer(ctx, ctx.node("Sub", [e_i, oh_p]), diff)])
    return _transpose_last(ctx, q, len(batch) + 2)


@lowers("linalg_qr")
def _qr(ctx: Context, e: Eqn) -> list[str]:
    """Householder reflections unrolled over the ``min(m, n)`` columns with LAPACK's sign
    choice (``R[j, j] = -sign(a) |x|``, no reflection where the column below is already 0),
    so Q and R equal NumPy's; ``Q`` accumulated as ``H_1 H_2 ...``."""
    dt = out_dtype(e, 1)
    av = e.inputs[0]
    m, n = _size(e, av, -2), _size(e, av, -1)
    nd = av.ndim
    mode = e.params.get("mode", "reduced")
    k = min(m, n)
    r = ctx.inp(av, dt)
    batch = list(av.shape[:-2])
    q = ctx.node("Expand", [ctx.const(np.eye(m, dtype=dt)), ctx.shape(batch + [m, m])])
    zero, one = ctx.const(0, dt), ctx.const(1, dt)
    for j in range(k if m > k else k - 1):  # a last 1-row column needs no reflection
        mask = ctx.const((np.arange(m) >= j).astype(dt))
        x = ctx.node("Mul", [_pick(ctx, r, j, -1), mask])  # column j, rows >= j
        alpha = _pick(ctx, x, j, -1)
        tail = ctx.node("Mul", [x, ctx.const((np.arange(m) > j).astype(dt))])
        tail_sq = ctx.reduce("ReduceSum", ctx.node("Mul", [tail, tail]), [-1], False)
        norm = ctx.node("Sqrt", [ctx.node("Add", [ctx.node("Mul", [alpha, alpha]), tail_sq])])
        sign = ctx.node("Where", [ctx.node("Less", [alpha, zero]), ctx.node("Neg", [one]), one])
        beta = ctx.node("Neg", [ctx.node("Mul", [sign, norm])])
        e_j = ctx.const(np.eye(m, dtype=dt)[j])
        v = ctx.node(
            "Sub", [x, ctx.node("Mul", [ctx.node("Unsqueeze", [beta, ctx.ints([-1])]), e_j])]
        )
        vv = ctx.reduce("ReduceSum", ctx.node("Mul", [v, v]), [-1], False)
        skip = ctx.node("Equal", [tail_sq, zero])  # H = I
        scale = ctx.node(
            "Where",
            [skip, zero, ctx.node("Div", [ctx.const(2, dt), ctx.node("Where", [skip, one, vv])])],
        )
        w = ctx.node("Mul", [v, ctx.node("Unsqueeze", [scale, ctx.ints([-1])])])  # 2 v / v.v
        # R <- (I - w v^T) R ;  Q <- Q (I - v w^T)
        vt_r = ctx.node("MatMul", [ctx.node("Unsqueeze", [v, ctx.ints([-2])]), r])  # (.., 1, n)
        r = ctx.node(
            "Sub", [r, ctx.node("Mul", [ctx.node("Unsqueeze", [w, ctx.ints([-1])]), vt_r])]
        )
        q_v = ctx.node("MatMul", [q, ctx.node("Unsqueeze", [v, ctx.ints([-1])])])  # (.., m, 1)
        q = ctx.node("Sub", [q, ctx.node("Mul", [q_v, ctx.node("Unsqueeze", [w, ctx.ints([-2])])])])
    # exact zeros below the diagonal, as LAPACK returns them
    r = ctx.node("Trilu", [r], upper=1)
    if mode == "complete":
        return [q, r]
    r = ctx.slice(r, [0], [k], [nd - 2])
    if mode == "r":
        return [ctx.const(np.zeros((0,), dt)), r]
    return [ctx.slice(q, [0], [k], [nd - 1]), r]


_EXPM_MAX_SQUARINGS = 64  # covers 1-norms up to theta_13 * 2**64


@lowers("linalg_matrix_exp")
def _matrix_exp(ctx: Context, e: Eqn) -> str:
    """Eager mode's algorithm in float64: the degree-13 Pade approximant of ``A / 2**s``
    (``s`` from the 1-norm), solved by the Gauss-Jordan elimination of ``linalg_solve_ex``,
    then squared ``s`` times (unrolled to 64 squarings, each applied where ``s`` asks)."""
    from ..ops.linalg_products import _PADE13 as b
    from ..ops.linalg_products import _THETA13

    dt = out_dtype(e)
    av = e.inputs[0]
    n, nd = _size(e, av, -1), av.ndim
    f64 = np.dtype(np.float64)
    x = ctx.inp(av, f64)

    def c(v: float) -> str:
        return ctx.const(v, f64)

    def mm(p: str, q: str) -> str:
        return ctx.node("MatMul", [p, q])

    def lin(*terms: tuple[float, str]) -> str:
        out = None
        for k, t in terms:
            term = ctx.node("Mul", [t, c(k)])
            out = term if out is None else ctx.node("Add", [out, term])
        assert out is not None
        return out

    norm1 = ctx.reduce("ReduceMax", ctx.reduce("ReduceSum", ctx.node("Abs", [x]), [-2], False),
                       [-1], False)  # fmt: skip
    ratio = ctx.node("Div", [ctx.node("Max", [norm1, c(1e-300)]), c(_THETA13)])
    lg = ctx.node("Div", [ctx.node("Log", [ratio]), c(np.log(2.0))])
    s = ctx.node("Max", [ctx.node("Ceil", [lg]), c(0.0)])  # (...,)
    scale = ctx.node("Unsqueeze", [ctx.node("Pow", [c(2.0), s]), ctx.ints([-1, -2])])
    x = ctx.node("Div", [x, scale])
    eye = ctx.const(np.eye(n))
    x2 = mm(x, x)
    x4 = mm(x2, x2)
    x6 = mm(x4, x2)
    u = mm(x, ctx.node("Add", [mm(x6, lin((b[13], x6), (b[11], x4), (b[9], x2))),
                               lin((b[7], x6), (b[5], x4), (b[3], x2), (b[1], eye))]))  # fmt: skip
    v = ctx.node("Add", [mm(x6, lin((b[12], x6), (b[10], x4), (b[8], x2))),
                         lin((b[6], x6), (b[4], x4), (b[2], x2), (b[0], eye))])  # fmt: skip
    aug = ctx.node("Concat", [ctx.node("Sub", [v, u]), ctx.node("Add", [v, u])], axis=-1)
    m, _ = _gauss_jordan(ctx, aug, n, f64)
    r = ctx.slice(m, [n], [2 * n], [nd - 1])
    s_b = ctx.node("Unsqueeze", [s, ctx.ints([-1, -2])])
    for i in range(_EXPM_MAX_SQUARINGS):
        r = ctx.node("Where", [ctx.node("Greater", [s_b, c(float(i))]), mm(r, r), r])
    return ctx.cast(r, dt)
