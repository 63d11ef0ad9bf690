"""Estimators against torch.distributions, closed forms, and each other."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from reparam import costs
from reparam.estimators import (
    draw_standard_normal,
    leave_one_out_baseline,
    pathwise_grad,
    score_function_grad,
    summarize,
)

F64 = torch.float64
COSTS = [
    costs.square.with_k(1.0),
    costs.gaussian_bump.with_k(1.0),
    costs.cosine.with_k(1.5),
    costs.step.with_k(0.5),
]
N = 200_000
# unbiasedness: the mean is within 4 standard errors of the exact gradient
TOLERANCE_SE = 4.0


def _copies(value, n):
    return torch.full((n,), value, dtype=F64, requires_grad=True)


@pytest.mark.parametrize("cost", COSTS[:3], ids=lambda c: c.name)
def test_pathwise_equals_autograd_through_torch_rsample_exactly(cost):
    # torch.distributions draws from the global generator; seeded alike, a
    # torch.Generator draws the same numbers (checked below), so the two replay the
    # same eps. fork_rng leaves the caller's global state as it was.
    n, mu, sigma = 1000, 0.3, 1.7
    mu_copies, sigma_copies = _copies(mu, n), _copies(sigma, n)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2024)
        cost(Normal(mu_copies, sigma_copies).rsample()).sum().backward()
    ours = pathwise_grad(cost, mu, sigma, n, torch.Generator().manual_seed(2024))
    assert torch.equal(ours[:, 0], mu_copies.grad)
    assert torch.equal(ours[:, 1], sigma_copies.grad)


def test_an_explicit_generator_draws_what_the_global_one_draws():
    a = draw_standard_normal(64, torch.Generator().manual_seed(5))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        assert torch.equal(a, torch.empty(64, dtype=F64).normal_())


@pytest.mark.parametrize("estimator", [pathwise_grad, score_function_grad])
def test_no_generator_is_refused_and_the_global_state_is_left_alone(estimator):
    before = torch.get_rng_state()
    with pytest.raises(TypeError, match="generator"):
        estimator(costs.square, 0.0, 1.0, 4, None)
    with pytest.raises(TypeError):
        estimator(costs.square, 0.0, 1.0, 4)  # no generator at all
    estimator(costs.square, 0.0, 1.0, 4, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), before)
    with pytest.raises(TypeError, match="generator"):
        draw_standard_normal(4, None)


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.name)
def test_score_function_equals_f_times_autograd_of_torch_log_prob(cost):
    n, mu, sigma = 500, -0.4, 0.8
    generator = torch.Generator().manual_seed(9)
    ours = score_function_grad(cost, mu, sigma, n, generator=generator)
    x = draw_standard_normal(n, torch.Generator().manual_seed(9)) * sigma + mu
    mu_copies, sigma_copies = _copies(mu, n), _copies(sigma, n)
    Normal(mu_copies, sigma_copies).log_prob(x).sum().backward()
    reference = torch.stack((mu_copies.grad, sigma_copies.grad), 1) * cost(x).unsqueeze(
        1
    )
    assert torch.allclose(ours, reference, rtol=1e-12, atol=1e-14)


ESTIMATOR_VARIANTS = {
    "score": (score_function_grad, None),
    "score-constant-baseline": (score_function_grad, 0.7),
    "score-leave-one-out": (score_function_grad, "leave-one-out"),
    "pathwise": (pathwise_grad, None),
}
# The pathwise estimator is biased for the step cost: that case is tested on its own
# below.
UNBIASED_CASES = [
    pytest.param(cost, *variant, id=f"{cost.name}-{name}")
    for cost in COSTS
    for name, variant in ESTIMATOR_VARIANTS.items()
    if cost.differentiable or name != "pathwise"
]


@pytest.mark.parametrize("cost, estimator, baseline", UNBIASED_CASES)
def test_unbiased_within_four_standard_errors(cost, estimator, baseline):
    mu, sigma = 0.8, 1.3
    kwargs = {} if estimator is pathwise_grad else {"baseline": baseline}
    samples = estimator(
        cost, mu, sigma, N, generator=torch.Generator().manual_seed(11), **kwargs
    )
    summary = summarize(samples)
    exact = torch.tensor(cost.gradient(mu, sigma), dtype=F64)
    assert summary.within(exact, TOLERANCE_SE), (
        summary.mean,
        exact,
        summary.standard_error,
    )


def test_step_cost_pathwise_is_exactly_zero_and_score_function_is_unbiased():
    cost, mu, sigma = costs.step.with_k(0.5), 0.0, 1.0
    pathwise = pathwise_grad(
        cost, mu, sigma, N, generator=torch.Generator().manual_seed(1)
    )
    assert torch.count_nonzero(pathwise) == 0
    score = summarize(
        score_function_grad(cost, mu, sigma, N, torch.Generator().manual_seed(1))
    )
    density_at_k = math.exp(-0.5 * 0.5**2) / math.sqrt(2 * math.pi)
    assert abs(score.mean[0] - density_at_k) <= TOLERANCE_SE * score.standard_error[0]
    assert density_at_k > 10 * score.standard_error[0]  # so "0" really is rejected


def test_a_graph_cutting_cost_gives_zero_pathwise_gradient():
    estimates = pathwise_grad(lambda x: (x > 0).to(F64), 0.0, 1.0, 10,
                              torch.Generator().manual_seed(0))
    assert torch.equal(estimates, torch.zeros(10, 2, dtype=F64))


def test_deterministic_given_the_generator_and_shapes():
    for estimator in (pathwise_grad, score_function_grad):
        a = estimator(costs.cosine, 0.1, 0.9, 50, torch.Generator().manual_seed(3))
        b = estimator(costs.cosine, 0.1, 0.9, 50, torch.Generator().manual_seed(3))
        assert torch.equal(a, b)
        assert a.shape == (50, 2) and a.dtype == F64


def test_zero_dimensional_tensor_parameters_are_accepted():
    a = pathwise_grad(
        costs.square,
        torch.tensor(0.5),
        torch.tensor(2.0),
        5,
        torch.Generator().manual_seed(0),
    )
    b = pathwise_grad(costs.square, 0.5, 2.0, 5, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_a_baseline_reduces_variance_where_the_mean_cost_is_large():
    # (x - k)^2 has a large mean; subtracting it removes most of the score-function
    # variance.
    cost, mu, sigma = costs.square.with_k(5.0), 1.0, 1.0
    plain = summarize(
        score_function_grad(cost, mu, sigma, N, torch.Generator().manual_seed(2))
    )
    with_baseline = summarize(
        score_function_grad(
            cost,
            mu,
            sigma,
            N,
            torch.Generator().manual_seed(2),
            baseline="leave-one-out",
        )
    )
    assert bool((with_baseline.variance < 0.7 * plain.variance).all()), (
        with_baseline.variance,
        plain.variance,
    )


def test_summary_standard_error():
    samples = torch.randn(
        1000, 2, dtype=F64, generator=torch.Generator().manual_seed(0)
    )
    summary = summarize(samples)
    assert torch.allclose(summary.standard_error, samples.std(0) / math.sqrt(1000))
    with pytest.raises(ValueError, match="shape"):
        summarize(torch.zeros(1, 2))
    with pytest.raises(TypeError):
        summarize([[1.0, 2.0]])


def test_summary_variance_standard_error():
    samples = torch.randn(
        20_000, 2, dtype=F64, generator=torch.Generator().manual_seed(1)
    )
    summary = summarize(samples)
    centred = samples - samples.mean(0)
    assert torch.allclose(
        summary.variance_standard_error, (centred.pow(2).var(0) / 20_000).sqrt()
    )
    # For N(0,1) draws Var[(X - mean)^2] = 2, so the SE of the variance is about
    # sqrt(2/n).
    assert torch.allclose(
        summary.variance_standard_error,
        torch.full((2,), (2 / 20_000) ** 0.5, dtype=F64),
        rtol=0.05,
    )


# --- Exact rows at small n, unbiasedness at small n, determinism ----------------------
# The estimators are checked row by row against formulas written out by hand here, so a
# wrong baseline or a wrong score shows up in one draw, not only in a mean at large n.


def _identity(x):
    return x


def _eps(n, seed):
    return draw_standard_normal(n, torch.Generator().manual_seed(seed)).tolist()


def test_score_rows_without_baseline_n2():
    mu, sigma = 0.5, 2.0
    e1, e2 = _eps(2, 21)
    rows = score_function_grad(
        _identity, mu, sigma, 2, torch.Generator().manual_seed(21)
    )
    x1, x2 = mu + sigma * e1, mu + sigma * e2
    expected = [
        [x1 * e1 / sigma, x1 * (e1 * e1 - 1) / sigma],
        [x2 * e2 / sigma, x2 * (e2 * e2 - 1) / sigma],
    ]
    assert torch.allclose(
        rows, torch.tensor(expected, dtype=F64), rtol=1e-14, atol=1e-15
    )


def test_score_rows_with_a_constant_baseline_subtract_it():
    mu, sigma, b = -0.3, 0.7, 2.5
    (e1,) = _eps(1, 22)
    rows = score_function_grad(
        _identity, mu, sigma, 1, torch.Generator().manual_seed(22), baseline=b
    )
    x1 = mu + sigma * e1
    expected = [[(x1 - b) * e1 / sigma, (x1 - b) * (e1 * e1 - 1) / sigma]]
    assert torch.allclose(
        rows, torch.tensor(expected, dtype=F64), rtol=1e-14, atol=1e-15
    )


def test_leave_one_out_rows_n2():
    # n = 2: each draw's baseline is the OTHER draw's cost, divided by n - 1 = 1.
    mu, sigma = 0.2, 1.5
    e1, e2 = _eps(2, 23)
    rows = score_function_grad(
        _identity,
        mu,
        sigma,
        2,
        torch.Generator().manual_seed(23),
        baseline="leave-one-out",
    )
    x1, x2 = mu + sigma * e1, mu + sigma * e2
    expected = [
        [(x1 - x2) * e1 / sigma, (x1 - x2) * (e1 * e1 - 1) / sigma],
        [(x2 - x1) * e2 / sigma, (x2 - x1) * (e2 * e2 - 1) / sigma],
    ]
    assert torch.allclose(
        rows, torch.tensor(expected, dtype=F64), rtol=1e-13, atol=1e-14
    )


def test_leave_one_out_rows_n3_with_a_nonlinear_cost():
    mu, sigma, k = 0.4, 0.9, 1.0
    cost = costs.square.with_k(k)
    e = _eps(3, 24)
    rows = score_function_grad(
        cost, mu, sigma, 3, torch.Generator().manual_seed(24), baseline="leave-one-out"
    )
    f = [(mu + sigma * v - k) ** 2 for v in e]
    baselines = [(f[1] + f[2]) / 2, (f[0] + f[2]) / 2, (f[0] + f[1]) / 2]
    expected = [
        [
            (f[i] - baselines[i]) * e[i] / sigma,
            (f[i] - baselines[i]) * (e[i] ** 2 - 1) / sigma,
        ]
        for i in range(3)
    ]
    assert torch.allclose(
        rows, torch.tensor(expected, dtype=F64), rtol=1e-13, atol=1e-14
    )


def test_pathwise_rows_n3():
    mu, sigma, k = -0.6, 1.4, 0.5
    e = _eps(3, 25)
    rows = pathwise_grad(
        costs.square.with_k(k), mu, sigma, 3, torch.Generator().manual_seed(25)
    )
    derivative = [2 * (mu + sigma * v - k) for v in e]  # d/dx (x - k)^2
    expected = [[derivative[i], derivative[i] * e[i]] for i in range(3)]
    assert torch.allclose(
        rows, torch.tensor(expected, dtype=F64), rtol=1e-14, atol=1e-15
    )


@pytest.mark.parametrize("baseline", [None, 1.7, "leave-one-out"])
def test_unbiased_at_n2(baseline):
    # 20,000 independent two-draw estimates: each estimate (mean of its two rows) must
    # be unbiased by itself. Including draw i in its own baseline would halve the mean.
    cost, mu, sigma, repeats = costs.square.with_k(1.0), 0.8, 1.3, 20_000
    generator = torch.Generator().manual_seed(26)
    estimates = torch.stack(
        [
            score_function_grad(cost, mu, sigma, 2, generator, baseline=baseline).mean(
                0
            )
            for _ in range(repeats)
        ]
    )
    summary = summarize(estimates)
    exact = torch.tensor(cost.gradient(mu, sigma), dtype=F64)
    assert summary.within(exact, TOLERANCE_SE), (
        summary.mean,
        exact,
        summary.standard_error,
    )
    # half of it is rejected
    assert bool((exact.abs() > 10 * summary.standard_error).all())


@pytest.mark.parametrize("estimator", [pathwise_grad, score_function_grad])
def test_deterministic_with_other_draws_in_between(estimator):
    first = estimator(costs.cosine, 0.1, 0.9, 7, torch.Generator().manual_seed(27))
    torch.randn(1000)  # the global generator moves
    # and so does another one
    torch.randn(5, generator=torch.Generator().manual_seed(99))
    second = estimator(costs.cosine, 0.1, 0.9, 7, torch.Generator().manual_seed(27))
    assert torch.equal(first, second)
    assert not torch.equal(
        first, estimator(costs.cosine, 0.1, 0.9, 7, torch.Generator().manual_seed(28))
    )


def test_the_generator_is_advanced_so_successive_calls_differ():
    generator = torch.Generator().manual_seed(29)
    a = score_function_grad(costs.cosine, 0.0, 1.0, 4, generator)
    b = score_function_grad(costs.cosine, 0.0, 1.0, 4, generator)
    assert not torch.equal(a, b)


def test_summary_rows_exactly():
    samples = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 7.0]], dtype=F64)
    summary = summarize(samples)
    assert torch.equal(summary.mean, torch.tensor([3.0, 5.0], dtype=F64))
    # n - 1
    assert torch.allclose(summary.variance, torch.tensor([4.0, 7.0], dtype=F64))
    assert torch.allclose(
        summary.standard_error, torch.tensor([4.0 / 3, 7.0 / 3], dtype=F64).sqrt()
    )
    assert summary.n == 3
    assert summary.within([3.0, 5.0], 0.0)
    assert not summary.within([3.0 + 4 * (4 / 3) ** 0.5 + 1e-9, 5.0], 4.0)


def test_summary_at_the_smallest_n_of_two_rows():
    # Two rows are the fewest with a sample variance: accepted, and exact.
    summary = summarize(torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=F64))
    assert torch.equal(summary.mean, torch.tensor([2.0, 4.0], dtype=F64))
    assert torch.equal(summary.variance, torch.tensor([2.0, 8.0], dtype=F64))
    assert torch.equal(summary.standard_error, torch.tensor([1.0, 2.0], dtype=F64))
    # Both rows lie equally far from the mean: their squared deviations do not vary.
    assert torch.equal(summary.variance_standard_error, torch.zeros(2, dtype=F64))


def test_within_counts_four_standard_errors_by_default():
    summary = summarize(torch.tensor([[1.0], [5.0]], dtype=F64))  # mean 3, SE 2
    assert summary.standard_error.item() == 2.0
    assert summary.within([3.0 + 7.9]) and summary.within([3.0 - 7.9])
    assert not summary.within([3.0 + 8.1]) and not summary.within([3.0 - 8.1])
    assert summary.within([3.0 + 9.9], standard_errors=5.0)


def test_leave_one_out_baseline_is_the_mean_of_the_other_rows():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]], dtype=F64)
    expected = torch.tensor([[4.0, 6.5], [3.0, 5.5], [2.0, 3.0]], dtype=F64)
    assert torch.equal(leave_one_out_baseline(values), expected)  # along rows
    assert torch.equal(leave_one_out_baseline(values.T, dim=1), expected.T)


def test_finite_costs_whose_sum_overflows_are_accepted():
    # 4 x 1e308 overflows the sum, which is only the cue to look at the values.
    def huge(x):
        return 0 * x + 1e308

    rows = pathwise_grad(huge, 0.0, 1.0, 4, torch.Generator().manual_seed(0))
    assert torch.equal(rows, torch.zeros(4, 2, dtype=F64))
