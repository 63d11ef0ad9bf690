"""The closed forms in reparam.costs against scipy quadrature."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from scipy import integrate, stats

from reparam import costs

SETTINGS = [(1.0, 1.0), (-0.7, 0.4), (2.3, 1.9)]
FAMILIES = [costs.square.with_k(0.5), costs.gaussian_bump.with_k(1.5), costs.cosine.with_k(2.0),
            costs.step.with_k(0.3)]


def _f(cost):
    return lambda v: float(cost(torch.tensor([v], dtype=torch.float64))[0])


def _quad(function, mu, sigma, cost):
    breakpoints = [cost.k] if cost.name == "step" else None
    lower, upper = mu - 12 * sigma, mu + 12 * sigma
    value, error = integrate.quad(function, lower, upper, points=breakpoints, limit=400,
                                  epsabs=1e-13, epsrel=1e-12)
    return value


@pytest.mark.parametrize("cost", FAMILIES, ids=lambda c: c.name)
@pytest.mark.parametrize("mu, sigma", SETTINGS)
def test_expectation_matches_quadrature(cost, mu, sigma):
    f = _f(cost)
    reference = _quad(lambda v: f(v) * stats.norm.pdf(v, mu, sigma), mu, sigma, cost)
    assert cost.expectation(mu, sigma) == pytest.approx(reference, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("cost", FAMILIES, ids=lambda c: c.name)
@pytest.mark.parametrize("mu, sigma", SETTINGS)
def test_gradient_matches_quadrature(cost, mu, sigma):
    # d/dtheta E[f] = integral of f(x) d/dtheta N(x | mu, sigma^2): needs no derivative of f.
    f = _f(cost)
    d_mu = lambda v: stats.norm.pdf(v, mu, sigma) * (v - mu) / sigma**2  # noqa: E731
    d_sigma = lambda v: stats.norm.pdf(v, mu, sigma) * ((v - mu) ** 2 / sigma**3 - 1 / sigma)  # noqa: E731
    reference = (_quad(lambda v: f(v) * d_mu(v), mu, sigma, cost),
                 _quad(lambda v: f(v) * d_sigma(v), mu, sigma, cost))
    assert cost.gradient(mu, sigma) == pytest.approx(reference, rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("cost", FAMILIES, ids=lambda c: c.name)
def test_sympy_expression_agrees_with_torch(cost):
    x = sp.Symbol("x", real=True)
    expression = sp.lambdify(x, cost.sympy_expr(x), modules=["math", {"Heaviside": lambda t, at_zero=0.5: float(t > 0)}])
    for v in (-1.3, 0.2, 0.9, 2.4):
        assert expression(v) == pytest.approx(_f(cost)(v), rel=1e-14, abs=1e-14)


def test_step_gradient_in_mu_is_the_density_at_k():
    cost = costs.step.with_k(0.5)
    assert cost.gradient(1.0, 2.0)[0] == pytest.approx(stats.norm.pdf(0.5, 1.0, 2.0), rel=1e-14)


def test_cost_validation():
    with pytest.raises(ValueError, match="sigma"):
        costs.square.expectation(0.0, -1.0)
    with pytest.raises(ValueError, match="mu"):
        costs.cosine.gradient(math.nan, 1.0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        costs.gaussian_bump.with_k(-1.0)
