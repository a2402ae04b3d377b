"""The multi-machine example (``examples/distributed_train.py``), checked on one machine.

Its hostfile names this machine twice, so ``mpiexec -f examples/distributed_hostfile``
starts the ranks as it would on the machines of a real hostfile; resuming from its
checkpoint (with the ZeRO state consolidated on rank 0) must give the uninterrupted run's
weights bitwise. Slurm's ``srun`` cannot run here; the check that a misconfigured ``srun``
fails with a clear error can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "distributed_train.py"
HOSTFILE = ROOT / "examples" / "distributed_hostfile"

pytest.importorskip("mpi4py", reason="the [dist] extra (mpi4py, mpich) is not installed")
pytest.importorskip("sklearn", reason="the Digits dataset comes from scikit-learn")
MPIEXEC = shutil.which("mpiexec")
if MPIEXEC is None:  # pragma: no cover
    pytest.skip("mpiexec not found (pip install mpich)", allow_module_level=True)


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", EMBER_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE"):
        env.pop(k, None)
    return env


def _run(tmp: Path, out: str, *args: str, hostfile: bool = True) -> str:
    cmd = [MPIEXEC, "-disable-auto-cleanup"] + (["-f", str(HOSTFILE)] if hostfile else [])
    cmd += ["-n", "2", sys.executable, "-u", str(EXAMPLE), "--out", out, "--zero", *args]
    res = subprocess.run(cmd, cwd=tmp, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _weights(path: Path) -> dict:
    import ember

    return {k: np.asarray(v) for k, v in ember.load(str(path))["model"].items()}


def test_hostfile_example_trains(tmp_path):
    out = _run(tmp_path, "run", "--epochs", "1")
    assert "2 ranks on 1 machine(s)" in out
    assert out.count("epoch ") == 1 and "optimizer state per rank (bytes): [" in out
    acc = float(out.split("test accuracy ")[-1].split()[0])
    assert acc > 0.5, out  # it learns
    assert (tmp_path / "run" / "checkpoint.ember").exists()


@pytest.mark.slow
def test_example_resumes_identically(tmp_path):
    full = _run(tmp_path, "full", "--epochs", "2", hostfile=False)
    _run(tmp_path, "part", "--epochs", "1", hostfile=False)
    resumed = _run(tmp_path, "part", "--epochs", "2", "--resume")
    assert "resumed from part/checkpoint.ember after epoch 1" in resumed
    assert resumed.splitlines()[-2] == full.splitlines()[-2]  # the same epoch-2 line
    a = _weights(tmp_path / "full" / "checkpoint.ember")
    b = _weights(tmp_path / "part" / "checkpoint.ember")
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_srun_without_pmi_is_a_clear_error():
    env = dict(_env(), SLURM_STEP_NUM_TASKS="4", SLURM_PROCID="0")
    code = "import ember.distributed as d; d.init_process_group()"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
    assert "srun started 4 tasks but MPI sees a world of 1" in res.stderr, res.stderr
    assert "--mpi=pmi2" in res.stderr
