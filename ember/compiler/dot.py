"""Pictures of graphs: DOT text, and SVG/PNG through Graphviz.

Inputs are green ellipses, captured state (parameters, shared variables) yellow boxes,
equations boxes with the primitive's name and its params (in-place ones red), outputs grey
ellipses; each edge carries the type of the value it moves (``f32[B,3]``).

Example:
    >>> import ember
    >>> from ember.compiler import trace_graph
    >>> dot = trace_graph(lambda x: x.exp().sum(), ember.ones(3)).to_dot()
    >>> dot.splitlines()[0], "exp" in dot
    ('digraph ember {', True)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from .ir import Graph, Literal, Var, _param_str

__all__ = ["GraphvizNotFoundError", "render", "to_dot"]

_MAX_PARAM = 40


class GraphvizNotFoundError(RuntimeError):
    """Rendering needs Graphviz, which is not installed."""


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _id(name: str) -> str:
    """``name`` as a DOT graph ID: as it is when it is a plain identifier, else quoted."""
    plain = name.isidentifier() and name.isascii() and name.lower() not in _KEYWORDS
    return name if plain else _q(name)


_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}


def to_dot(graph: Graph, name: str = "ember") -> str:
    """``graph`` in the DOT language (see the module docstring)."""
    lines = [
        f"digraph {_id(name)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    src: dict[int, str] = {}
    port: dict[int, str] = {}
    names = getattr(graph, "meta", None) or {}
    in_names = names.get("input_names") if isinstance(names, dict) else None
    for i, v in enumerate(graph.inputs):
        n = f"in{i}"
        label = in_names[i] if in_names and i < len(in_names) else f"input {i}"
        lines.append(
            f"  {n} [label={_q(label + chr(10) + v.type_str())}, shape=ellipse, "
            'style=filled, fillcolor="#d8f0d8"];'
        )
        src[id(v)] = n
    for i, v in enumerate(graph.captured):
        n = f"cap{i}"
        lines.append(
            f"  {n} [label={_q(graph.captured_names[i] + chr(10) + v.type_str())}, shape=box, "
            'style="filled,rounded", fillcolor="#fff3c4"];'
        )
        src[id(v)] = n
    for k, e in enumerate(graph.eqns):
        n = f"e{k}"
        ps = [f"{p}={_param_str(x)}" for p, x in sorted(e.params.items())]
        ps = [p if len(p) <= _MAX_PARAM else p[: _MAX_PARAM - 3] + "..." for p in ps]
        lits = [f"#{j}={v!r}" for j, v in enumerate(e.inputs) if isinstance(v, Literal)]
        head = e.prim.name + ("!" if e.mutates else "")
        members = getattr(e.prim, "members", None)  # a fused group: what it computes
        if members:
            head += "[" + ",".join(members) + "]"
        label = "\n".join([head, *lits, *ps])
        color = "#f8d0d0" if e.mutates else "#e4ecf8"
        lines.append(f'  {n} [label={_q(label)}, shape=box, style=filled, fillcolor="{color}"];')
        for a in e.inputs:
            if isinstance(a, Var) and id(a) in src:
                lines.append(
                    f"  {src[id(a)]} -> {n} [label={_q(port.get(id(a), '') + a.type_str())}];"
                )
        for j, o in enumerate(e.outputs):
            src[id(o)] = n
            if len(e.outputs) > 1:  # edges of a multi-output equation say which output
                port[id(o)] = f"#{j} "
    for i, r in enumerate(graph.outputs):
        n = f"out{i}"
        if not isinstance(r, Var):
            lines.append(f"  {n} [label={_q(f'output {i} = {r!r}')}, shape=ellipse];")
            continue
        lines.append(
            f'  {n} [label={_q(f"output {i}")}, shape=ellipse, style=filled, fillcolor="#e0e0e0"];'
        )
        if id(r) in src:
            lines.append(f"  {src[id(r)]} -> {n} [label={_q(port.get(id(r), '') + r.type_str())}];")
    for i, gv in graph.grad_effects:
        if gv is not None and id(gv) in src:
            lines.append(
                f"  {src[id(gv)]} -> cap{i} [style=dashed, label={_q('.grad')}, constraint=false];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(graph: Graph, path: Any, format: str = "svg") -> str:
    """Draw ``graph`` into ``path`` as SVG or PNG with Graphviz's ``dot`` program (or the
    ``graphviz`` Python package, which needs it too); returns ``path``."""
    if format not in ("svg", "png"):
        raise ValueError(f"render: format must be 'svg' or 'png', got {format!r}")
    path = os.fspath(path)
    text = to_dot(graph)
    exe = shutil.which("dot")
    if exe is None:
        try:
            import graphviz
        except ImportError:
            graphviz = None
        if graphviz is not None:
            try:
                data = graphviz.Source(text).pipe(format=format)
            except Exception as exc:
                raise GraphvizNotFoundError(_MISSING + f" ({exc})") from exc
            _write(path, data)
            return path
        raise GraphvizNotFoundError(_MISSING)
    try:
        r = subprocess.run(
            [exe, f"-T{format}"], input=text.encode(), capture_output=True, check=False
        )
    except OSError as exc:  # found on PATH but not runnable (a broken install)
        raise GraphvizNotFoundError(f"{_MISSING} ({exe}: {exc})") from None
    if r.returncode != 0:
        raise RuntimeError(f"render: Graphviz failed: {r.stderr.decode(errors='replace')}")
    _write(path, r.stdout)
    return path


_MISSING = (
    "render: drawing a graph needs Graphviz's 'dot' program: install Graphviz (apt install "
    "graphviz, brew install graphviz or conda install graphviz); graph.to_dot() gives the "
    "DOT text without it"
)


def _write(path: str, data: bytes) -> None:
    from .serialize import _atomic_write

    _atomic_write(path, data)
