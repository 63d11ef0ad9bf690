r"""Exact mean and variance of the per-sample gradient estimators, by quadrature.

For :math:`x = \mu + \sigma\varepsilon`, :math:`\varepsilon\sim\mathcal N(0,1)`, one
draw of each estimator of :math:`\partial/\partial\theta\,\mathbb E[f(x)]` is a function
of :math:`\varepsilon` alone:

.. math::

    \text{pathwise: } \hat g_\mu = f'(x),\quad \hat g_\sigma = f'(x)\,\varepsilon;
    \qquad
    \text{score: } \hat g_\mu = (f(x) - b)\,\frac{\varepsilon}{\sigma},\quad
    \hat g_\sigma = (f(x) - b)\,\frac{\varepsilon^2 - 1}{\sigma}.

Its variance is
:math:`\int \hat g(\varepsilon)^2\varphi(\varepsilon)\,d\varepsilon - (\int\hat
g\,\varphi)^2`, computed with ``scipy.integrate.quad``; :math:`f'` comes from SymPy
differentiating the cost's own expression. For a step, autograd's derivative is zero
almost everywhere, so the pathwise draw is identically 0 (and biased).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import sympy as sp
from scipy import integrate

from ._validation import as_real_scalar, check_choice, check_count, check_scale
from .costs import GaussianCost

__all__ = [
    "Moments",
    "per_sample_function",
    "exact_moments",
    "exact_variance",
    "optimal_baseline",
    "leave_one_out_variance",
]

_X = sp.Symbol("x", real=True)
PARAMETERS = ("mu", "sigma")
ESTIMATORS = ("pathwise", "score")


@cache
def _lambdified(name: str, k: float, derivative: bool) -> Callable[[float], float]:
    from . import costs

    cost = next(c for c in costs.ALL_COSTS if c.name == name).with_k(k)
    expression = cost.sympy_expr(_X)
    if derivative:
        expression = sp.diff(expression, _X)
    return sp.lambdify(_X, expression, modules=["math"])


def per_sample_function(
    cost: GaussianCost, mu, sigma, estimator: str, parameter: str, baseline: float = 0.0
) -> Callable[[float], float]:
    """One draw of the estimator as a function of eps (see the module docstring)."""
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    check_choice(estimator, "estimator", ESTIMATORS)
    check_choice(parameter, "parameter", PARAMETERS)
    baseline = as_real_scalar(baseline, "baseline")
    if estimator == "pathwise":
        if not cost.differentiable:
            return lambda eps: 0.0
        derivative = _lambdified(cost.name, cost.k, True)
        if parameter == "mu":
            return lambda eps: derivative(mu + sigma * eps)
        return lambda eps: derivative(mu + sigma * eps) * eps
    value = _lambdified(cost.name, cost.k, False)
    if parameter == "mu":
        return lambda eps: (value(mu + sigma * eps) - baseline) * eps / sigma
    return lambda eps: (value(mu + sigma * eps) - baseline) * (eps * eps - 1.0) / sigma


_LIMIT = 14.0  # the integral runs over eps in [-14, 14]


def _breakpoints(cost: GaussianCost, mu: float, sigma: float) -> list[float]:
    """The cost's features (``cost.features()``) as values of eps inside the
    interval. quad must be told them: a bump narrower than the spacing of its first
    nodes would be seen as zero, and its tails as nothing."""
    return [(x - mu) / sigma for x in cost.features() if abs(x - mu) < _LIMIT * sigma]


def _expect(function: Callable[[float], float], breakpoints: list[float]) -> float:
    weight = lambda eps: (  # noqa: E731
        function(eps) * math.exp(-0.5 * eps * eps) / math.sqrt(2 * math.pi)
    )
    value, _ = integrate.quad(
        weight,
        -_LIMIT,
        _LIMIT,
        points=breakpoints or None,
        limit=500,
        epsabs=1e-13,
        epsrel=1e-11,
    )
    return value


class Moments(NamedTuple):
    """Mean and variance of one draw of an estimator."""

    mean: float
    variance: float


def exact_moments(
    cost: GaussianCost, mu, sigma, estimator: str, parameter: str, baseline: float = 0.0
) -> Moments:
    """Mean and variance of one draw of the estimator, by quadrature over eps."""
    function = per_sample_function(cost, mu, sigma, estimator, parameter, baseline)
    breakpoints = _breakpoints(cost, float(mu), float(sigma))
    mean = _expect(function, breakpoints)
    # E[(g - mean)^2], not E[g^2] - mean^2, which cancels when the spread is tiny.
    return Moments(mean, _expect(lambda eps: (function(eps) - mean) ** 2, breakpoints))


def exact_variance(
    cost: GaussianCost, mu, sigma, estimator: str, parameter: str, baseline: float = 0.0
) -> float:
    """Variance of one draw of the estimator (multiply by 1/n for an n-sample mean)."""
    return exact_moments(cost, mu, sigma, estimator, parameter, baseline).variance


def optimal_baseline(cost: GaussianCost, mu, sigma, parameter: str) -> float:
    r"""The constant :math:`b^\star = \mathbb E[f\,s^2]/\mathbb E[s^2]` minimizing the
    score-function variance.

    :math:`s` is the score component for ``parameter``: :math:`\varepsilon/\sigma` or
    :math:`(\varepsilon^2-1)/\sigma`, with :math:`\mathbb E[s^2] = 1/\sigma^2` or
    :math:`2/\sigma^2`.
    (The variance :math:`\mathbb E[(f-b)^2 s^2] - g^2` is a quadratic in :math:`b`.)
    """
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    check_choice(parameter, "parameter", PARAMETERS)
    value = _lambdified(cost.name, cost.k, False)
    if parameter == "mu":
        score_squared, mean_score_squared = (
            (lambda eps: eps * eps / sigma**2),
            1.0 / sigma**2,
        )
    else:
        score_squared, mean_score_squared = (
            (lambda eps: (eps * eps - 1.0) ** 2 / sigma**2),
            2.0 / sigma**2,
        )
    breakpoints = _breakpoints(cost, mu, sigma)
    return (
        _expect(lambda eps: value(mu + sigma * eps) * score_squared(eps), breakpoints)
        / mean_score_squared
    )


def _score_squared_mean(parameter: str, sigma: float) -> float:
    """E[s^2] for the score component s: 1/sigma^2 for mu, 2/sigma^2 for sigma."""
    return (1.0 if parameter == "mu" else 2.0) / sigma**2


def leave_one_out_variance(cost: GaussianCost, mu, sigma, parameter: str, n) -> float:
    r"""``n`` times the variance of the n-draw score-function estimate with the
    leave-one-out baseline, comparable with the per-draw variance of the others.

    With :math:`b_i` the mean of :math:`f` over the other :math:`n - 1` draws, row
    :math:`i` is :math:`(f_i - b_i)\,s_i`. Write :math:`m = \mathbb E[f]` and
    :math:`g = \mathbb E[f s]` (the gradient). Since :math:`b_i` is independent of
    draw :math:`i` with mean :math:`m` and variance
    :math:`\operatorname{Var}(f)/(n-1)`, a row has variance
    :math:`V(m) + \operatorname{Var}(f)\,\mathbb E[s^2]/(n-1)`, where :math:`V(b)`
    is the per-draw variance with the constant baseline :math:`b`; and two rows
    :math:`i \ne j` share draws, with covariance :math:`g^2/(n-1)^2`. So

    .. math::

        n\operatorname{Var}\Bigl(\frac1n\sum_i (f_i - b_i)\,s_i\Bigr)
        = V(m) + \frac{\operatorname{Var}(f)\,\mathbb E[s^2] + g^2}{n - 1},

    which tends to :math:`V(\mathbb E[f])` as :math:`n\to\infty`. ``n >= 2``.
    """
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    n = check_count(n, "n", minimum=2)  # a leave-one-out baseline needs two draws
    check_choice(parameter, "parameter", PARAMETERS)
    value = _lambdified(cost.name, cost.k, False)
    breakpoints = _breakpoints(cost, mu, sigma)
    mean = _expect(lambda eps: value(mu + sigma * eps), breakpoints)
    f_variance = _expect(lambda eps: (value(mu + sigma * eps) - mean) ** 2, breakpoints)
    at_mean = exact_moments(cost, mu, sigma, "score", parameter, baseline=mean)
    gradient = exact_moments(cost, mu, sigma, "score", parameter).mean
    spread = f_variance * _score_squared_mean(parameter, sigma)
    return at_mean.variance + (spread + gradient**2) / (n - 1)
