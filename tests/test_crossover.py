"""Crossovers of the exact variances: Gauss-Hermite against reparam.variance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reparam import costs
from reparam.crossover import (
    crossover,
    crossovers_on_grid,
    hermite_variance,
    log_variance_ratio,
)
from reparam.variance import exact_variance, optimal_baseline

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


@pytest.mark.parametrize("mu", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_hermite_log_ratio_of_the_bump_up_to_the_chapters_crossovers(mu, parameter):
    # The docstring's range: Chapter 4's bump (sigma = 1) up to k = 6.6.
    for k in (1.0, 3.0, 6.6):
        cost = costs.gaussian_bump.with_k(k)
        exact = math.log(exact_variance(cost, mu, 1.0, "pathwise", parameter)
                         / exact_variance(cost, mu, 1.0, "score", parameter))
        assert abs(log_variance_ratio(costs.gaussian_bump, k, mu, 1.0, parameter)
                   - exact) < 5e-4, (k, mu, parameter)


@pytest.mark.parametrize("family, k", CASES, ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_baselined_hermite_variance_matches_adaptive_quadrature(family, k, parameter):
    cost = family.with_k(k)
    for baseline, b in (
        ("mean", cost.expectation(0.7, 1.1)),
        ("optimal", optimal_baseline(cost, 0.7, 1.1, parameter)),
    ):
        assert hermite_variance(
            cost, 0.7, 1.1, "score", parameter, baseline=baseline
        ) == pytest.approx(
            exact_variance(cost, 0.7, 1.1, "score", parameter, baseline=b), rel=1e-9
        )


def test_the_optimal_baseline_gives_the_smallest_hermite_variance():
    cost = costs.cosine.with_k(0.8)
    variances = [hermite_variance(cost, 0.3, 1.0, "score", "sigma", baseline=b)
                 for b in (None, "mean", "optimal")]
    assert variances[2] < min(variances[:2])


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
    root = crossover(family, bracket, parameter=parameter)
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
        costs.cosine, (0.3, 3.0), mu=0.5, sigma=0.5, parameter="mu"
    ) != pytest.approx(crossover(costs.cosine, (0.3, 3.0), parameter="mu"), abs=1e-2)


@pytest.mark.parametrize("family", [costs.cosine, costs.gaussian_bump],
                         ids=lambda family: family.name)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_mu_and_sigma_passed_by_position_are_not_swapped(family, parameter):
    # At mu = 1, sigma = 0.5 the root equalizes reparam.variance's variances (its own
    # quadrature, called with mu and sigma in their places); at mu = 0.5, sigma = 1 it
    # does not, so a swap inside crossover would fail here.
    (root,) = crossovers_on_grid(family, np.geomspace(0.05, 20.0, 41), 1.0, 0.5,
                                 parameter=parameter)
    root = crossover(family, (0.9 * root, 1.1 * root), 1.0, 0.5, parameter=parameter)
    variances = {(mu, sigma): [exact_variance(family.with_k(root), mu, sigma, which,
                                              parameter)
                               for which in ("pathwise", "score")]
                 for mu, sigma in ((1.0, 0.5), (0.5, 1.0))}
    assert variances[1.0, 0.5][0] == pytest.approx(variances[1.0, 0.5][1], rel=1e-7)
    assert variances[0.5, 1.0][0] != pytest.approx(variances[0.5, 1.0][1], rel=1e-2)


@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_cosine_crossover_scales_exactly_with_mu_and_sigma(parameter):
    # With mu = sigma = c, k x = (k c)(1 + eps): both per-draw functions at k are 1/c
    # times those at k c with mu = sigma = 1, so the crossover is the old one over c.
    at_one = crossover(costs.cosine, (0.68, 1.47), parameter=parameter)
    at_half = crossover(costs.cosine, (1.36, 2.94), mu=0.5, sigma=0.5,
                        parameter=parameter)
    assert at_half == pytest.approx(2.0 * at_one, rel=1e-8)


def test_crossovers_on_grid_finds_the_bracketed_roots_and_only_those():
    grid = [0.3, 0.68, 1.47, 3.0]
    assert crossovers_on_grid(costs.cosine, grid, parameter="mu") == (
        crossover(costs.cosine, (0.68, 1.47), parameter="mu"),
    )
    assert crossovers_on_grid(costs.square, [-3.0, 0.0, 3.0], parameter="mu") == ()
    # the smallest grid, two values, is one bracket
    assert crossovers_on_grid(costs.cosine, [0.68, 1.47], parameter="mu") == (
        crossover(costs.cosine, (0.68, 1.47), parameter="mu"),
    )
    # with a baseline the root moves, and equalizes the baselined exact variances
    (root,) = crossovers_on_grid(costs.gaussian_bump, [0.1, 0.3, 0.6, 1.2],
                                 parameter="mu", baseline="optimal")
    assert root < 0.6
    cost = costs.gaussian_bump.with_k(root)
    b = optimal_baseline(cost, 1.0, 1.0, "mu")
    assert exact_variance(cost, 1.0, 1.0, "pathwise", "mu") == pytest.approx(
        exact_variance(cost, 1.0, 1.0, "score", "mu", baseline=b), rel=1e-8
    )


def test_the_bump_at_mean_zero_has_no_sigma_crossover():
    # At mu = 0 the ratio of the sigma-gradient variances stays below 3/4 (the chapter
    # proves it). The grid stays where 200 Gauss-Hermite nodes resolve the bump.
    grid = [0.01 * 2.0**i for i in range(11)]
    assert crossovers_on_grid(costs.gaussian_bump, grid, mu=0.0,
                              parameter="sigma") == ()
    for k in grid:
        assert log_variance_ratio(costs.gaussian_bump, k, 0.0, 1.0, "sigma") < math.log(
            0.75
        )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"baseline": 0.5}, TypeError, "baseline"),
        ({"baseline": "leave-one-out"}, ValueError, "baseline"),
        ({"estimator": "pathwise", "baseline": "mean"}, ValueError, "score"),
    ],
)
def test_bad_baselines(kwargs, error, match):
    arguments = {"cost": costs.cosine, "mu": 0.0, "sigma": 1.0,
                 "estimator": "score", "parameter": "mu"} | kwargs
    with pytest.raises(error, match=match):
        hermite_variance(**arguments)


@pytest.mark.parametrize(
    "grid", [[1.0], [2.0, 1.0], [0.5, 0.5, 1.0], [0.5, math.inf], [[0.5, 1.0]]])
def test_crossovers_on_grid_refuses_a_bad_grid(grid):
    with pytest.raises(ValueError, match="k_grid"):
        crossovers_on_grid(costs.cosine, grid, parameter="mu")


def test_crossover_needs_a_sign_change():
    with pytest.raises(ValueError, match="no sign change"):
        crossover(costs.square, (0.5, 2.0), parameter="mu")


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


def test_the_log_ratio_is_refused_where_a_variance_is_zero():
    # cos(0 x) = 1: every pathwise draw is 0, so the log of the ratio does not exist;
    # the message says so (not math.log's "math domain error").
    assert hermite_variance(costs.cosine.with_k(0.0), 0.5, 1.0, "pathwise", "mu") == 0
    with pytest.raises(ValueError, match="a variance is zero at k = 0.0"):
        log_variance_ratio(costs.cosine, 0.0, 0.5, 1.0, "mu")


def test_two_hermite_nodes_are_exact_for_the_squares_pathwise_variance():
    # The mu-gradient's pathwise draw 2(x - k) is linear in eps, so its square has
    # degree 2, within the degree 3 that two nodes integrate exactly: the variance,
    # 4 sigma^2, comes out exact.
    cost = costs.square.with_k(0.5)
    assert hermite_variance(cost, 0.4, 1.2, "pathwise", "mu", nodes=2) == (
        pytest.approx(4 * 1.2**2, rel=1e-12))
