"""Operators that ONNX defines by a function body (``SwiGLU``, ``RotaryEmbedding``,
``Attention``, ``CenterCropPad``, the window functions, ...): :func:`ember.onnx.load` runs
the body, built by ``onnx`` for the node's attributes and input types, with the operators it
already imports. The body is built once per input signature and kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ._deps import require

__all__ = ["UnsupportedOperator", "has_function", "run_function"]


class UnsupportedOperator(NotImplementedError):
    """An operator with neither an ember mapping nor a function body to run."""


def _schema(node: Any, opset: int) -> Any:
    onnx = require("onnx")
    try:
        return onnx.defs.get_schema(node.op_type, opset, domain=node.domain)
    except Exception:  # noqa: BLE001 (onnx raises its own SchemaError for an unknown op)
        return None


def _version(versions: Any, opset: int) -> int | None:
    fit = [v for v in versions if v <= opset]
    return max(fit) if fit else None


def has_function(node: Any, opset: int) -> bool:
    """Whether ``onnx`` defines the node's operator (at ``opset``) by a function body."""
    s = _schema(node, opset)
    if s is None:
        return False
    return (
        _version(s.function_opset_versions, opset) is not None
        or _version(s.context_dependent_function_opset_versions, opset) is not None
    )


def _type_of(onnx: Any, v: Any) -> Any:
    arr_dtype = v.dtype.np if isinstance(v, Tensor) else np.asarray(v).dtype
    shape = list(v.shape)
    return onnx.helper.make_tensor_type_proto(
        onnx.helper.np_dtype_to_tensor_dtype(arr_dtype), shape
    )


def _body(m: Any, node: Any, args: list[Any]) -> tuple[Any, dict[str, Any]]:
    """The node's function body and its attributes (the node's, then the schema's defaults)."""
    onnx = require("onnx")
    s = _schema(node, m.opset)
    attrs = {a.name: a for a in node.attribute}
    for name, spec in s.attributes.items():
        if name not in attrs and spec.default_value.name:
            attrs[name] = spec.default_value
    fn = onnx.FunctionProto()
    v = _version(s.function_opset_versions, m.opset)
    if v is not None:
        fn.ParseFromString(s.get_function_with_opset_version(v))
    else:
        full = onnx.NodeProto()
        full.CopyFrom(node)
        del full.attribute[:]
        full.attribute.extend(attrs.values())
        types = [_type_of(onnx, a).SerializeToString() for a in args if a is not None]
        v = _version(s.context_dependent_function_opset_versions, m.opset)
        fn.ParseFromString(
            s.get_context_dependent_function_with_opset_version(v, full.SerializeToString(), types)
        )
    return fn, attrs


def _resolve(onnx: Any, body_node: Any, attrs: dict[str, Any]) -> Any:
    """A body node with its ``ref_attr_name`` attributes taken from the calling node."""
    out = onnx.NodeProto()
    out.CopyFrom(body_node)
    del out.attribute[:]
    for a in body_node.attribute:
        if a.ref_attr_name:
            if a.ref_attr_name in attrs:
                b = onnx.AttributeProto()
                b.CopyFrom(attrs[a.ref_attr_name])
                b.name = a.name
                out.attribute.append(b)
        else:
            out.attribute.append(a)
    return out


def run_function(m: Any, node: Any, args: list[Any]) -> list[Any]:
    """Run ``node`` by its function body on ``args``; returns its outputs in order."""
    onnx = require("onnx")
    if any(isinstance(a, list) for a in args):
        raise UnsupportedOperator(
            f"ember.onnx.load: {node.op_type} on sequences (ember has no sequence operators)"
        )
    key = ("fn", id(node), *(
        (str(a.dtype), tuple(a.shape)) if a is not None else None for a in args
    ))  # fmt: skip
    cached = m._host_reps.get(key)
    if cached is None:
        if not has_function(node, m.opset):
            raise UnsupportedOperator(
                f"ember.onnx.load: the ONNX operator {node.op_type} (in a function body) has "
                "no ember mapping"
            )
        fn, attrs = _body(m, node, args)
        nodes = m._prepare([_resolve(onnx, n, attrs) for n in fn.node])
        cached = m._host_reps[key] = (list(fn.input), list(fn.output), nodes)
    ins, outs, nodes = cached
    env: dict[str, Any] = {}
    for name, a in zip(ins, args):
        if name:
            env[name] = a
    for name in ins[len(args) :]:
        env[name] = None
    m._run(nodes, env)
    res = [env.get(n) for n in outs]
    return res[: len(node.output)]
