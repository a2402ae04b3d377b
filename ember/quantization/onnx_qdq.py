"""ONNX export of quantized models in QDQ form.

Each int8 module becomes the standard pattern that onnxruntime (and TensorRT, OpenVINO)
recognise: ``QuantizeLinear -> DequantizeLinear`` on the activation with the calibrated
(or, for dynamic modules, per-call ``DynamicQuantizeLinear``) parameters, the int8 weight as an
initializer behind a per-channel ``DequantizeLinear``, then the float op. The quantized modules
compute in NumPy rather than in traced Ember primitives, so this is a small exporter of its
own over the module tree (``Sequential`` containers of quantized and simple float layers)
instead of a lowering in :mod:`ember.onnx`'s table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..onnx._deps import MIN_OPSET, require
from ._util import to_numpy
from .fuse import ConvReLU2d, LinearReLU
from .modules import (
    DeQuantStub,
    DynamicQuantizedLinear,
    QuantizedConv2d,
    QuantizedLinear,
    QuantStub,
)

__all__ = ["export_onnx"]

_SKIP = (nn.Identity, nn.Dropout, QuantStub, DeQuantStub)


class _Builder:
    def __init__(self, onnx: Any) -> None:
        self.onnx, self.h = onnx, onnx.helper
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base: str, arr: np.ndarray) -> str:
        nm = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def qdq_act(self, x: str, scale: float, zp: int) -> str:
        s = self.const("x_scale", np.array(scale, np.float32))
        z = self.const("x_zero_point", np.array(zp, np.uint8))
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, s, z]), s, z])

    def dynamic_act(self, x: str) -> str:
        outs = [self.name("dq_y"), self.name("dq_scale"), self.name("dq_zp")]
        self.nodes.append(self.h.make_node("DynamicQuantizeLinear", [x], outs, name=outs[0]))
        return self.node("DequantizeLinear", outs)

    def dq_weight(self, q: np.ndarray, scale: np.ndarray, axis: int) -> str:
        w = self.const("w_int8", q.astype(np.int8))
        s = self.const("w_scale", scale.astype(np.float32))
        z = self.const("w_zero_point", np.zeros(len(scale), np.int8))
        return self.node("DequantizeLinear", [w, s, z], axis=axis)


def _linear(b: _Builder, x: str, mod, act: str) -> str:
    q = mod.weight_int8.numpy()
    w = b.dq_weight(np.ascontiguousarray(q.T), mod.weight_scale.numpy(), axis=1)  # (K, N)
    y = b.node("MatMul", [act, w])
    if mod.bias is not None:
        y = b.node("Add", [y, b.const("bias", mod.bias.numpy())])
    return y


def _emit(b: _Builder, mod: nn.Module, x: str, path: str) -> str:
    if isinstance(mod, nn.Sequential) and not isinstance(mod, (ConvReLU2d, LinearReLU)):
        for name, child in mod._modules.items():
            x = _emit(b, child, x, f"{path}.{name}" if path else name)
        return x
    if isinstance(mod, _SKIP):
        return x
    if isinstance(mod, QuantizedConv2d):
        xd = b.qdq_act(x, *mod.act_qparams())
        w = b.dq_weight(mod.weight_int8.numpy(), mod.weight_scale.numpy(), axis=0)
        ins = [xd, w] + ([b.const("bias", mod.bias.numpy())] if mod.bias is not None else [])
        ph, pw = mod.padding
        y = b.node(
            "Conv",
            ins,
            kernel_shape=list(mod.kernel_size),
            strides=list(mod.stride),
            pads=[ph, pw, ph, pw],
            dilations=list(mod.dilation),
        )
        return b.node("Relu", [y]) if mod.relu else y
    if isinstance(mod, QuantizedLinear):
        y = _linear(b, x, mod, b.qdq_act(x, *mod.act_qparams()))
        return b.node("Relu", [y]) if mod.relu else y
    if isinstance(mod, DynamicQuantizedLinear):
        return _linear(b, x, mod, b.dynamic_act(x))
    if isinstance(mod, nn.ReLU):
        return b.node("Relu", [x])
    if isinstance(mod, nn.MaxPool2d) and not mod.return_indices:
        k = _pair(mod.kernel_size)
        s = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
        p, d = _pair(mod.padding), _pair(mod.dilation)
        return b.node(
            "MaxPool",
            [x],
            kernel_shape=k,
            strides=s,
            pads=p + p,
            dilations=d,
            ceil_mode=int(mod.ceil_mode),
        )
    if isinstance(mod, nn.Flatten) and mod.start_dim == 1 and mod.end_dim == -1:
        return b.node("Flatten", [x], axis=1)
    raise ValueError(
        f"export_onnx: module {path or '<root>'!r} ({type(mod).__name__}) has no QDQ export; "
        "supported: Sequential of QuantizedConv2d, QuantizedLinear, DynamicQuantizedLinear, "
        "ReLU, MaxPool2d, Flatten(1, -1), Dropout, Identity, QuantStub/DeQuantStub"
    )


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(t) for t in v]


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
    """Write a quantized model as a QDQ ONNX file; returns the ``onnx.ModelProto``.

    ``example_input`` gives the input's shape (its batch axis is symbolic when
    ``dynamic_batch``) and is run through the model to record the output shape.

    Example:
        >>> import ember, tempfile, os
        >>> from ember.quantization import quantize_static
        >>> m = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
        >>> q = quantize_static(m, ember.randn(32, 4))
        >>> p = os.path.join(tempfile.mkdtemp(), "m.onnx")
        >>> [n.op_type for n in export_onnx(q, ember.randn(1, 4), p).graph.node][:3]
        ['QuantizeLinear', 'DequantizeLinear', 'DequantizeLinear']
    """
    onnx = require("onnx")
    if opset < 13:
        raise ValueError(f"export_onnx: per-channel QDQ needs opset >= 13, got {opset}")
    x = to_numpy(example_input, "export_onnx")
    y = to_numpy(model(example_input), "export_onnx")
    b = _Builder(onnx)
    out = _emit(b, model, input_name, "")
    b.nodes.append(onnx.helper.make_node("Identity", [out], [output_name], name=output_name))

    def info(name, shape):
        dims = ["batch" if (i == 0 and dynamic_batch) else int(d) for i, d in enumerate(shape)]
        return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)

    graph = onnx.helper.make_graph(
        b.nodes,
        "ember_int8_qdq",
        [info(input_name, x.shape)],
        [info(output_name, y.shape)],
        initializer=b.inits,
    )
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    proto.producer_name = "ember.quantization"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return proto
