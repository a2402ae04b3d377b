"""Activation primitives with parameters or fused kernels: ``gelu`` (exact and tanh),
``silu``, ``softplus``, ``leaky_relu``, ``elu``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..backends import xp_of
from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, _state, bind
from ._ew_kernels import erf_impl, ew_unary, ew_unary_grad, sigmoid_impl
from ._records import module_ops, op
from ._samples import defsample
from .complex_base import cj
from .complex_refuse import refuse_complex
from .elementwise import (
    _ew_abstract,
    erf,
    exp,
    minimum,
    sigmoid,
    tanh,
    unary_primitive,
    where,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .._tensor import Tensor

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_impl(x, approximate="none"):
    name = "gelu_tanh" if approximate == "tanh" else "gelu"
    if isinstance(x, np.ndarray):
        return ew_unary(name, x)  # float16/bfloat16: computed in float32
    xp = xp_of(x)
    if approximate == "tanh":
        inner = (x + x * x * x * x.dtype.type(0.044715)) * x.dtype.type(_SQRT_2_OVER_PI)
        return x * (xp.tanh(inner) + 1) * x.dtype.type(0.5)
    cdf = (erf_impl(x * x.dtype.type(_INV_SQRT2)) + 1) * x.dtype.type(0.5)
    return x * cdf


_POOL: list[ThreadPoolExecutor] = []


def _halves(fn, n, *arrays):
    """``fn(*arrays)`` with the first axis split in two halves, one on a worker thread (the
    kernels are NumPy/BLAS calls that release the GIL). Serial when n < 2 or one CPU."""
    import os

    if n < 2 or (os.cpu_count() or 1) < 2:
        return fn(*arrays)
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(1, thread_name_prefix="ember-kernel"))
    h = n // 2
    fut = _POOL[0].submit(fn, *[a[:h] for a in arrays])
    try:
        fn(*[a[h:] for a in arrays])
    finally:
        fut.result()


def _gelu_grad_impl(g, x, approximate="none"):
    """g * gelu'(x) in one pass (exact: cdf + x * pdf; tanh: the tanh formula's derivative)."""
    return ew_unary_grad("gelu_tanh" if approximate == "tanh" else "gelu", g, x)


def _gelu_grad_sample():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    return [((tensor(rng.standard_normal(5)), tensor(rng.standard_normal(5))), {})]


gelu_grad_p = Primitive(
    "gelu_grad",
    "elementwise",
    impl=_gelu_grad_impl,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, x, **params: AbstractValue(x.shape, x.dtype),
)
defsample(gelu_grad_p, _gelu_grad_sample)


def _fusable(g, x):
    """True when a VJP may run its one-pass gradient kernel: no backward graph is being
    recorded (the composite of ember ops stays differentiable) and g, x are alike NumPy
    float arrays."""
    return not _state.grad_enabled and _fusable_arrays(g._data, x._data)


def _fusable_arrays(gd, xd):
    """True when the arrays ``gd``, ``xd`` suit the one-pass gradient kernels: NumPy float
    arrays (float32 or wider) of one dtype and shape."""
    return (
        isinstance(xd, np.ndarray)
        and isinstance(gd, np.ndarray)
        and xd.dtype.kind == "f"
        and xd.dtype.itemsize >= 4
        and gd.dtype == xd.dtype
        and gd.shape == xd.shape
    )


def _gelu_abstract(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ShapeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return AbstractValue(x.shape, x.dtype)


gelu_p = Primitive("gelu", "elementwise", impl=_gelu_impl, abstract=_gelu_abstract)


@defvjp(gelu_p)
def _gelu_vjp(g, out, x, approximate="none"):
    if _fusable(g, x):
        params = {"approximate": "tanh"} if approximate == "tanh" else {}
        return (bind(gelu_grad_p, (g, x), params),)
    if approximate == "tanh":
        x2 = x * x
        inner = (x + x2 * x * 0.044715) * _SQRT_2_OVER_PI
        t = tanh(inner)
        d_inner = (x2 * (3 * 0.044715) + 1.0) * _SQRT_2_OVER_PI
        return (g * (0.5 * (t + 1.0) + 0.5 * x * (1.0 - t * t) * d_inner),)
    cdf = (erf(x * _INV_SQRT2) + 1.0) * 0.5
    pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
    return (g * (cdf + x * pdf),)


@op(method="gelu", ref="nn.functional.gelu", cases=({}, {"approximate": "tanh"}))
def gelu(x: Tensor, *, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; ``approximate='tanh'`` uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if approximate == "none":
        return bind(gelu_p, (x,))
    return bind(gelu_p, (x,), {"approximate": approximate})


def _silu_impl(x):
    if isinstance(x, np.ndarray):
        return ew_unary("silu", x)
    return x * sigmoid_impl(x)


_silu_impl.into = lambda x, out: ew_unary("silu", x, out=out)  # type: ignore[attr-defined]


silu_p = unary_primitive("silu", _silu_impl)
silu_grad_p = Primitive(
    "silu_grad",
    "elementwise",
    impl=lambda g, x: ew_unary_grad("silu", g, x),
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, x: AbstractValue(x.shape, x.dtype),
)
defsample(silu_grad_p, _gelu_grad_sample)


@defvjp(silu_p)
def _silu_vjp(g, out, x):
    if _fusable(g, x):
        return (bind(silu_grad_p, (g, x)),)
    s = sigmoid(x)
    return (g * cj(s * (1.0 + x * (1.0 - s))),)


@op(method="silu", ref="nn.functional.silu")
def silu(x: Tensor) -> Tensor:
    return bind(silu_p, (x,))


def _softplus_impl(x, beta=1.0, threshold=20.0):
    if isinstance(x, np.ndarray):
        return ew_unary("softplus", x, beta=beta, threshold=threshold)
    xp = xp_of(x)
    bx = x * x.dtype.type(beta) if beta != 1.0 else x
    # log1p(exp(bx)) computed stably: max(bx, 0) + log1p(exp(-|bx|))
    soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / x.dtype.type(beta)
    return xp.where(bx > threshold, x, soft).astype(x.dtype, copy=False)


softplus_p = Primitive(
    "softplus", "elementwise", impl=_softplus_impl, abstract=_ew_abstract("softplus")
)


softplus_grad_p = Primitive(
    "softplus_grad",
    "elementwise",
    impl=lambda g, x, beta=1.0, threshold=20.0: ew_unary_grad(
        "softplus", g, x, beta=beta, threshold=threshold
    ),
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, x, **params: AbstractValue(x.shape, x.dtype),
)
defsample(softplus_grad_p, _gelu_grad_sample)


@defvjp(softplus_p)
def _softplus_vjp(g, out, x, beta=1.0, threshold=20.0):
    if _fusable(g, x):
        return (bind(softplus_grad_p, (g, x), {"beta": beta, "threshold": threshold}),)
    bx = x * beta
    return (where(bx > threshold, g, g * sigmoid(bx)),)


@op(
    method="softplus",
    ref="nn.functional.softplus",
    cases=({}, {"beta": 2.0, "threshold": 3.0}),
)
def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    params = (
        {}
        if (beta == 1.0 and threshold == 20.0)
        else {"beta": float(beta), "threshold": float(threshold)}
    )
    return bind(softplus_p, (x,), params)


def _leaky_impl(x, negative_slope=0.01):
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


leaky_relu_p = Primitive(
    "leaky_relu", "elementwise", impl=_leaky_impl, abstract=_ew_abstract("leaky_relu")
)


@defvjp(leaky_relu_p)
def _leaky_vjp(g, out, x, negative_slope=0.01):
    return (where(x > 0, g, g * negative_slope),)


@op(
    method="leaky_relu",
    ref="nn.functional.leaky_relu",
    cases=({}, {"negative_slope": 0.1}),
    second_order=False,
)
def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    refuse_complex("leaky_relu", x)
    return bind(leaky_relu_p, (x,), {"negative_slope": float(negative_slope)})


def _elu_impl(x, alpha=1.0):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * x.dtype.type(alpha))


elu_p = Primitive("elu", "elementwise", impl=_elu_impl, abstract=_ew_abstract("elu"))


@defvjp(elu_p)
def _elu_vjp(g, out, x, alpha=1.0):
    return (where(x > 0, g, g * exp(minimum(x, 0.0)) * alpha),)


@op(method="elu", ref="nn.functional.elu", cases=({}, {"alpha": 0.7}))
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    refuse_complex("elu", x)
    return bind(elu_p, (x,), {"alpha": float(alpha)})


__all__ = module_ops(__name__)
