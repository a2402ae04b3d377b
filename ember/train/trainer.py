"""``Trainer``: fit an ``ember.nn.Module`` that defines its own steps (the Lightning idea).

The module defines ``training_step(batch, batch_idx)`` (returns the loss, or a dict with
``'loss'``), optionally ``validation_step``/``test_step``/``predict_step``, and
``configure_optimizers()`` returning an optimizer, ``(optimizers, schedulers)``, or a dict
``{'optimizer': ..., 'lr_scheduler': scheduler or {'scheduler', 'interval', 'monitor'}}``.
Inside the steps, ``self.log(name, value)`` records an epoch-averaged value. The loop is
:class:`ember.train.Engine`, the same one behind ``keras.Model.fit``, with the same callbacks.

Example:
    >>> import numpy as np, ember
    >>> from ember import nn
    >>> from ember.data import DataLoader, TensorDataset
    >>> from ember.train import Trainer
    >>> class Reg(nn.Module):
    ...     def __init__(self):
    ...         super().__init__(); self.lin = nn.Linear(1, 1)
    ...     def training_step(self, batch, batch_idx):
    ...         x, y = batch
    ...         loss = nn.functional.mse_loss(self.lin(x), y)
    ...         self.log("train_loss", loss)
    ...         return loss
    ...     def configure_optimizers(self):
    ...         return ember.optim.SGD(self.parameters(), lr=0.1)
    >>> x = ember.randn(16, 1); ds = TensorDataset(x, 3 * x)
    >>> t = Trainer(max_epochs=2, verbose=0)
    >>> t.fit(Reg(), DataLoader(ds, batch_size=8))
    >>> sorted(t.callback_metrics)
    ['loss', 'train_loss']
"""

from __future__ import annotations

import ember

from ._compiled import compile_options
from .checkpoint import load_checkpoint, save_checkpoint
from .engine import Engine, Task

__all__ = ["Trainer"]


def _batch_size(batch) -> float:
    if isinstance(batch, ember.Tensor):
        return float(batch.shape[0]) if batch.ndim else 1.0
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    try:
        return float(len(batch))
    except TypeError:
        return 1.0


class _ModuleTask(Task):
    """Adapts a module's ``*_step`` methods to the engine's :class:`Task`."""

    val_prefix = ""

    def __init__(self, module):
        super().__init__()
        self.model = module
        self._weight = 1.0

    def _log(self, name, value, *args, **kwargs):
        self.log(name, value, self._weight)

    def train_step(self, batch, batch_idx):
        self._weight = _batch_size(batch)
        out = self.model.training_step(batch, batch_idx)
        loss = out["loss"] if isinstance(out, dict) else out
        if loss is not None:
            self.log("loss", loss, self._weight)
        return loss

    def test_step(self, batch, batch_idx):
        self._weight = _batch_size(batch)
        fn = getattr(self.model, self._eval_hook, None)
        if fn is None:
            raise AttributeError(f"{type(self.model).__name__} defines no {self._eval_hook}")
        fn(batch, batch_idx)

    def predict_step(self, batch, batch_idx):
        fn = getattr(self.model, "predict_step", None)
        if fn is not None:
            return fn(batch, batch_idx)
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(x)

    _eval_hook = "validation_step"


def _parse_optimizers(conf):
    """Normalise what ``configure_optimizers`` returned to (optimizers, scheduler dicts)."""
    if conf is None:
        return [], []
    if isinstance(conf, dict):
        opt = conf["optimizer"]
        sch = conf.get("lr_scheduler")
        scheds = [] if sch is None else [sch if isinstance(sch, dict) else {"scheduler": sch}]
        if "monitor" in conf:
            for s in scheds:
                s.setdefault("monitor", conf["monitor"])
        return [opt], scheds
    if isinstance(conf, tuple) and len(conf) == 2 and isinstance(conf[0], (list, tuple)):
        opts, scheds = conf
        return list(opts), list(scheds)
    if isinstance(conf, (list, tuple)):
        if conf and all(isinstance(c, dict) for c in conf):
            opts, scheds = [], []
            for c in conf:
                o, s = _parse_optimizers(c)
                opts += o
                scheds += s
            return opts, scheds
        return list(conf), []
    return [conf], []


class Trainer:
    """Fit, validate, test and predict with a module that defines its own steps.

    Args:
        max_epochs: epochs to train.
        callbacks: :mod:`ember.train.callbacks` objects (EarlyStopping, ModelCheckpoint, ...).
        gradient_clip_val / gradient_clip_algorithm: ``'norm'`` (global L2) or ``'value'``.
        accumulate_grad_batches: batches per optimizer step.
        limit_train_batches / limit_val_batches: at most this many batches per epoch.
        check_val_every_n_epoch: validation frequency.
        verbose: 0, 1 (progress bar), 2 (a line per epoch) or ``'auto'``;
            ``enable_progress_bar=False`` means 0.
        distributed: ``'auto'`` (data-parallel when ``ember.distributed`` is initialized with
            several ranks), ``True`` or ``False``; see :mod:`ember.train.distributed`. A module
            already wrapped in ``DistributedDataParallel`` may be passed to ``fit``.
        compile: ``True`` (or a dict of :func:`ember.compile` options such as
            ``{'dynamic': True, 'fullgraph': False}``) runs the module's ``forward`` (what
            ``self(x)`` calls in the steps) compiled in ``fit``/``validate``/``test``/
            ``predict``; the steps' own Python, ``self.log``, backward, clipping,
            accumulation, optimizers and schedulers stay eager (see :class:`Engine`). Losses,
            logs and weights equal the eager run's; checkpoints are the same (no
            ``_orig_mod.`` keys). A module returned by ``ember.compile(module)`` may be passed
            to ``fit`` (as ``torch.compile(model)`` to Lightning): it is trained as its
            original module with ``compile=True``.

    Example (compiled):
        >>> import ember
        >>> from ember import nn
        >>> from ember.data import DataLoader, TensorDataset
        >>> from ember.train import Trainer
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lin = nn.Linear(3, 1)
        ...     def forward(self, x):
        ...         return self.lin(x).tanh()
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         return nn.functional.mse_loss(self(x), y)
        ...     def configure_optimizers(self):
        ...         return ember.optim.SGD(self.parameters(), lr=0.1)
        >>> ds = TensorDataset(ember.randn(20, 3), ember.randn(20, 1))
        >>> trainer = Trainer(max_epochs=2, verbose=0, compile=True)
        >>> trainer.fit(Net(), DataLoader(ds, batch_size=8))  # batches of 8, 8 and 4
        >>> ember.compile.explain(trainer.engine.compiled_forward).traces
        1

    Example:
        >>> import ember
        >>> from ember import nn
        >>> from ember.data import DataLoader, TensorDataset
        >>> from ember.train import EarlyStopping, Trainer
        >>> class Reg(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lin = nn.Linear(1, 1)
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         return nn.functional.mse_loss(self.lin(x), y)
        ...     def validation_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         self.log("val_loss", nn.functional.mse_loss(self.lin(x), y))
        ...     def configure_optimizers(self):
        ...         return ember.optim.SGD(self.parameters(), lr=0.1)
        >>> x = ember.randn(32, 1)
        >>> loader = DataLoader(TensorDataset(x, 2 * x), batch_size=8)
        >>> trainer = Trainer(max_epochs=3, callbacks=[EarlyStopping(patience=1)], verbose=0)
        >>> trainer.fit(Reg(), loader, loader)
        >>> sorted(trainer.callback_metrics)
        ['loss', 'val_loss']
    """

    def __init__(
        self,
        max_epochs: int = 1,
        callbacks=None,
        gradient_clip_val=None,
        gradient_clip_algorithm: str = "norm",
        accumulate_grad_batches: int = 1,
        limit_train_batches: int | None = None,
        limit_val_batches: int | None = None,
        check_val_every_n_epoch: int = 1,
        enable_progress_bar: bool = True,
        verbose="auto",
        distributed: bool | str = "auto",
        compile: bool | dict = False,
    ):
        self.compile = compile
        compile_options(compile, "Trainer")  # checked now
        self.max_epochs = int(max_epochs)
        self.callbacks = list(callbacks or ())
        self.gradient_clip_val, self.gradient_clip_algorithm = (
            gradient_clip_val,
            gradient_clip_algorithm,
        )
        self.accumulate_grad_batches = int(accumulate_grad_batches)
        self.limit_train_batches, self.limit_val_batches = limit_train_batches, limit_val_batches
        self.check_val_every_n_epoch = int(check_val_every_n_epoch)
        self.verbose = verbose if enable_progress_bar else 0
        self.distributed = distributed
        self.engine: Engine | None = None
        self.callback_metrics: dict[str, float] = {}
        self.history = None

    @property
    def current_epoch(self) -> int:
        return self.engine.epoch if self.engine else 0

    @property
    def global_step(self) -> int:
        return self.engine.global_step if self.engine else 0

    @property
    def optimizers(self):
        return self.engine.optimizers if self.engine else []

    def _engine(self, model) -> Engine:
        model, compile = _uncompiled(model, self.compile)
        wrapper, model = model, _unwrap(model)
        task = _ModuleTask(model)
        _bind_log(model, task)
        object.__setattr__(model, "trainer", self)
        conf = model.configure_optimizers() if hasattr(model, "configure_optimizers") else None
        opts, scheds = _parse_optimizers(conf)
        return Engine(
            wrapper,
            task,
            optimizers=opts,
            schedulers=scheds,
            callbacks=self.callbacks,
            accumulate_grad_batches=self.accumulate_grad_batches,
            gradient_clip_val=self.gradient_clip_val,
            gradient_clip_algorithm=self.gradient_clip_algorithm,
            verbose=self.verbose,
            distributed=self.distributed,
            compile=compile,
        )

    def fit(self, model, train_dataloaders=None, val_dataloaders=None, ckpt_path=None) -> None:
        """Train ``model``; ``ckpt_path`` resumes from a full checkpoint exactly."""
        if not hasattr(_unwrap(model), "training_step"):
            raise TypeError(f"Trainer.fit: {type(model).__name__} defines no training_step")
        if train_dataloaders is None:
            raise ValueError("Trainer.fit needs train_dataloaders")
        self.engine = self._engine(model)
        if ckpt_path is not None:
            if self.distributed is not False and ember.distributed.is_initialized():
                ember.distributed.barrier()  # rank 0 may still be writing it
            self.engine.restore(load_checkpoint(ckpt_path))
        if val_dataloaders is not None and not hasattr(_unwrap(model), "validation_step"):
            raise TypeError(
                f"Trainer.fit: val_dataloaders given but {type(model).__name__} "
                "defines no validation_step"
            )
        self.history = self.engine.fit(
            train_dataloaders,
            self.max_epochs,
            val_data=val_dataloaders,
            steps_per_epoch=self.limit_train_batches,
            validation_steps=self.limit_val_batches,
            validation_freq=self.check_val_every_n_epoch,
        )
        last = {k: v[-1] for k, v in self.history.history.items() if v}
        self.callback_metrics = last

    def _eval(self, model, dataloaders, hook):
        engine = self._engine_for(model)
        engine.task._eval_hook = hook
        try:
            loaders = dataloaders if isinstance(dataloaders, (list, tuple)) else [dataloaders]
            return [engine.evaluate(dl, steps=self.limit_val_batches) for dl in loaders]
        finally:
            engine.task._eval_hook = "validation_step"

    def validate(self, model, dataloaders) -> list[dict]:
        return self._eval(model, dataloaders, "validation_step")

    def test(self, model, dataloaders) -> list[dict]:
        return self._eval(model, dataloaders, "test_step")

    def predict(self, model, dataloaders) -> list:
        return self._engine_for(model).predict(dataloaders)

    def _engine_for(self, model) -> Engine:
        """The engine of the last ``fit`` when it trained ``model``, else a new one."""
        if self.engine and self.engine.model is _uncompiled(model, self.compile)[0]:
            return self.engine
        return self._engine(model)

    def save_checkpoint(self, path) -> None:
        """Write a full checkpoint; from a batch hook it records the position in the epoch,
        from an epoch-end hook or after ``fit`` it resumes at the next epoch. Under a process
        group every rank calls it; rank 0 writes and the others wait until the file is
        complete."""
        eng = self.engine
        if eng is None:
            raise RuntimeError("Trainer.save_checkpoint: call fit first")
        if eng.batches_done is not None:
            epoch = None
        elif eng.epoch_logs is not None:
            epoch = eng.epoch + 1
        else:
            epoch = eng.epoch
        initialized = self.distributed is not False and ember.distributed.is_initialized()
        if initialized:
            for opt in eng.optimizers:  # sharded (ZeRO) state: every rank sends its shard
                if hasattr(opt, "consolidate_state_dict"):
                    opt.consolidate_state_dict(to=0)
        if not initialized or ember.distributed.get_rank() == 0:
            save_checkpoint(path, eng, epoch=epoch)
        if initialized:
            ember.distributed.barrier()


def _uncompiled(model, compile):
    """A module returned by ``ember.compile(module)`` as its original module, trained with
    that compiled function's options (Lightning's handling of ``torch.compile(model)``): the
    checkpoints then hold the module's own keys."""
    from ember.compiler import OptimizedModule

    if not isinstance(model, OptimizedModule):
        return model, compile
    cf = model.__dict__["_compiled"]
    opts = {"dynamic": cf.dynamic, "fullgraph": cf.fullgraph}
    return model._orig_mod, (compile if isinstance(compile, dict) else opts)


def _unwrap(model):
    """The module inside a ``DistributedDataParallel`` (whose steps the task calls)."""
    from ember.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def _bind_log(model, task) -> None:
    # NOTE: a plain nn.Module has no ``log``; bind the task's into the instance so that
    # ``self.log(...)`` works inside the steps without a special base class.
    if getattr(type(model), "log", None) is None:
        object.__setattr__(model, "log", task._log)
    else:
        object.__setattr__(model, "_ember_task_log", task._log)
