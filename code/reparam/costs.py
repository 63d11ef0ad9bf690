r"""Cost functions with closed-form Gaussian expectations and gradients.

Under :math:`x \sim \mathcal N(\mu, \sigma^2)` (the Gaussian examples of Mohamed et al.
2020, Sec. 3, plus a step and an absolute value):

- :math:`(x-k)^2`: :math:`\mathbb E[f] = (\mu-k)^2 + \sigma^2`;
- :math:`e^{-kx^2}`:
  :math:`(1+2k\sigma^2)^{-1/2}\exp\bigl(-k\mu^2/(1+2k\sigma^2)\bigr)`;
- :math:`\cos kx`: :math:`\cos(k\mu)\,e^{-k^2\sigma^2/2}`;
- :math:`1[x>k]`: :math:`\Phi\bigl((\mu-k)/\sigma\bigr)`; its
  :math:`\partial/\partial\mu` is the density :math:`\mathcal N(k\mid\mu,\sigma^2)`;
- :math:`|x-k|`: :math:`2\sigma\varphi(d/\sigma) + d\,(2\Phi(d/\sigma) - 1)` with
  :math:`d = \mu - k`, gradient :math:`(2\Phi(d/\sigma) - 1,\ 2\varphi(d/\sigma))`.

Each :class:`GaussianCost` carries the cost as a torch function (for the estimators), as
a SymPy expression (so a chapter or test can integrate it independently), and the
closed forms, and where it varies fast (so that quadrature, in
:mod:`reparam.variance`, is told where to look).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ._validation import as_real_scalar, check_count, check_scale

__all__ = [
    "GaussianCost",
    "square",
    "gaussian_bump",
    "cosine",
    "step",
    "absolute",
    "ALL_COSTS",
]


@dataclass(frozen=True)
class GaussianCost:
    """A cost f(x; k) whose Gaussian expectation and its gradient have closed forms."""

    name: str
    latex: str
    k: float
    differentiable: bool
    _f: Callable[[torch.Tensor, float], torch.Tensor]
    _expectation: Callable[[float, float, float], float]
    _gradient: Callable[[float, float, float], tuple[float, float]]
    _sympy: Callable
    # Points x where f varies fast, given k: a jump, a kink, a narrow peak.
    _features: Callable[[float], tuple[float, ...]] = lambda k: ()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The cost, elementwise, as a torch function (differentiable where f is)."""
        return self._f(x, self.k)

    def expectation(self, mu, sigma) -> float:
        """Closed-form :math:`\\mathbb E_{x\\sim\\mathcal N(\\mu,\\sigma^2)}[f(x)]`."""
        return self._expectation(as_real_scalar(mu, "mu"), check_scale(sigma), self.k)

    def gradient(self, mu, sigma) -> tuple[float, float]:
        """Closed-form (d/dmu, d/dsigma) of the expectation."""
        return self._gradient(as_real_scalar(mu, "mu"), check_scale(sigma), self.k)

    def sympy_expr(self, x, k=None):
        """The cost as a SymPy expression in the symbol ``x`` (step: Heaviside).

        ``k`` defaults to the cost's own parameter; a SymPy symbol gives the family.
        """
        return self._sympy(x, self.k if k is None else k)

    def features(self) -> tuple[float, ...]:
        """The points x where f varies fast (a jump, a kink, a narrow peak): a
        quadrature over x must place breakpoints there, or it can miss them."""
        return self._features(self.k)

    def with_k(self, k) -> GaussianCost:
        """The same family with another parameter k."""
        k = as_real_scalar(k, "k")
        if self.name == "gaussian_bump" and k < 0:
            raise ValueError(
                f"k must be >= 0 for exp(-k x^2) (otherwise E[f] is infinite), got {k}"
            )
        return replace(self, k=k)


def _std_normal_pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _std_normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _square_grad(mu, sigma, k):
    return 2.0 * (mu - k), 2.0 * sigma


def _bump_expectation(mu, sigma, k):
    a = 1.0 + 2.0 * k * sigma**2
    return math.exp(-k * mu**2 / a) / math.sqrt(a)


def _bump_grad(mu, sigma, k):
    a = 1.0 + 2.0 * k * sigma**2
    value = _bump_expectation(mu, sigma, k)
    return (
        value * (-2.0 * k * mu / a),
        value * (-2.0 * k * sigma / a + 4.0 * k**2 * mu**2 * sigma / a**2),
    )


def _cos_grad(mu, sigma, k):
    damping = math.exp(-0.5 * k**2 * sigma**2)
    return -k * math.sin(k * mu) * damping, -(k**2) * sigma * math.cos(k * mu) * damping


def _step_grad(mu, sigma, k):
    z = (k - mu) / sigma
    return _std_normal_pdf(z) / sigma, _std_normal_pdf(z) * z / sigma


def _bump_features(k: float) -> tuple[float, ...]:
    # The peak at 0, the extremes of the slope at +-1/sqrt(2k), and +-6/sqrt(k),
    # beyond which the bump is below e^-36 of its peak.
    if k <= 0:
        return ()
    slope, tail = (2 * k) ** -0.5, 6 * k**-0.5
    return (-tail, -slope, 0.0, slope, tail)


def _sympy_module():
    import sympy

    return sympy


square = GaussianCost(
    "square",
    r"(x-k)^2",
    1.0,
    True,
    lambda x, k: (x - k) ** 2,
    lambda mu, sigma, k: (mu - k) ** 2 + sigma**2,
    _square_grad,
    lambda x, k: (x - _sympy_module().nsimplify(k)) ** 2,
)

gaussian_bump = GaussianCost(
    "gaussian_bump",
    r"e^{-k x^2}",
    1.0,
    True,
    lambda x, k: torch.exp(-k * x * x),
    _bump_expectation,
    _bump_grad,
    lambda x, k: _sympy_module().exp(-_sympy_module().nsimplify(k) * x**2),
    _bump_features,
)

cosine = GaussianCost(
    "cosine",
    r"\cos(k x)",
    1.0,
    True,
    lambda x, k: torch.cos(k * x),
    lambda mu, sigma, k: math.cos(k * mu) * math.exp(-0.5 * k**2 * sigma**2),
    _cos_grad,
    lambda x, k: _sympy_module().cos(_sympy_module().nsimplify(k) * x),
)

# (sign + 1)/2 equals 1[x > k] except on the null set x == k; autograd gives sign a zero
# derivative, which is exactly what the pathwise estimator sees for a step.
step = GaussianCost(
    "step",
    r"\mathbb 1[x>k]",
    0.0,
    False,
    lambda x, k: 0.5 * (torch.sign(x - k) + 1.0),
    lambda mu, sigma, k: _std_normal_cdf((mu - k) / sigma),
    _step_grad,
    lambda x, k: _sympy_module().Heaviside(x - _sympy_module().nsimplify(k)),
    lambda k: (k,),  # the jump
)


def _absolute_expectation(mu, sigma, k):
    d = mu - k
    return 2.0 * sigma * _std_normal_pdf(d / sigma) + d * (
        2.0 * _std_normal_cdf(d / sigma) - 1.0
    )


def _absolute_grad(mu, sigma, k):
    z = (mu - k) / sigma
    return 2.0 * _std_normal_cdf(z) - 1.0, 2.0 * _std_normal_pdf(z)


# |x - k| has a kink, not a jump: it is Lipschitz, so the pathwise estimator stays
# unbiased (autograd gives 0 at the kink itself, a null set, and that does not matter).
absolute = GaussianCost(
    "absolute",
    r"\lvert x-k\rvert",
    0.0,
    True,
    lambda x, k: torch.abs(x - k),
    _absolute_expectation,
    _absolute_grad,
    lambda x, k: _sympy_module().Abs(x - _sympy_module().nsimplify(k)),
    lambda k: (k,),  # the kink
)

ALL_COSTS = (square, gaussian_bump, cosine, step, absolute)


def cantor(x: torch.Tensor, depth: int = 40) -> torch.Tensor:
    r"""The Cantor function :math:`C`, elementwise: 0 below 0, 1 above 1.

    On :math:`[0, 1]` it reads the ternary digits :math:`d_1, d_2, \dots` of
    :math:`x` up to the first digit 1 and returns :math:`\sum_i (d_i/2)\,2^{-i}`, with
    that digit 1 counted as :math:`2^{-i}` and nothing after it. :math:`C` is continuous
    and nondecreasing, and constant on each open interval removed in building the
    Cantor set, which together have length 1: so :math:`C' = 0` almost everywhere, yet
    :math:`C` climbs from 0 to 1. It is the distribution function of the Cantor law,
    :math:`C(x) = P(Y \le x)` for :math:`Y = \sum_i 2b_i 3^{-i}` with fair bits
    :math:`b_i`.

    The result is built from the digits alone (``floor``), so autograd sees no path
    from ``x`` to it: the pathwise gradient through it is zero, which is the true
    derivative everywhere off the Cantor set. ``depth`` digits are read; float64 holds
    about 34 ternary digits, so the default reads them all.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must have a floating dtype, got {x.dtype}")
    if bool(torch.isnan(x).any()):
        raise ValueError("x contains NaN")  # C(-inf) = 0 and C(inf) = 1 are fine
    depth = check_count(depth, "depth")
    rest = x.detach().clamp(0.0, 1.0)
    value = torch.zeros_like(rest)
    reading = torch.ones_like(rest, dtype=torch.bool)  # no digit 1 seen yet
    weight = 0.5
    for _ in range(depth):
        rest = 3.0 * rest
        digit = torch.floor(rest).clamp(max=2.0)  # x = 1 reads 0.222... in base 3
        rest = rest - digit
        value = value + weight * (reading & (digit > 0.5)).to(value.dtype)
        reading = reading & (digit != 1.0)
        weight /= 2.0
    # x >= 1 reads 0.222... forever: its value is 1, which depth digits miss by 2^-depth
    return torch.where(x.detach() >= 1.0, torch.ones_like(value), value)
