"""From a model (or function) and example inputs to the graph of one signature."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..compiler.ir import Dim, Graph, Literal, Var
from ._format import SavedModelError, TensorSpec

__all__ = ["Entry", "graph_specs", "parse_signatures", "trace_entry"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass
class Entry:
    """One signature to trace: ``fn(*example_inputs)``."""

    name: str
    fn: Callable
    example_inputs: tuple
    input_names: Sequence[str] | None
    output_names: Sequence[str] | None


def parse_signatures(
    model_or_fn: Any,
    example_inputs: Any,
    signatures: Mapping[str, Any] | None,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
) -> list[Entry]:
    """The signatures to trace. ``model_or_fn`` with ``example_inputs`` is ``serving_default``
    (unless ``signatures`` names one); each value of ``signatures`` is a callable, a method
    name of ``model_or_fn``, a ``(callable_or_name, example_inputs)`` pair, or a dict with
    ``fn`` and optional ``example_inputs``, ``input_names``, ``output_names``."""
    entries: dict[str, Entry] = {}
    if signatures is not None and not isinstance(signatures, Mapping):
        raise TypeError(
            "ember.export.save: signatures must be a dict {name: callable, method name, "
            f"(callable, example_inputs) or dict}}, got {type(signatures).__name__}"
        )
    for name, spec in (signatures or {}).items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"ember.export.save: signature name {name!r} must be letters, digits, '_', "
                "'.' or '-' (it names a file)"
            )
        fn, ex, ins, outs = spec, example_inputs, input_names, output_names
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(
                    f"ember.export.save: signature {name!r}: a tuple must be "
                    "(callable_or_method_name, example_inputs)"
                )
            fn, ex = spec
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"fn", "example_inputs", "input_names", "output_names"}
            if "fn" not in spec or unknown:
                raise ValueError(
                    f"ember.export.save: signature {name!r}: a dict needs 'fn' and may have "
                    "'example_inputs', 'input_names', 'output_names'"
                    + (f" (unknown keys {sorted(unknown)})" if unknown else "")
                )
            fn = spec["fn"]
            ex = spec.get("example_inputs", ex)
            ins = spec.get("input_names", ins)
            outs = spec.get("output_names", outs)
        if isinstance(fn, str):
            method = getattr(model_or_fn, fn, None)
            if model_or_fn is None or not callable(method):
                raise ValueError(
                    f"ember.export.save: signature {name!r} names method {fn!r}, which "
                    f"{type(model_or_fn).__name__} does not have"
                )
            fn = method
        entries[name] = Entry(name, _callable(fn, name), _as_args(ex, name), ins, outs)
    if model_or_fn is not None and "serving_default" not in entries:
        e = Entry(
            "serving_default",
            _callable(model_or_fn, "serving_default"),
            _as_args(example_inputs, "serving_default"),
            input_names,
            output_names,
        )
        entries = {"serving_default": e, **entries}
    if not entries:
        raise ValueError("ember.export.save: nothing to save (no model and no signatures)")
    return list(entries.values())


def _callable(fn: Any, name: str) -> Callable:
    if not callable(fn):
        raise TypeError(
            f"ember.export.save: signature {name!r}: expected a Module, function or method, "
            f"got {type(fn).__name__}"
        )
    return fn


def _as_args(example_inputs: Any, name: str) -> tuple:
    if example_inputs is None:
        raise ValueError(
            f"ember.export.save: signature {name!r} has no example_inputs (a tensor or a "
            "tuple of tensors that the model accepts; they fix the shapes and dtypes)"
        )
    args = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            from .._creation import from_numpy

            a = from_numpy(np.ascontiguousarray(a))
        if not isinstance(a, Tensor):
            raise TypeError(
                f"ember.export.save: signature {name!r}: example input {i} is a "
                f"{type(a).__name__}; expected ember Tensors or NumPy arrays"
            )
        out.append(a)
    if not out:
        raise ValueError(f"ember.export.save: signature {name!r}: example_inputs is empty")
    return tuple(out)


# -- tracing ---------------------------------------------------------------------------------


def trace_entry(e: Entry, dynamic_batch: bool) -> Graph:
    """The optimized inference graph of ``e.fn`` (eval mode, no autograd), with a symbolic
    batch axis when ``dynamic_batch``."""
    from ..autograd import no_grad
    from ..compiler.trace import CompileError

    owner = getattr(e.fn, "__self__", e.fn)
    modules = [m for m in getattr(owner, "modules", lambda: [])() if hasattr(m, "training")]
    was = [m.training for m in modules]
    if hasattr(owner, "eval"):
        owner.eval()
    try:
        with no_grad():
            graph = _graph(e, dynamic_batch)
    except CompileError as exc:
        raise SavedModelError(
            f"ember.export.save: signature {e.name!r} does not trace to one graph: {exc}"
        ) from exc
    finally:
        for m, t in zip(modules, was):
            m.training = t
    effects = sorted({q.prim.name for q in graph.eqns if q.mutates})
    if effects or graph.grad_effects or graph.input_grad_effects:
        raise SavedModelError(
            f"ember.export.save: signature {e.name!r} writes state while running "
            f"({', '.join(effects) or 'gradients'}); a saved model is a pure function"
        )
    return graph


def _graph(e: Entry, dynamic: bool) -> Graph:
    from .. import compile as ember_compile
    from ..compiler.ir import Dim

    cf = ember_compile(e.fn, dynamic=dynamic, fullgraph=True)
    graph = cf.graph(*e.example_inputs)
    batched = [v for v in graph.inputs[: len(e.example_inputs)] if v.shape]
    if dynamic and batched and not any(isinstance(v.shape[0], Dim) for v in batched):
        # the symbolic batch is traced at a second batch size; code that only works at the
        # example's batch size fails there (the compiler then keeps the example's shapes)
        why = next((ev for ev in cf.explain().events if "not symbolic" in ev), "")
        why = why.split("(batch not symbolic: ", 1)[-1].rstrip(")") if why else "unknown"
        raise SavedModelError(
            f"ember.export.save: signature {e.name!r} does not run at another batch size "
            f"({why}); pass dynamic_batch=False to save it with the example's fixed shapes"
        )
    return graph


# -- names and specs -------------------------------------------------------------------------


def default_input_names(fn: Callable, n: int) -> list[str]:
    """The parameter names of ``fn`` (``forward`` of a Module) when they are ``n`` plain
    positional parameters, else ``input_0``, ``input_1``, ..."""
    target = getattr(fn, "forward", fn)
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        params = []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds]
    if len(names) >= n and len(params) >= n and all(p.kind in kinds for p in params[:n]):
        return names[:n]
    return [f"input_{i}" for i in range(n)]


def check_names(given: Sequence[str] | None, n: int, what: str, sig: str) -> list[str] | None:
    if given is None:
        return None
    given = list(given)
    if len(given) != n or len(set(given)) != n or not all(isinstance(s, str) and s for s in given):
        raise ValueError(
            f"ember.export.save: signature {sig!r}: {what} must be {n} distinct non-empty "
            f"strings, got {given!r}"
        )
    return given


def graph_specs(
    graph: Graph, in_names: list[str], out_names: list[str]
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The tensor specs of a graph's inputs and outputs (a symbolic size becomes None)."""

    def spec(v: Var | Literal, name: str) -> TensorSpec:
        if isinstance(v, Literal):
            a = np.asarray(v.value)
            from .._dtype import from_numpy_dtype

            return TensorSpec(name, from_numpy_dtype(a.dtype).name, tuple(a.shape))
        shape = tuple(None if isinstance(d, Dim) else int(d) for d in v.shape)
        return TensorSpec(name, v.dtype.name, shape)

    ins = [spec(v, n) for v, n in zip(graph.inputs, in_names)]
    outs = [spec(v, n) for v, n in zip(graph.outputs, out_names)]
    return ins, outs
