"""Ember as an ONNX backend (:class:`onnx.backend.base.Backend`).

The ONNX project's conformance suite drives backends through this interface:
``prepare`` turns a ``ModelProto`` into a runnable rep, ``run_node`` runs one ``NodeProto``.
Both go through :func:`ember.onnx.load`, so what passes here is what ``load`` supports.

Example:
    >>> import numpy as np, onnx
    >>> from onnx import helper, TensorProto
    >>> from ember.onnx.backend import EmberBackend
    >>> node = helper.make_node("Relu", ["x"], ["y"])
    >>> EmberBackend.run_node(node, [np.array([-1.0, 2.0], np.float32)])[0]
    array([0., 2.], dtype=float32)
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import no_grad
from .._tensor import Tensor
from ._deps import require
from ._import import ONNXModule

__all__ = ["EmberBackend", "EmberRep", "prepare", "run_model", "run_node", "supports_device"]

require("onnx")
_base = importlib.import_module("onnx.backend.base")


def _to_numpy(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.detach().numpy()
    if isinstance(x, (list, tuple)):
        return [_to_numpy(v) for v in x]
    return x


class EmberRep(_base.BackendRep):
    """A prepared model: :meth:`run` takes the inputs (a list in graph order, or a dict by
    name) as NumPy arrays and returns the outputs as NumPy arrays."""

    def __init__(self, module: ONNXModule):
        self.module = module

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        names = self.module.input_names
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(names))
            if unknown:
                raise ValueError(f"unknown input name(s) {unknown}; the model takes {names}")
            inputs = [inputs[n] for n in names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        args = list(inputs)
        with no_grad():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return tuple(_to_numpy(o) for o in out)


class EmberBackend(_base.Backend):
    """Runs ONNX models and nodes with ember ops on the CPU."""

    @classmethod
    def is_compatible(cls, model: Any, device: str = "CPU", **kwargs: Any) -> bool:
        from ._import import IMPORTS

        return cls.supports_device(device) and all(n.op_type in IMPORTS for n in model.graph.node)

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> EmberRep:
        if not cls.supports_device(device):
            raise ValueError(f"ember's ONNX backend runs on the CPU only, not {device!r}")
        return EmberRep(ONNXModule(model))

    @classmethod
    def run_model(
        cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: Any,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, ...]:
        onnx = require("onnx")
        helper = onnx.helper
        arrays = [np.asarray(a) for a in inputs]
        names = [n for n in node.input if n]
        if len(names) != len(arrays):
            raise ValueError(f"node {node.op_type} has {len(names)} inputs, got {len(arrays)}")
        ins = [
            helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)
            )
            for n, a in zip(names, arrays)
        ]
        outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = helper.make_graph([node], "run_node", ins, outs)
        opset = int(kwargs.get("opset_version", onnx.defs.onnx_opset_version()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.prepare(model, device).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper().split(":")[0] == "CPU"


prepare = EmberBackend.prepare
run_model = EmberBackend.run_model
run_node = EmberBackend.run_node
supports_device = EmberBackend.supports_device
