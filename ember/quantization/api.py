"""The quantization entry points: ``quantize_dynamic``, ``prepare`` / ``convert`` (eager-mode
post-training static quantization) and the ``quantize_static`` wrapper."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import _dtype, _tensor, autograd, nn
from ._qparams import HistogramObserver, MinMaxObserver
from ._util import to_numpy
from .fuse import ConvReLU2d, LinearReLU, auto_fuse
from .modules import (
    DynamicQuantizedLinear,
    DynamicQuantizedLSTM,
    QuantizedConv2d,
    QuantizedLinear,
)

__all__ = ["Observed", "convert", "prepare", "quantize_dynamic", "quantize_static"]

_OBSERVERS = {"minmax": MinMaxObserver, "histogram": HistogramObserver}
_DYNAMIC = {nn.Linear: DynamicQuantizedLinear.from_float, nn.LSTM: DynamicQuantizedLSTM.from_float}
_STATIC = (nn.Conv2d, nn.Linear, ConvReLU2d, LinearReLU)


def _check_dtype(dtype, who: str) -> None:
    if dtype is _dtype.int8 or dtype in ("int8", "qint8"):
        return
    raise ValueError(f"{who}: only dtype=ember.int8 is supported, got {dtype!r}")


def _swap(model: nn.Module, fn, prefix: str = "") -> nn.Module:
    """Replace, depth first, each module (the root included, named ``""``) for which
    ``fn(module, name)`` returns a module; returns the (possibly new) root."""
    if not prefix:
        new = fn(model, "")
        if new is not None:
            return new
    for name, child in list(model._modules.items()):
        if child is None:
            continue
        full = f"{prefix}{name}"
        new = fn(child, full)
        if new is not None:
            setattr(model, name, new)
        else:
            _swap(child, fn, full + ".")
    return model


def quantize_dynamic(
    model: nn.Module,
    qconfig_spec: Iterable[type | str] | None = None,
    dtype: Any = _dtype.int8,
    inplace: bool = False,
) -> nn.Module:
    """Dynamic int8 quantization (PyTorch's ``torch.ao.quantization.quantize_dynamic``):
    every ``nn.Linear`` / ``nn.LSTM`` (or those of the types, or names, in ``qconfig_spec``)
    becomes its int8 version with per-channel weights; activations are quantized per call.
    Returns a new model (the original is untouched unless ``inplace``).

    Example:
        >>> import ember
        >>> m = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
        >>> q = quantize_dynamic(m, {ember.nn.Linear}, dtype=ember.int8)
        >>> type(q[0]).__name__, tuple(q(ember.ones(3, 4)).shape)
        ('DynamicQuantizedLinear', (3, 2))
    """
    _check_dtype(dtype, "quantize_dynamic")
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize_dynamic: expected an nn.Module, got {type(model).__name__}")
    spec = set(qconfig_spec) if qconfig_spec is not None else set(_DYNAMIC)
    types_ = {s for s in spec if isinstance(s, type)}
    names = {s for s in spec if isinstance(s, str)}
    for s in spec - types_ - names:
        raise TypeError(
            f"quantize_dynamic: qconfig_spec entries are module types or names, got {s!r}"
        )
    for t in types_:
        if t not in _DYNAMIC:
            raise ValueError(
                f"quantize_dynamic: {t.__name__} is not supported for dynamic int8 "
                "(supported: Linear, LSTM)"
            )
    if not inplace:
        model = copy.deepcopy(model)

    def fn(child, name):
        kind = type(child)
        if kind in _DYNAMIC and (kind in types_ or name in names):
            return _DYNAMIC[kind](child)
        if name in names:
            raise ValueError(
                f"quantize_dynamic: module {name!r} is a {kind.__name__}, which is not "
                "supported for dynamic int8 (supported: Linear, LSTM)"
            )
        return None

    return _swap(model, fn)


class Observed(nn.Module):
    """A float module with an observer recording its input range (made by :func:`prepare`)."""

    def __init__(self, module: nn.Module, observer: str) -> None:
        super().__init__()
        self.module = module
        self.observer_kind = observer
        self.observer = _OBSERVERS[observer]()

    def forward(self, x):
        self.observer(to_numpy(x, f"Observed({type(self.module).__name__})"))
        return self.module(x)


def prepare(
    model: nn.Module, observer: str = "histogram", fuse: bool = True, inplace: bool = False
) -> nn.Module:
    """Ready a float model for static int8 calibration (PyTorch's eager ``prepare``): put it
    in eval mode, fuse conv + batch norm (+ ReLU) and linear + ReLU runs of ``Sequential``
    children (``fuse=True``), and attach an input observer (``"histogram"`` or ``"minmax"``)
    to every ``Conv2d`` / ``Linear`` (a grouped or non-zero-padded ``Conv2d``, which has no
    int8 kernel, stays in float). Run calibration batches through the result, then
    :func:`convert`.

    Example:
        >>> import ember
        >>> m = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU())
        >>> p = prepare(m)
        >>> _ = p(ember.randn(16, 4))
        >>> type(convert(p)[0]).__name__
        'QuantizedLinear'
    """
    if observer not in _OBSERVERS:
        raise ValueError(f"prepare: observer must be one of {sorted(_OBSERVERS)}, got {observer!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare: expected an nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if fuse:
        auto_fuse(model)

    def fn(child, name):
        if type(child) in _STATIC and _int8_capable(child):
            return Observed(child, observer)
        return None

    return _swap(model, fn)


def _int8_capable(mod: nn.Module) -> bool:
    # QuantizedConv2d has no grouped / non-zero-padded kernel: such a conv stays in float
    # (as ``QuantizedConv2d.from_float``'s error tells users to do) instead of failing convert.
    conv = mod[0] if isinstance(mod, ConvReLU2d) else mod
    if isinstance(conv, nn.Conv2d):
        return conv.groups == 1 and conv.padding_mode == "zeros"
    return True


def _quantized(obs: Observed, name: str) -> nn.Module:
    if obs.observer.count == 0:
        raise RuntimeError(
            f"convert: module {name!r} saw no calibration data; run calibration batches "
            "through the prepared model before convert()"
        )
    scale, zp = obs.observer.calculate_qparams()
    mod, relu = obs.module, False
    if isinstance(mod, (ConvReLU2d, LinearReLU)):
        mod, relu = mod[0], True
    if isinstance(mod, nn.Conv2d):
        return QuantizedConv2d.from_float(mod, scale, zp, relu)
    return QuantizedLinear.from_float(mod, scale, zp, relu)


def convert(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace every observed module of a :func:`prepare`\\ d, calibrated model by its static
    int8 version (PyTorch's eager ``convert``).

    Example:
        >>> import ember
        >>> p = prepare(ember.nn.Sequential(ember.nn.Conv2d(1, 2, 3), ember.nn.ReLU()))
        >>> _ = p(ember.randn(4, 1, 6, 6))
        >>> type(convert(p)[0]).__name__
        'QuantizedConv2d'
    """
    if not any(isinstance(m, Observed) for m in model.modules()):
        raise ValueError(
            "convert: the model has no observers; call prepare(model) and run calibration "
            "batches first"
        )
    if not inplace:
        model = copy.deepcopy(model)

    def fn(child, name):
        return _quantized(child, name) if isinstance(child, Observed) else None

    return _swap(model, fn)


def _batches(data, batch_size: int) -> Iterable:
    if isinstance(data, (np.ndarray, _tensor.Tensor)):
        n = data.shape[0]
        for s in range(0, n, batch_size):
            yield data[s : s + batch_size]
        return
    for b in data:
        yield b[0] if isinstance(b, (tuple, list)) else b


def quantize_static(
    model: nn.Module,
    calibration: Any,
    observer: str = "histogram",
    num_batches: int | None = None,
    batch_size: int = 64,
    fuse: bool = True,
) -> nn.Module:
    """Post-training static int8 in one call: :func:`prepare`, run ``calibration`` (an array
    or tensor of inputs cut into ``batch_size`` batches, or an iterable of batches / ``(x, y)``
    pairs such as a ``DataLoader``; at most ``num_batches``), :func:`convert`.

    Example:
        >>> import ember
        >>> m = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
        >>> q = quantize_static(m, ember.randn(32, 4))
        >>> tuple(q(ember.ones(3, 4)).shape)
        (3, 2)
    """
    prepared = prepare(model, observer=observer, fuse=fuse)
    seen = 0
    with autograd.no_grad():
        for b in _batches(calibration, batch_size):
            if num_batches is not None and seen >= num_batches:
                break
            prepared(_as_tensor(b))
            seen += 1
    if seen == 0:
        raise ValueError("quantize_static: the calibration data gave no batches")
    return convert(prepared, inplace=True)


def _as_tensor(b):
    from .._creation import from_numpy

    if isinstance(b, _tensor.Tensor):
        return b
    return from_numpy(np.ascontiguousarray(b, dtype=np.float32))
