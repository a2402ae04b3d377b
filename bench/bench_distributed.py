"""Data-parallel overhead: all-reduce bandwidth and DDP steps/s, ember (MPI) vs PyTorch (gloo).

Both frameworks run their ranks under the same launcher (``mpiexec -n N``; PyTorch reads its
rank from MPICH's PMI variables and rendezvouses over TCP on localhost). For each world size
(1, 2, 4) it measures:

* all-reduce (sum, float32, in place) time and bus bandwidth against message size;
* DDP training of an MLP (784-512-512-10, SGD, 64 samples per rank): steps/s, and the time
  spent communicating per step, estimated as (synced step) - (step under ``no_sync()``).

On a machine with fewer cores than ranks this measures overhead, not speed-up: the ranks
share the cores, so compute per step grows with the world size.

Run: python bench/bench_distributed.py [--worlds 1,2,4] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = [2**k for k in range(8, 23, 2)]  # float32 elements: 1 KiB .. 16 MiB


# ------------------------------------------------------------------ workers (one per rank)
def _ember_worker(steps: int) -> dict:
    import ember
    import ember.distributed as dist
    from ember import nn
    from ember.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=300)
    rank, world = dist.get_rank(), dist.get_world_size()
    res: dict = {"allreduce": {}}
    for n in SIZES:
        t = ember.ones(n)
        reps = max(3, min(50, 2**22 // n))
        dist.barrier()
        start = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(t)
        res["allreduce"][n] = (time.perf_counter() - start) / reps
    ember.manual_seed(0)
    model = DDP(
        nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )
    )
    opt = ember.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(rank)
    x = ember.tensor(rng.standard_normal((64, 784)).astype(np.float32))
    y = ember.tensor(rng.integers(0, 10, 64))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    res["step"] = _time_steps(step, model.no_sync, steps, dist.barrier)
    res["rank"], res["world"] = rank, world
    return res


def _torch_worker(steps: int) -> dict:
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    rank, world = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    res: dict = {"allreduce": {}}
    for n in SIZES:
        t = torch.ones(n)
        reps = max(3, min(50, 2**22 // n))
        dist.barrier()
        start = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(t)
        res["allreduce"][n] = (time.perf_counter() - start) / reps
    torch.manual_seed(0)
    model = DDP(
        nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(64, 784, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    res["step"] = _time_steps(step, model.no_sync, steps, dist.barrier)
    res["rank"], res["world"] = rank, world
    dist.destroy_process_group()
    return res


def _time_steps(step, no_sync, steps: int, barrier) -> dict:
    """Median synced and local (no_sync) step times, interleaved in rounds of 5 steps."""
    for _ in range(3):
        step()
    synced, local = [], []
    for _ in range(max(1, steps // 5)):
        barrier()
        start = time.perf_counter()
        for _ in range(5):
            step()
        synced.append((time.perf_counter() - start) / 5)
        barrier()
        start = time.perf_counter()
        with no_sync():
            for _ in range(5):
                step()
        local.append((time.perf_counter() - start) / 5)
    return {"synced": float(np.median(synced)), "local": float(np.median(local))}


# ------------------------------------------------------------------ launcher
def _launch(framework: str, world: int, steps: int) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        EMBER_NUM_THREADS="1",
        MASTER_PORT=str(29500 + world),
    )
    cmd = [
        shutil.which("mpiexec") or "mpiexec",
        "-n",
        str(world),
        sys.executable,
        __file__,
        "--worker",
        framework,
        "--steps",
        str(steps),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{framework} at {world} ranks failed:\n{out.stdout}\n{out.stderr}")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", default="1,2,4")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--worker", choices=["ember", "torch"])
    args = ap.parse_args()
    if args.worker:
        res = (_ember_worker if args.worker == "ember" else _torch_worker)(args.steps)
        if res["rank"] == 0:
            print("RESULT " + json.dumps(res), flush=True)
        return
    worlds = [int(w) for w in args.worlds.split(",")]
    print(f"CPU: {_cpu()} ({os.cpu_count()} logical cores); ranks share them.")
    results = {(fw, w): _launch(fw, w, args.steps) for w in worlds for fw in ("ember", "torch")}
    print("\nall_reduce (sum, float32, in place): time per call and bus bandwidth")
    print("| size | " + " | ".join(f"ember {w}r | torch {w}r" for w in worlds) + " |")
    print("|---" * (1 + 2 * len(worlds)) + "|")
    for n in SIZES:
        cells = []
        for w in worlds:
            for fw in ("ember", "torch"):
                t = results[(fw, w)]["allreduce"][str(n)]
                bw = 2 * (w - 1) / w * n * 4 / t / 1e9 if w > 1 else 0.0
                cells.append(f"{t * 1e6:.0f} us {bw:.2f} GB/s")
        print(f"| {n * 4 / 1024:.0f} KiB | " + " | ".join(cells) + " |")
    print("\nDDP MLP 784-512-512-10, SGD, 64 samples/rank: steps/s, ms per step = compute / comm")
    head = ["ranks"] + [f"{fw} {c}" for fw in ("ember", "torch") for c in ("steps/s", "ms")]
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|")
    for w in worlds:
        row = [str(w)]
        for fw in ("ember", "torch"):
            s = results[(fw, w)]["step"]
            comm = max(s["synced"] - s["local"], 0.0)
            row += [f"{1 / s['synced']:.1f}", f"{s['local'] * 1e3:.1f} / {comm * 1e3:.1f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
