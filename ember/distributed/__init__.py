"""Data-parallel training across processes on MPI (``torch.distributed``-style API).

Start the processes with ``mpiexec -disable-auto-cleanup -n N python train.py`` (across
machines add ``-f hostfile``, or use ``srun`` under Slurm); each calls
:func:`init_process_group` and then uses the collectives on Tensors. Needs the ``[dist]``
extra (``mpi4py`` and the ``mpich`` wheel). Every collective is bounded by a timeout, so a
rank that dies or hangs makes the others raise :class:`RankFailureError` naming it.
``-disable-auto-cleanup`` matters: without it MPICH's launcher kills every rank as soon as
one dies (nothing hangs, but the survivors cannot report which rank failed); with it the
launcher sends the survivors SIGUSR1, which ember turns into an immediate error (in some
runs MPICH still kills them; otherwise the timeout catches it).

Sub-groups work as in PyTorch: every rank calls :func:`new_group` with the same ranks, and
collectives take ``group=`` (``src``/``dst`` stay global ranks; ``group_src``/``group_dst``
count inside the group). The object collectives (:func:`all_gather_object` and friends)
carry plain data and Tensors without pickle.

Example:
    >>> import ember.distributed as dist
    >>> dist.is_initialized()
    False
"""

from ._backend import Backend, Request
from ._group import (
    DEFAULT_TIMEOUT,
    GroupMember,
    ProcessGroup,
    Work,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
)
from ._subgroups import (
    get_global_rank,
    get_group_rank,
    get_process_group_ranks,
    new_group,
    new_subgroups,
    new_subgroups_by_enumeration,
)
from .collectives import (
    ReduceOp,
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    gather,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
)
from .errors import DistBackendError, DistError, RankFailureError
from .object_collectives import (
    all_gather_object,
    broadcast_object_list,
    gather_object,
    scatter_object_list,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Backend",
    "DistBackendError",
    "DistError",
    "GroupMember",
    "ProcessGroup",
    "RankFailureError",
    "ReduceOp",
    "Request",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "gather",
    "gather_object",
    "get_backend",
    "get_global_rank",
    "get_group_rank",
    "get_process_group_ranks",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "is_available",
    "is_initialized",
    "new_group",
    "new_subgroups",
    "new_subgroups_by_enumeration",
    "reduce",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "scatter",
    "scatter_object_list",
]
