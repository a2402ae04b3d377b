"""Data-parallel training on several processes, on one machine or many (MPI).

Every process runs this same script; MPI tells each one its rank. Start it with

    mpiexec -n 2 python examples/distributed_train.py                  # this machine
    mpiexec -f examples/distributed_hostfile -n 4 \\
        python examples/distributed_train.py                            # the hostfile's machines
    sbatch examples/distributed_slurm.sh                                # a Slurm cluster

Each rank trains a replica of the model on its share of the Digits images
(``DistributedSampler``); ``DistributedDataParallel`` averages the gradients, so the run
equals one process on the combined batch (``--batch-size`` per rank times the number of
ranks). ``--zero`` shards Adam's state over the ranks (``ZeroRedundancyOptimizer``). Rank 0
prints, evaluates on the test images and writes ``--out``/checkpoint.ember after every epoch;
``--resume`` continues from it on any number of ranks.
"""

from __future__ import annotations

import argparse
import os
import socket

import ember
import ember.distributed as dist
from ember import nn
from ember.data import DataLoader, DistributedSampler
from ember.data.datasets import Digits
from ember.nn.parallel import DistributedDataParallel as DDP
from ember.optim.zero import ZeroRedundancyOptimizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32, help="per rank")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--zero", action="store_true", help="shard the optimizer state (ZeRO-1)")
    ap.add_argument("--out", default="runs/distributed")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    dist.init_process_group("mpi")  # rank and world size come from mpiexec / srun
    rank, world = dist.get_rank(), dist.get_world_size()
    where: list = [None] * world
    dist.all_gather_object(where, (socket.gethostname(), os.getpid()))
    if rank == 0:
        hosts = sorted({h for h, _ in where})
        print(f"{world} ranks on {len(hosts)} machine(s): {', '.join(hosts)}", flush=True)

    ember.manual_seed(0)  # the same initial model everywhere (DDP also broadcasts rank 0's)
    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    if args.zero:
        opt = ZeroRedundancyOptimizer(model.parameters(), ember.optim.Adam, lr=args.lr)
    else:
        opt = ember.optim.Adam(model.parameters(), lr=args.lr)

    train = Digits(train=True, flatten=True)
    sampler = DistributedSampler(train, seed=0)  # this rank's share, reshuffled per epoch
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler)

    path = os.path.join(args.out, "checkpoint.ember")
    start = 0
    if args.resume:
        ckpt = ember.load(path)  # every rank reads the file rank 0 wrote
        model.module.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])  # ZeRO: each rank keeps its shard
        start = int(ckpt["epoch"])
        if rank == 0:
            print(f"resumed from {path} after epoch {start}", flush=True)

    for epoch in range(start, args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        total = ember.zeros(2, dtype=ember.float64)  # loss sum, samples
        for x, y in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x.float()), y)
            loss.backward()  # gradients are averaged over the ranks here
            opt.step()
            total += ember.tensor([float(loss.item()) * len(y), len(y)], dtype=ember.float64)
        dist.all_reduce(total)  # the epoch's loss over every rank's samples
        acc = evaluate(model.module)
        if args.zero:
            opt.consolidate_state_dict(to=0)  # every rank sends its shard to rank 0
        if rank == 0:
            os.makedirs(args.out, exist_ok=True)
            state = {"model": model.module.state_dict(), "epoch": epoch + 1}
            state["optimizer"] = opt.state_dict()
            ember.save(state, path + ".tmp")
            os.replace(path + ".tmp", path)  # never leave a half-written checkpoint
            loss_mean = total[0].item() / total[1].item()
            print(f"epoch {epoch + 1}: loss {loss_mean:.4f}, test accuracy {acc:.4f}", flush=True)
        dist.barrier()  # the checkpoint is complete before anyone may read it
    if args.zero:
        per_rank = opt.state_memory_per_rank()
        if rank == 0:
            print(f"optimizer state per rank (bytes): {per_rank}", flush=True)
    dist.destroy_process_group()


def evaluate(net: nn.Module) -> float:
    """Test accuracy; each rank scores every world-size-th sample, counts are summed."""
    rank, world = dist.get_rank(), dist.get_world_size()
    test = Digits(train=False, flatten=True)
    net.eval()
    counts = ember.zeros(2)
    with ember.no_grad():
        for x, y in DataLoader(test, batch_size=256, sampler=range(rank, len(test), world)):
            counts += ember.tensor([float((net(x.float()).argmax(1) == y).sum().item()), len(y)])
    dist.all_reduce(counts)
    return counts[0].item() / counts[1].item()


if __name__ == "__main__":
    main()
