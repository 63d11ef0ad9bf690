"""The closed forms in reparam.costs against scipy quadrature; and the Cantor function
of Chapter 3 against its defining identities and the Cantor law it is the distribution
function of."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from scipy import integrate, stats

from reparam import costs
from reparam.costs import cantor
from reparam.estimators import draw_standard_normal, pathwise_grad, summarize

F64 = torch.float64

SETTINGS = [(1.0, 1.0), (-0.7, 0.4), (2.3, 1.9)]
FAMILIES = [
    costs.square.with_k(0.5),
    costs.gaussian_bump.with_k(1.5),
    costs.cosine.with_k(1.5),  # (not k = 2, where k**2 = 2 * k would hide a slip)
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
    cost = costs.absolute.with_k(0.5)
    rows = pathwise_grad(cost, 0.2, 1.3, 7, torch.Generator().manual_seed(4))
    eps = draw_standard_normal(7, torch.Generator().manual_seed(4))
    sign = torch.sign(0.2 + 1.3 * eps - 0.5)
    assert torch.equal(rows, torch.stack((sign, sign * eps), dim=1))


def test_absolute_pathwise_is_unbiased():
    cost = costs.absolute.with_k(0.5)
    for n, seed in ((50, 1), (200_000, 2)):
        summary = summarize(
            pathwise_grad(cost, 0.0, 1.0, n, torch.Generator().manual_seed(seed))
        )
        assert summary.within(cost.gradient(0.0, 1.0), 4.0)


def test_features_are_the_jump_the_kink_and_the_bumps_shape_at_the_new_k():
    # with_k must carry the features along and evaluate them at the new k.
    assert costs.step.with_k(0.3).features() == (0.3,)
    assert costs.absolute.with_k(-1.2).features() == (-1.2,)
    assert costs.square.with_k(2.0).features() == costs.cosine.features() == ()
    assert costs.gaussian_bump.with_k(0.0).features() == ()  # a constant
    x, k = sp.symbols("x k", positive=True)
    bump = costs.gaussian_bump.sympy_expr(x, k)
    (steepest,) = sp.solve(sp.diff(bump, x, 2), x)  # where the slope is extreme
    for value in (0.5, 8.0, 1e4):
        tail, slope, peak = costs.gaussian_bump.with_k(value).features()[2:][::-1]
        assert peak == 0.0
        assert slope == pytest.approx(float(steepest.subs(k, value)), rel=1e-14)
        assert float(bump.subs({k: value, x: tail})) == pytest.approx(math.exp(-36),
                                                                      rel=1e-12)
        assert costs.gaussian_bump.with_k(value).features()[:2] == (-tail, -slope)


# The Cantor function (Chapter 3).


def cantor_values(points, **options):
    return cantor(torch.tensor(points, dtype=F64), **options).numpy()


def test_cantor_known_values():
    # C(1/4) = 1/3, C(3/4) = 2/3, C(1/10) = 1/5 (0.0022... in base 3, 0.0011... in
    # base 2), the ends, and the flat middle third. 0.1 and 0.9 are not exact in
    # float64, and C is only Hoelder of order log 2/log 3: a 1e-17 error in x moves C
    # by up to about 1e-10.
    points = [0.0, 0.25, 0.75, 0.1, 0.9, 1.0, 0.4, 0.5, 0.6]
    expected = [0.0, 1 / 3, 2 / 3, 0.2, 0.8, 1.0, 0.5, 0.5, 0.5]
    np.testing.assert_allclose(cantor_values(points), expected, rtol=0, atol=1e-10)
    assert cantor_values([0.0, 1.0]).tolist() == [0.0, 1.0]  # exactly


def test_cantor_zero_below_and_one_above_the_unit_interval():
    outside = cantor_values([-3.0, -1e-9, 1 + 1e-9, 7.0])
    np.testing.assert_array_equal(outside, [0, 0, 1, 1])


def test_cantor_constant_on_removed_intervals():
    # (1/9, 2/9) -> 1/4, (1/3, 2/3) -> 1/2, (7/9, 8/9) -> 3/4, (19/27, 20/27) -> 5/8
    for (a, b), level in (((1 / 9, 2 / 9), 0.25), ((1 / 3, 2 / 3), 0.5),
                          ((7 / 9, 8 / 9), 0.75), ((19 / 27, 20 / 27), 0.625)):
        inside = np.linspace(a, b, 12)[1:-1]
        np.testing.assert_allclose(cantor_values(inside), level, rtol=0, atol=1e-12)


def test_cantor_the_self_similarity_that_defines_it():
    # C(x/3) = C(x)/2, C(2/3 + x/3) = 1/2 + C(x)/2, C(1 - x) = 1 - C(x). C is Hoelder
    # of order log 2/log 3, so a rounding of 1e-16 in x moves C by up to ~1e-10.
    x = np.random.default_rng(3).uniform(0, 1, 2_000)
    c = cantor_values(x)
    np.testing.assert_allclose(cantor_values(x / 3), c / 2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cantor_values(2 / 3 + x / 3), 0.5 + c / 2, rtol=0,
                               atol=1e-9)
    np.testing.assert_allclose(cantor_values(1 - x), 1 - c, rtol=0, atol=1e-9)


def test_cantor_nondecreasing():
    grid = np.linspace(-0.1, 1.1, 20_001)
    assert np.all(np.diff(cantor_values(grid)) >= 0)


def test_cantor_is_the_distribution_function_of_the_cantor_law():
    # Y = sum 2 b_i 3^-i with fair bits b_i: P(Y <= x) = C(x), within 4 binomial
    # standard errors at each point.
    bits = np.random.default_rng(11).integers(0, 2, (200_000, 40))
    y = (2 * bits) @ (3.0 ** -np.arange(1, 41))
    points = np.array([0.05, 0.2, 0.3, 0.5, 0.71, 0.8, 0.95])
    empirical = (y[:, None] <= points).mean(axis=0)
    c = cantor_values(points)
    standard_error = np.sqrt(c * (1 - c) / len(y))
    assert np.all(np.abs(empirical - c) <= 4 * standard_error + 1e-12), (empirical, c)


def test_cantor_depth_truncates_within_two_to_the_minus_depth():
    x = np.random.default_rng(5).uniform(0, 1, 500)
    full = cantor_values(x)
    for depth in (1, 3, 10):
        gap = np.abs(cantor_values(x, depth=depth) - full)
        assert gap.max() <= 2.0**-depth + 1e-15
    assert np.any(cantor_values(x, depth=3) != full)  # truncation does change values


def test_cantor_the_pathwise_gradient_through_it_is_zero():
    rows = pathwise_grad(cantor, 0.5, 0.3, 1_000, torch.Generator().manual_seed(0))
    assert torch.equal(rows, torch.zeros(1_000, 2, dtype=F64))
    x = torch.tensor([0.2, 0.5], dtype=F64, requires_grad=True)
    assert not cantor(x).requires_grad


def test_cantor_infinities_are_the_limits():
    assert cantor_values([-np.inf, np.inf]).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("bad, error", [([0.5], TypeError),
                                        (torch.tensor([1, 2]), TypeError),
                                        (torch.tensor([0.5, np.nan]), ValueError)])
def test_cantor_bad_x(bad, error):
    with pytest.raises(error, match="x"):
        cantor(bad)


@pytest.mark.parametrize("depth, error", [(0, ValueError), (True, TypeError),
                                          (2.0, TypeError)])
def test_cantor_bad_depth(depth, error):
    with pytest.raises(error, match="depth"):
        cantor(torch.tensor([0.5], dtype=F64), depth=depth)
