"""Array fast paths of the common primitives' VJPs (see :data:`ember.ops._ad.ARRAY_VJPS`).

Each rule computes what the primitive's VJP rule computes, with the same kernels (the
primitives' own ``impl``) on the NumPy arrays, so the cotangents are the same bits; it only
skips the Tensors and ``bind`` calls in between, which are most of a small op's backward.
A rule returns NotImplemented where the VJP rule would take another route (complex numbers,
mixed dtypes, a composite for dtypes without a fused kernel); the engine then runs that.

Example:
    >>> import ember
    >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()  # the mul and sum VJPs run here on arrays
    >>> x.grad.tolist()
    [2.0, 4.0]
"""

from __future__ import annotations

import numpy as np

from ..backends.cpu import FAST_FLOATS
from . import activation as _act
from . import elementwise as _ew
from . import linalg as _la
from . import nn as _nn
from . import reduction as _red
from . import shape as _shape
from ._ad import defvjp_array

__all__: list[str] = []

_nd = np.ndarray


def _same(g, *values):
    """True when ``g`` is real and every array among ``values`` has its dtype (Python
    numbers pass: NumPy and the Tensor ops treat them alike)."""
    if g.dtype.kind == "c":
        return False
    for a in values:
        if type(a) is _nd:
            if a.dtype != g.dtype:
                return False
        elif type(a) is complex:
            return False
    return True


# -- arithmetic ------------------------------------------------------------------------------
_mul = _ew.mul_p.impl
_div = _ew.div_p.impl


@defvjp_array(_ew.add_p)
def _add(edges, g, out, x, y):
    return g, g


@defvjp_array(_ew.sub_p)
def _sub(edges, g, out, x, y):
    return g, (np.negative(g) if edges[1] is not None else None)


@defvjp_array(_ew.mul_p)
def _mul_vjp(edges, g, out, x, y):
    if not _same(g, x, y):
        return NotImplemented
    return (
        _mul(g, y) if edges[0] is not None else None,
        _mul(g, x) if edges[1] is not None else None,
    )


@defvjp_array(_ew.div_p)
def _div_vjp(edges, g, out, x, y):
    if not _same(g, x, y):
        return NotImplemented
    gx = _div(g, y)
    gy = None
    if edges[1] is not None and type(y) is _nd:  # (only the inputs are saved)
        gy = _mul(np.negative(gx), _div(x, y))
    return gx, gy


@defvjp_array(_ew.neg_p)
def _neg(edges, g, out, x):
    return (np.negative(g),)


# -- transcendental functions and activations -------------------------------------------------
@defvjp_array(_ew.exp_p)
def _exp(edges, g, out, x):
    return (_mul(g, out),) if _same(g, out) else NotImplemented


@defvjp_array(_ew.log_p)
def _log(edges, g, out, x):
    return (_div(g, x),) if _same(g, x) else NotImplemented


def _fused_out(grad_prim):
    """The rule of a ``_fused_grad`` VJP: its kernel on (g, out) for float32/float64."""
    kernel = grad_prim.impl

    def rule(edges, g, out, x):
        if g.dtype != out.dtype or g.dtype not in FAST_FLOATS:
            return NotImplemented
        return (kernel(g, out),)

    return rule


defvjp_array(_ew.tanh_p, _fused_out(_ew.tanh_grad_p))
defvjp_array(_ew.sigmoid_p, _fused_out(_ew.sigmoid_grad_p))


@defvjp_array(_ew.relu_p)
def _relu(edges, g, out, x):
    return (_ew.relu_grad_p.impl(g, out),)


@defvjp_array(_act.gelu_p)
def _gelu(edges, g, out, x, approximate="none"):
    if not _act._fusable_arrays(g, x):
        return NotImplemented
    if approximate == "tanh":
        return (_act.gelu_grad_p.impl(g, x, approximate="tanh"),)
    return (_act.gelu_grad_p.impl(g, x),)


@defvjp_array(_act.silu_p)
def _silu(edges, g, out, x):
    return (_act.silu_grad_p.impl(g, x),) if _act._fusable_arrays(g, x) else NotImplemented


# -- contractions --------------------------------------------------------------------------------
@defvjp_array(_la.matmul_p)
def _matmul(edges, g, out, x, y):
    if not (x.ndim == 2 and y.ndim == 2 and g.ndim == 2 and x.dtype == y.dtype == g.dtype) or (
        x.dtype not in FAST_FLOATS
    ):
        return NotImplemented
    nx, ny = edges[0] is not None, edges[1] is not None
    gx, gy = _la._mm_backward_impl(g, x, y, need_x=nx, need_y=ny)
    return (gx if nx else None), (gy if ny else None)


@defvjp_array(_nn.linear_p)
def _linear(edges, g, out, x, w, b=None):
    nx, nw = edges[0] is not None, edges[1] is not None
    nb = b is not None and len(edges) > 2 and edges[2] is not None
    gx, gw, gb = _nn._linear_backward_impl(g, x, w, need_x=nx, need_w=nw, need_b=nb)
    return (gx if nx else None), (gw if nw else None), (gb if nb else None)


# -- reductions and shapes -----------------------------------------------------------------------
def _spread(g, shape, dims, keepdim, div=None):
    """``_expand_back`` on arrays: the gradient of a sum (``div``: a mean's count)."""
    if g.dtype not in FAST_FLOATS:
        return NotImplemented
    size = 1
    for s in shape:
        size *= s
    if size > _SMALL:  # (a new array written on threads when large)
        r = _red._fill_back(g, shape, dims, keepdim, div)
        if r is not None:
            return (r._data,)
    if not keepdim and len(shape) and g.ndim:
        g = g.reshape(_red.reduced_shape(shape, dims, True))
    if div is None and len(shape) and size <= _SMALL:
        r = np.empty(shape, g.dtype)  # a small broadcast as a copy (np.broadcast_to: ~3 us)
        r[...] = g
        return (r,)
    g = np.broadcast_to(g, shape)
    return (g if div is None else _div(g, div),)


_SMALL = 4096


@defvjp_array(_red.sum_p)
def _sum(edges, g, out, x, dims, keepdim, shape):
    return _spread(g, shape, dims, keepdim)


@defvjp_array(_red.mean_p)
def _mean(edges, g, out, x, dims, keepdim, shape):
    n = 1
    for d in dims:
        n *= shape[d]
    return _spread(g, shape, dims, keepdim, n)


@defvjp_array(_shape.reshape_p)
def _reshape(edges, g, out, x, shape, in_shape):
    return (g.reshape(in_shape),)
