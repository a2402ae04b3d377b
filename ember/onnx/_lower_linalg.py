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
    onehot_values = ctx.const(np.array([0, 1], dt))
    zero_piv: list[str] = []
    for j in range(n):
        e_j = ctx.const(np.eye(n, dtype=dt)[j])
        col = _pick(ctx, m, j, -1)  # (..., n)
        below = ctx.const(np.arange(n) >= j)
        cand = ctx.node("Where", [below, ctx.node("Abs", [col]), ctx.const(-1, dt)])
        p = ctx.node("ArgMax", [cand], axis=-1, keepdims=0)
        oh_p = ctx.node("OneHot", [p, ctx.const(np.int64(n)), onehot_values], axis=-1)
        row_p = ctx.reduce(
            "ReduceSum", ctx.node("Mul", [m, ctx.node("Unsqueeze", [oh_p, ctx.ints([-1])])]),
            [-2], False,
        )  # fmt: skip
        row_j = _pick(ctx, m, j, -2)

        def outer(v: str, r: str) -> str:
            col, row = (
                ctx.node("Unsqueeze", [v, ctx.ints([-1])]),
                ctx.node("Unsqueeze", [r, ctx.ints([-2])]),
            )
            return ctx.node("Mul", [col, row])

        diff = ctx.node("Sub", [row_p, row_j])
        m = ctx.node("Add", [m, ctx.node("Sub", [outer(e_j, diff), outer(oh_p, diff)])])
        piv = _pick(ctx, row_p, j, -1)
        is_zero = ctx.node("Equal", [piv, zero])
        zero_piv.append(is_zero)
        safe = ctx.node("Where", [is_zero, one, piv])
        r_norm = ctx.node("Div", [row_p, ctx.node("Unsqueeze", [safe, ctx.ints([-1])])])
        f = ctx.node("Mul", [_pick(ctx, m, j, -1), ctx.const(1 - np.eye(n, dtype=dt)[j])])
        m = ctx.node("Sub", [m, outer(f, r_norm)])
        m = ctx.node("Add", [m, outer(e_j, ctx.node("Sub", [r_norm, row_p]))])
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
    onehot_values = ctx.const(np.array([0, 1], dt))
    zero, one = ctx.const(0, dt), ctx.const(1, dt)
    pivots, zero_piv = [], []
    for j in range(n):
        col = _pick(ctx, m, j, -1)
        below = ctx.const(np.arange(n) >= j)
        cand = ctx.node("Where", [below, ctx.node("Abs", [col]), ctx.const(-1, dt)])
        p = ctx.node("ArgMax", [cand], axis=-1, keepdims=0)
        pivots.append(ctx.node("Unsqueeze", [p, ctx.ints([-1])]))
        oh_p = ctx.node("OneHot", [p, ctx.const(np.int64(n)), onehot_values], axis=-1)
        row_p = ctx.reduce(
            "ReduceSum",
            ctx.node("Mul", [m, ctx.node("Unsqueeze", [oh_p, ctx.ints([-1])])]),
            [-2],
            False,
        )
        row_j = _pick(ctx, m, j, -2)
        e_j = ctx.const(np.eye(n, dtype=dt)[j])
        diff = ctx.node("Sub", [row_p, row_j])
        m = ctx.node("Add", [m, _outer(ctx, ctx.node("Sub", [e_j, oh_p]), diff)])
        piv = _pick(ctx, row_p, j, -1)
        is_zero = ctx.node("Equal", [piv, zero])
        zero_piv.append(ctx.node("Unsqueeze", [is_zero, ctx.ints([-1])]))
        safe = ctx.node("Unsqueeze", [ctx.node("Where", [is_zero, one, piv]), ctx.ints([-1])])
        gt = ctx.const((np.arange(n) > j).astype(dt))
        col = _pick(ctx, m, j, -1)
        factors = ctx.node("Mul", [ctx.node("Div", [col, safe]), gt])  # l below the pivot
        m = ctx.node("Sub", [m, _outer(ctx, factors, ctx.node("Mul", [row_p, gt]))])
        fix = ctx.node("Sub", [factors, ctx.node("Mul", [col, gt])])
        m = ctx.node("Add", [m, _outer(ctx, fix, e_j)])  # store l in column j
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
    onehot_values = ctx.const(np.array([0, 1], dt))
    for i in range(k):
        oh_p = ctx.node(
            "OneHot", [_pick(ctx, piv, i, -1), ctx.const(np.int64(m)), onehot_values], axis=-1
        )
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
