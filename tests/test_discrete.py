"""reparam.discrete against autograd, torch.distributions, scipy.stats and hand
computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy import optimize as scipy_optimize
from torch.distributions import Categorical, RelaxedOneHotCategorical

from reparam import discrete
from reparam.estimators import summarize

F64 = torch.float64
F = torch.tensor([1.0, 0.4, 0.0, -0.3], dtype=F64)
THETA = torch.tensor([0.7, -0.2, 0.1, -1.0], dtype=F64)
TOLERANCE_SE = 4.0  # Monte Carlo checks: within 4 standard errors, seeded


def _autograd_of_enumerated_expectation(f, theta):
    theta = theta.clone().requires_grad_(True)
    (torch.softmax(theta, 0) * f).sum().backward()
    return theta.grad


# --- exact gradient -------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 5, 9])
def test_exact_grad_equals_autograd_through_the_enumerated_expectation(k):
    rng = np.random.default_rng(k)
    f = torch.tensor(rng.normal(size=k), dtype=F64)
    theta = torch.tensor(rng.normal(scale=2.0, size=k), dtype=F64)
    ours = discrete.exact_grad(f, theta)
    assert ours.dtype == F64 and ours.shape == (k,)
    assert torch.allclose(
        ours, _autograd_of_enumerated_expectation(f, theta), rtol=1e-12, atol=1e-15
    )


def test_exact_grad_by_hand_for_uniform_logits():
    # p = (1/2, 1/2), f = (1, 3): p.f = 2, gradient = (1/2 (1 - 2), 1/2 (3 - 2)).
    assert torch.equal(
        discrete.exact_grad([1.0, 3.0], [0.0, 0.0]),
        torch.tensor([-0.5, 0.5], dtype=F64),
    )


def test_exact_grad_ignores_a_shift_of_all_logits_and_sums_to_zero():
    a = discrete.exact_grad(F, THETA)
    b = discrete.exact_grad(F, THETA + 12.5)
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)
    assert abs(float(a.sum())) < 1e-15


# --- Gumbel noise and Gumbel-max ------------------------------------------------------


def test_gumbel_noise_has_the_gumbel_cdf_kolmogorov_smirnov():
    draws = discrete.draw_gumbel(50_000, 1, torch.Generator().manual_seed(3))[
        :, 0
    ].numpy()
    assert stats.kstest(draws, stats.gumbel_r.cdf).pvalue > 1e-3


@pytest.mark.parametrize("n", [30_000, 300_000])
def test_gumbel_max_frequencies_chi_square(n):
    # Level 0.001, seeded: a wrong law (e.g. softmax of the negated logits, or argmin)
    # gives chi-square statistics in the thousands at these n.
    p = torch.softmax(THETA, 0).numpy()
    draws = discrete.gumbel_max_sample(THETA, n, torch.Generator().manual_seed(n))
    assert draws.dtype == torch.int64 and draws.shape == (n,)
    counts = np.bincount(draws.numpy(), minlength=4)
    assert stats.chisquare(counts, n * p).pvalue > 1e-3


def test_gumbel_max_is_argmax_of_logits_plus_the_replayed_noise():
    a = discrete.gumbel_max_sample(THETA, 100, torch.Generator().manual_seed(4))
    noise = discrete.draw_gumbel(100, 4, torch.Generator().manual_seed(4))
    assert torch.equal(a, torch.argmax(THETA + noise, 1))


def test_gumbel_max_with_a_dominant_logit_always_picks_it():
    draws = discrete.gumbel_max_sample(
        [0.0, 60.0, 0.0], 1000, torch.Generator().manual_seed(1)
    )
    assert bool((draws == 1).all())


# --- relaxed samples ------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 3.0])
def test_relaxed_samples_replay_torch_relaxed_one_hot_categorical(temperature):
    # torch's rsample uses the global generator; a Generator with the same seed draws
    # the same uniforms, so the two must agree draw by draw (up to round-off of the
    # normalization).
    n = 2000
    torch.manual_seed(77)
    reference = RelaxedOneHotCategorical(
        torch.tensor(temperature, dtype=F64), logits=THETA
    ).rsample((n,))
    ours = discrete.gumbel_softmax_sample(
        THETA, temperature, n, torch.Generator().manual_seed(77)
    )
    assert ours.dtype == F64 and ours.shape == (n, 4)
    assert torch.allclose(ours, reference, rtol=1e-9, atol=1e-12)
    assert torch.allclose(ours.sum(1), torch.ones(n, dtype=F64), atol=1e-12)
    assert bool((ours >= 0).all())


def test_relaxed_law_against_independent_torch_draws_two_sample_ks():
    # Not a replay: independent draws from torch; each coordinate's marginal, KS at
    # level 1e-3.
    n = 20_000
    torch.manual_seed(123)
    reference = RelaxedOneHotCategorical(
        torch.tensor(0.7, dtype=F64), logits=THETA
    ).sample((n,))
    ours = discrete.gumbel_softmax_sample(
        THETA, 0.7, n, torch.Generator().manual_seed(9)
    )
    for k in range(4):
        assert stats.ks_2samp(ours[:, k].numpy(), reference[:, k].numpy()).pvalue > 1e-3


def test_relaxed_samples_approach_one_hot_as_temperature_falls():
    hard = discrete.gumbel_softmax_sample(
        THETA, 0.01, 2000, torch.Generator().manual_seed(2)
    )
    draws = discrete.gumbel_max_sample(THETA, 2000, torch.Generator().manual_seed(2))
    assert torch.equal(hard.argmax(1), draws)  # same noise, same winner
    assert float(hard.max(1).values.median()) > 0.999


# --- Gumbel-softmax gradients ---------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.2, 1.0, 2.5])
def test_gumbel_softmax_grad_rows_equal_autograd_through_torch_rsample(temperature):
    n = 3000
    torch.manual_seed(31)
    copies = THETA.expand(n, -1).clone().requires_grad_(True)
    relaxed = RelaxedOneHotCategorical(
        torch.tensor(temperature, dtype=F64), logits=copies
    )
    (relaxed.rsample() @ F).sum().backward()
    ours = discrete.gumbel_softmax_grad(
        F, THETA, temperature, n, torch.Generator().manual_seed(31)
    )
    assert ours.shape == (n, 4) and ours.dtype == F64
    assert torch.allclose(ours, copies.grad, rtol=1e-8, atol=1e-12)


def test_mean_gumbel_softmax_grad_matches_independent_torch_autograd_within_se():
    # Independent noise: the mean of our rows and the mean of torch's per-draw gradients
    # estimate the same vector (the gradient of the relaxed objective); their difference
    # is compared with the combined standard error.
    n, temperature = 200_000, 0.6
    ours = summarize(
        discrete.gumbel_softmax_grad(
            F, THETA, temperature, n, torch.Generator().manual_seed(5)
        )
    )
    torch.manual_seed(6)
    copies = THETA.expand(n, -1).clone().requires_grad_(True)
    relaxed = RelaxedOneHotCategorical(
        torch.tensor(temperature, dtype=F64), logits=copies
    )
    (relaxed.rsample() @ F).sum().backward()
    theirs = summarize(copies.grad)
    combined = (ours.standard_error**2 + theirs.standard_error**2).sqrt()
    assert bool(((ours.mean - theirs.mean).abs() <= TOLERANCE_SE * combined).all())


def test_gumbel_softmax_grad_is_biased_for_the_discrete_objective():
    n = 200_000
    summary = summarize(
        discrete.gumbel_softmax_grad(F, THETA, 1.0, n, torch.Generator().manual_seed(8))
    )
    exact = discrete.exact_grad(F, THETA)
    z = (summary.mean - exact).abs() / summary.standard_error
    assert float(z.max()) > 20.0


def test_straight_through_bias_is_nonzero_at_stated_standard_errors():
    n = 200_000
    summary = summarize(
        discrete.straight_through_grad(
            F, THETA, 1.0, n, torch.Generator().manual_seed(8)
        )
    )
    exact = discrete.exact_grad(F, THETA)
    z = (summary.mean - exact).abs() / summary.standard_error
    assert float(z.max()) > 20.0, z


def test_straight_through_rows_equal_relaxed_rows_for_a_linear_cost():
    # d(y.f)/dy = f wherever it is evaluated, so the backward pass cannot see the
    # one-hot.
    for temperature in (0.3, 1.0):
        st_rows = discrete.straight_through_grad(
            F, THETA, temperature, 500, torch.Generator().manual_seed(1)
        )
        gs_rows = discrete.gumbel_softmax_grad(
            F, THETA, temperature, 500, torch.Generator().manual_seed(1)
        )
        assert torch.allclose(st_rows, gs_rows, rtol=1e-10, atol=1e-14)


def test_straight_through_forward_value_is_the_one_hot_cost():
    # The forward pass of the straight-through graph equals f at the Gumbel-max
    # category.
    noise = discrete.draw_gumbel(50, 4, torch.Generator().manual_seed(3))
    soft = torch.softmax((THETA + noise) / 0.5, 1)
    hard = torch.nn.functional.one_hot(soft.argmax(1), 4).to(F64)
    forward = hard - soft.detach() + soft
    draws = discrete.gumbel_max_sample(THETA, 50, torch.Generator().manual_seed(3))
    assert torch.allclose(forward @ F, F[draws], atol=1e-15)


# --- score function -------------------------------------------------------------------


def test_score_function_rows_by_hand_n_equals_3_leave_one_out():
    # f = (1, 2, 4), uniform logits: p = (1/3, 1/3, 1/3); draws z = (0, 2, 2).
    # Baselines: b_0 = (4 + 4)/2 = 4, b_1 = b_2 = (1 + 4)/2 = 2.5.
    # Rows: (1 - 4)(e_0 - p) = (-2, 1, 1); (4 - 2.5)(e_2 - p) = (-1/2, -1/2, 1), twice.
    rows = discrete.score_function_grad_at(
        [1.0, 2.0, 4.0],
        [0.0, 0.0, 0.0],
        torch.tensor([0, 2, 2]),
        baseline="leave-one-out",
    )
    expected = torch.tensor(
        [[-2.0, 1.0, 1.0], [-0.5, -0.5, 1.0], [-0.5, -0.5, 1.0]], dtype=F64
    )
    assert torch.allclose(rows, expected, rtol=0, atol=1e-15)


def test_score_function_rows_by_hand_without_and_with_a_constant_baseline():
    # logits (log 1, log 3): p = (1/4, 3/4). f = (2, -1). Draw z = 1: e_1 - p = (-1/4,
    # 1/4).
    logits = [0.0, math.log(3.0)]
    plain = discrete.score_function_grad_at([2.0, -1.0], logits, torch.tensor([1]))
    assert torch.allclose(plain, torch.tensor([[0.25, -0.25]], dtype=F64), atol=1e-15)
    shifted = discrete.score_function_grad_at(
        [2.0, -1.0], logits, torch.tensor([1]), baseline=1.0
    )
    assert torch.allclose(shifted, torch.tensor([[0.5, -0.5]], dtype=F64), atol=1e-15)


def test_score_function_grad_rows_use_the_gumbel_max_draws_of_the_same_generator():
    # An independent loop over the draws, with the leave-one-out mean computed one by
    # one.
    n = 3
    draws = discrete.gumbel_max_sample(THETA, n, torch.Generator().manual_seed(12))
    rows = discrete.score_function_grad(
        F, THETA, n, torch.Generator().manual_seed(12), baseline="leave-one-out"
    )
    p = torch.softmax(THETA, 0)
    for i in range(n):
        others = [float(F[draws[j]]) for j in range(n) if j != i]
        b = sum(others) / len(others)
        score = -p.clone()
        score[draws[i]] += 1.0
        assert torch.allclose(rows[i], (float(F[draws[i]]) - b) * score, atol=1e-15)


@pytest.mark.parametrize(
    "n, baseline",
    [(1, None), (2, None), (2, "leave-one-out"), (3, "leave-one-out"), (3, 0.5)],
)
def test_score_function_unbiased_exactly_by_enumerating_all_draws_small_n(n, baseline):
    # E[mean of the rows] over all K^n outcomes, weighted by their probabilities:
    # exactly the gradient, with no Monte Carlo error. Catches a baseline that uses draw
    # i itself.
    f, theta = F[:3], THETA[:3]
    p = torch.softmax(theta, 0)
    expectation = torch.zeros(3, dtype=F64)
    for outcome in itertools.product(range(3), repeat=n):
        weight = math.prod(float(p[k]) for k in outcome)
        rows = discrete.score_function_grad_at(
            f, theta, torch.tensor(outcome), baseline
        )
        expectation += weight * rows.mean(0)
    assert torch.allclose(
        expectation, discrete.exact_grad(f, theta), rtol=1e-12, atol=1e-15
    )


def test_a_baseline_that_includes_draw_i_would_be_biased_at_small_n():
    # Control for the test above: the sample mean including draw i is biased at n = 2.
    f, theta = F[:3], THETA[:3]
    p = torch.softmax(theta, 0)
    expectation = torch.zeros(3, dtype=F64)
    for outcome in itertools.product(range(3), repeat=2):
        weight = math.prod(float(p[k]) for k in outcome)
        idx = torch.tensor(outcome)
        values = f[idx] - f[idx].mean()
        score = torch.nn.functional.one_hot(idx, 3).to(F64) - p
        expectation += weight * (values.unsqueeze(1) * score).mean(0)
    assert not torch.allclose(expectation, discrete.exact_grad(f, theta), atol=1e-6)


@pytest.mark.parametrize("baseline", [None, 0.5, "leave-one-out"])
def test_score_function_unbiased_monte_carlo_large_n(baseline):
    summary = summarize(
        discrete.score_function_grad(
            F, THETA, 200_000, torch.Generator().manual_seed(21), baseline=baseline
        )
    )
    assert summary.within(discrete.exact_grad(F, THETA), TOLERANCE_SE)


def test_score_function_unbiased_monte_carlo_many_small_batches():
    # 20,000 independent batches of n = 3 with the leave-one-out baseline, each
    # averaged.
    generator = torch.Generator().manual_seed(22)
    batches = torch.stack(
        [
            discrete.score_function_grad(
                F, THETA, 3, generator, baseline="leave-one-out"
            ).mean(0)
            for _ in range(20_000)
        ]
    )
    assert summarize(batches).within(discrete.exact_grad(F, THETA), TOLERANCE_SE)


def test_leave_one_out_lowers_the_variance_when_the_costs_share_a_large_offset():
    f = F + 10.0
    plain = summarize(
        discrete.score_function_grad(f, THETA, 50_000, torch.Generator().manual_seed(1))
    )
    loo = summarize(
        discrete.score_function_grad(
            f, THETA, 50_000, torch.Generator().manual_seed(1), baseline="leave-one-out"
        )
    )
    assert bool((loo.variance < plain.variance / 50).all())


# --- determinism ----------------------------------------------------------------------

CALLS = {
    "gumbel_max_sample": lambda g: discrete.gumbel_max_sample(THETA, 40, g),
    "gumbel_softmax_sample": lambda g: discrete.gumbel_softmax_sample(
        THETA, 0.5, 40, g
    ),
    "score_function_grad": lambda g: discrete.score_function_grad(
        F, THETA, 40, g, baseline="leave-one-out"
    ),
    "gumbel_softmax_grad": lambda g: discrete.gumbel_softmax_grad(F, THETA, 0.5, 40, g),
    "straight_through_grad": lambda g: discrete.straight_through_grad(
        F, THETA, 0.5, 40, g
    ),
    "rebar_grad": lambda g: discrete.rebar_grad(
        F, THETA, 40, temperature=0.5, eta=1.0, generator=g
    ),
    "conditional_gumbel_sample": lambda g: discrete.conditional_gumbel_sample(
        THETA, torch.tensor([0, 1, 2, 3] * 10), g
    ),
}


@pytest.mark.parametrize("name", CALLS)
def test_deterministic_given_the_generator_with_other_draws_in_between(name):
    first = CALLS[name](torch.Generator().manual_seed(99))
    torch.rand(17)  # the global generator moves
    other = torch.Generator().manual_seed(5)
    CALLS[name](other)  # another generator draws
    second = CALLS[name](torch.Generator().manual_seed(99))
    assert torch.equal(first, second)
    third = CALLS[name](torch.Generator().manual_seed(100))
    assert not torch.equal(first, third)
    if first.is_floating_point():
        assert first.dtype == F64


# --- bad inputs -----------------------------------------------------------------------


def _g() -> torch.Generator:  # a seeded generator, for calls that test the other checks
    return torch.Generator().manual_seed(0)

ALL = {
    "exact_grad": lambda f, th, tau, n: discrete.exact_grad(f, th),
    "gumbel_max_sample": lambda f, th, tau, n: discrete.gumbel_max_sample(th, n, _g()),
    "gumbel_softmax_sample": lambda f, th, tau, n: discrete.gumbel_softmax_sample(
        th, tau, n, _g()
    ),
    "score_function_grad": lambda f, th, tau, n: discrete.score_function_grad(
        f, th, n, _g()
    ),
    "gumbel_softmax_grad": lambda f, th, tau, n: discrete.gumbel_softmax_grad(
        f, th, tau, n, _g()
    ),
    "straight_through_grad": lambda f, th, tau, n: discrete.straight_through_grad(
        f, th, tau, n, _g()
    ),
    "rebar_grad": lambda f, th, tau, n: discrete.rebar_grad(
        f, th, n, temperature=tau, eta=1.0, generator=_g()
    ),
    "relaxed_objective": lambda f, th, tau, n: discrete.relaxed_objective(
        f, th, tau, order=10
    ),
    "score_function_mse": lambda f, th, tau, n: discrete.score_function_mse(f, th, n),
}
GOOD = dict(f=[1.0, 0.0, 2.0], th=[0.1, 0.2, 0.3], tau=0.5, n=4)
USES = {
    "exact_grad": {"f", "th"},
    "gumbel_max_sample": {"th", "n"},
    "gumbel_softmax_sample": {"th", "tau", "n"},
    "score_function_grad": {"f", "th", "n"},
    "gumbel_softmax_grad": {"f", "th", "tau", "n"},
    "straight_through_grad": {"f", "th", "tau", "n"},
    "rebar_grad": {"f", "th", "tau", "n"},
    "relaxed_objective": {"f", "th", "tau"},
    "score_function_mse": {"f", "th", "n"},
}
COSTS = "f_values|cost"  # the relaxed estimators name their first argument "cost"
# (argument, value, the error, what its message names)
BAD = [
    ("tau", 0.0, ValueError, "temperature must be > 0"),
    ("tau", -1.0, ValueError, "temperature must be > 0"),
    ("tau", float("inf"), ValueError, "temperature"),
    ("tau", float("nan"), ValueError, "temperature"),
    ("tau", 1e-310, ValueError, "temperature.*subnormal"),
    ("tau", "0.5", TypeError, "temperature"),
    ("tau", True, TypeError, "temperature"),
    ("th", [0.0, float("nan"), 1.0], ValueError, "logits"),
    ("th", [0.0, float("inf"), 1.0], ValueError, "logits"),
    ("th", [float("-inf")] * 3, ValueError, "logits.*finite"),
    ("f", [0.0, float("nan"), 1.0], ValueError, COSTS),
    ("f", [float("-inf"), 0.0, 1.0], ValueError, COSTS),
    ("th", [0.3], ValueError, "K >= 2"),
    ("f", [0.3], ValueError, "K >= 2"),
    ("th", [[0.0, 1.0]], ValueError, "1-d"),
    ("th", [[0.0, 1.0], [0.5]], ValueError, "1-d"),
    ("n", 0, ValueError, "n"),
    ("n", -3, ValueError, "n"),
    ("n", 2.0, TypeError, "n"),
    ("n", 2.5, TypeError, "n"),
    ("n", True, TypeError, "n"),
    ("th", "abc", TypeError, "logits"),
    ("th", [True, False, True], TypeError, "logits"),
    ("th", [1 + 2j, 0.0, 1.0], TypeError, "logits"),
    ("th", torch.tensor([True, False]), TypeError, "logits"),
    ("th", ["a", "b", "c"], TypeError, "logits"),
    ("f", "abc", TypeError, COSTS),
    ("f", [None, 1.0, 2.0], TypeError, COSTS),
]


BAD_CASES = [
    pytest.param(function, *case, id=f"{function}-{case[0]}={case[1]!r}")
    for function in ALL
    for case in BAD
    if case[0] in USES[function]
]


@pytest.mark.parametrize("function, argument, value, error, message", BAD_CASES)
def test_bad_input_raises_the_right_error_naming_the_argument(
    function, argument, value, error, message
):
    # The package rule: TypeError for a wrong type, ValueError for a wrong value.
    kwargs = dict(GOOD, **{argument: value})
    with pytest.raises(error, match=message):
        ALL[function](**kwargs)


@pytest.mark.parametrize(
    "function", ["exact_grad", "score_function_grad", "gumbel_softmax_grad",
                 "straight_through_grad", "rebar_grad", "relaxed_objective",
                 "score_function_mse"]
)
def test_costs_and_logits_of_different_lengths_raise(function):
    with pytest.raises(ValueError, match="same length"):
        ALL[function]([1.0, 2.0], [0.0, 0.0, 0.0], 0.5, 4)


def test_bad_baseline_and_generator():
    with pytest.raises(ValueError, match="leave-one-out"):
        discrete.score_function_grad(F, THETA, 1, _g(), baseline="leave-one-out")
    with pytest.raises(ValueError, match="baseline"):
        discrete.score_function_grad(F, THETA, 4, _g(), baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        discrete.score_function_grad(F, THETA, 4, _g(), baseline=float("nan"))
    with pytest.raises(TypeError, match="generator"):
        discrete.gumbel_max_sample(THETA, 4, generator=np.random.default_rng(0))


@settings(max_examples=60, deadline=None)
@given(
    temperature=st.one_of(
        # every number <= 0 and every subnormal (1/tau would overflow)
        st.floats(max_value=torch.finfo(F64).tiny, exclude_max=True),
        st.just(float("nan")),
        st.just(float("inf")),
    )
)
def test_any_non_positive_subnormal_or_non_finite_temperature_is_rejected(temperature):
    with pytest.raises(ValueError, match="temperature"):
        discrete.gumbel_softmax_sample(THETA, temperature, 3, _g())


@settings(max_examples=60, deadline=None)
@given(k_f=st.integers(2, 6), k_theta=st.integers(2, 6))
def test_any_length_mismatch_is_rejected(k_f, k_theta):
    if k_f == k_theta:
        discrete.exact_grad([0.0] * k_f, [0.0] * k_theta)
        return
    with pytest.raises(ValueError, match="same length"):
        discrete.exact_grad([0.0] * k_f, [0.0] * k_theta)


def test_exact_grad_and_probabilities_survive_huge_logits():
    # A softmax without the max subtracted overflows here (exp(800) = inf) and returns
    # NaN; the gradient must equal the one at logits shifted by a constant.
    huge = torch.tensor([800.0, 799.0, -5.0], dtype=F64)
    f = torch.tensor([1.0, 0.4, 0.0], dtype=F64)
    shifted = huge - 800.0
    assert torch.allclose(
        discrete.probabilities(huge), torch.softmax(shifted, 0), atol=1e-15
    )
    assert torch.allclose(
        discrete.exact_grad(f, huge), discrete.exact_grad(f, shifted), atol=1e-15
    )
    assert bool(torch.isfinite(discrete.exact_grad(f, -huge)).all())


def test_gumbel_noise_is_finite_at_the_ends_of_the_uniform_range(monkeypatch):
    # torch.rand can return 0 (and values within 2**-53 of 1); the clamp keeps both logs
    # finite, as torch's clamp_probs does.
    def extreme_rand(shape, dtype, generator):
        values = torch.full(shape, 0.5, dtype=dtype)
        values.view(-1)[0] = 0.0
        values.view(-1)[1] = 1.0 - 2.0**-53
        return values

    monkeypatch.setattr(discrete.torch, "rand", extreme_rand)
    noise = discrete.draw_gumbel(2, 2, _g())
    assert bool(torch.isfinite(noise).all())
    eps = torch.finfo(F64).eps
    expected = -math.log(-math.log(eps))
    assert math.isclose(float(noise.view(-1)[0]), expected, rel_tol=1e-15)


# --- straight-through rows ------------------------------------------------------------


def test_straight_through_rows_are_one_hot_forward_and_identity_backward():
    relaxed = torch.softmax(
        torch.randn(200, 4, dtype=F64, generator=torch.Generator().manual_seed(0)), 1
    ).requires_grad_(True)
    y = discrete.straight_through_sample(relaxed)
    expected = torch.nn.functional.one_hot(relaxed.argmax(1), 4).to(F64)
    assert torch.allclose(y, expected, rtol=0, atol=1e-15)
    upstream = torch.arange(4, dtype=F64) - 1.5
    (grad,) = torch.autograd.grad((y @ upstream).sum(), relaxed)
    assert torch.equal(grad, upstream.expand(200, -1))


def test_straight_through_grad_uses_the_one_hot_forward_value(monkeypatch):
    # For a linear cost the rows cannot reveal the forward value, so watch it: the
    # forward rows must be the one-hot vectors of the Gumbel-max draws of the same
    # generator state.
    seen = []
    original = discrete.straight_through_sample

    def spy(relaxed):
        forward = original(relaxed)
        seen.append(forward.detach())
        return forward

    monkeypatch.setattr(discrete, "straight_through_sample", spy)
    discrete.straight_through_grad(F, THETA, 0.5, 300, torch.Generator().manual_seed(4))
    draws = discrete.gumbel_max_sample(THETA, 300, torch.Generator().manual_seed(4))
    assert len(seen) == 1
    one_hot = torch.nn.functional.one_hot(draws, 4).to(F64)
    assert torch.allclose(seen[0], one_hot, rtol=0, atol=1e-15)


def test_straight_through_differs_from_the_relaxed_gradient_for_a_nonlinear_cost():
    noise = discrete.draw_gumbel(500, 4, torch.Generator().manual_seed(6))
    grads = []
    for make in (discrete.straight_through_sample, lambda s: s):
        theta = THETA.expand(500, -1).clone().requires_grad_(True)
        y = make(torch.softmax((theta + noise) / 0.5, 1))
        ((y @ F) ** 2).sum().backward()
        grads.append(theta.grad)
    assert not torch.allclose(grads[0], grads[1], atol=1e-3)


def test_straight_through_sample_bad_input():
    with pytest.raises(ValueError, match="relaxed"):
        discrete.straight_through_sample(torch.ones(3, dtype=F64))
    with pytest.raises(TypeError, match="relaxed"):
        discrete.straight_through_sample(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="relaxed"):
        discrete.straight_through_sample([[0.5, 0.5]])


# --- the relaxed objective by quadrature ----------------------------------------------


@pytest.mark.parametrize(
    "k, temperature, order", [(2, 0.5, 200), (3, 1.0, 120), (3, 0.3, 120), (4, 0.8, 40)]
)
def test_relaxed_objective_value_against_torch_relaxed_one_hot_monte_carlo(
    k, temperature, order
):
    # Independent reference: the mean of s.f over torch's own relaxed samples, within
    # TOLERANCE_SE standard errors; the gradient against the mean of torch-rsample
    # gradients the same way.
    rng = np.random.default_rng(k)
    f = torch.tensor(rng.normal(size=k), dtype=F64)
    theta = torch.tensor(rng.normal(size=k), dtype=F64)
    value, grad = discrete.relaxed_objective(f, theta, temperature, order=order)
    assert value.shape == () and grad.shape == (k,) and grad.dtype == F64
    n = 200_000
    torch.manual_seed(40 + k)
    copies = theta.expand(n, -1).clone().requires_grad_(True)
    draws = RelaxedOneHotCategorical(
        torch.tensor(temperature, dtype=F64), logits=copies
    ).rsample()
    costs = draws @ f
    costs.sum().backward()
    costs = costs.detach()
    se = float(costs.std()) / math.sqrt(n)
    assert abs(float(value) - float(costs.mean())) < TOLERANCE_SE * se
    assert summarize(copies.grad).within(grad, TOLERANCE_SE)


def test_relaxed_objective_gradient_equals_central_differences_of_its_value():
    # The value and the gradient are two different integrals. The rule's nodes move
    # with theta (through p), so the two agree to the rule's accuracy (about 2e-8 at
    # order 80); a wrong Jacobian would be off by 1e-2 or more.
    f, theta, step = F[:3], THETA[:3], 1e-5
    _, grad = discrete.relaxed_objective(f, theta, 0.7, order=80)
    for k in range(3):
        e = torch.zeros(3, dtype=F64)
        e[k] = step
        up = discrete.relaxed_objective(f, theta + e, 0.7, order=80)[0]
        down = discrete.relaxed_objective(f, theta - e, 0.7, order=80)[0]
        assert abs(float((up - down) / (2 * step)) - float(grad[k])) < 1e-7


def test_relaxed_objective_limits_in_temperature():
    # tau -> 0: s becomes one-hot, J_tau -> p.f and its gradient -> the exact one.
    # tau -> infinity: s -> uniform, J_tau -> mean(f), gradient -> 0.
    f, theta = F[:3], THETA[:3]
    cold_value, cold_grad = discrete.relaxed_objective(f, theta, 0.02, order=400)
    p = torch.softmax(theta, 0)
    assert abs(float(cold_value) - float(p @ f)) < 2e-3
    assert torch.allclose(cold_grad, discrete.exact_grad(f, theta), atol=2e-3)
    hot_value, hot_grad = discrete.relaxed_objective(f, theta, 1e4, order=20)
    assert abs(float(hot_value) - float(f.mean())) < 1e-3
    assert float(hot_grad.abs().max()) < 1e-4


def test_relaxed_objective_two_categories_by_one_dimensional_quadrature():
    # K = 2: s_1 = sigmoid((theta_1 - theta_2 + L) / tau) with L = G_1 - G_2 logistic;
    # scipy integrates that against the logistic density (an independent route).
    from scipy import integrate

    theta, f, tau = [0.3, -0.4], [2.0, -1.0], 0.6
    value, _ = discrete.relaxed_objective(f, theta, tau, order=400)

    def integrand(x):
        s1 = stats.logistic.cdf((theta[0] - theta[1] + x) / tau)  # the sigmoid
        return (f[0] * s1 + f[1] * (1.0 - s1)) * stats.logistic.pdf(x)

    reference, error = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13)
    assert abs(float(value) - reference) < 1e-7  # the rule converges algebraically


def test_relaxed_objective_bad_inputs():
    with pytest.raises(ValueError, match="order"):
        discrete.relaxed_objective(F, THETA, 0.5, order=1)
    with pytest.raises(TypeError, match="order"):
        discrete.relaxed_objective(F, THETA, 0.5, order=2.5)
    with pytest.raises(ValueError, match="quadrature nodes"):
        discrete.relaxed_objective(F, THETA, 0.5, order=200)  # 200**3 nodes
    with pytest.raises(ValueError, match="temperature"):
        discrete.relaxed_objective(F, THETA, 0.0)
    with pytest.raises(ValueError, match="same length"):
        discrete.relaxed_objective(F[:3], THETA, 0.5)


def test_relaxed_expectation_bad_inputs():
    with pytest.raises(TypeError, match="h must be callable"):
        discrete.relaxed_expectation("s", THETA, 0.5)
    with pytest.raises(ValueError, match="temperature"):
        discrete.relaxed_expectation(lambda s, z: s, THETA, 1e-320)


def test_score_grad_at_bad_indices():
    for indices, error in [([0, 1], TypeError), (torch.tensor([0.0, 1.0]), TypeError),
                           (torch.tensor([[0, 1]]), ValueError),
                           (torch.tensor([0, 4]), ValueError)]:
        with pytest.raises(error, match="indices"):
            discrete.score_function_grad_at(F, THETA, indices)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\]"):
        discrete.score_function_grad_at(F, THETA, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="masked"):  # a draw it could not make
        discrete.score_function_grad_at(F, MASKED, torch.tensor([0, 1]))


def test_a_callable_cost_must_return_one_value_per_row():
    with pytest.raises(ValueError, match="one value per row"):
        discrete.gumbel_softmax_grad(lambda y: y, THETA, 0.5, 4, _g())
    with pytest.raises(TypeError, match="cost must return"):
        discrete.straight_through_grad(lambda y: 1.0, THETA, 0.5, 4, _g())


# --- float64 throughout ---------------------------------------------------------------


def test_lists_are_read_as_float64_never_through_float32():
    # 0.1 + 1e-9 and 0.1 are one float32 number: through float32 the two
    # probabilities were equal.
    p = discrete.probabilities([0.1, 0.1 + 1e-9])
    assert float(p[1]) > float(p[0])
    reference = torch.softmax(torch.tensor([0.1, 0.1 + 1e-9], dtype=F64), 0)
    assert torch.equal(p, reference)
    f, theta = [1.0, 0.4, 0.0], [0.1, 0.2, 0.3]
    as_tensors = discrete.exact_grad(torch.tensor(f, dtype=F64),
                                     torch.tensor(theta, dtype=F64))
    assert torch.equal(discrete.exact_grad(f, theta), as_tensors)
    # 1e308 overflows float32 to inf; float64 holds it.
    assert torch.equal(discrete.probabilities([1e308, -1e308, 0.0]),
                       torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    assert discrete.probabilities(np.array([0.1, 0.1 + 1e-9])).dtype == F64


# --- masked (-inf) logits -------------------------------------------------------------

MASKED = torch.tensor([0.7, -math.inf, 0.1, -1.0], dtype=F64)
SUPPORT = [0, 2, 3]


def test_masked_logits_give_torch_categoricals_probabilities_and_gradient():
    assert torch.allclose(discrete.probabilities(MASKED),
                          Categorical(logits=MASKED).probs, rtol=0, atol=1e-15)
    theta = MASKED.clone().requires_grad_(True)
    (Categorical(logits=theta).probs @ F).backward()
    ours = discrete.exact_grad(F, MASKED)
    assert float(ours[1]) == 0.0
    assert torch.allclose(ours, theta.grad, rtol=0, atol=1e-15)
    # ...and the gradient of the problem with the category removed.
    reduced = discrete.exact_grad(F[SUPPORT], MASKED[SUPPORT])
    assert torch.allclose(ours[SUPPORT], reduced, rtol=0, atol=1e-15)


def test_a_masked_category_is_never_drawn_and_the_rest_follow_categorical():
    n = 60_000
    draws = discrete.gumbel_max_sample(MASKED, n, torch.Generator().manual_seed(2))
    counts = np.bincount(draws.numpy(), minlength=4)
    assert counts[1] == 0
    p = Categorical(logits=MASKED).probs.numpy()
    assert stats.chisquare(counts[SUPPORT], n * p[SUPPORT]).pvalue > 1e-3
    relaxed = discrete.gumbel_softmax_sample(MASKED, 0.5, 100,
                                             torch.Generator().manual_seed(2))
    assert bool((relaxed[:, 1] == 0).all()) and bool(torch.isfinite(relaxed).all())


@pytest.mark.parametrize(
    "name", ["gumbel_softmax", "straight_through", "score", "rebar"]
)
def test_masked_category_gets_a_zero_column_and_the_rest_stays_unbiased(name):
    n, generator = 100_000, torch.Generator().manual_seed(14)
    rows = {
        "gumbel_softmax": lambda: discrete.gumbel_softmax_grad(F, MASKED, 0.4, n,
                                                               generator),
        "straight_through": lambda: discrete.straight_through_grad(F, MASKED, 0.4, n,
                                                                   generator),
        "score": lambda: discrete.score_function_grad(F, MASKED, n, generator,
                                                      baseline="leave-one-out"),
        "rebar": lambda: discrete.rebar_grad(F, MASKED, n, temperature=0.4, eta=1.0,
                                             generator=generator),
    }[name]()
    assert bool(torch.isfinite(rows).all()) and bool((rows[:, 1] == 0).all())
    if name in ("score", "rebar"):
        assert summarize(rows).within(discrete.exact_grad(F, MASKED), TOLERANCE_SE)
    else:  # unbiased for the relaxed objective, which ignores the masked category
        relaxed = discrete.relaxed_objective(F[SUPPORT], MASKED[SUPPORT], 0.4).gradient
        assert summarize(rows[:, SUPPORT]).within(relaxed, TOLERANCE_SE)


def test_masked_relaxed_objective_equals_the_objective_without_the_category():
    masked = discrete.relaxed_objective(F, MASKED, 0.6, order=40)
    reduced = discrete.relaxed_objective(F[SUPPORT], MASKED[SUPPORT], 0.6, order=200)
    assert abs(float(masked.value - reduced.value)) < 1e-6
    assert float(masked.gradient[1]) == 0.0
    assert torch.allclose(masked.gradient[SUPPORT], reduced.gradient, atol=1e-6)


# --- tiny temperatures ----------------------------------------------------------------


def test_a_tiny_normal_temperature_gives_one_hot_rows_and_finite_gradients():
    # At the smallest temperature accepted, the smallest normal float64, dividing
    # first makes (theta + G) / tau infinite wherever theta + G is 4 or more (14 of
    # these 200 rows), and a softmax with an infinite entry is NaN; the row maximum is
    # subtracted before the division. (At tau = 1e-300 the quotients are finite.)
    tau, n = torch.finfo(F64).tiny, 200
    relaxed = discrete.gumbel_softmax_sample(THETA, tau, n,
                                             torch.Generator().manual_seed(8))
    draws = discrete.gumbel_max_sample(THETA, n, torch.Generator().manual_seed(8))
    assert torch.equal(relaxed, torch.nn.functional.one_hot(draws, 4).to(F64))
    for grad in (discrete.gumbel_softmax_grad, discrete.straight_through_grad):
        rows = grad(F, THETA, tau, n, torch.Generator().manual_seed(8))
        assert bool(torch.isfinite(rows).all())


# --- exact score-function variance and mean squared error -----------------------------


@pytest.mark.parametrize("baseline", [None, 0.3, -1.0])
def test_score_function_variance_against_monte_carlo(baseline):
    n = 200_000
    rows = discrete.score_function_grad(F, THETA, n, torch.Generator().manual_seed(3),
                                        baseline=baseline)
    squared = ((rows - rows.mean(0)) ** 2).sum(1)
    exact = discrete.score_function_variance(F, THETA, baseline)
    standard_error = float(squared.std()) / n**0.5
    assert abs(float(squared.mean()) - exact) < TOLERANCE_SE * standard_error


def test_optimal_baseline_minimizes_the_variance():
    from scipy import optimize

    best = discrete.optimal_baseline(F, THETA)
    found = optimize.minimize_scalar(
        lambda b: discrete.score_function_variance(F, THETA, b), bracket=(-1, 1))
    assert abs(best - found.x) < 1e-6
    at_best = discrete.score_function_variance(F, THETA, best)
    mean_cost = float(discrete.probabilities(THETA) @ F)
    assert at_best < discrete.score_function_variance(F, THETA, mean_cost)
    for step in (-1e-3, 1e-3):
        assert at_best < discrete.score_function_variance(F, THETA, best + step)


@pytest.mark.parametrize("baseline", [None, 0.5, "leave-one-out"])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_score_function_mse_equals_the_sum_over_every_sequence_of_draws(n, baseline):
    # K^n sequences, each with its probability and its rows from score_function_grad_at:
    # a different route from the multinomial counts.
    f, theta = F[:3], THETA[:3]
    p, exact = torch.softmax(theta, 0), discrete.exact_grad(f, theta)
    total = 0.0
    for outcome in itertools.product(range(3), repeat=n):
        weight = math.prod(float(p[k]) for k in outcome)
        rows = discrete.score_function_grad_at(f, theta, torch.tensor(outcome),
                                               baseline)
        total += weight * float(((rows.mean(0) - exact) ** 2).sum())
    assert math.isclose(discrete.score_function_mse(f, theta, n, baseline), total,
                        rel_tol=1e-12)


def test_score_function_mse_with_a_constant_baseline_is_the_variance_over_n():
    for n in (1, 7, 40):
        assert math.isclose(discrete.score_function_mse(F, THETA, n, 0.25),
                            discrete.score_function_variance(F, THETA, 0.25) / n,
                            rel_tol=1e-11)


def test_score_function_mse_leave_one_out_against_monte_carlo_batches():
    n, batches = 6, 40_000
    generator = torch.Generator().manual_seed(31)
    exact = discrete.exact_grad(F, THETA)
    errors = torch.stack([
        ((discrete.score_function_grad(F, THETA, n, generator, baseline="leave-one-out")
          .mean(0) - exact) ** 2).sum() for _ in range(batches)])
    mse = discrete.score_function_mse(F, THETA, n, "leave-one-out")
    standard_error = float(errors.std()) / batches**0.5
    assert abs(float(errors.mean()) - mse) < TOLERANCE_SE * standard_error


@pytest.mark.parametrize("baseline", [None, 0.5, "leave-one-out"])
def test_score_function_mse_ignores_a_category_whose_probability_underflows(baseline):
    # exp(-800) is 0 in float64: the category is never drawn. A count vector that
    # draws it has log-probability -inf; in one that does not, its term c log p is
    # 0 * -inf, which must count as 0, not NaN.
    theta = torch.cat([THETA[:3], torch.tensor([-800.0], dtype=F64)])
    assert float(discrete.probabilities(theta)[3]) == 0.0
    for n in (2, 5):
        assert math.isclose(discrete.score_function_mse(F, theta, n, baseline),
                            discrete.score_function_mse(F[:3], THETA[:3], n, baseline),
                            rel_tol=1e-12)


def test_score_function_mse_refuses_too_many_outcomes():
    with pytest.raises(ValueError, match="count vectors"):
        discrete.score_function_mse(F, THETA, 400)


def test_score_function_mse_accepts_exactly_max_outcomes(monkeypatch):
    monkeypatch.setattr(discrete, "MAX_OUTCOMES", 10)  # K = 2: n + 1 count vectors
    assert discrete.score_function_mse(F[:2], THETA[:2], 9) > 0
    with pytest.raises(ValueError, match="gives 11 count vectors, more than 10"):
        discrete.score_function_mse(F[:2], THETA[:2], 10)


# --- REBAR ----------------------------------------------------------------------------


def test_rebar_with_eta_zero_is_the_score_function_on_the_same_draws():
    rows = discrete.rebar_grad(F, THETA, 500, temperature=0.5, eta=0.0,
                               generator=torch.Generator().manual_seed(3))
    plain = discrete.score_function_grad(F, THETA, 500,
                                         torch.Generator().manual_seed(3))
    assert torch.allclose(rows, plain, rtol=0, atol=1e-14)


@pytest.mark.parametrize("temperature, eta", [(0.3, 1.0), (1.0, 1.0), (2.0, 1.7),
                                              (0.5, -0.8)])
def test_rebar_is_unbiased(temperature, eta):
    rows = discrete.rebar_grad(F, THETA, 200_000, temperature=temperature, eta=eta,
                               generator=torch.Generator().manual_seed(17))
    assert summarize(rows).within(discrete.exact_grad(F, THETA), TOLERANCE_SE)


def test_rebar_for_a_nonlinear_cost_is_unbiased():
    def squared(y):
        return (y @ F) ** 2

    rows = discrete.rebar_grad(squared, THETA, 200_000, temperature=0.7, eta=1.0,
                               generator=torch.Generator().manual_seed(18))
    assert summarize(rows).within(discrete.exact_grad(F**2, THETA), TOLERANCE_SE)


def test_rebar_without_the_reparameterized_conditional_sample_is_caught(monkeypatch):
    # The control for the test above: cut the path from theta into z-tilde (a plausible
    # bug) and the same check finds the bias by far.
    original = discrete._conditional_perturbed
    monkeypatch.setattr(discrete, "_conditional_perturbed",
                        lambda log_p, idx, u: original(log_p.detach(), idx, u))
    rows = discrete.rebar_grad(F, THETA, 200_000, temperature=1.0, eta=1.0,
                               generator=torch.Generator().manual_seed(17))
    summary = summarize(rows)
    z = (summary.mean - discrete.exact_grad(F, THETA)).abs() / summary.standard_error
    assert float(z.max()) > 10


def test_rebar_lowers_the_variance_below_the_score_function():
    rows = discrete.rebar_grad(F, THETA, 100_000, temperature=1.0, eta=1.0,
                               generator=torch.Generator().manual_seed(4))
    variance = float(summarize(rows).variance.sum())
    assert variance < discrete.score_function_variance(F, THETA) / 2


def test_conditional_gumbel_has_the_law_of_the_perturbed_logits_given_the_argmax():
    n = 100_000
    perturbed = torch.log_softmax(THETA, 0) + discrete.draw_gumbel(
        n, 4, torch.Generator().manual_seed(1))
    winners = perturbed.argmax(1)
    drawn = discrete.conditional_gumbel_sample(THETA, winners,
                                               torch.Generator().manual_seed(2))
    assert torch.equal(drawn.argmax(1), winners)
    for k in range(4):
        chosen = winners == k
        for j in range(4):
            result = stats.ks_2samp(perturbed[chosen, j].numpy(),
                                    drawn[chosen, j].numpy())
            assert result.pvalue > 1e-3, (k, j)


def test_conditional_gumbel_is_not_the_unconditional_law():
    # The power of the test above: unconditional draws fail it for the winner's entry.
    n = 100_000
    perturbed = torch.log_softmax(THETA, 0) + discrete.draw_gumbel(
        n, 4, torch.Generator().manual_seed(1))
    winners = perturbed.argmax(1)
    fresh = torch.log_softmax(THETA, 0) + discrete.draw_gumbel(
        n, 4, torch.Generator().manual_seed(2))
    chosen = winners == 3
    assert stats.ks_2samp(perturbed[chosen, 3].numpy(),
                          fresh[chosen, 3].numpy()).pvalue < 1e-6


def test_rebar_bad_options():
    with pytest.raises(TypeError, match="eta"):
        discrete.rebar_grad(F, THETA, 4, temperature=0.5, eta="1", generator=_g())
    with pytest.raises(ValueError, match="eta"):
        discrete.rebar_grad(F, THETA, 4, temperature=0.5, eta=math.nan, generator=_g())
    with pytest.raises(TypeError):
        discrete.rebar_grad(F, THETA, 4, 0.5, 1.0)  # the options are keywords
    with pytest.raises(ValueError, match="masked"):
        discrete.conditional_gumbel_sample(MASKED, torch.tensor([1]), _g())


# --- exact moments of the relaxed estimators by quadrature ----------------------------


def _dirichlet_route(h, theta, tau, order=300):
    # The route without the split by winner: s = softmax((theta - log D)/tau), D uniform
    # on the simplex, by stick-breaking with its own Gauss-Legendre rule (K = 3).
    x, w = np.polynomial.legendre.leggauss(order)
    x, w = (x + 1) / 2, w / 2
    b0, b1 = (g.ravel() for g in np.meshgrid(x, x, indexing="ij"))
    weights = np.outer(w, w).ravel() * 2 * (1 - b0)
    nodes = torch.from_numpy(np.stack([b0, (1 - b0) * b1, (1 - b0) * (1 - b1)], 1))
    relaxed = torch.softmax((theta - nodes.log()) / tau, 1)
    return torch.tensordot(torch.from_numpy(weights), h(relaxed), dims=1)


@pytest.mark.parametrize("temperature", [0.2, 1.0, 3.0])
def test_relaxed_expectation_equals_the_route_without_the_split(temperature):
    theta = THETA[:3]
    ours = discrete.relaxed_expectation(lambda s, z: s, theta, temperature, order=200)
    assert torch.allclose(ours, _dirichlet_route(lambda s: s, theta, temperature),
                          atol=2e-6)


def test_relaxed_expectation_of_the_winner_is_p_exactly():
    # The winner indicator is constant on each winner's term: any rule whose weights
    # sum to one gives p exactly, the smallest one (order 2) too.
    for theta, temperature, order in [(THETA, 0.1, 8), (THETA, 1.0, 8), (THETA, 5.0, 8),
                                      (THETA, 0.5, 2), (THETA[:2], 0.5, 2)]:
        frequencies = discrete.relaxed_expectation(
            lambda s, z: torch.nn.functional.one_hot(z, s.shape[1]).to(F64), theta,
            temperature, order=order)
        assert torch.allclose(frequencies, discrete.probabilities(theta), rtol=0,
                              atol=1e-14)


def test_relaxed_expectation_of_something_that_depends_on_the_winner_against_mc():
    # E[s_z], the relaxed weight of the winning category: at these temperatures far
    # from 1 and from 1/K, and it jumps where the winner changes.
    theta, tau, n = THETA[:3], 0.8, 400_000
    exact = discrete.relaxed_expectation(
        lambda s, z: s.gather(1, z.unsqueeze(1)).squeeze(1), theta, tau)
    relaxed = discrete.gumbel_softmax_sample(theta, tau, n,
                                             torch.Generator().manual_seed(9))
    weights = relaxed.max(1).values
    assert abs(float(weights.mean()) - float(exact)) < (
        TOLERANCE_SE * float(weights.std()) / n**0.5)


def _squared(y):
    return (y @ F[:3]) ** 2


@pytest.mark.parametrize("moments, grad", [
    (discrete.gumbel_softmax_moments, discrete.gumbel_softmax_grad),
    (discrete.straight_through_moments, discrete.straight_through_grad),
])
@pytest.mark.parametrize("cost", [F[:3], _squared], ids=["linear", "squared"])
def test_moments_by_quadrature_against_monte_carlo(moments, grad, cost):
    theta, tau, n = THETA[:3], 0.7, 200_000
    exact = moments(cost, theta, tau)
    summary = summarize(grad(cost, theta, tau, n, torch.Generator().manual_seed(12)))
    assert summary.within(exact.mean, TOLERANCE_SE)
    variance_se = float(summary.variance_standard_error.norm())
    assert abs(float(summary.variance.sum()) - exact.variance) < TOLERANCE_SE * (
        variance_se)


def test_straight_through_and_gumbel_softmax_means_part_for_a_nonlinear_cost():
    theta = THETA[:3]
    st_mean = discrete.straight_through_moments(_squared, theta, 1.0).mean
    gs_mean = discrete.gumbel_softmax_moments(_squared, theta, 1.0).mean
    exact = discrete.exact_grad(F[:3] ** 2, theta)
    assert float((st_mean - gs_mean).norm()) > 0.01
    assert float((st_mean - exact).norm()) > 0.01
    # For the linear cost both are the relaxed gradient.
    linear_st = discrete.straight_through_moments(F[:3], theta, 1.0).mean
    relaxed = discrete.relaxed_objective(F[:3], theta, 1.0).gradient
    assert torch.allclose(linear_st, relaxed, atol=1e-15)


# --- choosing REBAR's eta -------------------------------------------------------------


def test_rebar_rows_are_linear_in_eta_on_the_same_noise():
    # best_rebar_eta relies on it: row(eta) = row(0) - eta * (row(0) - row(1)).
    at = {eta: discrete.rebar_grad(F, THETA, 500, temperature=0.7, eta=eta,
                                   generator=torch.Generator().manual_seed(35))
          for eta in (0.0, 1.0, 1.37)}
    assert torch.allclose(at[1.37], at[0.0] - 1.37 * (at[0.0] - at[1.0]),
                          rtol=0, atol=1e-12)


def test_best_rebar_eta_minimizes_the_variance_on_its_draws():
    choice = discrete.best_rebar_eta(F, THETA, 5000, torch.Generator().manual_seed(8),
                                     temperature=0.7)
    assert isinstance(choice, discrete.RebarChoice)

    def variance_at(eta):  # the same draws: rebar_grad draws the same noise first
        rows = discrete.rebar_grad(F, THETA, 5000, temperature=0.7, eta=eta,
                                   generator=torch.Generator().manual_seed(8))
        return discrete.per_draw_variance(rows).value

    assert abs(variance_at(choice.eta) - choice.variance) < 1e-12
    found = scipy_optimize.minimize_scalar(variance_at, bracket=(0.0, 2.0))
    assert abs(found.x - choice.eta) < 1e-4
    assert variance_at(choice.eta + 0.1) > choice.variance
    assert variance_at(choice.eta - 0.1) > choice.variance


def test_best_rebar_eta_bad_input():
    with pytest.raises(ValueError, match="n"):
        discrete.best_rebar_eta(F, THETA, 1, _g(), temperature=0.5)
    with pytest.raises(ValueError, match="temperature"):
        discrete.best_rebar_eta(F, THETA, 10, _g(), temperature=0.0)
    with pytest.raises(TypeError, match="generator"):
        discrete.best_rebar_eta(F, THETA, 10, np.random.default_rng(0), temperature=1.0)


def test_best_rebar_eta_on_its_smallest_sample_of_two_draws():
    # (Seed 1 draws two different categories; with equal draws eta and the variance
    # would both be 0.)
    choice = discrete.best_rebar_eta(F, THETA, 2, torch.Generator().manual_seed(1),
                                     temperature=0.7)
    rows = discrete.rebar_grad(F, THETA, 2, temperature=0.7, eta=choice.eta,
                               generator=torch.Generator().manual_seed(1))
    assert choice.variance > 0 and choice.eta != 0
    assert abs(discrete.per_draw_variance(rows).value - choice.variance) < 1e-12


# --- the per-draw variance and its standard error -------------------------------------


def test_per_draw_variance_is_the_trace_of_the_sample_covariance():
    rows = discrete.score_function_grad(F, THETA, 1000,
                                        torch.Generator().manual_seed(2))
    spread = discrete.per_draw_variance(rows)
    assert isinstance(spread, discrete.PerDrawVariance)
    assert abs(spread.value - float(torch.cov(rows.T).trace())) < 1e-14


def test_per_draw_variance_error_counts_correlated_coordinates():
    # Rows (a, -a): the trace is 2 var(a), so its standard error is twice that of
    # var(a); adding the two coordinates' errors in quadrature would give sqrt(2) times.
    a = torch.randn(4000, dtype=F64, generator=torch.Generator().manual_seed(3)) ** 3
    spread = discrete.per_draw_variance(torch.stack([a, -a], dim=1))
    single = float(((a - a.mean()) ** 2).std()) / 4000**0.5
    assert abs(spread.standard_error - 2 * single) < 1e-14
    assert abs(spread.value - 2 * float(a.var())) < 1e-12


def test_per_draw_variance_error_matches_the_spread_over_repeats():
    values, errors = [], []
    for seed in range(300):
        rows = discrete.score_function_grad(F, THETA, 400,
                                            torch.Generator().manual_seed(seed))
        spread = discrete.per_draw_variance(rows)
        values.append(spread.value)
        errors.append(spread.standard_error)
    # The standard deviation of the estimates over repeats, against the mean error
    # (its own sampling error over 300 repeats is about 4%).
    assert abs(np.std(values, ddof=1) / np.mean(errors) - 1) < 0.15
    exact = discrete.score_function_variance(F, THETA)
    assert abs(np.mean(values) - exact) < 4 * np.std(values, ddof=1) / 300**0.5


def test_per_draw_variance_bad_input():
    with pytest.raises(TypeError, match="rows"):
        discrete.per_draw_variance([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="rows"):
        discrete.per_draw_variance(torch.ones(1, 3, dtype=F64))
    with pytest.raises(ValueError, match="rows"):
        discrete.per_draw_variance(torch.ones(5, dtype=F64))


def test_per_draw_variance_of_two_rows():
    # Two rows deviate from their mean by the same length, half their distance: the
    # variance is |x1 - x2|^2 / 2 and the squared deviations have no spread.
    spread = discrete.per_draw_variance(torch.tensor([[1.0, -1.0], [4.0, 3.0]],
                                                     dtype=F64))
    assert spread == (12.5, 0.0)


# --- the Concrete density -------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.2, 0.7, 1.0, 2.5])
def test_concrete_log_density_equals_torch_log_prob(temperature):
    law = RelaxedOneHotCategorical(torch.tensor(temperature, dtype=F64), logits=THETA)
    points = law.sample((500,))
    points = points[(points > 0).all(1)]  # torch may round an entry to 0 at low tau
    ours = discrete.concrete_log_density(points, THETA, temperature)
    assert torch.allclose(ours, law.log_prob(points), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("temperature", [0.4, 1.0, 3.0])
def test_concrete_density_of_two_categories_integrates_to_one(temperature):
    theta = torch.tensor([0.3, -0.4], dtype=F64)

    def density(s1):
        point = torch.tensor([[s1, 1.0 - s1]], dtype=F64)
        return math.exp(float(discrete.concrete_log_density(point, theta,
                                                            temperature)[0]))

    total, _ = integrate.quad(density, 0.0, 1.0, points=[0.5], limit=200)
    assert abs(total - 1.0) < 1e-6


def test_concrete_density_of_three_categories_integrates_to_one():
    # At tau = 2 the density is bounded on the triangle, so dblquad converges.
    def density(s2, s1):
        point = torch.tensor([[s1, s2, 1.0 - s1 - s2]], dtype=F64)
        return math.exp(float(discrete.concrete_log_density(point, THETA[:3], 2.0)[0]))

    total, _ = integrate.dblquad(density, 0.0, 1.0, 0.0, lambda s1: 1.0 - s1,
                                 epsabs=1e-8)
    assert abs(total - 1.0) < 1e-5


def test_concrete_log_density_bad_input():
    inside = torch.tensor([[0.2, 0.3, 0.5]], dtype=F64)
    with pytest.raises(ValueError, match="positive"):
        discrete.concrete_log_density(torch.tensor([[0.0, 0.5, 0.5]], dtype=F64),
                                      THETA[:3], 1.0)
    with pytest.raises(ValueError, match="finite"):
        discrete.concrete_log_density(inside, [0.0, -math.inf, 1.0], 1.0)
    with pytest.raises(ValueError, match="relaxed"):
        discrete.concrete_log_density(inside, THETA, 1.0)  # K = 3 rows, K = 4 logits
    with pytest.raises(ValueError, match="temperature"):
        discrete.concrete_log_density(inside, THETA[:3], -1.0)
    with pytest.raises(TypeError, match="relaxed"):
        discrete.concrete_log_density([[0.2, 0.3, 0.5]], THETA[:3], 1.0)


# --- SGD runs side by side ------------------------------------------------------------

SGD_OPTIONS = {
    "exact": {},
    "leave-one-out": {},
    "gumbel-softmax": {"temperature": 0.8},
    "rebar": {"temperature": 1.5, "eta": 0.9},
}


def _one_run_loop(estimator, steps, seed, batch=6, lr=0.4, decay=0.05):
    generator, theta = torch.Generator().manual_seed(seed), THETA.clone()
    path = [theta]
    for _ in range(steps):
        if estimator == "exact":
            gradient = discrete.exact_grad(F, theta)
        elif estimator == "leave-one-out":
            gradient = discrete.score_function_grad(
                F, theta, batch, generator, baseline="leave-one-out").mean(0)
        elif estimator == "gumbel-softmax":
            gradient = discrete.gumbel_softmax_grad(F, theta, 0.8, batch,
                                                    generator).mean(0)
        else:
            gradient = discrete.rebar_grad(F, theta, batch, temperature=1.5, eta=0.9,
                                           generator=generator).mean(0)
        theta = theta - lr * (gradient + decay * theta)
        path.append(theta)
    return torch.stack(path)


@pytest.mark.parametrize("batch", [2, 6])  # 2: the smallest leave-one-out batch
@pytest.mark.parametrize("estimator", SGD_OPTIONS)
def test_one_sgd_run_is_the_loop_over_the_one_run_estimators(estimator, batch):
    paths = discrete.sgd_paths(F, THETA, 1, 30, torch.Generator().manual_seed(4),
                               estimator=estimator, batch=batch, learning_rate=0.4,
                               weight_decay=0.05, **SGD_OPTIONS[estimator])
    assert paths.shape == (1, 31, 4) and paths.dtype == F64
    assert torch.allclose(paths[0], _one_run_loop(estimator, 30, 4, batch=batch),
                          rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", ["exact", "leave-one-out", "gumbel-softmax"])
def test_the_first_run_of_several_starts_with_the_one_run_draws(estimator):
    # (REBAR draws all runs' Gumbel noise before their uniforms, so its first run does
    # not start with the one-run draws; the test of the step's mean covers it.)
    one = discrete.sgd_paths(F, THETA, 1, 1, torch.Generator().manual_seed(5),
                             estimator=estimator, batch=6, learning_rate=0.4,
                             **SGD_OPTIONS[estimator])
    several = discrete.sgd_paths(F, THETA, 3, 1, torch.Generator().manual_seed(5),
                                 estimator=estimator, batch=6, learning_rate=0.4,
                                 **SGD_OPTIONS[estimator])
    assert torch.allclose(several[0], one[0], rtol=0, atol=1e-14)
    if estimator != "exact":  # the other runs draw other noise
        assert not torch.allclose(several[1], several[0])


@pytest.mark.parametrize("estimator, target", [
    ("leave-one-out", "exact"), ("rebar", "exact"), ("gumbel-softmax", "relaxed")])
def test_each_run_takes_a_step_with_the_estimators_mean(estimator, target):
    # One step of 4000 runs: the runs' gradients are 4000 independent batch means, whose
    # mean is the estimator's mean (the exact or the relaxed gradient).
    runs, lr = 4000, 0.5
    paths = discrete.sgd_paths(F, THETA, runs, 1, torch.Generator().manual_seed(6),
                               estimator=estimator, batch=3, learning_rate=lr,
                               **SGD_OPTIONS[estimator])
    gradients = (THETA - paths[:, 1]) / lr
    expected = (discrete.exact_grad(F, THETA) if target == "exact" else
                discrete.relaxed_objective(F, THETA, 0.8).gradient)
    assert summarize(gradients).within(expected, TOLERANCE_SE)
    if target == "relaxed":  # and not the exact gradient: the test can tell them apart
        assert not summarize(gradients).within(discrete.exact_grad(F, THETA),
                                               TOLERANCE_SE)


def test_exact_sgd_paths_converge_to_the_penalized_optimum():
    paths = discrete.sgd_paths(F, THETA, 2, 3000, None, estimator="exact", batch=1,
                               learning_rate=0.5, weight_decay=0.1)
    end = paths[0, -1]
    assert torch.equal(paths[0], paths[1])  # no draws: every run is the same
    assert float((discrete.exact_grad(F, end) + 0.1 * end).norm()) < 1e-10


def test_sgd_paths_are_deterministic_given_the_generator():
    def run(seed):
        return discrete.sgd_paths(F, THETA, 4, 10, torch.Generator().manual_seed(seed),
                                  estimator="rebar", batch=4, learning_rate=0.3,
                                  temperature=1.0, eta=1.0)

    first = run(9)
    torch.rand(11)  # the global generator moves
    assert torch.equal(first, run(9)) and not torch.equal(first, run(10))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"estimator": "adam"}, ValueError, "estimator"),
    ({"estimator": 3}, TypeError, "estimator"),
    ({"estimator": "gumbel-softmax"}, ValueError, "temperature"),
    ({"estimator": "rebar", "temperature": 1.0}, ValueError, "eta"),
    ({"estimator": "leave-one-out", "batch": 1}, ValueError, "batch"),
    ({"estimator": "exact", "learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"estimator": "exact", "weight_decay": -0.1}, ValueError, "weight_decay"),
    ({"estimator": "exact", "runs": 0}, ValueError, "runs"),
    ({"estimator": "exact", "steps": 2.0}, TypeError, "steps"),
    ({"estimator": "exact", "logits": [0.0, -math.inf, 1.0, 0.0]}, ValueError,
     "finite"),
    ({"estimator": "gumbel-softmax", "temperature": -1.0}, ValueError, "temperature"),
])
def test_sgd_paths_bad_input(kwargs, error, message):
    arguments = {"f_values": F, "logits": THETA, "runs": 2, "steps": 3, "batch": 4,
                 "learning_rate": 0.1, "generator": _g()} | kwargs
    with pytest.raises(error, match=message):
        discrete.sgd_paths(**arguments)
