"""Crossovers of the exact variances: Gauss-Hermite against reparam.variance."""

from __future__ import annotations

import math

import pytest

from reparam import costs
from reparam.crossover import crossover, hermite_variance, log_variance_ratio
from reparam.variance import exact_variance

CASES = [
    (costs.cosine, 0.5),
    (costs.cosine, 2.0),
    (costs.gaussian_bump, 0.3),
    (costs.gaussian_bump, 2.0),
    (costs.square, -1.0),
]


@pytest.mark.parametrize("family, k", CASES, ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("estimator", ["pathwise", "score"])
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_hermite_variance_matches_adaptive_quadrature(family, k, estimator, parameter):
    cost = family.with_k(k)
    assert hermite_variance(cost, 0.7, 1.1, estimator, parameter) == pytest.approx(
        exact_variance(cost, 0.7, 1.1, estimator, parameter), rel=1e-9
    )


def test_square_pathwise_variance_in_closed_form():
    # f' = 2(x - k): Var[f'] = 4 sigma^2, Var[f' eps] = 4((mu-k)^2 + 2 sigma^2).
    cost, mu, sigma, k = costs.square.with_k(0.3), 1.2, 0.8, 0.3
    assert hermite_variance(cost, mu, sigma, "pathwise", "mu") == pytest.approx(
        4 * sigma**2, rel=1e-12
    )
    assert hermite_variance(cost, mu, sigma, "pathwise", "sigma") == pytest.approx(
        4 * ((mu - k) ** 2 + 2 * sigma**2), rel=1e-12
    )


@pytest.mark.parametrize(
    "family, parameter, bracket, expected",
    [
        (costs.cosine, "mu", (0.68, 1.47), 1.0638),
        (costs.cosine, "sigma", (0.68, 1.47), 1.2973),
        (costs.gaussian_bump, "mu", (0.6, 1.2), 0.8700),
        (costs.gaussian_bump, "sigma", (0.6, 1.2), 1.0028),
    ],
)
def test_crossovers_equalize_the_exact_variances(family, parameter, bracket, expected):
    root = crossover(family, parameter, bracket)
    assert root == pytest.approx(expected, abs=1e-4)
    cost = family.with_k(root)
    assert exact_variance(cost, 1.0, 1.0, "pathwise", parameter) == pytest.approx(
        exact_variance(cost, 1.0, 1.0, "score", parameter), rel=1e-8
    )
    # and the sign really changes there: pathwise wins just below, loses just above
    assert log_variance_ratio(family, root - 0.01, 1.0, 1.0, parameter) < 0
    assert log_variance_ratio(family, root + 0.01, 1.0, 1.0, parameter) > 0


def test_crossover_depends_on_mu_and_sigma():
    assert crossover(
        costs.cosine, "mu", (0.3, 3.0), mu=0.5, sigma=0.5
    ) != pytest.approx(crossover(costs.cosine, "mu", (0.3, 3.0)), abs=1e-2)


@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_cosine_crossover_scales_exactly_with_mu_and_sigma(parameter):
    # With mu = sigma = c, k x = (k c)(1 + eps): both per-draw functions at k are 1/c
    # times those at k c with mu = sigma = 1, so the crossover is the old one over c.
    at_one = crossover(costs.cosine, parameter, (0.68, 1.47))
    at_half = crossover(costs.cosine, parameter, (1.36, 2.94), mu=0.5, sigma=0.5)
    assert at_half == pytest.approx(2.0 * at_one, rel=1e-8)


def test_crossover_needs_a_sign_change():
    with pytest.raises(ValueError, match="no sign change"):
        crossover(costs.square, "mu", (0.5, 2.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bracket": (2.0, 1.0)}, "left < right"),
        ({"bracket": (math.nan, 1.0)}, "bracket"),
        ({"sigma": 0.0}, "sigma"),
        ({"parameter": "k"}, "parameter"),
    ],
)
def test_bad_inputs(kwargs, match):
    arguments = {
        "family": costs.cosine,
        "parameter": "mu",
        "bracket": (0.5, 2.0),
    } | kwargs
    with pytest.raises(ValueError, match=match):
        crossover(**arguments)


def test_hermite_variance_refuses_a_step_and_bad_arguments():
    with pytest.raises(ValueError, match="smooth"):
        hermite_variance(costs.step, 0.0, 1.0, "pathwise", "mu")
    with pytest.raises(ValueError, match="estimator"):
        hermite_variance(costs.cosine, 0.0, 1.0, "reinforce", "mu")
    with pytest.raises(ValueError, match="nodes"):
        hermite_variance(costs.cosine, 0.0, 1.0, "score", "mu", nodes=1)
