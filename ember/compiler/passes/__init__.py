"""Graph passes; :func:`optimize` runs the default pipeline."""

from __future__ import annotations

from ..ir import Graph

__all__ = ["optimize"]


def optimize(graph: Graph) -> Graph:
    """The default pipeline (returns a new graph; the input is left as it is)."""
    return graph.copy()
