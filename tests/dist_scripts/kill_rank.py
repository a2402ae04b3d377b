"""Run under mpiexec: the last rank SIGKILLs itself mid-run; the others must raise
RankFailureError naming it within the timeout (given as argv[1] seconds)."""

import os
import signal
import sys
import time

import ember
import ember.distributed as dist

timeout = float(sys.argv[1])
dist.init_process_group("mpi", timeout=timeout)
r, n = dist.get_rank(), dist.get_world_size()
t = ember.ones(1000)
for step in range(20):
    if step == 5 and r == n - 1:
        os.kill(os.getpid(), signal.SIGKILL)
    start = time.monotonic()
    try:
        dist.all_reduce(t)
    except dist.RankFailureError as e:
        waited = time.monotonic() - start
        print(f"rank {r} stopped after {waited:.1f}s: {e}", flush=True)
        assert n - 1 in e.failed_ranks, e.failed_ranks
        raise
print(f"rank {r} finished without noticing the failure", flush=True)
