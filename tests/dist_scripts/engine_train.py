"""The training engine under DDP (run under mpiexec) or its single-process reference.

Usage: engine_train.py dist|ref OUTDIR RESULTDIR. ``dist`` (every rank) trains through
``Trainer`` and ``keras.Model.fit`` unchanged, with a per-rank batch of ``PER_RANK``; ``ref``
(one process, no process group) trains the same models on the combined batch
``PER_RANK * WORLD`` in the order of ``DistributedSampler(num_replicas=1)``. Both write the
per-epoch logs and final weights to RESULTDIR/<rank>.json; the test compares them. Files
(CSV logs, checkpoints) are named after the rank that would write them, so the test can see
that only rank 0 did.
"""

import json
import os
import sys

import numpy as np

import ember
import ember.distributed as dist
from ember import keras, nn
from ember.data import DataLoader, DistributedSampler, TensorDataset
from ember.data.distributed import torch_randperm
from ember.train import Callback, CSVLogger, ModelCheckpoint, Trainer

mode, out, results = sys.argv[1], sys.argv[2], sys.argv[3]
WORLD, PER_RANK, N, EPOCHS = 2, 6, 48, 3
if mode == "dist":
    dist.init_process_group("mpi", timeout=60)
    assert dist.get_world_size() == WORLD
rank = dist.get_rank() if mode == "dist" else 0
batch = PER_RANK if mode == "dist" else PER_RANK * WORLD

rng = np.random.default_rng(0)
X = rng.standard_normal((N, 5)).astype(np.float32)
Y = rng.integers(0, 3, N)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return self.body(x)

    def training_step(self, b, i):
        x, y = b
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, b, i):
        x, y = b
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return ember.optim.SGD(self.parameters(), lr=0.2, momentum=0.9)


def loader(shuffle):
    ds = TensorDataset(ember.tensor(X), ember.tensor(Y))
    if mode == "dist":  # a plain loader: the engine shards it
        return DataLoader(ds, batch_size=batch, shuffle=shuffle)
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=shuffle)
    return _EpochLoader(DataLoader(ds, batch_size=batch, sampler=sampler), sampler)


class _EpochLoader:
    """The reference's loader: calls ``set_epoch`` itself (the engine does not, alone)."""

    def __init__(self, dl, sampler):
        self.dl, self.sampler, self.epoch = dl, sampler, 0

    def __len__(self):
        return len(self.dl)

    def __iter__(self):
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.dl)


def weights(m):
    return {k: v.tolist() for k, v in m.state_dict().items()}


def trainer_run(epochs, ckpt=None, callbacks=(), **kw):
    ember.manual_seed(0)
    net = Net()
    t = Trainer(max_epochs=epochs, callbacks=list(callbacks), verbose=0, **kw)
    t.fit(net, loader(True), loader(False), ckpt_path=ckpt)
    return t, net


result = {}
tag = f"r{rank}" if mode == "dist" else "ref"


def callbacks(run):
    return [
        CSVLogger(os.path.join(out, f"log_{run}_{tag}.csv")),
        ModelCheckpoint(os.path.join(out, f"ckpt_{run}_{tag}_{{epoch}}.ember"), monitor="val_loss"),
    ]


t, net = trainer_run(EPOCHS, callbacks=callbacks("a"))
t.save_checkpoint(os.path.join(out, f"manual_{tag}.ember"))  # every rank calls it
result["trainer_history"] = t.history.history
result["trainer_weights"] = weights(net)
# gradient accumulation: only the backward that completes a group is reduced
t4, net4 = trainer_run(2, accumulate_grad_batches=3, gradient_clip_val=0.5)
result["accum_history"] = t4.history.history
result["accum_weights"] = weights(net4)
if mode == "dist":
    # every rank resumes from the checkpoint that rank 0 wrote after epoch 2
    ckpt = os.path.join(out, "ckpt_a_r0_2.ember")
    t2, net2 = trainer_run(EPOCHS, ckpt=ckpt, callbacks=callbacks("b"))
    result["resumed_weights"] = weights(net2)
    result["resumed_history"] = t2.history.history

    # a model the user wrapped already: used as it is (its hooks reduce), not wrapped again
    from ember.nn.parallel import DistributedDataParallel as DDP

    ember.manual_seed(0)
    net5 = Net()
    t5 = Trainer(max_epochs=EPOCHS, verbose=0)
    t5.fit(DDP(net5), loader(True), loader(False))
    result["user_ddp_history"] = t5.history.history
    result["user_ddp_weights"] = weights(net5)

    class StopOnRank1(Callback):
        """Stops rank 1 alone (as TerminateOnNaN on a local loss would)."""

        def on_train_batch_end(self, batch, logs=None):
            if rank == 1 and batch == 1:
                self.engine.stop_training = True

    t3, _ = trainer_run(EPOCHS, callbacks=[StopOnRank1()])
    result["stopped_at_step"] = t3.global_step

    # ZeRO-1 under Trainer: epoch-end checkpoints hold the whole (consolidated) optimizer
    # state; resuming from one on every rank reproduces the uninterrupted run
    from ember.optim.zero import ZeroRedundancyOptimizer

    class ZeroNet(Net):
        def configure_optimizers(self):
            return ZeroRedundancyOptimizer(self.parameters(), ember.optim.SGD, lr=0.2, momentum=0.9)

    def zero_run(ckpt=None, run="z"):
        ember.manual_seed(0)
        net = ZeroNet()
        cb = ModelCheckpoint(os.path.join(out, f"ckpt_{run}_{tag}_{{epoch}}.ember"))
        t = Trainer(max_epochs=EPOCHS, callbacks=[cb], verbose=0)
        t.fit(net, loader(True), loader(False), ckpt_path=ckpt)
        return t, net

    tz, netz = zero_run()
    result["zero_history"] = tz.history.history
    result["zero_weights"] = weights(netz)
    tz2, netz2 = zero_run(os.path.join(out, "ckpt_z_r0_2.ember"), run="zr")
    result["zero_resumed_weights"] = weights(netz2)

# keras.Model.fit, unchanged: the engine shards its arrays by rank
ember.manual_seed(1)
model = keras.Sequential([keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)])
model.compile(
    optimizer=keras.optimizers.SGD(learning_rate=0.1),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
if mode == "dist":
    h = model.fit(X, Y, batch_size=batch, epochs=EPOCHS, shuffle=True, verbose=0)
    hist = h.history
else:
    hist = {}
    for e in range(EPOCHS):
        order = torch_randperm(N, e)  # DistributedSampler(num_replicas=1, seed=0), epoch e
        h = model.fit(X[order], Y[order], batch_size=batch, epochs=1, shuffle=False, verbose=0)
        for k, v in h.history.items():
            hist.setdefault(k, []).extend(v)
result["keras_history"] = hist
result["keras_weights"] = [w.tolist() for w in model.get_weights()]

# evaluate / predict: each rank takes every WORLD-th batch of the unsharded loader (37
# samples in batches of 5: 8 batches, uneven over ranks, a short last one); every rank
# returns what one process returns on the whole loader
N_EVAL, EVAL_BATCH = 37, 5
XE = np.random.default_rng(5).standard_normal((N_EVAL, 5)).astype(np.float32)
YE = np.random.default_rng(6).integers(0, 3, N_EVAL)


class EvalNet(Net):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(5)
        self.norm.running_mean.copy_(ember.tensor(XE.mean(0)))

    def forward(self, x):
        return self.body(self.norm(x))

    def validation_step(self, b, i):
        x, y = b
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())


ember.manual_seed(3)
enet = EvalNet()
if rank == 1:
    # evaluation uses rank 0's buffers (as DDP's forward would): this must not matter
    enet.norm.running_mean.add_(1.0)
eval_dl = DataLoader(TensorDataset(ember.tensor(XE), ember.tensor(YE)), batch_size=EVAL_BATCH)
tv = Trainer(verbose=0)
result["trainer_validate"] = tv.validate(enet, eval_dl)
result["trainer_test_limited"] = Trainer(verbose=0, limit_val_batches=3).validate(enet, eval_dl)
preds = tv.predict(enet, eval_dl)
result["trainer_predict_sizes"] = [int(p.shape[0]) for p in preds]
result["trainer_predict"] = np.concatenate([p.numpy() for p in preds]).tolist()
shuffled = DataLoader(TensorDataset(ember.tensor(XE), ember.tensor(YE)), 5, shuffle=True)
result["trainer_validate_shuffled"] = tv.validate(enet, shuffled)
result["keras_evaluate"] = model.evaluate(XE, YE, batch_size=EVAL_BATCH, return_dict=True)
result["keras_predict"] = model.predict(XE, batch_size=EVAL_BATCH).tolist()
with open(os.path.join(results, f"{rank}.json"), "w") as f:
    json.dump(result, f)
