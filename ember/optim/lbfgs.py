"""L-BFGS (``torch.optim.LBFGS``): a quasi-Newton method that re-evaluates the model
through a closure, with an optional strong-Wolfe line search.

The iteration follows PyTorch's (same defaults, first step, history update rule, stopping
tests and line search), so iterates agree with it to rounding.
"""

from __future__ import annotations

import math

from .._tensor import Tensor
from ..autograd.grad_mode import enable_grad, no_grad
from ..ops.shape import cat
from .optimizer import Optimizer

__all__ = ["LBFGS"]


def _dot(a: Tensor, b: Tensor) -> float:
    return float((a * b).sum())


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clamped
    to ``bounds`` (default: between x1 and x2); the midpoint when the cubic has none."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(disc)
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Line search for a step ``t`` along ``d`` satisfying the strong Wolfe conditions
    (Nocedal & Wright, algorithms 3.5 and 3.6): bracket, then zoom by cubic interpolation.
    ``evaluate(t)`` returns ``(loss, flat gradient)`` at ``x + t d``. Returns
    ``(loss, gradient, t, evaluations)``."""
    d_norm = float(d.abs().max())
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = _dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    it = 0
    # bracketing: grow the step until an interval must contain an acceptable point
    while it < max_ls:
        if f_new > f + c1 * t * gtd or (it > 1 and f_new >= f_prev):
            pts = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        if abs(gtd_new) <= -c2 * gtd:
            pts = [[t, f_new, g_new, gtd_new]]
            done = True
            break
        if gtd_new >= 0:
            pts = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        lo_step, hi_step = t + 0.01 * (t - t_prev), t * 10
        t_next = _cubic_minimum(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, (lo_step, hi_step))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _dot(g_new, d)
        it += 1
    if it == max_ls:
        pts = [[0.0, f, g, gtd], [t, f_new, g_new, gtd_new]]
    # zoom: shrink the bracket; ``low`` is the end with the lower loss
    low, high = (0, 1) if pts[0][1] <= pts[-1][1] else (1, 0)
    stalled = False
    while not done and it < max_ls:
        a, b = pts[0][0], pts[1][0]
        if abs(b - a) * d_norm < tolerance_change:
            break
        t = _cubic_minimum(a, pts[0][1], pts[0][3], b, pts[1][1], pts[1][3])
        # keep away from the bracket's ends, unless the last step already did
        lo, hi = min(a, b), max(a, b)
        margin = 0.1 * (hi - lo)
        if min(hi - t, t - lo) < margin:
            if stalled or t >= hi or t <= lo:
                t = hi - margin if abs(t - hi) < abs(t - lo) else lo + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _dot(g_new, d)
        it += 1
        if f_new > f + c1 * t * gtd or f_new >= pts[low][1]:
            pts[high] = [t, f_new, g_new, gtd_new]
            low, high = (0, 1) if pts[0][1] <= pts[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (pts[high][0] - pts[low][0]) >= 0:
                pts[high] = list(pts[low])
            pts[low] = [t, f_new, g_new, gtd_new]
    t, f_new, g_new, _ = pts[low]
    return f_new, g_new, t, evals


class LBFGS(Optimizer):
    """Limited-memory BFGS, as ``torch.optim.LBFGS``. ``step(closure)`` runs up to
    ``max_iter`` iterations; ``closure`` clears the gradients, computes the loss,
    calls ``backward`` and returns the loss. One parameter group only.

    Args:
        lr: step length (the initial step of the line search with ``line_search_fn``).
        max_iter: iterations per ``step``. max_eval: closure calls per ``step``
            (default ``max_iter * 5 // 4``).
        tolerance_grad: stop when the largest gradient element is at most this.
        tolerance_change: stop when the step or the loss change is at most this.
        history_size: number of curvature pairs kept.
        line_search_fn: None (fixed step ``lr``) or ``"strong_wolfe"``.

    Example:
        >>> import ember
        >>> w = ember.tensor([1.5, -0.5], requires_grad=True)
        >>> opt = ember.optim.LBFGS([w], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - ember.tensor([3.0, 2.0])) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> [round(v, 6) for v in w.tolist()]
        [3.0, 2.0]
    """

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"LBFGS: max_iter must be a positive int, got {max_iter!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if history_size < 1:
            raise ValueError(f"LBFGS: history_size must be at least 1, got {history_size}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(
                f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}"
            )
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                "LBFGS doesn't support per-parameter options (parameter groups); "
                "pass one list of parameters"
            )
        self._params = self.param_groups[0]["params"]

    # -- flat views of the parameters ----------------------------------------------------
    def _flat_grad(self) -> Tensor:
        from .._creation import zeros

        return cat(
            [
                zeros(p.numel(), dtype=p.dtype) if p.grad is None else p.grad.reshape(-1)
                for p in self._params
            ],
            0,
        )

    def _move(self, t: float, d: Tensor) -> None:
        offset = 0
        with no_grad():
            for p in self._params:
                n = p.numel()
                p.add_(d[offset : offset + n].reshape(p.shape), alpha=t)
                offset += n

    def _snapshot(self) -> list[Tensor]:
        return [p.detach().clone() for p in self._params]

    def _restore(self, saved: list[Tensor]) -> None:
        with no_grad():
            for p, s in zip(self._params, saved):
                p.copy_(s)

    def _evaluate_at(self, closure, x0, t, d):
        self._move(t, d)
        with enable_grad():
            loss = float(closure())
        g = self._flat_grad()
        self._restore(x0)
        return loss, g

    # -- the iteration -------------------------------------------------------------------
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss of the first closure
        call (before the update), as PyTorch does."""
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that re-evaluates the model")
        for hook in list(self._step_pre_hooks.values()):
            hook(self, (), {})
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if float(g.abs().max()) <= tol_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_g, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            with no_grad():
                if state["n_iter"] == 1:
                    d = -g
                    old_dirs, old_stps, ro = [], [], []
                    h_diag = 1.0
                else:
                    # curvature pair from the last step; kept only when it is positive
                    y = g - prev_g
                    s = d * t
                    ys = _dot(y, s)
                    if ys > 1e-10:
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        h_diag = ys / _dot(y, y)
                    # two-loop recursion: d = -H g
                    al = [0.0] * len(old_dirs)
                    q = -g
                    for i in range(len(old_dirs) - 1, -1, -1):
                        al[i] = _dot(old_stps[i], q) * ro[i]
                        q = q - old_dirs[i] * al[i]
                    r = q * h_diag
                    for i in range(len(old_dirs)):
                        be_i = _dot(old_dirs[i], r) * ro[i]
                        r = r + old_stps[i] * (al[i] - be_i)
                    d = r
                prev_g = g.clone()
            prev_loss = loss
            # the first step ever is scaled down to at most unit length in L1
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(g.abs().sum())) * lr
            else:
                t = lr
            gtd = _dot(g, d)
            if gtd > -tol_change:  # not a descent direction
                break

            ls_evals = 0
            if group["line_search_fn"] == "strong_wolfe":
                x0 = self._snapshot()
                loss, g, t, ls_evals = _strong_wolfe(
                    lambda step, x0=x0, d=d: self._evaluate_at(closure, x0, step, d),
                    t,
                    d,
                    loss,
                    g,
                    gtd,
                )
                self._move(t, d)
                opt_cond = float(g.abs().max()) <= tol_grad
            else:
                self._move(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    with enable_grad():
                        loss = float(closure())
                    g = self._flat_grad()
                    opt_cond = float(g.abs().max()) <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if n_iter == max_iter or evals >= max_eval or opt_cond:
                break
            if float((d * t).abs().max()) <= tol_change:
                break
            if abs(loss - prev_loss) < tol_change:
                break

        state.update(
            d=d,
            t=t,
            old_dirs=old_dirs,
            old_stps=old_stps,
            ro=ro,
            H_diag=h_diag,
            prev_flat_grad=prev_g,
            prev_loss=prev_loss,
        )
        for hook in list(self._step_post_hooks.values()):
            hook(self, (), {})
        return orig_loss
