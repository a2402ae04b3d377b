"""``torch.utils.checkpoint``'s module path: activation checkpointing (recompute a block's
activations in backward instead of storing them).

Example:
    >>> import ember
    >>> from ember.utils.checkpoint import checkpoint
    >>> lin = ember.nn.Linear(3, 3)
    >>> x = ember.ones(2, 3, requires_grad=True)
    >>> checkpoint(lin, x, use_reentrant=False).sum().backward()
    >>> x.grad.shape, lin.weight.grad.shape
    (ember.Size([2, 3]), ember.Size([3, 3]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..autograd import checkpoint

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint_sequential(
    functions: Any,
    segments: int,
    input: Any,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``functions`` (an ``nn.Sequential`` or a list of modules/callables) on ``input`` in
    ``segments`` checkpointed chunks, as PyTorch's ``checkpoint_sequential``: the last chunk
    runs normally, the others store only their input and are recomputed in backward.

    Example:
        >>> import ember
        >>> from ember.utils.checkpoint import checkpoint_sequential
        >>> net = ember.nn.Sequential(*[ember.nn.Linear(4, 4) for _ in range(4)])
        >>> x = ember.ones(2, 4, requires_grad=True)
        >>> y = checkpoint_sequential(net, 2, x, use_reentrant=False)
        >>> bool(ember.allclose(y, net(x)))
        True
    """
    if isinstance(functions, dict):
        raise TypeError("checkpoint_sequential: functions must be a sequence, not a dict")
    fns: Sequence[Callable] = (
        list(functions.children()) if hasattr(functions, "children") else list(functions)
    )
    if not isinstance(segments, int) or isinstance(segments, bool) or segments < 1:
        raise ValueError(
            f"checkpoint_sequential: segments must be a positive int, got {segments!r}"
        )
    if not fns:
        return input
    segments = min(segments, len(fns))
    size = len(fns) // segments

    def run(start: int, end: int) -> Callable:
        def forward(x: Any) -> Any:
            for f in fns[start : end + 1]:
                x = f(x)
            return x

        return forward

    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(fns) - 1)(input)
