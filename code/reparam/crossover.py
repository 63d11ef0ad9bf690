r"""Crossovers by root finding: where the score function beats the pathwise estimator.

For a cost family :math:`f_k` and a parameter :math:`\theta\in\{\mu,\sigma\}`, a
crossover is a root in :math:`k` of

.. math::

    d(k) = \log V_{\text{pathwise}}(k) - \log V_{\text{score}}(k),

where :math:`V` is the exact per-draw variance of the estimator of
:math:`\partial_\theta\,\mathbb E_{\mathcal N(\mu,\sigma^2)}[f_k]` (no baseline). The
log ratio is used because the variances span many orders of magnitude; its sign says
which estimator wins. ``scipy.optimize.brentq`` finds the root inside a bracket where
the sign changes.

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

from ._validation import as_real_scalar, check_scale
from .costs import GaussianCost

__all__ = ["hermite_variance", "log_variance_ratio", "crossover"]

PARAMETERS = ("mu", "sigma")
ESTIMATORS = ("pathwise", "score")
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
) -> torch.Tensor:
    """One draw of the estimator at each eps (pathwise: autograd's f'; score: f * s)."""
    if estimator == "pathwise":
        x = (mu + sigma * eps).requires_grad_(True)
        out = cost(x)
        if not out.requires_grad:  # a cost that cuts the graph has derivative 0 a.e.
            return torch.zeros_like(eps)
        (derivative,) = torch.autograd.grad(out.sum(), x)
        return derivative if parameter == "mu" else derivative * eps
    values = cost(mu + sigma * eps)
    score = eps / sigma if parameter == "mu" else (eps * eps - 1.0) / sigma
    return values * score


def hermite_variance(
    cost: GaussianCost, mu, sigma, estimator: str, parameter: str, nodes: int = NODES
) -> float:
    """Per-draw variance of an estimator by Gauss-Hermite quadrature.

    Accurate when the per-draw function is smooth and varies slowly on the scale of the
    nodes' spacing near the centre (the costs of chapter 4 at k <= 3); a kink in f'
    (|x - k|) or a very narrow bump needs adaptive quadrature,
    :func:`reparam.variance.exact_variance`.
    """
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if parameter not in PARAMETERS:
        raise ValueError(f"parameter must be one of {PARAMETERS}, got {parameter!r}")
    if not cost.differentiable:
        raise ValueError(
            f"Gauss-Hermite quadrature needs a smooth cost, got {cost.name!r}"
        )
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 2:
        raise ValueError(f"nodes must be an integer >= 2, got {nodes!r}")
    eps, weights = _hermite_rule(nodes)
    draws = _per_draw(cost, mu, sigma, estimator, parameter, eps)
    mean = float((weights * draws).sum())
    second = float((weights * draws * draws).sum())
    return max(second - mean * mean, 0.0)


def log_variance_ratio(family: GaussianCost, k, mu, sigma, parameter: str) -> float:
    """``log V_pathwise - log V_score`` at ``k``: negative where pathwise wins."""
    cost = family.with_k(as_real_scalar(k, "k"))
    pathwise = hermite_variance(cost, mu, sigma, "pathwise", parameter)
    score = hermite_variance(cost, mu, sigma, "score", parameter)
    if pathwise <= 0.0 or score <= 0.0:
        raise ValueError(
            f"a variance is zero at k = {k}; the log ratio is undefined there"
        )
    return math.log(pathwise) - math.log(score)


def crossover(
    family: GaussianCost,
    parameter: str,
    bracket: tuple[float, float],
    mu=1.0,
    sigma=1.0,
    xtol: float = 1e-10,
) -> float:
    """The k in ``bracket`` where the pathwise and score-function variances are equal.

    ``bracket = (left, right)`` must hold a sign change of :func:`log_variance_ratio`
    (find one on a grid of exact variances first); otherwise ``ValueError``.
    """
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    left, right = (as_real_scalar(v, "bracket") for v in bracket)
    if not left < right:
        raise ValueError(
            f"bracket must be (left, right) with left < right, got {bracket}"
        )
    ratio = lambda k: log_variance_ratio(family, k, mu, sigma, parameter)  # noqa: E731
    at_left, at_right = ratio(left), ratio(right)
    if at_left * at_right > 0.0:
        raise ValueError(
            f"no sign change of the log variance ratio in {bracket}: "
            f"{at_left:.3g} and {at_right:.3g}"
        )
    return float(brentq(ratio, left, right, xtol=xtol))
