"""Loss functions with PyTorch semantics (``reduction`` = 'none' | 'mean' | 'sum')."""

from __future__ import annotations

import warnings

from ... import ops
from ...ops._core import ShapeError, bind
from ...ops.complex_refuse import refuse_complex
from ...ops.nn import cross_entropy_p, nll_loss_p

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "pairwise_distance",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
]

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction, op, size_average=None, reduce=None, extra=()):
    if size_average is not None or reduce is not None:
        sa = True if size_average is None else size_average
        rd = True if reduce is None else reduce
        reduction = "none" if not rd else ("mean" if sa else "sum")
    if reduction not in _REDUCTIONS + tuple(extra):
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_same(input, target, op):
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(
            f"{op}: target size {tuple(target.shape)} must be the same as input "
            f"size {tuple(input.shape)}"
        )


def _check_broadcast(input, target, op):
    # PyTorch's regression losses broadcast a target of another size with a UserWarning; sizes
    # that do not broadcast are an error naming the loss (not the subtraction inside it)
    from ...ops.elementwise import broadcast_shapes

    if not hasattr(target, "shape") or tuple(input.shape) == tuple(target.shape):
        return
    a, b = tuple(input.shape), tuple(target.shape)
    try:
        broadcast_shapes(a, b, op=op)
    except ValueError:
        raise ShapeError(f"{op}: target size {b} does not broadcast with input size {a}") from None
    warnings.warn(
        f"{op}: using a target size {b} that is different to the input size {a}. This will "
        "likely lead to incorrect results due to broadcasting. Please ensure they have the "
        "same size.",
        UserWarning,
        stacklevel=3,
    )


def _class_args(input, target, weight, op):
    if input.ndim < 1:
        raise ShapeError(f"{op}: input must have at least 1 dim, got a scalar")
    unbatched = input.ndim == 1
    if unbatched:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    n, c = input.shape[:2]
    exp = (n,) + tuple(input.shape[2:])
    if tuple(target.shape) != exp:
        raise ShapeError(
            f"{op}: expected target of shape {exp} for input of shape "
            f"{tuple(input.shape)}, got {tuple(target.shape)}"
        )
    if weight is not None and tuple(weight.shape) != (c,):
        raise ShapeError(f"{op}: weight should have shape ({c},), got {tuple(weight.shape)}")
    if weight is not None and weight.requires_grad:
        weight = weight.detach()
    return input, target, weight, unbatched


def _check_targets(target, c, ignore_index, op):
    t = target._data
    if t.size:
        bad = (t < 0) | (t >= c)
        if ignore_index is not None:
            bad &= t != ignore_index
        if bad.any():
            hint = "" if ignore_index is None else f" (ignore_index={ignore_index})"
            raise IndexError(
                f"{op}: target {int(t[bad].flat[0])} is out of bounds for {c} classes{hint}"
            )


def _float_input(input, op: str) -> None:
    # PyTorch's kernels are for floating inputs only (an int64 input is refused, not promoted)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")


def nll_loss(
    input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"
):
    refuse_complex("nll_loss", input)
    op = "nll_loss"
    _float_input(input, op)
    reduction = _reduction(reduction, op, size_average, reduce)
    input, target, weight, unbatched = _class_args(input, target, weight, op)
    if target._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected target of integer (class index) dtype, got {target.dtype}")
    _check_targets(target, input.shape[1], ignore_index, op)
    args = (input, target) + ((weight,) if weight is not None else ())
    out = bind(nll_loss_p, args, {"ignore_index": int(ignore_index), "reduction": reduction})
    return out.squeeze(0) if unbatched and reduction == "none" else out


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
):
    """Cross entropy over (N, C, d1, ...) logits with class-index or class-probability
    targets (fused log-softmax + nll for class indices).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> logits = ember.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
        >>> round(F.cross_entropy(logits, ember.tensor([0, 2])).item(), 4)
        0.1672
        >>> F.cross_entropy(logits, ember.tensor([0, 2]), reduction="none").shape
        ember.Size([2])
    """
    refuse_complex("cross_entropy", input)
    op = "cross_entropy"
    _float_input(input, op)
    reduction = _reduction(reduction, op, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
        )
    if target.dtype.is_floating_point:  # class probabilities (bfloat16 included)
        if ignore_index != -100:  # PyTorch refuses it rather than ignore nothing
            raise ValueError(
                f"{op}: ignore_index is not supported for floating point (class probability) "
                f"target, got ignore_index={ignore_index}"
            )
        if tuple(target.shape) != tuple(input.shape):
            raise ShapeError(
                f"{op}: probability target of shape {tuple(target.shape)} must "
                f"match input of shape {tuple(input.shape)}"
            )
        cdim = 0 if input.ndim == 1 else 1
        c = input.shape[cdim]
        if label_smoothing > 0:
            target = target * (1.0 - label_smoothing) + label_smoothing / c
        logp = ops.log_softmax(input, cdim)
        if weight is not None:
            wshape = (c,) + (1,) * (input.ndim - cdim - 1)
            logp = logp * weight.reshape(wshape)
        loss = -(logp * target).sum(cdim)
        if reduction == "mean":
            return (
                loss.sum() / (loss.numel() if loss.numel() else float("nan")) if loss.ndim else loss
            )
        return _reduce(loss, reduction)
    if target._data.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: expected a target of integer (class index) or floating point (class "
            f"probability) dtype, got {target.dtype}"
        )
    input, target, weight, unbatched = _class_args(input, target, weight, op)
    c = input.shape[1]
    _check_targets(target, c, ignore_index, op)
    args = (input, target) + ((weight,) if weight is not None else ())
    p = {"ignore_index": int(ignore_index), "reduction": reduction}
    if label_smoothing != 0:  # fused in the kernels: (1 - e) nll + e / C * sum_j w_j (-logp_j)
        p["label_smoothing"] = float(label_smoothing)
    out = bind(cross_entropy_p, args, p)
    return out.squeeze(0) if unbatched and reduction == "none" else out


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    refuse_complex("mse_loss", input)
    reduction = _reduction(reduction, "mse_loss", size_average, reduce)
    _check_broadcast(input, target, "mse_loss")
    d = input - target
    return _weighted_reduce(d * d, weight, reduction, "mse_loss")


def _weighted_reduce(loss, weight, reduction, op):
    # PyTorch's weighted mean is a weighted average: sum(w * loss) / sum(w)
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(loss.shape):
        raise ShapeError(
            f"{op}: weight must have the shape of the input, got {tuple(weight.shape)} "
            f"and {tuple(loss.shape)}"
        )
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(reduction, "l1_loss", size_average, reduce)
    _check_broadcast(input, target, "l1_loss")
    return _weighted_reduce(ops.abs(input - target), weight, reduction, "l1_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    refuse_complex("smooth_l1_loss", input)
    reduction = _reduction(reduction, "smooth_l1_loss", size_average, reduce)
    _check_broadcast(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError("smooth_l1_loss: beta must be non-negative")
    d = ops.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(ops.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    refuse_complex("huber_loss", input)
    reduction = _reduction(reduction, "huber_loss")
    _check_broadcast(input, target, "huber_loss")
    d = ops.abs(input - target)
    loss = ops.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
):
    op = "binary_cross_entropy"
    reduction = _reduction(reduction, op, size_average, reduce)
    _check_same(input, target, op)
    d = input._data
    if d.size and ((d < 0) | (d > 1)).any():
        raise ValueError(f"{op}: all elements of input should be between 0 and 1")
    # PyTorch's input gradient is (x - t) / max(x (1 - x), 1e-12): finite at x = 0 or 1 (a
    # saturated sigmoid), where the logs' chain rule gives 0 * inf = nan. Inside, the plain
    # formula (its exact derivative); on the edge, the clamped logs' value (detached) plus a
    # zero-valued term that carries that gradient.
    edge = (input * (1.0 - input)).detach() < 1e-12
    xs = ops.where(edge, 0.5, input)
    inner = -(target * ops.log(xs) + (1.0 - target) * ops.log(1.0 - xs))
    xd = input.detach()
    lo = ops.clamp_min(ops.log(xd), -100.0)
    l1 = ops.clamp_min(ops.log(1.0 - xd), -100.0)
    outer = -(target * lo + (1.0 - target) * l1) + (input - xd) * ((xd - target) / 1e-12).detach()
    loss = ops.where(edge, outer, inner)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None
):
    refuse_complex("binary_cross_entropy_with_logits", input)
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(reduction, op, size_average, reduce)
    _check_same(input, target, op)
    # (1 - t) x + lw * softplus(-x),  lw = 1 + (pos_weight - 1) t
    sp = ops.softplus(-input)
    if pos_weight is not None:
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * sp
    else:
        loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    refuse_complex("kl_div", input)
    op = "kl_div"
    reduction = _reduction(reduction, op, size_average, reduce, extra=("batchmean",))
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        safe = ops.where(
            target > 0,
            target,
            ops.ones_like(target) if hasattr(ops, "ones_like") else target * 0.0 + 1.0,
        )
        loss = ops.where(target > 0, target * ops.log(safe), target * 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    refuse_complex("cosine_similarity", x1, x2)
    x1, x2 = ops.broadcast_tensors(x1, x2)
    n1 = ops.clamp_min(ops.norm(x1, 2, dim, keepdim=True), eps)
    n2 = ops.clamp_min(ops.norm(x2, 2, dim, keepdim=True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    return ops.norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def cosine_embedding_loss(
    input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"
):
    reduction = _reduction(reduction, "cosine_embedding_loss", size_average, reduce)
    cos = cosine_similarity(input1, input2, dim=-1, eps=1e-12)
    loss = ops.where(target > 0, 1.0 - cos, ops.clamp_min(cos - margin, 0.0))
    return _reduce(loss, reduction)


def margin_ranking_loss(
    input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"
):
    refuse_complex("margin_ranking_loss", input1, input2)
    reduction = _reduction(reduction, "margin_ranking_loss", size_average, reduce)
    return _reduce(ops.clamp_min(-target * (input1 - input2) + margin, 0.0), reduction)


def hinge_embedding_loss(
    input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"
):
    refuse_complex("hinge_embedding_loss", input)
    reduction = _reduction(reduction, "hinge_embedding_loss", size_average, reduce)
    loss = ops.where(target == 1, input, input * 0.0) + ops.where(
        target == -1, ops.clamp_min(margin - input, 0.0), input * 0.0
    )
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(reduction, "soft_margin_loss", size_average, reduce)
    z = -target * input
    if z.is_complex():  # log(1 + exp(z)) as PyTorch computes it (softplus is real-only)
        return _reduce(ops.log1p(ops.exp(z)), reduction)
    return _reduce(ops.softplus(z), reduction)


def multilabel_soft_margin_loss(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
):
    refuse_complex("multilabel_soft_margin_loss", input)
    reduction = _reduction(reduction, "multilabel_soft_margin_loss", size_average, reduce)
    loss = -(target * -ops.softplus(-input) + (1.0 - target) * -ops.softplus(input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.mean(-1), reduction)


def multi_margin_loss(
    input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"
):
    op = "multi_margin_loss"
    reduction = _reduction(reduction, op, size_average, reduce)
    from ...ops.indexing import one_hot

    if input.ndim not in (1, 2) or tuple(target.shape) != tuple(input.shape[:-1]):
        raise ShapeError(
            f"{op}: expected input (N, C) or (C,) with target (N,) or (), got input "
            f"{tuple(input.shape)} and target {tuple(target.shape)}"
        )
    if target._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected target of integer (class index) dtype, got {target.dtype}")
    c = input.shape[-1]
    _check_targets(target, c, None, op)
    oh = one_hot(target, c).to(input.dtype)
    xt = (input * oh).sum(-1, keepdim=True)
    m = ops.clamp_min(input - xt + margin, 0.0)
    if p == 2:
        m = m * m
    if weight is not None:
        m = m * (oh * weight).sum(-1, keepdim=True)
    loss = (m * (1.0 - oh)).sum(-1) / c
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input,
    target,
    log_input=True,
    full=False,
    size_average=None,
    eps=1e-8,
    reduce=None,
    reduction="mean",
):
    reduction = _reduction(reduction, "poisson_nll_loss", size_average, reduce)
    if log_input:
        loss = ops.exp(input) - target * input
    else:
        loss = input - target * ops.log(input + eps)
    if full:
        import math

        st = (
            target * ops.log(ops.where(target > 1, target, target * 0.0 + 1.0))
            - target
            + ops.log(target * 2 * math.pi + (target <= 1).to(target.dtype)) * 0.5
        )
        loss = loss + ops.where(target > 1, st, st * 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    reduction = _reduction(reduction, "gaussian_nll_loss")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape)[:-1] == tuple(var.shape):  # one variance per sample
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape)[:-1] == tuple(var.shape)[:-1] and var.shape[-1] == 1):
            raise ValueError(
                f"gaussian_nll_loss: var of shape {tuple(var.shape)} does not fit input "
                f"of shape {tuple(input.shape)}"
            )
    if bool((var.detach() < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    # clamped without grad, as PyTorch: the gradient reaches var even where it is < eps
    v = var + (ops.clamp_min(var.detach(), eps) - var.detach())
    loss = (ops.log(v) + (input - target) ** 2 / v) * 0.5
    if full:
        import math

        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def triplet_margin_loss(
    anchor,
    positive,
    negative,
    margin=1.0,
    p=2,
    eps=1e-6,
    swap=False,
    size_average=None,
    reduce=None,
    reduction="mean",
):
    reduction = _reduction(reduction, "triplet_margin_loss", size_average, reduce)
    dp = pairwise_distance(anchor, positive, p, eps)
    dn = pairwise_distance(anchor, negative, p, eps)
    if swap:
        dn = ops.minimum(dn, pairwise_distance(positive, negative, p, eps))
    return _reduce(ops.clamp_min(dp - dn + margin, 0.0), reduction)
