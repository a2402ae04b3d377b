"""Runs the ONNX node conformance cases through :class:`~ember.onnx.backend.EmberBackend`.

The cases are the ones the ``onnx`` package ships as generators
(``onnx.backend.test.case.node``: the model and input/output arrays that its
``backend/test/data/node`` directories are written from), built in memory, so no data
files are needed. Each case is *unsupported* when its graph uses an operator that has no
ember mapping, *dtype* when it uses an element type ember has no dtype for (float8,
bfloat16, int4, uint16-64, strings, complex), else *pass* or *fail* by the ONNX runner's
rule (same dtype and shape, values within the case's ``rtol``/``atol``, NaNs where the
reference has them).

Example:
    >>> from ember.onnx.conformance import node_cases, run_case
    >>> case = next(c for c in node_cases(("Relu",)) if c.name == "test_relu")
    >>> case.op, run_case(case).status
    ('Relu', 'pass')
"""

from __future__ import annotations

import contextlib
import functools
import signal
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._deps import require

__all__ = ["NodeCase", "Result", "node_cases", "run_case", "summarize"]


@dataclass(frozen=True)
class NodeCase:
    name: str
    op: str  # the operator under test (an ``_expanded`` case counts for its operator)
    model: Any
    data_sets: list
    rtol: float
    atol: float

    def ops(self) -> set[str]:
        """Every operator the case's graph uses, subgraphs included."""
        out: set[str] = set()

        def walk(g: Any) -> None:
            for n in g.node:
                out.add(n.op_type)
                for a in n.attribute:
                    if a.g.node:
                        walk(a.g)
                    for sub in a.graphs:
                        walk(sub)

        walk(self.model.graph)
        return out


@dataclass(frozen=True)
class Result:
    status: str  # "pass", "fail", "unsupported" (an operator) or "dtype" (an element type)
    detail: str = ""


@functools.cache
def node_cases(ops: tuple[str, ...] | None = None) -> tuple[NodeCase, ...]:
    """The node test cases of the installed ``onnx``, by name: all of them, or those of the
    operators ``ops`` (built from those operators' generator modules only, which is faster)."""
    require("onnx")
    import importlib
    import pkgutil

    gen = importlib.import_module("onnx.backend.test.case.node")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if ops is None:
            raw = list(gen.collect_testcases(None))
        else:
            # a generator module (``batch_normalization``, ``and_``) makes its cases on import
            want = {o.lower() for o in ops}
            for mod in pkgutil.iter_modules(gen.__path__):
                key = mod.name.replace("_", "")
                if key in want or key.removesuffix("op") in want:  # rangeop.py: Range
                    importlib.import_module(f"{gen.__name__}.{mod.name}")
            raw = list(gen._NodeTestCases)
    single = {c.name: c.model.graph.node[0].op_type for c in raw if len(c.model.graph.node) == 1}
    cases = []
    for c in raw:
        base = c.name.split("_expanded")[0]
        op = single.get(c.name) or single.get(base) or c.model.graph.node[0].op_type
        if ops is not None and op not in ops:
            continue
        data = [(_arrays(i), _arrays(o)) for i, o in c.data_sets or []]
        cases.append(NodeCase(c.name, op, c.model, data, c.rtol, c.atol))
    return tuple(sorted(cases, key=lambda c: c.name))


def _arrays(xs: Any) -> list:
    """Some generators store inputs/outputs as ``TensorProto``s; the runner reads them as arrays."""
    import onnx

    out = []
    for x in xs:
        if isinstance(x, onnx.TensorProto):
            x = onnx.numpy_helper.to_array(x)
        out.append(x)
    return out


# ONNX element types ember has a dtype for (no unsigned 16-64 bit, no float8/int4/bfloat16,
# no strings or complex numbers: the same set as PyTorch's commonly supported dtypes)
_EMBER_ELEM_TYPES = {1, 2, 3, 5, 6, 7, 9, 10, 11}  # float uint8 int8 int16 int32 int64 bool f16 f64


def _elem_types(model: Any) -> set[int]:
    """Every tensor element type the graph's inputs, outputs, initializers and casts name."""
    types: set[int] = set()

    def of(vi: Any) -> None:
        t = vi.type
        if t.HasField("tensor_type"):
            types.add(t.tensor_type.elem_type)

    def walk(g: Any) -> None:
        for vi in [*g.input, *g.output]:
            of(vi)
        types.update(i.data_type for i in g.initializer)
        for n in g.node:
            for a in n.attribute:
                if n.op_type in ("Cast", "CastLike") and a.name == "to":
                    types.add(a.i)
                if a.HasField("t"):
                    types.add(a.t.data_type)
                if a.g.node:
                    walk(a.g)

    walk(model.graph)
    types.discard(0)
    return types


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def on_alarm(*_: Any) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _compare(got: Any, want: Any, rtol: float, atol: float) -> None:
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            raise AssertionError("sequence output differs in length")
        for g, w in zip(got, want):
            _compare(g, w, rtol, atol)
        return
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype:
        raise AssertionError(f"dtype {got.dtype}, expected {want.dtype}")
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape}, expected {want.shape}")
    if want.dtype.kind in "OUS":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def run_case(case: NodeCase, time_limit: int = 20) -> Result:
    """Run one case's data sets through the ember backend."""
    from ._import import IMPORTS
    from ._import_function import UnsupportedOperator, has_function
    from .backend import EmberBackend

    opset = next((o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), 0)
    missing = sorted(
        {n.op_type for n in case.model.graph.node if n.op_type not in IMPORTS
         and not has_function(n, opset)} | {o for o in case.ops() - set(IMPORTS)
         if o not in {n.op_type for n in case.model.graph.node}}
    )  # fmt: skip
    if missing:
        return Result("unsupported", "no mapping for " + ", ".join(missing))
    onnx = require("onnx")
    bad = sorted(_elem_types(case.model) - _EMBER_ELEM_TYPES)
    if bad:
        names = [onnx.TensorProto.DataType.Name(t) for t in bad]
        return Result("dtype", "no ember dtype for " + ", ".join(names))
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), _time_limit(time_limit):
            warnings.simplefilter("ignore")
            rep = EmberBackend.prepare(case.model)
            for inputs, outputs in case.data_sets:
                got = rep.run(list(inputs))
                if len(got) != len(outputs):
                    raise AssertionError(f"{len(got)} outputs, expected {len(outputs)}")
                for g, w in zip(got, outputs):
                    _compare(g, w, case.rtol, case.atol)
    except UnsupportedOperator as e:
        return Result("unsupported", str(e))
    except Exception as e:  # noqa: BLE001 (any error is this case failing; the report says which)
        msg = str(e).strip().splitlines()
        return Result("fail", f"{type(e).__name__}: {msg[0] if msg else ''}"[:160])
    return Result("pass")


def summarize(results: dict[str, Result], cases: tuple[NodeCase, ...]) -> dict[str, dict]:
    """Per operator: counts of pass/fail/unsupported and the failing case names."""
    table: dict[str, dict] = {}
    for c in cases:
        r = results[c.name]
        row = table.setdefault(
            c.op, {"pass": 0, "fail": 0, "unsupported": 0, "dtype": 0, "failing": []}
        )
        row[r.status] += 1
        if r.status == "fail":
            row["failing"].append((c.name, r.detail))
    return table
