"""Activation modules; each ``forward`` calls the functional op of the same name."""

from __future__ import annotations

from ... import _creation as C
from .. import functional as F
from .. import init
from ..parameter import Parameter
from . import _check
from .module import Module

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "SELU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "PReLU",
    "RReLU",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
]


def _real(who: str, name: str, v):
    """``v`` checked as :func:`_check.real` checks it, kept as given: PyTorch's repr shows
    ``beta=2`` for ``Softplus(beta=2)``."""
    _check.real(who, name, v)
    return v


class _InplaceSimple(Module):
    """An activation whose one option is ``inplace``: ``forward`` is
    ``F.<_fn>(input, inplace=...)``."""

    _fn = ""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return getattr(F, self._fn)(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceSimple):
    """``max(0, x)``.

    Example:
        >>> import ember
        >>> ember.nn.ReLU()(ember.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    _fn = "relu"


class Hardtanh(Module):
    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ):
        super().__init__()
        # min_value/max_value: PyTorch's deprecated spellings, still accepted there
        min_val = min_val if min_value is None else min_value
        max_val = max_val if max_value is None else max_value
        lo = _check.real(type(self).__name__, "min_val", min_val)
        hi = _check.real(type(self).__name__, "max_val", max_val)
        if hi <= lo:
            raise ValueError(
                f"{type(self).__name__}: max_val ({hi}) must be greater than min_val ({lo})"
            )
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        s = f"min_val={self.min_val}, max_val={self.max_val}"
        return s + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Threshold(Module):
    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        threshold = _real("Threshold", "threshold", threshold)
        value = _real("Threshold", "value", value)
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}"


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = _check.choice("GELU", "approximate", approximate, ("none", "tanh"))

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class _Simple(Module):
    """An activation without configuration: ``forward`` is ``F.<_fn>(input)``."""

    _fn = ""

    def forward(self, input):
        return getattr(F, self._fn)(input)


class Tanh(_Simple):
    _fn = "tanh"


class Sigmoid(_Simple):
    _fn = "sigmoid"


class Softsign(_Simple):
    _fn = "softsign"


class Tanhshrink(_Simple):
    _fn = "tanhshrink"


class LogSigmoid(_Simple):
    _fn = "logsigmoid"


class SiLU(_InplaceSimple):
    _fn = "silu"


class Mish(_InplaceSimple):
    _fn = "mish"


class Hardsigmoid(_InplaceSimple):
    _fn = "hardsigmoid"


class Hardswish(_InplaceSimple):
    _fn = "hardswish"


class SELU(_InplaceSimple):
    _fn = "selu"


class _OneArg(Module):
    """``forward`` is ``F.<_fn>(input, <the attribute named _arg>)``."""

    _fn = ""
    _arg = ""

    def forward(self, input):
        return getattr(F, self._fn)(input, getattr(self, self._arg))

    def extra_repr(self) -> str:
        return f"{self._arg}={getattr(self, self._arg)}"


class _DimModule(_OneArg):
    _arg = "dim"

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _check.dim(type(self).__name__, "dim", dim, allow_none=True)


class Softmax(_DimModule):
    """``softmax`` along ``dim``."""

    _fn = "softmax"


class LogSoftmax(_DimModule):
    _fn = "log_softmax"


class Softmin(_DimModule):
    _fn = "softmin"


class GLU(_OneArg):
    _fn, _arg = "glu", "dim"

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = _check.dim("GLU", "dim", dim)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__()
        negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        alpha = _real(type(self).__name__, "alpha", alpha)
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        beta = _real("Softplus", "beta", beta)
        threshold = _real("Softplus", "threshold", threshold)
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """``max(0, x) + a * min(0, x)`` with a learned ``a`` (one, or one per channel)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = _check.size("PReLU", "num_parameters", num_parameters, minimum=1)
        self.init = _check.real("PReLU", "init", init)
        self.weight = Parameter(C.empty(num_parameters, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softmax2d(Module):
    """``softmax`` over the channels of a (N, C, H, W) or (C, H, W) input.

    Example:
        >>> import ember
        >>> ember.nn.Softmax2d()(ember.zeros(1, 2, 1, 1)).flatten().tolist()
        [0.5, 0.5]
    """

    def forward(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(
                f"Softmax2d: expected a 3-D or 4-D input, got shape {tuple(input.shape)}"
            )
        return F.softmax(input, -3)


class _Shrink(_OneArg):
    _arg = "lambd"

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        _check.real(type(self).__name__, "lambd", lambd, minimum=0.0)
        self.lambd = lambd  # kept as given, as PyTorch's repr shows it

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Hardshrink(_Shrink):
    """``x`` where ``|x| > lambd``, else 0."""

    _fn = "hardshrink"


class Softshrink(_Shrink):
    """``x - lambd * sign(x)`` where ``|x| > lambd``, else 0."""

    _fn = "softshrink"


class RReLU(Module):
    """Leaky ReLU with a random slope from ``U(lower, upper)`` per element in training, the
    mean slope ``(lower + upper) / 2`` in evaluation."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        self.lower = _real("RReLU", "lower", lower)
        self.upper = _real("RReLU", "upper", upper)
        if self.lower > self.upper:
            raise ValueError(f"RReLU: lower ({lower}) must not exceed upper ({upper})")
        self.inplace = inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (
            ", inplace=True" if self.inplace else ""
        )
