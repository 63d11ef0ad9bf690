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
from scipy import stats
from torch.distributions import RelaxedOneHotCategorical

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
        discrete.gumbel_softmax_grad(
            F, THETA, 1.0, n, torch.Generator().manual_seed(8), straight_through=True
        )
    )
    exact = discrete.exact_grad(F, THETA)
    z = (summary.mean - exact).abs() / summary.standard_error
    assert float(z.max()) > 20.0, z


def test_straight_through_rows_equal_relaxed_rows_for_a_linear_cost():
    # d(y.f)/dy = f wherever it is evaluated, so the backward pass cannot see the
    # one-hot.
    for temperature in (0.3, 1.0):
        st_rows = discrete.gumbel_softmax_grad(
            F,
            THETA,
            temperature,
            500,
            torch.Generator().manual_seed(1),
            straight_through=True,
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
    rows = discrete.score_function_rows(
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
    plain = discrete.score_function_rows([2.0, -1.0], logits, torch.tensor([1]))
    assert torch.allclose(plain, torch.tensor([[0.25, -0.25]], dtype=F64), atol=1e-15)
    shifted = discrete.score_function_rows(
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
        rows = discrete.score_function_rows(f, theta, torch.tensor(outcome), baseline)
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
    "straight_through": lambda g: discrete.gumbel_softmax_grad(
        F, THETA, 0.5, 40, g, straight_through=True
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

ALL = {
    "exact_grad": lambda f, th, tau, n: discrete.exact_grad(f, th),
    "gumbel_max_sample": lambda f, th, tau, n: discrete.gumbel_max_sample(th, n),
    "gumbel_softmax_sample": lambda f, th, tau, n: discrete.gumbel_softmax_sample(
        th, tau, n
    ),
    "score_function_grad": lambda f, th, tau, n: discrete.score_function_grad(f, th, n),
    "gumbel_softmax_grad": lambda f, th, tau, n: discrete.gumbel_softmax_grad(
        f, th, tau, n
    ),
}
GOOD = dict(f=[1.0, 0.0, 2.0], th=[0.1, 0.2, 0.3], tau=0.5, n=4)
USES = {
    "exact_grad": {"f", "th"},
    "gumbel_max_sample": {"th", "n"},
    "gumbel_softmax_sample": {"th", "tau", "n"},
    "score_function_grad": {"f", "th", "n"},
    "gumbel_softmax_grad": {"f", "th", "tau", "n"},
}
BAD = [
    ("tau", 0.0, "temperature"),
    ("tau", -1.0, "temperature"),
    ("tau", float("inf"), "temperature"),
    ("tau", float("nan"), "temperature"),
    ("th", [0.0, float("nan"), 1.0], "logits"),
    ("th", [0.0, float("inf"), 1.0], "logits"),
    ("f", [0.0, float("nan"), 1.0], "f_values"),
    ("f", [float("-inf"), 0.0, 1.0], "f_values"),
    ("th", [0.3], "K >= 2"),
    ("f", [0.3], "K >= 2"),
    ("th", [[0.0, 1.0]], "1-d"),
    ("n", 0, "n"),
    ("n", -3, "n"),
    ("n", 2.0, "n"),
    ("n", 2.5, "n"),
    ("n", True, "n"),
    ("th", "abc", "logits"),
]


BAD_CASES = [
    pytest.param(function, *case, id=f"{function}-{case[0]}={case[1]!r}")
    for function in ALL
    for case in BAD
    if case[0] in USES[function]
]


@pytest.mark.parametrize("function, argument, value, message", BAD_CASES)
def test_bad_input_raises_value_error_naming_the_problem(
    function, argument, value, message
):
    kwargs = dict(GOOD, **{argument: value})
    # Counts follow the package rule: a non-integer is a TypeError.
    not_int = isinstance(value, bool) or not isinstance(value, int)
    wrong_type = argument == "n" and not_int
    with pytest.raises(TypeError if wrong_type else ValueError, match=message):
        ALL[function](**kwargs)


@pytest.mark.parametrize(
    "function", ["exact_grad", "score_function_grad", "gumbel_softmax_grad"]
)
def test_costs_and_logits_of_different_lengths_raise(function):
    with pytest.raises(ValueError, match="same length"):
        ALL[function]([1.0, 2.0], [0.0, 0.0, 0.0], 0.5, 4)


def test_bad_baseline_and_generator():
    with pytest.raises(ValueError, match="leave-one-out"):
        discrete.score_function_grad(F, THETA, 1, baseline="leave-one-out")
    with pytest.raises(ValueError, match="baseline"):
        discrete.score_function_grad(F, THETA, 4, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        discrete.score_function_grad(F, THETA, 4, baseline=float("nan"))
    with pytest.raises(TypeError, match="generator"):
        discrete.gumbel_max_sample(THETA, 4, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="straight_through"):
        discrete.gumbel_softmax_grad(F, THETA, 0.5, 4, straight_through="yes")


@settings(max_examples=60, deadline=None)
@given(
    temperature=st.one_of(
        st.floats(max_value=0.0), st.just(float("nan")), st.just(float("inf"))
    )
)
def test_any_non_positive_or_non_finite_temperature_is_rejected(temperature):
    with pytest.raises(ValueError, match="temperature"):
        discrete.gumbel_softmax_sample(THETA, temperature, 3)


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
    noise = discrete.draw_gumbel(2, 2)
    assert bool(torch.isfinite(noise).all())
    eps = torch.finfo(F64).eps
    expected = -math.log(-math.log(eps))
    assert math.isclose(float(noise.view(-1)[0]), expected, rel_tol=1e-15)


# --- straight-through rows ------------------------------------------------------------


def test_straight_through_rows_are_one_hot_forward_and_identity_backward():
    relaxed = torch.softmax(
        torch.randn(200, 4, dtype=F64, generator=torch.Generator().manual_seed(0)), 1
    ).requires_grad_(True)
    y = discrete.straight_through_rows(relaxed)
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
    original = discrete.straight_through_rows

    def spy(relaxed):
        forward = original(relaxed)
        seen.append(forward.detach())
        return forward

    monkeypatch.setattr(discrete, "straight_through_rows", spy)
    discrete.gumbel_softmax_grad(
        F, THETA, 0.5, 300, torch.Generator().manual_seed(4), straight_through=True
    )
    draws = discrete.gumbel_max_sample(THETA, 300, torch.Generator().manual_seed(4))
    assert len(seen) == 1
    one_hot = torch.nn.functional.one_hot(draws, 4).to(F64)
    assert torch.allclose(seen[0], one_hot, rtol=0, atol=1e-15)


def test_straight_through_differs_from_the_relaxed_gradient_for_a_nonlinear_cost():
    noise = discrete.draw_gumbel(500, 4, torch.Generator().manual_seed(6))
    grads = []
    for make in (discrete.straight_through_rows, lambda s: s):
        theta = THETA.expand(500, -1).clone().requires_grad_(True)
        y = make(torch.softmax((theta + noise) / 0.5, 1))
        ((y @ F) ** 2).sum().backward()
        grads.append(theta.grad)
    assert not torch.allclose(grads[0], grads[1], atol=1e-3)


def test_straight_through_rows_bad_input():
    with pytest.raises(ValueError, match="relaxed"):
        discrete.straight_through_rows(torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="relaxed"):
        discrete.straight_through_rows(torch.ones(2, 3, dtype=torch.int64))


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
    # The value and the gradient are two different integrals; the rule is fixed, so
    # central differences of the value must reproduce the gradient closely.
    f, theta, step = F[:3], THETA[:3], 1e-5
    _, grad = discrete.relaxed_objective(f, theta, 0.7, order=80)
    for k in range(3):
        e = torch.zeros(3, dtype=F64)
        e[k] = step
        up = discrete.relaxed_objective(f, theta + e, 0.7, order=80)[0]
        down = discrete.relaxed_objective(f, theta - e, 0.7, order=80)[0]
        assert abs(float((up - down) / (2 * step)) - float(grad[k])) < 1e-9


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
