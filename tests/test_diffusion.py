"""reparam.diffusion against independent references: step-by-step simulation of the
chain, Gaussian conditioning and Bayes' rule on a grid (torch.distributions), explicit
loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from reparam import diffusion as d
from reparam.data import load_scaled_digits

SCHEDULE = d.linear_schedule(50, 1e-3, 0.2)


# --------------------------------------------------------------------


def test_linear_schedule_rows_exactly():
    schedule = d.linear_schedule(5, 0.1, 0.5)
    expected = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert torch.allclose(
        schedule.betas, torch.tensor(expected, dtype=torch.float64), atol=1e-15
    )
    product, bars = 1.0, []
    for beta in expected:
        product *= 1.0 - beta
        bars.append(product)
    assert torch.allclose(
        schedule.alpha_bars, torch.tensor(bars, dtype=torch.float64), atol=1e-15
    )
    assert schedule.T == 5
    assert schedule.alpha_bars_prev[0] == 1.0
    assert torch.equal(schedule.alpha_bars_prev[1:], schedule.alpha_bars[:-1])
    # beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t), explicitly for t = 3:
    tilde = 0.3 * (1 - bars[1]) / (1 - bars[2])
    assert math.isclose(float(schedule.posterior_variances[2]), tilde, rel_tol=1e-14)
    assert float(schedule.posterior_variances[0]) == 0.0


def test_linear_schedule_single_step_and_defaults():
    one = d.linear_schedule(1, 0.3, 0.6)
    assert one.betas.tolist() == [0.3]
    assert float(one.alpha_bars[0]) == pytest.approx(0.7)
    ho = d.linear_schedule(1000)
    assert float(ho.betas[0]) == pytest.approx(1e-4)
    assert float(ho.betas[-1]) == pytest.approx(0.02)


@pytest.mark.parametrize("T", [0, -3])
def test_linear_schedule_rejects_small_T(T):
    with pytest.raises(ValueError, match="T must be >= 1"):
        d.linear_schedule(T, 0.1, 0.2)


@pytest.mark.parametrize("T", [2.0, True, "10"])
def test_linear_schedule_rejects_non_integer_T(T):
    with pytest.raises(TypeError, match="T must be an integer"):
        d.linear_schedule(T, 0.1, 0.2)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
@pytest.mark.parametrize("which", ["beta_start", "beta_end"])
def test_linear_schedule_rejects_beta_outside_open_interval(bad, which):
    kwargs = {"beta_start": 0.1, "beta_end": 0.2, which: bad}
    with pytest.raises(ValueError, match=f"{which} must lie in the open interval"):
        d.linear_schedule(10, **kwargs)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_linear_schedule_rejects_non_finite_beta(bad):
    with pytest.raises(ValueError, match="beta_end must be finite"):
        d.linear_schedule(10, 0.1, bad)


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_linear_schedule_property_any_bad_beta_raises(beta):
    if math.isfinite(beta) and 0.0 < beta < 1.0:
        schedule = d.linear_schedule(3, beta, beta)
        assert bool(torch.isfinite(schedule.alpha_bars).all())
    else:
        with pytest.raises(ValueError):
            d.linear_schedule(3, beta, 0.5)


# --------------------------------------------------------------------


# --------------------------------------------------------------------


def test_q_sample_formula_rows_exactly():
    x0 = torch.tensor([[1.0, -2.0], [0.5, 0.25]], dtype=torch.float64)
    noise = torch.tensor([[0.3, 0.1], [-1.0, 2.0]], dtype=torch.float64)
    abar = SCHEDULE.alpha_bars
    out = d.q_sample(x0, 7, SCHEDULE, noise)
    expected = math.sqrt(abar[6]) * x0 + math.sqrt(1 - abar[6]) * noise
    assert torch.allclose(out, expected, atol=1e-15)
    # A tensor of per-row steps equals the rows computed one at a time.
    t = torch.tensor([1, 50])
    out = d.q_sample(x0, t, SCHEDULE, noise)
    for row, step in enumerate(t.tolist()):
        alone = d.q_sample(x0[row : row + 1], step, SCHEDULE, noise[row : row + 1])
        assert torch.allclose(out[row], alone[0], atol=1e-15)
    assert out.dtype == torch.float64


@pytest.mark.parametrize("n", [2_000, 200_000])
@pytest.mark.parametrize("t", [1, 2, 13, 50])
def test_q_sample_matches_step_by_step_chain(n, t):
    """x_t after t single steps has the mean and variance q(x_t | x0) says (4 standard
    errors)."""
    generator = torch.Generator().manual_seed(100 + t)
    x0 = torch.full((n, 1), 0.8, dtype=torch.float64)
    x = x0.clone()
    for beta in SCHEDULE.betas[:t].tolist():
        x = math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn(
            x.shape, generator=generator, dtype=torch.float64
        )
    one_shot = d.q_sample(x0, t, SCHEDULE, torch.zeros_like(x0))
    variance = 1 - float(SCHEDULE.alpha_bars[t - 1])
    assert abs(float(x.mean()) - float(one_shot[0, 0])) < 4 * math.sqrt(variance / n)
    # Var of a sample variance of Gaussians: 2 sigma^4 / (n - 1).
    assert abs(float(x.var()) - variance) < 4 * variance * math.sqrt(2 / (n - 1))


def test_q_sample_one_shot_matches_chain_distribution_large():
    """The one-shot draw and the chain agree in distribution too (two-sample KS,
    seeded)."""
    from scipy.stats import ks_2samp

    generator = torch.Generator().manual_seed(5)
    x0 = torch.full((20_000, 1), -0.5, dtype=torch.float64)
    x = x0.clone()
    for beta in SCHEDULE.betas[:20].tolist():
        x = math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn(
            x.shape, generator=generator, dtype=torch.float64
        )
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    one_shot = d.q_sample(x0, 20, SCHEDULE, noise)
    assert ks_2samp(x[:, 0].numpy(), one_shot[:, 0].numpy()).pvalue > 0.01
    # ... and a wrong step (t = 19) is detected by the same test.
    wrong = d.q_sample(x0, 12, SCHEDULE, noise)
    assert ks_2samp(x[:, 0].numpy(), wrong[:, 0].numpy()).pvalue < 1e-6


@pytest.mark.parametrize("t", [0, 51, -1, torch.tensor([1, 0]), torch.tensor([1, 51])])
def test_q_sample_rejects_t_outside_range(t):
    x0 = torch.zeros(2, 3)
    with pytest.raises(
        ValueError, match="t must lie in 1..50|every t must lie in 1..50"
    ):
        d.q_sample(x0, t, SCHEDULE, torch.zeros(2, 3))


@pytest.mark.parametrize("t", [2.0, True, torch.tensor([1.0, 2.0]), "3"])
def test_q_sample_rejects_non_integer_t(t):
    with pytest.raises(TypeError, match="t must be"):
        d.q_sample(torch.zeros(2, 3), t, SCHEDULE, torch.zeros(2, 3))


def test_q_sample_rejects_bad_shapes_and_values():
    x0 = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="noise must have x0's shape"):
        d.q_sample(x0, 1, SCHEDULE, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        d.q_sample(x0, torch.tensor([1, 2, 3]), SCHEDULE, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        d.q_sample(torch.tensor([[math.nan, 0.0]]), 1, SCHEDULE, torch.zeros(1, 2))
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        d.q_sample(x0, 1, SCHEDULE.betas, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="floating point"):
        d.q_sample(torch.zeros(2, 3, dtype=torch.long), 1, SCHEDULE, torch.zeros(2, 3))


def test_q_sample_zero_dim_tensor_t_is_an_int():
    x0, noise = torch.ones(2, 3), torch.ones(2, 3)
    assert torch.equal(
        d.q_sample(x0, torch.tensor(4), SCHEDULE, noise),
        d.q_sample(x0, 4, SCHEDULE, noise),
    )


# --------------------------------------------------------------------


def _joint_conditioning(x0: float, xt: float, t: int, schedule: d.Schedule):
    """q(x_{t-1} | x_t, x0) by conditioning the joint Gaussian of (x_{t-1}, x_t) given
    x0.

    Built from the chain's definition only: x_{t-1} = sqrt(abar_{t-1}) x0 + noise with
    variance 1 - abar_{t-1}, then x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps.
    """
    betas = schedule.betas.tolist()
    abar_prev = float(np.prod([1 - b for b in betas[: t - 1]]))
    a = math.sqrt(1 - betas[t - 1])
    mean = np.array([math.sqrt(abar_prev) * x0, a * math.sqrt(abar_prev) * x0])
    v = 1 - abar_prev
    cov = np.array([[v, a * v], [a * v, a * a * v + betas[t - 1]]])
    cond_mean = mean[0] + cov[0, 1] / cov[1, 1] * (xt - mean[1])
    cond_var = cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]
    return cond_mean, cond_var


@pytest.mark.parametrize("t", [2, 3, 25, 50])
def test_q_posterior_against_gaussian_conditioning(t):
    x0 = torch.tensor([[0.7, -1.0, 0.0]], dtype=torch.float64)
    xt = torch.tensor([[0.2, 0.5, -2.0]], dtype=torch.float64)
    mean, variance = d.q_posterior(x0, xt, t, SCHEDULE)
    for j in range(3):
        m, v = _joint_conditioning(float(x0[0, j]), float(xt[0, j]), t, SCHEDULE)
        assert math.isclose(float(mean[0, j]), m, rel_tol=1e-10, abs_tol=1e-12)
        assert math.isclose(float(variance[0, j]), v, rel_tol=1e-10)


@pytest.mark.parametrize("t", [2, 10, 50])
def test_q_posterior_against_bayes_rule_on_a_grid(t):
    """p(x_{t-1}|x_t,x0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x0), normalised numerically."""
    from torch.distributions import Normal

    x0_value, xt_value = 0.6, -0.4
    beta = float(SCHEDULE.betas[t - 1])
    abar_prev = float(SCHEDULE.alpha_bars[t - 2])
    grid = torch.linspace(-6, 6, 200_001, dtype=torch.float64)
    log_joint = Normal(math.sqrt(1 - beta) * grid, math.sqrt(beta)).log_prob(
        torch.tensor(xt_value, dtype=torch.float64)
    ) + Normal(math.sqrt(abar_prev) * x0_value, math.sqrt(1 - abar_prev)).log_prob(grid)
    weights = torch.exp(log_joint - log_joint.max())
    weights = weights / weights.sum()
    grid_mean = float((weights * grid).sum())
    grid_var = float((weights * (grid - grid_mean) ** 2).sum())
    mean, variance = d.q_posterior(
        torch.tensor([[x0_value]], dtype=torch.float64),
        torch.tensor([[xt_value]], dtype=torch.float64),
        t,
        SCHEDULE,
    )
    assert math.isclose(float(mean), grid_mean, abs_tol=1e-7)
    assert math.isclose(float(variance), grid_var, rel_tol=1e-5)


def test_q_posterior_per_row_t_and_shapes():
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 64, generator=generator, dtype=torch.float64)
    xt = torch.randn(4, 64, generator=generator, dtype=torch.float64)
    t = torch.tensor([2, 9, 30, 50])
    mean, variance = d.q_posterior(x0, xt, t, SCHEDULE)
    assert mean.shape == variance.shape == (4, 64)
    for row, step in enumerate(t.tolist()):
        m, v = d.q_posterior(x0[row : row + 1], xt[row : row + 1], step, SCHEDULE)
        assert torch.allclose(mean[row], m[0], atol=1e-14)
        assert torch.allclose(variance[row], v[0], atol=1e-14)


def test_q_posterior_rejects_t_one_and_mismatched_shapes():
    x0 = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="t must lie in 2..50"):
        d.q_posterior(x0, x0, 1, SCHEDULE)
    with pytest.raises(ValueError, match="every t must lie in 2..50"):
        d.q_posterior(x0, x0, torch.tensor([2, 1]), SCHEDULE)
    with pytest.raises(ValueError, match="xt must have x0's shape"):
        d.q_posterior(x0, torch.zeros(2, 4), 3, SCHEDULE)
    with pytest.raises(ValueError, match="xt contains NaN"):
        d.q_posterior(x0, torch.full((2, 3), math.inf), 3, SCHEDULE)


@pytest.mark.parametrize("t", [1, 2, 17, 50])
def test_noise_form_of_posterior_mean_equals_x0_form(t):
    generator = torch.Generator().manual_seed(t)
    x0 = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    noise = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    xt = d.q_sample(x0, t, SCHEDULE, noise)
    from_noise = d.posterior_mean_from_noise(xt, noise, t, SCHEDULE)
    if t == 1:  # abar_0 = 1: the mean one step back is x0 itself
        assert torch.allclose(from_noise, x0, atol=1e-12)
    else:
        mean, _ = d.q_posterior(x0, xt, t, SCHEDULE)
        assert torch.allclose(from_noise, mean, atol=1e-12)
    # A wrong noise gives a different mean (the function really uses it).
    assert not torch.allclose(
        d.posterior_mean_from_noise(xt, -noise, t, SCHEDULE), from_noise
    )


def test_elbo_weights_against_kl_divergence():
    """KL(q(x_{t-1}|x_t,x0) || p_theta) = c_t ||eps - eps_theta||^2
    (torch.distributions)."""
    from torch.distributions import Normal, kl_divergence

    weights = d.elbo_weights(SCHEDULE)
    assert weights.shape == (SCHEDULE.T - 1,)
    generator = torch.Generator().manual_seed(3)
    for t in (2, 3, 20, 50):
        x0 = torch.randn(1, 64, generator=generator, dtype=torch.float64)
        noise = torch.randn(1, 64, generator=generator, dtype=torch.float64)
        guess = torch.randn(1, 64, generator=generator, dtype=torch.float64)
        xt = d.q_sample(x0, t, SCHEDULE, noise)
        mean, variance = d.q_posterior(x0, xt, t, SCHEDULE)
        model_mean = d.posterior_mean_from_noise(xt, guess, t, SCHEDULE)
        kl = kl_divergence(
            Normal(mean, variance.sqrt()), Normal(model_mean, variance.sqrt())
        ).sum()
        assert math.isclose(
            float(kl),
            float(weights[t - 2] * (noise - guess).pow(2).sum()),
            rel_tol=1e-9,
        )
    with pytest.raises(ValueError, match="T >= 2"):
        d.elbo_weights(d.linear_schedule(1, 0.1, 0.1))


# --------------------------------------------------------------------


def test_noise_predictor_shapes_and_bad_sizes():
    model = d.NoisePredictor(SCHEDULE.T, hidden=16, layers=2)
    out = model(torch.zeros(3, 64), torch.tensor([1, 25, 50]))
    assert out.shape == (3, 64)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        d.NoisePredictor(10, hidden=0)
    with pytest.raises(ValueError, match="dim must be an even integer"):
        d.timestep_embedding(torch.tensor([1]), 3, 10)


def _eval_loss(model, images, schedule):
    generator = torch.Generator().manual_seed(99)
    with torch.no_grad():
        return float(
            np.mean(
                [
                    float(d.simple_loss(model, images, schedule, generator))
                    for _ in range(5)
                ]
            )
        )


def _small_training(**overrides):
    """A small, fast, seeded training setting for the loss tests."""
    options = dict(
        hidden=64,
        layers=2,
        batch_size=64,
        seed=0,
        progress=None,
        device=torch.device("cpu"),
        ema_decay=0.0,
    )
    return {**options, **overrides}


def test_a_few_training_steps_lower_the_loss():
    data = load_scaled_digits()
    schedule = d.linear_schedule(50, 2e-3, 0.3)
    options = _small_training()
    start, _ = d.train(data.train_images, schedule, steps=1, **options)
    trained, history = d.train(data.train_images, schedule, steps=150, **options)
    before = _eval_loss(start, data.test_images, schedule)
    after = _eval_loss(trained, data.test_images, schedule)
    assert after < 0.7 * before, (before, after)
    assert len(history.losses) == 150 and history.seconds > 0
    # Seeded: a second run gives the same losses, step for step.
    _, again = d.train(data.train_images, schedule, steps=150, **options)
    assert again.losses == history.losses


def test_train_progress_goes_to_the_callback():
    data = load_scaled_digits()
    lines = []
    d.train(
        data.train_images[:32],
        d.linear_schedule(10, 0.01, 0.2),
        steps=4,
        hidden=8,
        layers=1,
        batch_size=8,
        progress=lines.append,
        progress_every=2,
    )
    assert len(lines) == 2 and lines[-1].startswith("step 4/4")


def test_train_rejects_bad_images():
    schedule = d.linear_schedule(10, 0.01, 0.2)
    with pytest.raises(ValueError, match=r"images must have shape \(n, 64\)"):
        d.train(torch.zeros(5, 63), schedule, steps=1, progress=None)
    with pytest.raises(ValueError, match="NaN or infinite"):
        d.train(torch.full((5, 64), math.nan), schedule, steps=1, progress=None)
    with pytest.raises(ValueError, match=r"scaled to \[-1, 1\]"):
        d.train(torch.full((5, 64), 2.0), schedule, steps=1, progress=None)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        d.train(torch.zeros(5, 64), schedule, steps=0, progress=None)
    with pytest.raises(ValueError, match=r"ema_decay must lie in \[0, 1\)"):
        d.train(torch.zeros(5, 64), schedule, steps=1, progress=None, ema_decay=1.0)


def test_train_returns_the_weight_average():
    """ema_decay = 0 returns the last weights; with 0.995 the average lags behind."""
    data = load_scaled_digits()
    schedule = d.linear_schedule(10, 0.01, 0.2)
    options = dict(
        steps=20,
        hidden=8,
        layers=1,
        batch_size=16,
        progress=None,
        device=torch.device("cpu"),
    )
    last, _ = d.train(data.train_images, schedule, ema_decay=0.0, **options)
    lagging, _ = d.train(data.train_images, schedule, ema_decay=0.995, **options)
    start, _ = d.train(
        data.train_images, schedule, **{**options, "steps": 1}, ema_decay=0.0
    )
    w_last, w_lag = last.out.weight, lagging.out.weight
    w_start = start.out.weight
    # The average sits between the first-step and the last weights, closer to the start.
    assert (w_lag - w_start).norm() < (w_last - w_start).norm()
    assert not torch.equal(w_lag, w_last)


class _PointMassOracle(torch.nn.Module):
    """The exact noise predictor when every training image equals ``target``."""

    def __init__(self, target: torch.Tensor, schedule: d.Schedule):
        super().__init__()
        self.T, self.pixels = schedule.T, target.shape[-1]
        self.schedule = schedule
        self.register_buffer("target", target)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, xt, t):
        abar = self.schedule.alpha_bars.to(xt.dtype)[t - 1][:, None]
        return (xt - abar.sqrt() * self.target) / (1 - abar).sqrt()


@pytest.mark.parametrize("clip", [True, False])
def test_sampler_with_the_exact_noise_returns_the_point_mass(clip):
    """With eps_theta exact for a one-image data set, every reverse step is the exact
    posterior q(x_{t-1} | x_t, x0), and ancestral sampling must land on x0 (a wrong
    sign, step or variance in the sampler does not)."""
    target = torch.linspace(-1, 1, 64)
    oracle = _PointMassOracle(target, SCHEDULE)
    x0, kept = d.sample(
        oracle, SCHEDULE, 16, seed=0, keep=[SCHEDULE.T, 25, 0], clip_denoised=clip
    )
    assert torch.allclose(x0, target.expand(16, 64), atol=1e-4)
    assert sorted(kept) == [0, 25, SCHEDULE.T]
    assert torch.equal(kept[0], x0)
    # x_T is the sampler's first draw from its own seeded generator.
    assert torch.equal(
        kept[SCHEDULE.T],
        torch.randn(16, 64, generator=torch.Generator().manual_seed(0)),
    )
    # Every earlier step too: x_{t-1} = mean of q(x_{t-1} | x_t, x0) + sqrt(beta~_t) z,
    # so the standardised residuals are N(0, 1) (mean and variance within 5 s.e.).
    _, kept = d.sample(
        oracle, SCHEDULE, 200, seed=1, keep=range(SCHEDULE.T + 1), clip_denoised=clip
    )
    for t in (2, 3, 25, 50):
        mean, variance = d.q_posterior(target.expand(200, 64), kept[t], t, SCHEDULE)
        z = ((kept[t - 1] - mean) / variance.sqrt()).double().flatten()
        n = z.numel()
        assert abs(float(z.mean())) < 5 / math.sqrt(n), t
        assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / n), t


def test_sampler_is_deterministic_given_a_seed():
    model = d.NoisePredictor(SCHEDULE.T, hidden=16, layers=1)
    first, kept_first = d.sample(model, SCHEDULE, 5, seed=7, keep=[10])
    torch.randn(100)  # other draws in between, from the global and another generator
    torch.randn(10, generator=torch.Generator().manual_seed(7))
    np.random.default_rng(7).standard_normal(3)
    second, kept_second = d.sample(model, SCHEDULE, 5, seed=7, keep=[10])
    assert torch.equal(first, second) and torch.equal(kept_first[10], kept_second[10])
    third, _ = d.sample(model, SCHEDULE, 5, seed=8)
    assert not torch.equal(first, third)
    assert first.shape == (5, 64)


def test_sampler_rejects_bad_arguments():
    model = d.NoisePredictor(SCHEDULE.T, hidden=8, layers=1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        d.sample(model, SCHEDULE, 0)
    with pytest.raises(ValueError, match="keep must hold integers in 0..50"):
        d.sample(model, SCHEDULE, 2, keep=[51])
    with pytest.raises(ValueError, match="model was built for T = 50"):
        d.sample(model, d.linear_schedule(20, 0.01, 0.2), 2)


# --------------------------------------------------------------------


def test_gaussian_baseline_moments():
    generator = torch.Generator().manual_seed(0)
    data = (
        torch.randn(500, 3, generator=generator)
        @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
        + 0.3
    )  # singular covariance
    n = 40_000
    draws = d.gaussian_baseline(data, n, seed=1).double()
    mean, cov = data.double().mean(0), torch.cov(data.double().T)
    se = (cov.diagonal() / n).sqrt()
    assert bool(((draws.mean(0) - mean).abs() <= 4 * se + 1e-6).all())
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.05)
    assert torch.equal(
        d.gaussian_baseline(data, 5, seed=2), d.gaussian_baseline(data, 5, seed=2)
    )


def test_mmd_squared_against_explicit_loops():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    y = torch.randn(5, 2, generator=generator, dtype=torch.float64) + 1.0
    h = 0.7

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * h * h))

    xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / 30
    assert math.isclose(d.mmd_squared(x, y, h), xx + yy - 2 * xy, rel_tol=1e-10)
    with pytest.raises(ValueError, match="bandwidth must be a finite number > 0"):
        d.mmd_squared(x, y, 0.0)
    with pytest.raises(ValueError, match="same width"):
        d.mmd_squared(x, torch.zeros(4, 3), 1.0)


def test_mmd_squared_separates_distributions():
    generator = torch.Generator().manual_seed(2)
    a, b = (
        torch.randn(400, 4, generator=generator),
        torch.randn(400, 4, generator=generator),
    )
    shifted = torch.randn(400, 4, generator=generator) + 0.5
    assert abs(d.mmd_squared(a, b, 2.0)) < 0.01
    assert d.mmd_squared(a, shifted, 2.0) > 5 * abs(d.mmd_squared(a, b, 2.0))


def test_median_bandwidth_and_nearest_distances_against_scipy_and_loops():
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(9, 3, generator=generator, dtype=torch.float64)
    assert math.isclose(
        d.median_bandwidth(x), float(np.median(pdist(x.numpy()))), rel_tol=1e-12
    )
    refs = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    nearest = d.nearest_distances(x, refs)
    for i in range(9):
        assert math.isclose(
            float(nearest[i]),
            min(float((x[i] - r).norm()) for r in refs),
            rel_tol=1e-12,
        )
    with pytest.raises(ValueError, match="at least 2 rows"):
        d.median_bandwidth(x[:1])


# --------------------------------------------------------------------
# Networks that output x0 instead of the noise (prediction="x0").


@pytest.mark.parametrize("t", [1, 7, 50])
def test_predicted_x0_inverts_q_sample(t):
    generator = torch.Generator().manual_seed(11)
    x0, noise = torch.randn(2, 6, 64, generator=generator, dtype=torch.float64)
    xt = d.q_sample(x0, t, SCHEDULE, noise)
    # The true noise gives back x0 exactly (up to rounding); an x0 output is returned.
    assert torch.allclose(d.predicted_x0(noise, xt, t, SCHEDULE, "epsilon"), x0)
    assert torch.equal(d.predicted_x0(x0, xt, t, SCHEDULE, "x0"), x0)
    rows = torch.full((6,), t)
    assert torch.allclose(d.predicted_x0(noise, xt, rows, SCHEDULE, "epsilon"), x0)


def test_prediction_is_validated_everywhere():
    xt = torch.zeros(3, 64)
    with pytest.raises(ValueError, match="prediction must be one of"):
        d.predicted_x0(xt, xt, 1, SCHEDULE, "v")
    with pytest.raises(ValueError, match="output must be a tensor of xt's shape"):
        d.predicted_x0(torch.zeros(3, 63), xt, 1, SCHEDULE, "x0")
    with pytest.raises(ValueError, match="prediction must be one of"):
        d.NoisePredictor(SCHEDULE.T, hidden=8, layers=1, prediction="eps")
    with pytest.raises(ValueError, match="prediction must be one of"):
        d.train(xt, SCHEDULE, steps=1, progress=None, prediction="noise")


def test_x0_loss_is_the_noise_regression_weighted_by_inverse_snr():
    """simple_loss of an x0-predicting model, replayed by hand from the same draws."""
    torch.manual_seed(3)
    model = d.NoisePredictor(SCHEDULE.T, hidden=16, layers=1, prediction="x0")
    x0 = load_scaled_digits().train_images[:9]
    loss = d.simple_loss(model, x0, SCHEDULE, torch.Generator().manual_seed(5)).detach()
    replay = torch.Generator().manual_seed(5)
    t = torch.randint(1, SCHEDULE.T + 1, (9,), generator=replay)
    noise = torch.randn(x0.shape, generator=replay)
    xt = d.q_sample(x0, t, SCHEDULE, noise)
    x0_hat = model(xt, t).detach()
    abar = SCHEDULE.alpha_bars[t - 1].float()[:, None]
    implied_noise = (xt - abar.sqrt() * x0_hat) / (1 - abar).sqrt()
    weighted = ((1 - abar) / abar * (noise - implied_noise).pow(2)).mean()
    assert math.isclose(float(loss), float((x0_hat - x0).pow(2).mean()), rel_tol=1e-6)
    assert math.isclose(float(loss), float(weighted), rel_tol=1e-4)


class _PointMassX0Oracle(torch.nn.Module):
    """The exact x0 predictor when every training image equals ``target``."""

    prediction = "x0"

    def __init__(self, target: torch.Tensor, T: int):
        super().__init__()
        self.T, self.pixels = T, target.shape[-1]
        self.register_buffer("target", target)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, xt, t):
        return self.target.expand_as(xt)


@pytest.mark.parametrize("clip", [True, False])
def test_sampler_with_the_exact_x0_matches_the_noise_oracle(clip):
    """An exact x0 output and the exact noise output give the same reverse chain."""
    target = torch.linspace(-1, 1, 64)
    from_x0, kept_x0 = d.sample(
        _PointMassX0Oracle(target, SCHEDULE.T),
        SCHEDULE,
        8,
        seed=4,
        keep=[30],
        clip_denoised=clip,
    )
    from_noise, kept_noise = d.sample(
        _PointMassOracle(target, SCHEDULE),
        SCHEDULE,
        8,
        seed=4,
        keep=[30],
        clip_denoised=clip,
    )
    assert torch.allclose(from_x0, target.expand(8, 64), atol=1e-5)
    assert torch.allclose(kept_x0[30], kept_noise[30], atol=1e-4)
    assert torch.allclose(from_x0, from_noise, atol=1e-4)


def test_train_x0_prediction_lowers_the_x0_loss():
    data = load_scaled_digits()
    schedule = d.linear_schedule(50, 2e-3, 0.3)
    options = _small_training(prediction="x0")
    start, _ = d.train(data.train_images, schedule, steps=1, **options)
    trained, _ = d.train(data.train_images, schedule, steps=150, **options)
    assert trained.prediction == "x0"

    def x0_loss(model):
        generator = torch.Generator().manual_seed(9)
        with torch.no_grad():
            return float(d.simple_loss(model, data.test_images, schedule, generator))

    assert x0_loss(trained) < 0.7 * x0_loss(start)


@pytest.mark.parametrize("oracle", ["x0", "epsilon"])
def test_sampler_clips_the_x0_estimate_only_when_asked(oracle):
    """For a one-image data set outside [-1, 1], clipping x0_hat moves the last step's
    mean to the clipped image; without clipping the chain lands on the image itself."""
    target = torch.linspace(-3, 3, 64)
    if oracle == "x0":
        model = _PointMassX0Oracle(target, SCHEDULE.T)
    else:
        model = _PointMassOracle(target, SCHEDULE)
    clipped, _ = d.sample(model, SCHEDULE, 4, seed=2, clip_denoised=True)
    unclipped, _ = d.sample(model, SCHEDULE, 4, seed=2, clip_denoised=False)
    assert torch.allclose(clipped, target.clamp(-1, 1).expand(4, 64), atol=1e-5)
    assert torch.allclose(unclipped, target.expand(4, 64), atol=1e-4)


def test_timestep_embedding_rows_exactly():
    """sin and cos of t times frequencies running geometrically from 1 to 1/T."""
    t = torch.tensor([1, 7, 50])
    embedding = d.timestep_embedding(t, 6, 50)
    frequencies = torch.tensor([1.0, 50**-0.5, 1 / 50])
    angles = t[:, None].float() * frequencies[None, :]
    expected = torch.cat([angles.sin(), angles.cos()], dim=1)
    assert torch.allclose(embedding, expected, rtol=0, atol=1e-6)


def test_every_hidden_layer_receives_the_time():
    """With the time columns of the first layer zeroed, the output still depends on t:
    the embedding also enters every hidden layer through its own map."""
    torch.manual_seed(0)
    model = d.NoisePredictor(SCHEDULE.T, hidden=8, layers=2, time_dim=4)
    x = torch.randn(1, 64, generator=torch.Generator().manual_seed(1)).expand(2, 64)
    t = torch.tensor([3, 40])
    assert not torch.allclose(model(x, t)[0], model(x, t)[1])
    with torch.no_grad():
        model.linears[0].weight[:, 64:] = 0
    out = model(x, t)
    assert not torch.allclose(out[0], out[1])


def test_learning_rate_decays_linearly_to_a_tenth(monkeypatch):
    """The documented schedule: step k (0-based) uses lr * (1 - 0.9 k / steps)."""
    seen = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, *args, **kwargs):
            seen.append(self.param_groups[0]["lr"])
            return super().step(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    images = load_scaled_digits().train_images[:32]
    d.train(images, SCHEDULE, steps=10, batch_size=8, learning_rate=1e-3, hidden=8,
            layers=1, progress=None, device=torch.device("cpu"))
    expected = [1e-3 * (1 - 0.9 * k / 10) for k in range(10)]
    assert np.allclose(seen, expected, rtol=1e-12, atol=0)


def test_minibatches_draw_from_every_training_image(monkeypatch):
    """Over 50 steps of 32 draws from 64 images every image is used (seeded; a sampler
    that skipped part of the set would leave some out)."""
    images = load_scaled_digits().train_images[:64]
    used = []
    original = d.simple_loss

    def recording(model, x0, schedule, generator=None):
        used.append(x0.detach().clone())
        return original(model, x0, schedule, generator)

    monkeypatch.setattr(d, "simple_loss", recording)
    d.train(images, SCHEDULE, steps=50, batch_size=32, hidden=8, layers=1,
            progress=None, device=torch.device("cpu"))
    rows = torch.cat(used)
    assert rows.shape == (50 * 32, 64)
    matches = (rows[:, None, :] == images[None, :, :]).all(-1)
    assert bool(matches.any(1).all())  # every drawn row is a training image
    assert bool(matches.any(0).all())  # and every training image was drawn
