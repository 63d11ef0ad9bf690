"""Exact estimator moments: means equal the closed-form gradients, variances match sampling."""

from __future__ import annotations

import pytest
import torch

from reparam import costs
from reparam.estimators import pathwise_grad, score_function_grad
from reparam.variance import exact_moments, exact_variance

COSTS = [costs.square.with_k(0.5), costs.gaussian_bump.with_k(2.0), costs.cosine.with_k(1.5),
         costs.step.with_k(0.3)]
COLUMN = {"mu": 0, "sigma": 1}


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.name)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_score_function_mean_is_the_exact_gradient(cost, parameter):
    mean, _ = exact_moments(cost, 0.4, 1.2, "score", parameter)
    assert mean == pytest.approx(cost.gradient(0.4, 1.2)[COLUMN[parameter]], rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("cost", COSTS[:3], ids=lambda c: c.name)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_pathwise_mean_is_the_exact_gradient(cost, parameter):
    mean, _ = exact_moments(cost, 0.4, 1.2, "pathwise", parameter)
    assert mean == pytest.approx(cost.gradient(0.4, 1.2)[COLUMN[parameter]], rel=1e-7, abs=1e-10)


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
        assert abs(sample_variance - exact) <= 5 * standard_error + 1e-12, (parameter, exact, sample_variance)


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
        assert at_best <= exact_variance(cost, 0.4, 1.2, "score", parameter, baseline=other) + 1e-12
