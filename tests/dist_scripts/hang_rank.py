"""Run under mpiexec: the last rank stops calling collectives (hangs) for a while; the others
must raise RankFailureError after the timeout (argv[1] seconds), not wait forever."""

import sys
import time

import ember
import ember.distributed as dist

timeout = float(sys.argv[1])
dist.init_process_group("mpi", timeout=timeout)
r, n = dist.get_rank(), dist.get_world_size()
t = ember.ones(10)
dist.all_reduce(t)
if r == n - 1:
    time.sleep(timeout * 2)  # hung (bounded so that the test's launcher ends)
    sys.exit(0)
start = time.monotonic()
try:
    dist.all_reduce(t)
except dist.RankFailureError as e:
    print(f"rank {r} stopped after {time.monotonic() - start:.1f}s: {e}", flush=True)
    assert e.failed_ranks == ()
    # the group is unusable afterwards: later calls fail at once with the same error
    try:
        dist.barrier()
    except dist.RankFailureError as again:
        assert again is e
    else:
        raise SystemExit("a collective after the failure must raise")
    raise
