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

    def get_config(self):
        return {
            "seed": self.seed,
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": None,
            "output_axes": None,
        }

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
        return {"seed": self.seed, "input_axes": None, "output_axes": None}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": None, "output_axes": None}


class HeNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": None, "output_axes": None}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": None, "output_axes": None}


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": None, "output_axes": None}


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": None, "output_axes": None}


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
_BY_CLASS = {cls.__name__.lower(): cls for cls in _ALL.values()}


def get(identifier):
    """An initializer for a name, a config dict, an Initializer or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"cannot interpret {identifier!r} as an initializer (no class_name)")
        return _lookup(identifier["class_name"]).from_config(identifier.get("config") or {})
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as an initializer")


def _lookup(name: str) -> type:
    """The initializer class for a name: ``'glorot_uniform'`` or Keras' class name
    ``'GlorotUniform'``."""
    cls = _ALL.get(name.lower()) or _BY_CLASS.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown initializer {name!r}; known: {sorted(_ALL)}")
    return cls


def serialize(init):
    """Keras' serialized form of a built-in initializer.

    Example:
        >>> from ember.keras import initializers
        >>> initializers.serialize(initializers.get("ones"))["class_name"]
        'Ones'
    """
    if init is None:
        return None
    if type(init) not in _ALL.values():
        raise ValueError(f"cannot serialize initializer {init!r} (not a built-in)")
    return {
        "module": "keras.initializers",
        "class_name": type(init).__name__,
        "config": init.get_config(),
        "registered_name": None,
    }
