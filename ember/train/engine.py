"""The training engine: one loop behind ``keras.Model.fit`` and ``ember.train.Trainer``.

The engine owns the *loop* — epochs and steps, validation, callbacks at every stage,
gradient accumulation and clipping, learning-rate schedules, ``History``, progress and
checkpoint/resume. What a step *computes* belongs to a :class:`Task` (the Keras model's
``train_step``, or a ``training_step`` of an ``nn.Module``): the task returns the loss, the
engine runs backward and the optimizer.

Example:
    >>> import numpy as np, ember
    >>> from ember.train import Engine, Task, ArrayLoader
    >>> w = ember.zeros(1, requires_grad=True)
    >>> class Fit(Task):
    ...     def train_step(self, batch, batch_idx):
    ...         x, y = batch
    ...         loss = ((x * w - y) ** 2).mean()
    ...         self.log("loss", loss)
    ...         return loss
    >>> class Opt:   # any object with param_groups/step/zero_grad works
    ...     param_groups = [{"lr": 0.1, "params": [w]}]
    ...     def step(self):
    ...         with ember.no_grad(): w.sub_(w.grad * 0.1)
    ...     def zero_grad(self): w.grad = None
    >>> x = np.ones((8, 1), np.float32)
    >>> h = Engine(None, Fit(), optimizers=[Opt()], verbose=0).fit(
    ...     ArrayLoader((x, 2 * x), batch_size=4), epochs=3)
    >>> len(h.history["loss"])
    3
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

import ember

from ._compiled import MISSING, ForwardCache, compile_forward, compile_options, compile_target
from .callbacks import BackupAndRestore, Callback, CallbackList
from .distributed import DistributedContext
from .history import History
from .progress import ProgressBar, resolve_verbose

__all__ = ["ArrayLoader", "Engine", "Task", "clip_gradients"]


class Task:
    """What one step computes. Subclass and override ``train_step`` (return the loss);
    ``test_step``/``predict_step`` as needed. ``self.log(name, value)`` records a value that
    is averaged over the epoch (weighted by batch size when given) and shown in the logs."""

    model = None
    val_prefix = "val_"  # how validation logs are named inside fit's epoch logs

    def __init__(self):
        self._sums: dict[str, list[float]] = {}

    def train_step(self, batch, batch_idx: int):
        raise NotImplementedError("Task.train_step must return the loss tensor")

    def test_step(self, batch, batch_idx: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no test_step")

    def predict_step(self, batch, batch_idx: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no predict_step")

    # -- streaming logs ---------------------------------------------------------------------
    def log(self, name: str, value, weight: float = 1.0) -> None:
        v = float(value.detach().item() if isinstance(value, ember.Tensor) else value)
        s = self._sums.setdefault(name, [0.0, 0.0])
        s[0] += v * weight
        s[1] += weight

    def reset_metrics(self) -> None:
        self._sums = {}

    def logs(self) -> dict[str, float]:
        return {k: s[0] / s[1] for k, s in self._sums.items() if s[1]}

    def metrics_state(self) -> dict:
        """The running epoch values (saved in mid-epoch checkpoints)."""
        return {"sums": {k: list(v) for k, v in self._sums.items()}}

    def load_metrics_state(self, state: dict) -> None:
        self._sums = {k: [float(a), float(b)] for k, (a, b) in state.get("sums", {}).items()}


class ArrayLoader:
    """Mini-batches of NumPy arrays or tensors (a tuple sliced along the first axis).

    Shuffling draws from its own NumPy generator, seeded from ember's global generator
    unless ``seed`` is given; its state is saved in full checkpoints (the data-order RNG).
    After :meth:`shard` it yields one rank's share in PyTorch's ``DistributedSampler`` order
    (shuffled by ``seed`` or 0, plus the epoch given to :meth:`set_epoch`).
    """

    def __init__(self, arrays, batch_size: int = 32, shuffle: bool = False, seed=None):
        self.arrays = tuple(arrays)
        ns = {len(a) for a in self.arrays if a is not None}
        if len(ns) != 1:
            raise ValueError(f"ArrayLoader: arrays have different lengths {sorted(ns)}")
        self.n = ns.pop()
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self._rng = np.random.default_rng(ember.random.next_seed() if seed is None else seed)
        self._sampler = None
        self._seed = 0 if seed is None else int(seed)

    def shard(self, rank: int, world_size: int) -> None:
        """Yield only replica ``rank``'s share from now on (see ``DistributedSampler``)."""
        from ember.data.distributed import DistributedSampler

        self._sampler = DistributedSampler(
            range(self.n),
            num_replicas=world_size,
            rank=rank,
            shuffle=self.shuffle,
            seed=self._seed,
        )

    def set_epoch(self, epoch: int) -> None:
        if self._sampler is not None:
            self._sampler.set_epoch(epoch)

    def _count(self) -> int:
        return self.n if self._sampler is None else len(self._sampler)

    def __len__(self) -> int:
        n = self._count()
        return max(1, -(-n // self.batch_size)) if n else 0

    def __iter__(self):
        if self._sampler is not None:
            order = np.asarray(list(self._sampler), dtype=np.int64)
        else:
            order = self._rng.permutation(self.n) if self.shuffle else None
        for i in range(0, self._count(), self.batch_size):
            if order is None:
                idx = slice(i, i + self.batch_size)
            else:
                idx = order[i : i + self.batch_size]
            yield tuple(None if a is None else _take(a, idx) for a in self.arrays)

    def rng_state(self) -> dict:
        st = self._rng.bit_generator.state
        return {
            "bit_generator": st["bit_generator"],
            "state": {k: int(v) for k, v in st["state"].items()},
            "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"]),
        }

    def set_rng_state(self, state: dict) -> None:
        self._rng.bit_generator.state = {
            "bit_generator": state["bit_generator"],
            "state": dict(state["state"]),
            "has_uint32": state["has_uint32"],
            "uinteger": state["uinteger"],
        }


def _take(a, idx):
    if isinstance(a, ember.Tensor):
        if isinstance(idx, slice):
            return a[idx]
        return a[ember.as_tensor(idx)]
    return a[idx]


def clip_gradients(params, clip_val: float, algorithm: str = "norm") -> float | None:
    """Clip gradients in place by global L2 norm (``'norm'``) or by value (``'value'``) with
    :func:`ember.nn.utils.clip_grad_norm_` / :func:`~ember.nn.utils.clip_grad_value_`;
    returns the total norm before clipping for ``'norm'``.

    Example:
        >>> import ember
        >>> w = ember.ones(2, requires_grad=True); w.grad = ember.tensor([3.0, 4.0])
        >>> clip_gradients([w], 1.0), [round(g, 2) for g in w.grad.tolist()]
        (5.0, [0.6, 0.8])
    """
    from ember.nn.utils import clip_grad_norm_, clip_grad_value_

    if algorithm not in ("norm", "value"):
        raise ValueError(f"gradient_clip_algorithm must be 'norm' or 'value', got {algorithm!r}")
    params = [p for p in params if getattr(p, "grad", None) is not None]
    if not params:
        return None
    if algorithm == "value":
        clip_grad_value_(params, clip_val)
        return None
    return float(clip_grad_norm_(params, clip_val))


def _norm_schedulers(schedulers) -> list[dict]:
    out = []
    for s in schedulers or ():
        if isinstance(s, dict):
            d = {"interval": "epoch", "frequency": 1, "monitor": "val_loss", **s}
        else:
            d = {"scheduler": s, "interval": "epoch", "frequency": 1, "monitor": "val_loss"}
        if d["interval"] not in ("epoch", "step"):
            raise ValueError(f"scheduler interval must be 'epoch' or 'step', got {d['interval']!r}")
        if d["interval"] == "step" and _is_plateau(d["scheduler"]):
            # NOTE: step logs are not epoch-averaged values: it would never see its monitor
            raise ValueError("a ReduceLROnPlateau scheduler needs interval 'epoch', got 'step'")
        out.append(d)
    return out


def _is_plateau(s) -> bool:
    return type(s).__name__ == "ReduceLROnPlateau" and not isinstance(s, Callback)


class Engine:
    """Runs a :class:`Task` over data: ``fit``, ``evaluate``, ``predict``.

    Args:
        model: the ``ember.nn.Module`` being trained (``train()``/``eval()``, state dicts).
        task: what a step computes (see :class:`Task`).
        optimizers: optimizers stepped after every ``accumulate_grad_batches`` batches.
        schedulers: LR schedulers, or dicts ``{'scheduler', 'interval': 'epoch'|'step',
            'frequency', 'monitor'}`` (``monitor`` for ``ReduceLROnPlateau``).
        callbacks: :class:`~ember.train.Callback` objects.
        accumulate_grad_batches: sum gradients over this many batches per optimizer step
            (each loss is divided by it, so the step sees the mean).
        gradient_clip_val / gradient_clip_algorithm: clip by global norm or by value.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch, ``'auto'``.
        distributed: ``'auto'`` (data-parallel when the process group is initialized with
            more than one rank), ``True`` (require it) or ``False``; see
            :mod:`ember.train.distributed` for what ``fit`` does on several ranks.
        compile: ``True`` runs the model's forward through :func:`ember.compile` during
            ``fit``/``evaluate``/``predict`` (a dict passes ``ember.compile`` options:
            ``dynamic``, ``fullgraph``, ``recompile_limit``, ...). The module's ``forward``
            is replaced on the instance by its compiled function for the run and restored
            after, so ``self(x)`` / ``model(x)`` in the task runs the graph (backward through
            it included) while the task's Python, the loss, logging, metrics, gradient
            accumulation and clipping, the optimizers and schedulers stay eager. Parameters,
            state dicts and checkpoints are the module's own (no ``_orig_mod.`` prefix), so
            compiled and eager runs resume each other's checkpoints. One graph serves every
            batch size (the last smaller batch does not retrace); training and evaluation
            get one graph each; a graph break warns with its line and runs eagerly, as
            ``ember.compile`` does. ``compiled_forward`` is the compiled function (its
            ``explain()`` tells what was traced).

    Example:
        >>> import numpy as np, ember
        >>> from ember.train import Engine, Task, ArrayLoader
        >>> net = ember.nn.Linear(2, 1)
        >>> class Reg(Task):
        ...     def train_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         return ember.nn.functional.mse_loss(net(x), y)
        >>> eng = Engine(net, Reg(), optimizers=[ember.optim.SGD(net.parameters(), lr=0.1)],
        ...              verbose=0, compile=True)
        >>> x = np.ones((10, 2), np.float32)
        >>> _ = eng.fit(ArrayLoader((x, x[:, :1]), batch_size=4), epochs=2)  # 4, 4, 2 rows
        >>> ember.compile.explain(eng.compiled_forward).traces
        1
    """

    def __init__(
        self,
        model,
        task: Task,
        *,
        optimizers=(),
        schedulers=(),
        callbacks=(),
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        verbose=1,
        distributed: bool | str = "auto",
        compile: bool | dict = False,
    ):
        self.compile_options = compile_options(compile, type(self).__name__)
        self.forward_cache = ForwardCache()
        # guard the model's own Python attributes, as ``ember.compile(model)`` does (a Keras
        # model keeps its training bookkeeping there: only its layers are guarded)
        self._guard_model = True
        if distributed not in ("auto", True, False):
            raise ValueError(f"distributed must be 'auto', True or False, got {distributed!r}")
        if int(accumulate_grad_batches) < 1:
            raise ValueError("accumulate_grad_batches must be >= 1")
        self.model, self.task = model, task
        self.optimizers = list(optimizers or ())
        self.schedulers = _norm_schedulers(schedulers)
        self.user_callbacks = list(callbacks or ())
        self.accumulate = int(accumulate_grad_batches)
        if gradient_clip_algorithm not in ("norm", "value"):
            raise ValueError(
                "gradient_clip_algorithm must be 'norm' or 'value', "
                f"got {gradient_clip_algorithm!r}"
            )
        self.clip_val, self.clip_algorithm = gradient_clip_val, gradient_clip_algorithm
        self.verbose = resolve_verbose(verbose)
        self.distributed = distributed
        self._dist = DistributedContext(False)
        self.epoch = 0
        self.global_step = 0
        self.batch_idx = 0
        self.stop_training = False
        self.stop_training_by_error = False
        self.resumed = False
        # True while an epoch has validation data that has not run yet (validation_freq):
        # monitors of validation values are absent from such an epoch's logs
        self.validation_pending = False
        self.history = History()
        self.train_data = None
        self.epoch_logs: dict | None = None  # the logs of the epoch being closed
        self.batches_done: int | None = None  # batches of this epoch done (inside an epoch)
        self._epoch_start_rng: dict | None = None
        self._resume_position: dict | None = None
        self._pending: dict | None = None

    # -- learning rate ----------------------------------------------------------------------
    def get_lr(self) -> float:
        if not self.optimizers:
            raise RuntimeError("the engine has no optimizer")
        return float(self.optimizers[0].param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = float(lr)

    @property
    def compiled_forward(self):
        """The compiled forward of the model (``compile=True``; None before the first run)."""
        return self.forward_cache.fn

    @contextlib.contextmanager
    def _compiled_model(self):
        """While inside, the model's ``forward`` is its compiled function (``compile=``)."""
        mod = compile_target(self.model)
        if self.compile_options is None or mod is None:
            yield
            return
        d = mod.__dict__
        cache = self.forward_cache
        prev = d.get("forward", MISSING)
        if cache.mod is mod and prev is cache.call:  # (evaluate inside fit)
            yield
            return
        if cache.mod is not mod or cache.base is not prev:
            cache.set(mod, prev, compile_forward(mod, self.compile_options, self._guard_model))
        d["forward"] = cache.call
        try:
            yield
        finally:
            if prev is MISSING:
                d.pop("forward", None)
            else:
                d["forward"] = prev

    def parameters(self):
        seen, out = set(), []
        for opt in self.optimizers:
            for g in opt.param_groups:
                for p in g["params"]:
                    if id(p) not in seen:
                        seen.add(id(p))
                        out.append(p)
        return out

    # -- state (for checkpoints) ------------------------------------------------------------
    def _callback_keys(self):
        """Callbacks keyed by class name and occurrence (stable when others are added)."""
        seen: dict[str, int] = {}
        for cb in self._all_callbacks():
            name = type(cb).__name__
            seen[name] = seen.get(name, -1) + 1
            yield f"{name}:{seen[name]}", cb

    def callbacks_state(self) -> dict:
        out = {}
        for key, cb in self._callback_keys():
            st = cb.state_dict()
            if st:
                out[key] = st
        return out

    def data_rng_state(self):
        return _data_rng_state(self.train_data)

    def restore(self, state: dict) -> None:
        """Load a full checkpoint (see :func:`ember.train.load_checkpoint`) before ``fit``;
        RNG and data-order states are applied when ``fit`` starts. Anything the checkpoint
        and this engine disagree on (a missing part, a different number or kind of
        optimizers, schedulers or stateful callbacks) raises ``ValueError`` naming it."""
        _check_resumable(self, state)
        if self.model is not None:
            self.model.load_state_dict(state["model"])
        for opt, st in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(st)
        for s, st in zip(self.schedulers, state["schedulers"], strict=True):
            s["scheduler"].load_state_dict(st)
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.resumed = True
        self._pending = state
        self._resume_position = state.get("position")

    def _all_callbacks(self):
        # NOTE: History runs after the user's callbacks so that values they add to the epoch
        # logs (``learning_rate``) are recorded, as in Keras.
        return self.user_callbacks + [self.history]

    # -- the loop ---------------------------------------------------------------------------
    def fit(
        self,
        train_data: Iterable,
        epochs: int = 1,
        *,
        initial_epoch: int | None = None,
        val_data: Iterable | None = None,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: int = 1,
    ) -> History:
        self._dist = DistributedContext(self.distributed)
        self._dist.wrap(self.model)
        try:
            with self._dist.quiet(), self._compiled_model():
                return self._fit(
                    self._dist.shard(train_data),
                    epochs,
                    initial_epoch=initial_epoch,
                    val_data=val_data,  # evaluate splits its batches over the ranks
                    steps_per_epoch=steps_per_epoch,
                    validation_steps=validation_steps,
                    validation_freq=validation_freq,
                )
        finally:
            self._dist.unwrap()
            self._dist = DistributedContext(False)

    def _fit(
        self,
        train_data,
        epochs,
        *,
        initial_epoch,
        val_data,
        steps_per_epoch,
        validation_steps,
        validation_freq,
    ) -> History:
        self.train_data = train_data
        # every rank reads the backup only once rank 0 has finished writing it
        self._dist.barrier()
        self._restore_backup()
        start = self.epoch if self.resumed else int(initial_epoch or 0)
        steps = steps_per_epoch
        if steps is None:
            try:
                steps = len(train_data)
            except TypeError:
                steps = None
        verbose = self.verbose if self._dist.is_main else 0
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        cbs = self._dist.callbacks_for_rank(list(self._all_callbacks()))
        if verbose:
            cbs.append(ProgressBar(verbose))
        self.callbacks = CallbackList(cbs, model=self.model, engine=self, params=params)
        if self._pending is not None:
            self._apply_pending()
        self.stop_training = False
        if self.model is not None:
            with contextlib.suppress(Exception):
                self.model.stop_training = False
        self.callbacks.on_train_begin(None)
        epoch_logs: dict = {}
        try:
            for epoch in range(start, epochs):
                self.epoch = epoch
                epoch_logs = self._train_epoch(epoch, train_data, steps_per_epoch)
                self.validation_pending = val_data is not None
                if val_data is not None and (epoch + 1) % validation_freq == 0:
                    val = self.evaluate(val_data, steps=validation_steps, _in_fit=True)
                    pre = getattr(self.task, "val_prefix", "val_")
                    epoch_logs.update({f"{pre}{k}": v for k, v in val.items()})
                    self.validation_pending = False
                self._step_schedulers("epoch", epoch_logs)
                self.epoch_logs = epoch_logs
                # sharded (ZeRO) optimizer state reaches rank 0 before its checkpoints
                self._dist.consolidate(self.optimizers)
                self.callbacks.on_epoch_end(epoch, epoch_logs)
                self.epoch_logs = None
                self.epoch = epoch + 1
                if self._dist.any(self._should_stop()):
                    break
        except BaseException:
            self.stop_training_by_error = True
            raise
        finally:
            self.resumed = False
        self.callbacks.on_train_end(epoch_logs)
        return self.history

    def _restore_backup(self) -> None:
        """Resume from a ``BackupAndRestore`` callback's file left by an interrupted run."""
        from .checkpoint import load_checkpoint

        for cb in self.user_callbacks:
            if (
                isinstance(cb, BackupAndRestore)
                and self._pending is None
                and os.path.exists(cb.path)
            ):
                self.restore(load_checkpoint(cb.path))

    def _apply_pending(self):
        st, self._pending = self._pending, None
        rng = st["rng"]
        saved, now = rng.get("data"), _data_rng_state(self.train_data)
        if (saved is None) != (now is None) or (saved and now and saved["kind"] != now["kind"]):
            # NOTE: the data order of the resumed run would silently differ
            def kind(x):
                return "none (the global generator)" if x is None else repr(x["kind"])

            raise ValueError(
                "cannot resume from this checkpoint: its training data's random state is "
                f"{kind(saved)} but this run's data has {kind(now)}; pass the same kind of "
                "loader as the run that wrote it"
            )
        cstate = st["callbacks"]
        for key, cb in self._callback_keys():
            if key in cstate:  # _check_resumable matched the keys of stateful callbacks
                cb.load_state_dict(cstate[key])
        ember.random.set_rng_state(rng["ember"])
        if saved is not None:
            _set_data_rng_state(self.train_data, rng["data"])

    def _should_stop(self) -> bool:
        return self.stop_training or bool(getattr(self.model, "stop_training", False))

    def _train_epoch(self, epoch, data, steps_per_epoch):
        cb = self.callbacks
        cb.on_epoch_begin(epoch, None)
        self._dist.set_epoch(data, epoch)
        self.task.reset_metrics()
        if self.model is not None:
            self.model.train()
        n = steps_per_epoch
        if n is None:
            try:
                n = len(data)
            except TypeError:
                n = None
        for opt in self.optimizers:
            opt.zero_grad()
        pending = 0
        logs: dict = {}
        pos, self._resume_position = self._resume_position, None
        if pos is not None and int(pos["epoch"]) != epoch:
            pos = None
        if pos is not None:  # a mid-epoch checkpoint: replay the epoch's data order
            _set_rng_states(data, pos["epoch_start_rng"])
        self._epoch_start_rng = {
            "ember": ember.random.get_rng_state(),
            "data": _data_rng_state(data),
        }
        it = iter(data)
        start = 0
        if pos is not None:
            start = int(pos["batches_done"])
            for _ in range(start):
                next(it)
            ember.random.set_rng_state(pos["rng_now"])
            self.task.load_metrics_state(pos["metrics"])
        for batch_idx, batch in enumerate(it, start=start):
            if steps_per_epoch is not None and batch_idx >= steps_per_epoch:
                break
            self.batch_idx = batch_idx
            cb.on_train_batch_begin(batch_idx, None)
            self._dist.before_step()
            loss = self.task.train_step(batch, batch_idx)
            last = n is not None and batch_idx + 1 >= n
            if steps_per_epoch is not None and batch_idx + 1 >= steps_per_epoch:
                last = True
            # the gradient is averaged over ranks on the backward that completes a group
            self._dist.after_step(loss, pending + 1 == self.accumulate or last)
            if loss is not None:
                (loss / self.accumulate if self.accumulate > 1 else loss).backward()
                pending += 1
            if pending and (pending == self.accumulate or last):
                self._optimizer_step()
                pending = 0
            logs = self.task.logs()
            self.batches_done = batch_idx + 1 if not pending else None
            cb.on_train_batch_end(batch_idx, logs)
            self.batches_done = None
            # a callback may stop one rank (TerminateOnNaN sees local values): all stop
            # together, or the others would wait in the next collective
            if self._dist.any(self._should_stop()):
                self.stop_training = True
                break
        if pending:
            self._optimizer_step()
        return self._global_logs()

    def _global_logs(self, ctx: DistributedContext | None = None) -> dict:
        """The task's logs over every rank's samples (this rank's when not distributed)."""
        ctx = self._dist if ctx is None else ctx
        if not ctx.active:
            return dict(self.task.logs())
        local = self.task.metrics_state()
        self.task.load_metrics_state(ctx.reduce_state(local))
        try:
            return dict(self.task.logs())
        finally:
            self.task.load_metrics_state(local)

    def position(self) -> dict | None:
        """Where a checkpoint written now sits inside the current epoch (None between
        epochs or in the middle of an accumulation group)."""
        if self.batches_done is None or self._epoch_start_rng is None:
            return None
        return {
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "epoch_start_rng": self._epoch_start_rng,
            "rng_now": ember.random.get_rng_state(),
            "metrics": self.task.metrics_state(),
        }

    def _optimizer_step(self):
        if self.clip_val is not None:
            clip_gradients(self.parameters(), float(self.clip_val), self.clip_algorithm)
        for opt in self.optimizers:
            opt.step()
            opt.zero_grad()
        self.global_step += 1
        self._step_schedulers("step", None)

    def _step_schedulers(self, interval, logs):
        for s in self.schedulers:
            if s["interval"] != interval:
                continue
            count = self.global_step if interval == "step" else self.epoch + 1
            if count % int(s["frequency"]):
                continue
            sch = s["scheduler"]
            if _is_plateau(sch):
                logs = logs or {}
                if s["monitor"] not in logs:
                    if self.validation_pending:
                        continue  # the monitor may be a validation value: not this epoch
                    raise KeyError(
                        f"ReduceLROnPlateau monitors {s['monitor']!r}, which is "
                        f"not in the logs {sorted(logs)}"
                    )
                sch.step(logs[s["monitor"]])
            else:
                sch.step()

    def evaluate(
        self, data: Iterable, steps: int | None = None, _in_fit: bool = False, callbacks=None
    ) -> dict:
        if not _in_fit:
            cbs = CallbackList(
                list(callbacks or ()) if callbacks is not None else self.user_callbacks,
                model=self.model,
                engine=self,
            )
        else:
            cbs = self.callbacks
        # under a process group each rank evaluates its share of the batches
        ctx = self._dist if _in_fit else DistributedContext(self.distributed)
        was_training = getattr(self.model, "training", False)
        if self.model is not None:
            self.model.eval()
        ctx.sync_buffers(self.model)
        self.task.reset_metrics()
        cbs.on_test_begin(None)
        try:
            with ember.no_grad(), self._compiled_model():
                for i, batch in ctx.eval_batches(data, steps):
                    cbs.on_test_batch_begin(i, None)
                    self.task.test_step(batch, i)
                    cbs.on_test_batch_end(i, self.task.logs())
        finally:
            if self.model is not None and was_training:
                self.model.train()
        logs = self._global_logs(ctx)
        cbs.on_test_end(logs)
        self.task.reset_metrics()
        return logs

    def predict(self, data: Iterable, steps: int | None = None, callbacks=None) -> list:
        cbs = CallbackList(list(callbacks or ()), model=self.model, engine=self)
        ctx = DistributedContext(self.distributed)
        if self.model is not None:
            self.model.eval()
        ctx.sync_buffers(self.model)
        cbs.on_predict_begin(None)
        outs = []
        with ember.no_grad(), self._compiled_model():
            for i, batch in ctx.eval_batches(data, steps):
                cbs.on_predict_batch_begin(i, None)
                out = self.task.predict_step(batch, i)
                outs.append((i, out))
                cbs.on_predict_batch_end(i, {"outputs": out})
        cbs.on_predict_end(None)
        # every rank returns every batch's outputs, in batch order
        return ctx.gather_in_order(outs)


_CHECKPOINT_KEYS = ("model", "optimizers", "schedulers", "rng", "epoch", "global_step", "callbacks")


def _check_resumable(engine, state) -> None:
    """Raise ValueError naming every difference between a checkpoint and ``engine``: a
    resume that restored only part of the state would silently diverge from the run it
    continues."""
    if not isinstance(state, dict):
        raise TypeError(f"a training checkpoint is a dict, got {type(state).__name__}")
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"the checkpoint has no {missing} (it is damaged or not a full one)")
    if engine.model is None and state["model"]:
        raise ValueError("the checkpoint holds model weights but the engine has no model")
    problems = []
    for what, have, saved in (
        ("optimizer", engine.optimizers, state["optimizers"]),
        ("scheduler", [s["scheduler"] for s in engine.schedulers], state["schedulers"]),
    ):
        names = [type(o).__name__ for o in have]
        saved_names = state.get(f"{what}_types")
        if len(have) != len(saved):
            problems.append(
                f"it holds {len(saved)} {what} state(s)"
                + (f" {saved_names}" if saved_names else "")
                + f" but {len(have)} {what}(s) {names} are being resumed"
            )
            continue
        if saved_names is not None and list(saved_names) != names:
            problems.append(f"it holds {what}s {list(saved_names)} but the run has {names}")
        for i, (obj, st) in enumerate(zip(have, saved, strict=True)):
            if st is None or not hasattr(obj, "load_state_dict"):
                problems.append(f"{what} #{i} ({names[i]}) has no saved state to restore")
    pos = state.get("position")
    if pos is not None and (not isinstance(pos, dict) or pos.get("epoch") != state["epoch"]):
        problems.append(f"its position inside epoch {state['epoch']} is damaged: {pos!r:.80}")
    have_cbs = {key for key, cb in engine._callback_keys() if cb.state_dict()}
    saved_cbs = set(state["callbacks"])
    if have_cbs - saved_cbs:
        problems.append(f"it holds no state for the callbacks {sorted(have_cbs - saved_cbs)}")
    if saved_cbs - have_cbs:
        problems.append(
            f"it holds the state of callbacks {sorted(saved_cbs - have_cbs)} that this run "
            "does not have (pass the same callbacks as the run that wrote it)"
        )
    if problems:
        raise ValueError("cannot resume from this checkpoint: " + "; ".join(problems))


def _data_rng_state(data):
    if data is None:
        return None
    if hasattr(data, "rng_state"):
        return {"kind": "loader", "state": data.rng_state()}
    gen = getattr(data, "generator", None)
    if gen is None:
        sampler = getattr(data, "sampler", None)
        gen = getattr(sampler, "generator", None)
    if gen is None:
        return None  # the loader draws from ember's global generator: saved with it
    if hasattr(gen, "get_state"):
        return {"kind": "ember", "state": gen.get_state()}
    if hasattr(gen, "bit_generator"):
        st = gen.bit_generator.state
        return {
            "kind": "numpy",
            "state": {
                "bit_generator": st["bit_generator"],
                "state": {k: int(v) for k, v in st["state"].items()},
                "has_uint32": int(st["has_uint32"]),
                "uinteger": int(st["uinteger"]),
            },
        }
    return None


def _set_rng_states(data, st) -> None:
    ember.random.set_rng_state(st["ember"])
    if st.get("data") is not None:
        _set_data_rng_state(data, st["data"])


def _set_data_rng_state(data, st):
    kind, state = st["kind"], st["state"]
    if kind == "loader":
        data.set_rng_state(state)
        return
    gen = getattr(data, "generator", None)
    if gen is None:
        gen = getattr(getattr(data, "sampler", None), "generator", None)
    if kind == "ember":
        gen.set_state(state)
    elif kind == "numpy":
        gen.bit_generator.state = {
            "bit_generator": state["bit_generator"],
            "state": dict(state["state"]),
            "has_uint32": state["has_uint32"],
            "uinteger": state["uinteger"],
        }
