"""Run under mpiexec (3 or 4 ranks): sub-groups and object collectives with PyTorch's
semantics; DDP, SyncBatchNorm and ZeRO inside a sub-group equal one process on the group's
combined batch. Prints "OK <rank>" when every check passes.
"""

import warnings

import numpy as np

import ember
import ember.distributed as dist
import ember.nn.functional as F
from ember import nn
from ember.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi", timeout=60)
r, n = dist.get_rank(), dist.get_world_size()
assert n >= 3, "run with 3 or more ranks"


def data(rank, shape=(3, 4)):
    rng = np.random.default_rng(100 + rank)
    return (rng.standard_normal(shape) + rank).astype(np.float32)


def check(name, got, want, tol=1e-5):
    got = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
    if got.shape != np.shape(want) or not np.allclose(got, want, rtol=tol, atol=tol):
        raise SystemExit(f"rank {r}: {name} mismatch\n{got}\nvs\n{want}")


def raises(exc, text, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        if text not in str(e):
            raise SystemExit(f"rank {r}: expected {text!r} in the error, got: {e}") from e
        return
    raise SystemExit(f"rank {r}: {fn.__name__} did not raise {exc.__name__}")


# ----- a group of non-consecutive ranks, given out of order ------------------------------
members = [n - 1, 0]  # sorted by global rank inside the group: [0, n-1]
g = dist.new_group(members)
inside = r in members
if inside:
    assert isinstance(g, dist.ProcessGroup)
    assert dist.get_world_size(g) == g.size() == 2
    assert dist.get_rank(g) == g.rank() == (0 if r == 0 else 1)
    assert dist.get_process_group_ranks(g) == [0, n - 1]
    assert dist.get_global_rank(g, 1) == n - 1 and dist.get_group_rank(g, n - 1) == 1
    raises(ValueError, "not part of the group", dist.get_group_rank, g, 1)
    want = data(0) + data(n - 1)
    for op, ref in [
        (dist.ReduceOp.SUM, want),
        (dist.ReduceOp.AVG, want / 2),
        (dist.ReduceOp.MAX, np.maximum(data(0), data(n - 1))),
    ]:
        t = ember.tensor(data(r))
        dist.all_reduce(t, op, group=g)
        check(f"group all_reduce {op}", t, ref)
    # src is a global rank; group_src a rank inside the group
    t = ember.tensor(data(r))
    dist.broadcast(t, src=n - 1, group=g)
    check("group broadcast src", t, data(n - 1))
    t = ember.tensor(data(r))
    dist.broadcast(t, group=g, group_src=0)
    check("group broadcast group_src", t, data(0))
    raises(ValueError, "not a member of the group", dist.broadcast, ember.ones(1), 1, g)
    raises(ValueError, "name different ranks", dist.broadcast, ember.ones(1), 0, g, False, 1)
    t = ember.tensor(data(r))
    dist.reduce(t, dst=n - 1, group=g)
    if r == n - 1:
        check("group reduce", t, want)
    outs = [ember.zeros(3, 4) for _ in range(2)]
    dist.all_gather(outs, ember.tensor(data(r)), group=g)
    check("group all_gather", ember.stack(outs), np.stack([data(0), data(n - 1)]))
    big = ember.zeros(6, 4)
    dist.all_gather_into_tensor(big, ember.tensor(data(r)), group=g)
    check("group all_gather_into_tensor", big, np.concatenate([data(0), data(n - 1)]))
    out = ember.zeros(3, 4)
    dist.reduce_scatter_tensor(out, ember.tensor(np.concatenate([data(r), 2 * data(r)])), group=g)
    check("group reduce_scatter_tensor", out, (1 + (r != 0)) * want)
    got = [ember.zeros(3, 4) for _ in range(2)] if r == n - 1 else None
    dist.gather(ember.tensor(data(r)), got, dst=n - 1, group=g)
    if got is not None:
        check("group gather", ember.stack(got), np.stack([data(0), data(n - 1)]))
    t = ember.zeros(3, 4)
    dist.scatter(t, [ember.tensor(data(10)), ember.tensor(data(11))] if r == 0 else None, 0, g)
    check("group scatter", t, data(10 if r == 0 else 11))
    dist.barrier(group=g)
    objs = [None, None]
    dist.all_gather_object(objs, {"rank": r, "x": ember.tensor(data(r))}, group=g)
    assert [o["rank"] for o in objs] == [0, n - 1]
    check("group all_gather_object", objs[1]["x"], data(n - 1))
else:
    assert g is dist.GroupMember.NON_GROUP_MEMBER
    assert dist.get_rank(g) == -1 and dist.get_world_size(g) == -1
    t = ember.tensor(data(r))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dist.all_reduce(t, group=g) is None
    assert any("not part of" in str(w.message) for w in caught), caught
    check("non-member tensor untouched", t, data(r))

# ----- group.WORLD is the default group, as in PyTorch ------------------------------------
assert dist.group.WORLD.size() == n and dist.group.WORLD.rank() == r
t = ember.tensor(data(r))
dist.all_reduce(t, group=dist.group.WORLD)
check("group.WORLD all_reduce", t, sum(data(k) for k in range(n)))

# ----- object collectives on the default group -------------------------------------------
objs = [None] * n
dist.all_gather_object(objs, (r, f"rank{r}", [1.5, None, {"k": np.arange(r + 1)}]))
for k, o in enumerate(objs):
    assert o[0] == k and o[1] == f"rank{k}" and o[2][:2] == [1.5, None]
    assert np.array_equal(o[2][2]["k"], np.arange(k + 1))
lst = [{"from": r}, r * 10] if r == 1 else [None, None]
dist.broadcast_object_list(lst, src=1)
assert lst == [{"from": 1}, 10], lst
got = [None] * n if r == 0 else None
dist.gather_object({"r": r}, got, dst=0)
if r == 0:
    assert got == [{"r": k} for k in range(n)], got
out = [None]
dist.scatter_object_list(out, [k * k for k in range(n)] if r == n - 1 else None, src=n - 1)
assert out == [r * r], out
raises(TypeError, "no pickle", dist.all_gather_object, [None] * n, object())

# ----- every rank must ask for the same group --------------------------------------------
raises(dist.DistError, "same ranks", dist.new_group, [0, 1] if r == 0 else [0, 2])
raises(ValueError, "global ranks in", dist.new_group, [0, n])
raises(ValueError, "duplicates", dist.new_group, [0, 0])

# ----- consecutive sub-groups (the pairs train side by side) -----------------------------
pairs = [list(range(i, min(i + 2, n))) for i in range(0, n, 2)]
mine, groups = dist.new_subgroups_by_enumeration(pairs)
assert len(groups) == len(pairs) and dist.get_process_group_ranks(mine) == pairs[r // 2]
t = ember.tensor(data(r))
dist.all_reduce(t, group=mine)
check("pair all_reduce", t, sum(data(k) for k in pairs[r // 2]))

# DDP / SyncBatchNorm / ZeRO in a pair: equal one process on the pair's combined batch
PER = 4
members = pairs[r // 2]
me = members.index(r)


def batch(step):
    rng = np.random.default_rng(step + 1000 * members[0])
    x = rng.standard_normal((PER * len(members), 2, 3, 3)).astype(np.float32)
    return ember.tensor(x), ember.tensor(rng.integers(0, 3, PER * len(members)))


def make():
    ember.manual_seed(7)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(27, 3))


ref = make()
ref_opt = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
model = make()
# other weights on the other members: DDP must broadcast the group's first member's
with ember.no_grad():
    for p in model.parameters():
        p.add_(float(me))
model = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group=mine)
ddp = DDP(model, process_group=mine, bucket_cap_mb=0.0005)
from ember.optim.zero import ZeroRedundancyOptimizer  # noqa: E402

opt = ZeroRedundancyOptimizer(
    ddp.parameters(), ember.optim.SGD, process_group=mine, lr=0.1, momentum=0.9
)
for step in range(4):
    x, y = batch(step)
    ref_opt.zero_grad()
    ref_loss = F.cross_entropy(ref(x), y)
    ref_loss.backward()
    ref_opt.step()
    opt.zero_grad()
    sl = slice(me * PER, (me + 1) * PER)
    loss = F.cross_entropy(ddp(x[sl]), y[sl])
    loss.backward()
    opt.step()
    mean = loss.detach().clone()
    dist.all_reduce(mean, dist.ReduceOp.AVG, group=mine)
    check(f"pair DDP loss step {step}", mean, ref_loss.detach().numpy(), 1e-5)
for (k, v), v2 in zip(model.state_dict().items(), ref.state_dict().values()):
    check(f"pair DDP {k}", v, v2.numpy(), 1e-4)
opt.consolidate_state_dict(to=1 if len(members) > 1 else 0)
dist.destroy_process_group(mine)
raises(dist.DistError, "destroyed", dist.all_reduce, ember.ones(1), group=mine)
dist.barrier()
print(f"OK {r}", flush=True)
