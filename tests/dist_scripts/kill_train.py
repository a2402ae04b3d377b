"""Run under mpiexec: ``Trainer.fit`` on 2 ranks where rank 1 SIGKILLs itself mid-training,
then a resume from rank 0's last checkpoint.

Usage: kill_train.py full|kill|resume OUTDIR. ``full`` trains EPOCHS epochs uninterrupted;
``kill`` dies on rank 1 in the third epoch (rank 0 must raise RankFailureError naming it);
``resume`` continues from the checkpoint of epoch 2. ``full`` and ``resume`` write the final
weights of rank 0 to OUTDIR/<phase>.json.
"""

import json
import os
import signal
import sys

import numpy as np

import ember
import ember.distributed as dist
from ember import nn
from ember.data import DataLoader, TensorDataset
from ember.train import Callback, ModelCheckpoint, Trainer

phase, out = sys.argv[1], sys.argv[2]
EPOCHS = 4
dist.init_process_group("mpi", timeout=4)
rank = dist.get_rank()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    def training_step(self, b, i):
        x, y = b
        return nn.functional.cross_entropy(self.body(x), y)

    def configure_optimizers(self):
        return ember.optim.Adam(self.parameters(), lr=0.05)


class KillRank1(Callback):
    def on_train_batch_end(self, batch, logs=None):
        if rank == 1 and self.engine.epoch == 2 and batch == 1:
            os.kill(os.getpid(), signal.SIGKILL)


rng = np.random.default_rng(0)
ds = TensorDataset(
    ember.tensor(rng.standard_normal((40, 4)).astype(np.float32)),
    ember.tensor(rng.integers(0, 2, 40)),
)
ember.manual_seed(0)
net = Net()
callbacks = [ModelCheckpoint(os.path.join(out, f"{phase}_{{epoch}}.ember"), monitor="loss")]
if phase == "kill":
    callbacks.append(KillRank1())
trainer = Trainer(max_epochs=EPOCHS, callbacks=callbacks, verbose=0)
ckpt = os.path.join(out, "kill_2.ember") if phase == "resume" else None
try:
    trainer.fit(net, DataLoader(ds, batch_size=5, shuffle=True), ckpt_path=ckpt)
except dist.RankFailureError as e:
    print(f"rank {rank} stopped: {e}", flush=True)
    raise
if rank == 0:
    with open(os.path.join(out, f"{phase}.json"), "w") as f:
        json.dump({k: v.tolist() for k, v in net.state_dict().items()}, f)
print(f"rank {rank} finished {phase}", flush=True)
