"""The part of :class:`ember.compiler.api.CompiledFunction` that makes sizes beyond the batch
symbolic: which axes (automatic dynamic shapes, ``mark_dynamic``), the traces at the points
of a :class:`~ember.compiler._shapes.Design`, lattices for floor-divided sizes, and the dry-run
check at each new combination of sizes (see the module doc of :mod:`ember.compiler.api`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from .._tensor import Tensor
from ._shapes import Design, marked_dims, resized_axes
from .ir import Dim, Ratio
from .trace import CompileError, Trace, trace, unflatten, unify_points

__all__ = ["DynamicDims"]

_MAX_SYMBOLS = 3  # 2**k + 1 traces build a graph with k symbolic sizes


class DynamicDims:
    """Mixin of :class:`~ember.compiler.api.CompiledFunction` (its state: ``specs``,
    ``static_dims``, ``static_names``, ``seen``, ``lattice``)."""

    # provided by CompiledFunction
    fn: Any
    fullgraph: bool
    dynamic: bool
    name: Any
    specs: list[dict[tuple[int, int], str]]
    static_dims: dict[tuple[int, int], str]
    static_names: dict[tuple[int, int], str]
    seen: list[tuple[tuple, list[tuple[int, ...]], dict[tuple[int, int], str]]]
    lattice: dict[str, int]
    _n_sym: int
    # (methods of CompiledFunction this mixin calls: declared for the type checker only)
    _key: Callable[..., tuple]
    _first_trace: Callable[[Trace], tuple[Any, str] | None]

    def _build_dynamic(self, args, kwargs, leaves, tree, spec):
        """A graph with the axes of ``spec`` symbolic (on a lattice of sizes when strided
        layers floor-divide them): ``(entry, note, spec)``, or ``(None, note, None)`` with
        the axes recorded as specialized and a warning."""
        entry: Any = None
        note = ""
        known = {n: m for n, m in self.lattice.items() if n in spec.values()}
        entry, why = self._build_multi(args, kwargs, leaves, spec, known)
        seen = self._lattice(leaves, tree, spec) if entry is None else {}
        fresh = {n: m for n, m in seen.items() if n not in known}
        if fresh and "not a polynomial" in why:
            # strided convolutions and pools floor-divide a size: fit on the coarsest
            # lattice needed (sizes stepping by 2, 4, ...: at most the change seen),
            # one graph per residue class of the size
            m = 2
            while entry is None and m <= max(fresh.values()):
                lattice = {**known, **{n: min(m, mo) for n, mo in fresh.items()}}
                entry, why2 = self._build_multi(args, kwargs, leaves, spec, lattice)
                if entry is not None:
                    self.lattice.update(lattice)
                m *= 2
            if entry is None:
                why = f"{why}; on lattices of sizes stepping by up to {m // 2}: {why2}"
        if entry is None:
            for pos in spec:
                self._not_symbolic(leaves, pos, why)
            where = ", ".join(_axis_name(leaves, p) for p in sorted(spec))
            note = f" ({where} cannot be symbolic: {why}; specialized)"
            spec = None
            warnings.warn(
                f"ember.compile: {self.name}: {where} cannot be symbolic ({why}); "
                "each new size retraces",
                stacklevel=4,
            )
        return entry, note, spec

    def _not_symbolic(self, leaves: list[Any], pos: tuple[int, int], why: str) -> None:
        """Record that axis ``pos`` (tensor index, axis) stays specialized, and why."""
        self.static_dims.setdefault(pos, why)
        self.static_names.setdefault(pos, _axis_name(leaves, pos))

    def _sig(self, leaves: list[Any], tree: Any) -> tuple:
        """The guard key with each tensor's shape replaced by its rank (and without the memory
        layout: a KV cache that is a transposed view on the first step and a contiguous
        ``cat`` after still finds its previous sizes)."""
        out = []
        for name, v in self._key(leaves, tree, False):
            if name == "memory layout of the arguments":
                continue
            if name.startswith("argument") and isinstance(v, tuple) and len(v) == 3:
                v = (len(v[0]), v[1], v[2])
            out.append((name, v))
        return tuple(out)

    def _dynamic_spec(self, leaves: list[Any], tree: Any) -> dict[tuple[int, int], str] | None:
        """The axes (beyond the batch) to make symbolic for this call: those marked with
        ``mark_dynamic`` and, with ``dynamic=True``, those whose size changed since a graph
        was traced for the same signature (automatic dynamic shapes, as torch.compile)."""
        tensors = [a for a in leaves if isinstance(a, Tensor)]
        shapes = [t._data.shape for t in tensors]
        want = {(ti, ax) for ti, t in enumerate(tensors) for ax in marked_dims(t)}
        base: dict[tuple[int, int], str] = {}
        prev: list[tuple[int, ...]] | None = None
        if self.dynamic and self.seen:
            sig = self._sig(leaves, tree)
            for sg, shp, sp in reversed(self.seen):
                if sg == sig:
                    prev, base = shp, sp
                    break
            if prev is not None:
                for ti, (a, b) in enumerate(zip(prev, shapes)):
                    want |= {(ti, ax) for ax, (x, y) in enumerate(zip(a, b)) if x != y}
        # a symbol whose axes now differ in size (H == W before, not now): split it
        by_sym: dict[str, set[int]] = {}
        for (ti, ax), sym in base.items():
            by_sym.setdefault(sym, set()).add(shapes[ti][ax])
        split = {p for p, n in base.items() if len(by_sym[n]) > 1}
        if split:
            base = {p: n for p, n in base.items() if p not in split}
            want |= split
        batch_pos: set[tuple[int, int]] = set()
        if self.dynamic:
            first = next((s for s in shapes if s), None)
            if first is not None and first[0] > 0:
                batch_pos = {(ti, 0) for ti, s in enumerate(shapes) if s and s[0] == first[0]}
        new = sorted(
            p
            for p in want
            if p not in base
            and p not in batch_pos
            and p not in self.static_dims
            and shapes[p[0]][p[1]] >= 2  # sizes 0 and 1 broadcast: specialized, as torch
        )
        if not new:
            return dict(base) or None
        spec = dict(base)
        groups: dict[tuple, str] = {}
        if batch_pos and prev is not None:
            # an axis that changed as the batch did is the batch (an RNN's (layers, batch,
            # hidden) state beside a batch-first input): one symbol, as torch's duck sizing
            t0 = min(batch_pos)[0]
            if prev[t0]:
                groups[(shapes[t0][0], prev[t0][0])] = "B"
        n_sym = (1 if batch_pos else 0) + len(set(spec.values()))
        named = {p: n for sp in self.specs for p, n in sp.items()}  # names given before
        for ti, ax in new:
            g = (shapes[ti][ax], None if prev is None else prev[ti][ax])
            name = groups.get(g) or named.get((ti, ax))
            if name != "B" and (name is None or name not in spec.values()):
                if n_sym >= _MAX_SYMBOLS:
                    self._not_symbolic(leaves, (ti, ax), f"more than {_MAX_SYMBOLS} symbolic sizes")
                    continue
                n_sym += 1
            if name is None:
                self._n_sym += 1
                name = f"s{self._n_sym}"
            groups.setdefault(g, name)
            spec[(ti, ax)] = name
        return spec or None

    def _lattice(self, leaves, tree, spec) -> dict[str, int]:
        """Per symbol of ``spec``: the largest power of two (up to 64) dividing the change of
        its size since the last graph of this signature (symbols that did not change or
        changed by an odd amount are left out): the coarsest lattice worth a try."""
        tensors = [a for a in leaves if isinstance(a, Tensor)]
        sig = self._sig(leaves, tree)
        prev = next((shp for sg, shp, _sp in reversed(self.seen) if sg == sig), None)
        if prev is None:
            return {}
        out: dict[str, int] = {}
        for (ti, ax), name in spec.items():
            d = abs(tensors[ti]._data.shape[ax] - prev[ti][ax])
            if d and name not in out:
                m = 1
                while d % (2 * m) == 0 and m < 64:
                    m *= 2
                if m > 1:
                    out[name] = m
        return out

    def _build_multi(self, args, kwargs, leaves, spec, lattice=None):
        """A graph with the batch and the axes of ``spec`` symbolic, from traces at the
        points of a :class:`~ember.compiler._shapes.Design` (symbols in ``lattice`` step by
        their modulus); ``(None, why)`` when the traces do not fit one."""
        tensors = [a for a in leaves if isinstance(a, Tensor)]
        shapes = [t._data.shape for t in tensors]
        sym_pos: dict[str, list[tuple[int, int]]] = {}
        if self.dynamic:
            first = next((s for s in shapes if s), None)
            if first is not None and first[0] > 0:
                for ti, sh in enumerate(shapes):
                    if sh and sh[0] == first[0] and (ti, 0) not in spec:
                        sym_pos.setdefault("B", []).append((ti, 0))
        for pos, name in sorted(spec.items()):
            sym_pos.setdefault(name, []).append(pos)
        names = list(sym_pos)
        base = [shapes[sym_pos[n][0][0]][sym_pos[n][0][1]] for n in names]
        mod = [(lattice or {}).get(n, 1) for n in names]
        # smaller sizes than the call's where they stay >= 2 (a sequence may not grow past
        # a model's maximum length), else larger
        steps = [m if n == "B" or b < 4 * m else -m for n, b, m in zip(names, base, mod)]
        design = Design(names, base, steps)
        traces: list[Trace] = []
        for j, pt in enumerate(design.points()):
            sizes = {pos: pt[n] for n in names for pos in sym_pos[n]}
            a, k = self._copies_at(args, kwargs, leaves, sizes, j)
            try:
                t = trace(self.fn, a, k, self.fullgraph)
            except CompileError:
                raise
            except Exception as exc:
                if j == 0:
                    raise
                at = ", ".join(f"{n}={v}" for n, v in pt.items())
                return None, f"tracing at {at} failed ({type(exc).__name__}: {exc})"
            if j == 0:
                early = self._first_trace(t)
                if early is not None:
                    return early
            elif t.breaks:
                at = ", ".join(f"{n}={v}" for n, v in pt.items())
                return None, f"a graph break at {at}"
            traces.append(t)
        symbols = {n: sym_pos[n][0] for n in names}
        from .api import _Entry, _name_captured, _slim

        g, why = unify_points(traces, design, symbols)
        if g is None:
            return None, why
        _name_captured(g, traces[0])
        entry = _Entry(g, g, static=False)
        entry.design, entry.spec = design, dict(spec)
        entry.traces = [_slim(t) for t in traces]
        entry.sizes = {tuple(sorted(p.items())) for p in design.points()}
        return entry, ""

    def _copies_at(self, args, kwargs, leaves, sizes: dict[tuple[int, int], int], shift: int):
        new = []
        ti = 0
        for a in leaves:
            if isinstance(a, Tensor):
                ax = {x: n for (i, x), n in sizes.items() if i == ti}
                a = resized_axes(a, ax, shift)
                ti += 1
            new.append(a)
        from .api import _tree_of

        return unflatten(_tree_of(args, kwargs), new)

    def _holds_at_point(self, entry: Any, args, kwargs, leaves, env: dict[str, int]) -> str:
        """:meth:`_holds_at` for graphs with several symbolic sizes."""
        from .api import _ratios, _same_graph

        assert entry.design is not None
        a, k = self._copies_at(args, kwargs, leaves, {}, 0)
        t = trace(self.fn, a, k, self.fullgraph)
        if t.breaks:
            return "a graph break at these sizes"
        design = entry.design.add({n: env[n] for n in entry.design.names})
        g, why = unify_points([*entry.traces, t], design, entry.unified.symbols)
        if g is None:
            return why
        if not _same_graph(g, entry.unified):
            return "the graph at these sizes differs (Python code depends on them)"
        for old, new in zip(_ratios(entry.unified), _ratios(g)):
            if isinstance(old, Ratio) and isinstance(new, Ratio):
                old.known.update(new.known)  # bit-exact from now on
        return ""


def _leaf_index(leaves: list[Any], ti: int) -> int:
    """The argument (leaf) index of tensor argument ``ti``."""
    n = -1
    for i, a in enumerate(leaves):
        if isinstance(a, Tensor):
            n += 1
            if n == ti:
                return i
    return ti


def _axis_name(leaves: list[Any], pos: tuple[int, int]) -> str:
    return f"argument {_leaf_index(leaves, pos[0])} dim {pos[1]}"


def _symbolic_axes(entry: Any, leaves: list[Any]) -> list[str]:
    """``argument i dim a: S`` for every input axis of the graph that is a bare symbol."""
    out = []
    n_args = sum(1 for a in leaves if isinstance(a, Tensor))
    for ti, v in enumerate(entry.unified.inputs[:n_args]):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim) and d.name is not None and (d.coef, d.offset) == (1, 0):
                out.append(f"{_axis_name(leaves, (ti, ax))}: {d.name}")
    return out
