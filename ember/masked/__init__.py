"""``ember.masked``: PyTorch's ``torch.masked`` reductions and normalizations on dense
tensors with a boolean ``mask=`` (broadcast to the input; True marks the elements that take
part): ``sum``, ``prod``, ``amax``, ``amin``, ``argmax``, ``argmin``, ``mean``, ``median``,
``norm``, ``var``, ``std``, ``logsumexp``, ``logaddexp`` (``input_mask``/``other_mask``),
``softmax``, ``log_softmax``, ``softmin``, ``normalize``, ``cumsum`` and ``cumprod``, with
PyTorch's ``dim``/``keepdim``/``dtype`` arguments and gradients. Without a mask each is the
ordinary op.

Masked-out elements take the identity of the reduction, so a fully masked-out slice gives
0 (sum), 1 (prod), -inf/+inf (amax/amin), NaN (mean, median, var, std, softmaxes). The
``MaskedTensor`` class of ``torch.masked`` is not provided.

Example:
    >>> import ember
    >>> x = ember.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> m = ember.tensor([[True, False, True], [False, False, False]])
    >>> ember.masked.sum(x, 1, mask=m).tolist()
    [4.0, 0.0]
    >>> ember.masked.amax(x, 1, mask=m).tolist()
    [3.0, -inf]
"""

from __future__ import annotations

from ._ops import (
    amax,
    amin,
    argmax,
    argmin,
    cumprod,
    cumsum,
    log_softmax,
    logaddexp,
    logsumexp,
    mean,
    median,
    norm,
    normalize,
    prod,
    softmax,
    softmin,
    std,
    sum,
    var,
)

__all__ = [
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cumprod",
    "cumsum",
    "log_softmax",
    "logaddexp",
    "logsumexp",
    "mean",
    "median",
    "norm",
    "normalize",
    "prod",
    "softmax",
    "softmin",
    "std",
    "sum",
    "var",
]
