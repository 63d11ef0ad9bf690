"""The boundary term of reparam.jumps against the closed form and against quadrature."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, stats

from reparam import costs
from reparam.estimators import pathwise_grad, summarize
from reparam.jumps import boundary_term

SETTINGS = [(0.5, 0.0, 1.0), (-1.0, 0.3, 0.5), (2.0, 2.5, 3.0)]


@pytest.mark.parametrize("k, mu, sigma", SETTINGS)
def test_boundary_term_of_a_unit_step_is_the_exact_gradient(k, mu, sigma):
    # Pathwise sees 0 for a step, so the boundary term alone must be the whole gradient.
    assert boundary_term(k, mu, sigma) == pytest.approx(
        costs.step.with_k(k).gradient(mu, sigma), rel=1e-14
    )


@pytest.mark.parametrize("k, mu, sigma", SETTINGS)
def test_boundary_term_against_differentiating_the_probability(k, mu, sigma):
    # d/dtheta P(x > k) by central differences of scipy's survival function.
    h = 1e-6
    survival = lambda m, s: stats.norm.sf(k, m, s)  # noqa: E731
    reference = (
        (survival(mu + h, sigma) - survival(mu - h, sigma)) / (2 * h),
        (survival(mu, sigma + h) - survival(mu, sigma - h)) / (2 * h),
    )
    jump = -2.5  # a downward jump scales (and flips) the term
    expected = tuple(jump * r for r in reference)
    assert boundary_term(k, mu, sigma, jump=jump) == pytest.approx(expected, rel=1e-7)


def test_pathwise_plus_boundary_is_the_exact_gradient_of_a_smooth_part_plus_a_jump():
    # f(x) = (x - 1)^2 + 3 * 1[x > 0.2]: pathwise sees only the square.
    square, k, jump, mu, sigma = costs.square.with_k(1.0), 0.2, 3.0, 0.4, 0.9
    f = lambda x: square(x) + jump * costs.step.with_k(k)(x)  # noqa: E731
    exact = [
        a + jump * b
        for a, b in zip(
            square.gradient(mu, sigma),
            costs.step.with_k(k).gradient(mu, sigma),
            strict=True,
        )
    ]
    summary = summarize(
        pathwise_grad(f, mu, sigma, 100_000, torch.Generator().manual_seed(3))
    )
    corrected = summary.mean + torch.tensor(
        boundary_term(k, mu, sigma, jump), dtype=torch.float64
    )
    uncorrected_gap = (summary.mean - torch.tensor(exact, dtype=torch.float64)).abs()
    assert bool(
        (uncorrected_gap > 10 * summary.standard_error).all()
    )  # biased without it
    assert bool(
        (
            (corrected - torch.tensor(exact, dtype=torch.float64)).abs()
            < 4 * summary.standard_error
        ).all()
    )


def test_boundary_term_by_quadrature_of_the_density_derivative():
    k, mu, sigma = 0.7, -0.2, 1.4
    d_mu = integrate.quad(
        lambda x: stats.norm.pdf(x, mu, sigma) * (x - mu) / sigma**2, k, math.inf
    )[0]
    assert boundary_term(k, mu, sigma)[0] == pytest.approx(d_mu, rel=1e-9)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"k": math.nan}, "k"),
        ({"mu": math.inf}, "mu"),
        ({"jump": math.nan}, "jump"),
    ],
)
def test_bad_inputs(bad, match):
    arguments = {"k": 0.0, "mu": 0.0, "sigma": 1.0, "jump": 1.0} | bad
    with pytest.raises(ValueError, match=match):
        boundary_term(**arguments)
