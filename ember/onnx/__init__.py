"""ONNX export of ember models (the ``[onnx]`` extra: ``pip install 'ember[onnx]'``).

:func:`export` traces a module or function with the compiler's tracer and lowers the graph
through the table in :mod:`ember.onnx.lowering`; :func:`load` runs an exported file as an
ember module (eager, compiled or fine-tuned; files from ``torch.onnx.export`` included).
:mod:`ember.onnx.backend` is the importer behind ``onnx.backend.base.Backend``, and
:mod:`ember.onnx.conformance` runs ONNX's node test cases through it
(``tools/onnx_node_report.py``). ``onnx`` is imported only when used.

Example:
    >>> import ember, ember.onnx
    >>> m = ember.onnx.export(lambda x: x.relu() * 2, ember.ones(3), None)
    >>> [n.op_type for n in m.graph.node]
    ['Relu', 'Mul', 'Identity']
"""

from __future__ import annotations

from ._import import ONNXModule, load
from .export import ExportError, export, supported_opsets

__all__ = ["ExportError", "ONNXModule", "export", "load", "supported_opsets"]
