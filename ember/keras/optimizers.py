"""Keras optimizers: Keras names, defaults and updates on the ``ember.optim`` machinery.

A Keras optimizer is created before the model has weights (``compile('adam')`` on a model
whose layers build on first call), so it holds its configuration and binds to parameters
with :meth:`Optimizer.build`, which creates the ``ember.optim`` optimizer that does the
work: one of :mod:`ember.keras._optimizer_updates`, which compute Keras 3's updates (not
``ember.optim.Adam``'s and the like, which follow PyTorch's). It then behaves like that
optimizer (``step``, ``zero_grad``, ``param_groups``, ``state_dict``) and adds Keras'
``learning_rate``, ``iterations``, ``clipnorm``, ``clipvalue``, ``global_clipnorm`` and
learning-rate schedules (a callable of the step).

Example:
    >>> from ember.keras import optimizers
    >>> opt = optimizers.get("adam")
    >>> opt.learning_rate, opt.epsilon
    (0.001, 1e-07)
"""

from __future__ import annotations

import inspect
import math

from . import _optimizer_updates as _upd

__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "get",
    "schedules",
]


class Optimizer:
    """Base class; subclasses name the update (an optimizer of ``_optimizer_updates``) and
    map the arguments."""

    _impl: type | None = None  # the ember.optim optimizer computing Keras' update

    # The arguments every Keras optimizer takes after its own; a subclass lists its own, in
    # Keras' order after ``learning_rate``, in ``_args`` (name, default) and its default rate in
    # ``_learning_rate``: its constructor (and ``inspect.signature``) is built from them, the
    # arguments become attributes of the same names, ``_check`` validates them and
    # ``get_config`` returns them.
    _COMMON = (
        ("weight_decay", None),
        ("clipnorm", None),
        ("clipvalue", None),
        ("global_clipnorm", None),
        ("use_ema", False),
        ("ema_momentum", 0.99),
        ("ema_overwrite_frequency", None),
        ("loss_scale_factor", None),
        ("gradient_accumulation_steps", None),
        ("name", None),
    )
    _learning_rate: object = inspect.Parameter.empty
    _args: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__init__ = _keras_init(cls)

    def __init__(self, *args, **kwargs):
        self._setup(_bind(_SIGNATURE, self, args, kwargs))

    def _setup(self, values: dict) -> None:
        kwargs = values.pop("kwargs", {})
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        clips = {k: values[k] for k in ("clipnorm", "clipvalue", "global_clipnorm")}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                "Received: " + ", ".join(f"{k}={v}" for k, v in clips.items())
            )
        use_ema, loss_scale_factor = values["use_ema"], values["loss_scale_factor"]
        gradient_accumulation_steps = values["gradient_accumulation_steps"]
        _check_common(
            use_ema,
            values["ema_momentum"],
            values["ema_overwrite_frequency"],
            loss_scale_factor,
            gradient_accumulation_steps,
        )
        self._lr = values["learning_rate"]
        self.clipnorm, self.clipvalue = values["clipnorm"], values["clipvalue"]
        self.global_clipnorm = values["global_clipnorm"]
        self.weight_decay = values["weight_decay"]
        self.use_ema, self.ema_momentum = bool(use_ema), values["ema_momentum"]
        self.ema_overwrite_frequency = values["ema_overwrite_frequency"]
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.name = values["name"] or type(self).__name__.lower()
        self._iterations = 0
        self._opt = None
        self._ema: list | None = None  # the moving averages (use_ema), one per weight
        self._accumulators: list | None = None  # gradient sums (gradient_accumulation_steps)
        for n in self._own_names():
            setattr(self, n, values[n])
        self._check()

    @classmethod
    def _own_names(cls) -> list:
        common = {n for n, _ in cls._COMMON}
        return [n for n, _ in cls._args if n not in common]

    def _check(self) -> None:
        """Validate (or convert) the subclass' own arguments, set as attributes."""

    # -- binding ------------------------------------------------------------------------------
    def _kwargs(self) -> dict:
        return {}

    def build(self, params) -> Optimizer:
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError(f"{type(self).__name__}: the model has no trainable weights")
        lr = self._current_lr()
        if self._impl is None:
            raise TypeError(f"{type(self).__name__} names no update (_impl) to build")
        self._opt = self._impl(params, lr=lr, **self._kwargs())
        # (Keras starts the averages at zero; its first step overwrites them with the weights,
        # so starting them at the weights differs only for finalize_variable_values before it)
        self._ema = [p.detach().clone() for p in params] if self.use_ema else None
        if self.gradient_accumulation_steps:
            import ember

            self._accumulators = [ember.zeros_like(p.detach()) for p in params]
        return self

    @property
    def built(self) -> bool:
        return self._opt is not None

    def _inner(self):
        if self._opt is None:
            raise RuntimeError(
                f"{type(self).__name__} is not bound to weights yet (fit or build it first)"
            )
        return self._opt

    # -- learning rate --------------------------------------------------------------------------
    def _current_lr(self) -> float:
        lr = self._lr
        if callable(lr):
            # (a schedule sees every call of step, accumulation steps included, as in Keras)
            return float(lr(self._iterations))
        return float(lr)

    @property
    def iterations(self) -> int:
        """The number of updates: calls of :meth:`step`, divided by
        ``gradient_accumulation_steps`` when gradients are accumulated (Keras' count)."""
        if self.gradient_accumulation_steps:
            return self._iterations // int(self.gradient_accumulation_steps)
        return self._iterations

    @iterations.setter
    def iterations(self, value: int) -> None:
        steps = int(self.gradient_accumulation_steps or 1)
        self._iterations = int(value) * steps

    @property
    def learning_rate(self) -> float:
        if self._opt is not None:
            return float(self._opt.param_groups[0]["lr"])
        return self._current_lr()

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self._lr = value
        if self._opt is not None:
            for g in self._opt.param_groups:
                g["lr"] = self._current_lr()

    lr = learning_rate

    # -- the optimizer interface ----------------------------------------------------------------
    @property
    def param_groups(self):
        return self._inner().param_groups

    @property
    def state(self):
        return self._inner().state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._inner().zero_grad(set_to_none=set_to_none)

    def scale_loss(self, loss):
        """The loss multiplied by ``loss_scale_factor`` (the loss itself when None); ``fit``
        differentiates it, and :meth:`step` divides the gradients by the factor.

        Example:
            >>> from ember import keras
            >>> keras.optimizers.SGD(loss_scale_factor=128.0).scale_loss(0.5)
            64.0
        """
        if self.loss_scale_factor is not None:
            return loss * self.loss_scale_factor
        return loss

    def step(self) -> None:
        """One call of Keras' ``apply``: gradients unscaled (``loss_scale_factor``) and
        accumulated (``gradient_accumulation_steps``: the update, with their mean, on every
        N-th call), clipped, weight decay, the update, the moving averages (``use_ema``) and
        the constraints."""
        import ember

        opt = self._inner()
        params = [p for g in opt.param_groups for p in g["params"]]
        with ember.no_grad():
            if self.loss_scale_factor is not None:
                for p in params:
                    if p.grad is not None:
                        p.grad = p.grad / float(self.loss_scale_factor)
            update = self._accumulate(params)
        if update:
            if callable(self._lr):
                for g in opt.param_groups:
                    g["lr"] = self._current_lr()
            self._clip(params)
            if self.weight_decay:
                # Keras' weight decay is decoupled: w -= lr * wd * w before the update
                with ember.no_grad():
                    for g in opt.param_groups:
                        for p in g["params"]:
                            if p.grad is not None:
                                p.mul_(1.0 - float(g["lr"]) * float(self.weight_decay))
            opt.iterations = self.iterations  # (Keras' count: its updates' step is this + 1)
            opt.step()
        if self._ema is not None:
            self._update_ema(params)
        from .constraints import apply_constraints

        apply_constraints(params)
        self._iterations += 1

    def apply(self, grads, trainable_variables=None) -> None:
        """Keras' ``apply``: set each variable's gradient and take one step (building the
        optimizer on ``trainable_variables`` on first use), as a custom ``train_step`` does.

        Example:
            >>> import ember
            >>> from ember import keras
            >>> w = ember.nn.Parameter(ember.tensor([1.0, 2.0]))
            >>> opt = keras.optimizers.SGD(learning_rate=0.5)
            >>> opt.apply([ember.tensor([1.0, -1.0])], [w])
            >>> w.tolist()
            [0.5, 2.5]
        """
        grads = list(grads)
        if trainable_variables is None:
            if not self.built:
                raise ValueError("apply: pass trainable_variables on the first call")
            trainable_variables = [p for g in self._inner().param_groups for p in g["params"]]
        variables = list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"apply: {len(grads)} gradients for {len(variables)} trainable variables"
            )
        if not self.built:
            self.build(variables)
        for p, g in zip(variables, grads, strict=True):
            p.grad = g
        self.step()

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras' ``apply_gradients``: ``apply`` on ``(gradient, variable)`` pairs."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _accumulate(self, params) -> bool:
        """Add the gradients to the accumulators; on every N-th call, replace them by their
        mean over the N calls and reset the sums. Whether this call updates the weights."""
        steps = self.gradient_accumulation_steps
        if not steps or self._accumulators is None:
            return True
        update = (self._iterations + 1) % int(steps) == 0
        for p, acc in zip(params, self._accumulators):
            if p.grad is None:
                continue
            if update:
                p.grad = (p.grad + acc) / float(steps)
            else:
                acc.add_(p.grad)
        if update:
            for acc in self._accumulators:
                acc.zero_()
        return update

    def _update_ema(self, params) -> None:
        import ember

        # the first update's average is the weights themselves (momentum 0), as in Keras
        momentum = float(self.ema_momentum) if self.iterations != 0 else 0.0
        with ember.no_grad():
            for p, avg in zip(params, self._ema or ()):
                avg.mul_(momentum).add_(p.detach() * (1.0 - momentum))
            freq = self.ema_overwrite_frequency
            if freq and (self.iterations + 1) % int(freq) == 0:
                self._overwrite_with_ema(params)

    def _overwrite_with_ema(self, var_list) -> None:
        import ember

        ema = self._ema or []
        if len(var_list) != len(ema):
            raise ValueError(
                f"The length of model variables ({len(var_list)}) to override does not match "
                f"the length of model variables stored in the optimizer ({len(ema)}). Please "
                "check if the optimizer was called on your model."
            )
        with ember.no_grad():
            for p, avg in zip(var_list, ema):
                p.copy_(avg)

    def finalize_variable_values(self, var_list=None) -> None:
        """With ``use_ema``, set the weights (``var_list``, by default the ones the optimizer
        updates) to their moving averages; ``fit`` calls it after the last epoch, as Keras.

        Example:
            >>> import ember
            >>> from ember import keras
            >>> w = ember.nn.Parameter(ember.tensor([1.0]))
            >>> opt = keras.optimizers.SGD(1.0, use_ema=True, ema_momentum=0.5).build([w])
            >>> for _ in range(2):
            ...     w.grad = ember.tensor([1.0]); opt.step()
            >>> w.tolist(), opt.finalize_variable_values(), w.tolist()
            ([-1.0], None, [-0.5])
        """
        if self._ema is None:
            return
        if var_list is None:
            var_list = [p for g in self._inner().param_groups for p in g["params"]]
        self._overwrite_with_ema(list(var_list))

    def _clip(self, params) -> None:
        """Keras' clipping (one kind at most): each gradient to norm ``clipnorm``, all of
        them to global norm ``global_clipnorm``, or each element to ``clipvalue``."""
        import ember

        grads = [p for p in params if p.grad is not None]
        with ember.no_grad():
            if self.clipnorm:
                c = float(self.clipnorm)
                for p in grads:
                    norm = p.grad.square().sum().sqrt()
                    p.grad = p.grad * c / ember.clamp(norm, min=c)
            elif self.global_clipnorm and grads:
                c = float(self.global_clipnorm)
                norm = ember.stack([p.grad.square().sum() for p in grads]).sum().sqrt()
                # (c * min(1 / norm, 1 / c); NaN for a non-finite norm, as in Keras)
                scale = ember.clamp(1.0 / norm, max=1.0 / c) * c + (norm - norm)
                for p in grads:
                    p.grad = p.grad * scale
            elif self.clipvalue:
                c = float(self.clipvalue)
                for p in grads:
                    p.grad = ember.clamp(p.grad, -c, c)

    def state_dict(self) -> dict:
        state: dict = {"inner": self._inner().state_dict(), "iterations": self._iterations}
        if self._ema is not None:
            state["ema"] = [a.clone() for a in self._ema]
        if self._accumulators is not None:
            state["accumulators"] = [a.clone() for a in self._accumulators]
        return state

    def load_state_dict(self, state) -> None:
        import ember

        self._inner().load_state_dict(state["inner"])
        self._iterations = int(state["iterations"])
        with ember.no_grad():
            for key in ("ema", "accumulators"):
                mine = self._ema if key == "ema" else self._accumulators
                if mine is not None and key in state:
                    for dst, src in zip(mine, state[key]):
                        dst.copy_(ember.as_tensor(src))

    def get_config(self) -> dict:
        lr = self._lr
        if callable(lr):
            if not hasattr(lr, "get_config"):
                raise TypeError("cannot serialize a learning-rate schedule without get_config")
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        return {
            "name": self.name,
            "learning_rate": lr,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "weight_decay": self.weight_decay,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            **{n: getattr(self, n) for n in self._own_names()},
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = getattr(schedules, lr["class_name"])(**lr["config"])
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


def _check_common(use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor, steps) -> None:
    """Keras' checks of the arguments every optimizer takes."""
    if steps and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 2):
        raise ValueError(
            "`gradient_accumulation_steps` must be an integer >= 2. Received: "
            f"gradient_accumulation_steps={steps}"
        )
    if use_ema:
        if ema_momentum > 1 or ema_momentum < 0:
            raise ValueError(
                f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}"
            )
        if ema_overwrite_frequency and (
            not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1
        ):
            raise ValueError(
                "`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                f"ema_overwrite_frequency={ema_overwrite_frequency}"
            )
    if loss_scale_factor is not None and not isinstance(loss_scale_factor, (int, float)):
        raise TypeError(
            f"`loss_scale_factor` must be a float or None. Received: {loss_scale_factor!r}"
        )


def _signature(cls) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    own = (("learning_rate", cls._learning_rate),) + cls._args
    names = {n for n, _ in own}
    params = [inspect.Parameter("self", kind)]
    params += [inspect.Parameter(n, kind, default=d) for n, d in own]
    params += [inspect.Parameter(n, kind, default=d) for n, d in cls._COMMON if n not in names]
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def _bind(signature: inspect.Signature, self, args, kwargs) -> dict:
    bound = signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _keras_init(cls):
    """The constructor of a Keras optimizer class: its Keras signature, bound and handed to
    ``Optimizer._setup``."""
    signature = _signature(cls)

    def __init__(self, *args, **kwargs):
        self._setup(_bind(signature, self, args, kwargs))

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__name__}.__init__"
    return __init__


_SIGNATURE = _signature(Optimizer)
Optimizer.__init__.__signature__ = _SIGNATURE  # type: ignore[attr-defined]


class SGD(Optimizer):
    """``learning_rate=0.01``, ``momentum=0.0``, ``nesterov=False`` (Keras defaults). Keras
    folds the rate into the momentum: ``m = momentum m - lr g; w += m`` (``nesterov``:
    ``w += momentum m - lr g``), which a schedule distinguishes from torch's SGD.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> w = ember.nn.Parameter(ember.tensor([1.0, -2.0]))
        >>> opt = keras.optimizers.SGD(0.1, momentum=0.9).build([w])
        >>> for _ in range(2):
        ...     w.grad = ember.tensor([2.0, -4.0]); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.42, -0.84]
    """

    _impl = _upd.KerasSGD

    _learning_rate = 0.01
    _args = (("momentum", 0.0), ("nesterov", False))

    def _check(self):
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum <= 1:
            raise ValueError(
                f"`momentum` must be a float between [0, 1]. Received: momentum={self.momentum}"
            )
        self.momentum, self.nesterov = float(self.momentum), bool(self.nesterov)

    def _kwargs(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras defaults: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``.
    Keras' update: ``w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) m / (sqrt(v) + epsilon)``
    (``amsgrad``: ``v`` its running maximum); torch adds ``epsilon`` after the bias
    correction instead.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> w = ember.nn.Parameter(ember.tensor([1.0, -2.0]))
        >>> opt = keras.optimizers.Adam(0.1, epsilon=0.1).build([w])
        >>> for _ in range(2):
        ...     w.grad = ember.tensor([2.0, -4.0]); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.9141, -1.88]
    """

    _impl = _upd.KerasAdam

    _learning_rate = 0.001
    _args = (("beta_1", 0.9), ("beta_2", 0.999), ("epsilon", 1e-7), ("amsgrad", False))

    def _kwargs(self):
        return {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": bool(self.amsgrad),
        }


class AdamW(Adam):
    """Decoupled weight decay; Keras default ``weight_decay=0.004``."""

    # (Adam's update; the decoupled decay is applied in Optimizer.step, as for every Keras
    # optimizer given a weight_decay)

    _args = (
        ("weight_decay", 0.004),
        ("beta_1", 0.9),
        ("beta_2", 0.999),
        ("epsilon", 1e-7),
        ("amsgrad", False),
    )


class RMSprop(Optimizer):
    """Keras defaults: ``learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7``. Keras'
    update: ``w -= lr g / sqrt(v + epsilon)`` (``centered``: ``sqrt(v - avg_g^2 +
    epsilon)``), through ``m = momentum m + that`` when ``momentum > 0``.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> w = ember.nn.Parameter(ember.tensor([1.0, -2.0]))
        >>> opt = keras.optimizers.RMSprop(0.1, epsilon=0.1).build([w])
        >>> for _ in range(2):
        ...     w.grad = ember.tensor([2.0, -4.0]); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.5015, -1.4675]
    """

    _impl = _upd.KerasRMSprop

    _learning_rate = 0.001
    _args = (("rho", 0.9), ("momentum", 0.0), ("epsilon", 1e-7), ("centered", False))

    def _kwargs(self):
        return {
            "rho": self.rho,
            "epsilon": self.epsilon,
            "momentum": self.momentum,
            "centered": bool(self.centered),
        }


class Adagrad(Optimizer):
    """Keras defaults: ``learning_rate=0.001, initial_accumulator_value=0.1,
    epsilon=1e-7``."""

    _impl = _upd.KerasAdagrad

    _learning_rate = 0.001
    _args = (("initial_accumulator_value", 0.1), ("epsilon", 1e-7))

    def _kwargs(self):
        return {
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """Keras defaults: ``learning_rate=0.001, rho=0.95, epsilon=1e-7``."""

    _impl = _upd.KerasAdadelta

    _learning_rate = 0.001
    _args = (("rho", 0.95), ("epsilon", 1e-7))

    def _kwargs(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Keras defaults: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``
    (Keras 3's momentum schedule ``beta_1 (1 - 0.5 * 0.96^t)``, its running product kept
    once per optimizer)."""

    _impl = _upd.KerasNadam

    _learning_rate = 0.001
    _args = (("beta_1", 0.9), ("beta_2", 0.999), ("epsilon", 1e-7))

    def _kwargs(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Keras defaults: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``. Keras
    3's update, ``w -= lr * m / ((1 - beta_1^t) (u + epsilon))`` with ``u = max(beta_2 u, |g|)``
    (``torch.optim.Adamax`` adds ``epsilon`` to ``|g|`` inside the running maximum instead).

    Example:
        >>> import ember
        >>> from ember import keras
        >>> w = ember.nn.Parameter(ember.tensor([1.0, -2.0]))
        >>> opt = keras.optimizers.Adamax(0.1).build([w])
        >>> w.grad = ember.tensor([2.0, -4.0]); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.9, -1.9]
    """

    _impl = _upd.KerasAdamax

    _learning_rate = 0.001
    _args = (("beta_1", 0.9), ("beta_2", 0.999), ("epsilon", 1e-7))

    def _kwargs(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Lion(Optimizer):
    """Keras 3's Lion (Chen et al., 2023): ``w -= lr * sign(beta_1 m + (1 - beta_1) g)``, then
    ``m = beta_2 m + (1 - beta_2) g``. Keras defaults: ``learning_rate=0.001, beta_1=0.9,
    beta_2=0.99``.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> w = ember.nn.Parameter(ember.tensor([1.0, -2.0]))
        >>> opt = keras.optimizers.Lion(0.1).build([w])
        >>> w.grad = ember.tensor([0.5, -3.0]); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.9, -1.9]
    """

    _impl = _upd.KerasLion

    _learning_rate = 0.001
    _args = (("beta_1", 0.9), ("beta_2", 0.99))

    def _check(self):
        beta_1 = self.beta_1
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the "
                f"optimizer degenerates to SignSGD. Received: beta_1={beta_1}."
            )

    def _kwargs(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """Keras 3's FTRL-Proximal (McMahan et al., 2013) with its shrinkage and ``beta`` terms.
    Keras defaults: ``learning_rate=0.001, learning_rate_power=-0.5,
    initial_accumulator_value=0.1``, the regularization strengths and ``beta`` 0.

    Example:
        >>> from ember import keras
        >>> opt = keras.optimizers.get("ftrl")
        >>> opt.learning_rate_power, opt.initial_accumulator_value
        (-0.5, 0.1)
    """

    _impl = _upd.KerasFtrl

    _learning_rate = 0.001
    _args = (
        ("learning_rate_power", -0.5),
        ("initial_accumulator_value", 0.1),
        ("l1_regularization_strength", 0.0),
        ("l2_regularization_strength", 0.0),
        ("l2_shrinkage_regularization_strength", 0.0),
        ("beta", 0.0),
    )

    def _check(self):
        for arg in (
            "initial_accumulator_value",
            "l1_regularization_strength",
            "l2_regularization_strength",
            "l2_shrinkage_regularization_strength",
        ):
            value = getattr(self, arg)
            if value < 0.0:
                raise ValueError(f"`{arg}` needs to be positive or zero. Received: {arg}={value}.")
        if self.learning_rate_power > 0.0:
            raise ValueError(
                "`learning_rate_power` needs to be negative or zero. Received: "
                f"learning_rate_power={self.learning_rate_power}."
            )

    def _kwargs(self):
        return {
            "lr_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1": self.l1_regularization_strength,
            "l2": self.l2_regularization_strength,
            "l2_shrinkage": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        }


class Adafactor(Optimizer):
    """Keras 3's Adafactor (Shazeer & Stern, 2018): the second moment of a weight of rank 2 or
    more factored over its last two axes, updates clipped by their RMS, step size scaled by
    the weight's RMS. Keras defaults: ``learning_rate=0.001, beta_2_decay=-0.8,
    epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0, relative_step=True`` (the rate is
    then at most ``1 / sqrt(step)``; not for a schedule).

    Example:
        >>> import ember
        >>> from ember import keras
        >>> w = ember.nn.Parameter(ember.tensor([[1.0, -2.0], [3.0, 4.0]]))
        >>> opt = keras.optimizers.Adafactor(0.1).build([w])
        >>> w.grad = ember.tensor([[1.0, 1.0], [1.0, 1.0]]); opt.step()
        >>> [round(v, 4) for v in w.flatten().tolist()]
        [0.7261, -2.2739, 2.7261, 3.7261]
    """

    _impl = _upd.KerasAdafactor

    _learning_rate = 0.001
    _args = (
        ("beta_2_decay", -0.8),
        ("epsilon_1", 1e-30),
        ("epsilon_2", 1e-3),
        ("clip_threshold", 1.0),
        ("relative_step", True),
    )

    def _kwargs(self):
        return {
            "beta_2_decay": self.beta_2_decay,
            "epsilon_1": self.epsilon_1,
            "epsilon_2": self.epsilon_2,
            "clip_threshold": self.clip_threshold,
            # (Keras caps the rate only when it is not a schedule)
            "relative_step": bool(self.relative_step) and not callable(self._lr),
        }


class _Schedules:
    """``keras.optimizers.schedules``: learning rate as a function of the step."""

    class ExponentialDecay:
        def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
            self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
            self.decay_rate, self.staircase = decay_rate, staircase

        def __call__(self, step):
            p = step / self.decay_steps
            if self.staircase:
                p = math.floor(p)
            return self.initial_learning_rate * self.decay_rate**p

        def get_config(self):
            return dict(vars(self))

    class CosineDecay:
        def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
            self.initial_learning_rate, self.decay_steps, self.alpha = (
                initial_learning_rate,
                decay_steps,
                alpha,
            )

        def __call__(self, step):
            s = min(step, self.decay_steps) / self.decay_steps
            cos = 0.5 * (1 + math.cos(math.pi * s))
            return self.initial_learning_rate * ((1 - self.alpha) * cos + self.alpha)

        def get_config(self):
            return dict(vars(self))

    class PiecewiseConstantDecay:
        def __init__(self, boundaries, values):
            self.boundaries, self.values = list(boundaries), list(values)

        def __call__(self, step):
            for b, v in zip(self.boundaries, self.values):
                if step <= b:
                    return v
            return self.values[-1]

        def get_config(self):
            return dict(vars(self))


schedules = _Schedules

_BY_NAME = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adamax": Adamax,
    "nadam": Nadam,
    "lion": Lion,
    "ftrl": Ftrl,
    "adafactor": Adafactor,
}


def get(identifier) -> Optimizer:
    """An optimizer for a name (``'adam'``) or a Keras optimizer object; an ``ember.optim``
    optimizer is accepted as is (already bound to its parameters)."""
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict):
        return _BY_NAME[identifier["class_name"].lower()].from_config(identifier["config"])
    if isinstance(identifier, Optimizer) or hasattr(identifier, "param_groups"):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer")


def serialize(opt) -> dict:
    if not isinstance(opt, Optimizer):
        raise TypeError("only Keras optimizers (ember.keras.optimizers) can be serialized")
    return {"class_name": type(opt).__name__, "config": opt.get_config()}
