"""``ember.special``: PyTorch's ``torch.special`` — error, gamma, Bessel and zeta functions,
the normal distribution's ``ndtr``/``ndtri``/``log_ndtr``, entropy helpers and the
orthogonal polynomials, plus the aliases ``torch.special`` keeps for ops found elsewhere
(``expit`` is ``sigmoid``, ``psi`` is ``digamma``, ``gammaln`` is ``lgamma`` ...).

Kernels come from SciPy (the ``[special]`` extra, imported on first use); see
``ember/ops/special_fns.py``.

Example:
    >>> import ember
    >>> ember.special.expit(ember.tensor([0.0])).tolist()
    [0.5]
    >>> ember.special.i0e(ember.tensor([1.0])).item()  # doctest: +ELLIPSIS
    0.4657...
"""

from __future__ import annotations

from ..ops.elementwise import erf, exp2, expm1, log1p, round, sigmoid
from ..ops.math_extra import logit, sinc, xlogy
from ..ops.reduction import log_softmax, logsumexp, softmax
from ..ops.special_fns import (
    airy_ai,
    bessel_j0,
    bessel_j1,
    bessel_y0,
    bessel_y1,
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    digamma,
    entr,
    erfc,
    erfcx,
    erfinv,
    hermite_polynomial_h,
    hermite_polynomial_he,
    i0,
    i0e,
    i1,
    i1e,
    igamma,
    igammac,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    lgamma,
    log_ndtr,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    mvlgamma,
    ndtr,
    ndtri,
    polygamma,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
    spherical_bessel_j0,
    xlog1py,
    zeta,
)

expit = sigmoid
psi = digamma
gammaln = lgamma
gammainc = igamma
gammaincc = igammac
multigammaln = mvlgamma

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
    "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w", "digamma",
    "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc",
    "gammaln", "hermite_polynomial_h", "hermite_polynomial_he", "i0", "i0e", "i1", "i1e",
    "laguerre_polynomial_l", "legendre_polynomial_p", "log1p", "log_ndtr", "log_softmax",
    "logit", "logsumexp", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
    "modified_bessel_k1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w", "sinc", "softmax", "spherical_bessel_j0", "xlog1py",
    "xlogy", "zeta",
]  # fmt: skip
