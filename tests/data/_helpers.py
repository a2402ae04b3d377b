"""Shared helpers for the ember.data tests (not a test module)."""

from __future__ import annotations

import contextlib
import os
import signal


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail the test instead of hanging forever (SIGALRM; Unix only)."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def child_pids() -> set[int]:
    """PIDs of live (or unreaped) processes whose parent is this process, from /proc."""
    me, out = os.getpid(), set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and not _is_helper(name):  # fields: state, ppid, ...
            out.add(int(name))
    return out


def _is_helper(pid: str) -> bool:
    """multiprocessing's own long-lived resource tracker (started by spawn) is not a leak."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"resource_tracker" in f.read()
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
