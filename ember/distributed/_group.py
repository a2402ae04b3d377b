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
    "Work",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
]

DEFAULT_TIMEOUT = 30.0  # seconds; PyTorch's default (30 min) is far too long to notice a dead rank


class _World:
    def __init__(self, backend: Backend, timeout: float):
        self.backend = backend
        self.timeout = timeout
        self.seq = 0  # collectives issued so far (they must match across ranks)
        self.failure: RankFailureError | None = None
        self.peer_failed = False  # set when the launcher signals that a rank died
        self.process_info = backend.process_info()


def _watch_launcher_notice(world: _World) -> None:
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


_notice_world: _World | None = None


def _launcher_notice(signum, frame) -> None:
    if _notice_world is not None:
        _notice_world.peer_failed = True


_world: _World | None = None


class _GroupMember:
    """``group=None`` or ``dist.group.WORLD``: the only group this step supports."""

    WORLD = object()


group = _GroupMember


def _current(group_arg=None) -> _World:
    if group_arg is not None and group_arg is not group.WORLD:
        raise NotImplementedError(
            "ember.distributed: sub-groups (new_group) are not supported yet; pass group=None"
        )
    if _world is None:
        raise DistError(
            "Default process group has not been initialized, please make sure to call "
            "ember.distributed.init_process_group()"
        )
    if _world.failure is not None:
        raise _world.failure
    return _world


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
    _world = _World(be, seconds)
    _watch_launcher_notice(_world)
    # Launchers set these for PyTorch-style code that reads them.
    os.environ.setdefault("RANK", str(be.rank))
    os.environ.setdefault("WORLD_SIZE", str(be.world_size))


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
    """This process's rank in the default group."""
    return _current(group).backend.rank


def get_world_size(group=None) -> int:
    """Number of processes in the default group."""
    return _current(group).backend.world_size


def get_backend(group=None) -> str:
    return _current(group).backend.name


def destroy_process_group(group=None) -> None:
    """Leave the process group (after a rank failure: without blocking)."""
    global _world
    if _world is None:
        raise DistError("destroy_process_group: no process group is initialized")
    w, _world = _world, None
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
            w.failure = failure_error(
                self._what, self._seq, secs, w.backend.rank, w.process_info, w.peer_failed
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
