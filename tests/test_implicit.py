"""reparam.implicit against mpmath, SciPy inverses, torch.distributions and closed
forms."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats
from torch.distributions import Beta, Dirichlet, Gamma

from reparam.estimators import summarize
from reparam.implicit import (
    MAX_GRAD_CONCENTRATION,
    _lower_series,
    _upper_fraction,
    beta_composition_mean_speed,
    beta_from_gammas,
    dirichlet_from_gammas,
    draw_standard_gamma,
    gamma_cdf,
    gamma_estimator_moments,
    gamma_pathwise_grad,
    gamma_score_function_grad,
    implicit_sample_grad,
    marsaglia_tsang_accepted_density,
    marsaglia_tsang_noise,
    marsaglia_tsang_proposal,
    naive_rejection_grad,
    regularized_gamma_grad,
    rejection_gradient_terms,
    standard_gamma_grad,
    standard_gamma_rsample,
)

F64 = torch.float64
ALPHAS = [0.05, 0.3, 1.0, 5.0, 50.0, 500.0]
# Quantile levels from the far lower tail to the far upper tail.
LEVELS = [1e-10, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6, 1 - 1e-10]
SE = 4.0  # Monte Carlo tolerance, in standard errors


def _g() -> torch.Generator:  # a seeded generator, for calls that test the other checks
    return torch.Generator().manual_seed(0)


def _quantile(alpha: float, level: float) -> float:
    # The complementary inverse keeps upper-tail quantiles accurate.
    if level < 0.5:
        return float(special.gammaincinv(alpha, level))
    return float(special.gammainccinv(alpha, 1.0 - level))


def _mpmath_dz_dalpha(alpha: float, z: float) -> float:
    """-dP/dalpha / density at 30 significant digits: an independent reference."""
    with mpmath.workdps(30):
        a, x = mpmath.mpf(alpha), mpmath.mpf(z)
        dp = mpmath.diff(lambda t: mpmath.gammainc(t, 0, x, regularized=True), a)
        density = x ** (a - 1) * mpmath.exp(-x) / mpmath.gamma(a)
        return float(-dp / density)


# --- dz/dalpha itself


@pytest.mark.parametrize("alpha", ALPHAS)
def test_standard_gamma_grad_matches_mpmath_to_1e_12(alpha):
    z = np.array([_quantile(alpha, q) for q in LEVELS])
    ours = standard_gamma_grad(torch.tensor(z), alpha).numpy()
    reference = np.array([_mpmath_dz_dalpha(alpha, zz) for zz in z])
    assert np.all(np.abs(ours / reference - 1.0) < 1e-12)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 5.0, 50.0])
def test_standard_gamma_grad_matches_central_differences_of_the_inverse_cdf(alpha):
    # At fixed u, x(alpha) = gammaincinv(alpha, u): difference it in alpha (SciPy's own
    # inverse, nothing from reparam) and compare with the implicit derivative.
    levels = np.array([0.001, 0.1, 0.5, 0.9, 0.999])
    h = 1e-5 * alpha
    difference = (
        special.gammaincinv(alpha + h, levels) - special.gammaincinv(alpha - h, levels)
    ) / (2 * h)
    ours = standard_gamma_grad(torch.tensor(special.gammaincinv(alpha, levels)), alpha)
    assert np.allclose(ours.numpy(), difference, rtol=1e-6, atol=0)


def test_standard_gamma_grad_at_alpha_one_by_quadrature_of_the_alpha_derivative():
    # At alpha = 1 the density is e^-t, and differentiating P(alpha, z) under the
    # integral gives dP/dalpha = int_0^z (log t - psi(1)) e^-t dt; integrate by quad.
    for z in [0.1, 1.0, 4.0]:
        dp, _ = integrate.quad(lambda t: math.log(t) * math.exp(-t), 0, z)
        dp -= special.digamma(1.0) * (1 - math.exp(-z))
        expected = -dp / math.exp(-z)
        assert math.isclose(
            float(standard_gamma_grad(torch.tensor(z, dtype=F64), 1.0)),
            expected,
            rel_tol=1e-10,
        )


def test_standard_gamma_grad_is_zero_at_zero_and_broadcasts():
    z = torch.tensor([[0.0, 0.5], [2.0, 3.0]], dtype=F64)
    alpha = torch.tensor([0.5, 2.0], dtype=F64)
    grad = standard_gamma_grad(z, alpha)
    assert grad.shape == (2, 2) and grad[0, 0] == 0.0
    assert float(grad[1, 1]) == float(standard_gamma_grad(torch.tensor(3.0), 2.0))


def test_regularized_gamma_grad_matches_mpmath():
    for alpha, z in [(0.3, 0.01), (0.3, 2.0), (5.0, 3.0), (5.0, 9.0), (50.0, 60.0)]:
        with mpmath.workdps(30):
            ref = float(
                mpmath.diff(
                    lambda t, z=z: mpmath.gammainc(t, 0, z, regularized=True), alpha
                )
            )
        assert math.isclose(float(regularized_gamma_grad(z, alpha)), ref, rel_tol=1e-12)
    # Below 1e-300 (a subnormal z too), where the density alone overflows for a small
    # alpha, and on both sides of that switch.
    for alpha, z in [(0.001, 5e-324), (0.01, 1e-314), (1e-6, 1e-305), (0.3, 9.9e-301),
                     (0.3, 1.01e-300)]:
        with mpmath.workdps(40):
            ref = float(mpmath.diff(lambda t, z=z: mpmath.gammainc(
                t, 0, mpmath.mpf(z), regularized=True), alpha))
        assert math.isclose(float(regularized_gamma_grad(z, alpha)), ref, rel_tol=1e-12)
    # P(alpha, 0) = 0 for every alpha: its derivative in alpha is 0 at z = 0.
    at_zero = regularized_gamma_grad(torch.zeros(3, dtype=F64), 0.3)
    assert torch.equal(at_zero, torch.zeros(3, dtype=F64))
    assert float(regularized_gamma_grad(0.0, 5.0)) == 0.0


@pytest.mark.parametrize("alpha", [0.3, 1.0, 5.0, 50.0])
def test_torch_standard_gamma_grad_agrees_to_its_own_approximation_error(alpha):
    # PyTorch's _standard_gamma_grad is an approximation (series / rational fit /
    # asymptotics); ours is within 1e-12 of mpmath, so the gap measures PyTorch.
    z = draw_standard_gamma(alpha, 20_000, torch.Generator().manual_seed(3))
    theirs = torch._standard_gamma_grad(torch.full_like(z, alpha), z)
    relative = ((standard_gamma_grad(z, alpha) - theirs) / theirs).abs()
    assert float(relative.max()) < 2e-3
    assert float(relative.median()) < 1e-4


@pytest.mark.parametrize("alpha", [1e-3, 1e4])
def test_standard_gamma_grad_at_extreme_concentrations_matches_mpmath(alpha):
    # At alpha = 1e4 the density's power z^(alpha - 1) overflows float64, at 1e-3 the
    # median is ~1e-301: the result must still be finite and accurate.
    z = np.array([_quantile(alpha, q) for q in [0.5, 1 - 1e-6]])
    ours = standard_gamma_grad(torch.tensor(z), alpha).numpy()
    reference = np.array([_mpmath_dz_dalpha(alpha, zz) for zz in z])
    assert np.all(np.isfinite(ours))
    assert np.all(np.abs(ours / reference - 1.0) < 1e-12)


def test_gamma_cdf_values_match_scipy_and_its_gradients_pass_gradcheck():
    x = torch.tensor([1e-3, 0.3, 1.0, 4.0], dtype=F64)
    alpha, rate = torch.tensor(1.5, dtype=F64), torch.tensor(2.0, dtype=F64)
    expected = special.gdtr(2.0, 1.5, x.numpy())  # SciPy's Gamma CDF (rate, shape)
    assert np.allclose(gamma_cdf(x, alpha, rate).numpy(), expected, rtol=1e-13, atol=0)
    # gradcheck feeds one-hot output gradients, so a backward that ignored
    # grad_output, or had the wrong sign or density, would fail here.
    inputs = (
        x.clone().requires_grad_(True),
        torch.tensor([0.4, 1.5, 3.0, 7.0], dtype=F64, requires_grad=True),
        torch.tensor([2.0, 0.5, 1.0, 1.3], dtype=F64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(gamma_cdf, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


# --- the implicit rule on families with explicit inverses


def test_implicit_rule_gives_one_and_eps_for_the_normal():
    mu, sigma = torch.tensor(0.4, dtype=F64), torch.tensor(1.7, dtype=F64)
    eps = torch.randn(50, generator=torch.Generator().manual_seed(1), dtype=F64)
    x = mu + sigma * eps
    d_mu, d_sigma = implicit_sample_grad(
        lambda v, m, s: torch.special.ndtr((v - m) / s), x, [mu, sigma]
    )
    assert torch.allclose(d_mu, torch.ones_like(x), rtol=1e-12, atol=0)
    assert torch.allclose(d_sigma, eps, rtol=1e-10, atol=1e-12)


def test_implicit_rule_gives_minus_x_over_rate_for_the_exponential():
    rate = torch.tensor(2.5, dtype=F64)
    u = torch.rand(40, generator=torch.Generator().manual_seed(2), dtype=F64)
    x = -torch.log(u) / rate
    (d_rate,) = implicit_sample_grad(lambda v, lam: 1 - torch.exp(-lam * v), x, [rate])
    assert torch.allclose(d_rate, -x / rate, rtol=1e-12, atol=0)


def _kumaraswamy_inverse(u, a, b):
    return (1 - (1 - u) ** (1 / b)) ** (1 / a)


def test_implicit_rule_matches_central_differences_for_the_kumaraswamy():
    a, b = 0.7, 2.3
    u = torch.linspace(0.02, 0.98, 25, dtype=F64)
    x = _kumaraswamy_inverse(u, a, b)
    d_a, d_b = implicit_sample_grad(
        lambda v, p, q: 1 - (1 - v**p) ** q,
        x,
        [torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)],
    )
    h = 1e-6
    fd_a = (_kumaraswamy_inverse(u, a + h, b) - _kumaraswamy_inverse(u, a - h, b)) / (
        2 * h
    )
    fd_b = (_kumaraswamy_inverse(u, a, b + h) - _kumaraswamy_inverse(u, a, b - h)) / (
        2 * h
    )
    assert torch.allclose(d_a, fd_a, rtol=1e-7, atol=1e-10)
    assert torch.allclose(d_b, fd_b, rtol=1e-7, atol=1e-10)


def test_implicit_rule_with_the_gamma_cdf_equals_the_direct_gradient():
    alpha, rate = torch.tensor(1.5, dtype=F64), torch.tensor(2.0, dtype=F64)
    x = torch.tensor([1e-3, 0.3, 1.0, 4.0], dtype=F64)
    d_alpha, d_rate = implicit_sample_grad(gamma_cdf, x, [alpha, rate])
    assert torch.allclose(d_alpha, standard_gamma_grad(2.0 * x, 1.5) / 2.0, rtol=1e-12)
    assert torch.allclose(d_rate, -x / 2.0, rtol=1e-12)


def test_implicit_rule_refuses_where_the_density_vanishes():
    # The uniform CDF on (0, 1) has derivative 0 outside it: x = 1.5 cannot move.
    def cdf(v, t):
        return torch.clamp(v * t, 0.0, 1.0)

    with pytest.raises(ValueError, match="positive and finite"):
        implicit_sample_grad(
            cdf, torch.tensor([0.5, 1.5], dtype=F64), [torch.tensor(1.0, dtype=F64)]
        )


def test_implicit_rule_keeps_the_shape_and_names_the_bad_sample_of_a_2d_batch():
    rate = torch.tensor(2.0, dtype=F64)
    x = torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=F64)
    (d_rate,) = implicit_sample_grad(lambda v, lam: 1 - torch.exp(-lam * v), x, [rate])
    assert d_rate.shape == (2, 2) and torch.allclose(d_rate, -x / 2.0, rtol=1e-12)

    def cdf(v, t):
        return torch.clamp(v * t, 0.0, 1.0)

    bad = torch.tensor([[0.1, 0.2], [0.3, 1.5]], dtype=F64)
    with pytest.raises(ValueError, match=r"sample 3 \(x = 1.5\)"):
        implicit_sample_grad(cdf, bad, [torch.tensor(1.0, dtype=F64)])


def test_a_parameter_the_cdf_ignores_moves_no_sample():
    rate, unused = torch.tensor(2.5, dtype=F64), torch.tensor(7.0, dtype=F64)
    x = torch.tensor([0.1, 0.8], dtype=F64)
    d_rate, d_unused = implicit_sample_grad(
        lambda v, lam, _: 1 - torch.exp(-lam * v), x, [rate, unused])
    assert torch.allclose(d_rate, -x / rate, rtol=1e-12, atol=0)
    assert torch.equal(d_unused, torch.zeros_like(x))


def test_implicit_rule_rejects_bad_arguments():
    x = torch.tensor([0.5], dtype=F64)
    theta = torch.tensor(1.0, dtype=F64)
    with pytest.raises(TypeError, match="cdf"):
        implicit_sample_grad("cdf", x, [theta])
    with pytest.raises(TypeError, match="x must"):
        implicit_sample_grad(gamma_cdf, [0.5], [theta, theta])
    for not_a_sequence in (theta, {theta}, iter([theta])):
        with pytest.raises(TypeError, match="params must be a sequence"):
            implicit_sample_grad(gamma_cdf, x, not_a_sequence)
    with pytest.raises(TypeError, match=r"params\[1\]"):
        implicit_sample_grad(gamma_cdf, x, [theta, torch.ones(2, dtype=F64)])
    with pytest.raises(ValueError, match="at least one"):
        implicit_sample_grad(gamma_cdf, x, [])
    with pytest.raises(ValueError, match="shape"):
        implicit_sample_grad(
            lambda v, t: (v * t).sum(), torch.ones(3, dtype=F64), [theta]
        )


# --- the estimators: replay against torch.distributions, exact gradients


@pytest.mark.parametrize("alpha", [0.3, 1.0, 5.0, 50.0])
def test_pathwise_replays_torch_gamma_rsample(alpha):
    n, rate, seed = 3000, 1.7, 11
    alphas = torch.full((n,), alpha, dtype=F64, requires_grad=True)
    rates = torch.full((n,), rate, dtype=F64, requires_grad=True)
    torch.manual_seed(seed)
    x = Gamma(alphas, rates).rsample()
    torch.sin(x).sum().backward()
    ours = gamma_pathwise_grad(
        torch.sin, alpha, rate, n, torch.Generator().manual_seed(seed)
    )
    # Same draws, so the rate column (exact -x/beta in both) matches to the last bit...
    assert torch.equal(ours[:, 1], rates.grad)
    # ...and the alpha column differs only by PyTorch's approximation of dz/dalpha.
    assert torch.allclose(ours[:, 0], alphas.grad, rtol=2e-3, atol=1e-12)


def test_samples_are_clamped_like_torch_gamma_at_tiny_concentration():
    # At alpha = 0.01 some standard draws sit at the smallest normal float; divided by
    # a rate > 1 they would be subnormal, and torch clamps the sample back to it.
    alpha, rate, n, seed = 0.01, 4.0, 4000, 13
    torch.manual_seed(seed)
    theirs = Gamma(
        torch.full((n,), alpha, dtype=F64), torch.tensor(rate, dtype=F64)
    ).rsample()
    tiny = torch.finfo(F64).tiny
    assert bool((theirs == tiny).any())  # the case under test does occur
    rows = gamma_score_function_grad(
        lambda v: v, alpha, rate, n, generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(rows[:, 1], theirs * (alpha / rate - theirs))
    assert bool(torch.isfinite(rows).all())


def test_draws_are_deterministic_with_other_draws_in_between():
    first = gamma_pathwise_grad(
        torch.cos, 0.6, 1.0, 64, torch.Generator().manual_seed(4)
    )
    other = torch.Generator().manual_seed(4)
    torch.rand(1000, generator=other)
    torch.rand(10)  # the global generator too
    second = gamma_pathwise_grad(
        torch.cos, 0.6, 1.0, 64, torch.Generator().manual_seed(4)
    )
    assert torch.equal(first, second)
    score_a = gamma_score_function_grad(
        torch.cos, 0.6, 1.0, 1, generator=torch.Generator().manual_seed(4)
    )
    assert torch.equal(
        score_a[0, 0],
        torch.cos(_first_draw(0.6, 4))
        * (math.log(_first_draw(0.6, 4)) - special.digamma(0.6)),
    )


def _first_draw(alpha, seed):
    return draw_standard_gamma(alpha, 1, torch.Generator().manual_seed(seed))[0]


def test_per_sample_rows_are_the_formulas_exactly():
    alpha, rate, n, seed = 2.5, 0.5, 7, 21
    z = draw_standard_gamma(alpha, n, torch.Generator().manual_seed(seed))
    x = z / rate
    path = gamma_pathwise_grad(
        lambda v: v**2, alpha, rate, n, torch.Generator().manual_seed(seed)
    )
    score = gamma_score_function_grad(
        lambda v: v**2, alpha, rate, n, generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(path[:, 0], 2 * x * (standard_gamma_grad(z, alpha) / rate))
    assert torch.equal(path[:, 1], 2 * x * (-x / rate))
    expected_score = torch.stack(
        [
            x**2 * (math.log(rate) + torch.log(x) - special.digamma(alpha)),
            x**2 * (alpha / rate - x),
        ],
        dim=1,
    )
    assert torch.allclose(score, expected_score, rtol=1e-14, atol=0)


def _exact_gradients(alpha, rate):
    """d/d(alpha, rate) of E[x], E[log x], E[x^2] for Gamma(alpha, rate)."""
    return {
        "x": (1 / rate, -alpha / rate**2),
        "log": (float(special.polygamma(1, alpha)), -1 / rate),
        "square": ((2 * alpha + 1) / rate**2, -2 * alpha * (alpha + 1) / rate**3),
    }


COSTS = {"x": lambda v: v, "log": torch.log, "square": lambda v: v**2}


@pytest.mark.parametrize("alpha", [0.3, 1.0, 5.0, 50.0])
@pytest.mark.parametrize("estimator", [gamma_pathwise_grad, gamma_score_function_grad])
def test_estimators_are_unbiased_against_digamma_trigamma_closed_forms(
    alpha, estimator
):
    rate = 1.5
    exact = _exact_gradients(alpha, rate)
    for i, (name, cost) in enumerate(COSTS.items()):
        rows = estimator(
            cost, alpha, rate, 20_000, generator=torch.Generator().manual_seed(100 + i)
        )
        summary = summarize(rows)
        gap = (summary.mean - torch.tensor(exact[name], dtype=F64)).abs()
        # The pathwise rate column for log x is -1/rate on every draw: zero variance, so
        # allow rounding (1e-12 relative) on top of the standard errors.
        allowed = SE * summary.standard_error + 1e-12 * abs(summary.mean)
        assert bool((gap <= allowed).all()), (name, summary.mean, exact[name])


def test_small_n_rows_equal_the_first_rows_of_a_large_n_run():
    small = gamma_pathwise_grad(
        torch.log, 0.4, 1.0, 3, torch.Generator().manual_seed(8)
    )
    large = gamma_pathwise_grad(
        torch.log, 0.4, 1.0, 300, torch.Generator().manual_seed(8)
    )
    assert torch.equal(small, large[:3])


# --- exact moments by quadrature


def _quad_moments(h, alpha):
    """Mean and variance of h(z), z ~ Gamma(alpha, 1), by scipy.integrate.quad."""

    def weighted(power):
        def integrand(z):
            return h(z) ** power * math.exp(
                (alpha - 1) * math.log(z) - z - math.lgamma(alpha)
            )

        pieces = [(0, 1), (1, alpha + 10 * math.sqrt(alpha) + 40)]
        with warnings.catch_warnings():
            # quad may warn that it cannot reach 1e-12 exactly; the comparison below
            # is at 1e-8, which it does reach.
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            return sum(
                integrate.quad(integrand, a, b, limit=400, epsabs=1e-14, epsrel=1e-12)[
                    0
                ]
                for a, b in pieces
            )

    mean = weighted(1)
    return mean, weighted(2) - mean**2


@pytest.mark.parametrize("alpha", [0.3, 5.0])
def test_exact_moments_match_scipy_quad_and_closed_forms(alpha):
    k = 2.0
    f, df = (lambda x: np.cos(k * x)), (lambda x: -k * np.sin(k * x))
    path_mean, path_var = gamma_estimator_moments(f, df, alpha, 1.0, "pathwise")
    score_mean, score_var = gamma_estimator_moments(f, df, alpha, 1.0, "score")
    # d/dalpha E[cos kx] = Re[-log(1 - ik) (1 - ik)^-alpha] (characteristic function).
    c = 1 - 1j * k
    exact = (-np.log(c) * c ** (-alpha)).real
    assert abs(path_mean[0] - exact) < 1e-12 and abs(score_mean[0] - exact) < 1e-12

    def grad_z(z):
        return float(standard_gamma_grad(torch.tensor(z), alpha))

    q_mean, q_var = _quad_moments(lambda z: -k * math.sin(k * z) * grad_z(z), alpha)
    assert math.isclose(q_var, path_var[0], rel_tol=1e-8)
    q_mean, q_var = _quad_moments(
        lambda z: math.cos(k * z) * (math.log(z) - special.digamma(alpha)), alpha
    )
    assert math.isclose(q_var, score_var[0], rel_tol=1e-8)


def test_exact_moments_at_a_rate_other_than_one_for_the_exponential():
    # Gamma(1, rate lam) is Exponential(lam); for f(x) = x the per-draw variances are
    # 1/lam^4 (pathwise, -x/lam) and 13/lam^4 (score, x (1/lam - x)).
    lam = 2.0
    for kind, expected in [("pathwise", lam**-4), ("score", 13 * lam**-4)]:
        mean, variance = gamma_estimator_moments(lambda v: v, np.ones_like, 1.0, lam,
                                                 kind)
        assert math.isclose(mean[1], -(lam**-2), rel_tol=1e-12)
        assert math.isclose(variance[1], expected, rel_tol=1e-10)
        # ...and the concentration's column: d/dalpha E[x] = d/dalpha alpha/lam.
        assert math.isclose(mean[0], 1 / lam, rel_tol=1e-12)


def test_standard_gamma_rsample_backward_is_exactly_standard_gamma_grad():
    concentration = torch.tensor([0.3, 2.0, 9.0], dtype=F64).repeat(50)
    leaf = concentration.clone().requires_grad_(True)
    z = standard_gamma_rsample(leaf, torch.Generator().manual_seed(12))
    weights = torch.linspace(-1.0, 2.0, z.numel(), dtype=F64)
    (z * weights).sum().backward()
    again = torch._standard_gamma(concentration,
                                  generator=torch.Generator().manual_seed(12))
    assert torch.equal(z.detach(), again)
    assert torch.equal(leaf.grad, weights * standard_gamma_grad(again, concentration))


@pytest.mark.parametrize("alpha", [0.3, 2.0])
def test_empirical_variances_match_exact_within_standard_errors(alpha):
    k = 2.0
    f, df = (lambda x: np.cos(k * x)), (lambda x: -k * np.sin(k * x))
    cost = lambda v: torch.cos(k * v)  # noqa: E731
    for estimator, name in [
        (gamma_pathwise_grad, "pathwise"),
        (gamma_score_function_grad, "score"),
    ]:
        summary = summarize(
            estimator(cost, alpha, 1.0, 40_000,
                      generator=torch.Generator().manual_seed(31))
        )
        _, exact_var = gamma_estimator_moments(f, df, alpha, 1.0, name)
        gap = (
            summary.variance.numpy() - exact_var
        ) / summary.variance_standard_error.numpy()
        assert np.all(np.abs(gap) < SE), (name, gap)


# --- composition


def test_beta_by_composition_replays_torch_samples_and_agrees_in_expectation():
    a, b, n, seed = 0.7, 2.5, 40_000, 5
    a_t = torch.full((n,), a, dtype=F64, requires_grad=True)
    b_t = torch.full((n,), b, dtype=F64, requires_grad=True)
    torch.manual_seed(seed)
    theirs_x = Beta(a_t, b_t).rsample()
    theirs_x.sum().backward()
    a_o = torch.full((n,), a, dtype=F64, requires_grad=True)
    b_o = torch.full((n,), b, dtype=F64, requires_grad=True)
    gammas = standard_gamma_rsample(
        torch.stack([a_o, b_o], -1), torch.Generator().manual_seed(seed)
    )
    ours_x = beta_from_gammas(gammas[:, 0], gammas[:, 1])
    ours_x.sum().backward()
    assert torch.equal(ours_x, theirs_x)  # the same samples, bit for bit
    # The per-sample gradients differ (two different paths to the same x: torch
    # inverts the Beta CDF, we move two Gammas), but both are unbiased for
    # d/d(a,b) E[x] = (b, -a)/(a+b)^2.
    exact = torch.tensor([b, -a], dtype=F64) / (a + b) ** 2
    for rows in (
        torch.stack([a_o.grad, b_o.grad], 1),
        torch.stack([a_t.grad, b_t.grad], 1),
    ):
        assert summarize(rows).within(exact, SE)
    assert not torch.allclose(a_o.grad, a_t.grad, rtol=1e-2)


def test_torch_beta_gradient_is_the_implicit_gradient_of_the_beta_cdf():
    # In both concentrations: central differences of SciPy's inverse at fixed u agree
    # with PyTorch's per-sample gradient to its approximation error (about 1e-3 at
    # worst, 1e-8 in the median).
    a, b, n = 0.7, 2.5, 2000
    a_t = torch.full((n,), a, dtype=F64, requires_grad=True)
    b_t = torch.full((n,), b, dtype=F64, requires_grad=True)
    torch.manual_seed(6)
    x = Beta(a_t, b_t).rsample()
    x.sum().backward()
    u = special.betainc(a, b, x.detach().numpy())
    h = 1e-6
    fd_a = (special.betaincinv(a + h, b, u) - special.betaincinv(a - h, b, u)) / (2 * h)
    fd_b = (special.betaincinv(a, b + h, u) - special.betaincinv(a, b - h, u)) / (2 * h)
    for grad, fd in ((a_t.grad.numpy(), fd_a), (b_t.grad.numpy(), fd_b)):
        gaps = np.abs(grad / fd - 1)
        assert np.median(gaps) < 1e-7 and gaps.max() < 5e-3


def _mpmath_beta_speed(x: float, a: float, b: float) -> tuple[float, float]:
    """The implicit Beta gradient -(dI/da, dI/db) / density at 30 digits."""
    with mpmath.workdps(30):
        xm, am, bm = mpmath.mpf(x), mpmath.mpf(a), mpmath.mpf(b)
        density = xm ** (am - 1) * (1 - xm) ** (bm - 1) / mpmath.beta(am, bm)
        da = mpmath.diff(lambda t: mpmath.betainc(t, bm, 0, xm, regularized=True), am)
        db = mpmath.diff(lambda t: mpmath.betainc(am, t, 0, xm, regularized=True), bm)
        return float(-da / density), float(-db / density)


@pytest.mark.parametrize(
    "a, b", [(0.7, 2.5), (3.0, 0.4), (0.2, 0.3), (20.0, 5.0), (0.01, 0.02)]
)
def test_composition_speed_given_x_is_the_implicit_speed(a, b):
    # In one dimension the mean of the composition's sample derivative given x is the
    # unique velocity field, the implicit one: compare with mpmath.
    points = np.array([1e-6, 0.05, 0.3, 0.5, 0.8, 0.99, 1 - 1e-6])
    rows = beta_composition_mean_speed(points, a, b)
    assert rows.shape == (len(points), 2) and rows.dtype == F64
    for row, point in zip(rows.numpy(), points, strict=True):
        assert np.allclose(row, _mpmath_beta_speed(point, a, b), rtol=1e-12, atol=0)


def test_composition_speed_given_x_matches_a_monte_carlo_average_over_a_bin():
    # The definition, not the theorem: the composed gradients of the draws whose x falls
    # in a bin average to the bin's mean of the conditional speed under the Beta density
    # (Gauss-Legendre over the bin, so the bin's width costs no approximation).
    a, b, n, lo, hi = 1.5, 2.0, 400_000, 0.38, 0.42
    leaf = torch.tensor([a, b], dtype=F64).expand(n, 2).clone().requires_grad_(True)
    g = standard_gamma_rsample(leaf, torch.Generator().manual_seed(31))
    x = beta_from_gammas(g[:, 0], g[:, 1])
    x.sum().backward()
    in_bin = (x.detach() > lo) & (x.detach() < hi)
    result = summarize(leaf.grad[in_bin])
    nodes, weights = np.polynomial.legendre.leggauss(8)
    points = lo + (hi - lo) * (nodes + 1) / 2
    density = stats.beta(a, b).pdf(points) * weights
    expected = (beta_composition_mean_speed(points, a, b).numpy().T @ density) / np.sum(
        density
    )
    gap = (result.mean - torch.from_numpy(expected)).abs()
    assert bool((gap < SE * result.standard_error).all())
    # ... and a wrong speed, the composed one at the bin's centre without the (1 - x)
    # factor, would be far outside.
    wrong = expected[0] / (1 - 0.4)
    assert abs(float(result.mean[0]) - wrong) > 10 * float(result.standard_error[0])


def test_composition_speed_given_x_refuses_bad_input():
    with pytest.raises(ValueError, match="x must hold points strictly between 0 and 1"):
        beta_composition_mean_speed(np.array([0.2, 1.0]), 1.0, 1.0)
    with pytest.raises(ValueError, match="x must hold points strictly between 0 and 1"):
        beta_composition_mean_speed(np.array([0.0, 0.2]), 1.0, 1.0)
    with pytest.raises(ValueError, match="x must"):
        beta_composition_mean_speed(float("nan"), 1.0, 1.0)
    with pytest.raises(ValueError, match="concentration0 must be > 0"):
        beta_composition_mean_speed(0.5, 1.0, -2.0)
    with pytest.raises(TypeError, match="concentration1"):
        beta_composition_mean_speed(0.5, "one", 1.0)
    with pytest.raises(TypeError, match="x must be a real number"):
        beta_composition_mean_speed("0.5", 1.0, 1.0)
    with pytest.raises(ValueError, match="concentration must be <="):
        beta_composition_mean_speed(0.5, 1e9, 1.0)


def test_dirichlet_from_gammas_normalizes_the_last_axis_of_a_batch_of_batches():
    gammas = torch.arange(1.0, 25.0, dtype=F64).reshape(2, 3, 4)
    points = dirichlet_from_gammas(gammas)
    assert points.shape == (2, 3, 4)
    assert torch.allclose(points.sum(-1), torch.ones(2, 3, dtype=F64), rtol=0,
                          atol=1e-15)
    for i in range(2):  # each slice as a 2-d batch, and each row alone
        assert torch.equal(points[i], dirichlet_from_gammas(gammas[i]))
        assert torch.equal(points[i, 0], dirichlet_from_gammas(gammas[i, 0]))


def test_dirichlet_by_composition_replays_torch_samples_and_agrees_in_expectation():
    alpha = torch.tensor([0.4, 1.5, 3.0], dtype=F64)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    n, seed = 30_000, 7
    theirs_c = alpha.expand(n, 3).clone().requires_grad_(True)
    torch.manual_seed(seed)
    theirs = Dirichlet(theirs_c).rsample()
    (theirs * weights).sum().backward()
    ours_c = alpha.expand(n, 3).clone().requires_grad_(True)
    ours = dirichlet_from_gammas(
        standard_gamma_rsample(ours_c, torch.Generator().manual_seed(seed))
    )
    (ours * weights).sum().backward()
    assert torch.allclose(ours, theirs, rtol=1e-15, atol=0)
    # d/dalpha_j E[w . x] with E[x_k] = alpha_k / A: (w_j - w . E[x]) / A.
    total = alpha.sum()
    exact = (weights - (weights * alpha / total).sum()) / total
    assert summarize(ours_c.grad).within(exact, SE)
    assert summarize(theirs_c.grad).within(exact, SE)


# --- bad input


BAD_POSITIVE = st.one_of(
    st.floats(max_value=0.0),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-float("inf")),
)


@settings(max_examples=30, deadline=None)
@given(value=BAD_POSITIVE)
def test_bad_concentration_or_rate_is_named(value):
    for estimator in (gamma_pathwise_grad, gamma_score_function_grad):
        with pytest.raises(ValueError, match="concentration"):
            estimator(torch.sin, value, 1.0, 5, _g())
        with pytest.raises(ValueError, match="rate"):
            estimator(torch.sin, 1.0, value, 5, _g())


@settings(max_examples=20, deadline=None)
@given(n=st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans()))
def test_bad_sample_count_is_named(n):
    wrong_type = isinstance(n, bool) or not isinstance(n, int)
    with pytest.raises(TypeError if wrong_type else ValueError, match="n must"):
        gamma_pathwise_grad(torch.sin, 1.0, 1.0, n, _g())


def test_bad_cost_and_generator_are_refused():
    with pytest.raises(ValueError, match="elementwise"):
        gamma_pathwise_grad(lambda v: v.sum(), 1.0, 1.0, 5, _g())
    with pytest.raises(ValueError, match="elementwise"):
        gamma_score_function_grad(lambda v: v[:2], 1.0, 1.0, 5, _g())
    with pytest.raises(ValueError, match="NaN"):
        gamma_pathwise_grad(lambda v: v * float("nan"), 1.0, 1.0, 5, _g())
    with pytest.raises(TypeError, match="generator"):
        gamma_pathwise_grad(torch.sin, 1.0, 1.0, 5, generator=3)
    with pytest.raises(TypeError, match="bool"):
        gamma_pathwise_grad(torch.sin, True, 1.0, 5, _g())


def test_bad_samples_and_concentrations_in_the_gradient_functions():
    with pytest.raises(ValueError, match="z must"):
        standard_gamma_grad(torch.tensor([-1.0]), 1.0)
    with pytest.raises(ValueError, match="z must"):
        standard_gamma_grad(torch.tensor([float("nan")]), 1.0)
    with pytest.raises(ValueError, match="concentration"):
        standard_gamma_grad(torch.tensor([1.0]), 0.0)
    with pytest.raises(ValueError, match="concentration"):
        standard_gamma_rsample(torch.tensor([1.0, -1.0]), _g())
    with pytest.raises(ValueError, match="estimator"):
        gamma_estimator_moments(np.sin, np.cos, 1.0, 1.0, "reinforce")


@pytest.mark.parametrize("bad", ["1.0", [1.0, 2.0], None, True,
                                 torch.tensor([True]), np.array(["a"])])
def test_wrong_types_are_refused_with_a_type_error_naming_the_argument(bad):
    with pytest.raises(TypeError, match="z must"):
        standard_gamma_grad(bad, 1.0)
    with pytest.raises(TypeError, match="z must"):
        regularized_gamma_grad(bad, 1.0)
    with pytest.raises(TypeError, match="concentration must"):
        standard_gamma_grad(1.0, bad)


def test_other_wrong_types_are_refused():
    with pytest.raises(TypeError, match="concentration"):
        standard_gamma_rsample([1.0, 2.0], _g())
    with pytest.raises(TypeError, match="concentration"):
        standard_gamma_rsample(torch.tensor([True]), _g())
    with pytest.raises(TypeError, match="x must"):
        gamma_cdf([0.5], 1.0, 1.0)
    with pytest.raises(TypeError, match="g1 and g2"):
        beta_from_gammas([0.5], torch.ones(1))
    with pytest.raises(TypeError, match="gammas"):
        dirichlet_from_gammas([[0.5, 1.0]])
    with pytest.raises(TypeError, match="df must"):
        gamma_estimator_moments(np.sin, "cos", 1.0, 1.0, "pathwise")
    with pytest.raises(TypeError, match="baseline"):
        gamma_estimator_moments(np.sin, np.cos, 1.0, 1.0, "score", baseline="mean")
    # Arguments in the order of reparam.estimators: a baseline given where the
    # generator goes is named, not used.
    with pytest.raises(TypeError, match="generator"):
        gamma_score_function_grad(torch.sin, 1.0, 1.0, 5, "leave-one-out")
    with pytest.raises(TypeError, match="eps and concentration"):
        marsaglia_tsang_proposal(0.5, torch.tensor(2.0))


def test_integer_and_float32_inputs_are_computed_in_float64():
    exact = standard_gamma_grad(torch.tensor([2.0], dtype=F64), 3.0)
    assert standard_gamma_grad(np.array([2]), 3).dtype == F64
    assert torch.equal(standard_gamma_grad(np.array([2]), 3), exact)
    assert torch.equal(standard_gamma_grad(torch.tensor([2.0]), np.float32(3.0)), exact)


# --- argument order: points first, then the concentration, in both functions


def test_both_gradient_functions_take_the_points_first():
    # At z != alpha a swapped call gives another number; the relation between the two
    # (regularized = -density * standard) holds only in the documented order.
    z, alpha = 0.7, 2.5
    density = stats.gamma(alpha).pdf(z)
    assert math.isclose(
        float(regularized_gamma_grad(z, alpha)),
        -density * float(standard_gamma_grad(z, alpha)),
        rel_tol=1e-13,
    )
    assert not math.isclose(float(regularized_gamma_grad(z, alpha)),
                            float(regularized_gamma_grad(alpha, z)), rel_tol=1e-3)


# --- the range of the concentration


def _quadrature_dz_dalpha(alpha: float, z: float) -> float:
    """-dP/dalpha / density, with dP/dalpha = int (log t - psi) p(t) dt by mpmath.quad:
    independent of the series and fraction, and still usable at alpha = 1e8 where
    mpmath's own gammainc does not converge."""
    with mpmath.workdps(40):
        a, x = mpmath.mpf(alpha), mpmath.mpf(z)
        log_gamma, psi = mpmath.loggamma(a), mpmath.digamma(a)

        def integrand(t):
            return mpmath.exp((a - 1) * mpmath.log(t) - t - log_gamma) * (
                mpmath.log(t) - psi
            )

        width = 60 * mpmath.sqrt(a)
        if x < a:
            dp = mpmath.quad(integrand, mpmath.linspace(max(0, x - width), x, 41))
        else:  # dP/dalpha = -dQ/dalpha, Q the upper tail
            dp = -mpmath.quad(integrand, mpmath.linspace(x, x + width + 100, 41))
        density = mpmath.exp((a - 1) * mpmath.log(x) - x - log_gamma)
        return float(-dp / density)


@pytest.mark.parametrize("level", [1e-6, 0.5, 1 - 1e-6])
def test_standard_gamma_grad_at_the_largest_supported_concentration(level):
    alpha = MAX_GRAD_CONCENTRATION
    z = _quantile(alpha, level)
    ours = float(standard_gamma_grad(np.array([z]), alpha))
    assert abs(ours / _quadrature_dz_dalpha(alpha, z) - 1) < 1e-10


def test_the_quadrature_reference_agrees_with_mpmaths_gammainc_where_both_work():
    z = _quantile(1e4, 0.3)
    assert math.isclose(_quadrature_dz_dalpha(1e4, z), _mpmath_dz_dalpha(1e4, z),
                        rel_tol=1e-12)


def test_concentrations_beyond_the_supported_range_are_refused_by_name():
    too_large = 10 * MAX_GRAD_CONCENTRATION
    for call in (
        lambda: standard_gamma_grad(np.array([too_large]), too_large),
        lambda: regularized_gamma_grad(np.array([1.0]), too_large),
        lambda: standard_gamma_rsample(torch.tensor([too_large], dtype=F64), _g()),
        lambda: gamma_pathwise_grad(torch.sin, too_large, 1.0, 4, _g()),
        lambda: gamma_estimator_moments(np.sin, np.cos, too_large, 1.0, "pathwise"),
    ):
        with pytest.raises(ValueError, match=r"concentration must be <= 1e\+08"):
            call()
    # The score function needs no dz/dalpha: it works there.
    rows = gamma_score_function_grad(lambda v: v, too_large, 1.0, 4,
                                     generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(rows).all())


def test_the_quadrature_refuses_a_rule_it_cannot_hold():
    with pytest.raises(ValueError, match="rate 1e-06"):
        gamma_estimator_moments(np.sin, np.cos, 2.0, 1e-6, "score")


# --- tiny concentrations: draws below the smallest normal float64


def _log_z_cdf(alpha: float, s: np.ndarray) -> np.ndarray:
    """CDF of log z, z ~ Gamma(alpha, 1): P(alpha, e^s), and z^alpha / Gamma(alpha + 1)
    where e^s underflows (exact there to float64)."""
    tiny_part = np.exp(alpha * s - special.gammaln(alpha + 1.0))
    with np.errstate(under="ignore"):
        return np.where(s < -700, tiny_part, special.gammainc(alpha, np.exp(s)))


@pytest.mark.parametrize("alpha", [0.003, 0.01])
def test_the_score_uses_the_exact_law_of_log_z_below_the_smallest_float(alpha):
    # The score function's alpha column is (f(x) - b)(log z - psi(alpha)); with f = 1
    # and b = 0 it is log z - psi(alpha) itself. Torch returns 2.2e-308 for 12 % of the
    # draws at alpha = 0.003; the log z drawn in its place must follow the Gamma's law.
    n = 20_000
    rows = gamma_score_function_grad(torch.ones_like, alpha, 1.0, n,
                                     generator=torch.Generator().manual_seed(5))
    log_z = rows[:, 0].numpy() + special.digamma(alpha)
    assert np.mean(log_z < math.log(torch.finfo(F64).tiny)) > (0.05 if alpha < 0.005
                                                               else 0.0003)
    assert stats.kstest(log_z, lambda s: _log_z_cdf(alpha, s)).pvalue > 0.01


@pytest.mark.parametrize("alpha", [0.001, 0.003])
def test_both_estimators_are_unbiased_at_tiny_concentrations(alpha):
    # d/dalpha E[exp(-x)] = d/dalpha 2^-alpha = -log(2) 2^-alpha (rate 1). Before the
    # exact log z, the score function gave +491.8 +- 0.8 at alpha = 0.001.
    exact = -math.log(2.0) * 2.0**-alpha
    for estimator in (gamma_pathwise_grad, gamma_score_function_grad):
        rows = estimator(lambda v: torch.exp(-v), alpha, 1.0, 100_000,
                         generator=torch.Generator().manual_seed(17))
        summary = summarize(rows)
        assert abs(float(summary.mean[0]) - exact) < SE * float(
            summary.standard_error[0]), (estimator.__name__, summary.mean)


def test_a_cost_that_differs_at_zero_and_the_smallest_float_is_refused():
    for estimator in (gamma_pathwise_grad, gamma_score_function_grad):
        with pytest.raises(ValueError, match="2.2e-308"):
            estimator(torch.log, 0.001, 1.0, 1000,
                      generator=torch.Generator().manual_seed(1))
    # ...and accepted at a concentration with no sample that small.
    rows = gamma_score_function_grad(torch.log, 1.0, 1.0, 1000,
                                     generator=torch.Generator().manual_seed(1))
    assert bool(torch.isfinite(rows).all())
    # -x log x is 0 at 0 and 1.6e-305 at 2.2e-308, but its slope -log x - 1 is
    # infinite at 0: only the pathwise estimator refuses.
    rows = gamma_score_function_grad(torch.special.entr, 0.001, 1.0, 1000,
                                     generator=torch.Generator().manual_seed(1))
    assert bool(torch.isfinite(rows).all())
    with pytest.raises(ValueError, match="f'"):
        gamma_pathwise_grad(torch.special.entr, 0.001, 1.0, 1000,
                            generator=torch.Generator().manual_seed(1))


def test_a_large_rate_clamps_samples_whose_standard_draws_are_normal_floats():
    # At alpha = 0.05 no standard draw z lies below 2.2e-308, but z / 1e300 does for
    # every z below 2.2e-8, about 40 % of the draws. The cost's slope at 0, 5e149, and
    # at 2.2e-308 differ by 1e-8 of it: finite, and too different.
    def cost(v):
        return torch.sqrt(v + 1e-300)

    for estimator, cost_or_log, name in ((gamma_pathwise_grad, cost, "f'"),
                                         (gamma_score_function_grad, torch.log, "f")):
        rows = estimator(cost_or_log, 0.05, 1.0, 100,
                         generator=torch.Generator().manual_seed(3))
        assert bool(torch.isfinite(rows).all())
        with pytest.raises(ValueError, match=f"{name}\\(0\\)"):
            estimator(cost_or_log, 0.05, 1e300, 100,
                      generator=torch.Generator().manual_seed(3))


def test_a_leave_one_out_baseline_keeps_the_score_function_unbiased():
    alpha, rate = 0.7, 1.3
    plain = gamma_score_function_grad(lambda v: v, alpha, rate, 20_000,
                                      generator=torch.Generator().manual_seed(2))
    loo = gamma_score_function_grad(lambda v: v, alpha, rate, 20_000,
                                    baseline="leave-one-out",
                                    generator=torch.Generator().manual_seed(2))
    exact = torch.tensor([1 / rate, -alpha / rate**2], dtype=F64)
    assert summarize(loo).within(exact, SE)
    assert bool((summarize(loo).variance < summarize(plain).variance).all())
    constant = gamma_score_function_grad(lambda v: v, alpha, rate, 6, baseline=0.5,
                                         generator=torch.Generator().manual_seed(2))
    z = draw_standard_gamma(alpha, 6, torch.Generator().manual_seed(2))
    x = z / rate
    score = torch.stack([torch.log(z) - special.digamma(alpha), alpha / rate - x], 1)
    assert torch.allclose(constant, (x - 0.5).unsqueeze(1) * score, rtol=1e-13)


@pytest.mark.parametrize("alpha", [1e-4, 1e-3, 0.01, 0.05])
def test_exact_moments_at_tiny_concentrations_match_closed_forms(alpha):
    # For f(x) = x, rate 1: the score's second moment is
    # E[x^2 (log x - psi(a))^2] = a(a+1) [(psi(a+2) - psi(a))^2 + psi'(a+2)], and
    # both means are d/da E[x] = 1. Before the log-z nodes this raised "math domain
    # error" for alpha <= 0.05.
    score = gamma_estimator_moments(lambda v: v, np.ones_like, alpha, 1.0, "score")
    path = gamma_estimator_moments(lambda v: v, np.ones_like, alpha, 1.0, "pathwise")
    psi = special.digamma
    second = alpha * (alpha + 1) * ((psi(alpha + 2) - psi(alpha)) ** 2
                                    + special.polygamma(1, alpha + 2))
    assert math.isclose(score.variance[0], second - 1.0, rel_tol=1e-9)
    assert abs(score.mean[0] - 1.0) < 1e-9 and abs(path.mean[0] - 1.0) < 1e-9
    # The rate column, -x for pathwise: variance Var(x) = alpha.
    assert math.isclose(path.variance[1], alpha, rel_tol=1e-9)


def test_exact_moments_with_a_baseline_match_quad():
    # cos 2x at alpha = 0.3, b = E[cos 2x] = Re (1 - 2i)^-alpha.
    alpha = 0.3
    mean_f = ((1 - 2j) ** -alpha).real
    moments = gamma_estimator_moments(lambda v: np.cos(2 * v),
                                      lambda v: -2 * np.sin(2 * v), alpha, 1.0,
                                      "score", baseline=mean_f)
    _, variance = _quad_moments(
        lambda z: (math.cos(2 * z) - mean_f) * (math.log(z) - special.digamma(alpha)),
        alpha)
    assert math.isclose(moments.variance[0], variance, rel_tol=1e-8)
    unshifted = gamma_estimator_moments(lambda v: np.cos(2 * v),
                                        lambda v: -2 * np.sin(2 * v), alpha, 1.0,
                                        "score")
    assert abs(moments.mean[0] - unshifted.mean[0]) < 1e-12  # a baseline adds no bias


def test_exact_moments_refuse_a_cost_that_is_infinite_at_a_node():
    with pytest.raises(ValueError, match="df is not finite"):
        gamma_estimator_moments(np.log, lambda v: 1 / v, 0.01, 1.0, "pathwise")


# --- the no-cancellation claim of the module docstring (and of Chapter 5)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 5.0, 50.0])
def test_both_parts_of_the_derivative_have_one_sign_in_each_region(alpha):
    # Below the split e^psi(alpha + 1) both parts are <= 0 (every series term is, and
    # log z <= psi(alpha + 1) there); above it both are >= 0.
    split = math.exp(special.digamma(alpha + 1))
    below = np.geomspace(1e-8, split, 50)
    _, ds = _lower_series(np.full(50, alpha), below)
    assert np.all(ds <= 0)
    assert np.all(np.log(below) <= special.digamma(alpha + 1) + 1e-14)
    above = split * np.geomspace(1.0 + 1e-9, 100.0, 50)
    c, dc = _upper_fraction(np.full(50, alpha), above)
    assert np.all(c > 0) and np.all(dc >= 0)
    assert np.all(np.log(above) > special.digamma(alpha))
    assert abs(split - (alpha + 0.5)) < 0.15  # "about alpha + 1/2"


# --- Marsaglia and Tsang's sampler, differentiated naively


@pytest.mark.parametrize("alpha", [1.0, 2.0, 7.5])
def test_the_accepted_proposals_are_gamma_distributed(alpha):
    # 200,000 draws: a test of 20,000 passed an acceptance rule with +d v for -d v,
    # which accepts 97 % of the proposals instead of 95 % at alpha = 1; this sample
    # rejects that rule with p = 1e-13 and 2e-9 at alpha = 1 and 2.
    n = 200_000
    eps = marsaglia_tsang_noise(alpha, n, torch.Generator().manual_seed(4))
    x = marsaglia_tsang_proposal(eps, torch.tensor(alpha, dtype=F64))
    assert eps.shape == (n,) and eps.dtype == F64
    assert stats.kstest(x.numpy(), stats.gamma(alpha).cdf).pvalue > 0.01


@pytest.mark.parametrize("alpha", [1.2, 2.0, 20.0])
def test_the_accepted_noise_density_integrates_to_one_and_is_the_law_of_the_noise(
        alpha):
    def density(e):
        return float(marsaglia_tsang_accepted_density(
            torch.tensor(e, dtype=F64), torch.tensor(alpha, dtype=F64)))

    root = math.sqrt(9 * alpha - 3)
    mass = integrate.quad(density, -root, 40.0, limit=200)[0]
    assert abs(mass - 1.0) < 1e-9
    assert density(-root - 0.1) == 0.0
    eps = marsaglia_tsang_noise(alpha, 20_000, torch.Generator().manual_seed(9))

    # The CDF of the density on a fine grid (trapezoid rule, error about 1e-6).
    grid = np.linspace(-root, 40.0, 40_001)
    values = marsaglia_tsang_accepted_density(torch.from_numpy(grid),
                                              torch.tensor(alpha, dtype=F64)).numpy()
    cumulative = integrate.cumulative_trapezoid(values, grid, initial=0.0)
    assert abs(cumulative[-1] - 1.0) < 1e-5

    def cdf(points):
        return np.interp(points, grid, cumulative)

    assert stats.kstest(eps.numpy(), cdf).pvalue > 0.01


def test_the_accepted_noise_density_takes_tensors_only():
    # Either argument alone as another type is refused, by name.
    for eps, alpha in [(np.zeros(3), torch.tensor(2.0, dtype=F64)),
                       (torch.zeros(3, dtype=F64), 2.0)]:
        with pytest.raises(TypeError, match="eps and concentration must be"):
            marsaglia_tsang_accepted_density(eps, alpha)


def _naive_by_scipy(alpha: float) -> float:
    """The naive gradient of E[x] by scipy.integrate.quad, with dh/dalpha by central
    differences: nothing shared with reparam."""
    def h(e, a):
        d = a - 1 / 3
        return d * (1 + e / math.sqrt(9 * d)) ** 3

    def pi(e):
        d = alpha - 1 / 3
        w = 1 + e / math.sqrt(9 * d)
        return stats.gamma(alpha).pdf(h(e, alpha)) * math.sqrt(d) * w * w

    step = 1e-6
    return integrate.quad(
        lambda e: pi(e) * (h(e, alpha + step) - h(e, alpha - step)) / (2 * step),
        -math.sqrt(9 * alpha - 3), 50.0, limit=400)[0]


@pytest.mark.parametrize("alpha", [1.2, 2.0, 5.0])
def test_the_naive_term_is_biased_and_the_correction_removes_exactly_that(alpha):
    terms = rejection_gradient_terms(lambda v: v, np.ones_like, alpha)
    assert abs(terms.naive - _naive_by_scipy(alpha)) < 1e-8
    assert terms.naive > 1.0 + 1e-4
    assert abs(terms.naive + terms.correction - 1.0) < 1e-12  # d/dalpha E[x] = 1
    # Two more costs with exact gradients: x^2 (2 alpha + 1) and cos 2x.
    square = rejection_gradient_terms(lambda v: v**2, lambda v: 2 * v, alpha)
    assert abs(sum(square) - (2 * alpha + 1)) < 1e-10
    c = 1 - 2j
    cosine = rejection_gradient_terms(lambda v: np.cos(2 * v),
                                      lambda v: -2 * np.sin(2 * v), alpha)
    assert abs(sum(cosine) - (-np.log(c) * c**-alpha).real) < 1e-10


def test_a_cost_that_does_not_depend_on_x_gets_a_zero_naive_gradient():
    rows = naive_rejection_grad(lambda v: torch.ones_like(v), 2.0, 5, _g())
    assert torch.equal(rows, torch.zeros(5, 1, dtype=F64))


def test_a_seeded_run_of_the_sampler_shows_the_naive_bias():
    rows = naive_rejection_grad(lambda v: v, 2.0, 400_000,
                                torch.Generator().manual_seed(6))
    summary = summarize(rows)
    naive = rejection_gradient_terms(lambda v: v, np.ones_like, 2.0).naive
    assert summary.within(torch.tensor([naive], dtype=F64), SE)
    assert not summary.within(torch.tensor([1.0], dtype=F64), SE)


def test_the_rejection_helpers_refuse_concentrations_out_of_range():
    with pytest.raises(ValueError, match="concentration must be >= 1"):
        marsaglia_tsang_noise(0.5, 10, _g())
    with pytest.raises(ValueError, match="concentration must be >= 1"):
        rejection_gradient_terms(np.sin, np.cos, 0.9)
    with pytest.raises(ValueError, match="concentration must be <= 1e4"):
        rejection_gradient_terms(np.sin, np.cos, 1.2e4)
    with pytest.raises(TypeError, match="generator"):
        marsaglia_tsang_noise(2.0, 10, generator=5)


def test_at_the_largest_concentration_the_correction_still_removes_the_bias():
    # At alpha = 1e4 the naive term is 1 + 1.9e-10 and the correction -1.9e-10: the
    # tolerance must be well below the correction for the check to see it.
    terms = rejection_gradient_terms(lambda v: v, np.ones_like, 1e4)
    assert 1e-10 < terms.naive - 1 < 1e-9
    assert abs(terms.naive + terms.correction - 1.0) < 2e-11  # d/dalpha E[x] = 1


# --- PyTorch's implementation, as the chapter describes it (version-specific)
#
# Chapter 5 says that torch._standard_gamma runs Marsaglia and Tsang's method and that
# PyTorch's own d z/d alpha (standard_gamma_grad_one) is a Taylor series for small x, a
# saddle-point expansion for large alpha and a rational function otherwise. That is a
# fact about PyTorch's C++ source (ATen/native/Distributions.h, shipped in the wheel),
# checked here for the installed version (2.13 when written): an upgrade that rewrites
# those routines fails this test, and then the chapter's description needs updating.

ATEN = Path(torch.__file__).parent / "include" / "ATen" / "native" / "Distributions.h"


def test_torchs_gamma_sampler_and_gradient_are_the_ones_the_chapter_describes():
    if not ATEN.exists():
        pytest.skip("this torch wheel ships no C++ headers")
    source = ATEN.read_text()
    for phrase in [
        "acceptance-rejection method of Marsaglia and Tsang (2000)",
        "Boost alpha for higher acceptance probability",
        "Computes the reparameterized gradient -(d/dalpha cdf(x;alpha)) / pdf(x;alpha)",
        "Use a Taylor series expansion for small x", "x < 0.8f", "i <= 5",
        "Rice saddle point expansion for large alpha", "alpha > 8.0f",
        "bivariate rational approximation",
    ]:
        assert phrase in source, phrase
