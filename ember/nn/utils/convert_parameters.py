"""Flatten parameters into one vector and back (``torch.nn.utils`` names)."""

from __future__ import annotations

from ..._tensor import Tensor
from ...ops import shape as S

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """Concatenate the flattened ``parameters`` into one 1-d tensor (differentiable)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return S.cat([S.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d tensor ``vec`` into ``parameters`` (their ``.data``
    is replaced, as in PyTorch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor-like ember Tensor, but got: {type(vec).__name__}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(
            f"vector_to_parameters: expected a 1-d vector of {total} elements for "
            f"the parameters, got shape {tuple(vec.shape)}"
        )
    pointer = 0
    for p in parameters:
        n = p.numel()
        p.data = S.reshape(vec.detach()[pointer : pointer + n], tuple(p.shape))
        pointer += n
