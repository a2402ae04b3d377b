"""Contractions: ``matmul`` (batched, broadcast, 1-D cases) and ``einsum``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backends.cpu import FAST_FLOATS
from . import _core
from ._ad import defvjp
from ._core import SAVE_INPUTS, SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._parallel import matmul as _pmatmul
from ._promote import _cast, promote_args, result_type
from ._records import module_ops, op
from ._samples import defsample
from .complex_base import cj

if TYPE_CHECKING:
    from .._tensor import Tensor


def _mm_impl(x, y):
    if x.dtype not in FAST_FLOATS and (x.dtype.kind == "V" or x.dtype == np.float16):
        # NOTE: ml_dtypes' bf16 @ returns float32, and float16 GEMM in NumPy is slow:
        # compute in float32 and round once, as PyTorch's CPU kernels do.
        return _pmatmul(x.astype(np.float32), y.astype(np.float32)).astype(x.dtype)
    return _pmatmul(x, y)


def _mm_abstract(x, y):
    if x.ndim < 2 or y.ndim < 2:
        raise ShapeError(f"matmul: expected >= 2-D operands, got {x.shape} and {y.shape}")
    if x.shape[-1] != y.shape[-2]:
        raise ShapeError(
            f"matmul: shapes {x.shape} and {y.shape} cannot be multiplied "
            f"({x.shape[-1]} != {y.shape[-2]})"
        )
    from .elementwise import broadcast_shapes

    batch = broadcast_shapes(x.shape[:-2], y.shape[:-2], op="matmul")
    return AbstractValue(batch + (x.shape[-2], y.shape[-1]), x.dtype)


matmul_p = Primitive(
    "matmul", "contraction", impl=_mm_impl, abstract=_mm_abstract, save=SAVE_INPUTS
)


@defvjp(matmul_p)
def _mm_vjp(g, out, x, y):
    if (
        not _core._state.grad_enabled
        and x.ndim == 2
        and y.ndim == 2
        and g.ndim == 2
        and x._data.dtype == y._data.dtype == g._data.dtype
        and x._data.dtype in FAST_FLOATS
    ):
        # a training step's backward: both products in one primitive (4 binds -> 1)
        return bind(
            matmul_backward_p,
            (g, x, y),
            {"need_x": bool(x.requires_grad), "need_y": bool(y.requires_grad)},
        )
    # A gradient takes its operand's memory layout: for an operand that is a transposed view
    # (k.transpose(-2, -1) in written-out attention) the product is computed transposed and
    # handed back as a transposed view, which the transpose's own backward turns into a
    # contiguous array, instead of a transposed gradient that every later copy (the split
    # of a fused qkv gradient: ~0.7 ms for (16, 128, 256) float32) reads element by element.
    gx = (cj(y) @ g.mT).mT if _transposed(x) else g @ cj(y).mT
    gy = (g.mT @ cj(x)).mT if _transposed(y) else cj(x).mT @ g
    return gx, gy


def _transposed(t):
    """Whether ``t``'s array has column-major matrices (its columns, not its rows, unit
    stride: a transposed view)."""
    a = t._data
    return (
        a.ndim >= 2
        and a.shape[-1] > 1
        and a.shape[-2] > 1
        and a.strides[-2] == a.itemsize
        and a.strides[-1] != a.itemsize
    )


def _mm_backward_impl(g, x, y, *, need_x, need_y):
    # an unneeded gradient goes nowhere (its input has no edge): a stride-0 placeholder
    gx = _pmatmul(g, y.T) if need_x else np.broadcast_to(x.dtype.type(0), x.shape)
    gy = _pmatmul(x.T, g) if need_y else np.broadcast_to(y.dtype.type(0), y.shape)
    return gx, gy


def _mm_backward_sample():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    g, x, y = (tensor(rng.standard_normal(s)) for s in ((3, 5), (3, 4), (4, 5)))
    return [
        ((g, x, y), {"need_x": True, "need_y": True}),
        ((g, x, y), {"need_x": False, "need_y": True}),
    ]


# matmul's VJP for 2-D operands when no backward graph is recorded (nondiff: create_graph
# takes the composite g @ y^T, x^T @ g)
matmul_backward_p = Primitive(
    "matmul_backward",
    "opaque",
    impl=_mm_backward_impl,
    nondiff=True,
    n_out=2,
    save=SAVE_NONE,
    abstract=lambda g, x, y, **kw: (
        AbstractValue(x.shape, x.dtype),
        AbstractValue(y.shape, y.dtype),
    ),
)
defsample(matmul_backward_p, _mm_backward_sample)


@op(method="matmul", ref="matmul", arity=2, shapes=(((2, 3), (3, 4)), ((2, 2, 3), (3,))), rtol=1e-4)
def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics for 1-D and batched operands."""
    input, other, _ = promote_args(input, other)
    if input._data.dtype.kind in "b":
        raise TypeError("matmul: bool tensors are not supported")
    xn, yn = input._data.ndim, other._data.ndim
    if xn == 0 or yn == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got {xn}D and {yn}D")
    if xn >= 2 and yn >= 2:
        if input._data.shape[-1] != other._data.shape[-2]:
            raise ShapeError(
                f"matmul: mat1 and mat2 shapes cannot be multiplied "
                f"({'x'.join(map(str, input.shape))} and "
                f"{'x'.join(map(str, other.shape))})"
            )
        bx, by = input._data.shape[:-2], other._data.shape[:-2]
        if any(a != b and a != 1 and b != 1 for a, b in zip(bx[::-1], by[::-1])):
            raise ShapeError(
                f"matmul: the batch dimensions {tuple(bx)} and {tuple(by)} of shapes "
                f"{tuple(input.shape)} and {tuple(other.shape)} cannot be broadcast together"
            )
        return bind(matmul_p, (input, other))
    if xn == 1 and yn == 1:
        if input._data.shape != other._data.shape:
            raise ShapeError(
                f"matmul: 1D tensors expected to have the same size, got "
                f"{input._data.shape[0]} and {other._data.shape[0]}"
            )
        return bind(matmul_p, (input.reshape(1, -1), other.reshape(-1, 1))).reshape(())
    if xn == 1:
        if input._data.shape[0] != other._data.shape[-2]:
            raise ShapeError(
                f"matmul: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot be multiplied"
            )
        r = bind(matmul_p, (input.reshape(1, -1), other))
        return r.squeeze(-2)
    if input._data.shape[-1] != other._data.shape[0]:
        raise ShapeError(
            f"matmul: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot be multiplied"
        )
    return bind(matmul_p, (input, other.reshape(-1, 1))).squeeze(-1)


@op(method="mm", ref="mm", arity=2, shapes=(((2, 3), (3, 4)),), rtol=1e-4)
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(
            f"mm: expected 2-D tensors, got {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


@op(method="bmm", ref="bmm", arity=2, shapes=(((2, 2, 3), (2, 3, 4)),), rtol=1e-4)
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(
            f"bmm: expected 3-D tensors, got {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise ShapeError(
            f"bmm: batch1 of shape {tuple(input.shape)} and batch2 of shape "
            f"{tuple(mat2.shape)} cannot be multiplied (expected batch2 of shape "
            f"({input.shape[0]}, {input.shape[2]}, n))"
        )
    return matmul(input, mat2)


@op(method="dot", ref="dot", arity=2, shapes=(((3,), (3,)),), rtol=1e-4)
def dot(input: Tensor, tensor: Tensor) -> Tensor:
    if input.ndim != 1 or tensor.ndim != 1:
        raise ShapeError(f"dot: 1D tensors expected, got {input.ndim}D and {tensor.ndim}D")
    return matmul(input, tensor)


@op(method=("outer", "ger"), ref="outer", arity=2, shapes=(((3,), (4,)),), rtol=1e-4)
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    if input.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(
            f"outer: expected 1-D arguments, got shapes {tuple(input.shape)} and "
            f"{tuple(vec2.shape)}"
        )
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


# -- einsum --------------------------------------------------------------------------------
def _parse_einsum(eq, n):
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs = eq
        letters = [c for c in lhs.replace(",", "") if c.isalpha()]
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        if "..." in lhs:
            rhs = "..." + rhs
    ins = lhs.split(",")
    if len(ins) != n:
        raise ShapeError(f"einsum: equation {eq!r} has {len(ins)} operands but {n} were given")
    return ins, rhs


def _einsum_impl(*xs, eq):
    if xs[0].dtype.kind == "V" or xs[0].dtype == np.float16:
        return np.einsum(eq, *[x.astype(np.float32) for x in xs], optimize=True).astype(xs[0].dtype)
    return np.asarray(np.einsum(eq, *xs, optimize=len(xs) > 2 or None or False))


def _einsum_abstract(*xs, eq):
    ins, rhs = _parse_einsum(eq, len(xs))
    sizes = {}
    for spec, x in zip(ins, xs):
        if "..." in spec:
            raise ShapeError("einsum: abstract evaluation with '...' needs concrete shapes")
        if len(spec) != x.ndim:
            raise ShapeError(
                f"einsum: operand subscript {spec!r} has {len(spec)} letters but the "
                f"operand has {x.ndim} dims (shape {x.shape})"
            )
        for c, s in zip(spec, x.shape):
            if sizes.setdefault(c, s) != s and s != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: size of label {c!r} differs: {sizes[c]} vs {s}")
    return AbstractValue(tuple(sizes[c] for c in rhs), xs[0].dtype)


einsum_p = Primitive(
    "einsum", "contraction", impl=_einsum_impl, abstract=_einsum_abstract, save=SAVE_INPUTS
)


@defvjp(einsum_p)
def _einsum_vjp(g, out, *xs, eq):
    ins, rhs = _parse_einsum(eq, len(xs))
    grads = []
    for i, x in enumerate(xs):
        if not hasattr(x, "_data"):
            grads.append(None)
            continue
        others = [xs[j] for j in range(len(xs)) if j != i]
        other_specs = [ins[j] for j in range(len(xs)) if j != i]
        target = ins[i]
        sizes = dict(zip(target, x.shape))
        uniq = "".join(dict.fromkeys(target))  # a label repeated in x (a diagonal) once
        # Letters of x that appear nowhere else were summed out: broadcast them back.
        present = set(rhs) | set("".join(other_specs))
        kept = "".join(c for c in uniq if c in present)
        gi = einsum(",".join([rhs] + other_specs) + "->" + kept, g, *[cj(o) for o in others])
        if kept != uniq:
            gi = gi.reshape([sizes[c] if c in present else 1 for c in uniq]).expand(
                [sizes[c] for c in uniq]
            )
        if uniq != target:
            # Put the gradient back on the diagonal(s): multiply by identity matrices.
            from .._creation import eye

            free = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in eq]
            spec, eyes, eye_specs, seen = "", [], [], set()
            for c in target:
                if c in seen:
                    n = free.pop(0)
                    spec += n
                    eyes.append(eye(sizes[c], dtype=g.dtype))
                    eye_specs.append(c + n)
                else:
                    seen.add(c)
                    spec += c
            gi = einsum(",".join([uniq] + eye_specs) + "->" + spec, gi, *eyes)
        grads.append(gi)
    return tuple(grads)


def _expand_ellipsis(eq, shapes):
    """Rewrite '...' into explicit letters so the VJP can permute labels freely."""
    if "..." not in eq:
        return eq
    ins, rhs = _parse_einsum(eq, len(shapes))
    used = {c for c in eq if c.isalpha()}
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    nell = max(len(s) - (len(spec) - 3) for spec, s in zip(ins, shapes) if "..." in spec)
    ell = "".join(free[:nell])
    new_ins = []
    for spec, s in zip(ins, shapes):
        if "..." in spec:
            k = len(s) - (len(spec) - 3)
            spec = spec.replace("...", ell[nell - k :])
        new_ins.append(spec)
    rhs = rhs.replace("...", ell)
    return ",".join(new_ins) + "->" + rhs


@op()
def einsum(equation: str, *operands: Tensor) -> Tensor:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])

    r = result_type(*operands)
    operands = tuple(_cast(o, r) for o in operands)
    eq = _expand_ellipsis(equation.replace(" ", ""), [o.shape for o in operands])
    if "->" not in eq:
        ins, rhs = _parse_einsum(eq, len(operands))
        eq = ",".join(ins) + "->" + rhs
    _einsum_abstract(*[AbstractValue(o.shape, o.dtype) for o in operands], eq=eq)
    return bind(einsum_p, operands, {"eq": eq})


__all__ = module_ops(__name__)
