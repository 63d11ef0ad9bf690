r"""Crossovers by root finding: where the score function beats the pathwise estimator.

For a cost family :math:`f_k` and a parameter :math:`\theta\in\{\mu,\sigma\}`, a
crossover is a root in :math:`k` of

.. math::

    d(k) = \log V_{\text{pathwise}}(k) - \log V_{\text{score}}(k),

where :math:`V` is the exact per-draw variance of the estimator of
:math:`\partial_\theta\,\mathbb E_{\mathcal N(\mu,\sigma^2)}[f_k]`. The score
function's draw is :math:`(f(x) - b)\,s` with a constant baseline :math:`b`: none
(:math:`b = 0`), ``"mean"`` (:math:`b = \mathbb E[f]`) or ``"optimal"``
(:math:`b^\star = \mathbb E[f s^2]/\mathbb E[s^2]`, the variance-minimizing constant).
The log ratio is used because the variances span many orders of magnitude; its sign
says which estimator wins. ``scipy.optimize.brentq`` finds the root inside a bracket
where the sign changes; :func:`crossovers_on_grid` finds the brackets.

The variances inside the root finder come from Gauss-Hermite quadrature over
:math:`\varepsilon\sim\mathcal N(0,1)` (smooth integrands, so it converges fast, and one
vectorized autograd call per evaluation). This is a second, independent route to the
numbers of :func:`reparam.variance.exact_variance` (adaptive quadrature of SymPy's
derivative); the tests and the chapter check that the two agree, at the roots too.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import brentq

from ._validation import (
    as_real_array,
    as_real_scalar,
    check_choice,
    check_count,
    check_scale,
)
from .costs import GaussianCost

__all__ = [
    "hermite_variance",
    "log_variance_ratio",
    "crossover",
    "crossovers_on_grid",
]

PARAMETERS = ("mu", "sigma")
ESTIMATORS = ("pathwise", "score")
BASELINES = (None, "mean", "optimal")
NODES = 200


@lru_cache(maxsize=4)
def _hermite_rule(nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Probabilists' Hermite: weight exp(-eps^2/2); divide by sqrt(2 pi) for N(0, 1).
    points, weights = np.polynomial.hermite_e.hermegauss(nodes)
    return (
        torch.tensor(points, dtype=torch.float64),
        torch.tensor(weights / math.sqrt(2.0 * math.pi), dtype=torch.float64),
    )


def _per_draw(
    cost: GaussianCost,
    mu: float,
    sigma: float,
    estimator: str,
    parameter: str,
    eps: torch.Tensor,
    weights: torch.Tensor,
    baseline: str | None,
) -> torch.Tensor:
    """One draw of the estimator at each eps (pathwise: autograd's f'; score:
    (f - b) s, with b computed by the same quadrature rule)."""
    if estimator == "pathwise":
        x = (mu + sigma * eps).requires_grad_(True)
        out = cost(x)
        if not out.requires_grad:  # a cost that cuts the graph has derivative 0 a.e.
            return torch.zeros_like(eps)
        (derivative,) = torch.autograd.grad(out.sum(), x)
        return derivative if parameter == "mu" else derivative * eps
    values = cost(mu + sigma * eps)
    score = eps / sigma if parameter == "mu" else (eps * eps - 1.0) / sigma
    if baseline == "mean":
        values = values - (weights * values).sum()
    elif baseline == "optimal":
        squared = score * score
        values = values - (weights * values * squared).sum() / (weights * squared).sum()
    return values * score


def _check_cost(cost, name: str) -> GaussianCost:
    if not isinstance(cost, GaussianCost):
        raise TypeError(f"{name} must be a GaussianCost, got {type(cost).__name__}")
    return cost


def _check_baseline(estimator: str, baseline) -> None:
    if baseline is not None and not isinstance(baseline, str):
        raise TypeError(
            f"baseline must be None, 'mean' or 'optimal', got {type(baseline).__name__}"
        )
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    if baseline is not None and estimator != "score":
        raise ValueError("a baseline belongs to the score-function estimator only")


def hermite_variance(
    cost: GaussianCost,
    mu,
    sigma,
    estimator: str,
    parameter: str,
    nodes: int = NODES,
    baseline: str | None = None,
) -> float:
    """Per-draw variance of an estimator by Gauss-Hermite quadrature.

    ``baseline`` (score function only): ``None`` (b = 0), ``"mean"`` or ``"optimal"``
    (see the module docstring).

    Accurate when the per-draw function is smooth and varies slowly on the scale of the
    nodes' spacing near the centre: for Chapter 4's bump at sigma = 1 the tests hold
    its log variance ratio within 5e-4 of adaptive quadrature's up to k = 6.6, where
    the chapter's crossovers lie (at k = 16 it is off by about 0.2, and the chapter
    checks each root it uses). A kink in f' (|x - k|) or a narrower bump needs
    adaptive quadrature, :func:`reparam.variance.exact_variance`.
    """
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    _check_cost(cost, "cost")
    check_choice(estimator, "estimator", ESTIMATORS)
    check_choice(parameter, "parameter", PARAMETERS)
    if not cost.differentiable:
        raise ValueError(
            f"Gauss-Hermite quadrature needs a smooth cost, got {cost.name!r}"
        )
    nodes = check_count(nodes, "nodes", minimum=2)
    _check_baseline(estimator, baseline)
    eps, weights = _hermite_rule(nodes)
    draws = _per_draw(cost, mu, sigma, estimator, parameter, eps, weights, baseline)
    mean = float((weights * draws).sum())
    second = float((weights * draws * draws).sum())
    return max(second - mean * mean, 0.0)


def log_variance_ratio(
    family: GaussianCost, k, mu, sigma, parameter: str, baseline: str | None = None
) -> float:
    """``log V_pathwise - log V_score`` at ``k``: negative where pathwise wins."""
    cost = _check_cost(family, "family").with_k(as_real_scalar(k, "k"))
    pathwise = hermite_variance(cost, mu, sigma, "pathwise", parameter)
    score = hermite_variance(cost, mu, sigma, "score", parameter, baseline=baseline)
    if pathwise <= 0.0 or score <= 0.0:
        raise ValueError(
            f"a variance is zero at k = {k}; the log ratio is undefined there"
        )
    return math.log(pathwise) - math.log(score)


def crossover(
    family: GaussianCost,
    bracket: tuple[float, float],
    mu=1.0,
    sigma=1.0,
    *,
    parameter: str,
    xtol: float = 1e-10,
    baseline: str | None = None,
) -> float:
    """The k in ``bracket`` where the pathwise and score-function variances are equal.

    ``baseline`` is the score function's (see :func:`hermite_variance`).

    ``bracket = (left, right)`` must hold a sign change of :func:`log_variance_ratio`
    (find one on a grid of exact variances first); otherwise ``ValueError``.
    """
    _check_cost(family, "family")
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    if not isinstance(bracket, tuple | list) or len(bracket) != 2:
        raise TypeError(f"bracket must be a pair (left, right), got {bracket!r}")
    left, right = (as_real_scalar(v, "bracket") for v in bracket)
    if not left < right:
        raise ValueError(
            f"bracket must be (left, right) with left < right, got {bracket}"
        )
    _check_baseline("score", baseline)

    def ratio(k):
        return log_variance_ratio(family, k, mu, sigma, parameter, baseline)

    at_left, at_right = ratio(left), ratio(right)
    if at_left * at_right > 0.0:
        raise ValueError(
            f"no sign change of the log variance ratio in {bracket}: "
            f"{at_left:.3g} and {at_right:.3g}"
        )
    return float(brentq(ratio, left, right, xtol=xtol))


def crossovers_on_grid(
    family: GaussianCost,
    k_grid,
    mu=1.0,
    sigma=1.0,
    *,
    parameter: str,
    baseline: str | None = None,
) -> tuple[float, ...]:
    """Every crossover that a grid of k brackets: one root of
    :func:`log_variance_ratio` inside each pair of neighbouring grid values where its
    sign changes, in increasing order (empty if the sign never changes on the grid).

    A grid too coarse to separate two crossovers misses both; the chapter checks the
    roots it uses against :func:`reparam.variance.exact_variance`.
    """
    _check_cost(family, "family")
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    grid = as_real_array(k_grid, "k_grid")
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(
            f"k_grid must be a finite 1-d grid of >= 2 values, got {k_grid}"
        )
    if not np.all(np.diff(grid) > 0):
        raise ValueError("k_grid must be increasing")
    signs = np.sign(
        [log_variance_ratio(family, k, mu, sigma, parameter, baseline) for k in grid]
    )
    return tuple(
        crossover(family, (grid[i], grid[i + 1]), mu, sigma, parameter=parameter,
                  baseline=baseline)
        for i in np.flatnonzero(signs[:-1] * signs[1:] < 0)
    )
