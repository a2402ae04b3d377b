"""``ember.onnx.export``: a traced graph lowered to an ONNX model."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..compiler.ir import Dim, Graph, Literal, Var
from ._context import Context, Unsupported
from ._deps import MIN_OPSET, max_opset, require
from .lowering import LOWERINGS
from .unsupported import reason

__all__ = ["ExportError", "export", "supported_opsets"]


class ExportError(ValueError):
    """A model that cannot be exported; the message lists every problem found."""


def supported_opsets() -> range:
    """The ONNX opsets :func:`export` writes: 17 to the newest that the installed ``onnx``
    and ``onnxruntime`` both accept.

    Example:
        >>> import ember.onnx
        >>> ember.onnx.supported_opsets()[0]
        17
    """
    return range(MIN_OPSET, max_opset() + 1)


def export(
    model_or_fn: Any,
    example_inputs: Any,
    path: str | os.PathLike | None = None,
    *,
    opset: int = 17,
    dynamic_axes: Mapping[str, Any] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_shapes: Any = None,
) -> Any:
    """Export a module or function to ONNX (inference: eval mode, no autograd).

    The function is traced into ember's graph IR (:func:`ember.compile`'s tracer) and each
    primitive is lowered through :data:`ember.onnx.lowering.LOWERINGS`; parameters and
    buffers become initializers named as in ``named_parameters()``. ``example_inputs`` is
    a tensor or a tuple of positional arguments. ``dynamic_axes`` (``{name: {axis: label}}``
    or ``{name: [axes]}``, names from ``input_names``/``output_names``) makes those axes
    symbolic: any input axis (the batch, a sequence length, an image size: see
    :func:`ember.compile.mark_dynamic`) and the output axes that follow from them (an
    output size such as ``batch*seq`` is written as that expression). ``dynamic_shapes``
    (``torch.export``'s way, inputs only) says the same per input: a tuple/list with one entry
    per example input, or a dict keyed by input name (``input_names``, else the function's
    parameter names); each entry ``None`` or ``{axis: label}`` or a per-axis sequence whose
    non-``None`` items are labels (strings, or objects with a ``__name__`` such as
    ``torch.export.Dim("seq")``).
    Returns the ``onnx.ModelProto`` (also written to ``path`` when given); the model passes
    ``onnx.checker.check_model(full_check=True)``.

    Example:
        >>> import ember, ember.onnx
        >>> net = ember.nn.Sequential(ember.nn.Linear(4, 3), ember.nn.ReLU())
        >>> m = ember.onnx.export(net, ember.randn(2, 4), None,
        ...                       dynamic_axes={"input_0": {0: "batch"}})
        >>> [n.op_type for n in m.graph.node]
        ['Gemm', 'Relu', 'Identity']
        >>> m.graph.input[0].type.tensor_type.shape.dim[0].dim_param
        'batch'
    """
    onnx = require("onnx")
    if not isinstance(opset, int) or opset not in supported_opsets():
        ops = supported_opsets()
        raise ValueError(
            f"ember.onnx.export: opset {opset!r} is not supported; expected {ops[0]} to {ops[-1]}"
        )
    args = _as_args(example_inputs)
    in_names = _names(input_names, len(args), "input", "input_names")
    if dynamic_shapes is not None:
        if dynamic_axes:
            raise ValueError("ember.onnx.export: pass dynamic_axes or dynamic_shapes, not both")
        dynamic_axes = _from_dynamic_shapes(dynamic_shapes, model_or_fn, in_names, args)
    graph, not_symbolic = _trace(model_or_fn, args, dynamic_axes, in_names)
    problems: list[tuple[str, str]] = []
    out_names = _names(output_names, len(graph.outputs), "output", "output_names")
    symbols = _symbol_names(graph, dynamic_axes, in_names, out_names, not_symbolic)

    ctx = Context(graph, opset)
    for v, n in zip(graph.inputs, in_names):
        ctx.names[id(v)] = ctx.input_names[id(v)] = n
    used = set(in_names) | set(out_names)
    for v, n, t in zip(graph.captured, graph.captured_names, graph.captured_tensors):
        n = _unique(re.sub(r"[^0-9A-Za-z_.:/-]", "_", n) or "param", used)
        ctx.names[id(v)] = n
        ctx.initializers.append(onnx.numpy_helper.from_array(np.asarray(t._data), n))

    for e in graph.eqns:
        lower = LOWERINGS.get(e.prim.name)
        if lower is None:
            problems.append((e.prim.name, f"no ONNX lowering: {reason(e.prim.name)}"))
            continue
        try:
            outs = lower(ctx, e)
        except Unsupported as why:
            problems.append((e.prim.name, str(why)))
            continue
        outs = [outs] if isinstance(outs, str) else list(outs)
        for v, n in zip(e.outputs, outs):
            if n is not None:
                ctx.names[id(v)] = n
            elif ctx.used(v):
                problems.append((e.prim.name, "an output this lowering does not produce"))
    if problems:
        raise ExportError(_report(problems))

    outputs = []
    for v, n in zip(graph.outputs, out_names):
        src = ctx.inp(v)
        ctx.nodes.append(onnx.helper.make_node("Identity", [src], [n]))
        outputs.append(_value_info(onnx, n, v, symbols))
    inputs = [_value_info(onnx, n, v, symbols) for v, n in zip(graph.inputs, in_names)]
    name = type(model_or_fn).__name__ if hasattr(model_or_fn, "forward") else "graph"
    og = onnx.helper.make_graph(ctx.nodes, name, inputs, outputs, ctx.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    from .. import __version__

    model = onnx.helper.make_model(
        og, opset_imports=opsets, producer_name="ember", producer_version=__version__
    )
    model.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


# -- tracing ---------------------------------------------------------------------------------


def _as_args(example_inputs: Any) -> tuple:
    args = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            from .._creation import tensor

            a = tensor(a)
        if not isinstance(a, Tensor):
            raise TypeError(
                f"ember.onnx.export: example input {i} is a {type(a).__name__}; expected "
                "ember Tensors (or NumPy arrays)"
            )
        out.append(a)
    if not out:
        raise ValueError("ember.onnx.export: example_inputs is empty")
    return tuple(out)


def _trace(
    fn: Any, args: tuple, dynamic_axes: Mapping[str, Any] | None, in_names: list[str]
) -> tuple[Graph, dict[tuple[int, int], str]]:
    """The graph of ``fn`` at ``args``, with the input axes ``dynamic_axes`` names symbolic
    (marked dynamic on copies of the example inputs); also the axes that could not be made
    symbolic, with why."""
    from .. import compile as ember_compile
    from ..autograd import no_grad
    from ..compiler._shapes import mark_dynamic
    from ..compiler.trace import CompileError

    dynamic = bool(dynamic_axes)
    if dynamic_axes and isinstance(dynamic_axes, Mapping):
        args = tuple(a.detach() for a in args)  # marks go on copies, not the caller's tensors
        for name, axes in dynamic_axes.items():
            if name in in_names:
                a = args[in_names.index(name)]
                for ax in axes.keys() if isinstance(axes, Mapping) else axes:
                    if isinstance(ax, int) and -a.ndim <= ax < a.ndim and ax % a.ndim:
                        mark_dynamic(a, ax)

    if not callable(fn):
        raise TypeError(
            f"ember.onnx.export: expected a Module or function, got {type(fn).__name__}"
        )
    modules = [m for m in getattr(fn, "modules", lambda: [])() if hasattr(m, "training")]
    was = [m.training for m in modules]
    if hasattr(fn, "eval"):
        fn.eval()
    try:
        with no_grad():
            cf = ember_compile(fn, dynamic=dynamic, fullgraph=True)
            graph = cf.graph(*args)
            not_symbolic = dict(cf.static_dims)
    except CompileError as e:
        raise ExportError(f"ember.onnx.export: the model does not trace to a graph: {e}") from e
    finally:
        for m, t in zip(modules, was):
            m.training = t
    effects = [e.prim.name for e in graph.eqns if e.mutates]
    if effects:
        raise ExportError(
            "ember.onnx.export: the model writes state in place while running "
            f"({', '.join(sorted(set(effects)))}); ONNX graphs are pure functions"
        )
    return graph, not_symbolic


# -- checks and names ------------------------------------------------------------------------


def _from_dynamic_shapes(spec: Any, fn: Any, in_names: list[str], args: tuple) -> dict:
    """``dynamic_shapes`` (``torch.export``'s form) as ``dynamic_axes``."""
    if isinstance(spec, Mapping):
        params = _param_names(fn)
        entries = []
        for key, v in spec.items():
            if key in in_names:
                i = in_names.index(key)
            elif key in params and params.index(key) < len(args):
                i = params.index(key)
            else:
                raise ValueError(
                    f"ember.onnx.export: dynamic_shapes names {key!r}, which is not an input "
                    f"(input names {in_names}, parameters {params[: len(args)]})"
                )
            entries.append((i, v))
    elif isinstance(spec, (tuple, list)):
        if len(spec) != len(args):
            raise ValueError(
                f"ember.onnx.export: dynamic_shapes has {len(spec)} entries for "
                f"{len(args)} example inputs"
            )
        entries = list(enumerate(spec))
    else:
        raise TypeError(
            "ember.onnx.export: dynamic_shapes must be a tuple/list (one entry per input) or a "
            f"dict keyed by input name, got {type(spec).__name__}"
        )
    out: dict[str, dict[int, str | None]] = {}
    for i, v in entries:
        if v is None:
            continue
        items = v.items() if isinstance(v, Mapping) else enumerate(v)
        axes = {int(a): _label(d) for a, d in items if d is not None}
        if axes:
            out[in_names[i]] = axes
    return out


def _label(d: Any) -> str | None:
    if isinstance(d, str):
        return d
    name = getattr(d, "__name__", None)  # torch.export.Dim("seq")
    if isinstance(name, str):
        return name
    if isinstance(d, Dim) and d.name is not None:
        return d.name
    return None  # auto-named


def _param_names(fn: Any) -> list[str]:
    import inspect

    target = fn.forward if hasattr(fn, "forward") else fn
    try:
        return list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return []


def _report(problems: list[tuple[str, str]]) -> str:
    """Every problem once, with how many equations have it."""
    seen = Counter(problems)
    lines = [f"  {n}: {why} ({k} use{'s' if k > 1 else ''})" for (n, why), k in seen.items()]
    prims = sorted({n for n, _ in problems})
    return (
        f"ember.onnx.export: cannot export {len(prims)} primitive(s) "
        f"({', '.join(prims)}):\n" + "\n".join(lines)
    )


def _unique(n: str, used: set[str]) -> str:
    base, k = n, 1
    while n in used:
        n, k = f"{base}_{k}", k + 1
    used.add(n)
    return n


def _names(given: Sequence[str] | None, n: int, prefix: str, what: str) -> list[str]:
    if given is None:
        return [f"{prefix}_{i}" for i in range(n)]
    given = list(given)
    if len(given) != n or len(set(given)) != n or not all(isinstance(s, str) for s in given):
        raise ValueError(
            f"ember.onnx.export: {what} must be {n} distinct strings (the model has {n} "
            f"{prefix}s), got {given!r}"
        )
    return given


def _symbol_names(
    graph: Graph,
    dynamic_axes: Mapping[str, Any] | None,
    in_names: list[str],
    out_names: list[str],
    not_symbolic: dict[tuple[int, int], str] | None = None,
) -> dict[str, str]:
    """Symbol -> the label ``dynamic_axes`` gives it (checked: each axis is symbolic)."""
    labels: dict[str, str] = {}
    if not dynamic_axes:
        return labels
    if not isinstance(dynamic_axes, Mapping):
        raise TypeError("ember.onnx.export: dynamic_axes must be a dict {name: {axis: label}}")
    values: dict[str, Var | Literal] = dict(zip(in_names, graph.inputs))
    values.update(zip(out_names, graph.outputs))
    for name, axes in dynamic_axes.items():
        if name not in values:
            raise ValueError(
                f"ember.onnx.export: dynamic_axes names {name!r}, which is not an input or "
                f"output (inputs {in_names}, outputs {out_names})"
            )
        if isinstance(axes, Mapping):
            items = list(axes.items())
        else:
            items = [(a, None) for a in axes]
        v = values[name]
        shape = v.shape if isinstance(v, Var) else ()
        for axis, label in items:
            ax = int(axis)
            if not -len(shape) <= ax < len(shape):
                raise ValueError(
                    f"ember.onnx.export: dynamic_axes[{name!r}]: axis {axis} is out of range "
                    f"for a {len(shape)}-D value"
                )
            d = shape[ax]
            if not isinstance(d, Dim):
                why = ""
                if name in in_names:
                    why = (not_symbolic or {}).get((in_names.index(name), ax % len(shape)), "")
                raise ValueError(  # noqa: TRY004 (a bad value, not a bad argument type)
                    f"ember.onnx.export: dynamic_axes[{name!r}]: axis {axis} has the fixed "
                    f"size {d} in the traced graph"
                    + (
                        f"; it cannot be symbolic: {why}"
                        if why
                        else " (an output axis is dynamic only when it follows from a "
                        "dynamic input axis)"
                    )
                )
            if d.name is not None and d.coef == 1 and d.offset == 0:
                default = "batch" if d.name == "B" else d.name
                labels.setdefault(d.name, str(label) if label is not None else default)
    return labels


def _value_info(onnx: Any, name: str, v: Var | Literal, symbols: dict[str, str]) -> Any:
    if isinstance(v, Literal):
        arr = np.asarray(v.value)
        dtype, shape = arr.dtype, list(arr.shape)
    else:
        dtype = v.dtype.np
        shape = [_dim_label(d, symbols) for d in v.shape]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return onnx.helper.make_tensor_value_info(name, elem, shape)


def _dim_label(d: Any, symbols: dict[str, str]) -> Any:
    if not isinstance(d, Dim):
        return int(d)

    def label(s: str) -> str:
        return symbols.get(s, "batch" if s == "B" else s)

    terms = {tuple(label(s) for s in m): c for m, c in d.terms}
    return str(Dim.poly(terms, d.offset))
