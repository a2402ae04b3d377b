"""``ember train CONFIG --nproc N``: the same command on N ranks under ``mpiexec``.

The launcher re-runs ``python -m ember`` with the same arguments (less ``--nproc``) on N
processes of this machine (or of the machines in ``--hostfile``, an MPI hostfile) through
MPICH's ``mpiexec`` (the ``[dist]`` extra), with
``EMBER_NPROC`` set; each rank then joins the process group and trains data-parallel
(see :mod:`ember.train.distributed`): ``data.batch_size`` is per rank, so the global batch
is ``batch_size * N``. Snapshots, logs and the final model are written by rank 0 only.

Example:
    >>> from ember.cli.launch import rank_command
    >>> rank_command(["train", "a.yaml", "--nproc", "2", "--quiet"])[-4:]
    ['ember', 'train', 'a.yaml', '--quiet']
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

__all__ = ["ENV", "find_mpiexec", "launch", "rank_command"]

ENV = "EMBER_NPROC"  # set on every rank by the launcher: the number of ranks expected


def find_mpiexec() -> str:
    """The ``mpiexec`` of the ``[dist]`` extra (next to this Python first, then on PATH)."""
    if importlib.util.find_spec("mpi4py") is None:
        raise RuntimeError(
            "--nproc needs the [dist] extra (mpi4py and MPICH): pip install 'ember[dist]'"
        )
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.access(here, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        raise RuntimeError(
            "--nproc needs MPICH's mpiexec, which was not found next to this Python or on "
            "PATH: pip install 'ember[dist]' (the mpich wheel provides it)"
        )
    return found


def rank_command(argv: list[str]) -> list[str]:
    """``python -m ember`` with ``argv`` less its ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--nproc", "--hostfile"):
            skip = True
            continue
        if a.startswith(("--nproc=", "--hostfile=")):
            continue
        out.append(a)
    return [sys.executable, "-m", "ember", *out]


def launch(argv: list[str], nproc: int, hostfile: str | None = None) -> int:
    """Run the command on ``nproc`` ranks (on the hosts of an MPI ``hostfile`` when given,
    else on this machine); returns the launcher's exit status."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    where = []
    if hostfile is not None:
        if not os.path.isfile(hostfile):
            raise ValueError(f"--hostfile: no such file: {hostfile}")
        where = ["-f", os.path.abspath(hostfile)]
    cmd = [find_mpiexec(), "-disable-auto-cleanup", *where, "-n", str(nproc)]
    cmd += rank_command(argv)
    env = dict(os.environ, **{ENV: str(nproc)})
    # NOTE: launcher variables from an enclosing job would make the ranks misread their ids
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return subprocess.call(cmd, env=env)


def join_if_launched() -> None:
    """On a rank started by :func:`launch`: join the process group (checks its size)."""
    want = os.environ.get(ENV)
    if not want:
        return
    import ember.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("mpi")
    if dist.get_world_size() != int(want):
        raise RuntimeError(
            f"launched for {want} ranks but the process group has {dist.get_world_size()}; "
            "run the command through ember train --nproc, or unset " + ENV
        )
