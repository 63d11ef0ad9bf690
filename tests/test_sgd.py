"""SGD with one-sample pathwise gradients: autograd's gradient; the runs converge."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reparam.sgd import (
    MIN_SIGMA,
    fit_gaussian_sgd,
    objective,
    one_sample_gradient,
    one_sample_score_gradient,
    optimum,
)


def test_one_sample_gradient_is_what_autograd_returns():
    for mu, sigma, eps, k in ((0.3, 1.2, -0.7, 2.0), (-1.0, 0.4, 1.9, 0.5)):
        theta = torch.tensor([mu, sigma], dtype=torch.float64, requires_grad=True)
        loss = (theta[0] + theta[1] * eps - k) ** 2 - torch.log(theta[1])
        loss.backward()
        assert one_sample_gradient(k, eps, mu, sigma) == pytest.approx(
            tuple(theta.grad.tolist()), rel=1e-14
        )


@pytest.mark.parametrize("gradient", [one_sample_gradient, one_sample_score_gradient])
def test_one_sample_gradients_are_unbiased_for_the_objective(gradient):
    eps = np.random.default_rng(0).standard_normal(400_000)
    mu, sigma, k, h = 0.3, 1.2, 2.0, 1e-6
    draws = np.stack(gradient(k, eps, mu, sigma))
    exact = (
        (objective(k, mu + h, sigma) - objective(k, mu - h, sigma)) / (2 * h),
        (objective(k, mu, sigma + h) - objective(k, mu, sigma - h)) / (2 * h),
    )
    standard_error = draws.std(axis=1, ddof=1) / math.sqrt(eps.size)
    assert np.all(np.abs(draws.mean(axis=1) - exact) < 4 * standard_error)


def test_score_gradient_is_f_times_autograd_of_log_prob_plus_the_entropy_term():
    # An independent route: torch.distributions' log-density, differentiated by
    # autograd, times the cost; plus d/dsigma of -log sigma.
    for mu, sigma, eps, k in ((0.3, 1.2, -0.7, 2.0), (-1.0, 0.4, 1.9, 0.5)):
        theta = torch.tensor([mu, sigma], dtype=torch.float64, requires_grad=True)
        x = torch.tensor(mu + sigma * eps, dtype=torch.float64)
        torch.distributions.Normal(theta[0], theta[1]).log_prob(x).backward()
        expected = (x.item() - k) ** 2 * theta.grad
        expected[1] -= 1.0 / sigma
        assert one_sample_score_gradient(k, eps, mu, sigma) == pytest.approx(
            tuple(expected.tolist()), rel=1e-13
        )


def test_the_score_gradient_has_the_larger_variance():
    eps = np.random.default_rng(1).standard_normal(100_000)
    score, pathwise = (np.stack(gradient(2.0, eps, 0.3, 1.2))
                       for gradient in (one_sample_score_gradient, one_sample_gradient))
    assert np.all(score.var(axis=1) > 2 * pathwise.var(axis=1))


def test_the_mean_square_error_falls_as_the_linearized_recursion_predicts():
    # Near the optimum each coordinate's error e obeys e <- (1 - a_t h) e - a_t xi,
    # h = 2 (mu) and 4 (sigma), Var xi = 2 and 4 (the one-draw gradient at the
    # optimum); so E[e^2] ~ a0^2 Var xi / ((2 a0 h - 1)(t + t0)).
    a0, t0, steps = 1.0, 50.0, 4000
    runs = fit_gaussian_sgd(2.0, steps=steps, runs=400, a0=a0, t0=t0,
                            generator=rng(11))
    squared = runs.distance_to_optimum()[-1] ** 2
    predicted = sum(a0**2 * v / ((2 * a0 * h - 1) * (steps + t0))
                    for h, v in ((2, 2), (4, 4)))
    standard_error = squared.std(ddof=1) / math.sqrt(squared.size)
    assert abs(squared.mean() - predicted) < 4 * standard_error


def test_optimum_minimizes_the_objective():
    k = 1.5
    mu_star, sigma_star = optimum(k)
    best = objective(k, mu_star, sigma_star)
    for d_mu, d_sigma in ((0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)):
        assert objective(k, mu_star + d_mu, sigma_star + d_sigma) > best


def rng(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_run_converges_and_the_error_shrinks(seed):
    runs = fit_gaussian_sgd(2.0, steps=5000, runs=100, a0=1.0, t0=50.0,
                            generator=rng(seed))
    assert runs.projections == 0  # sigma never came near the floor
    distance = runs.distance_to_optimum()
    assert distance[0].min() > 1.0  # they start far away
    assert distance[-1].max() < 0.1  # every run ends close
    rms = np.sqrt((distance**2).mean(axis=1))
    assert rms[-1] < rms[500] / 2  # and the error keeps shrinking


@pytest.mark.parametrize(
    "estimator, gradient",
    [("pathwise", one_sample_gradient), ("score", one_sample_score_gradient)],
)
def test_each_run_takes_its_estimators_steps_with_its_own_noise(estimator, gradient):
    # Run j uses column j of one (steps, runs) draw: two runs sharing one noise sequence
    # would still converge, so check the rows of a two-run fit step by step.
    runs = fit_gaussian_sgd(
        1.0, start=(0.0, 1.0), steps=3, runs=2, a0=0.5, t0=50.0, generator=rng(5),
        estimator=estimator,
    )
    eps = np.random.default_rng(5).standard_normal((3, 2))
    for j in range(2):
        mu, sigma = 0.0, 1.0
        for t in range(3):
            g_mu, g_sigma = gradient(1.0, eps[t, j], mu, sigma)
            step = 0.5 / (t + 50.0)
            mu, sigma = mu - step * g_mu, sigma - step * g_sigma
            assert runs.mu[t + 1, j] == mu and runs.sigma[t + 1, j] == sigma
    assert runs.mu[-1, 0] != runs.mu[-1, 1]


def test_determinism_with_other_draws_in_between():
    first = fit_gaussian_sgd(0.5, steps=50, runs=3, generator=rng(7))
    np.random.default_rng(7).standard_normal(100)  # unrelated draws
    torch.randn(10)
    second = fit_gaussian_sgd(0.5, steps=50, runs=3, generator=rng(7))
    assert np.array_equal(first.mu, second.mu) and np.array_equal(
        first.sigma, second.sigma
    )
    other = fit_gaussian_sgd(0.5, steps=50, runs=3, generator=rng(8))
    assert not np.array_equal(first.mu, other.mu)


def test_sigma_stays_positive_with_a_huge_step_and_the_projections_are_counted():
    runs = fit_gaussian_sgd(
        1.0, start=(0.0, 1.0), steps=20, runs=5, a0=5.0, t0=1.0, generator=rng(0)
    )
    assert runs.sigma.min() == MIN_SIGMA
    # an update is projected exactly when it lands on the floor (a free update landing
    # exactly on 1e-3 has probability zero)
    assert runs.projections == np.count_nonzero(runs.sigma[1:] == MIN_SIGMA) > 0


def test_the_generator_is_used_and_advanced():
    generator = rng(4)
    first = fit_gaussian_sgd(1.0, steps=5, runs=2, generator=generator)
    second = fit_gaussian_sgd(1.0, steps=5, runs=2, generator=generator)
    assert not np.array_equal(first.mu, second.mu)


def _assert_first_steps_by_hand(runs, start, a0, t0, noise):
    """The first three steps of run 0 redone by hand from the same noise."""
    mu, sigma = start
    assert runs.mu[0, 0] == mu and runs.sigma[0, 0] == sigma
    for t in range(3):
        g_mu, g_sigma = one_sample_gradient(1.0, noise[t, 0], mu, sigma)
        step = a0 / (t + t0)
        mu, sigma = mu - step * g_mu, sigma - step * g_sigma
        assert runs.mu[t + 1, 0] == mu and runs.sigma[t + 1, 0] == sigma


def test_small_run_rows_are_exact():
    runs = fit_gaussian_sgd(
        1.0, start=(0.0, 1.0), steps=3, runs=1, a0=0.5, t0=50.0, generator=rng(3)
    )
    noise = np.random.default_rng(3).standard_normal((3, 1))
    _assert_first_steps_by_hand(runs, (0.0, 1.0), 0.5, 50.0, noise)


def test_the_defaults_are_the_documented_ones():
    # start (0, 1.5), 20,000 steps, one run, step sizes 0.5 / (t + 10), the pathwise
    # gradient.
    runs = fit_gaussian_sgd(1.0, generator=rng(3))
    assert runs.mu.shape == runs.sigma.shape == (20_001, 1)
    noise = rng(3).standard_normal((20_000, 1))
    _assert_first_steps_by_hand(runs, (0.0, 1.5), 0.5, 10.0, noise)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"steps": 0}, ValueError),
        ({"runs": 1.5}, TypeError),
        ({"a0": 0.0}, ValueError),
        ({"t0": 0.0}, ValueError),  # (not a ZeroDivisionError at the first step)
        ({"start": (0.0, -1.0)}, ValueError),
        ({"k": math.nan}, ValueError),
        ({"generator": 3}, TypeError),
        ({"generator": None}, TypeError),
        ({"generator": torch.Generator()}, TypeError),
        ({"estimator": "reinforce"}, ValueError),
        ({"estimator": 1}, TypeError),
    ],
)
def test_bad_inputs(kwargs, error):
    arguments = {"k": 1.0, "steps": 10, "generator": rng(0)} | kwargs
    with pytest.raises(error):
        fit_gaussian_sgd(**arguments)
