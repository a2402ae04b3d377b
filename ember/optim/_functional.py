"""The optimizer math: one pure function per algorithm, on top of one in-place primitive each.

Each algorithm is a :class:`~ember.ops.Primitive` of kind ``"inplace"`` whose kernel updates the
parameter and its state arrays in place with NumPy ``out=`` arguments (no fresh allocations
beyond a reused scratch buffer), so that a training step costs a handful of whole-array ops.
Going through :func:`~ember.ops.bind` keeps the update visible to tracers (the step is captured
as an effect on the parameter, not baked in as constants).

The order of floating-point operations follows PyTorch's single-tensor implementations
(``torch/optim/{sgd,adam,rmsprop,adagrad}.py``) so that runs match it closely in float32.

The functions take ember Tensors (parameters, gradients and state tensors) and hyperparameters
as keyword arguments, mirroring ``torch.optim._functional``.
"""

from __future__ import annotations

import threading

import numpy as np

from ..backends.cpu import FAST_FLOATS, axpby, axpy
from ..ops._core import SAVE_NONE, AbstractValue, Primitive, _state, bind

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd"]

# Scratch buffers reused across steps (fresh large allocations cost about 2x here), keyed by
# (shape, dtype, slot), one set per thread: within a thread kernels run one at a time, so a
# buffer is never used by two updates at once.
_TLS = threading.local()


def _scratch(like, slot=0):
    d = getattr(_TLS, "bufs", None)
    if d is None:
        d = _TLS.bufs = {}
    key = (like.shape, like.dtype, slot)
    buf = d.get(key)
    if buf is None:
        if len(d) > 256:
            d.clear()
        buf = np.empty_like(like)
        d[key] = buf
    return buf


def _same_aval(p, *rest, **params):
    return AbstractValue(p.shape, p.dtype)


def _grad_in(g, p, maximize, weight_decay):
    """``g`` after maximize / L2 weight decay (a scratch copy when modified, never in place)."""
    if maximize:
        t = _scratch(p, 1)
        np.negative(g, out=t)
        g = t
    if weight_decay != 0:
        t = _scratch(p, 1)
        w = _scratch(p, 2)
        np.multiply(p, weight_decay, out=w)
        np.add(g, w, out=t)
        g = t
    return g


# ---------------------------------------------------------------------------------------------
# SGD
def _sgd_impl(p, g, buf, lr, momentum, dampening, nesterov, maximize, weight_decay, init_buf):
    # Passes over memory per step (momentum, no weight decay): buf = g + momentum * buf and
    # p += -lr * buf, one fused BLAS ?axpby each on large contiguous arrays (PyTorch: 3).
    g = _grad_in(g, p, maximize, weight_decay)
    tmp = _scratch(p, 0)
    if momentum != 0:
        if init_buf:
            np.copyto(buf, g)
        else:
            axpby(1 - dampening, g, momentum, buf, tmp)
        if nesterov:
            np.multiply(buf, momentum, out=tmp)
            np.add(g, tmp, out=tmp)
            g = tmp
        else:
            g = buf
    axpy(-lr, g, p, tmp)
    return p


# SGD step, in place on (param, momentum_buffer).
sgd_update_p = Primitive(
    "sgd_update",
    "inplace",
    impl=_sgd_impl,
    abstract=_same_aval,
    save=SAVE_NONE,
    nondiff=True,
)


def sgd(
    params,
    grads,
    momentum_buffer_list,
    *,
    lr,
    weight_decay=0.0,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    maximize=False,
):
    """SGD with momentum (PyTorch's formulation)::

        g = -grad if maximize else grad;  g += weight_decay * p
        buf = g (first step) | momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
        p -= lr * g

    ``momentum_buffer_list[i]`` may be None; it is then created (and stored in the list).
    """
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        for i, p in enumerate(params):
            buf = momentum_buffer_list[i] if momentum != 0 else None
            init = False
            if momentum != 0 and buf is None:
                buf = _empty_like(p)
                momentum_buffer_list[i] = buf
                init = True
            bind(
                sgd_update_p,
                (p, grads[i], buf),
                {
                    "lr": lr,
                    "momentum": momentum,
                    "dampening": dampening,
                    "nesterov": nesterov,
                    "maximize": maximize,
                    "weight_decay": weight_decay,
                    "init_buf": init,
                },
            )
            p._version[0] += 1
            if buf is not None:
                buf._version[0] += 1
    finally:
        _state.grad_enabled = prev


# ---------------------------------------------------------------------------------------------
# Adam / AdamW
# work units per element of the fused Adam step for parallel_kernel: 7 arrays' worth of memory
# traffic and a square root and a division; two threads gain from ~64K elements (2-core AMD
# EPYC, us, serial -> blocks: 100K 44 -> 33 warm)
_ADAM_COST = 16


def _adam_jit(
    p, g, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, maximize, decoupled
):
    """The fused Adam kernel of the [jit] extra: one pass instead of nine (None when it does
    not apply: no numba, other dtypes or layouts)."""
    arrays = (p, g, exp_avg, exp_avg_sq)
    if p.dtype not in FAST_FLOATS or any(
        type(a) is not np.ndarray or a.dtype != p.dtype or not a.flags.c_contiguous for a in arrays
    ):
        return None
    from ..backends import jit
    from ..ops._parallel import parallel_kernel

    # a large parameter's update on numba's threads (the same bits as the serial build)
    k = parallel_kernel("adam_step_blocks", p.size * _ADAM_COST) or jit.get("adam_step_blocks")
    if k is None:
        return None
    t = p.dtype.type
    bc1 = 1 - beta1**step
    bc2 = 1 - beta2**step
    k(
        p.reshape(-1),
        g.reshape(-1),
        exp_avg.reshape(-1),
        exp_avg_sq.reshape(-1),
        t(1 - beta1),
        t(beta2),
        t(1 - beta2),
        t(lr / bc1),
        t(bc2**0.5),
        t(eps),
        t(0 if decoupled else weight_decay),
        t(1 - lr * weight_decay if decoupled else 1),
        bool(maximize),
    )
    return p


def _adam_impl(
    p,
    g,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    step_t,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    amsgrad,
    maximize,
    decoupled,
):
    step_t += 1
    step = float(step_t)
    if (
        not amsgrad
        and _adam_jit(
            p,
            g,
            exp_avg,
            exp_avg_sq,
            step,
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            maximize,
            decoupled,
        )
        is not None
    ):
        return p
    if weight_decay != 0 and decoupled:
        np.multiply(p, 1 - lr * weight_decay, out=p)
        g = _grad_in(g, p, maximize, 0)
    else:
        g = _grad_in(g, p, maximize, weight_decay)
    tmp = _scratch(p, 0)
    # 9 passes over memory (PyTorch: 7) with fused BLAS ?axpby for the three a*x + b*y.
    # exp_avg.lerp_(g, 1 - beta1): exp_avg += (1 - beta1) * (g - exp_avg)
    np.subtract(g, exp_avg, out=tmp)
    axpy(1 - beta1, tmp, exp_avg, tmp2 := _scratch(p, 3))
    # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    np.multiply(g, g, out=tmp)
    axpby(1 - beta2, tmp, beta2, exp_avg_sq, tmp2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        np.sqrt(max_exp_avg_sq, out=tmp)
    else:
        np.sqrt(exp_avg_sq, out=tmp)
    np.divide(tmp, bias_correction2_sqrt, out=tmp)
    np.add(tmp, eps, out=tmp)
    # p.addcdiv_(exp_avg, denom, value=-step_size)
    np.divide(exp_avg, tmp, out=tmp)
    axpy(-step_size, tmp, p, tmp2)
    return p


# Adam/AdamW step, in place on (param, exp_avg, exp_avg_sq, max_exp_avg_sq, step).
adam_update_p = Primitive(
    "adam_update",
    "inplace",
    impl=_adam_impl,
    abstract=_same_aval,
    save=SAVE_NONE,
    nondiff=True,
)


def adam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled_weight_decay=False,
):
    """Adam (``decoupled_weight_decay=True``: AdamW)::

    g = -grad if maximize else grad
    AdamW: p *= 1 - lr * weight_decay       Adam: g += weight_decay * p
    m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
    vmax = max(vmax, v) if amsgrad
    p -= lr / (1 - beta1**t) * m / (sqrt(v or vmax) / sqrt(1 - beta2**t) + eps)
    """
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        for i, p in enumerate(params):
            mx = max_exp_avg_sqs[i] if amsgrad else None
            bind(
                adam_update_p,
                (p, grads[i], exp_avgs[i], exp_avg_sqs[i], mx, state_steps[i]),
                {
                    "lr": lr,
                    "beta1": beta1,
                    "beta2": beta2,
                    "eps": eps,
                    "weight_decay": weight_decay,
                    "amsgrad": amsgrad,
                    "maximize": maximize,
                    "decoupled": decoupled_weight_decay,
                },
            )
            p._version[0] += 1
            exp_avgs[i]._version[0] += 1
            exp_avg_sqs[i]._version[0] += 1
            state_steps[i]._version[0] += 1
    finally:
        _state.grad_enabled = prev


def adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, **kw):
    """AdamW: Adam with decoupled weight decay (see :func:`adam`)."""
    adam(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        state_steps,
        decoupled_weight_decay=True,
        **kw,
    )


# ---------------------------------------------------------------------------------------------
# RMSprop
def _rmsprop_impl(
    p,
    g,
    square_avg,
    grad_avg,
    buf,
    step_t,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
):
    step_t += 1
    g = _grad_in(g, p, maximize, weight_decay)
    tmp = _scratch(p, 0)
    np.multiply(square_avg, alpha, out=square_avg)
    np.multiply(g, 1 - alpha, out=tmp)
    np.multiply(tmp, g, out=tmp)
    np.add(square_avg, tmp, out=square_avg)
    if centered:
        np.subtract(g, grad_avg, out=tmp)
        np.multiply(tmp, 1 - alpha, out=tmp)
        np.add(grad_avg, tmp, out=grad_avg)
        np.multiply(grad_avg, grad_avg, out=tmp)
        np.subtract(square_avg, tmp, out=tmp)
        np.sqrt(tmp, out=tmp)
    else:
        np.sqrt(square_avg, out=tmp)
    np.add(tmp, eps, out=tmp)
    np.divide(g, tmp, out=tmp)
    if momentum > 0:
        np.multiply(buf, momentum, out=buf)
        np.add(buf, tmp, out=buf)
        np.multiply(buf, -lr, out=tmp)
    else:
        np.multiply(tmp, -lr, out=tmp)
    np.add(p, tmp, out=p)
    return p


# RMSprop step, in place on (param, square_avg, grad_avg, momentum_buffer, step).
rmsprop_update_p = Primitive(
    "rmsprop_update",
    "inplace",
    impl=_rmsprop_impl,
    abstract=_same_aval,
    save=SAVE_NONE,
    nondiff=True,
)


def rmsprop(
    params,
    grads,
    square_avgs,
    grad_avgs,
    momentum_buffer_list,
    state_steps,
    *,
    lr,
    alpha,
    eps,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    """RMSprop::

    g = (-grad if maximize else grad) + weight_decay * p
    v = alpha * v + (1 - alpha) * g * g
    centered: ga = lerp(ga, g, 1 - alpha); avg = sqrt(v - ga * ga) + eps
    else:     avg = sqrt(v) + eps
    momentum: buf = momentum * buf + g / avg; p -= lr * buf
    else:     p -= lr * g / avg
    """
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        for i, p in enumerate(params):
            ga = grad_avgs[i] if centered else None
            buf = momentum_buffer_list[i] if momentum > 0 else None
            bind(
                rmsprop_update_p,
                (p, grads[i], square_avgs[i], ga, buf, state_steps[i]),
                {
                    "lr": lr,
                    "alpha": alpha,
                    "eps": eps,
                    "weight_decay": weight_decay,
                    "momentum": momentum,
                    "centered": centered,
                    "maximize": maximize,
                },
            )
            p._version[0] += 1
            square_avgs[i]._version[0] += 1
    finally:
        _state.grad_enabled = prev


# ---------------------------------------------------------------------------------------------
# Adagrad
def _adagrad_impl(p, g, state_sum, step_t, lr, lr_decay, eps, weight_decay, maximize):
    step_t += 1
    step = float(step_t)
    g = _grad_in(g, p, maximize, weight_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    tmp = _scratch(p, 0)
    np.multiply(g, g, out=tmp)
    np.add(state_sum, tmp, out=state_sum)
    np.sqrt(state_sum, out=tmp)
    np.add(tmp, eps, out=tmp)
    np.divide(g, tmp, out=tmp)
    np.multiply(tmp, -clr, out=tmp)
    np.add(p, tmp, out=p)
    return p


# Adagrad step, in place on (param, sum, step).
adagrad_update_p = Primitive(
    "adagrad_update",
    "inplace",
    impl=_adagrad_impl,
    abstract=_same_aval,
    save=SAVE_NONE,
    nondiff=True,
)


def adagrad(
    params,
    grads,
    state_sums,
    state_steps,
    *,
    lr,
    weight_decay=0.0,
    lr_decay=0.0,
    eps=1e-10,
    maximize=False,
):
    """Adagrad::

    g = (-grad if maximize else grad) + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s += g * g;  p -= clr * g / (sqrt(s) + eps)
    """
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        for i, p in enumerate(params):
            bind(
                adagrad_update_p,
                (p, grads[i], state_sums[i], state_steps[i]),
                {
                    "lr": lr,
                    "lr_decay": lr_decay,
                    "eps": eps,
                    "weight_decay": weight_decay,
                    "maximize": maximize,
                },
            )
            p._version[0] += 1
            state_sums[i]._version[0] += 1
    finally:
        _state.grad_enabled = prev


def _empty_like(p):
    from .._creation import zeros_like

    return zeros_like(p)
