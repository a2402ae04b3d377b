"""Sub-groups of the default process group (``new_group`` and friends, PyTorch's names).

A sub-group has its own backend (an MPI communicator split off the default one) and its own
collective counter, and shares the default group's timeout watchdog and failure state.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np

from ._group import ProcessGroup, _current, _issue, _timeout_seconds, get_world_size, group
from .errors import DistError

__all__ = [
    "get_global_rank",
    "get_group_rank",
    "get_process_group_ranks",
    "new_group",
    "new_subgroups",
    "new_subgroups_by_enumeration",
]


def get_process_group_ranks(group) -> list[int]:
    """The global ranks of ``group``'s members, in group-rank order.

    Example:
        >>> import ember.distributed as dist  # doctest: +SKIP
        >>> dist.get_process_group_ranks(dist.new_group([2, 0]))  # doctest: +SKIP
        [0, 2]
    """
    return list(_current(group).ranks)


def get_global_rank(group, group_rank: int) -> int:
    """The global rank of the member ``group_rank`` of ``group``."""
    g = _current(group)
    if isinstance(group_rank, bool) or not isinstance(group_rank, int):
        raise TypeError(f"get_global_rank: group_rank must be an int, got {group_rank!r}")
    if not 0 <= group_rank < len(g.ranks):
        raise ValueError(
            f"get_global_rank: group rank {group_rank} is out of range for a group of "
            f"{len(g.ranks)} ranks"
        )
    return g.ranks[group_rank]


def get_group_rank(group, global_rank: int) -> int:
    """The rank inside ``group`` of the process with global rank ``global_rank``."""
    g = _current(group)
    r = g.group_rank(global_rank)
    if r is None:
        raise ValueError(
            f"get_group_rank: global rank {global_rank} is not part of the group "
            f"(its ranks are {g.ranks})"
        )
    return r


def new_group(
    ranks: Sequence[int] | None = None,
    timeout: float | datetime.timedelta | None = None,
    backend: str | None = None,
    pg_options=None,
    use_local_synchronization: bool = False,
    group_desc: str | None = None,
):
    """A process group of the given global ranks (all ranks when ``ranks`` is None).

    As in PyTorch every rank of the default group must call it, in the same order and with
    the same ``ranks``; members are ordered by global rank. Ranks outside the new group get
    ``GroupMember.NON_GROUP_MEMBER``: collectives given it do nothing (with a warning).
    ``src``/``dst`` arguments of collectives stay global ranks (``group_src``/``group_dst``
    take ranks inside the group).

    Example:
        >>> import ember, ember.distributed as dist  # doctest: +SKIP
        >>> evens = dist.new_group([0, 2])  # doctest: +SKIP
        >>> t = ember.ones(3)  # doctest: +SKIP
        >>> if dist.get_rank() in (0, 2):  # doctest: +SKIP
        ...     dist.all_reduce(t, group=evens)  # t == 2 on ranks 0 and 2
    """
    w = _current()
    if backend not in (None, "mpi", w.backend.name):
        raise ValueError(f"new_group: unknown backend {backend!r}; available: 'mpi'")
    if use_local_synchronization:
        raise NotImplementedError(
            "new_group: use_local_synchronization=True is not supported; every rank of the "
            "default group creates the group together"
        )
    n = w.backend.world_size
    if ranks is None:
        members = list(range(n))
    else:
        if isinstance(ranks, (str, bytes)) or not isinstance(ranks, Sequence):
            raise TypeError(f"new_group: ranks must be a list of ints, got {ranks!r}")
        for r in ranks:
            if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < n:
                raise ValueError(
                    f"new_group: ranks must be global ranks in [0, {n - 1}], got {r!r}"
                )
        members = sorted(ranks)
        if len(set(members)) != len(members):
            raise ValueError(f"new_group: ranks has duplicates: {list(ranks)}")
        if not members:
            raise ValueError("new_group: ranks must not be empty")
    seconds = w.timeout if timeout is None else _timeout_seconds(timeout)
    _check_same_members(w, members)
    sub = w.backend.split(members)
    if sub is None:
        return group.NON_GROUP_MEMBER
    pg = ProcessGroup(sub, seconds, root=w, ranks=members)
    w.subgroups.append(pg)
    return pg


def new_subgroups_by_enumeration(
    ranks_per_subgroup_list: Sequence[Sequence[int]],
    timeout: float | datetime.timedelta | None = None,
    backend: str | None = None,
    pg_options=None,
    group_desc: str | None = None,
):
    """One group per list of ranks (every rank calls it); returns ``(this rank's group,
    all groups)``. A rank may be in at most one of the lists."""
    seen: set[int] = set()
    for ranks in ranks_per_subgroup_list:
        overlap = seen & set(ranks)
        if overlap:
            raise ValueError(
                f"new_subgroups_by_enumeration: rank(s) {sorted(overlap)} appear in more than "
                "one subgroup"
            )
        seen |= set(ranks)
    mine, groups = None, []
    for ranks in ranks_per_subgroup_list:
        g = new_group(list(ranks), timeout, backend, pg_options, group_desc=group_desc)
        groups.append(g)
        if g is not group.NON_GROUP_MEMBER:
            mine = g
    return mine, groups


def new_subgroups(
    group_size: int | None = None,
    group=None,
    timeout: float | datetime.timedelta | None = None,
    backend: str | None = None,
    pg_options=None,
    group_desc: str | None = None,
):
    """Split the default group into consecutive groups of ``group_size`` ranks; returns
    ``(this rank's group, all groups)``."""
    if group is not None:
        raise NotImplementedError("new_subgroups: splitting a group other than the default one")
    n = get_world_size()
    if group_size is None:
        group_size = n
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size <= 0:
        raise ValueError(f"new_subgroups: group_size must be a positive int, got {group_size!r}")
    if n % group_size:
        raise ValueError(
            f"new_subgroups: the world size ({n}) must be divisible by group_size ({group_size})"
        )
    return new_subgroups_by_enumeration(
        [list(range(i, i + group_size)) for i in range(0, n, group_size)],
        timeout,
        backend,
        pg_options,
        group_desc,
    )


def _check_same_members(w: ProcessGroup, members: list[int]) -> None:
    """Every rank must ask for the same group: a mismatch would pair up collectives of
    different groups (a hang or silently wrong sums), so compare first, under the timeout."""
    n = w.backend.world_size
    mine = np.zeros(n, np.uint8)
    mine[members] = 1
    every = np.zeros((n, n), np.uint8)
    _issue("new_group", [w.backend.allgather(mine, every)], None, False, w)
    differ = [r for r in range(n) if not np.array_equal(every[r], every[0])]
    if differ:
        theirs = [int(i) for i in np.flatnonzero(every[0])]
        raise DistError(
            f"new_group: every rank must pass the same ranks, but rank(s) {differ} asked for a "
            f"group other than rank 0's {theirs} (this rank asked for {members})"
        )
