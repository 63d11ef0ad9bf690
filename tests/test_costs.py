"""The closed forms in reparam.costs against scipy quadrature."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from scipy import integrate, stats

from reparam import costs

SETTINGS = [(1.0, 1.0), (-0.7, 0.4), (2.3, 1.9)]
FAMILIES = [
    costs.square.with_k(0.5),
    costs.gaussian_bump.with_k(1.5),
    costs.cosine.with_k(2.0),
    costs.step.with_k(0.3),
    costs.absolute.with_k(0.5),
]


def _f(cost):
    return lambda v: float(cost(torch.tensor([v], dtype=torch.float64))[0])


def _quad(function, mu, sigma, cost):
    breakpoints = [cost.k] if cost.name in ("step", "absolute") else None
    lower, upper = mu - 12 * sigma, mu + 12 * sigma
    value, error = integrate.quad(
        function,
        lower,
        upper,
        points=breakpoints,
        limit=400,
        epsabs=1e-13,
        epsrel=1e-12,
    )
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
    # d/dtheta E[f] = integral of f(x) d/dtheta N(x | mu, sigma^2): no derivative of f.
    f = _f(cost)
    d_mu = lambda v: stats.norm.pdf(v, mu, sigma) * (v - mu) / sigma**2  # noqa: E731
    d_sigma = lambda v: (
        stats.norm.pdf(v, mu, sigma) * ((v - mu) ** 2 / sigma**3 - 1 / sigma)
    )  # noqa: E731
    reference = (
        _quad(lambda v: f(v) * d_mu(v), mu, sigma, cost),
        _quad(lambda v: f(v) * d_sigma(v), mu, sigma, cost),
    )
    assert cost.gradient(mu, sigma) == pytest.approx(reference, rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("cost", FAMILIES, ids=lambda c: c.name)
def test_sympy_expression_agrees_with_torch(cost):
    x = sp.Symbol("x", real=True)
    expression = sp.lambdify(
        x,
        cost.sympy_expr(x),
        modules=["math", {"Heaviside": lambda t, at_zero=0.5: float(t > 0)}],
    )
    for v in (-1.3, 0.2, 0.9, 2.4):
        assert expression(v) == pytest.approx(_f(cost)(v), rel=1e-14, abs=1e-14)


def test_step_gradient_in_mu_is_the_density_at_k():
    cost = costs.step.with_k(0.5)
    assert cost.gradient(1.0, 2.0)[0] == pytest.approx(
        stats.norm.pdf(0.5, 1.0, 2.0), rel=1e-14
    )


def test_cost_validation():
    with pytest.raises(ValueError, match="sigma"):
        costs.square.expectation(0.0, -1.0)
    with pytest.raises(ValueError, match="mu"):
        costs.cosine.gradient(math.nan, 1.0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        costs.gaussian_bump.with_k(-1.0)


def test_absolute_expectation_against_scipy_folded_normal():
    # |X - k| with X - k ~ N(mu - k, sigma^2) is folded normal: scipy.stats.foldnorm.
    for mu, sigma, k in (
        (0.0, 1.0, 0.5),
        (1.3, 0.7, -0.4),
        (-2.0, 2.5, 1.0),
        (0.5, 0.3, 0.5),
    ):
        reference = stats.foldnorm.mean(abs(mu - k) / sigma, scale=sigma)
        assert costs.absolute.with_k(k).expectation(mu, sigma) == pytest.approx(
            reference, rel=1e-12
        )


def test_absolute_gradient_against_finite_differences_of_the_closed_form():
    cost, h = costs.absolute.with_k(0.5), 1e-6
    for mu, sigma in SETTINGS:
        d_mu = (cost.expectation(mu + h, sigma) - cost.expectation(mu - h, sigma)) / (
            2 * h
        )
        d_sigma = (
            cost.expectation(mu, sigma + h) - cost.expectation(mu, sigma - h)
        ) / (2 * h)
        assert cost.gradient(mu, sigma) == pytest.approx((d_mu, d_sigma), rel=1e-7)


def test_absolute_is_not_symmetric_in_mu_and_k_by_accident():
    # A wrong sign of d = mu - k would pass at mu = k; check both sides of the kink.
    cost = costs.absolute.with_k(1.0)
    below, above = cost.gradient(0.0, 1.0), cost.gradient(2.0, 1.0)
    assert below[0] == pytest.approx(-above[0], rel=1e-14) and below[0] < 0
    assert below[1] == pytest.approx(above[1], rel=1e-14)
    assert cost.expectation(1.0, 1.0) == pytest.approx(
        2 * stats.norm.pdf(0.0), rel=1e-14
    )


def test_absolute_pathwise_rows_are_sign_times_path_derivative():
    from reparam.estimators import draw_standard_normal, pathwise_grad

    cost = costs.absolute.with_k(0.5)
    rows = pathwise_grad(cost, 0.2, 1.3, 7, torch.Generator().manual_seed(4))
    eps = draw_standard_normal(7, torch.Generator().manual_seed(4))
    sign = torch.sign(0.2 + 1.3 * eps - 0.5)
    assert torch.equal(rows, torch.stack((sign, sign * eps), dim=1))


def test_absolute_pathwise_is_unbiased():
    from reparam.estimators import pathwise_grad, summarize

    cost = costs.absolute.with_k(0.5)
    for n, seed in ((50, 1), (200_000, 2)):
        summary = summarize(
            pathwise_grad(cost, 0.0, 1.0, n, torch.Generator().manual_seed(seed))
        )
        assert summary.within(cost.gradient(0.0, 1.0), 4.0)
