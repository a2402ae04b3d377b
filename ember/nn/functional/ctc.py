"""``ctc_loss``: the Connectionist Temporal Classification loss (Graves et al., 2006).

Two primitives: ``ctc_loss`` (the forward recursion over the blank-extended targets in log
space, vectorized over the batch and the target positions, one step per time frame) and
``ctc_loss_grad`` (its backward: the beta recursion, then the alpha-beta posterior of each
label). Both run in float64 internally and return the input's dtype.

The primitive's VJP is the exact derivative with respect to ``log_probs``. PyTorch's
gradient adds ``exp(log_probs)`` on every frame inside ``input_lengths`` (it assumes
``log_probs`` came from ``log_softmax``, whose backward cancels that term), so
:func:`ctc_loss` adds a term whose value is exactly zero and whose gradient is that, which
gives PyTorch's numbers for ``log_probs.grad`` (and the same gradient as the exact one on
the logits before a ``log_softmax``).

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> lp = ember.randn(6, 2, 4).log_softmax(2)
    >>> loss = F.ctc_loss(lp, ember.tensor([[1, 2], [3, 3]]), [6, 5], [2, 2])
    >>> loss.shape
    ember.Size([])
"""

from __future__ import annotations

import numpy as np

from ... import _creation as C
from ... import ops
from ...ops._ad import defvjp
from ...ops._core import SAVE_INPUTS, AbstractValue, Primitive, ShapeError, bind
from ...ops._samples import defsample

__all__ = ["ctc_loss"]


def _lse3(a, b, c):
    m = np.maximum(np.maximum(a, b), c)
    ms = np.where(np.isneginf(m), 0.0, m)
    with np.errstate(divide="ignore"):
        return ms + np.log(np.exp(a - ms) + np.exp(b - ms) + np.exp(c - ms))


def _shift(a, k: int, side: str):
    """``a`` moved ``k`` places along its last axis (towards higher indices for ``right``),
    filled with -inf."""
    out = np.full_like(a, -np.inf)
    if k < a.shape[-1]:
        if side == "right":
            out[..., k:] = a[..., : a.shape[-1] - k]
        else:
            out[..., : a.shape[-1] - k] = a[..., k:]
    return out


def _setup(lp, tg, il, tl, blank):
    """float64 log-probs, the blank-extended targets (N, 2S+1), their lengths and the
    per-position log-probs ``(T, N, 2S+1)``."""
    lp = lp.astype(np.float64)
    il = np.asarray(il, np.int64).reshape(-1)
    tl = np.asarray(tl, np.int64).reshape(-1)
    n = lp.shape[1]
    if tg.ndim == 1:  # concatenated targets
        s = int(tl.max()) if tl.size else 0
        padded = np.full((n, s), blank, np.int64)
        starts = np.concatenate(([0], np.cumsum(tl)[:-1])).astype(np.int64)
        for b in range(n):
            padded[b, : tl[b]] = tg[starts[b] : starts[b] + tl[b]]
        tg = padded
    s = tg.shape[1]
    ext = np.full((n, 2 * s + 1), blank, np.int64)
    keep = np.arange(s)[None, :] < tl[:, None]
    ext[:, 1::2] = np.where(keep, tg, blank)
    lens = 2 * tl + 1
    valid = np.arange(2 * s + 1)[None, :] < lens[:, None]
    lpe = lp[:, np.arange(n)[:, None], ext]  # (T, N, 2S+1)
    lpe = np.where(valid[None], lpe, -np.inf)
    # s-2 -> s is allowed onto a label that differs from the label two places back
    skip = (ext != blank) & (ext != np.concatenate([np.full((n, 2), -1), ext[:, :-2]], 1))
    return lp, ext, il, lens, lpe, skip


def _alpha(lpe, skip, il):
    t_max, n, s2 = lpe.shape
    la = np.full((t_max, n, s2), -np.inf)
    if t_max == 0:
        return la
    la[0, :, :2] = lpe[0, :, :2]
    for t in range(1, t_max):
        prev = la[t - 1]
        c = np.where(skip, _shift(prev, 2, "right"), -np.inf)
        la[t] = _lse3(prev, _shift(prev, 1, "right"), c) + lpe[t]
    return la


def _nll(la, il, lens):
    n = la.shape[1]
    out = np.empty(n)
    for b in range(n):
        if il[b] == 0:
            out[b] = 0.0 if lens[b] == 1 else np.inf
            continue
        last = la[il[b] - 1, b]
        tail = last[lens[b] - 2] if lens[b] > 1 else -np.inf
        out[b] = -np.logaddexp(last[lens[b] - 1], tail)
    return out


def _ctc_impl(lp, tg, il, tl, *, blank):
    _, _, il, lens, lpe, skip = _setup(lp, tg, il, tl, blank)
    return _nll(_alpha(lpe, skip, il), il, lens).astype(lp.dtype)


def _ctc_grad_impl(g, lp, tg, il, tl, *, blank):
    _, ext, il, lens, lpe, skip = _setup(lp, tg, il, tl, blank)
    t_max, n, s2 = lpe.shape
    la = _alpha(lpe, skip, il)
    nll = _nll(la, il, lens)
    lb = np.full((t_max, n, s2), -np.inf)
    skip_next = _shift(skip.astype(np.float64), 2, "left") > 0  # s -> s+2 allowed
    nxt = np.full((n, s2), -np.inf)
    rows = np.arange(n)
    for t in range(t_max - 1, -1, -1):
        c = np.where(skip_next, _shift(nxt, 2, "left"), -np.inf)
        cur = _lse3(nxt, _shift(nxt, 1, "left"), c) + lpe[t]
        start = il - 1 == t  # the last frame of these sequences: the two end states
        init = np.full((n, s2), -np.inf)
        init[rows, lens - 1] = lpe[t, rows, lens - 1]
        two = lens > 1
        init[rows[two], lens[two] - 2] = lpe[t, rows[two], lens[two] - 2]
        cur = np.where(start[:, None], init, np.where((t < il)[:, None], cur, -np.inf))
        lb[t] = cur
        nxt = cur
    # log of the probability of the paths through (t, s), over the total: every path
    # crosses exactly one s per frame, so nothing that matters underflows
    with np.errstate(invalid="ignore", over="ignore"):
        post = np.exp(la + lb - lpe + nll[None, :, None])
    onehot = np.zeros((n, s2, lp.shape[2]))
    onehot[rows[:, None], np.arange(s2)[None, :], ext] = 1.0
    grad = -np.einsum("tns,nsc->tnc", np.where(np.isfinite(la + lb), post, 0.0), onehot)
    g = np.asarray(g, np.float64).reshape(-1) * np.ones(n)
    grad[:, np.isinf(nll)] = np.nan  # no alignment: the derivative does not exist
    grad *= g.reshape(1, n, 1)
    grad[:, g == 0.0] = 0.0  # sequences masked out downstream (zero_infinity) stay finite
    grad[np.arange(t_max)[:, None] >= il[None, :]] = 0.0
    return grad.astype(lp.dtype)


def _ctc_abstract(lp, tg, il, tl, **params):
    if lp.ndim != 3:
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C), got {lp.shape}")
    return AbstractValue((lp.shape[1],), lp.dtype)


ctc_loss_p = Primitive(
    "ctc_loss", "opaque", impl=_ctc_impl, abstract=_ctc_abstract, save=SAVE_INPUTS
)
ctc_loss_grad_p = Primitive(
    "ctc_loss_grad",
    "opaque",
    impl=_ctc_grad_impl,
    abstract=lambda g, lp, tg, il, tl, **params: AbstractValue(lp.shape, lp.dtype),
    save=SAVE_INPUTS,
    nondiff=True,
)


@defvjp(ctc_loss_p)
def _ctc_vjp(g, out, lp, tg, il, tl, *, blank):
    return bind(ctc_loss_grad_p, (g, lp, tg, il, tl), {"blank": blank}), None, None, None


def _ctc_sample():
    rng = np.random.default_rng(0)
    lp = C.tensor(np.log(rng.dirichlet(np.ones(4), size=(5, 2))))
    tg = C.tensor(np.array([[1, 2, 2], [3, 1, 0]]))
    il, tl = C.tensor(np.array([5, 4])), C.tensor(np.array([3, 2]))
    flat = C.tensor(np.array([1, 2, 2, 3, 1]))
    return [
        ((lp, tg, il, tl), {"blank": 0}),
        ((lp, flat, il, tl), {"blank": 3}),
    ]


def _ctc_grad_sample():
    (args, params), _ = _ctc_sample()
    return [((C.tensor(np.array([1.0, 0.5])),) + args, params)]


defsample(ctc_loss_p, _ctc_sample)
defsample(ctc_loss_grad_p, _ctc_grad_sample)


def _lengths(v, n: int, name: str, op: str) -> np.ndarray:
    from ..._tensor import Tensor

    if isinstance(v, Tensor):
        if v.dtype.is_floating_point or v.dtype.name == "bool":
            raise TypeError(f"{op}: {name} must be integers, got dtype {v.dtype}")
        a = v.detach().numpy().astype(np.int64).reshape(-1)
    else:
        a = np.asarray(v if isinstance(v, (list, tuple)) else [v], np.int64).reshape(-1)
    if a.shape[0] != n:
        raise ShapeError(f"{op}: {name} must have {n} entries (the batch size), got {a.shape[0]}")
    if a.size and a.min() < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {a.tolist()}")
    return a


def ctc_loss(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
):
    """CTC loss of ``log_probs`` ``(T, N, C)`` (log-softmax outputs; ``(T, C)`` unbatched)
    against ``targets``: padded ``(N, S)`` or concatenated 1-D (``sum(target_lengths)``).

    ``reduction='mean'`` divides each loss by its target length (at least 1) and averages
    over the batch; ``zero_infinity`` zeroes impossible alignments' losses and gradients.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> lp = ember.full((3, 1, 2), 0.5).log()
        >>> round(float(F.ctc_loss(lp, ember.tensor([[1]]), [3], [1], reduction="sum")), 4)
        0.2877
    """
    op = "ctc_loss"
    from ..._tensor import Tensor

    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: {reduction} is not a valid value for reduction")
    if not isinstance(log_probs, Tensor) or not isinstance(targets, Tensor):
        raise TypeError(f"{op}: log_probs and targets must be Tensors")
    if not log_probs.dtype.is_floating_point:
        raise TypeError(f"{op}: log_probs must be floating point, got {log_probs.dtype}")
    if targets.dtype.is_floating_point or targets.dtype.name == "bool":
        raise TypeError(f"{op}: targets must be integers, got dtype {targets.dtype}")
    unbatched = log_probs.ndim == 2
    if unbatched:  # 1-D targets then read as the one sequence's (concatenated) labels
        log_probs = log_probs.unsqueeze(1)
    if log_probs.ndim != 3:
        raise ShapeError(f"{op}: log_probs must be (T, N, C) or (T, C), got {log_probs.shape}")
    t_max, n, c = log_probs.shape
    if log_probs.numel() == 0:
        raise ValueError(f"{op}: log_probs tensor must not be empty, got {log_probs.shape}")
    if not 0 <= int(blank) < c:
        raise ValueError(f"{op}: blank must be in label range [0, {c}), got {blank}")
    il = _lengths(input_lengths, n, "input_lengths", op)
    tl = _lengths(target_lengths, n, "target_lengths", op)
    if il.size and il.max() > t_max:
        raise ValueError(
            f"{op}: expected input_lengths to be at most the input length {t_max}, got "
            f"{il.tolist()}"
        )
    tg = targets.detach().numpy()
    if targets.ndim == 2:
        if targets.shape[0] != n:
            raise ShapeError(f"{op}: padded targets must be (N={n}, S), got {targets.shape}")
        if tl.size and tl.max() > targets.shape[1]:
            raise ValueError(
                f"{op}: target_lengths {tl.tolist()} exceed the padded target length "
                f"{targets.shape[1]}"
            )
        used = tg[np.arange(targets.shape[1])[None, :] < tl[:, None]]
    elif targets.ndim == 1:
        if int(tl.sum()) != targets.shape[0]:
            raise ValueError(
                f"{op}: concatenated targets have {targets.shape[0]} entries but "
                f"target_lengths sum to {int(tl.sum())}"
            )
        used = tg
    else:
        raise ShapeError(f"{op}: targets must be 1-D or 2-D, got {targets.shape}")
    if used.size and (used.min() < 0 or used.max() >= c):
        raise IndexError(f"{op}: target labels must be in [0, {c}), got {np.unique(used)}")
    nll = bind(
        ctc_loss_p, (log_probs, targets.long(), C.tensor(il), C.tensor(tl)), {"blank": int(blank)}
    )
    # PyTorch's log_probs gradient: + exp(log_probs) on each sequence's frames (a zero value)
    frames = C.from_numpy(np.arange(t_max)[:, None, None] < il[None, :, None])
    e = ops.where(frames, log_probs.exp(), 0.0).sum((0, 2))
    compat = e - e.detach()
    if zero_infinity:
        # impossible alignments: loss 0 and no gradient at all (PyTorch's zero_infinity)
        impossible = ops.isinf(nll.detach())
        nll = ops.where(impossible, 0.0, nll + compat)
    else:
        nll = nll + compat
    if reduction == "none":
        return nll.squeeze(0) if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    div = C.from_numpy(np.maximum(tl, 1).astype(log_probs._data.dtype))
    return (nll / div).mean()
