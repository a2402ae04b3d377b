"""Checking at start that every rank built the same model."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..._tensor import _new

__all__ = ["check_same_structure", "describe"]


def describe(module) -> list:
    """Names, shapes, dtypes of parameters and buffers, in registration order."""
    out = [
        ["param", n, list(p.shape), str(p.dtype), bool(p.requires_grad)]
        for n, p in module.named_parameters()
    ]
    out += [["buffer", n, list(b.shape), str(b.dtype)] for n, b in module.named_buffers()]
    return out


def check_same_structure(module, dist, who: str = "DistributedDataParallel", group=None) -> None:
    """Raise on every rank when any rank's model differs from rank 0's, naming both."""
    desc = describe(module)
    blob = json.dumps(desc).encode()
    digest = np.frombuffer(hashlib.sha256(blob).digest(), np.uint8).copy()
    n = dist.get_world_size(group)
    allv = _new(np.empty((n, digest.size), np.uint8))
    dist.all_gather_into_tensor(allv, _new(digest), group)
    digests = allv.numpy()
    differ = [r for r in range(n) if not np.array_equal(digests[r], digests[0])]
    if not differ:
        return
    # Send rank 0's description so each rank can say what differs.
    size = _new(np.array([len(blob)], np.int64))
    dist.broadcast(size, group=group, group_src=0)
    buf = _new(np.zeros(int(size.item()), np.uint8))
    me = dist.get_rank(group)
    if me == 0:
        buf._data[:] = np.frombuffer(blob, np.uint8)
    dist.broadcast(buf, group=group, group_src=0)
    ref = json.loads(bytes(buf._data).decode())
    detail = ""
    if me in differ:
        detail = " Here: " + _first_difference(ref, desc)
    raise RuntimeError(
        f"{who}: the model differs across ranks: rank(s) {differ} do not match rank 0 "
        f"{'of the group ' if group is not None else ''}"
        f"(parameters/buffers with different names, shapes or dtypes).{detail} Build the "
        "same model on every rank before wrapping it."
    )


def _first_difference(ref: list, mine: list) -> str:
    for a, b in zip(ref, mine):
        if a != b:
            theirs = " ".join(str(v) for v in a[:4])
            ours = " ".join(str(v) for v in b[:4])
            return f"rank 0 has {theirs}, this rank has {ours}."
    if len(ref) != len(mine):
        return f"rank 0 has {len(ref)} parameters+buffers, this rank has {len(mine)}."
    return "requires_grad flags differ."
