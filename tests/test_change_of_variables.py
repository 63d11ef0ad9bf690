"""pushforward_density against sympy.stats, which nobody here wrote."""

from __future__ import annotations

import math

import pytest
import sympy as sp
from scipy import integrate
from sympy import stats

from reparam.change_of_variables import (
    derive_pushforward,
    linear_log_density,
    linear_pushforward_density,
    pushforward_density,
)

x = sp.Symbol("x", real=True)
y = sp.Symbol("y", real=True)
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)
lam = sp.Symbol("lambda", positive=True)


def same(a, b, symbol=y, points=(-1.7, -0.3, 0.4, 1.0, 2.5)):
    """Symbolically equal, or (when simplify is not enough) equal at several points."""
    difference = sp.simplify(a - b)
    if difference == 0:
        return True
    values = {mu: sp.Rational(3, 10), sigma: sp.Rational(7, 5), lam: sp.Rational(5, 2)}
    return all(abs(complex(sp.N((a - b).subs(values).subs(symbol, p)))) < 1e-12 for p in points)


def normal_density(mean, sd, symbol=x):
    return stats.density(stats.Normal("X", mean, sd))(symbol)


def test_standardizing_a_normal_gives_the_standard_normal():
    result = pushforward_density(normal_density(mu, sigma), x, (x - mu) / sigma, y)
    reference = stats.density((stats.Normal("X", mu, sigma) - mu) / sigma)(y)
    assert same(result, reference)
    assert same(result, normal_density(0, 1, y))
    assert sp.integrate(result, (y, -sp.oo, sp.oo)) == 1


def test_a_decreasing_affine_map():
    h = 3 - 2 * x
    result = pushforward_density(normal_density(mu, sigma), x, h, y)
    reference = stats.density(3 - 2 * stats.Normal("X", mu, sigma))(y)
    assert same(result, reference)
    assert derive_pushforward(normal_density(mu, sigma), x, h, y).direction == "decreasing"


def test_exp_changes_the_support_to_the_positive_half_line():
    result = pushforward_density(normal_density(0, 1), x, sp.exp(x), y)
    assert isinstance(result, sp.Piecewise)
    reference = stats.density(stats.LogNormal("L", 0, 1))(y)
    assert same(result.args[0][0], reference, points=(0.2, 1.0, 3.5))
    assert result.subs(y, -1) == 0
    y_positive = sp.Symbol("y", positive=True)
    plain = pushforward_density(normal_density(0, 1), x, sp.exp(x), y_positive)
    assert not isinstance(plain, sp.Piecewise)
    total, _ = integrate.quad(sp.lambdify(y_positive, plain), 0, math.inf)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_inverse_cdf_map_from_a_uniform_is_exponential():
    u = sp.Symbol("u", real=True)
    h = -sp.log(u) / lam  # the inverse CDF of Exp(lambda) applied to 1 - U: decreasing in u
    steps = derive_pushforward(sp.S.One, u, h, y, support=sp.Interval.open(0, 1))
    assert steps.direction == "decreasing"
    assert steps.support_y == sp.Interval.open(0, sp.oo)
    y_positive = sp.Symbol("y", positive=True)
    result = pushforward_density(sp.S.One, u, h, y_positive, support=sp.Interval.open(0, 1))
    reference = stats.density(stats.Exponential("E", lam))(y_positive)
    assert sp.simplify(result - reference) == 0


def test_derivation_steps_are_consistent():
    steps = derive_pushforward(normal_density(mu, sigma), x, (x - mu) / sigma, y)
    assert sp.simplify(steps.inverse - (sigma * y + mu)) == 0
    assert steps.inverse_derivative == sigma
    assert sp.simplify(steps.unsimplified - steps.density) == 0
    assert steps.direction == "increasing"


@pytest.mark.parametrize("h, reason", [
    (x**2, "not strictly monotone"),
    (sp.sin(x), "not strictly monotone"),
    (sp.S(3) + 0 * x, "constant"),
    (sp.Abs(x), "not strictly monotone"),
])
def test_non_monotone_maps_raise_a_clear_error(h, reason):
    with pytest.raises(ValueError, match=reason):
        pushforward_density(normal_density(0, 1), x, h, y)


def test_x_squared_is_fine_on_the_positive_half_line():
    x_positive = sp.Symbol("x", positive=True)
    f_x = sp.exp(-x_positive)  # Exp(1)
    y_positive = sp.Symbol("y", positive=True)
    result = pushforward_density(f_x, x_positive, x_positive**2, y_positive)
    # sympy.stats.density(Exponential**2) keeps the x < 0 branch, so compare with the law of
    # E**2 written from its CDF 1 - exp(-sqrt(y)): a Weibull with shape 1/2 and scale 1.
    reference = stats.density(stats.Weibull("W", 1, sp.Rational(1, 2)))(y_positive)
    assert same(result, reference, symbol=y_positive, points=(0.3, 1.2, 4.0))


@pytest.mark.parametrize("args, error", [
    (("f", x, x, y), TypeError),
    ((object(), x, x, y), TypeError),
    ((sp.S.One, "x", x, y), TypeError),
    ((sp.S.One, x, x, x), ValueError),
    ((sp.S.One, sp.Symbol("z"), sp.Symbol("z"), y), ValueError),  # no real assumption
    ((sp.S.One, x, x + y, y), ValueError),
])
def test_bad_arguments(args, error):
    with pytest.raises(error):
        pushforward_density(*args)


e1, e2, z1, z2 = sp.symbols("e1 e2 z1 z2", real=True)
a, b, c = sp.symbols("a b c", positive=True)
STANDARD_2D = sp.exp(-(e1**2 + e2**2) / 2) / (2 * sp.pi)


def test_linear_map_matches_sympy_multivariate_normal():
    L = sp.Matrix([[a, 0], [b, c]])
    m = sp.Matrix([1, -2])
    q = linear_pushforward_density(STANDARD_2D, [e1, e2], m, L, [z1, z2])
    reference = stats.density(stats.MultivariateNormal("M", m, L * L.T))(z1, z2)
    assert sp.simplify(q - reference) == 0


def test_linear_log_density_is_the_log_of_the_density():
    L = sp.Matrix([[2, 1], [0, -3]])  # negative determinant: the absolute value matters
    m = sp.Matrix([sp.Rational(1, 2), 1])
    q = linear_pushforward_density(STANDARD_2D, [e1, e2], m, L, [z1, z2])
    log_q = linear_log_density(sp.log(STANDARD_2D), [e1, e2], m, L, [z1, z2])
    point = {z1: sp.Rational(3, 7), z2: -sp.Rational(5, 3)}
    assert abs(sp.N(sp.log(q.subs(point)) - log_q.subs(point))) < 1e-14
    total = sp.integrate(q, (z1, -sp.oo, sp.oo), (z2, -sp.oo, sp.oo))
    assert sp.simplify(total.rewrite(sp.erf)) == 1  # erfc(a) = 1 - erf(a)


def test_linear_map_errors():
    with pytest.raises(ValueError, match="singular"):
        linear_pushforward_density(STANDARD_2D, [e1, e2], [0, 0], [[1, 2], [2, 4]], [z1, z2])
    with pytest.raises(ValueError, match="2x2"):
        linear_pushforward_density(STANDARD_2D, [e1, e2], [0, 0], [[1, 0, 0]], [z1, z2])
    with pytest.raises(ValueError, match="same non-zero length"):
        linear_pushforward_density(STANDARD_2D, [e1, e2], [0, 0], sp.eye(2), [z1])
    with pytest.raises(ValueError, match="mu must have 2"):
        linear_pushforward_density(STANDARD_2D, [e1, e2], [0, 0, 0], sp.eye(2), [z1, z2])
