"""``compile``/``fit``/``evaluate``/``predict`` for Keras models, on :mod:`ember.train`.

``compile`` stores the optimizer, the loss(es) and the metrics; ``fit`` adapts the data
(arrays, tensors, ``ember.data`` datasets or loaders) to batches and hands the loop to
:class:`ember.train.Engine`; each step calls the overridable :meth:`train_step`, which returns
the loss (the engine runs backward and the optimizer).
"""

from __future__ import annotations

import json
import warnings

import numpy as np

import ember
from ember.train import Engine, Task, load_checkpoint, load_weights, save_weights
from ember.train._compiled import ForwardCache
from ember.train.callbacks import Callback

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from ._training_data import (
    _as_list,
    _batch_len,
    _class_weights,
    _ClassWeighted,
    _lists_to_arrays,
    _outputs_list,
    _StructLoader,
    _to_np,
    _to_tensor,
    _unpack,
)

__all__ = ["TrainingMixin"]


class _FinalizeOptimizer(Callback):
    """Keras' end of ``fit``: the optimizer's ``finalize_variable_values`` (the weights set
    to their moving averages with ``use_ema``), after the callbacks' own ``on_train_end``
    (Ember's ``EarlyStopping`` restores its best weights there, Keras' before)."""

    def on_train_end(self, logs=None):
        opt = getattr(self.model, "optimizer", None)
        if isinstance(opt, optimizers_mod.Optimizer) and opt.built:
            opt.finalize_variable_values()


class _KerasTask(Task):
    """Routes the engine's steps to the model's ``train_step``/``test_step``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def _log_output_losses(self, batch):
        # Keras 3: with several losses, each output's unweighted loss as "<output>_loss"
        for name, value in self.model.__dict__.pop("_output_losses", None) or ():
            self.log(name, value, _batch_len(batch))

    def train_step(self, batch, batch_idx):
        self.model._output_losses = None
        loss = self.model.train_step(batch)
        if isinstance(loss, dict):
            # a custom train_step (Keras 3): it updated the weights itself and returns the
            # logs, the running results of its metrics (the last batch's are the epoch's)
            self._set_logs(loss)
            return None
        self.log("loss", loss, _batch_len(batch))
        self._log_output_losses(batch)
        # the engine differentiates the scaled loss (``loss_scale_factor``); the logs keep
        # the loss itself, as Keras
        scale = getattr(self.model.optimizer, "scale_loss", None)
        return scale(loss) if scale is not None and loss is not None else loss

    def test_step(self, batch, batch_idx):
        self.model._output_losses = None
        loss = self.model.test_step(batch)
        if isinstance(loss, dict):
            self._set_logs(loss)
            return
        if loss is not None:
            self.log("loss", loss, _batch_len(batch))
        self._log_output_losses(batch)

    def predict_step(self, batch, batch_idx):
        return self.model.predict_step(batch)

    def _set_logs(self, logs):
        for name, value in logs.items():
            self._sums[name] = [float(ember.as_tensor(value).detach().item()), 1.0]

    def reset_metrics(self):
        super().reset_metrics()
        for m in self.model._all_metrics():
            m.reset()
        # a model that overrides ``metrics`` (its own trackers, Keras 3) gets them reset too
        for m in getattr(self.model, "metrics", None) or ():
            if hasattr(m, "reset_state"):
                m.reset_state()

    def metrics_state(self):
        st = super().metrics_state()
        ms = []
        for m in self.model._all_metrics():
            state = getattr(m, "_state", None)
            ok = isinstance(state, dict) and all(
                isinstance(v, (int, float)) for v in state.values()
            )
            ms.append({"state": dict(state), "count": m._count} if ok else None)
        st["keras_metrics"] = ms
        return st

    def load_metrics_state(self, state):
        super().load_metrics_state(state)
        for m, ms in zip(self.model._all_metrics(), state.get("keras_metrics", [])):
            if ms is not None:
                m._state = {
                    k: type(m._state[k])(v) if k in m._state else v for k, v in ms["state"].items()
                }
                m._count = int(ms["count"])

    def logs(self):
        out = super().logs()
        for m in self.model._all_metrics():
            if m._count:
                out[m.name] = float(m.compute().item())
        return out


class TrainingMixin:
    """The Keras training API, mixed into :class:`ember.keras.Model`."""

    def _init_training(self):
        self.optimizer = None
        self.loss = None
        self._losses = None
        self._metrics: list = []
        self._weighted_metrics: list = []
        self._loss_weights = None
        self._compiled = False
        self._compile_config = None
        self._compile_config_lost: list[str] = []
        self.history = None
        self.__dict__["_jit_compile"] = None
        self.__dict__["_run_eagerly"] = False
        self.__dict__["_jit_forward"] = ForwardCache()

    # -- compiled mode (Keras' attributes) -------------------------------------------------------
    @property
    def jit_compile(self) -> bool:
        """Whether ``fit``/``evaluate``/``predict`` run the model's forward compiled
        (:func:`ember.compile`); ``"auto"`` resolves to False, as on Keras' torch backend."""
        v = self.__dict__.get("_jit_compile")
        return False if v is None or v == "auto" else bool(v)

    @jit_compile.setter
    def jit_compile(self, value) -> None:
        if not (isinstance(value, bool) or value == "auto"):
            raise ValueError(f"jit_compile must be True, False or 'auto', got {value!r}")
        self.__dict__["_jit_compile"] = False if value == "auto" else value

    @property
    def run_eagerly(self) -> bool:
        """Keras' flag: True runs every step eagerly (``jit_compile`` is then False)."""
        return bool(self.__dict__.get("_run_eagerly", False))

    @run_eagerly.setter
    def run_eagerly(self, value) -> None:
        self.__dict__["_run_eagerly"] = bool(value)

    def _new_engine(self, **kwargs) -> Engine:
        """An engine over this model's task, compiled when ``jit_compile`` is on; engines
        share the model's compiled forward (one trace per mode across fit/evaluate/predict)."""
        jit = self.jit_compile and not self.run_eagerly
        engine = Engine(self, _KerasTask(self), compile=jit, **kwargs)
        cache = self.__dict__.get("_jit_forward")
        if cache is None:
            cache = self.__dict__["_jit_forward"] = ForwardCache()
        engine.forward_cache = cache
        engine._guard_model = False  # (history, stop_training, ... live on the model)
        return engine

    # -- compile --------------------------------------------------------------------------------
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ) -> None:
        """Store the optimizer (name or object), loss(es) and metrics (names or objects).
        ``weighted_metrics`` are computed with the sample weights (``fit``/``evaluate``'s
        ``sample_weight``, the third item of the data, ``class_weight``) and keep their names
        unless an unweighted metric has the name: then they are ``weighted_<name>`` (Keras 3).
        ``steps_per_execution`` and ``auto_scale_loss`` only tune speed in Keras and are
        accepted. ``jit_compile=True`` runs the model's forward through :func:`ember.compile`
        in ``fit``/``evaluate``/``predict`` (the loss, metrics, backward and the optimizer
        stay eager; results equal the eager run's); ``"auto"`` (the default) means eager, as
        Keras' torch backend resolves it: a compiled forward pays one eager call and dry-run
        traces per mode up front and is not proven faster for every model.
        ``run_eagerly=True`` with ``jit_compile=True`` warns and turns ``jit_compile`` off,
        as Keras 3 does. Both are the model's ``jit_compile``/``run_eagerly`` attributes.

        Example:
            >>> from ember import keras
            >>> model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
            >>> model.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae", "mse"])
            >>> model.metrics_names
            ['loss', 'mae', 'weighted_mae', 'mse']
        """
        for arg, v in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if v and not isinstance(v, (list, tuple, dict)):
                raise ValueError(
                    f"Expected `{arg}` argument to be a list, tuple, or dict. Received "
                    f"instead: {arg}={v!r} of type {type(v).__name__}"
                )
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self._loss_weights = loss_weights
        self._metric_spec = metrics
        # the config first: resolving renames metric objects per output ("out_acc")
        config, lost = _compile_config(
            self.optimizer, loss, metrics, loss_weights, weighted_metrics
        )
        self._losses = self._resolve_losses(loss)
        self._metrics = self._resolve_metrics(metrics)
        self._weighted_metrics = self._resolve_metrics(weighted_metrics)
        taken = {m.name for m in self._metrics}
        for m in self._weighted_metrics:
            m._weighted = True
            if m.name in taken:  # Keras 3: "weighted_<name>" (after the output's name)
                out = self._output_names()
                pre = f"{out[m._output_index]}_" if len(out) > 1 else ""
                m.name = f"{pre}weighted_{m.name[len(pre) :]}"
            taken.add(m.name)
        if jit_compile == "auto":
            jit_compile = False  # (Keras' torch backend: "auto" is eager)
        if jit_compile and run_eagerly:
            jit_compile = False
            warnings.warn(
                "If `run_eagerly` is True, then `jit_compile` cannot also be True. "
                "Disabling `jit_compile`.",
                stacklevel=2,
            )
        self.jit_compile = jit_compile
        self.run_eagerly = run_eagerly
        self.__dict__["_jit_forward"] = ForwardCache()  # (Keras resets its functions)
        self._compiled = True
        config.update(
            run_eagerly=bool(run_eagerly),
            steps_per_execution=steps_per_execution,
            jit_compile=bool(self.jit_compile),
        )
        self._compile_config, self._compile_config_lost = config, lost

    def get_compile_config(self) -> dict:
        """The arguments of the last :meth:`compile` as a JSON-able dict (optimizer, losses
        and metrics serialized; Keras' ``get_compile_config``); ``{}`` before ``compile``.

        Example:
            >>> from ember import keras
            >>> model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
            >>> model.compile("sgd", "mse", jit_compile=True)
            >>> cfg = model.get_compile_config()
            >>> cfg["loss"], cfg["jit_compile"], cfg["optimizer"]["class_name"]
            ('mse', True, 'SGD')
        """
        return json.loads(json.dumps(self._compile_config)) if self._compiled else {}

    def compile_from_config(self, config: dict) -> None:
        """:meth:`compile` with a dict from :meth:`get_compile_config` (Keras'
        ``compile_from_config``): the optimizer, losses and metrics are deserialized.

        Example:
            >>> from ember import keras
            >>> a = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
            >>> a.compile(keras.optimizers.Adam(0.01), "mae", metrics=["mse"])
            >>> b = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
            >>> b.compile_from_config(a.get_compile_config())
            >>> type(b.optimizer).__name__, float(b.optimizer.learning_rate), b.metrics_names
            ('Adam', 0.01, ['loss', 'mse'])
        """
        from .saving import compile_kwargs

        if not isinstance(config, dict):
            raise TypeError(
                f"compile_from_config expects the dict of get_compile_config(), got "
                f"{type(config).__name__}"
            )
        self.compile(**compile_kwargs(config))

    def _output_names(self) -> list[str]:
        outs = self.outputs if getattr(self, "_is_graph", False) else None
        if outs is None or len(outs) == 1:
            return ["output"]
        if isinstance(self._outputs, dict):  # Keras names dict outputs by their keys
            return list(self._outputs)
        return [o._history[0].name for o in outs]

    def _resolve_losses(self, loss):
        names = self._output_names()
        if loss is None:
            return None
        if isinstance(loss, dict):
            return [losses_mod.get(loss[n]) if n in loss else None for n in names]
        if isinstance(loss, (list, tuple)):
            if len(loss) != len(names):
                raise ValueError(f"compile: {len(loss)} losses for {len(names)} outputs")
            return [losses_mod.get(v) if v is not None else None for v in loss]
        return [losses_mod.get(loss) for _ in names]

    def _resolve_metrics(self, metrics):
        if not metrics:
            return []
        names = self._output_names()
        per_out = []
        if isinstance(metrics, dict):
            per_out = [_as_list(metrics.get(n, [])) for n in names]
        elif (
            len(names) > 1
            and isinstance(metrics, (list, tuple))
            and all(isinstance(m, (list, tuple)) for m in metrics)
        ):
            per_out = [list(m) for m in metrics]
        else:
            per_out = [list(metrics)] + [[] for _ in names[1:]]
        out = []
        for i, ms in enumerate(per_out):
            lname = self._losses[i].name if self._losses and self._losses[i] else ""
            lname = lname or ""
            for spec in ms:
                m = metrics_mod.get(spec, lname)
                if len(names) > 1:
                    m.name = f"{names[i]}_{m.name}"
                m._output_index = i
                out.append(m)
        return out

    def _all_metrics(self):
        return self._metrics + self._weighted_metrics

    @property
    def metrics_names(self) -> list[str]:
        return ["loss"] + [m.name for m in self._all_metrics()]

    def _logs_order(self) -> list[str]:
        """The order of ``evaluate``'s list: Keras 3's loss, each output's loss (with several
        losses), then the metrics."""
        names = ["loss"]
        if self._losses is not None and sum(fn is not None for fn in self._losses) > 1:
            out = self._output_names()
            out = [n for n, fn in zip(out, self._losses, strict=True) if fn is not None]
            if isinstance(self.loss, dict):  # Keras walks a dict of losses in its own order
                out = [n for n in self.loss if n in out]
            names += [f"{n}_loss" for n in out]
        return names + [m.name for m in self._all_metrics()]

    # -- the steps ------------------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        """The total loss (sum over outputs, weighted by ``loss_weights``)."""
        if self._losses is None:
            raise ValueError("compile the model with a loss before training")
        if y is None and any(fn is not None for fn in self._losses):
            raise ValueError(
                "compute_loss: no targets: y is None but the model was compiled with a loss; "
                "pass the targets as y (or a dataset yielding (x, y) pairs)"
            )
        preds, ys = _outputs_list(y_pred), _as_list(y)
        if len(ys) != len(preds):
            raise ValueError(f"the model has {len(preds)} outputs but {len(ys)} targets were given")
        w = self._loss_weights
        total = None
        per_output = []
        for i, (fn, yt, yp) in enumerate(zip(self._losses, ys, preds)):
            if fn is None:
                continue
            li = fn(yt, yp, sample_weight)
            per_output.append((f"{self._output_names()[i]}_loss", li.detach()))
            if w is not None:
                li = li * float(w[self._output_names()[i]] if isinstance(w, dict) else w[i])
            total = li if total is None else total + li
        if len(per_output) > 1:
            self._output_losses = per_output
        for penalty in self.losses:
            total = total + penalty
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        preds, ys = _outputs_list(y_pred), _as_list(y)
        sws = _as_list(sample_weight)
        for m in self._all_metrics():
            i = getattr(m, "_output_index", 0)
            yp, yt = preds[i].detach(), ys[i].detach() if isinstance(ys[i], ember.Tensor) else ys[i]
            sw = sws[i if i < len(sws) else 0] if getattr(m, "_weighted", False) else None
            if sw is None:
                m.update(yp, yt)
            elif hasattr(m, "update_state"):
                m.update_state(yt, yp, sw)
            else:
                raise TypeError(
                    f"weighted_metrics: the metric {m.name!r} ({type(m).__name__}) takes no "
                    "sample_weight; pass a keras.metrics metric"
                )

    def train_step(self, data):
        """One training step: forward, loss, metrics; return the loss (the engine runs
        backward and the optimizer). Override for custom training."""
        x, y, sw = _unpack(data)
        y_pred = self(x, training=True)
        loss = self.compute_loss(x, y, y_pred, sw)
        self.compute_metrics(x, y, y_pred, sw)
        return loss

    def test_step(self, data):
        x, y, sw = _unpack(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x, y, y_pred, sw) if self._losses is not None else None
        self.compute_metrics(x, y, y_pred, sw)
        return loss

    def predict_step(self, data):
        x, _, _ = _unpack(data)
        return self(x, training=False)

    # -- data ------------------------------------------------------------------------------------
    def _from_lists(self, x, y=None, sample_weight=None):
        """``x``/``y``/``sample_weight`` given as nested Python lists, as arrays."""
        graph = getattr(self, "_is_graph", False)
        n_in = len(self._input_layers) if graph else 1
        n_out = len(self.outputs) if graph else 1
        return (
            _lists_to_arrays(x, n_in, "x"),
            _lists_to_arrays(y, n_out, "y"),
            _lists_to_arrays(sample_weight, 1, "sample_weight"),
        )

    def _by_name(self, v, layers):
        """Dict inputs/targets keyed by input/output layer names, in the model's order."""
        if (
            isinstance(v, dict)
            and v
            and all(isinstance(a, (np.ndarray, ember.Tensor)) for a in v.values())
        ):
            names = [lyr if isinstance(lyr, str) else lyr.name for lyr in layers]
            missing = [n for n in names if n not in v]
            if missing:
                raise KeyError(f"no data for {missing}; the model expects {names}")
            return [v[n] for n in names] if len(names) > 1 else v[names[0]]
        return v

    def _make_data(
        self, x, y=None, sample_weight=None, batch_size=None, shuffle=False, class_weight=None
    ):
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size <= 0
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        x, y, sample_weight = self._from_lists(x, y, sample_weight)
        if getattr(self, "_is_graph", False):
            x = self._by_name(x, self._input_layers)
            outs = self._outputs
            y = self._by_name(
                y,
                list(outs) if isinstance(outs, dict) else [o._history[0] for o in self.outputs],
            )
        if not _is_array_input(x):
            if y is not None:
                raise ValueError(
                    f"x of type {type(x).__name__} is not an array input (a NumPy array, a "
                    "Tensor, a list/tuple of them, or a dict by input name for functional "
                    "models); when x is a dataset or loader, y must be None (the loader "
                    "yields (x, y) pairs)"
                )
            if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not hasattr(x, "batch_size"):
                from ember.data import DataLoader

                x = DataLoader(x, batch_size=batch_size or 32, shuffle=shuffle)
            return x if class_weight is None else _ClassWeighted(x, class_weight)
        x_multi = isinstance(x, (list, tuple))
        xs = [_to_np(a) for a in _as_list(x)]
        ys, y_multi = None, False
        if y is not None:
            y_multi = isinstance(y, (list, tuple))
            ys = [_to_np(a) for a in _as_list(y)]
        sw = _to_np(sample_weight)
        if class_weight is not None:
            if ys is None or y_multi:
                raise ValueError("class_weight needs a single target")
            cw = _class_weights(ys[0], class_weight)
            sw = cw if sw is None else (np.asarray(sw, np.float32) * cw)
        return _StructLoader(xs, ys, sw, len(xs), x_multi, y_multi, batch_size or 32, shuffle)

    def _ensure_built(self, data):
        if self.built and any(True for _ in self.parameters()):
            return
        batch = next(iter(data))
        x, _, _ = _unpack(batch)
        was = self.training
        self.eval()
        try:
            with ember.no_grad():
                self(x)
        finally:
            self.train(was)

    def _ensure_optimizer(self):
        opt = self.optimizer
        if not isinstance(opt, optimizers_mod.Optimizer):
            return
        if not opt.built:
            opt.build(self.parameters())
            return
        # an optimizer built for other weights (one instance compiled into two models, or a
        # layer unfrozen after the build) would silently leave these untrained: Keras raises
        known = {id(p) for g in opt._inner().param_groups for p in g["params"]}
        for name, p in self.named_parameters():
            if p.requires_grad and id(p) not in known:
                raise ValueError(
                    f"Unknown variable: {name!r} of shape {tuple(p.shape)}. This optimizer "
                    "can only be called for the variables it was originally built with. When "
                    "working with a new set of variables, you should recreate a new optimizer "
                    "instance."
                )

    # -- fit / evaluate / predict --------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle: bool = True,
        class_weight=None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq: int = 1,
        resume_from=None,
    ):
        """Train for ``epochs`` (Keras semantics); returns a ``History``. ``resume_from``
        (ember extension) continues exactly from a full checkpoint written by
        ``ModelCheckpoint`` / ``ember.train.save_checkpoint``."""
        if not self._compiled:
            raise RuntimeError(
                "You must compile your model before training/testing. Use "
                "`model.compile(optimizer, loss)`."
            )
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
        if isinstance(validation_data, tuple) and len(validation_data) not in (2, 3):
            raise ValueError(
                "fit: validation_data must be (x_val, y_val) or (x_val, y_val, "
                f"val_sample_weight), got a {type(validation_data).__name__} of "
                f"{len(validation_data)} items"
            )
        x, y, sample_weight = self._from_lists(x, y, sample_weight)
        if isinstance(validation_data, tuple):
            validation_data = tuple(self._from_lists(*validation_data))[: len(validation_data)]
        if validation_split and validation_data is None:
            if not (_is_array_input(x) or _is_array_dict(x)):
                raise ValueError("validation_split needs array inputs")
            if not 0.0 < validation_split < 1.0:
                raise ValueError("validation_split must be in (0, 1)")
            (x, xv), (y, yv), (sample_weight, swv) = (
                _split(x, validation_split),
                _split(y, validation_split),
                _split(sample_weight, validation_split),
            )
            validation_data = (xv, yv) if swv is None else (xv, yv, swv)
        data = self._make_data(x, y, sample_weight, batch_size, shuffle, class_weight)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, tuple) and (
                _is_array_input(validation_data[0]) or _is_array_dict(validation_data[0])
            ):
                vx, vy, vsw = _unpack(validation_data)
                val = self._make_data(vx, vy, vsw, validation_batch_size or batch_size)
            else:
                val = self._make_data(
                    validation_data, None, None, validation_batch_size or batch_size
                )
        self._ensure_built(data)
        self._ensure_optimizer()
        engine = self._new_engine(
            optimizers=[self.optimizer],
            callbacks=[*(callbacks or ()), *([_FinalizeOptimizer()] if epochs > 0 else [])],
            verbose=verbose,
        )
        self._engine = engine
        if resume_from is not None:
            if ember.distributed.is_initialized():
                ember.distributed.barrier()  # rank 0 may still be writing it
            engine.restore(load_checkpoint(resume_from))
            initial_epoch = None
        self.history = engine.fit(
            data,
            epochs,
            initial_epoch=initial_epoch,
            val_data=val,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
            validation_freq=validation_freq,
        )
        return self.history

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict: bool = False,
    ):
        if not self._compiled:
            raise RuntimeError("You must compile your model before evaluating it.")
        data = self._make_data(x, y, sample_weight, batch_size)
        self._ensure_built(data)
        engine = self._new_engine(verbose=0)
        logs = engine.evaluate(data, steps=steps, callbacks=callbacks or [])
        if return_dict:
            return logs
        vals = [logs[k] for k in self._logs_order() if k in logs]
        return vals[0] if len(vals) == 1 else vals

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs as NumPy arrays (a list for several outputs)."""
        data = self._make_data(x, None, None, batch_size)
        self._ensure_built(data)
        engine = self._new_engine(verbose=0)
        outs = engine.predict(data, steps=steps, callbacks=callbacks)
        if not outs:
            return np.zeros((0,))
        if isinstance(outs[0], dict):
            return {k: np.concatenate([o[k].numpy() for o in outs]) for k in outs[0]}
        if isinstance(outs[0], (list, tuple)):
            return [np.concatenate([o[i].numpy() for o in outs]) for i in range(len(outs[0]))]
        return np.concatenate([o.numpy() for o in outs])

    def predict_on_batch(self, x):
        """The outputs for one batch (NumPy), in inference mode; with ``jit_compile`` through
        the model's compiled forward (the graph ``predict`` uses).

        Example:
            >>> import numpy as np
            >>> from ember import keras
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> model.predict_on_batch(np.ones((4, 2), np.float32)).shape
            (4, 3)
        """
        xs = (
            [_to_tensor(_to_np(a)) for a in x]
            if isinstance(x, (list, tuple))
            else _to_tensor(_to_np(x))
        )
        self._ensure_built([(xs,)])  # (built eagerly: a compiled forward must not build)
        was = self.training
        self.eval()
        try:
            with ember.no_grad(), self._new_engine(verbose=0)._compiled_model():
                out = self(xs, training=False)
        finally:
            self.train(was)
        if isinstance(out, dict):
            return {k: o.numpy() for k, o in out.items()}
        return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else out.numpy()

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch (Keras 3); ``class_weight`` (class index ->
        weight) multiplies the sample weights as in ``fit``. Returns the loss and metrics as
        a list in ``metrics_names`` order (one result alone as is), or a dict.

        Example:
            >>> import numpy as np
            >>> from ember import keras
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> model.compile("sgd", "sparse_categorical_crossentropy")
            >>> x, y = np.ones((4, 2), np.float32), np.array([0, 1, 2, 1])
            >>> isinstance(model.train_on_batch(x, y, class_weight={0: 1.0, 1: 2.0, 2: 0.5}), float)
            True
        """
        data = self._make_data(
            x, y, sample_weight, batch_size=len(_as_list(x)[0]), class_weight=class_weight
        )
        self._ensure_built(data)
        self._ensure_optimizer()
        engine = self._new_engine(optimizers=[self.optimizer], verbose=0)
        h = engine.fit(data, 1)
        logs = {k: v[-1] for k, v in h.history.items()}
        return logs if return_dict else self._flat_logs(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss and metrics of one batch (Keras 3): a list in ``metrics_names`` order, or
        a dict; with ``jit_compile`` through the model's compiled forward.

        Example:
            >>> import numpy as np
            >>> from ember import keras
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            >>> model.compile("sgd", "mse", metrics=["mae"])
            >>> sorted(model.test_on_batch(np.ones((4, 2)), np.zeros((4, 1)), return_dict=True))
            ['loss', 'mae']
        """
        if not self._compiled:
            raise RuntimeError("You must compile your model before evaluating it.")
        data = self._make_data(x, y, sample_weight, batch_size=len(_as_list(x)[0]))
        self._ensure_built(data)
        logs = self._new_engine(verbose=0).evaluate(data)
        return logs if return_dict else self._flat_logs(logs)

    def _flat_logs(self, logs):
        """Keras 3's list of results in ``_logs_order``; one result alone as is."""
        vals = [logs[k] for k in self._logs_order() if k in logs]
        return vals[0] if len(vals) == 1 else vals

    # -- weights ---------------------------------------------------------------------------------
    def get_weights(self) -> list:
        return [s.to_keras(s.tensor.detach().numpy().copy()) for s in self._weight_specs()]

    def _weight_specs(self):
        from .layers.base import Layer, _module_specs, weight_specs

        specs = []
        for lyr in self.layers:
            specs += weight_specs(lyr) if isinstance(lyr, Layer) else _module_specs(lyr)
        return specs

    def save_weights(self, filepath) -> None:

        save_weights(self, filepath)

    def load_weights(self, filepath) -> None:

        load_weights(self, filepath)

    def save(self, filepath) -> None:
        """One file: the JSON architecture (+ compile config) and the weights."""
        from .saving import save_model

        save_model(self, filepath)

    def summary(self, line_length: int = 80, print_fn=None) -> None:
        from .summary import summary

        summary(self, line_length, print_fn)

    def _checkpoint_extra(self) -> dict:
        """Stored in full training checkpoints, so that ``load_model`` can open them. A model
        without a config (subclassed, Lambda layers) gets a warning: its checkpoints resume
        training (``fit(resume_from=...)``) but ``load_model`` cannot open them."""
        from .saving import architecture_json, warn_lost_compile_config

        try:
            arch = architecture_json(self)
        except (NotImplementedError, TypeError) as e:
            warnings.warn(
                f"{self.name}: the checkpoint holds no Keras architecture, so "
                f"keras.models.load_model cannot open it ({e}); rebuild the model in code and "
                "use load_weights or fit(resume_from=...)",
                stacklevel=2,
            )
            return {}
        warn_lost_compile_config(self, "the checkpoint")
        return {"keras_config": arch, "compile_config": json.dumps(self._compile_config)}


def _is_array_input(x) -> bool:
    if isinstance(x, (np.ndarray, ember.Tensor)):
        return True
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(v, (np.ndarray, ember.Tensor)) for v in x)
    if isinstance(x, dict):
        return False
    return False


def _is_array_dict(x) -> bool:
    return (
        isinstance(x, dict)
        and bool(x)
        and all(isinstance(v, (np.ndarray, ember.Tensor)) for v in x.values())
    )


def _split(a, frac):
    if a is None:
        return None, None
    if isinstance(a, (list, tuple)):
        parts = [_split(v, frac) for v in a]
        return [p[0] for p in parts], [p[1] for p in parts]
    if isinstance(a, dict):  # inputs/targets by layer name
        parts_by_key = {k: _split(v, frac) for k, v in a.items()}
        return (
            {k: p[0] for k, p in parts_by_key.items()},
            {k: p[1] for k, p in parts_by_key.items()},
        )
    n = len(a)
    k = int(n * (1.0 - frac))
    return a[:k], a[k:]


def _compile_config(
    optimizer, loss, metrics, loss_weights, weighted_metrics=None
) -> tuple[dict, list[str]]:
    """The JSON-able compile arguments and a description of each part that cannot be
    saved (``model.save`` warns about those instead of dropping them silently)."""
    lost: list[str] = []
    cfg: dict = {"optimizer": None, "loss": None, "metrics": None, "loss_weights": loss_weights}
    if isinstance(optimizer, optimizers_mod.Optimizer):
        try:
            cfg["optimizer"] = optimizers_mod.serialize(optimizer)
        except TypeError as e:
            lost.append(f"optimizer ({e})")
    else:
        lost.append(f"optimizer ({type(optimizer).__name__} is not a keras optimizer)")
    try:
        cfg["loss"] = _ser_loss(loss)
    except TypeError as e:
        lost.append(f"loss ({e})")
    try:
        cfg["metrics"] = _ser_metrics(metrics)
    except TypeError as e:
        lost.append(f"metrics ({e})")
    if weighted_metrics:  # (left out when unused: configs saved before it load the same)
        try:
            cfg["weighted_metrics"] = _ser_metrics(weighted_metrics)
        except TypeError as e:
            lost.append(f"weighted_metrics ({e})")
    return cfg, lost


def _ser_loss(loss):
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, (list, tuple)):
        return [_ser_loss(v) for v in loss]
    if isinstance(loss, dict):
        return {k: _ser_loss(v) for k, v in loss.items()}
    return losses_mod.serialize(losses_mod.get(loss))


def _ser_metrics(metrics):
    if metrics is None:
        return None
    if isinstance(metrics, dict):
        return {k: _ser_metrics(_as_list(v)) for k, v in metrics.items()}
    out = []
    for m in metrics:
        if isinstance(m, (list, tuple)):
            out.append(_ser_metrics(m))
        elif isinstance(m, str):
            out.append(m)
        elif hasattr(m, "get_config") and getattr(metrics_mod, type(m).__name__, None) is type(m):
            out.append({"class_name": type(m).__name__, "config": m.get_config()})
        else:
            raise TypeError(
                f"the metric {getattr(m, 'name', m)!r} ({type(m).__name__}) has no config; "
                "pass metric names or keras.metrics objects"
            )
    return out
