"""ONNX export of quantized models in QDQ form.

The quantized modules run as primitives of :mod:`ember.ops._quantized`, so a quantized model
traces like any other and :func:`ember.onnx.export` lowers each int8 primitive to the pattern
that onnxruntime (and TensorRT, OpenVINO) recognise (see :mod:`ember.onnx._lower_quant`):
``QuantizeLinear -> DequantizeLinear`` on the activation with the calibrated parameters (or
``DynamicQuantizeLinear`` for dynamic modules), the int8 weight initializer behind a
per-channel ``DequantizeLinear``, then the float op. :func:`export_onnx` is that export with
the names and the dynamic batch axis set for a one-input model (outputs are named
``output``, or ``output_0``, ``output_1``, ... when the model returns several).
"""

from __future__ import annotations

import os
from typing import Any

from .. import nn
from ..autograd import no_grad
from ..onnx._deps import MIN_OPSET

__all__ = ["export_onnx"]


def _count(out: Any) -> int:
    if isinstance(out, (tuple, list)):
        return sum(_count(o) for o in out)
    if isinstance(out, dict):
        return sum(_count(o) for o in out.values())
    return 1


def export_onnx(
    model: nn.Module,
    example_input,
    path: str,
    *,
    opset: int = MIN_OPSET,
    input_name: str = "input",
    output_name: str = "output",
    dynamic_batch: bool = True,
) -> Any:
    """Write a quantized model (any structure that traces, float layers included) as a QDQ
    ONNX file; returns the ``onnx.ModelProto``.

    ``example_input`` gives the input's shape (its batch axis is symbolic when
    ``dynamic_batch``); the model is traced as :func:`ember.onnx.export` does.

    Example:
        >>> import ember, tempfile, os
        >>> from ember.quantization import quantize_static
        >>> m = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
        >>> q = quantize_static(m, ember.randn(32, 4))
        >>> p = os.path.join(tempfile.mkdtemp(), "m.onnx")
        >>> [n.op_type for n in export_onnx(q, ember.randn(1, 4), p).graph.node][:3]
        ['QuantizeLinear', 'DequantizeLinear', 'DequantizeLinear']
    """
    from .. import onnx as ember_onnx

    if opset < 13:
        raise ValueError(f"export_onnx: per-channel QDQ needs opset >= 13, got {opset}")
    with no_grad():
        n = _count(model(example_input))
    names = [output_name] if n == 1 else [f"{output_name}_{i}" for i in range(n)]
    return ember_onnx.export(
        model,
        (example_input,),
        os.fspath(path),
        opset=opset,
        input_names=[input_name],
        output_names=names,
        dynamic_axes={input_name: {0: "batch"}} if dynamic_batch else None,
    )
