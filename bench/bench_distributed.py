"""Data-parallel overhead: all-reduce and DDP training, ember (MPI) vs PyTorch (gloo).

For each world size (default 1, 2, 4) both frameworks start that many processes: ember's
ranks under ``mpiexec -n N``, PyTorch's spawned one per rank by this script and joined with
``init_process_group("gloo", init_method="tcp://127.0.0.1:PORT")``. Every process uses one
thread. Each run measures:

* ``all_reduce`` (sum, float32, in place): time per call and bus bandwidth
  (``2 (N - 1) / N * bytes / time``, the traffic a ring all-reduce moves per rank) against
  the message size;
* DDP training of the ``mlp``, ``resnet`` and ``gpt`` workloads of ``bench/workloads.py``
  (the same source for both frameworks) with a fixed batch per rank: steps/s, and the time
  per step spent computing (a step under ``no_sync()``: no gradient communication) and
  communicating (a synced step minus that; what overlapping with backward did not hide).

A machine with fewer cores than ranks measures overhead, not speed-up: the ranks share the
cores, so compute per step grows with the world size, and time waiting in a collective is
partly time other ranks needed the core for.

Run: python bench/bench_distributed.py [--worlds 1,2,4] [--steps 6] [--workloads mlp,resnet,gpt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SIZES = [2**k for k in range(8, 23, 2)]  # float32 elements: 1 KiB .. 16 MiB
# batch per rank: a quarter of the single-process benchmark's, so that 4 ranks hold its batch
PER_RANK_BATCH = {"mlp": 32, "resnet": 8, "gpt": 4}


# ------------------------------------------------------------------ workers (one per rank)
def _worker(framework: str, workloads: list[str], steps: int) -> dict:
    sys.path.insert(0, str(BENCH))
    import workloads as W

    if framework == "ember":
        import ember as lib
        import ember.distributed as dist
        from ember.nn.parallel import DistributedDataParallel as DDP

        dist.init_process_group("mpi", timeout=600)
    else:
        import torch as lib
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        lib.set_num_threads(1)
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        url = f"tcp://127.0.0.1:{os.environ['BENCH_PORT']}"
        dist.init_process_group("gloo", init_method=url, rank=rank, world_size=world)
    rank, world = dist.get_rank(), dist.get_world_size()
    res: dict = {"rank": rank, "world": world, "allreduce": {}, "train": {}}
    for n in SIZES:
        t = lib.ones(n)
        reps = max(3, min(30, 2**21 // n))
        dist.all_reduce(t)  # warm-up (connections, buffers)
        dist.barrier()
        start = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(t)
        res["allreduce"][n] = (time.perf_counter() - start) / reps
    for name in workloads:
        W.SPECS[name]["batch"] = PER_RANK_BATCH[name]
        model, _, make_batch, loss_fn = W.build(lib, name)
        ddp = DDP(model)
        # the optimizer over the wrapper's parameters, as DDP code does
        opt = lib.optim.SGD(ddp.parameters(), lr=1e-4, momentum=0.9)
        x, y = (lib.from_numpy(a) for a in make_batch())

        def step(ddp=ddp, opt=opt, x=x, y=y, loss_fn=loss_fn):
            opt.zero_grad()
            loss_fn(ddp(x), y).backward()
            opt.step()

        grad_bytes = sum(p.numel() * 4 for p in model.parameters())
        res["train"][name] = {
            **_time_steps(step, ddp.no_sync, steps, dist.barrier),
            "grad_mb": grad_bytes / 2**20,
        }
    if framework == "ember" and "gpt" in workloads:
        res["zero"] = _zero_memory(lib, W)
    if framework == "torch":
        dist.destroy_process_group()
    return res


def _zero_memory(lib, W) -> dict:
    """Adam state bytes per rank for gpt under ZeRO-1, and without sharding."""
    from ember.optim.zero import ZeroRedundancyOptimizer

    model, _, make_batch, loss_fn = W.build(lib, "gpt")
    x, y = (lib.from_numpy(a) for a in make_batch())
    zero = ZeroRedundancyOptimizer(model.parameters(), lib.optim.Adam, lr=1e-4)
    loss_fn(model(x), y).backward()
    zero.step()
    full = sum(p.numel() * 4 * 2 for p in model.parameters())  # exp_avg + exp_avg_sq
    return {"per_rank": zero.state_memory_per_rank(), "unsharded": full}


def _time_steps(step, no_sync, steps: int, barrier) -> dict:
    """Median synced and local (``no_sync``) step times, in interleaved rounds of 3 steps."""
    for _ in range(2):
        step()
    synced, local = [], []
    for _ in range(max(1, steps // 3)):
        barrier()
        start = time.perf_counter()
        for _ in range(3):
            step()
        synced.append((time.perf_counter() - start) / 3)
        barrier()
        start = time.perf_counter()
        with no_sync():
            for _ in range(3):
                step()
        local.append((time.perf_counter() - start) / 3)
    return {"synced": float(np.median(synced)), "local": float(np.median(local))}


# ------------------------------------------------------------------ launchers
def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", EMBER_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(BENCH), env.get("PYTHONPATH", "")])
    for k in ("RANK", "WORLD_SIZE", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    return env


def _result(stdout: str, what: str, stderr: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{what} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")


def _worker_args(framework: str, args) -> list[str]:
    return [
        sys.executable,
        "-u",
        __file__,
        "--worker",
        framework,
        "--steps",
        str(args.steps),
        "--workloads",
        args.workloads,
    ]


def _launch_ember(world: int, args) -> dict:
    mpiexec = shutil.which("mpiexec") or "mpiexec"
    cmd = [mpiexec, "-n", str(world), *_worker_args("ember", args)]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=3600)
    return _result(out.stdout, f"ember at {world} ranks", out.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_torch(world: int, args) -> dict:
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = dict(_env(), RANK=str(rank), WORLD_SIZE=str(world), BENCH_PORT=port)
        procs.append(
            subprocess.Popen(
                _worker_args("torch", args),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate(timeout=3600) for p in procs]
    return _result(outs[0][0], f"torch at {world} ranks", outs[0][1])


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", default="1,2,4")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per mode (rounds of 3)")
    ap.add_argument("--workloads", default="mlp,resnet,gpt")
    ap.add_argument("--worker", choices=["ember", "torch"])
    ap.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = ap.parse_args()
    names = [w for w in args.workloads.split(",") if w]
    for w in names:
        if w not in PER_RANK_BATCH:
            ap.error(f"unknown workload {w!r}; expected some of {sorted(PER_RANK_BATCH)}")
    if args.worker:
        res = _worker(args.worker, names, args.steps)
        if res["rank"] == 0:
            print("RESULT " + json.dumps(res), flush=True)
        return
    worlds = [int(w) for w in args.worlds.split(",")]
    load = os.getloadavg()
    print(
        f"CPU: {_cpu()}, {os.cpu_count()} logical cores shared by the ranks (one thread "
        f"each); load average at start {load[0]:.1f}"
    )
    results: dict = {}
    for i, w in enumerate(worlds):
        # alternate which framework goes first, so machine drift falls on both
        order = ("ember", "torch") if i % 2 == 0 else ("torch", "ember")
        for fw in order:
            start = time.perf_counter()
            results[(fw, w)] = (_launch_ember if fw == "ember" else _launch_torch)(w, args)
            print(f"  {fw} at {w} rank(s): {time.perf_counter() - start:.0f} s", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}\n")

    print("all_reduce (sum, float32, in place): time per call / bus bandwidth")
    rows = []
    for n in SIZES:
        cells = [f"{n * 4 / 1024:.0f} KiB"]
        for w in worlds:
            for fw in ("ember", "torch"):
                t = results[(fw, w)]["allreduce"][str(n)]
                bw = 2 * (w - 1) / w * n * 4 / t / 1e9
                cells.append(f"{t * 1e6:.0f} us / {bw:.2f} GB/s" if w > 1 else f"{t * 1e6:.0f} us")
        rows.append(cells)
    head = ["size"] + [f"{fw} {w}r" for w in worlds for fw in ("ember", "torch")]
    print(_table(head, rows))

    print(
        "\nDDP training, batch per rank "
        + ", ".join(f"{k} {PER_RANK_BATCH[k]}" for k in names)
        + ": steps/s, and ms per step computing / communicating"
    )
    rows = []
    for name in names:
        for w in worlds:
            row = [name, str(w)]
            for fw in ("ember", "torch"):
                s = results[(fw, w)]["train"][name]
                comm = max(s["synced"] - s["local"], 0.0)
                row += [f"{1 / s['synced']:.2f}", f"{s['local'] * 1e3:.0f} / {comm * 1e3:.0f}"]
            ratio = results[("torch", w)]["train"][name]["synced"]
            row.append(f"{ratio / results[('ember', w)]['train'][name]['synced']:.2f}")
            rows.append(row)
    mb = {n: results[("ember", worlds[0])]["train"][n]["grad_mb"] for n in names}
    print(
        _table(
            [
                "workload",
                "ranks",
                "ember steps/s",
                "ember ms compute / comm",
                "torch steps/s",
                "torch ms compute / comm",
                "ember / torch",
            ],
            rows,
        )
    )
    print("gradient size per step: " + ", ".join(f"{n} {mb[n]:.2f} MiB" for n in names))
    if "gpt" in names:
        print("\nZeRO-1 (ZeroRedundancyOptimizer over Adam), gpt: optimizer state per rank")
        for w in worlds:
            z = results[("ember", w)]["zero"]
            per = ", ".join(f"{b / 2**20:.1f}" for b in z["per_rank"])
            print(f"  {w} rank(s): [{per}] MiB; unsharded Adam: {z['unsharded'] / 2**20:.1f} MiB")
    if args.json:
        raw = {f"{fw}:{w}": r for (fw, w), r in results.items()}
        Path(args.json).write_text(json.dumps({"cpu": _cpu(), "results": raw}, indent=1))


if __name__ == "__main__":
    main()
