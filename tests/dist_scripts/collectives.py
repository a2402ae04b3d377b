"""Run under mpiexec: every collective against a NumPy reference built from all ranks' data.

Each rank's data is a known function of its rank, so every rank can compute what the
collective must produce. Prints "OK <rank>" when all checks pass.
"""

import numpy as np

import ember
import ember.distributed as dist
from ember.distributed import ReduceOp

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()


def data(rank, shape=(3, 4), dtype=np.float32):
    rng = np.random.default_rng(100 + rank)
    return (rng.standard_normal(shape) * 2 + rank).astype(dtype)


def check(name, got, want, tol=1e-6):
    got = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
    if got.shape != np.shape(want) or not np.allclose(got, want, rtol=tol, atol=tol):
        raise SystemExit(f"rank {r}: {name} mismatch\n{got}\nvs\n{want}")


alls = np.stack([data(k) for k in range(n)])
refs = {
    ReduceOp.SUM: alls.sum(0),
    ReduceOp.AVG: alls.mean(0),
    ReduceOp.MAX: alls.max(0),
    ReduceOp.MIN: alls.min(0),
    ReduceOp.PRODUCT: alls.prod(0),
}
for op, want in refs.items():
    t = ember.tensor(data(r))
    dist.all_reduce(t, op)
    check(f"all_reduce {op}", t, want, 1e-5)
    # a strided (non-contiguous) view goes through a staging copy
    big = ember.tensor(np.zeros((4, 3), np.float32))
    tv = big.t()
    tv.copy_(ember.tensor(data(r)))
    dist.all_reduce(tv, op)
    check(f"all_reduce {op} (transposed view)", big.t(), want, 1e-5)

# contiguous buffers are reduced in place, without a copy
t = ember.tensor(data(r))
before = t._data
work = dist.all_reduce(t, async_op=True)
work.wait()
assert t._data is before and work.is_completed()
check("async all_reduce", t, alls.sum(0), 1e-5)

# integers and bitwise ops; float16 reduces through float32
ti = ember.tensor(np.arange(6, dtype=np.int64) + r)
dist.all_reduce(ti, ReduceOp.SUM)
check("int all_reduce", ti, sum(np.arange(6) + k for k in range(n)))
tb = ember.tensor(np.array([1 << r, 3], np.int32))
dist.all_reduce(tb, ReduceOp.BOR)
check("BOR", tb, np.array([(1 << n) - 1, 3]))
th = ember.tensor(data(r).astype(np.float16))
dist.all_reduce(th, ReduceOp.SUM)
check("float16 all_reduce", th.float(), alls.astype(np.float16).astype(np.float32).sum(0), 1e-2)
try:
    dist.all_reduce(ember.tensor(np.arange(3)), ReduceOp.AVG)
    raise SystemExit("AVG on integers must fail")
except TypeError as e:
    assert "AVG" in str(e)

# broadcast from each source
for src in range(n):
    t = ember.tensor(data(r))
    dist.broadcast(t, src)
    check(f"broadcast from {src}", t, data(src))

# reduce to each destination
for dst in range(n):
    t = ember.tensor(data(r))
    dist.reduce(t, dst, ReduceOp.MAX)
    check(f"reduce to {dst}", t, alls.max(0) if r == dst else data(r))

# all_gather, all_gather_into_tensor (concatenated and stacked)
outs = [ember.zeros(3, 4) for _ in range(n)]
dist.all_gather(outs, ember.tensor(data(r)))
for k in range(n):
    check(f"all_gather[{k}]", outs[k], data(k))
out = ember.zeros(3 * n, 4)
dist.all_gather_into_tensor(out, ember.tensor(data(r)))
check("all_gather_into_tensor", out, np.concatenate([data(k) for k in range(n)]))
out = ember.zeros(n, 3, 4)
w = dist.all_gather_into_tensor(out, ember.tensor(data(r)), async_op=True)
w.wait()
check("all_gather_into_tensor stacked", out, alls)

# reduce_scatter(_tensor): rank r gets the reduction of block r
big = [data(r * 10 + k, (2, 3)) for k in range(n)]
want = sum(data(q * 10 + r, (2, 3)) for q in range(n))
o = ember.zeros(2, 3)
dist.reduce_scatter(o, [ember.tensor(b) for b in big])
check("reduce_scatter", o, want, 1e-5)
inp = ember.tensor(np.concatenate(big))
keep = inp.numpy().copy()
o = ember.zeros(2, 3)
dist.reduce_scatter_tensor(o, inp, ReduceOp.AVG)
check("reduce_scatter_tensor AVG", o, want / n, 1e-5)
check("reduce_scatter_tensor leaves input", inp, keep)

# gather / scatter
for root in range(n):
    gl = [ember.zeros(3, 4) for _ in range(n)] if r == root else None
    dist.gather(ember.tensor(data(r)), gl, dst=root)
    if r == root:
        for k in range(n):
            check(f"gather[{k}] at {root}", gl[k], data(k))
    sl = [ember.tensor(data(50 + k)) for k in range(n)] if r == root else None
    t = ember.zeros(3, 4)
    dist.scatter(t, sl, src=root)
    check(f"scatter from {root}", t, data(50 + r))

# clear errors for bad arguments
for bad, kind, words in [
    (lambda: dist.broadcast(ember.zeros(2), src=n), ValueError, "src must be a rank"),
    (lambda: dist.all_gather([ember.zeros(2)] * (n + 1), ember.zeros(2)), ValueError, "list of"),
    (lambda: dist.all_reduce([1.0]), TypeError, "ember Tensor"),
    (lambda: dist.all_reduce(ember.zeros(2), op="mean"), ValueError, "ReduceOp"),
    (lambda: dist.all_gather_into_tensor(ember.zeros(5), ember.zeros(2)), ValueError, "shape"),
    (lambda: dist.init_process_group(), dist.DistError, "twice"),
]:
    try:
        bad()
    except kind as e:
        assert words in str(e), (words, str(e))
    else:
        raise SystemExit(f"expected {kind.__name__} containing {words!r}")

dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"OK {r}", flush=True)
