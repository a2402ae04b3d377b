"""Module fusion before quantization: conv + batch norm (+ ReLU), linear (+ ReLU).

Folding a batch norm into the preceding convolution (its running statistics become a
per-channel weight scale and a bias) removes a whole pass over the activations, and a fused
ReLU is applied in the int8 kernel's epilogue, so the quantized model calibrates and runs one
module where the float model ran two or three.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from .. import nn
from .._creation import from_numpy
from ._util import param

__all__ = ["ConvReLU2d", "LinearReLU", "auto_fuse", "fuse_conv_bn", "fuse_modules"]


class ConvReLU2d(nn.Sequential):
    """A convolution followed by ReLU, fused (PyTorch's ``torch.ao.nn.intrinsic`` name)."""


class LinearReLU(nn.Sequential):
    """A linear layer followed by ReLU, fused."""


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` with ``bn``'s running statistics and affine parameters folded in.

    Example:
        >>> import ember
        >>> conv, bn = ember.nn.Conv2d(1, 2, 3), ember.nn.BatchNorm2d(2).eval()
        >>> x = ember.randn(1, 1, 5, 5)
        >>> float((fuse_conv_bn(conv, bn)(x) - bn(conv(x))).abs().max()) < 1e-5
        True
    """
    if not isinstance(bn, nn.BatchNorm2d) or not isinstance(conv, nn.Conv2d):
        raise TypeError(
            f"fuse_conv_bn: expected (Conv2d, BatchNorm2d), got "
            f"({type(conv).__name__}, {type(bn).__name__})"
        )
    if bn.running_mean is None:
        raise ValueError("fuse_conv_bn: the batch norm tracks no running statistics")
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"fuse_conv_bn: BatchNorm2d({bn.num_features}) does not follow a conv with "
            f"{conv.out_channels} output channels"
        )
    w = param(conv.weight)
    b = param(conv.bias) if conv.bias is not None else np.zeros(conv.out_channels, np.float32)
    mean, var = param(bn.running_mean), param(bn.running_var)
    gamma = param(bn.weight) if bn.weight is not None else np.ones_like(mean)
    beta = param(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    k = gamma / np.sqrt(var + bn.eps)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(from_numpy((w * k.reshape(-1, 1, 1, 1)).astype(np.float32)))
    fused.bias = nn.Parameter(from_numpy(((b - mean) * k + beta).astype(np.float32)))
    return fused


def _fuse_group(mods: list) -> nn.Module:
    kinds = [type(m) for m in mods]
    if kinds == [nn.Conv2d, nn.BatchNorm2d]:
        return fuse_conv_bn(*mods)
    if kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]:
        return ConvReLU2d(fuse_conv_bn(mods[0], mods[1]), nn.ReLU())
    if kinds == [nn.Conv2d, nn.ReLU]:
        return ConvReLU2d(copy.deepcopy(mods[0]), nn.ReLU())
    if kinds == [nn.Linear, nn.ReLU]:
        return LinearReLU(copy.deepcopy(mods[0]), nn.ReLU())
    names = ", ".join(k.__name__ for k in kinds)
    raise ValueError(
        f"fuse_modules: cannot fuse ({names}); supported: (Conv2d, BatchNorm2d[, ReLU]), "
        "(Conv2d, ReLU), (Linear, ReLU)"
    )


def _parent(model: nn.Module, name: str):
    *path, last = name.split(".")
    mod = model
    for p in path:
        mod = getattr(mod, p)
    if not hasattr(mod, last):
        raise ValueError(f"fuse_modules: the model has no submodule {name!r}")
    return mod, last


def fuse_modules(
    model: nn.Module,
    modules_to_fuse: Sequence[Sequence[str]] | Sequence[str],
    inplace: bool = False,
) -> nn.Module:
    """Fuse each group of named submodules (PyTorch's ``fuse_modules``): the first name
    gets the fused module, the others become ``Identity``. Batch norms are folded with their
    running statistics, so fuse a model in eval mode.

    Example:
        >>> import ember
        >>> m = ember.nn.Sequential(ember.nn.Conv2d(1, 2, 3), ember.nn.BatchNorm2d(2),
        ...                         ember.nn.ReLU()).eval()
        >>> type(fuse_modules(m, [["0", "1", "2"]])[0]).__name__
        'ConvReLU2d'
    """
    if not inplace:
        model = copy.deepcopy(model)
    groups = (
        [modules_to_fuse]
        if modules_to_fuse and isinstance(modules_to_fuse[0], str)
        else modules_to_fuse
    )
    for group in groups:
        located = [_parent(model, n) for n in group]
        fused = _fuse_group([getattr(p, last) for p, last in located])
        p, last = located[0]
        setattr(p, last, fused)
        for p, last in located[1:]:
            setattr(p, last, nn.Identity())
    return model


_PATTERNS = (
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU),
    (nn.Conv2d, nn.BatchNorm2d),
    (nn.Conv2d, nn.ReLU),
    (nn.Linear, nn.ReLU),
)


def auto_fuse(model: nn.Module) -> nn.Module:
    """Fuse, in place, every fusable run of consecutive children of each ``Sequential``
    (the usual layout of CNNs); other containers are left as they are."""
    for mod in list(model.modules()):
        if not isinstance(mod, nn.Sequential) or isinstance(mod, (ConvReLU2d, LinearReLU)):
            continue
        names = list(mod._modules.keys())
        i = 0
        while i < len(names):
            for pat in _PATTERNS:
                run = [mod._modules[n] for n in names[i : i + len(pat)]]
                if len(run) == len(pat) and all(type(m) is t for m, t in zip(run, pat)):
                    fuse_modules(mod, [names[i : i + len(pat)]], inplace=True)
                    i += len(pat) - 1
                    break
            i += 1
    return model
