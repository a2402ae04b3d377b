"""Waiting on backend requests with a deadline, and naming the rank that failed.

MPI offers no failure notification: a rank that was killed simply never joins the next
collective, and a blocking wait would hang forever. So every wait polls non-blocking
requests until a deadline, then looks for dead peers (their process ids on this host) to
write an error that names them.
"""

from __future__ import annotations

import os
import socket
import time

from .errors import RankFailureError

__all__ = ["dead_ranks", "failure_error", "poll_until_done"]


def poll_until_done(reqs, timeout: float, on_timeout, peer_failed) -> None:
    """Drive ``reqs`` to completion; call ``on_timeout()`` (which raises) past ``timeout``
    seconds or as soon as ``peer_failed()`` says the launcher reported a dead rank."""
    pending = [r for r in reqs if not r.test()]
    if not pending:
        return
    deadline = time.monotonic() + timeout
    pause = 0.0
    spins = 0
    while True:
        pending = [r for r in pending if not r.test()]
        if not pending:
            return
        if peer_failed() or time.monotonic() > deadline:
            on_timeout()
            return
        # MPI progresses only inside MPI calls: poll often at first (yielding the core each
        # time), then back off so that waiting ranks leave the cores to ranks still computing.
        if spins < 2000:
            spins += 1
            os.sched_yield()
        else:
            time.sleep(pause)
            pause = min(pause * 2 + 1e-5, 1e-3)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")  # a killed rank is a zombie until its launcher reaps it
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_ranks(process_info: list[tuple[str, int]]) -> tuple[int, ...]:
    """Ranks on this host whose process no longer runs."""
    host = socket.gethostname()
    return tuple(r for r, (h, pid) in enumerate(process_info) if h == host and not _pid_alive(pid))


def failure_error(
    what: str,
    seq: int,
    timeout: float,
    rank: int,
    process_info: list[tuple[str, int]],
    notified: bool = False,
) -> RankFailureError:
    dead = dead_ranks(process_info)
    if notified:
        # the launcher's notice can arrive before the dead process has been reaped
        for _ in range(50):
            if dead:
                break
            time.sleep(0.01)
            dead = dead_ranks(process_info)
        head = (
            f"rank {rank}: collective #{seq} ({what}) aborted: the launcher reported a failed rank"
        )
    else:
        head = f"rank {rank}: collective #{seq} ({what}) did not complete within {timeout:g} s"
    if dead:
        who = ", ".join(str(r) for r in dead)
        plural = "s" if len(dead) > 1 else ""
        msg = f"{head}: rank{plural} {who} died (process gone)"
    else:
        remote = sorted({h for h, _ in process_info} - {socket.gethostname()})
        where = f" (ranks on {', '.join(remote)} could not be checked)" if remote else ""
        msg = (
            f"{head}: no local rank has died{where}; a rank is hung or stopped calling "
            "collectives in the same order as the others"
        )
    msg += ". Stopping: the process group is unusable (set the timeout with "
    msg += "init_process_group(timeout=...) or EMBER_DIST_TIMEOUT)."
    return RankFailureError(msg, dead)
