"""Keras optimizers: Keras names and defaults on top of ``ember.optim``.

A Keras optimizer is created before the model has weights (``compile('adam')`` on a model
whose layers build on first call), so it holds its configuration and binds to parameters
with :meth:`Optimizer.build`, which creates the ``ember.optim`` optimizer that does the
work. It then behaves like that optimizer (``step``, ``zero_grad``, ``param_groups``,
``state_dict``) and adds Keras' ``learning_rate``, ``iterations``, ``clipnorm``,
``clipvalue``, ``global_clipnorm`` and learning-rate schedules (a callable of the step).

Example:
    >>> from ember.keras import optimizers
    >>> opt = optimizers.get("adam")
    >>> opt.learning_rate, opt.epsilon
    (0.001, 1e-07)
"""

from __future__ import annotations

import math

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "get",
    "schedules",
]


class Optimizer:
    """Base class; subclasses name the ``ember.optim`` class and map the arguments."""

    _torch_name = ""

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        from .layers.base import check_supported

        check_supported(
            type(self).__name__,
            use_ema=(bool(use_ema), False),
            loss_scale_factor=(loss_scale_factor, None),
            gradient_accumulation_steps=(gradient_accumulation_steps, None),
        )
        self._lr = learning_rate
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.use_ema, self.ema_momentum = bool(use_ema), ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._opt = None

    # -- binding ------------------------------------------------------------------------------
    def _kwargs(self) -> dict:
        return {}

    def build(self, params) -> Optimizer:
        from ember import optim

        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError(f"{type(self).__name__}: the model has no trainable weights")
        lr = self._current_lr()
        self._opt = getattr(optim, self._torch_name)(params, lr=lr, **self._kwargs())
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
            return float(lr(self.iterations))
        return float(lr)

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

    def step(self) -> None:
        opt = self._inner()
        if callable(self._lr):
            for g in opt.param_groups:
                g["lr"] = self._current_lr()
        params = [p for g in opt.param_groups for p in g["params"]]
        self._clip(params)
        if self.weight_decay:
            # Keras' weight decay is decoupled: w -= lr * wd * w before the update
            import ember

            with ember.no_grad():
                for g in opt.param_groups:
                    for p in g["params"]:
                        if p.grad is not None:
                            p.mul_(1.0 - float(g["lr"]) * float(self.weight_decay))
        opt.step()
        from .constraints import apply_constraints

        apply_constraints(params)
        self.iterations += 1

    def _clip(self, params) -> None:
        from ember.train import clip_gradients

        if self.global_clipnorm is not None:
            clip_gradients(params, float(self.global_clipnorm), "norm")
        if self.clipnorm is not None:
            for p in params:
                clip_gradients([p], float(self.clipnorm), "norm")
        if self.clipvalue is not None:
            clip_gradients(params, float(self.clipvalue), "value")

    def state_dict(self) -> dict:
        return {"inner": self._inner().state_dict(), "iterations": self.iterations}

    def load_state_dict(self, state) -> None:
        self._inner().load_state_dict(state["inner"])
        self.iterations = int(state["iterations"])

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
            **self._config(),
        }

    def _config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = getattr(schedules, lr["class_name"])(**lr["config"])
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class SGD(Optimizer):
    """``learning_rate=0.01``, ``momentum=0.0``, ``nesterov=False`` (Keras defaults)."""

    _torch_name = "SGD"

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _kwargs(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras defaults: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``."""

    _torch_name = "Adam"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _kwargs(self):
        return {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon, "amsgrad": self.amsgrad}

    def _config(self):
        return {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Decoupled weight decay; Keras default ``weight_decay=0.004``."""

    _torch_name = "Adam"  # the decoupled decay is applied in Optimizer.step

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )


class RMSprop(Optimizer):
    """Keras defaults: ``learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7``."""

    _torch_name = "RMSprop"

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _kwargs(self):
        return {
            "alpha": self.rho,
            "eps": self.epsilon,
            "momentum": self.momentum,
            "centered": self.centered,
        }

    def _config(self):
        return {
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Keras defaults: ``learning_rate=0.001, initial_accumulator_value=0.1,
    epsilon=1e-7``."""

    _torch_name = "Adagrad"

    def __init__(
        self,
        learning_rate=0.001,
        initial_accumulator_value=0.1,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _kwargs(self):
        return {"initial_accumulator_value": self.initial_accumulator_value, "eps": self.epsilon}

    def _config(self):
        return {
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """Keras defaults: ``learning_rate=0.001, rho=0.95, epsilon=1e-7`` (Keras' update is
    ``torch.optim.Adadelta``'s with these values)."""

    _torch_name = "Adadelta"

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.95,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.rho, self.epsilon = rho, epsilon

    def _kwargs(self):
        return {"rho": self.rho, "eps": self.epsilon}

    def _config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Keras defaults: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``
    (Keras 3's momentum schedule ``beta_1 (1 - 0.5 * 0.96^t)`` is ``torch.optim.NAdam``'s
    with ``momentum_decay=1``)."""

    _torch_name = "NAdam"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _kwargs(self):
        return {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon, "momentum_decay": 1.0}

    def _config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Keras defaults: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``. Runs
    ``torch.optim.Adamax``, which adds ``epsilon`` to ``|g|`` inside the running maximum where
    Keras adds it to the maximum (the two differ by about ``epsilon`` in the denominator)."""

    _torch_name = "Adamax"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _kwargs(self):
        return {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon}

    def _config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


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
