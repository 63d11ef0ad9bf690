"""Exact estimator moments: means equal the closed-form gradients, variances match
sampling."""

from __future__ import annotations

import mpmath
import pytest
import torch

from reparam import costs
from reparam.estimators import (
    pathwise_grad,
    score_function_grad,
    subtract_baseline,
    summarize,
)
from reparam.variance import (
    exact_moments,
    exact_variance,
    leave_one_out_variance,
    per_sample_function,
)

COSTS = [
    costs.square.with_k(0.5),
    costs.gaussian_bump.with_k(2.0),
    costs.cosine.with_k(1.5),
    costs.step.with_k(0.3),
]
COLUMN = {"mu": 0, "sigma": 1}


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.name)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_score_function_mean_is_the_exact_gradient(cost, parameter):
    mean, _ = exact_moments(cost, 0.4, 1.2, "score", parameter)
    assert mean == pytest.approx(
        cost.gradient(0.4, 1.2)[COLUMN[parameter]], rel=1e-7, abs=1e-10
    )


@pytest.mark.parametrize("cost", COSTS[:3], ids=lambda c: c.name)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_pathwise_mean_is_the_exact_gradient(cost, parameter):
    mean, _ = exact_moments(cost, 0.4, 1.2, "pathwise", parameter)
    assert mean == pytest.approx(
        cost.gradient(0.4, 1.2)[COLUMN[parameter]], rel=1e-7, abs=1e-10
    )


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.name)
@pytest.mark.parametrize("estimator", [pathwise_grad, score_function_grad])
def test_exact_variance_matches_the_sample_variance(cost, estimator):
    name = "pathwise" if estimator is pathwise_grad else "score"
    draws = estimator(cost, 0.4, 1.2, 400_000, torch.Generator().manual_seed(4))
    for parameter, column in COLUMN.items():
        exact = exact_variance(cost, 0.4, 1.2, name, parameter)
        centred = draws[:, column] - draws[:, column].mean()
        sample_variance = float(centred.pow(2).mean())
        standard_error = float((centred.pow(2).var() / draws.shape[0]).sqrt())
        assert abs(sample_variance - exact) <= 5 * standard_error + 1e-12, (
            parameter,
            exact,
            sample_variance,
        )


def test_bad_arguments():
    with pytest.raises(ValueError, match="estimator"):
        exact_variance(costs.square, 0.0, 1.0, "reinforce", "mu")
    with pytest.raises(ValueError, match="parameter"):
        exact_variance(costs.square, 0.0, 1.0, "score", "k")
    with pytest.raises(ValueError, match="sigma"):
        exact_variance(costs.square, 0.0, 0.0, "score", "mu")


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.name)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_optimal_baseline_minimizes_the_exact_variance(cost, parameter):
    from reparam.variance import optimal_baseline

    best = optimal_baseline(cost, 0.4, 1.2, parameter)
    at_best = exact_variance(cost, 0.4, 1.2, "score", parameter, baseline=best)
    for other in (best - 0.3, best + 0.3, 0.0, cost.expectation(0.4, 1.2)):
        assert (
            at_best
            <= exact_variance(cost, 0.4, 1.2, "score", parameter, baseline=other)
            + 1e-12
        )


# --- Exact moments against sympy.stats, with a baseline -------------------------------
# For the square cost every moment is a polynomial expectation, which sympy.stats
# computes exactly: an independent reference for both parameters, both estimators and
# any baseline.


def _sympy_moments(estimator, parameter, mu, sigma, k, baseline):
    import sympy as sp
    from sympy import stats

    eps = stats.Normal("eps", 0, 1)
    mu_, sigma_, k_, b_ = (sp.nsimplify(v) for v in (mu, sigma, k, baseline))
    x = mu_ + sigma_ * eps
    if estimator == "pathwise":
        derivative = 2 * (x - k_)
        draw = derivative if parameter == "mu" else derivative * eps
    else:
        score = eps / sigma_ if parameter == "mu" else (eps**2 - 1) / sigma_
        draw = ((x - k_) ** 2 - b_) * score
    mean = stats.E(draw)
    return float(mean), float(stats.E(draw**2) - mean**2)


@pytest.mark.parametrize("eps", [-1.5, 0.25, 2.0])
def test_one_draw_as_a_function_of_eps_is_the_estimators_formula(eps):
    mu, sigma, k = 0.4, 1.2, 0.5
    cost, x = costs.square.with_k(k), 0.4 + 1.2 * eps
    f, slope = (x - k) ** 2, 2 * (x - k)
    expected = {  # (estimator, parameter): one draw; no baseline given, so b = 0
        ("pathwise", "mu"): slope, ("pathwise", "sigma"): slope * eps,
        ("score", "mu"): f * eps / sigma, ("score", "sigma"): f * (eps**2 - 1) / sigma,
    }
    for (estimator, parameter), value in expected.items():
        draw = per_sample_function(cost, mu, sigma, estimator, parameter)
        assert draw(eps) == pytest.approx(value, rel=1e-12, abs=1e-15)
    with_b = per_sample_function(cost, mu, sigma, "score", "mu", baseline=0.7)
    assert with_b(eps) == pytest.approx((f - 0.7) * eps / sigma, rel=1e-12, abs=1e-15)
    # A step has derivative 0 wherever it has one, so each pathwise draw is 0.
    step = costs.step.with_k(k)
    for parameter in ("mu", "sigma"):
        assert per_sample_function(step, mu, sigma, "pathwise", parameter)(eps) == 0.0
        assert exact_moments(step, mu, sigma, "pathwise", parameter) == (0.0, 0.0)


@pytest.mark.parametrize("estimator", ["pathwise", "score"])
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
@pytest.mark.parametrize("baseline", [None, 0.7, -1.3])  # None: left out, so b = 0
def test_exact_moments_match_sympy_stats(estimator, parameter, baseline):
    mu, sigma, k = 0.4, 1.2, 0.5
    cost = costs.square.with_k(k)
    given = {} if baseline is None else {"baseline": baseline}
    ours = exact_moments(cost, mu, sigma, estimator, parameter, **given)
    reference = _sympy_moments(estimator, parameter, mu, sigma, k, baseline or 0.0)
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_optimal_baseline_matches_sympy(parameter):
    import sympy as sp
    from sympy import stats

    from reparam.variance import optimal_baseline

    mu, sigma, k = 0.4, 1.2, 0.5
    eps = stats.Normal("eps", 0, 1)
    f = (sp.nsimplify(mu) + sp.nsimplify(sigma) * eps - sp.nsimplify(k)) ** 2
    score = eps if parameter == "mu" else eps**2 - 1
    exact = float(stats.E(f * score**2) / stats.E(score**2))
    assert optimal_baseline(
        costs.square.with_k(k), mu, sigma, parameter
    ) == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.name)
@pytest.mark.parametrize("baseline", [0.7, -1.3])
def test_exact_variance_with_a_baseline_matches_sampling(cost, baseline):
    draws = score_function_grad(
        cost, 0.4, 1.2, 200_000, torch.Generator().manual_seed(5), baseline=baseline
    )
    for parameter, column in COLUMN.items():
        exact = exact_variance(cost, 0.4, 1.2, "score", parameter, baseline=baseline)
        centred = draws[:, column] - draws[:, column].mean()
        sample_variance = float(centred.pow(2).mean())
        standard_error = float((centred.pow(2).var() / draws.shape[0]).sqrt())
        assert abs(sample_variance - exact) <= 5 * standard_error, (
            parameter,
            exact,
            sample_variance,
        )


# --- The leave-one-out baseline at small n --------------------------------------------


@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_leave_one_out_variance_at_n2_is_the_exact_polynomial_expectation(parameter):
    # Two draws: the estimate is ((f1 - f2) s1 + (f2 - f1) s2) / 2, a polynomial in two
    # independent standard normals for the square cost; its moments follow exactly
    # from E[e^j] = (j - 1)!! for even j, term by term.
    import sympy as sp

    e1, e2 = sp.symbols("e1 e2", real=True)
    mu, sigma, k = sp.Rational(2, 5), sp.Rational(6, 5), sp.Rational(1, 2)
    f1, f2 = ((mu + sigma * e - k) ** 2 for e in (e1, e2))
    s1, s2 = ((e / sigma) if parameter == "mu" else (e**2 - 1) / sigma
              for e in (e1, e2))
    estimate = ((f1 - f2) * s1 + (f2 - f1) * s2) / 2

    def expectation(polynomial):
        moment = lambda j: 0 if j % 2 else sp.factorial2(j - 1)  # noqa: E731
        terms = sp.Poly(sp.expand(polynomial), e1, e2).terms()
        return sum(c * moment(i) * moment(j) for (i, j), c in terms)

    exact = float(2 * (expectation(estimate**2) - expectation(estimate) ** 2))
    ours = leave_one_out_variance(costs.square.with_k(0.5), 0.4, 1.2, parameter, 2)
    assert ours == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("cost", COSTS[1:3], ids=lambda c: c.name)
def test_leave_one_out_variance_at_n4_matches_sampling(cost):
    # 100,000 independent groups of 4 draws, each with its own leave-one-out baseline;
    # n times the variance of a group's mean estimate.
    n, groups = 4, 100_000
    eps = torch.randn(groups, n, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(6))
    values = subtract_baseline(cost(0.4 + 1.2 * eps), "leave-one-out", dim=1)
    scores = torch.stack((eps / 1.2, (eps**2 - 1) / 1.2), dim=-1)
    group_means = (values.unsqueeze(-1) * scores).mean(dim=1)
    summary = summarize(group_means * n**0.5)  # variance: n Var(group mean)
    for parameter, column in COLUMN.items():
        exact = leave_one_out_variance(cost, 0.4, 1.2, parameter, n)
        gap = abs(float(summary.variance[column]) - exact)
        assert gap < 5 * float(summary.variance_standard_error[column]), parameter
    # The rows' covariance matters: without it (the per-row variance) the formula
    # would miss the bump's sigma-gradient by many standard errors.
    gradient = cost.gradient(0.4, 1.2)[1]
    per_row = leave_one_out_variance(cost, 0.4, 1.2, "sigma", n) - gradient**2 / (n - 1)
    if cost.name == "gaussian_bump":
        assert abs(float(summary.variance[1]) - per_row) > 6 * float(
            summary.variance_standard_error[1])


@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_leave_one_out_variance_tends_to_the_mean_baseline(parameter):
    cost = costs.cosine.with_k(1.0)
    at_mean = exact_variance(cost, 1.0, 1.0, "score", parameter,
                             baseline=cost.expectation(1.0, 1.0))
    values = [leave_one_out_variance(cost, 1.0, 1.0, parameter, n)
              for n in (2, 4, 100, 10**6)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(at_mean, rel=1e-5)


def test_leave_one_out_variance_refuses_bad_input():
    with pytest.raises(ValueError, match="n"):
        leave_one_out_variance(costs.square, 0.0, 1.0, "mu", 1)
    with pytest.raises(TypeError, match="n"):
        leave_one_out_variance(costs.square, 0.0, 1.0, "mu", 4.0)
    with pytest.raises(ValueError, match="parameter"):
        leave_one_out_variance(costs.square, 0.0, 1.0, "k", 4)
    with pytest.raises(ValueError, match="sigma"):
        leave_one_out_variance(costs.square, 0.0, -1.0, "mu", 4)


def _variance_by_mpmath(draw, points, digits: int) -> float:
    """Var[draw(eps)], eps ~ N(0, 1), by mpmath's tanh-sinh quadrature split at
    ``points``, with ``digits`` digits."""
    with mpmath.workdps(digits):
        mean = mpmath.quad(lambda e: draw(e) * mpmath.npdf(e), points)
        return float(mpmath.quad(lambda e: (draw(e) - mean) ** 2 * mpmath.npdf(e),
                                 points))


@pytest.mark.parametrize("k", [100, 10_000])
@pytest.mark.parametrize("estimator", ["pathwise", "score"])
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_a_narrow_bump_is_not_missed(k, estimator, parameter):
    # Against mpmath at 30 digits, split at the bump's peak and twenty of its widths
    # either side, at mu = 1/20 and sigma = 1. Before quad was told where the bump is,
    # the pathwise variance came out as 0 from k = 100 on.
    mu, width = mpmath.mpf(1) / 20, 20 / mpmath.sqrt(k)

    def draw(eps):
        x = mu + eps
        f = mpmath.exp(-k * x**2)
        if estimator == "pathwise":
            return -2 * k * x * f * (1 if parameter == "mu" else eps)
        return f * (eps if parameter == "mu" else eps**2 - 1)

    points = [-mpmath.inf, -mu - width, -mu, -mu + width, mpmath.inf]
    expected = _variance_by_mpmath(draw, points, 30)
    cost = costs.gaussian_bump.with_k(k)
    assert exact_variance(cost, 0.05, 1.0, estimator, parameter) == pytest.approx(
        expected, rel=1e-8, abs=0)


@pytest.mark.parametrize("sigma", [1e-3, 1e-8])
def test_a_tiny_spread_keeps_its_relative_accuracy(sigma):
    # Against mpmath at 40 digits. E[g^2] - E[g]^2 cancelled: at sigma = 1e-8 the
    # variance of the bump's pathwise mu-draw (about 2e-16) came out 1 % off.
    def draw(eps):  # f'(x) for f = exp(-x^2), at x = 0.3 + sigma eps
        x = mpmath.mpf("0.3") + mpmath.mpf(sigma) * eps
        return -2 * x * mpmath.exp(-(x**2))

    expected = _variance_by_mpmath(draw, [-mpmath.inf, 0, mpmath.inf], 40)
    cost = costs.gaussian_bump.with_k(1.0)
    assert exact_variance(cost, 0.3, sigma, "pathwise", "mu") == pytest.approx(
        expected, rel=1e-6, abs=0)
