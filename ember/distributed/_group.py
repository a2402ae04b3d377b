"""The default process group: which backend, this rank, the timeout, and ``Work`` handles."""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from ._backend import Backend, Request
from ._watchdog import failure_error, poll_until_done
from .errors import DistError, RankFailureError

__all__ = [
    "DEFAULT_TIMEOUT",
    "GroupMember",
    "ProcessGroup",
    "Work",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "is_available",
    "is_initialized",
]

DEFAULT_TIMEOUT = 30.0  # seconds; PyTorch's default (30 min) is far too long to notice a dead rank


class ProcessGroup:
    """A set of ranks that run collectives together: the default group (every rank) made
    by :func:`init_process_group`, or a sub-group made by :func:`new_group`.

    Failure state is shared with the default group: once any group's collective fails,
    every group is unusable (as after a NCCL/gloo abort in PyTorch).

    Example:
        >>> import ember.distributed as dist  # doctest: +SKIP
        >>> g = dist.new_group([0, 1])  # doctest: +SKIP
        >>> g.rank(), g.size()  # doctest: +SKIP
        (0, 2)
    """

    def __init__(
        self,
        backend: Backend,
        timeout: float,
        root: ProcessGroup | None = None,
        ranks: Sequence[int] | None = None,
    ):
        self.backend = backend
        self.root: ProcessGroup = self if root is None else root
        self.ranks: list[int] = list(range(backend.world_size)) if ranks is None else list(ranks)
        self._index = {r: i for i, r in enumerate(self.ranks)}
        self._timeout = timeout
        self.seq = 0  # collectives issued so far in this group (they must match across ranks)
        self.subgroups: list[ProcessGroup] = []
        if root is None:
            self._failure: RankFailureError | None = None
            self._peer_failed = False  # set when the launcher signals that a rank died
            self.process_info = backend.process_info()  # (host, pid) by global rank

    # shared with the default group -------------------------------------------------------
    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def failure(self) -> RankFailureError | None:
        return self.root._failure

    @failure.setter
    def failure(self, err: RankFailureError | None) -> None:
        self.root._failure = err

    @property
    def peer_failed(self) -> bool:
        return self.root._peer_failed

    @peer_failed.setter
    def peer_failed(self, flag: bool) -> None:
        self.root._peer_failed = flag

    # PyTorch's ProcessGroup API ----------------------------------------------------------
    def rank(self) -> int:
        """This process's rank inside the group."""
        return self.backend.rank

    def size(self) -> int:
        """Number of ranks in the group."""
        return self.backend.world_size

    def group_rank(self, global_rank: int) -> int | None:
        return self._index.get(global_rank)

    @property
    def global_rank(self) -> int:
        return self.root.backend.rank

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={self.ranks}, backend={self.backend.name!r})"


_World = ProcessGroup  # the name the collectives use for "the group a call runs in"


def _watch_launcher_notice(world: ProcessGroup) -> None:
    """Under ``mpiexec -disable-auto-cleanup`` MPICH's launcher sends SIGUSR1 to the
    surviving ranks when one dies (its default action would kill them silently): record it
    so that the waiting collective fails at once with an error naming the dead rank."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None, _launcher_notice):
        return  # the program handles SIGUSR1 itself

    global _notice_world
    _notice_world = world
    signal.signal(signal.SIGUSR1, _launcher_notice)


_notice_world: ProcessGroup | None = None


def _launcher_notice(signum, frame) -> None:
    if _notice_world is not None:
        _notice_world.peer_failed = True


_world: ProcessGroup | None = None


_NO_WORLD = object()  # group.WORLD before init_process_group


class _GroupMemberMeta(type):
    @property
    def WORLD(cls):
        return _world if _world is not None else _NO_WORLD


class _GroupMember(metaclass=_GroupMemberMeta):
    """``group.WORLD`` is the default group (a :class:`ProcessGroup` once initialized);
    ``group.NON_GROUP_MEMBER`` is what :func:`new_group` returns on ranks outside the new
    group (as in PyTorch)."""

    NON_GROUP_MEMBER = object()


group = _GroupMember
GroupMember = _GroupMember


def _default() -> ProcessGroup:
    if _world is None:
        raise DistError(
            "Default process group has not been initialized, please make sure to call "
            "ember.distributed.init_process_group()"
        )
    return _world


def _not_member(group_arg) -> bool:
    return group_arg is group.NON_GROUP_MEMBER


def _current(group_arg=None) -> ProcessGroup:
    w = _default()
    if group_arg is None or group_arg is _NO_WORLD:
        g = w
    elif isinstance(group_arg, ProcessGroup):
        if group_arg.root is not w or (group_arg is not w and group_arg not in w.subgroups):
            raise DistError(
                f"{group_arg!r} belongs to a process group that was destroyed; create it again "
                "with new_group()"
            )
        g = group_arg
    elif group_arg is group.NON_GROUP_MEMBER:
        raise DistError(
            "this rank is not a member of the group (new_group() returned "
            "GroupMember.NON_GROUP_MEMBER here)"
        )
    else:
        raise TypeError(
            f"group must be None, group.WORLD or a ProcessGroup from new_group(), got "
            f"{type(group_arg).__name__}"
        )
    if w.failure is not None:
        raise w.failure
    return g


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        env = os.environ.get("EMBER_DIST_TIMEOUT")
        if env is None:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(env)
        except ValueError:
            msg = f"EMBER_DIST_TIMEOUT must be a number of seconds, got {env!r}"
            raise ValueError(msg) from None
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {v!r}") from None


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: float | datetime.timedelta | None = None,
    world_size: int = -1,
    rank: int = -1,
) -> None:
    """Join the default process group of the processes started by ``mpiexec``.

    Rank and world size come from MPI; ``RANK``/``WORLD_SIZE`` environment variables (set
    by launchers) and the ``rank``/``world_size`` arguments are checked against them.
    ``timeout`` (seconds or ``timedelta``; default ``EMBER_DIST_TIMEOUT`` or 30 s) bounds
    every collective, so a dead or hung rank raises :class:`RankFailureError` instead of
    hanging.

    Example:
        >>> import ember.distributed as dist
        >>> dist.init_process_group("mpi")  # doctest: +SKIP
        >>> dist.get_rank(), dist.get_world_size()  # doctest: +SKIP
        (0, 1)
    """
    global _world
    if _world is not None:
        raise DistError("trying to initialize the default process group twice")
    if backend not in (None, "mpi"):
        raise ValueError(
            f"init_process_group: unknown backend {backend!r}; available: 'mpi' "
            "(NCCL arrives with the GPU backend)"
        )
    if init_method not in (None, "env://"):
        raise ValueError(
            f"init_process_group: init_method {init_method!r} is not supported; ranks are "
            "found through MPI (start them with mpiexec)"
        )
    seconds = _timeout_seconds(timeout)
    from ._mpi import MPIBackend

    be = MPIBackend()
    checks = {
        "rank argument": (rank if rank != -1 else None, be.rank),
        "world_size argument": (world_size if world_size != -1 else None, be.world_size),
        "RANK environment variable": (_env_int("RANK"), be.rank),
        "WORLD_SIZE environment variable": (_env_int("WORLD_SIZE"), be.world_size),
    }
    for what, (given, actual) in checks.items():
        if given is not None and given != actual:
            kind = "rank" if "rank" in what.lower() and "size" not in what.lower() else "size"
            hint = (
                " (start the processes with `mpiexec -n N python ...`)"
                if kind == "size" and be.world_size == 1
                else ""
            )
            raise DistError(
                f"init_process_group: {what} is {given} but MPI says {kind} {actual}{hint}"
            )
    _check_slurm(be.world_size)
    _world = _World(be, seconds)
    _watch_launcher_notice(_world)
    # Launchers set these for PyTorch-style code that reads them.
    os.environ.setdefault("RANK", str(be.rank))
    os.environ.setdefault("WORLD_SIZE", str(be.world_size))


def _check_slurm(mpi_size: int) -> None:
    """``srun -n N`` whose processes do not find each other through Slurm's PMI start N
    single-process MPI worlds that would each train alone: say so instead."""
    tasks = _env_int("SLURM_STEP_NUM_TASKS")
    if tasks is not None and tasks > 1 and mpi_size == 1:
        raise DistError(
            f"init_process_group: srun started {tasks} tasks but MPI sees a world of 1 "
            "process: this MPI does not use Slurm's PMI. Start the ranks with "
            "`srun --mpi=pmi2 ...`, or with `mpiexec -launcher slurm -n $SLURM_NTASKS ...` "
            "inside the allocation"
        )


def is_available() -> bool:
    """True when the MPI backend can be imported (the ``[dist]`` extra is installed)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has been called (and not destroyed)."""
    return _world is not None


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (default: the default group); -1 when this rank
    is not a member of ``group``."""
    if _not_member(group):
        _default()
        return -1
    return _current(group).backend.rank


def get_world_size(group=None) -> int:
    """Number of processes in ``group`` (default: the default group); -1 on non-members."""
    if _not_member(group):
        _default()
        return -1
    return _current(group).backend.world_size


def get_backend(group=None) -> str:
    return _current(group).backend.name


def destroy_process_group(group=None) -> None:
    """Leave ``group``; without an argument, the default group and every sub-group (after a
    rank failure: without blocking)."""
    global _world
    if _world is None:
        raise DistError("destroy_process_group: no process group is initialized")
    if _not_member(group):
        return
    if group is not None and group is not _NO_WORLD and group is not _world:
        g = _current(group)
        _world.subgroups.remove(g)
        g.backend.shutdown(healthy=g.failure is None)
        return
    w, _world = _world, None
    for g in w.subgroups:
        g.backend.shutdown(healthy=w.failure is None)
    w.subgroups = []
    w.backend.shutdown(healthy=w.failure is None)


def _failed_ranks_exit() -> None:
    # Finalize MPI only when every rank is healthy: with a dead peer it can block forever,
    # and tearing down the interpreter over MPI requests that will never complete can crash.
    from . import _mpi

    if _mpi._MPI is None or _mpi._MPI.Is_finalized():
        return
    if _world is not None and (_world.failure is not None or _world.peer_failed):
        for f in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                f.flush()
        os._exit(1)
    if _world is not None:
        destroy_process_group()
    if signal.getsignal(signal.SIGUSR1) is _launcher_notice:
        # the launcher may signal ranks that are still exiting as others finish: at this
        # point that is no failure, and Python's teardown would restore the killing default
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    _mpi._MPI.Finalize()


atexit.register(_failed_ranks_exit)


class Work:
    """A collective in flight (``async_op=True``); :meth:`wait` completes it.

    Example:
        >>> import ember, ember.distributed as dist  # doctest: +SKIP
        >>> w = dist.all_reduce(ember.ones(3), async_op=True)  # doctest: +SKIP
        >>> w.wait()  # doctest: +SKIP
        True
    """

    def __init__(self, world: _World, reqs: Sequence[Request], what: str, finish: Callable | None):
        self._world = world
        self._reqs = list(reqs)
        self._what = what
        self._finish = finish
        self._seq = world.seq
        self._done = False

    def _complete(self) -> None:
        self._done = True
        self._reqs = []
        if self._finish is not None:
            f, self._finish = self._finish, None
            f()

    def is_completed(self) -> bool:
        if not self._done and all(r.test() for r in self._reqs):
            self._complete()
        return self._done

    def wait(self, timeout: float | datetime.timedelta | None = None) -> bool:
        """Block until done; raise :class:`RankFailureError` past the timeout."""
        if self._done:
            return True
        w = self._world
        if w.failure is not None:
            raise w.failure
        secs = w.timeout if timeout is None else _timeout_seconds(timeout)

        def fail():
            what = self._what if w.root is w else f"{self._what} in {w!r}"
            w.failure = failure_error(
                what, self._seq, secs, w.global_rank, w.root.process_info, w.peer_failed
            )
            for r in self._reqs:
                r.cancel()
            raise w.failure

        poll_until_done(self._reqs, secs, fail, lambda: w.peer_failed)
        self._complete()
        return True


def _issue(what: str, reqs: Sequence[Request], finish, async_op: bool, world: _World):
    world.seq += 1
    work = Work(world, reqs, what, finish)
    if async_op:
        return work
    work.wait()
    return None
