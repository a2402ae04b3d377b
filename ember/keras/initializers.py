"""Keras initializers by name, filling ember tensors through ``ember.nn.init``.

Fans follow Keras (and PyTorch): for a Dense kernel, fan_in is the input size; for a conv
kernel, channels times the receptive field. Initializers fill tensors in the PyTorch layout
the layer stores (``Linear.weight`` is ``(out, in)``); fans are the same either way.

Example:
    >>> import ember
    >>> from ember.keras import initializers
    >>> w = ember.empty(3, 4)
    >>> initializers.get("zeros")(w).sum().item()
    0.0
"""

from __future__ import annotations

import math

import ember

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "get",
]


def _init():
    from ember.nn import init

    return init


def _fans(t) -> tuple[int, int]:
    shape = tuple(t.shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if getattr(t, "_keras_layout", False):  # (*kernel, in, out), from Layer.add_weight
        rf = math.prod(shape[:-2])
        return shape[-2] * rf, shape[-1] * rf
    rf = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf  # torch layout (out, in, *kernel)


class Initializer:
    """Call with a tensor to fill it in place (under ``no_grad``); returns the tensor."""

    def __call__(self, tensor):
        with ember.no_grad():
            self.fill(tensor)
        return tensor

    def fill(self, tensor):
        raise NotImplementedError

    def _generator(self):
        """A generator seeded with ``seed`` (the same values on every call, as Keras), or
        None for ember's global one."""
        seed = getattr(self, "seed", None)
        if seed is None:
            return None
        from ember.random import Generator

        g = Generator()
        g.manual_seed(int(seed))
        return g

    def get_config(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def fill(self, t):
        _init().zeros_(t)


class Ones(Initializer):
    def fill(self, t):
        _init().ones_(t)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def fill(self, t):
        _init().constant_(t, self.value)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def fill(self, t):
        _init().normal_(t, self.mean, self.stddev, generator=self._generator())


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def fill(self, t):
        _init().uniform_(t, self.minval, self.maxval, generator=self._generator())


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def fill(self, t):
        _init().trunc_normal_(
            t,
            self.mean,
            self.stddev,
            self.mean - 2 * self.stddev,
            self.mean + 2 * self.stddev,
            generator=self._generator(),
        )


class VarianceScaling(Initializer):
    """Keras' general form: variance ``scale / fan`` with a (truncated) normal or uniform."""

    def __init__(
        self,
        scale=1.0,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
        input_axes=None,
        output_axes=None,
    ):
        if input_axes is not None or output_axes is not None:
            raise NotImplementedError(
                f"{type(self).__name__}: input_axes/output_axes are not supported (fans come "
                "from the kernel layout)"
            )
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: bad mode {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "normal", "uniform"):
            raise ValueError(f"VarianceScaling: bad distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def fill(self, t):
        fan_in, fan_out = _fans(t)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        init = _init()
        if self.distribution == "uniform":
            lim = math.sqrt(3.0 * var)
            init.uniform_(t, -lim, lim, generator=self._generator())
        elif self.distribution == "truncated_normal":
            # NOTE: 0.8796... is the std of a unit normal truncated at ±2 (Keras' constant)
            std = math.sqrt(var) / 0.87962566103423978
            init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std, generator=self._generator())
        else:
            init.normal_(t, 0.0, math.sqrt(var), generator=self._generator())


class GlorotUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def fill(self, t):
        _init().orthogonal_(t, self.gain, generator=self._generator())


_ALL = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "xavier_uniform": GlorotUniform,
    "xavier_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
}


def get(identifier):
    """An initializer for a name, a config dict, an Initializer or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = _ALL.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r}; known: {sorted(_ALL)}")
        return cls()
    if isinstance(identifier, dict):
        return _ALL[identifier["class_name"].lower()].from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as an initializer")


def serialize(init):
    """A JSON-able description (a name where one exists)."""
    if init is None:
        return None
    for k, cls in _ALL.items():
        if type(init) is cls:
            cfg = init.get_config()
            if not any(v is not None for v in cfg.values()) or k in ("zeros", "ones"):
                return k
            return {"class_name": k, "config": cfg}
    raise ValueError(f"cannot serialize initializer {init!r} (not a built-in)")
