"""Full module backward hooks (``Module.register_full_backward_hook`` and
``register_full_backward_pre_hook``), as PyTorch's ``BackwardHook``.

The module's positional Tensor inputs and its Tensor outputs (top level of a tuple) each
pass through one identity autograd Function. In backward the output node sees the
gradients w.r.t. the outputs (``grad_output``; the pre-hooks may replace them) and the
input node sees the gradients w.r.t. the inputs (``grad_input``; the hooks may replace
them). One ``_BackwardHook`` is made per call, so a module used twice keeps two states.
"""

from __future__ import annotations

from ..._tensor import Tensor
from ...autograd.function import Function
from ...ops._core import _state


class _HookIdentity(Function):
    """Identity on ``tensors``; its backward hands the incoming gradients to ``fn``."""

    @staticmethod
    def forward(ctx, fn, materialize, *tensors):
        ctx.fn = fn
        ctx.set_materialize_grads(materialize)
        ctx.mark_non_differentiable(*[t for t in tensors if not t.requires_grad])
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        needs = ctx.needs_input_grad[2:]
        grads = tuple(g if n else None for g, n in zip(grads, needs))
        return (None, None, *ctx.fn(grads))


def _pack_with_none(indices, values, size):
    res = [None] * size
    for i, v in zip(indices, values):
        res[i] = v
    return tuple(res)


class _BackwardHook:
    def __init__(self, module, user_hooks, user_pre_hooks):
        self.module = module
        self.user_hooks = user_hooks
        self.user_pre_hooks = user_pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_tensors_index = None
        self.n_outputs = 0
        self.output_tensors_index = None

    @staticmethod
    def _wrap(fn, materialize, args):
        idx = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        tensors = [args[i] for i in idx]
        if not (_state.grad_enabled and any(t.requires_grad for t in tensors)):
            return args, None
        new = _HookIdentity.apply(fn, materialize, *tensors)
        out = list(args)
        for i, t in zip(idx, new):
            out[i] = t
        return tuple(out), idx

    # ----- inputs ---------------------------------------------------------------------
    def setup_input_hook(self, args):
        res, idx = self._wrap(self._input_backward, True, args)
        self.n_inputs = len(args)
        self.input_tensors_index = idx
        return res

    def _input_backward(self, grads):
        if self.grad_outputs is None:
            # the gradient reached the inputs without passing through the outputs
            return grads
        idx = self.input_tensors_index
        res = _pack_with_none(idx, grads, self.n_inputs)
        for hook in self.user_hooks:
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            if not isinstance(out, (tuple, list)):
                out = (out,)
            if len(out) != len(res):
                raise RuntimeError(
                    "Backward hook returned an invalid number of grad_input, "
                    f"got {len(out)}, but expected {len(res)}"
                )
            res = tuple(out)
        self.grad_outputs = None
        return tuple(res[i] for i in idx)

    # ----- outputs --------------------------------------------------------------------
    def setup_output_hook(self, result):
        is_tuple = isinstance(result, tuple)
        outs = result if is_tuple else (result,)
        res, idx = self._wrap(self._output_backward, False, outs)
        self.n_outputs = len(outs)
        self.output_tensors_index = idx
        if idx is None:
            return result
        if not is_tuple:
            return res[0]
        return type(result)(*res) if hasattr(result, "_fields") else res

    def _output_backward(self, grads):
        self.grad_outputs = _pack_with_none(self.output_tensors_index, grads, self.n_outputs)
        expected = len(self.grad_outputs)
        for hook in self.user_pre_hooks:
            out = hook(self.module, self.grad_outputs)
            if out is None:
                continue
            if not isinstance(out, (tuple, list)):
                out = (out,)
            if len(out) != expected:
                raise RuntimeError(
                    "Backward pre hook returned an invalid number of grad_output, "
                    f"got {len(out)}, but expected {expected}"
                )
            self.grad_outputs = tuple(out)
        local = self.grad_outputs
        if self.input_tensors_index is None:
            # no input requires grad: the hooks run here, with grad_input all None
            grad_inputs = (None,) * self.n_inputs
            for hook in self.user_hooks:
                r = hook(self.module, grad_inputs, self.grad_outputs)
                if r is not None and not (
                    isinstance(r, (tuple, list)) and all(e is None for e in r)
                ):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires gradient should "
                        "always return None or None for all gradients."
                    )
            self.grad_outputs = None
        return tuple(local[i] for i in self.output_tensors_index)
