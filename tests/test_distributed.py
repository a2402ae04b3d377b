"""ember.distributed: collectives and failure handling, run under ``mpiexec`` by the test.

Each test starts its ranks itself; the scripts in ``tests/dist_scripts`` check their results
against NumPy/PyTorch references on every rank and exit non-zero on a mismatch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "dist_scripts"

pytest.importorskip("mpi4py", reason="the [dist] extra (mpi4py, mpich) is not installed")
MPIEXEC = shutil.which("mpiexec")
if MPIEXEC is None:  # pragma: no cover
    pytest.skip("mpiexec not found (pip install mpich)", allow_module_level=True)


def launch(
    script: str, n: int, *args: str, timeout: float = 120, shield: bool = False
) -> subprocess.CompletedProcess:
    """Run ``script`` on ``n`` ranks.

    ``shield`` runs each rank under ``sh`` that always exits 0 and ignores the launcher's
    failure notice (SIGUSR1), so the survivors must find out through the collective
    timeout alone (as under launchers that notify nobody). Without it, MPICH's launcher
    (``-disable-auto-cleanup``) signals the survivors, but in a minority of runs it kills
    them instead, which would make the failure tests flaky.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", EMBER_NUM_THREADS="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    cmd = [MPIEXEC, "-disable-auto-cleanup", "-n", str(n)]
    if shield:
        cmd += ["sh", "-c", 'trap "" USR1; "$@"; exit 0', "sh"]
    cmd += [sys.executable, "-u", str(SCRIPTS / script), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def ok(res: subprocess.CompletedProcess, n: int) -> None:
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in range(n):
        assert f"OK {r}" in res.stdout, out


@pytest.mark.parametrize("n", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_collectives(n):
    ok(launch("collectives.py", n), n)


def test_collectives_single_process_without_mpiexec():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    res = subprocess.run(
        [sys.executable, str(SCRIPTS / "collectives.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ok(res, 1)


def test_world_size_env_must_match_mpi():
    env = dict(os.environ, PYTHONPATH=str(ROOT), WORLD_SIZE="2", RANK="0")
    code = "import ember.distributed as d; d.init_process_group()"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
    assert "WORLD_SIZE environment variable is 2 but MPI says size 1" in res.stderr
    assert "mpiexec" in res.stderr


def test_not_initialized_errors():
    import ember
    import ember.distributed as dist

    assert not dist.is_initialized()
    with pytest.raises(dist.DistError, match="init_process_group"):
        dist.all_reduce(ember.ones(2))
    with pytest.raises(dist.DistError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="timeout"):
        dist.init_process_group("mpi", timeout=-1)


@pytest.mark.parametrize("n", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_killed_rank_is_named_by_survivors(n):
    timeout = 4
    start = time.monotonic()
    res = launch("kill_rank.py", n, str(timeout), shield=True)
    took = time.monotonic() - start
    out = res.stdout + res.stderr
    for r in range(n - 1):
        m = re.search(rf"rank {r} stopped after ([0-9.]+)s: (.*)", res.stdout)
        assert m, out
        assert float(m.group(1)) < timeout + 2, out
        # every survivor names the killed rank (a survivor that has already exited after
        # its own error may be listed too)
        assert re.search(rf"ranks? [0-9, ]*\b{n - 1}\b[0-9, ]* died", m.group(2)), out
    assert "RankFailureError" in out
    assert took < 60, f"the survivors took {took:.0f}s to stop"


def test_hung_rank_times_out():
    start = time.monotonic()
    res = launch("hang_rank.py", 2, "2")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "rank 0 stopped after 2." in res.stdout, out
    assert "did not complete within 2 s" in out and "hung" in out, out
    assert time.monotonic() - start < 60


# ----- DistributedDataParallel, SyncBatchNorm, ZeRO: training equals one process ----------
def test_ddp_two_ranks_equals_single_process():
    """mlp, gpt, BatchNorm local and synced, no_sync accumulation, unused parameters,
    ZeRO-1 against plain DDP, ZeRO checkpoint and resume, rank-0 broadcast, model mismatch:
    one launch, 8 steps each."""
    modes = "mismatch,bcast,mlp,bn_sync,bn_local,accum,unused,zero,zero_ckpt,gpt,resnet_sync"
    ok(launch("ddp_train.py", 2, modes, "8"), 2)


def test_ddp_four_ranks_equals_single_process():
    ok(launch("ddp_train.py", 4, "mlp,bn_sync,zero,zero_ckpt", "8"), 4)


# ----- sub-groups (new_group) and object collectives ---------------------------------------
@pytest.mark.parametrize("n", [4, pytest.param(3, marks=pytest.mark.slow)])
def test_subgroups_and_object_collectives(n):
    """Collectives with group= (src/dst global, group_src/group_dst local), non-members,
    mismatched new_group calls, object collectives, and DDP + SyncBatchNorm + ZeRO inside
    pairs of ranks equal one process on each pair's combined batch."""
    ok(launch("groups.py", n), n)


def test_object_codec_round_trips_without_pickle():
    import numpy as np

    import ember
    from ember.distributed._objects import decode, encode

    obj = {
        "a": (1, 2.5, None, True, "s", b"by"),
        3: [ember.ones(2, 3).t(), np.arange(4, dtype=np.int16), np.float32(2.5), 2**70],
        "h": ember.ones(2).to(ember.bfloat16),
        "scalar": ember.tensor(3.0, requires_grad=True),
        "nan": float("nan"),
    }
    got = decode(encode(obj))
    assert got["a"] == obj["a"] and got[3][3] == 2**70 and got["nan"] != got["nan"]
    assert isinstance(got[3][2], np.float32) and got[3][2] == np.float32(2.5)
    np.testing.assert_array_equal(got[3][0].numpy(), np.ones((3, 2)))
    assert got[3][1].dtype == np.int16 and got["h"].dtype == ember.bfloat16
    assert got["scalar"].shape == () and got["scalar"].requires_grad
    with pytest.raises(TypeError, match="no pickle"):
        encode({"x": object()})
    with pytest.raises(ValueError, match="truncated"):
        decode(encode([ember.ones(100)])[:-8])


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 4])
def test_ddp_fifty_steps(n):
    modes = "mlp,bn_sync,bn_local,resnet_sync,resnet_local,gpt,zero"
    ok(launch("ddp_train.py", n, modes, "50", timeout=600), n)


# ----- the engine finishes hooked leaves early (what lets DDP overlap communication) -------
def test_post_accumulate_hooks_fire_in_the_order_pytorch_fires_them():
    import numpy as np
    import torch

    import ember

    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (5, 4), (2, 5)]]
    x = rng.standard_normal((6, 3)).astype(np.float32)

    def run(lib, tensor):
        params = [tensor(w, requires_grad=True) for w in ws]
        order = []
        for i, p in enumerate(params):
            # each hook also records which gradients exist when it fires
            p.register_post_accumulate_grad_hook(
                lambda t, i=i: order.append((i, tuple(q.grad is not None for q in params)))
            )
        h = tensor(x)
        for i, p in enumerate(params):
            h = lib.tanh(h @ p.T)
            # gradients of activations arrive during backward: interleaved with the hooks
            h.register_hook(lambda g, i=i: order.append(("activation", i)))
        (h * h).sum().backward()
        return order

    ours = run(ember, lambda a, **k: ember.tensor(a, **k))
    theirs = run(torch, lambda a, **k: torch.tensor(a, **k))
    assert ours == theirs
    # the last layer's gradient is final before the first activation's gradient exists
    assert ours.index((2, (False, False, True))) < ours.index(("activation", 0))
