"""Lazy imports of the optional ``onnx`` and ``onnxruntime`` packages (the ``[onnx]`` extra)."""

from __future__ import annotations

import functools
import importlib
from typing import Any

__all__ = ["max_opset", "require"]

MIN_OPSET = 17


def require(name: str = "onnx") -> Any:
    """The module ``name`` (``"onnx"`` or ``"onnxruntime"``), or an ImportError naming the
    extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(
            f"ember.onnx needs the {name!r} package: pip install 'ember[onnx]' "
            f"(installs onnx and onnxruntime)"
        ) from e


@functools.cache
def max_opset() -> int:
    """The newest opset both ``onnx`` and (when installed) ``onnxruntime`` accept."""
    onnx = require("onnx")
    top = int(onnx.defs.onnx_opset_version())
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return top
    helper, tp = onnx.helper, onnx.TensorProto
    # onnxruntime has no query for its newest opset: try a one-node model per opset
    for opset in range(top, MIN_OPSET - 1, -1):
        g = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "probe",
            [helper.make_tensor_value_info("x", tp.FLOAT, [1])],
            [helper.make_tensor_value_info("y", tp.FLOAT, [1])],
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 (any load failure means: opset not supported)
            continue
        return opset
    return MIN_OPSET
