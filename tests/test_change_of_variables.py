"""pushforward_density against sympy.stats, which nobody here wrote."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, optimize
from scipy import stats as stats_scipy
from sympy import stats

from reparam.change_of_variables import (
    derive_pushforward,
    linear_log_density,
    linear_pushforward_density,
    pushforward_density,
    support_of,
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
    return all(
        abs(complex(sp.N((a - b).subs(values).subs(symbol, p)))) < 1e-12 for p in points
    )


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
    assert (
        derive_pushforward(normal_density(mu, sigma), x, h, y).direction == "decreasing"
    )


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
    # the inverse CDF of Exp(lambda) applied to 1 - U: decreasing in u
    h = -sp.log(u) / lam
    steps = derive_pushforward(sp.S.One, u, h, y, support=sp.Interval.open(0, 1))
    assert steps.direction == "decreasing"
    assert steps.support_y == sp.Interval.open(0, sp.oo)
    y_positive = sp.Symbol("y", positive=True)
    result = pushforward_density(
        sp.S.One, u, h, y_positive, support=sp.Interval.open(0, 1)
    )
    reference = stats.density(stats.Exponential("E", lam))(y_positive)
    assert sp.simplify(result - reference) == 0


def test_derivation_steps_are_consistent():
    steps = derive_pushforward(normal_density(mu, sigma), x, (x - mu) / sigma, y)
    assert sp.simplify(steps.inverse - (sigma * y + mu)) == 0
    assert steps.inverse_derivative == sigma
    assert sp.simplify(steps.unsimplified - steps.density) == 0
    assert steps.direction == "increasing"


@pytest.mark.parametrize(
    "h, reason",
    [
        (x**2, "not strictly monotone"),
        (sp.sin(x), "not strictly monotone"),
        (sp.S(3) + 0 * x, "constant"),
        (sp.Abs(x), "not strictly monotone"),
    ],
)
def test_non_monotone_maps_raise_a_clear_error(h, reason):
    with pytest.raises(ValueError, match=reason):
        pushforward_density(normal_density(0, 1), x, h, y)


def test_x_squared_is_fine_on_the_positive_half_line():
    x_positive = sp.Symbol("x", positive=True)
    f_x = sp.exp(-x_positive)  # Exp(1)
    y_positive = sp.Symbol("y", positive=True)
    result = pushforward_density(f_x, x_positive, x_positive**2, y_positive)
    # sympy.stats.density(Exponential**2) keeps the x < 0 branch, so compare with the
    # law of E**2 written from its CDF 1 - exp(-sqrt(y)): a Weibull with shape 1/2 and
    # scale 1.
    reference = stats.density(stats.Weibull("W", 1, sp.Rational(1, 2)))(y_positive)
    assert same(result, reference, symbol=y_positive, points=(0.3, 1.2, 4.0))


@pytest.mark.parametrize(
    "args, error",
    [
        (("f", x, x, y), TypeError),
        ((object(), x, x, y), TypeError),
        ((sp.S.One, "x", x, y), TypeError),
        ((sp.S.One, x, x, x), ValueError),
        # no real assumption
        ((sp.S.One, sp.Symbol("z"), sp.Symbol("z"), y), ValueError),
        ((sp.S.One, x, x + y, y), ValueError),
    ],
)
def test_bad_arguments(args, error):
    with pytest.raises(error):
        pushforward_density(*args)


@pytest.mark.parametrize("assumption, support", [
    ("positive", sp.Interval.open(0, sp.oo)), ("nonnegative", sp.Interval(0, sp.oo)),
    ("negative", sp.Interval.open(-sp.oo, 0)), ("nonpositive", sp.Interval(-sp.oo, 0)),
    ("real", sp.S.Reals)])
def test_support_of_reads_each_sign_assumption(assumption, support):
    assert support_of(sp.Symbol("s", **{assumption: True})) == support


def test_the_dummy_for_a_support_carries_its_sign():
    # SymPy's solvers reason from assumptions: a support inside (-oo, 0) must give a
    # negative symbol, one that crosses 0 only a real one.
    from reparam.change_of_variables import _dummy_on

    assert _dummy_on(sp.Interval.open(0, 1)).is_positive
    assert _dummy_on(sp.Interval(0, 1)).is_positive is None  # holds 0
    assert _dummy_on(sp.Interval(-3, -1)).is_negative
    crossing = _dummy_on(sp.Interval.open(-1, sp.Rational(1, 2)))
    assert crossing.is_real and crossing.is_negative is None


@pytest.mark.parametrize("factor", [-1, sp.I, -sp.I])
def test_a_negative_or_complex_density_is_refused(factor):
    # derive_pushforward's last guard: no valid f_X gives such a density, so it is
    # reached here with an f_X that is itself negative or imaginary.
    with pytest.raises(ValueError, match="not a real, non-negative function"):
        pushforward_density(factor * STANDARD_NORMAL, x, 2 * x, y)


@pytest.mark.parametrize("support", [(0, 1), sp.S.Complexes])
def test_a_support_that_is_not_a_set_of_reals_is_a_type_error(support):
    with pytest.raises(TypeError, match="support must be a SymPy subset of the reals"):
        pushforward_density(sp.S.One, x, 2 * x, y, support=support)


e1, e2, z1, z2 = sp.symbols("e1 e2 z1 z2", real=True)
a, b, c = sp.symbols("a b c", positive=True)
STANDARD_2D = sp.exp(-(e1**2 + e2**2) / 2) / (2 * sp.pi)


def test_linear_map_matches_sympy_multivariate_normal():
    L = sp.Matrix([[a, 0], [b, c]])
    m = sp.Matrix([1, -2])
    q = linear_pushforward_density(STANDARD_2D, [e1, e2], m, L, [z1, z2])
    reference = stats.density(stats.MultivariateNormal("M", m, L * L.T))(z1, z2)
    assert sp.simplify(q - reference) == 0
    # mu given as a row is read as the same column
    row = linear_pushforward_density(STANDARD_2D, [e1, e2], m.T, L, [z1, z2])
    assert sp.simplify(row - q) == 0


def test_a_one_dimensional_linear_map_is_the_normal_of_sympy_stats():
    # z = mu + sigma eps, the book's first reparameterization, as a 1 x 1 linear map.
    q = linear_pushforward_density(sp.exp(-(e1**2) / 2) / sp.sqrt(2 * sp.pi), [e1],
                                   [mu], [[sigma]], [z1])
    assert sp.simplify(q - stats.density(stats.Normal("N", mu, sigma))(z1)) == 0


def test_real_odd_roots_take_the_real_branch_and_keep_even_roots():
    # SymPy's y**(1/3) is complex for y < 0; the real cube root is sign(y)|y|**(1/3),
    # and y**(2/3), the square of the real cube root, is |y|**(2/3).
    from reparam.change_of_variables import _real_odd_roots

    third, two_thirds = sp.Rational(1, 3), sp.Rational(2, 3)
    assert _real_odd_roots(y**third) == sp.sign(y) * sp.Abs(y) ** third
    assert _real_odd_roots(y**two_thirds) == sp.Abs(y) ** two_thirds
    assert _real_odd_roots(y ** sp.Rational(1, 2)) == sp.sqrt(y)  # not an odd root
    assert float(_real_odd_roots(y**third).subs(y, -8)) == -2.0


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
        linear_pushforward_density(
            STANDARD_2D, [e1, e2], [0, 0], [[1, 2], [2, 4]], [z1, z2]
        )
    with pytest.raises(ValueError, match="2x2"):
        linear_pushforward_density(STANDARD_2D, [e1, e2], [0, 0], [[1, 0, 0]], [z1, z2])
    with pytest.raises(ValueError, match="same non-zero length"):
        linear_pushforward_density(STANDARD_2D, [e1, e2], [0, 0], sp.eye(2), [z1])
    with pytest.raises(ValueError, match="mu must have 2"):
        linear_pushforward_density(
            STANDARD_2D, [e1, e2], [0, 0, 0], sp.eye(2), [z1, z2]
        )


# --- Maps whose derivative vanishes at isolated points; choosing the inverse branch ---
# References nobody here wrote: the normal CDF (scipy), scipy's Johnson SU law
# (Y = sinh X), sympy.stats, and transformed samples drawn with NumPy.

STANDARD_NORMAL = sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)
HISTOGRAM_N = 200_000
# each bin's mass is within 4 binomial standard errors of the integral
HISTOGRAM_SE = 4.0


def _numeric(density, symbol=y):
    return sp.lambdify(symbol, density, modules=["numpy", "scipy"])


def _mass(density, low, high):
    # Split at 0, where the density of an odd power has an integrable singularity.
    cuts = [low, 0.0, high] if low < 0.0 < high else [low, high]
    return sum(
        integrate.quad(_numeric(density), a, b, limit=200, epsabs=1e-11)[0]
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    )


def _check_against_samples(density, transform, edges, seed):
    draws = transform(np.random.default_rng(seed).standard_normal(HISTOGRAM_N))
    counts, _ = np.histogram(draws, bins=edges)
    for count, low, high in zip(counts, edges[:-1], edges[1:], strict=True):
        expected = _mass(density, low, high)
        standard_error = math.sqrt(expected * (1 - expected) / HISTOGRAM_N)
        assert abs(count / HISTOGRAM_N - expected) <= HISTOGRAM_SE * standard_error, (
            low,
            high,
        )


@pytest.mark.parametrize("power", [3, 5])
def test_odd_power_with_a_flat_point_is_accepted_and_correct(power):
    # h'(0) = 0, yet h is strictly increasing: P(Y <= c) = Phi(c^(1/power)) (real root).
    steps = derive_pushforward(STANDARD_NORMAL, x, x**power, y)
    assert steps.direction == "increasing" and steps.support_y == sp.S.Reals
    density = pushforward_density(STANDARD_NORMAL, x, x**power, y)

    def cdf(c):
        return stats_scipy.norm.cdf(np.sign(c) * abs(c) ** (1 / power))

    for low, high in [
        (-30.0, -2.0),
        (-2.0, -0.1),
        (-0.1, 0.2),
        (0.2, 1.5),
        (1.5, 40.0),
    ]:
        assert _mass(density, low, high) == pytest.approx(
            cdf(high) - cdf(low), abs=1e-7
        )
    values = [complex(sp.N(density.subs(y, p))) for p in (-3.1, -0.4, 0.7, 2.2)]
    assert all(v.imag == 0 and v.real > 0 for v in values)
    _check_against_samples(
        density, lambda e: e**power, np.array([-8, -1, -0.2, 0, 0.3, 2, 9]), seed=power
    )


def test_decreasing_odd_power():
    density = pushforward_density(STANDARD_NORMAL, x, -(x**5), y)
    # Y = -X^5 has the law of X^5 (X is symmetric), so the masses are those of X^5.
    for low, high in [(-5.0, -0.5), (-0.5, 0.3), (0.3, 7.0)]:
        g_low, g_high = (
            np.sign(-low) * abs(low) ** 0.2,
            np.sign(-high) * abs(high) ** 0.2,
        )
        assert _mass(density, low, high) == pytest.approx(
            stats_scipy.norm.cdf(g_low) - stats_scipy.norm.cdf(g_high), abs=1e-7
        )


def test_sinh_keeps_only_the_real_inverse_branch():
    # SymPy's solve offers log(y - sqrt(y^2 + 1)) too: its argument is negative for
    # every real y, so it is not a real branch. The right one is asinh(y).
    steps = derive_pushforward(STANDARD_NORMAL, x, sp.sinh(x), y)
    for point in (-2.5, -0.3, 0.0, 1.7):
        assert complex(sp.N(steps.inverse.subs(y, point))) == pytest.approx(
            math.asinh(point)
        )
    density = pushforward_density(STANDARD_NORMAL, x, sp.sinh(x), y)
    grid = np.linspace(-6, 6, 49)
    reference = stats_scipy.johnsonsu.pdf(grid, 0.0, 1.0)  # asinh(Y) ~ N(0, 1)
    assert np.allclose(_numeric(density)(grid), reference, rtol=1e-12, atol=0)
    _check_against_samples(
        density, np.sinh, np.array([-20, -2, -0.5, 0, 0.4, 1.5, 30]), seed=7
    )


def test_a_cubic_with_a_cardano_inverse():
    # x^3 + x: solve returns three Cardano formulas; two are complex, one is the real
    # inverse.
    density = pushforward_density(STANDARD_NORMAL, x, x**3 + x, y)

    def inverse(c):
        return optimize.brentq(lambda t: t**3 + t - c, -50, 50, xtol=1e-14)

    for low, high in [(-12.0, -1.0), (-1.0, 0.5), (0.5, 3.0), (3.0, 20.0)]:
        expected = stats_scipy.norm.cdf(inverse(high)) - stats_scipy.norm.cdf(
            inverse(low)
        )
        assert _mass(density, low, high) == pytest.approx(expected, abs=1e-7)
    _check_against_samples(
        density, lambda e: e**3 + e, np.array([-9, -1, 0, 0.8, 2.5, 12]), seed=8
    )


@pytest.mark.parametrize("h", [x + sp.sin(x), 2 * x - sp.sin(x)])
def test_strictly_monotone_without_closed_form_inverse_raises_a_clear_error(h):
    # h' = 1 + cos x vanishes at x = pi + 2 pi n, yet h is strictly increasing: the
    # error must say that no closed-form inverse exists, not that h is not monotone.
    with pytest.raises(ValueError, match="no closed-form inverse") as error:
        pushforward_density(STANDARD_NORMAL, x, h, y)
    assert "not strictly monotone" not in str(error.value)


def test_exp_of_x_fifth_on_the_positive_half_line_matches_sympy_stats():
    x_positive = sp.Symbol("x", positive=True)
    y_positive = sp.Symbol("y", positive=True)
    result = pushforward_density(
        sp.exp(-x_positive), x_positive, x_positive**5, y_positive
    )
    # P(E^5 > c) = exp(-c^(1/5)): a Weibull with scale 1 and shape 1/5.
    reference = stats.density(stats.Weibull("W", 1, sp.Rational(1, 5)))(y_positive)
    assert same(result, reference, symbol=y_positive, points=(0.01, 0.3, 1.2, 40.0))


def test_minus_exp_has_an_image_bounded_above():
    # -exp(X), X standard normal: minus a log-normal, on (-oo, 0). The inverse branch
    # is checked at points below the image's upper end.
    density = pushforward_density(STANDARD_NORMAL, x, -sp.exp(x), y)
    reference = stats.density(stats.LogNormal("L", 0, 1))(-y)
    for point in (-3.7, -1.1, -0.3):
        assert float(density.subs(y, point)) == pytest.approx(
            float(reference.subs(y, point)), rel=1e-12)
    assert density.subs(y, 2) == 0


MU_SYMBOL = sp.Symbol("mu", real=True)  # an image's end of unknown sign
E_RV = stats.Exponential("E", 1)


@pytest.mark.parametrize("h, reference, inside", [
    (x**3, -(E_RV**3), (-5.3, -0.7, -0.02)),
    (x**3 + 2, 2 - E_RV**3, (-3.3, 1.3, 1.98)),  # the image's upper end, 2
    (x**3 - 2, -2 - E_RV**3, (-7.3, -2.7, -2.02)),
    (-(x**3) - 2, E_RV**3 - 2, (-1.98, -1.3, 3.3)),  # its lower end, -2
    (1 / x**3 + 2, 2 - 1 / E_RV**3, (-5.0, 0.5, 1.9)),  # a root written with i
    (x**3 + MU_SYMBOL, MU_SYMBOL - E_RV**3, (-4.6, -0.3, 0.68)),  # at mu = 0.7
], ids=["x^3", "x^3+2", "x^3-2", "-x^3-2", "1/x^3+2", "x^3+mu"])
def test_odd_powers_on_the_negative_half_line_match_sympy_stats(h, reference, inside):
    # X = -E, E ~ Exponential(1): density e^x on (-oo, 0). SymPy's principal root,
    # made real, and one of its roots written with i are the same function on the
    # image: they count as one branch, and the density comes back without i.
    density = pushforward_density(sp.exp(x), x, h, y,
                                  support=sp.Interval.open(-sp.oo, 0))
    assert not density.has(sp.I)
    expected = stats.density(reference)(y)
    values = {MU_SYMBOL: sp.Rational(7, 10)}
    for point in inside:
        assert float(density.subs(values).subs(y, point)) == pytest.approx(
            float(expected.subs(values).subs(y, point)), rel=1e-12), point


def test_x_cubed_on_a_closed_half_line_and_with_negative_symbols():
    closed = pushforward_density(sp.exp(x), x, x**3, y, support=sp.Interval(-sp.oo, 0))
    x_neg, y_neg = sp.Symbol("x", negative=True), sp.Symbol("y", negative=True)
    assumed = pushforward_density(sp.exp(x_neg), x_neg, x_neg**3, y_neg)
    assert not assumed.has(sp.I)
    reference = stats.density(-(E_RV**3))(y)
    for point in (-5.3, -0.7, -0.02):
        expected = float(reference.subs(y, point))
        assert float(closed.subs(y, point)) == pytest.approx(expected, rel=1e-12)
        assert float(assumed.subs(y_neg, point)) == pytest.approx(expected, rel=1e-12)
    # A y whose assumptions put it outside the image (0, 1) of x^3 on (0, 1): zero.
    assert pushforward_density(sp.S.One, x, x**3, y_neg,
                               support=sp.Interval(0, 1)) == 0


def test_a_root_that_is_real_only_inside_a_bounded_image():
    # X uniform on (-1, 0), Y = sqrt(X^3 + 1) on (0, 1): the inverse is the cube root of
    # y^2 - 1, which is negative on the whole image but not beyond it. Reference: the
    # CDF P(Y <= y) = P(X <= -(1 - y^2)^(1/3)) = 1 - (1 - y^2)^(1/3), differentiated.
    density = pushforward_density(sp.S.One, x, sp.sqrt(x**3 + 1), y,
                                  support=sp.Interval.open(-1, 0))
    assert not density.has(sp.I)
    reference = sp.diff(1 - (1 - y**2) ** sp.Rational(1, 3), y)
    for point in (0.1, 0.5, 0.9):
        assert float(density.subs(y, point)) == pytest.approx(
            float(reference.subs(y, point)), rel=1e-12)
    assert density.subs(y, sp.Rational(3, 2)) == 0


def test_a_y_that_is_not_real_is_refused():
    with pytest.raises(ValueError, match="y must be a real symbol"):
        pushforward_density(STANDARD_NORMAL, x, x**3, sp.Symbol("y"))


def test_tanh_has_the_bounded_image_and_integrates_to_one():
    density = pushforward_density(STANDARD_NORMAL, x, sp.tanh(x), y)
    assert density.subs(y, sp.Rational(3, 2)) == 0
    inside = density.args[0][0]
    for low, high in [(-0.99, -0.5), (-0.5, 0.1), (0.1, 0.999)]:
        expected = stats_scipy.norm.cdf(math.atanh(high)) - stats_scipy.norm.cdf(
            math.atanh(low)
        )
        assert _mass(inside, low, high) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(
    "h", [x**5, sp.sinh(x), x**3 + x, -(x**5), sp.atan(x), sp.exp(x)]
)
def test_never_complex_or_negative(h):
    density = pushforward_density(STANDARD_NORMAL, x, h, y)
    for point in (-2.7, -0.9, -0.05, 0.3, 1.1, 3.3):
        value = complex(sp.N(density.subs(y, point)))
        assert value.imag == 0 and value.real >= 0, (h, point, value)


def test_a_map_flat_on_an_interval_is_refused():
    # Y = h(X) has an atom at 0 (mass P(0 < X < 1)): no density, so the map must be
    # refused.
    flat = sp.Piecewise((x, x < 0), (0, x < 1), (x - 1, True))
    with pytest.raises(ValueError, match="not strictly monotone"):
        pushforward_density(STANDARD_NORMAL, x, flat, y)
